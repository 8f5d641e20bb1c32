--- coronet: Go's net package for Lua 5.4.
-- `local net = require "coronet"`. Submodules (net.ip, net.errors,
-- net.debug, and later net.bufio, net.dns, ...) load on first use.
local core = require "coronet.core"
local errors = require "coronet.errors"
local sched = require "coronet.sched"
local sync = require "coronet.sync"
local stream = require "coronet.stream"

local M = {}

-- scheduler
M.go, M.run, M.sleep, M.yield, M.now = sched.go, sched.run, sched.sleep, sched.yield, sched.now

-- sync (also as net.sync)
M.sync = sync
M.chan, M.wait_group, M.mutex, M.semaphore = sync.chan, sync.wait_group, sync.mutex, sync.semaphore
M.select, M.after = sync.select, sync.after

-- errors
M.errors = errors
M.EOF, M.ErrUnexpectedEOF, M.ErrClosed = errors.EOF, errors.ErrUnexpectedEOF, errors.ErrClosed
M.ErrDeadlineExceeded, M.ErrCanceled = errors.ErrDeadlineExceeded, errors.ErrCanceled
M.ErrFrameTooLarge = errors.ErrFrameTooLarge

-- addresses and sockets
M.ip = core.ip
M.split_host_port, M.join_host_port = core.ip.split_host_port, core.ip.join_host_port
M.addr = stream.addr
M.setsockopt, M.getsockopt, M.close_fd = core.setsockopt, core.getsockopt, core.close_fd

-- stream conns and listeners
M.dial, M.listen, M.listen_packet = stream.dial, stream.listen, stream.listen_packet
M.dialer, M.listen_config = stream.dialer, stream.listen_config
M.file_conn, M.file_listener = stream.file_conn, stream.file_listener
M.listeners_from_env = stream.listeners_from_env

-- byte buffers: net.buffer([cap]) for conn:read_into / conn:write (docs/buffer.md)
M.buffer = core.buffer

-- DNS lookups on the default resolver (net.dns loads on first use):
-- net.lookup_host(name [, ctx]) is net.dns.default:lookup_host(name [, ctx]), ...
for _, kind in ipairs{"host", "ip", "addr", "cname", "mx", "txt", "srv", "ns", "port"} do
    local method = "lookup_" .. kind
    M[method] = function(...)
        local r = M.dns.default
        return r[method](r, ...)
    end
end

-- diagnostics
-- net.debug (coronet.debug: stats, tasks, dump, conns, tcp_info, tap, leaks)
-- loads on first use, below.

-- submodules that load on first use: net.bufio, net.dns, net.context, ...
return setmetatable(M, {__index = function(t, k)
    if type(k) ~= "string" or not k:match("^[%a_]+$") then return nil end
    local ok, mod = pcall(require, "coronet." .. k)
    if ok then
        rawset(t, k, mod)
        return mod
    end
    if not tostring(mod):find("module 'coronet." .. k .. "' not found", 1, true) then
        error(mod, 2)
    end
    return nil
end})

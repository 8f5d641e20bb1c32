--- coronet.restart: zero-downtime restart (cloudflare/tableflip's design).
-- On SIGHUP the running server spawns a new copy of itself (same program,
-- arguments and environment) with its *listening sockets themselves* at
-- fd 3.. (LISTEN_FDS/LISTEN_FDNAMES), waits until the copy writes one byte
-- to a readiness pipe, then shuts itself down gracefully through a hook.
-- Both processes accept from the same kernel queue in between, and the
-- queue never closes (closing one copy of a socket leaves the others), so
-- no connection waiting in it is lost. Closing an SO_REUSEPORT sibling
-- instead resets the conns queued on it: that is why this module never
-- re-listens.
--
--     local up = net.restart.upgrader()
--     local ln = assert(up:listen("tcp", "127.0.0.1:8080")) -- inherited or new
--     net.go(serve, ln)                                      -- start serving
--     up:run{shutdown = function(why) ln:close() --[[drain]] end}
--
-- One upgrade runs at a time; a copy not ready within `ready_timeout`
-- (default 60 s, tableflip's) is killed and the old process keeps serving.
local core = require "coronet.core"
local context = require "coronet.context"
local errors = require "coronet.errors"
local process = require "coronet.process"
local signal = require "coronet.signal"
local stream = require "coronet.stream"

local M = {}

--- key: the name a listener for (network, address) is handed over under
-- (LISTEN_FDNAMES may not contain ':', so ':' and '%' are escaped).
function M.key(network, address)
    return (network .. "/" .. address):gsub("[%%:]", function(c)
        return string.format("%%%02X", c:byte())
    end)
end

local Upgrader = {}
Upgrader.__index = Upgrader
Upgrader.__name = "coronet.upgrader"

local function fail(why, cause, pid)
    return nil, errors.new{op = "upgrade", msg = cause and ("upgrade: " .. why .. ": " .. tostring(cause))
                                                   or ("upgrade: " .. why), err = cause, pid = pid}
end

--- upgrader: the restart state of this process.
-- `opts`: `ready_timeout` (seconds, default 60), `path`/`args` (the
-- command for the new copy; default this very program, from
-- net.process.self_command()), `env` (added to the copy's environment).
-- Listeners this process inherited from a previous generation are taken
-- from the environment here (net.listeners_from_env()).
-- @treturn upgrader
function M.upgrader(opts)
    opts = opts or {}
    local self = setmetatable({
        ready_timeout = opts.ready_timeout or 60,
        path = opts.path, args = opts.args, env = opts.env or {},
        inherited = {},       -- key -> listener handed to us, not yet claimed
        listeners = {},       -- {key, ln} in hand-over order
        upgrading = false, upgraded = false,
    }, Upgrader)
    local lns = stream.listeners_from_env()
    if lns then
        for i, ln in ipairs(lns) do self.inherited[lns.names[i]] = ln end
    end
    return self
end

--- upgrader:is_child: whether this process was started by an upgrade
-- (it inherited listeners or has a parent waiting for readiness).
function Upgrader:is_child()
    return next(self.inherited) ~= nil or os.getenv(process.READY_ENV) ~= nil
end

--- upgrader:listen: the listener for (network, address): the one the
-- previous generation handed over under this key, or a new one
-- (net.listen with opts). Either way it is handed to the next copy.
-- @treturn[1] listener
-- @treturn[2] nil
-- @treturn[2] error
function Upgrader:listen(network, address, opts)
    local key = M.key(network, address)
    local ln = self.inherited[key]
    if ln then
        self.inherited[key] = nil
    else
        local err
        ln, err = stream.listen(network, address, opts)
        if not ln then return nil, err end
    end
    self:add(ln, key)
    return ln
end

--- upgrader:add: hand `ln` (any listener) to the next copy under `key`.
function Upgrader:add(ln, key)
    self.listeners[#self.listeners + 1] = {key = key, ln = ln}
end

--- upgrader:ready: this copy serves. Tells the parent (which then shuts
-- down) and closes inherited listeners nobody claimed. A no-op for a first
-- generation.
-- @treturn[1] boolean true when a parent was told, false when there is none
-- @treturn[2] nil
-- @treturn[2] error
function Upgrader:ready()
    for k, ln in pairs(self.inherited) do
        ln:close()
        self.inherited[k] = nil
    end
    return process.ready()
end

--- upgrader:upgrade: start the new copy and wait until it is ready.
-- On success this process should shut down gracefully: it owns nothing the
-- copy needs (its unix listeners no longer remove their path on close).
-- @treturn[1] process the new copy (already serving)
-- @treturn[2] nil
-- @treturn[2] error: an upgrade already running or done, the spawn's
-- error, or the copy's failure to become ready (it was killed and
-- reaped; the error's `pid` field names it)
function Upgrader:upgrade()
    if self.upgrading then return fail("another upgrade is in progress") end
    if self.upgraded then return fail("already upgraded") end
    self.upgrading = true
    local path, args = self.path, self.args
    if not path then path, args = process.self_command() end
    local files, names = {}, {}
    for i, e in ipairs(self.listeners) do files[i], names[i] = e.ln, e.key end
    local r, w = core.pipe()
    local env = {}
    for k, v in pairs(self.env) do env[k] = v end
    env[process.READY_ENV] = tostring(3 + #files)
    local child, err = process.spawn{path, args = args or {}, env = env, files = files,
                                     names = names, extra_files = {w}}
    core.close_fd(w)
    if not child then
        core.close_fd(r)
        self.upgrading = false
        return fail("spawn", err)
    end
    local ctx, cancel = context.with_timeout(context.background(), self.ready_timeout)
    local ok
    ok, err = process.wait_ready(r, ctx)
    cancel()
    if not ok then
        child:kill("KILL")
        child:wait()
        self.upgrading = false
        return fail("the new copy did not become ready", err, child.pid)
    end
    for _, e in ipairs(self.listeners) do
        if e.ln.set_unlink_on_close then e.ln:set_unlink_on_close(false) end
    end
    child:close()                 -- it outlives us; never waited for here
    self.upgrading, self.upgraded = false, true
    return child
end

--- upgrader:run: the restart loop of a server that already serves.
-- Says ready (upgrader:ready), then waits for signals: `restart_signal`
-- (default "HUP") upgrades, and on success calls `shutdown("upgrade")`;
-- a failed upgrade is passed to `on_error(err)` (default: stderr) and the
-- server goes on. `stop_signals` (default {"TERM", "INT"}) call
-- `shutdown(name)`. Returns what ended it ("upgrade", "TERM", ...) once
-- shutdown returned, or nil, ctx:err() when ctx ends first.
-- `opts.shutdown` is the hook a server plugs in: close the listeners,
-- let in-flight work finish (net.server's `srv:shutdown(ctx)`).
function Upgrader:run(opts, ctx)
    local shutdown = opts.shutdown or function() end
    local on_error = opts.on_error or function(e)
        io.stderr:write("coronet.restart: ", tostring(e), "\n")
    end
    local restart_sig = opts.restart_signal or "HUP"
    local stops = opts.stop_signals or {"TERM", "INT"}
    local ch = signal.notify(restart_sig, table.unpack(stops))
    local ok, err = self:ready()
    if ok == nil then on_error(err) end
    local why
    while true do
        local sig, _, cerr = ch:recv(ctx)
        if cerr then
            signal.stop(ch)
            return nil, cerr
        end
        if sig == restart_sig then
            local child, uerr = self:upgrade()
            if child then why = "upgrade" break end
            on_error(uerr)
        else
            why = sig
            break
        end
    end
    shutdown(why)                 -- signals stay caught: a second HUP cannot kill the drain
    signal.stop(ch)
    return why
end

return M

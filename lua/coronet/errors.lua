--- coronet.errors: error objects and sentinels (net.errors).
-- Every error has the same shape: `op`, `net`, `source`, `addr`, `code`,
-- `errno`, `timeout` and `err` (the cause it wraps); `tostring` reads like
-- Go's *net.OpError: "read tcp 127.0.0.1:8080->127.0.0.1:51234: i/o timeout".
local core = require "coronet.core"

local M = {}

local Error = {}
Error.__index = Error
Error.__name = "coronet.error"
M.Error = Error

local function render(e)
    if e.msg then return e.msg end
    local parts = {}
    if e.op then parts[#parts + 1] = e.op end
    if e.net then parts[#parts + 1] = e.net end
    if e.source and e.addr then
        parts[#parts + 1] = e.source .. "->" .. e.addr
    elseif e.addr or e.source then
        parts[#parts + 1] = e.addr or e.source
    end
    local head = table.concat(parts, " ")
    local cause = tostring(e.err)
    if e.syscall then cause = e.syscall .. ": " .. cause end
    if head == "" then return cause end
    return head .. ": " .. cause
end
Error.__tostring = render

--- is: whether `err` is `target` or wraps it (errno sentinels match by code).
function M.is(err, target)
    local errno_target = type(target) == "table" and rawget(target, "errno_sentinel")
    while err ~= nil do
        if err == target then return true end
        if type(err) ~= "table" then return false end
        if errno_target and err.code == target.code then return true end
        err = rawget(err, "err")
    end
    return false
end
Error.is = M.is

--- new: an error object from its fields (`op`, `net`, `addr`, `err`, ...);
-- `code` and `timeout` are taken from the cause when not given.
function M.new(fields)
    local cause = fields.err
    if type(cause) == "table" then
        if fields.code == nil then fields.code = cause.code end
        if fields.timeout == nil then fields.timeout = cause.timeout == true end
    end
    if fields.timeout == nil then fields.timeout = false end
    return setmetatable(fields, Error)
end

local function sentinel(code, msg, timeout)
    return setmetatable({code = code, msg = msg, timeout = timeout or false}, Error)
end

M.EOF = sentinel("eof", "EOF")
M.ErrUnexpectedEOF = sentinel("unexpected_eof", "unexpected EOF")
M.ErrClosed = sentinel("closed", "use of closed network connection")
M.ErrDeadlineExceeded = sentinel("timeout", "i/o timeout", true)
M.ErrCanceled = sentinel("canceled", "operation was canceled")
M.ErrFrameTooLarge = sentinel("frame_too_large", "frame too large")
M.ErrBusy = sentinel("busy", "another task is already blocked in this operation on this object")

--- address: a malformed address, like Go's *net.AddrError ("address
-- x: why"); with addr nil, `why` is already the whole message.
function M.address(op, net, addr, why)
    local msg = addr and ("address " .. tostring(addr) .. ": " .. why) or why
    return M.new{op = op, net = net, code = "badaddr",
                 err = setmetatable({code = "badaddr", timeout = false, msg = msg}, Error)}
end

--- unknown_network: Go's "dial nope: unknown network nope".
function M.unknown_network(op, net)
    return M.new{op = op, net = tostring(net), code = "unknown_network",
                 err = sentinel("unknown_network", "unknown network " .. tostring(net))}
end

-- errno sentinels: net.errors.ECONNRESET and friends, made on first use.
local errnos = {}
local function errno_sentinel(name, number, msg)
    local s = errnos[name]
    if not s then
        if not msg then
            local _, m = core.strerror(number)
            msg = m:sub(1, 1):lower() .. m:sub(2)
        end
        s = setmetatable({code = name, errno = number, msg = msg, timeout = name == "ETIMEDOUT",
                          errno_sentinel = true}, Error)
        errnos[name] = s
    end
    return s
end

setmetatable(M, {__index = function(_, k)
    if type(k) == "string" and k:match("^E[A-Z0-9]+$") then
        local n = core.errno(k)
        if n then return errno_sentinel(k, n) end
    end
end})

core.errors_init(Error, {
    closed = M.ErrClosed, timeout = M.ErrDeadlineExceeded, canceled = M.ErrCanceled,
    eof = M.EOF, unexpected_eof = M.ErrUnexpectedEOF, busy = M.ErrBusy,
    badaddr = sentinel("badaddr", "malformed address"),
    errno = errno_sentinel,
})

return M

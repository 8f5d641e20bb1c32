--- coronet.server: a connection server that survives the real world
-- (net.server), modelled on Go's net/http Server minus HTTP: accept loops
-- with EMFILE backoff, connection caps (total and per client IP) refused
-- with an RST, per-phase absolute deadlines against slow loris, a request
-- size cap, optional TLS, handler errors logged with their traceback, and
-- a graceful shutdown that never cuts a request in flight.
--
-- `net.server{...}` is callable because this module's table has a
-- `__call` (net.server loads it lazily, like every submodule).
-- The handler gets the accepted conn itself (a C conn, or a TLS conn):
-- no Lua wrapper stands between it and the syscalls. The server acts only
-- at phase changes (accept, the start of a request, going idle), where it
-- sets the conn's absolute deadlines. See docs/server.md.
local core = require "coronet.core"
local errors = require "coronet.errors"
local sched = require "coronet.sched"
local sync = require "coronet.sync"
local context = require "coronet.context"
local bufio = require "coronet.bufio"

local now = core.now
local go, sleep = sched.go, sched.sleep
local xpcall, pcall, traceback, setmetatable, getmetatable, pairs, type, tostring, error, select =
    xpcall, pcall, debug.traceback, setmetatable, getmetatable, pairs, type, tostring, error, select

local M = {}

--- ErrServerClosed: what `next_request` and `serve` return once the
-- server is shutting down or closed (Go's http.ErrServerClosed).
M.ErrServerClosed = errors.new{code = "server_closed", msg = "coronet: server closed"}

local DEFAULT_MAX_REQUEST = 1 << 20           -- Go's DefaultMaxHeaderBytes
local BACKOFF_MIN, BACKOFF_MAX = 0.005, 1     -- Go's accept backoff
local NEW_GRACE = 5                 -- s a fresh conn may wait at shutdown (Go)

-- Accept errors that mean "out of a resource for now": back off and retry.
local TRANSIENT = {EMFILE = true, ENFILE = true, ENOBUFS = true, ENOMEM = true}
-- Accept errors that concern one aborted conn: retry at once.
local RETRY = {ECONNABORTED = true, EINTR = true, EPROTO = true, EPERM = true}

local Server = {}
Server.__index = Server
Server.__name = "coronet.server"

local Conn = {}                               -- per-conn state handed to handlers
Conn.__index = Conn
Conn.__name = "coronet.server.conn"

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------
local OPTS = {handler = "function", max_conns = "number", max_conns_per_ip = "number",
              first_byte_timeout = "number", read_timeout = "number",
              write_timeout = "number", idle_timeout = "number",
              max_request_bytes = "number", tls = "any", on_error = "function"}

local function positive(v) return v and v > 0 and v or nil end

local function default_on_error(msg)
    io.stderr:write(msg, "\n")
end

--- new(opts) -> server (also `net.server(opts)`): a server that runs
-- `opts.handler(conn, ctx, sc)` in a task of its own for every accepted
-- conn. Options (all optional but handler; a timeout of nil or 0 is none):
-- `max_conns` (open conns; more are refused), `max_conns_per_ip` (per
-- client IPv4 address, or IPv6 /64), `first_byte_timeout` (from accept to
-- the first byte, TLS handshake included; default idle_timeout),
-- `read_timeout` (from a request's first byte: reading it), `write_timeout`
-- (from a request's first byte: the response written), `idle_timeout`
-- (between requests; default read_timeout), `max_request_bytes` (the
-- token cap of `sc:reader()`, default 1 MiB), `tls` (a `net.tls.config`:
-- every conn is wrapped with `net.tls.server`), `on_error(msg, err)` (a
-- logger; default: a line on stderr). Unknown options and wrong types
-- raise.
-- @treturn server
function M.new(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'server' (table expected, got " .. type(opts) .. ")", 2)
    end
    for k, v in pairs(opts) do
        local want = OPTS[k]
        if not want then error("server: unknown option '" .. tostring(k) .. "'", 2) end
        if want ~= "any" and type(v) ~= want then
            error("server: option '" .. k .. "' (" .. want .. " expected, got " .. type(v) .. ")", 2)
        end
    end
    if type(opts.handler) ~= "function" then error("server: option 'handler' is required", 2) end
    local tls
    if opts.tls ~= nil then
        tls = require("coronet").tls
        if not tls then error("server: option 'tls' needs net.tls, which is not available", 2) end
    end
    local read_to = positive(opts.read_timeout)
    local idle_to = positive(opts.idle_timeout) or read_to
    local ctx, cancel = context.with_cancel(context.background())
    return setmetatable({
        handler = opts.handler,
        max_conns = positive(opts.max_conns),
        max_per_ip = positive(opts.max_conns_per_ip),
        first_byte_to = positive(opts.first_byte_timeout) or idle_to,
        read_to = read_to,
        write_to = positive(opts.write_timeout),
        idle_to = idle_to,
        max_request = positive(opts.max_request_bytes) or DEFAULT_MAX_REQUEST,
        tls = tls, tls_cfg = opts.tls,
        on_error = opts.on_error or default_on_error,
        ctx = ctx, cancel = cancel,           -- the ctx every handler gets
        listeners = {},                        -- listener -> true, while served
        conns = {},                            -- sc -> true, while open
        per_ip = {},                           -- ip key -> open conns
        wg = sync.wait_group(),                -- one per running handler
        nconns = 0, nidle = 0,
        accepted = 0, refused_capacity = 0, refused_per_ip = 0, timed_out = 0,
        handler_errors = 0,
        state = "new",                         -- "serving", "shutdown", "closed"
    }, Server)
end

---------------------------------------------------------------------------
-- Per-conn state: request boundaries and deadlines
---------------------------------------------------------------------------
-- Fields: srv, conn, key (per-IP key or nil), idle (bool), first (no
-- request begun yet), rd (bufio reader, lazily), rdl/wdl (the deadlines
-- the server set last, 0: none), counted (timed_out already counted).

local function set_idle(sc, srv)
    if not sc.idle then
        sc.idle = true
        srv.nidle = srv.nidle + 1
    end
end

local function set_active(sc, srv)
    if sc.idle then
        sc.idle = false
        srv.nidle = srv.nidle - 1
    end
end

-- The deadlines of a request starting now: read_timeout bounds reading
-- it, write_timeout writing its response (both from its first byte).
local function arm_request(sc, srv, c)
    local t = now()
    local r, w = srv.read_to, srv.write_to
    local rdl, wdl = r and t + r or 0, w and t + w or 0
    if rdl ~= sc.rdl then
        c:set_read_deadline(rdl > 0 and rdl or nil)
        sc.rdl = rdl
    end
    if wdl ~= sc.wdl then
        c:set_write_deadline(wdl > 0 and wdl or nil)
        sc.wdl = wdl
    end
end

-- Mark sc idle, with the idle (or, before the first request, the
-- first-byte) deadline. During shutdown a conn that has served a request is
-- done (false); a fresh one may still wait for its first (see shutdown).
local function go_idle(sc, srv, c)
    if srv.state ~= "serving" and not sc.fresh then return false end
    set_idle(sc, srv)
    if sc.first then
        sc.first = false                      -- the accept-time first-byte deadline stands
    else
        local i = srv.idle_to
        local rdl = i and now() + i or 0
        if rdl ~= sc.rdl then
            c:set_read_deadline(rdl > 0 and rdl or nil)
            sc.rdl = rdl
        end
    end
    return true
end

--- sc:reader() -> a net.bufio reader over the conn whose tokens
-- (`read_until`, `read_line`, `lines`) are capped at max_request_bytes:
-- a longer one fails with `net.bufio.ErrTooLong` (an HTTP server answers
-- 431). Made once per conn; `next_request` reads through it, so a handler
-- that uses next_request reads the request through this reader too.
function Conn:reader()
    local rd = self.rd
    if not rd then
        local m = self.srv.max_request
        rd = bufio.reader(self.conn, {size = m < 4096 and m or 4096, max_token = m})
        self.rd = rd
    end
    return rd
end

--- sc:next_request() -> true | nil, err: wait, idle, for the first byte
-- of the next request (the first one under first_byte_timeout, later ones
-- under idle_timeout), then mark the conn active (in flight) and arm the
-- request's read and write deadlines. The byte stays in `sc:reader()`.
-- Fails with ErrServerClosed at once while the server shuts down (the
-- conn is finished: keep-alive is off), or with the read's error (EOF,
-- a timeout, ErrClosed when shutdown closed the idle conn).
function Conn:next_request()
    local srv, c = self.srv, self.conn
    if not go_idle(self, srv, c) then return nil, M.ErrServerClosed end
    local rd = self.rd or self:reader()
    if rd:buffered() == 0 then
        local ok, err = rd:peek(1)
        if not ok then
            if err and err.timeout and not self.counted then
                self.counted = true
                srv.timed_out = srv.timed_out + 1
            end
            return nil, err
        end
    end
    self.fresh = false
    set_active(self, srv)
    arm_request(self, srv, c)
    return true
end

--- sc:idle() -> boolean: mark the conn idle (between requests) without
-- reading, for handlers that read the conn themselves; it arms the idle
-- deadline. False while the server shuts down: return from the handler.
-- An idle conn is closed at once by shutdown.
function Conn:idle()
    return go_idle(self, self.srv, self.conn)
end

--- sc:active(): mark the conn active (a request is in flight: shutdown
-- waits for it) and arm the request's read and write deadlines.
function Conn:active()
    local srv = self.srv
    self.first = false
    self.fresh = false
    set_active(self, srv)
    arm_request(self, srv, self.conn)
end

--- sc:closing() -> boolean: whether the server is shutting down, so the
-- response in progress should be the conn's last (HTTP: Connection: close).
function Conn:closing()
    return self.srv.state ~= "serving"
end

function Conn:__tostring()
    return "server conn " .. tostring(self.conn) .. (self.idle and " (idle)" or " (active)")
end

---------------------------------------------------------------------------
-- Accepting
---------------------------------------------------------------------------

-- ip_key(c) -> the per-IP key of c's peer: an IPv4 address (mapped ones
-- unmapped), an IPv6 /64, or nil (unix sockets: not capped per IP).
local function ip_key(c)
    local ra = c:remote_addr()
    local a = ra and ra.ip
    if not a then return nil end
    if a:is_4in6() then a = a:unmap() end
    local b = a:bytes()
    if #b == 16 then return b:sub(1, 8) end
    return b
end

local function refuse(c)
    c:set_linger(0)                           -- RST: no TIME_WAIT, the peer knows at once
    c:close()
end

local function finish(srv, sc)
    local c = sc.conn
    if srv.conns[sc] then
        srv.conns[sc] = nil
        srv.nconns = srv.nconns - 1
        set_active(sc, srv)
        local key = sc.key
        if key then
            local n = srv.per_ip[key] - 1
            srv.per_ip[key] = n > 0 and n or nil
        end
    end
    c:close()
    srv.wg:done()
end

-- The message handler of a handler's xpcall: the traceback, as a string.
local function handler_traceback(e)
    return {err = e, tb = traceback(tostring(e), 2)}
end

-- A timeout the server set has passed: the handler ended on it.
local function timed_out(sc)
    local t = now()
    return (sc.rdl > 0 and sc.rdl <= t) or (sc.wdl > 0 and sc.wdl <= t)
end

-- conn_task: the task of one admitted conn.
local function conn_task(srv, c, sc)
    local ok, e = xpcall(srv.handler, handler_traceback, c, srv.ctx, sc)
    if not ok then
        srv.handler_errors = srv.handler_errors + 1
        local okr, ra = pcall(function() return tostring(c:remote_addr()) end)
        pcall(srv.on_error, "coronet: server: handler for " .. (okr and ra or "?") .. " failed: "
              .. e.tb, e.err)
    elseif not sc.counted and timed_out(sc) then
        srv.timed_out = srv.timed_out + 1
    end
    finish(srv, sc)
end

-- admit(srv, c): refuse c over a cap, or start its handler.
local function admit(srv, c)
    srv.accepted = srv.accepted + 1
    local max = srv.max_conns
    if max and srv.nconns >= max then
        srv.refused_capacity = srv.refused_capacity + 1
        return refuse(c)
    end
    local key
    if srv.max_per_ip then
        key = ip_key(c)
        if key and (srv.per_ip[key] or 0) >= srv.max_per_ip then
            srv.refused_per_ip = srv.refused_per_ip + 1
            return refuse(c)
        end
    end
    local hc = c
    if srv.tls then
        local tc, err = srv.tls.server(c, srv.tls_cfg)
        if not tc then
            c:close()
            pcall(srv.on_error, "coronet: server: tls: " .. tostring(err), err)
            return
        end
        hc = tc
    end
    local fb, t = srv.first_byte_to, now()
    local rdl = fb and t + fb or 0
    if rdl > 0 then hc:set_read_deadline(rdl) end
    local sc = setmetatable({srv = srv, conn = hc, key = key, idle = false, first = true,
                             fresh = true, born = t, rdl = rdl, wdl = 0, counted = false}, Conn)
    if key then srv.per_ip[key] = (srv.per_ip[key] or 0) + 1 end
    srv.conns[sc] = true
    srv.nconns = srv.nconns + 1
    srv.wg:add(1)
    go(conn_task, srv, hc, sc)
end

-- accept_loop(srv, ln) -> nil | err: accept until ln closes (nil) or
-- fails for good (err).
local function accept_loop(srv, ln)
    local backoff = 0
    while true do
        local c, err = ln:accept()
        if c then
            backoff = 0
            admit(srv, c)
        else
            if srv.state ~= "serving" then return nil end
            local code = err.code
            if TRANSIENT[code] then
                backoff = backoff == 0 and BACKOFF_MIN or backoff * 2
                if backoff > BACKOFF_MAX then backoff = BACKOFF_MAX end
                pcall(srv.on_error, string.format("coronet: server: accept: %s; retrying in %g s",
                                                  tostring(err), backoff), err)
                sleep(backoff, srv.ctx)           -- shutdown ends the wait
            elseif not RETRY[code] then
                return err
            end
        end
    end
end

---------------------------------------------------------------------------
-- Serving and stopping
---------------------------------------------------------------------------

local function check_server(s, fname)
    if getmetatable(s) ~= Server then
        error("bad argument #1 to '" .. fname .. "' (server expected, got " .. type(s) .. ")", 3)
    end
end

--- srv:serve(ln, ...) -> true | nil, err: accept on every listener given
-- (anything with `accept([ctx])` and `close()`: listeners, TLS listeners)
-- until shutdown or close (then true; they close the listeners) or until
-- one fails for good (then its error, after closing the others given
-- here; conns already accepted go on). Blocks; run it in a task to do
-- more meanwhile. Several serve calls on one server are fine. On a server
-- already shut down it closes the listeners and returns nil,
-- ErrServerClosed.
function Server:serve(...)
    check_server(self, "serve")
    local n = select("#", ...)
    if n == 0 then error("bad argument #1 to 'serve' (listener expected, got no value)", 2) end
    local lns = {...}
    for i = 1, n do
        local ln = lns[i]
        local t = type(ln)
        if (t ~= "userdata" and t ~= "table") or type(ln.accept) ~= "function" then
            error("bad argument #" .. i .. " to 'serve' (listener expected, got " .. type(ln) .. ")", 2)
        end
    end
    if not sched.current() then return sched.block(Server.serve, self, ...) end
    if self.state == "shutdown" or self.state == "closed" then
        for i = 1, n do lns[i]:close() end
        return nil, M.ErrServerClosed
    end
    self.state = "serving"
    for i = 1, n do self.listeners[lns[i]] = true end
    local fatal
    local function loop(ln)
        local err = accept_loop(self, ln)
        self.listeners[ln] = nil
        if err and not fatal then
            fatal = err
            for i = 1, n do lns[i]:close() end
        end
    end
    local others = {}
    for i = 2, n do others[i] = go(loop, lns[i]) end
    loop(lns[1])
    for i = 2, n do others[i]:wait() end
    if fatal then return nil, fatal end
    return true
end

-- stop_accepting(srv, state): the common start of shutdown and close.
local function stop_accepting(srv, state)
    srv.state = state
    for ln in pairs(srv.listeners) do
        srv.listeners[ln] = nil
        ln:close()
    end
    srv.cancel()
end

--- srv:shutdown([ctx]) -> true | nil, err, n: graceful stop. Closes the
-- listeners, ends the ctx handed to every handler, closes idle conns at
-- once (a conn about to go idle later is told to finish instead:
-- next_request and idle return false; a fresh conn still waiting for its
-- first request gets until 5 s after its accept, and that request is
-- served as its last, as Go's StateNew), and waits for the handlers
-- in flight to return: true when all have. When ctx ends first it
-- force-closes the n conns still open (their handlers' I/O fails with
-- ErrClosed) and returns nil, ctx:err(), n.
function Server:shutdown(ctx)
    check_server(self, "shutdown")
    if not sched.current() then return sched.block(Server.shutdown, self, ctx) end
    if self.state ~= "closed" then stop_accepting(self, "shutdown") end
    for sc in pairs(self.conns) do
        if sc.idle and sc.fresh then
            -- accepted, first request not begun (maybe in flight on the wire,
            -- as during a restart): as Go, it gets until NEW_GRACE after accept
            local d = sc.born + NEW_GRACE
            if sc.rdl > 0 and sc.rdl < d then d = sc.rdl end
            sc.rdl = d
            sc.conn:set_read_deadline(d)
        elseif sc.idle then
            sc.conn:close()
        end
    end
    if self.wg:wait(ctx) then return true end
    local n = 0
    for sc in pairs(self.conns) do
        n = n + 1
        sc.conn:close()
    end
    return nil, ctx:err(), n
end

--- srv:close() -> true | nil, ErrClosed: stop at once: close the
-- listeners, end the handlers' ctx and close every conn (handlers see
-- ErrClosed and return). Does not wait for them; a second close returns
-- nil, ErrClosed.
function Server:close()
    check_server(self, "close")
    if self.state == "closed" then return nil, errors.ErrClosed end
    stop_accepting(self, "closed")
    for sc in pairs(self.conns) do sc.conn:close() end
    return true
end

function Server:__close()
    if self.state ~= "closed" then self:close() end
end

--- srv:stats() -> {active, idle, accepted, refused_capacity,
-- refused_per_ip, timed_out, handler_errors}: active + idle conns are
-- open now (active: a request in flight, or never marked); accepted counts
-- every conn accept returned (the refused ones too); timed_out counts
-- conns whose handler ended on a deadline the server set.
function Server:stats()
    check_server(self, "stats")
    return {active = self.nconns - self.nidle, idle = self.nidle, accepted = self.accepted,
            refused_capacity = self.refused_capacity, refused_per_ip = self.refused_per_ip,
            timed_out = self.timed_out, handler_errors = self.handler_errors}
end

function Server:__tostring()
    return string.format("server (%s, %d conns)", self.state, self.nconns)
end

M.Server, M.Conn = Server, Conn
M._ip_key = ip_key                            -- for the specs
return setmetatable(M, {__call = function(_, opts) return M.new(opts) end})

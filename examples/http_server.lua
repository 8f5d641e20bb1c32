#!/usr/bin/env lua5.4
--- examples/http_server.lua: a small keep-alive HTTP/1.1 server on
-- net.server: a request header cap (431), per-request deadlines,
-- Content-Length bodies, `Connection: close`, and a graceful shutdown.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 examples/http_server.lua [--port 8080] [--host 127.0.0.1] [--prefork N]
-- TERM/INT: graceful shutdown (in-flight requests finish); HUP: zero-downtime
-- restart (net.restart); --prefork N: N worker processes (net.prefork).
-- `--selftest` starts it on :0, checks it with curl and exits (make check).
-- Loaded with `loadfile("examples/http_server.lua")("--library")` it
-- returns its module (`start`, `handler`, `run_command`), as the specs use it.
--
-- Routes: `GET /` (Hello, World!), `POST /echo` (the body back),
-- `GET /slow?ms=N` (answers after N ms: a request in flight), `GET /stats`,
-- `GET /pid` (the process that answered).
local net = require "coronet"

local M = {}

local STATUS = {
    [200] = "OK", [400] = "Bad Request", [404] = "Not Found", [405] = "Method Not Allowed",
    [413] = "Content Too Large", [431] = "Request Header Fields Too Large",
    [501] = "Not Implemented", [505] = "HTTP Version Not Supported",
}

M.defaults = {
    first_byte_timeout = 5,    -- accept -> first byte of the first request
    read_timeout = 10,         -- first byte -> whole request read (header and body)
    write_timeout = 20,        -- first byte -> response written
    idle_timeout = 30,         -- between keep-alive requests
    max_request_bytes = 8192,  -- the request line and header; more gets 431
    max_body_bytes = 1 << 20,  -- a Content-Length over this gets 413
}

---------------------------------------------------------------------------
-- HTTP/1.1 framing
---------------------------------------------------------------------------

-- parse_head(head) -> req | nil: the request line and header fields of
-- `head` (which ends with CRLF CRLF); field names lowercased.
local function parse_head(head)
    local method, target, major, minor = head:match("^(%u+) (%S+) HTTP/(%d)%.(%d)\r\n")
    if not method then return nil end
    local req = {method = method, target = target, version = major .. "." .. minor, headers = {}}
    local pos = head:find("\r\n", 1, true) + 2
    while pos < #head - 1 do
        local e = head:find("\r\n", pos, true)
        local name, value = head:sub(pos, e - 1):match("^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
        if not name then return nil end
        name = name:lower()
        local old = req.headers[name]
        req.headers[name] = old and (old .. ", " .. value) or value
        pos = e + 2
    end
    local conn = (req.headers.connection or ""):lower()
    if req.version == "1.0" then
        req.close = not conn:find("keep-alive", 1, true)
    else
        req.close = conn:find("close", 1, true) ~= nil
    end
    return req
end
M.parse_head = parse_head

-- respond(c, status, body, close [, ctype]) -> true | nil, err: one
-- whole response in one write (the write deadline the server armed for
-- this request bounds it).
local function respond(c, status, body, close, ctype)
    return c:write(string.format("HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: %s\r\n%s\r\n%s",
        status, STATUS[status], #body, ctype or "text/plain", close and "Connection: close\r\n" or "",
        body))
end

-- fail(c, status, msg): an error response, then a lingering close (as
-- Go and nginx do): half-close and drain what the client still sends for
-- a moment, so that our close does not reset the conn before the client
-- has read the response.
local function fail(c, status, msg)
    if respond(c, status, msg, true) then
        c:close_write()
        c:set_read_deadline(net.now() + 1)
        local left = 1 << 20
        while left > 0 do
            local d = c:read(65536)
            if not d then break end
            left = left - #d
        end
    end
end

-- route(app, req, body) -> status, body
local function route(app, req, body)
    local path, query = req.target:match("^([^?]*)%??(.*)$")
    if path == "/" and (req.method == "GET" or req.method == "HEAD") then
        return 200, "Hello, World!"
    elseif path == "/echo" then
        if req.method ~= "POST" then return 405, "POST only\n" end
        return 200, body
    elseif path == "/slow" then
        -- no ctx: a request in flight is finished even during shutdown
        net.sleep((tonumber(query:match("ms=(%d+)")) or 100) / 1000)
        return 200, "slow\n"
    elseif path == "/pid" then                 -- which process answered (restart, prefork)
        return 200, tostring(net.process.getpid())
    elseif path == "/stats" then
        local s, out = app.srv:stats(), {}
        for k, v in pairs(s) do out[#out + 1] = string.format("%q:%d", k, v) end
        table.sort(out)
        return 200, "{" .. table.concat(out, ",") .. "}\n"
    end
    return 404, "not found\n"
end

-- handler(app) -> the net.server handler: one keep-alive conn. Request
-- boundaries come from sc:next_request() (idle until the next request's
-- first byte, then active with the request's deadlines armed); during a
-- shutdown next_request fails at once and the response in progress gets
-- `Connection: close`.
function M.handler(app)
    local max_body = app.max_body_bytes
    return function(c, _ctx, sc)
        local rd = sc:reader()                -- tokens capped at max_request_bytes
        while sc:next_request() do
            local head, err = rd:read_until("\r\n\r\n")
            if not head then
                if err == net.bufio.ErrTooLong then fail(c, 431, "request header too large\n") end
                return                           -- EOF, timeout, reset: nothing to answer
            end
            local req = parse_head(head)
            if not req then return fail(c, 400, "bad request\n") end
            if req.version ~= "1.1" and req.version ~= "1.0" then
                return fail(c, 505, "HTTP/1.x only\n")
            end
            local h, body = req.headers, ""
            if h["transfer-encoding"] then return fail(c, 501, "chunked bodies are not supported\n") end
            local cl = h["content-length"]
            if cl then
                local n = cl:match("^%d+$") and tonumber(cl)
                if not n then return fail(c, 400, "bad Content-Length\n") end
                if n > max_body then return fail(c, 413, "body too large\n") end
                if n > 0 then
                    body = rd:read_full(n)  -- bounded by the request's read deadline
                    if not body then return end
                end
            end
            local status, out = route(app, req, body)
            local close = req.close or sc:closing()
            if req.method == "HEAD" then out = "" end
            if not respond(c, status, out, close) or close then return end
        end
    end
end

---------------------------------------------------------------------------
-- Starting and stopping
---------------------------------------------------------------------------

--- start([opts]) -> app: listen on opts.host:opts.port (127.0.0.1:0) and
-- serve in a task; opts override M.defaults (and may add on_error,
-- max_conns, max_conns_per_ip). app: srv, ln, url, `shutdown([timeout])`
-- -> srv:shutdown's results (graceful; 10 s by default), `wait()` -> serve's
-- results.
function M.start(opts)
    opts = opts or {}
    local app = {}
    for k, v in pairs(M.defaults) do app[k] = v end
    for k, v in pairs(opts) do app[k] = v end
    app.srv = net.server{
        handler = M.handler(app),
        first_byte_timeout = app.first_byte_timeout, read_timeout = app.read_timeout,
        write_timeout = app.write_timeout, idle_timeout = app.idle_timeout,
        max_request_bytes = app.max_request_bytes, max_conns = app.max_conns,
        max_conns_per_ip = app.max_conns_per_ip, on_error = app.on_error, tls = app.tls,
    }
    local host = app.host or "127.0.0.1"
    app.ln = app.ln or assert(net.listen("tcp", net.join_host_port(host, tostring(app.port or 0)),
                                         {backlog = 1024}))
    app.url = "http://" .. tostring(app.ln:addr()) .. "/"
    app.task = net.go(function() return app.srv:serve(app.ln) end)
    function app.shutdown(timeout)
        local ctx = net.context.with_timeout(net.context.background(), timeout or 10)
        return app.srv:shutdown(ctx)
    end
    function app.wait() return app.task:wait() end
    return app
end

--- run_command(cmd) -> output, exit code: run a shell command without
-- blocking the loop (other tasks, the server among them, go on): its
-- output (stderr too) comes back over a loopback socket; the shell is
-- reaped before this returns; `timeout 90` bounds it (exit 124). The
-- command runs without LD_PRELOAD (a sanitizer run preloads libasan,
-- under which curl hangs); it is kept in $CORONET_LD_PRELOAD for a
-- command that needs it back.
function M.run_command(cmd)
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    ln:set_deadline(net.now() + 120)
    local p = assert(io.popen(string.format(
        "export CORONET_LD_PRELOAD=\"${LD_PRELOAD:-}\"; unset LD_PRELOAD; "
        .. "{ timeout 90 sh -c %s ; echo \"[exit $?]\"; } 2>&1 </dev/null | socat -u - TCP:127.0.0.1:%d",
        "'" .. cmd:gsub("'", "'\\''") .. "'", ln:addr().port)))
    local c = ln:accept()
    ln:close()
    local out = {}
    while c do
        local d = c:read(65536)
        if not d then break end
        out[#out + 1] = d
    end
    if c then c:close() end
    p:close()
    local s = table.concat(out)
    local code = tonumber(s:match("%[exit (%d+)%]%s*$"))
    return (s:gsub("%[exit %d+%]%s*$", "")), code
end

---------------------------------------------------------------------------
-- Command line
---------------------------------------------------------------------------
local args = {...}
if args[1] == "--library" then return M end

local function selftest()
    local app = M.start{}
    local url = app.url
    local out = M.run_command("curl -sS -v " .. url .. " " .. url .. " --next -d hi " .. url .. "echo")
    assert(select(2, out:gsub("Hello, World!", "")) == 2, out)
    assert(out:find("\nhi", 1, true), out)
    assert(out:find("Re-using existing connection", 1, true) or out:find("Reusing existing connection", 1, true), out)
    local big = string.rep("x", app.max_request_bytes)
    out = M.run_command("curl -sS -o /dev/null -w '%{http_code}' -H 'X-Big: " .. big .. "' " .. url)
    assert(out:find("431", 1, true), out)
    assert(app.srv:stats().accepted == 2, "curl reused one conn for three requests")
    assert(app.shutdown(5) == true)
    assert(app.wait() == true)
    print("selftest ok")
end

local opt = {}
local i = 1
while i <= #args do
    local a = args[i]
    if a == "--selftest" then opt.selftest = true
    elseif a == "--port" or a == "--host" or a == "--prefork" then
        opt[a:sub(3)] = assert(args[i + 1], a .. " needs a value")
        i = i + 1
    else
        error("usage: http_server.lua [--port N] [--host H] [--prefork N] [--selftest]")
    end
    i = i + 1
end

if opt.selftest then return net.run(selftest) end

-- --prefork N: N worker processes share the listening socket (one
-- inherited fd: see docs/process.md for why not SO_REUSEPORT); the
-- supervisor replaces a worker that dies and forwards TERM/INT, on which
-- each worker drains its in-flight requests.
local address = net.join_host_port(opt.host or "127.0.0.1", opt.port or "8080")
if opt.prefork then
    return net.prefork{workers = assert(math.tointeger(tonumber(opt.prefork)), "--prefork N"),
                       addresses = {address}, serve = function(lns, ctx)
        local app = M.start{ln = lns[1]}
        net.go(function()
            ctx:done():recv()                       -- TERM/INT, forwarded by the supervisor
            app.shutdown(10)
        end)
        assert(app.wait())
    end}
end

-- One process: TERM/INT drain in-flight requests and exit; HUP restarts
-- with no downtime (the same listening socket goes to a new copy of this
-- program, which says when it serves; then this one drains and exits).
net.run(function()
    local up = net.restart.upgrader()
    local app = M.start{ln = assert(up:listen("tcp", address))}
    print("listening on " .. app.url .. " (pid " .. net.process.getpid() .. ")")
    local why = up:run{shutdown = function() app.shutdown(10) end}
    assert(app.wait())
    io.stderr:write("http_server: ", tostring(why), ": drained, exiting\n")
end)

--- spec/server_spec.lua: net.server against real peers and faults: curl
-- keep-alive, slowhttptest (slow loris, slow body), graceful shutdown
-- under load, a stuck handler, caps refused with RST (total, per IP via
-- several 127.0.0.x sources), a raising handler, EMFILE in a child under
-- `ulimit -n 64` (backoff without burning CPU, then recovery), and TLS.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local fmt = string.format
local app_mod = loadfile("examples/http_server.lua")("--library")
local sh = app_mod.run_command                -- a shell command that doesn't block the loop

local function bg() return net.context.background() end
local function timeout_ctx(s) return (net.context.with_timeout(bg(), s)) end

-- wait_until(pred, s): wait (bounded by s seconds) for pred() to hold;
-- returns whether it did. The pred is re-checked every loop turn or ms.
local function wait_until(pred, s)
    local limit = net.now() + (s or 5)
    while not pred() do
        if net.now() > limit then return false end
        net.sleep(0.001)
    end
    return true
end

-- roundtrip(c, rd, req) -> status, head, body | nil, "none"|"partial", err:
-- one HTTP request and its whole response (Content-Length framed).
-- "none": no byte of a response came; "partial": some did, not all.
local function roundtrip(c, rd, req)
    local ok, err = c:write(req)
    if not ok then return nil, "none", err end
    local head, herr, part = rd:read_until("\r\n\r\n")
    if not head then return nil, (part and #part > 0) and "partial" or "none", herr end
    local status = tonumber(head:match("^HTTP/1%.1 (%d+)"))
    local n = tonumber(head:match("\r\nContent%-Length: (%d+)\r\n"))
    if not status or not n then return nil, "partial", "bad head " .. head end
    local body, berr = rd:read_full(n)
    if not body then return nil, "partial", berr end
    return status, head, body
end

local GET = "GET %s HTTP/1.1\r\nHost: t\r\n\r\n"

-- A line server: each request is one line, answered "ok <line>".
local function line_handler(c, _ctx, sc)
    local rd = sc:reader()
    while sc:next_request() do
        local line = rd:read_line()
        if not line then return end
        if not c:write("ok " .. line .. "\n") then return end
    end
end

-- ask(c, rd, line) -> the reply line | nil, err
local function ask(c, rd, line)
    local ok, err = c:write(line .. "\n")
    if not ok then return nil, err end
    return rd:read_line()
end

local function serve(defer, opts, ...)
    local srv = defer(net.server(opts))
    local lns = {...}
    if #lns == 0 then lns[1] = defer(assert(net.listen("tcp", "127.0.0.1:0"))) end
    local t = net.go(function() return srv:serve(table.unpack(lns)) end)
    return srv, lns[1], t
end

local WD = {seconds = 40, unstick = function() end}

TestServer = {}

function TestServer:test_callable_options_and_misuse()
    lu.assertEquals(type(net.server), "table")
    lu.assertErrorMsgContains("option 'handler' is required", net.server, {})
    lu.assertErrorMsgContains("unknown option 'nope'", net.server, {handler = print, nope = 1})
    lu.assertErrorMsgContains("option 'max_conns' (number expected",
                              net.server, {handler = print, max_conns = "2"})
    if not net.tls then
        lu.assertErrorMsgContains("needs net.tls", net.server, {handler = print, tls = {}})
    end
    H.run(function()
        local srv = net.server{handler = print}
        lu.assertErrorMsgContains("listener expected", srv.serve, srv)
        lu.assertErrorMsgContains("listener expected", srv.serve, srv, 42)
        lu.assertTrue(srv:close())
        H.assert_err(srv:close())
        -- serve on a closed server closes its listener and says so
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local ok, err = srv:serve(ln)
        lu.assertNil(ok)
        lu.assertIs(err, net.server.ErrServerClosed)
        H.assert_err(ln:accept())
    end)
end

function TestServer:test_requests_several_listeners_and_shutdown_returns_serve()
    H.test(function(defer)
        local ln1 = defer(assert(net.listen("tcp", "127.0.0.1:0")))
        local ln2 = defer(assert(net.listen("unix", "@coronet-srv-" .. math.random(1 << 30))))
        local srv, _, t = serve(defer, {handler = line_handler}, ln1, ln2)
        for _, ln in ipairs{ln1, ln2} do
            local c = defer(assert(net.dial(ln == ln1 and "tcp" or "unix", tostring(ln:addr()))))
            local rd = net.bufio.reader(c)
            lu.assertEquals(ask(c, rd, "a"), "ok a")
            lu.assertEquals(ask(c, rd, "b"), "ok b")
            c:close()
        end
        lu.assertTrue(wait_until(function() return srv:stats().active + srv:stats().idle == 0 end))
        local s = srv:stats()
        lu.assertEquals(s.accepted, 2)
        lu.assertTrue(srv:shutdown(timeout_ctx(5)))
        lu.assertEquals({t:wait()}, {true})
        H.assert_err(ln1:accept())
        H.assert_err(ln2:accept())
    end, WD)()
end

function TestServer:test_fatal_listener_error_ends_serve_and_close_is_immediate()
    H.test(function(defer)
        local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
        local bad = {closed = false}
        function bad.accept() return nil, net.errors.new{op = "accept", code = "EBADF", msg = "bad fd"} end
        function bad.close() bad.closed = true return true end
        local srv = defer(net.server{handler = line_handler})
        local t = net.go(function() return srv:serve(ln, bad) end)
        local ok, err = t:wait()
        lu.assertNil(ok)
        lu.assertEquals(err.code, "EBADF")
        H.assert_err(ln:accept())              -- the other listener was closed too
        -- close: every conn at once, active or not; the server is to-be-closed
        local ln2 = defer(assert(net.listen("tcp", "127.0.0.1:0")))
        local srv2 = net.server{handler = function(c, _, sc) sc:active() c:read(1) end}
        local t2 = net.go(function() return srv2:serve(ln2) end)
        local c = defer(assert(net.dial("tcp", tostring(ln2:addr()))))
        lu.assertTrue(wait_until(function() return srv2:stats().active == 1 end))
        do local _ <close> = srv2 end
        c:set_read_deadline(net.now() + 5)
        lu.assertIs(select(2, c:read(1)), net.EOF)
        lu.assertEquals({t2:wait()}, {true})
        H.assert_err(srv2:close())
    end, WD)()
end

function TestServer:test_curl_keepalive_reuses_one_conn()
    H.test(function(defer)
        local app = app_mod.start{}
        defer(app.srv)
        local u = app.url
        local out, code = sh(fmt("curl -sS -v %s %s %s --next -d hello %secho", u, u, u, u))
        lu.assertEquals(code, 0, out)
        lu.assertEquals(select(2, out:gsub("Hello, World!", "")), 3, out)
        lu.assertStrContains(out, "\nhello")
        lu.assertEquals(select(2, out:gsub("Re%-using existing connection", "")), 3, out)
        lu.assertEquals(app.srv:stats().accepted, 1, "four requests over one conn")
        -- Connection: close is honoured: the response says so and the conn ends
        out = sh(fmt("curl -sS -v -H 'Connection: close' %s %s", u, u))
        lu.assertEquals(select(2, out:gsub("< Connection: close", "")), 2, out)
        lu.assertEquals(app.srv:stats().accepted, 3)
        lu.assertTrue(app.shutdown(5))
        lu.assertTrue(app.wait())
    end, WD)()
end

function TestServer:test_http_example_limits()
    H.test(function(defer)
        local app = app_mod.start{max_request_bytes = 1024, max_body_bytes = 10}
        defer(app.srv)
        local c = defer(assert(net.dial("tcp", tostring(app.ln:addr()))))
        local rd = net.bufio.reader(c)
        lu.assertEquals(roundtrip(c, rd, fmt(GET, "/")), 200)
        lu.assertEquals(roundtrip(c, rd, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"), 200)
        local st, _, body = roundtrip(c, rd, "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\n")
        lu.assertEquals({st, body}, {413, "body too large\n"})
        c = defer(assert(net.dial("tcp", tostring(app.ln:addr()))))
        rd = net.bufio.reader(c)
        st = roundtrip(c, rd, "GET / HTTP/1.1\r\nX: " .. string.rep("y", 2000) .. "\r\n\r\n")
        lu.assertEquals(st, 431)
        H.assert_err(rd:read(1))              -- and the conn is closed after it
        lu.assertTrue(app.shutdown(5))
    end, WD)()
end

function TestServer:test_first_byte_and_idle_timeouts_cut_and_count()
    H.test(function(defer)
        local srv, ln = serve(defer, {handler = line_handler, first_byte_timeout = 0.2,
                                      idle_timeout = 0.3, read_timeout = 5})
        local addr = tostring(ln:addr())
        local silent = defer(assert(net.dial("tcp", addr)))
        local talker = defer(assert(net.dial("tcp", addr)))
        local rd = net.bufio.reader(talker)
        lu.assertEquals(ask(talker, rd, "x"), "ok x")
        silent:set_read_deadline(net.now() + 10)
        local d, err = silent:read(1)            -- the first-byte deadline cut it
        lu.assertNil(d)
        lu.assertTrue(err == net.EOF or err.code == "ECONNRESET", tostring(err))
        talker:set_read_deadline(net.now() + 10)
        d = rd:read(1)                           -- the idle deadline cut it
        lu.assertNil(d)
        lu.assertTrue(wait_until(function() return srv:stats().timed_out == 2 end),
                      "timed_out = " .. srv:stats().timed_out)
        lu.assertTrue(srv:shutdown(timeout_ctx(5)))
    end, WD)()
end

function TestServer:test_raising_handler_is_logged_and_server_goes_on()
    H.test(function(defer)
        local logs = {}
        local srv, ln = serve(defer, {
            handler = function(c, _, sc)
                local rd = sc:reader()
                while sc:next_request() do
                    local line = rd:read_line()
                    if line == "boom" then error("handler exploded") end
                    if not line or not c:write("ok\n") then return end
                end
            end,
            on_error = function(msg) logs[#logs + 1] = msg end})
        local c = defer(assert(net.dial("tcp", tostring(ln:addr()))))
        local rd = net.bufio.reader(c)
        lu.assertEquals(ask(c, rd, "hi"), "ok")
        c:write("boom\n")
        local d, err = rd:read_line()            -- its conn was closed
        lu.assertNil(d)
        lu.assertNotNil(err)
        lu.assertEquals(#logs, 1)
        lu.assertStrContains(logs[1], "handler exploded")
        lu.assertStrContains(logs[1], "stack traceback")
        lu.assertStrContains(logs[1], "server_spec.lua")
        lu.assertStrContains(logs[1], "127.0.0.1:")
        local c2 = defer(assert(net.dial("tcp", tostring(ln:addr()))))
        lu.assertEquals(ask(c2, net.bufio.reader(c2), "again"), "ok")
        lu.assertEquals(srv:stats().handler_errors, 1)
        lu.assertTrue(srv:shutdown(timeout_ctx(5)))
    end, WD)()
end

-- refused(c) -> whether c was refused with a reset (a peer read sees ECONNRESET)
local function read_reset(c)
    c:set_read_deadline(net.now() + 10)
    c:write("x\n")
    local d, err = c:read(100)
    return d == nil and err and err.code == "ECONNRESET", err
end

function TestServer:test_max_conns_refusal_is_an_rst()
    H.test(function(defer)
        local srv, ln = serve(defer, {handler = line_handler, max_conns = 2})
        local addr = tostring(ln:addr())
        local held = {}
        for i = 1, 2 do
            held[i] = defer(assert(net.dial("tcp", addr)))
            lu.assertEquals(ask(held[i], net.bufio.reader(held[i]), "h"), "ok h")
        end
        local extra = defer(assert(net.dial("tcp", addr)))
        local reset, err = read_reset(extra)
        lu.assertTrue(reset, tostring(err))
        lu.assertEquals(srv:stats().refused_capacity, 1)
        held[1]:close()
        lu.assertTrue(wait_until(function() return srv:stats().active + srv:stats().idle == 1 end))
        local again = defer(assert(net.dial("tcp", addr)))
        lu.assertEquals(ask(again, net.bufio.reader(again), "y"), "ok y")
        lu.assertEquals(srv:stats().refused_capacity, 1)
        lu.assertTrue(srv:shutdown(timeout_ctx(5)))
    end, WD)()
end

function TestServer:test_per_ip_cap_with_several_sources()
    H.test(function(defer)
        local srv, ln = serve(defer, {handler = line_handler, max_conns_per_ip = 2})
        local addr = tostring(ln:addr())
        local function from(src)
            return defer(assert(net.dial("tcp", addr, {local_addr = src .. ":0"})))
        end
        for _, src in ipairs{"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4"} do
            local c = from(src)
            lu.assertEquals(ask(c, net.bufio.reader(c), src), "ok " .. src)
        end
        for _, src in ipairs{"127.0.0.2", "127.0.0.3"} do
            local reset, err = read_reset(from(src))
            lu.assertTrue(reset, src .. ": " .. tostring(err))
        end
        local c = from("127.0.0.4")               -- its second: still under the cap
        lu.assertEquals(ask(c, net.bufio.reader(c), "four"), "ok four")
        local s = srv:stats()
        lu.assertEquals(s.refused_per_ip, 2)
        lu.assertEquals(s.refused_capacity, 0)
        lu.assertEquals(s.active + s.idle, 6)
        lu.assertTrue(srv:shutdown(timeout_ctx(5)))
    end, WD)()
end

function TestServer:test_ip_key_unmaps_v4_and_keys_v6_by_64()
    local key = net.server._ip_key
    local function conn(ip)
        return {remote_addr = function() return {ip = assert(net.ip.parse(ip))} end}
    end
    lu.assertEquals(key(conn("::ffff:127.0.0.2")), key(conn("127.0.0.2")))
    lu.assertNotEquals(key(conn("127.0.0.2")), key(conn("127.0.0.3")))
    lu.assertEquals(key(conn("2001:db8:1:2::1")), key(conn("2001:db8:1:2:ffff::9")))
    lu.assertNotEquals(key(conn("2001:db8:1:2::1")), key(conn("2001:db8:1:3::1")))
    lu.assertNil(key({remote_addr = function() return {network = "unix", name = "@x"} end}))
end

function TestServer:test_shutdown_closes_idle_at_once_and_finishes_in_flight()
    H.test(function(defer)
        local app = app_mod.start{}
        defer(app.srv)
        local addr = tostring(app.ln:addr())
        local idle = defer(assert(net.dial("tcp", addr)))
        local irbehind = net.bufio.reader(idle)
        lu.assertEquals(roundtrip(idle, irbehind, fmt(GET, "/")), 200)
        local busy = defer(assert(net.dial("tcp", addr)))
        local brd = net.bufio.reader(busy)
        local slow = H.spawn(roundtrip, busy, brd, fmt(GET, "/slow?ms=300"))
        lu.assertTrue(wait_until(function()
            local s = app.srv:stats()
            return s.active == 1 and s.idle == 1
        end))
        local sd = H.spawn(app.shutdown, 10)
        idle:set_read_deadline(net.now() + 5)
        local d, err = irbehind:read(1)          -- closed at once, long before /slow ends
        lu.assertNil(d)
        lu.assertIs(err, net.EOF)
        lu.assertFalse(slow:is_done())
        local st, head, body = H.join(slow)
        lu.assertEquals({st, body}, {200, "slow\n"})
        lu.assertStrContains(head, "Connection: close")  -- keep-alive is off during shutdown
        lu.assertEquals({H.join(sd)}, {true})
        H.assert_err(net.dial("tcp", addr))       -- refused at connect
    end, WD)()
end

function TestServer:test_shutdown_with_a_stuck_handler_force_closes()
    H.test(function(defer)
        local srv, ln = serve(defer, {handler = function(c, _, sc)
            sc:active()
            c:read(10)                            -- ignores ctx; nothing arrives
        end})
        local c1 = defer(assert(net.dial("tcp", tostring(ln:addr()))))
        local c2 = defer(assert(net.dial("tcp", tostring(ln:addr()))))
        lu.assertTrue(wait_until(function() return srv:stats().active == 2 end))
        local ok, err, n = srv:shutdown(timeout_ctx(0.2))
        lu.assertNil(ok)
        lu.assertIs(err, net.ErrDeadlineExceeded)
        lu.assertEquals(n, 2)
        for _, c in ipairs{c1, c2} do
            c:set_read_deadline(net.now() + 5)
            lu.assertIs(select(2, c:read(1)), net.EOF)
        end
        lu.assertTrue(wait_until(function() return srv:stats().active == 0 end))
    end, WD)()
end

-- Many keep-alive clients while shutdown runs: no request is cut mid
-- response; each got its whole response, or found the listener closed
-- (refused at connect, or reset while still in the accept queue), or,
-- sent on a conn the server closed as idle, got no byte at all (the
-- client retries it on a new conn, as HTTP/1.1 clients do).
function TestServer:test_graceful_shutdown_under_load()
    H.test(function(defer)
        local app = app_mod.start{}
        defer(app.srv)
        local addr = tostring(app.ln:addr())
        local counts = {full = 0, partial = 0, refused = 0, idle_closed = 0, closes = 0}
        local bad = {}
        local started = net.chan(1)
        local stop_at = 300
        local function client(i)
            while true do
                local c = net.dial("tcp", addr)
                if not c then counts.refused = counts.refused + 1 return end
                local rd, served = net.bufio.reader(c), 0
                while true do
                    local st, head, body = roundtrip(c, rd, fmt(GET, "/slow?ms=" .. (i % 5 + 1)))
                    if st then
                        if st ~= 200 or body ~= "slow\n" then bad[#bad + 1] = head end
                        served = served + 1
                        counts.full = counts.full + 1
                        if counts.full == stop_at then started:send(true) end
                        if head:find("Connection: close", 1, true) then
                            counts.closes = counts.closes + 1
                            break
                        end
                    elseif head == "partial" then
                        counts.partial = counts.partial + 1
                        bad[#bad + 1] = tostring(body)
                        break
                    elseif served > 0 then
                        counts.idle_closed = counts.idle_closed + 1  -- retry on a new conn
                        break
                    else
                        counts.refused = counts.refused + 1       -- never accepted
                        c:close()
                        return
                    end
                end
                c:close()
            end
        end
        local ts = {}
        for i = 1, 40 do ts[i] = net.go(client, i) end
        lu.assertTrue(started:recv(timeout_ctx(20)))
        -- and one long request, surely in flight when shutdown begins
        local lc = defer(assert(net.dial("tcp", addr)))
        local long = H.spawn(roundtrip, lc, net.bufio.reader(lc), fmt(GET, "/slow?ms=300"))
        local me = tostring(lc:local_addr())
        lu.assertTrue(wait_until(function()     -- the server has its request (white box)
            for sc in pairs(app.srv.conns) do
                if tostring(sc.conn:remote_addr()) == me and not sc.idle and not sc.first then
                    return true
                end
            end
        end))
        local in_flight = app.srv:stats().active
        local ok, err = app.shutdown(10)
        lu.assertTrue(ok, tostring(err))
        for _, t in ipairs(ts) do t:wait() end
        local lst, lhead, lbody = H.join(long)
        lu.assertEquals({lst, lbody}, {200, "slow\n"}, tostring(lhead))
        lu.assertStrContains(lhead, "Connection: close")
        lu.assertEquals(counts.partial, 0, table.concat(bad, "\n"))
        lu.assertEquals(#bad, 0, table.concat(bad, "\n"))
        lu.assertTrue(counts.full >= stop_at)
        lu.assertTrue(in_flight > 0, "requests were in flight when shutdown began")
        lu.assertTrue(counts.closes > 0, "in-flight requests finished with Connection: close")
        lu.assertEquals(counts.refused, 40, "every client ended refused at connect")
        lu.assertEquals(app.srv:stats().handler_errors, 0)
        print(fmt("\n  shutdown under load: %d full responses, %d in flight at shutdown, "
                  .. "%d finished with Connection: close, %d idle conns closed, %d refused, 0 cut",
                  counts.full, in_flight, counts.closes, counts.idle_closed, counts.refused))
    end, WD)()
end

-- slowhttptest in slow-headers (-H) and slow-body (-B) modes at once
-- (200 conns each at 50/s; -l 15 bounds it, but it ends sooner with "No
-- open connections left" once the server has cut them all), while curl
-- goes on being answered: the server cuts the slow conns with its
-- first-byte/read deadlines.
function TestServer:test_slowhttptest_slowloris_and_slow_body()
    if os.execute("command -v slowhttptest >/dev/null") ~= true then
        print("\n  skipped: slowhttptest is not installed")
        return
    end
    H.test(function(defer)
        local app = app_mod.start{first_byte_timeout = 1, read_timeout = 1.5, idle_timeout = 2,
                                  max_conns = 400}
        defer(app.srv)
        local dir = H.tmpdir()
        defer(function() H.rm(dir) end)
        local C = 200                             -- slow conns per mode, opened at 50/s
        local function attack(mode)
            return H.spawn(sh, fmt("timeout 40 slowhttptest %s -c %d -r 50 -i 1 -x 10 -l 15 -p 3 "
                .. "-s 8192 -u %s -g -o %s/%s", mode, C, app.url, dir, mode:sub(2)))
        end
        local h, b = attack("-H"), attack("-B")
        local answered, asked = 0, 0
        local prober = H.spawn(function()
            while not (h:is_done() and b:is_done()) do
                asked = asked + 1
                local out = sh("curl -sS -m 5 -o /dev/null -w '%{http_code}' " .. app.url)
                if out:find("200", 1, true) then answered = answered + 1 end
                net.sleep(0.5)                  -- pacing, not synchronisation
            end
        end)
        local hout, hcode = H.join(h)
        local bout, bcode = H.join(b)
        H.join(prober)
        lu.assertEquals(hcode, 0, hout)
        lu.assertEquals(bcode, 0, bout)
        lu.assertStrContains(hout, "No open connections left")   -- all cut before -l ran out
        lu.assertStrContains(bout, "No open connections left")
        lu.assertTrue(asked >= 5)
        lu.assertEquals(answered, asked, "every normal request was answered during the attack")
        local s = app.srv:stats()
        lu.assertTrue(s.timed_out >= 2 * C * 0.9, "slow conns cut by deadlines: " .. s.timed_out)
        for _, mode in ipairs{"H", "B"} do
            local f = assert(io.open(dir .. "/" .. mode .. ".csv"), mode .. ".csv")
            local max_closed = 0
            for line in f:lines() do
                local closed = tonumber(line:match("^%d+,(%d+),"))
                if closed and closed > max_closed then max_closed = closed end
            end
            f:close()
            lu.assertTrue(max_closed >= C / 2, mode .. ": slowhttptest saw its conns closed: "
                          .. max_closed)
            print(fmt("\n  slowhttptest -%s: up to %d conns closed by the server", mode, max_closed))
        end
        print(fmt("  timed_out = %d, curl answered %d/%d", s.timed_out, answered, asked))
        lu.assertTrue(app.shutdown(5))
    end, {seconds = 60, unstick = function() end})()
end

-- The EMFILE child: a net.server under `ulimit -n 64` whose handlers hold
-- their conns until the client closes. It reports on a control conn:
-- "ready PORT PID", every on_error line, and "done ACCEPTED" at the end.
local EMFILE_CHILD = [[
local net = require "coronet"
net.run(function()
    local ctl = assert(net.dial("tcp", "127.0.0.1:" .. arg[1]))
    local srv = net.server{
        handler = function(c)
            if c:read(5) then c:write("pong\n") end
            c:read(16)
        end,
        on_error = function(msg) ctl:write("log " .. msg:gsub("\n", " ") .. "\n") end,
    }
    local ln = assert(net.listen("tcp", "127.0.0.1:0", {backlog = 512}))
    ctl:write(string.format("ready %d %d\n", ln:addr().port, require("coronet.core").getpid()))
    net.go(function()
        ctl:read(1)                              -- EOF: the parent is done
        srv:shutdown(net.context.with_timeout(net.context.background(), 5))
    end)
    assert(srv:serve(ln))
    ctl:write("done " .. srv:stats().accepted .. "\n")
    ctl:close()
end)
]]

-- cpu_ticks(pid) -> utime + stime of pid, in clock ticks
local function cpu_ticks(pid)
    local f = assert(io.open("/proc/" .. pid .. "/stat"))
    local s = f:read("a")
    f:close()
    local rest = s:match("%) (.*)$")
    local fields = {}
    for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
    return tonumber(fields[12]) + tonumber(fields[13])  -- stat fields 14, 15
end

function TestServer:test_emfile_backs_off_without_spinning_and_recovers()
    H.test(function(defer)
        local path = H.tmpfile(EMFILE_CHILD)
        defer(function() os.remove(path) end)
        local errpath = os.tmpname()
        defer(function() os.remove(errpath) end)
        local ctl_ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
        ctl_ln:set_deadline(net.now() + 20)
        local child = H.spawn(sh, fmt("ulimit -n 64 && LD_PRELOAD=\"$CORONET_LD_PRELOAD\" "
            .. "timeout 60 lua5.4 %s %d 2>%s", path, ctl_ln:addr().port, errpath))
        local ctl = defer(assert(ctl_ln:accept()))
        local crd = net.bufio.reader(ctl)
        ctl:set_read_deadline(net.now() + 30)
        local port, pid = assert(crd:read_line()):match("^ready (%d+) (%d+)$")
        lu.assertNotNil(port)
        local N, got = 100, 0
        local release = net.chan()
        local clients = {}
        for i = 1, N do
            clients[i] = H.spawn(function()
                local c = assert(net.dial("tcp", "127.0.0.1:" .. port))
                c:set_read_deadline(net.now() + 30)
                assert(c:write("ping\n"))
                local d, err = c:read(5)
                assert(d == "pong\n", tostring(err))
                got = got + 1
                release:recv()                  -- closed: hang up
                c:close()
            end)
        end
        -- the EMFILE phase: backoff lines until the 7th (0.64 s), then measure
        local t0, cpu0, t1, cpu1, n_backoff, msg
        while true do
            local line = assert(crd:read_line())
            local wait = tonumber(line:match("retrying in ([%d.]+) s"))
            if wait then
                n_backoff = (n_backoff or 0) + 1
                msg = msg or line
                if not t0 then t0, cpu0 = net.now(), cpu_ticks(pid) end
                if wait >= 0.64 then
                    t1, cpu1 = net.now(), cpu_ticks(pid)
                    break
                end
            end
        end
        local held = got
        lu.assertStrContains(msg, "too many open files")
        lu.assertEquals(n_backoff, 8, "5 ms doubling: 5, 10, 20, 40, 80, 160, 320, 640 ms")
        lu.assertTrue(held < N, "the child ran out of fds with " .. held .. " served")
        -- the backoffs really slept (a lower bound: load only adds to it)
        lu.assertTrue(t1 - t0 >= 0.6, fmt("%.3f s from the 1st to the 8th backoff", t1 - t0))
        local ratio = (cpu1 - cpu0) / 100 / (t1 - t0)
        lu.assertTrue(ratio < 0.2, fmt("CPU/wall during EMFILE backoff = %.3f", ratio))
        release:close()                          -- fds come back: the rest are served
        for i = 1, N do H.join(clients[i]) end
        lu.assertEquals(got, N)
        ctl:close_write()
        local done = crd:read_line()
        lu.assertEquals(done, "done " .. N)
        local _, code = H.join(child)
        local ef = io.open(errpath)
        local errout = ef and ef:read("a") or ""
        if ef then ef:close() end
        lu.assertEquals(code, 0, errout)
        print(fmt("\n  EMFILE: %d served before the limit, %d backoffs over %.2f s wall at "
                  .. "CPU/wall %.3f, then all %d served", held, n_backoff, t1 - t0, ratio, N))
    end, WD)()
end

-- TLS: each conn is wrapped with net.tls.server; the handshake runs on the
-- handler's first read, under the first-byte deadline.
function TestServer:test_tls_conns_and_handshake_under_first_byte_deadline()
    if not net.tls then
        print("\n  skipped: net.tls is not in this build yet (the tls option needs it)")
        return
    end
    H.test(function(defer)
        local dir = H.tmpdir()
        defer(function() H.rm(dir) end)
        assert(os.execute(fmt("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
            .. "-nodes -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 "
            .. "-keyout %s/key.pem -out %s/cert.pem 2>/dev/null", dir, dir)))
        local cfg = net.tls.config{cert_file = dir .. "/cert.pem", key_file = dir .. "/key.pem"}
        local srv, ln = serve(defer, {handler = line_handler, tls = cfg, first_byte_timeout = 0.3})
        local addr = tostring(ln:addr())
        local c = defer(assert(net.tls.dial("tcp", addr, net.tls.config{
            ca_file = dir .. "/cert.pem", server_name = "127.0.0.1"})))
        local rd = net.bufio.reader(c)
        lu.assertEquals(ask(c, rd, "secret"), "ok secret")
        -- a TLS listener works too (the server option is then not needed)
        local tln = defer(assert(net.tls.listen("tcp", "127.0.0.1:0", cfg)))
        local srv2 = serve(defer, {handler = line_handler}, tln)
        local c2 = defer(assert(net.tls.dial("tcp", tostring(tln:addr()), net.tls.config{
            ca_file = dir .. "/cert.pem", server_name = "127.0.0.1"})))
        lu.assertEquals(ask(c2, net.bufio.reader(c2), "two"), "ok two")
        lu.assertTrue(srv2:shutdown(timeout_ctx(5)))
        local raw = defer(assert(net.dial("tcp", addr)))  -- connects, never says hello
        raw:set_read_deadline(net.now() + 10)
        local d = raw:read(1)
        lu.assertNil(d)
        lu.assertTrue(wait_until(function() return srv:stats().timed_out == 1 end))
        lu.assertTrue(srv:shutdown(timeout_ctx(5)))
    end, WD)()
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

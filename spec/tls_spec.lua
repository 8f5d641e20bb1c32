--- spec/tls_spec.lua: net.tls against real peers (openssl s_server and
-- s_client, curl) and against itself: verification, ALPN, client
-- certificates, resumption, key log, hostile input (garbage, plain HTTP, a
-- stalled half ClientHello, truncation and resets mid-record), deadlines and
-- ctx over the handshake, concurrency, and churn without growth.
local lu = require "luaunit"
local net = require "coronet"
local tls = net.tls
local H = dofile("spec/helpers.lua")
local TLSCA = dofile("spec/tlsca.lua")
local CA = TLSCA.make()

local SLOW = os.getenv("SPEC_SLOW") ~= nil      -- under valgrind: fewer rounds

-- Configs are built once per spec file (building one loads a CA store).
local SRV = assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key})
local CLI = assert(tls.config{ca_file = CA.ca})

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- A TLS echo server on 127.0.0.1:0 with cfg (default SRV); every conn is
-- served in its own task (so handshakes never block accept). Returns the
-- listener and a table of server-side results: conns[i] = {state, err}.
local function echo_server(defer, cfg, opts)
    local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", cfg or SRV, opts)))
    local seen = {}
    net.go(function()
        while true do
            local c = ln:accept()
            if not c then break end
            local rec = {}
            seen[#seen + 1] = rec
            net.go(function()
                while true do
                    local d, err = c:read()
                    if not d then
                        rec.err = err
                        break
                    end
                    rec.state = rec.state or c:connection_state()
                    if not c:write(d) then break end
                end
                c:close()
                rec.done = true
            end)
        end
    end)
    return ln, seen
end

local addr = TLSCA.addr

-- A port free on 127.0.0.1 now (for peers that can't report theirs).
local function free_port()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local p = ln:addr().port
    ln:close()
    return p
end

--- peer(cmd) -> {pid, wait()}: a child process (sh -c cmd) whose output
-- goes where cmd sends it; wait() reaps it and returns its exit status.
local function peer(cmd)
    local pipe = assert(io.popen("unset LD_PRELOAD; echo $$; exec " .. cmd))
    local pid = tonumber(pipe:read("l"))
    local p = {pid = pid}
    function p.wait()
        if not pipe then return p.status end
        local _, _, code = pipe:close()
        pipe = nil
        p.status = code
        return code
    end
    function p.kill()
        if pipe then os.execute("kill " .. pid .. " 2>/dev/null") end
        return p.wait()
    end
    return p, pipe
end

local function slurp(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
end

TestTLS = {}

function TestTLS:teardown() collectgarbage() end

---------------------------------------------------------------------------
-- coronet <-> coronet
---------------------------------------------------------------------------

function TestTLS:test_dial_verifies_and_echoes_with_state()
    H.run(function()
        local ln = assert(tls.listen("tcp", "127.0.0.1:0", SRV))
        local srv = H.spawn(function()
            local c = assert(ln:accept())
            lu.assertFalse(c:connection_state().handshake_complete, "accept must not handshake")
            local d = assert(c:read())
            assert(c:write(d:upper()))
            local st = c:connection_state()
            lu.assertEquals(c:read(), nil)              -- client's close_notify: EOF
            c:close()
            return st
        end)
        local c = assert(tls.dial("tcp", addr(ln, "localhost"), CLI))
        lu.assertStrContains(tostring(c), "tls conn tcp")
        assert(c:write("hello tls"))
        lu.assertEquals(assert(c:read_full(9)), "HELLO TLS")
        local st = c:connection_state()
        lu.assertTrue(st.handshake_complete)
        lu.assertEquals(st.version, "TLS1.3")
        lu.assertStrMatches(st.cipher, "TLS_[%u%d_]+")
        lu.assertEquals(st.server_name, "localhost")
        lu.assertTrue(st.verified)
        lu.assertFalse(st.resumed)
        local leaf = st.peer_certificates[1]
        lu.assertEquals(leaf.subject, "CN=localhost")
        lu.assertEquals(leaf.issuer, "CN=coronet spec CA")
        lu.assertEquals(leaf.sans, {"localhost", "a.test", "127.0.0.1", "::1"})
        lu.assertStrMatches(leaf.sha256, ("%x"):rep(64))
        lu.assertTrue(leaf.not_before <= os.time() and os.time() < leaf.not_after)
        lu.assertStrMatches(leaf.serial, "%x+")
        lu.assertTrue(c:close_write())
        local sst = H.join(srv)
        lu.assertEquals(sst.server_name, "localhost")  -- the SNI the server saw
        lu.assertFalse(sst.verified)                   -- no client cert asked
        c:close()
        ln:close()
    end)
end

function TestTLS:test_ip_literal_is_verified_against_ip_sans_and_not_sent_as_sni()
    H.test(function(defer)
        local ln, seen = echo_server(defer)
        local c = defer(assert(tls.dial("tcp", addr(ln, "127.0.0.1"), CLI)))
        assert(c:write("x"))
        lu.assertEquals(c:read(), "x")
        lu.assertTrue(c:connection_state().verified)
        lu.assertNil(seen[1].state.server_name, "an IP literal must not be sent as SNI")
        local v, err = tls.dial("tcp", addr(ln), {ca_file = CA.ca, server_name = "127.0.0.2"})
        H.assert_err(v, err, "certificate_hostname_mismatch")
        lu.assertStrContains(tostring(err), "not 127.0.0.2")
    end)()
end

function TestTLS:test_happy_eyeballs_dial_then_handshake_on_localhost()
    H.test(function(defer)
        local ln = echo_server(defer)               -- 127.0.0.1 only: ::1 is refused first
        local c = defer(assert(tls.dial("tcp", "localhost:" .. ln:addr().port, CLI)))
        assert(c:write("he"))
        lu.assertEquals(c:read(), "he")
        lu.assertEquals(tostring(c:remote_addr()), "127.0.0.1:" .. ln:addr().port)
    end)()
end

function TestTLS:test_alpn_negotiated_and_refused()
    H.test(function(defer)
        local ln, seen = echo_server(defer, assert(tls.config{cert_file = CA.leaf,
            key_file = CA.leaf_key, alpn = {"h2", "http/1.1"}}))
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"),
                                        {ca_file = CA.ca, alpn = {"http/1.1", "h2"}})))
        assert(c:write("a"))
        lu.assertEquals(c:read(), "a")
        lu.assertEquals(c:connection_state().alpn, "h2", "the server's preference wins, as Go")
        lu.assertEquals(seen[1].state.alpn, "h2")
        local v, err = tls.dial("tcp", addr(ln, "localhost"), {ca_file = CA.ca, alpn = {"spdy/1"}})
        H.assert_err(v, err, "alert_no_application_protocol")
        lu.assertEquals(err.op, "handshake")
        H.settle()
        H.assert_err(nil, seen[2].err, "no_application_protocol")
    end)()
end

function TestTLS:test_sni_picks_the_certificate()
    H.test(function(defer)
        local cfg = assert(tls.config{certificates = {{cert_file = CA.leaf, key_file = CA.leaf_key},
                                                      {cert_file = CA.b, key_file = CA.b_key}}})
        local ln = echo_server(defer, cfg)
        local c1 = defer(assert(tls.dial("tcp", addr(ln), {ca_file = CA.ca, server_name = "b.test"})))
        assert(c1:handshake())
        lu.assertEquals(c1:connection_state().peer_certificates[1].subject, "CN=b.test")
        local c2 = defer(assert(tls.dial("tcp", addr(ln, "localhost"), CLI)))
        assert(c2:handshake())
        lu.assertEquals(c2:connection_state().peer_certificates[1].subject, "CN=localhost")
    end)()
end

function TestTLS:test_session_resumption_on_a_second_dial()
    H.test(function(defer)
        local ln = echo_server(defer)
        local cached = assert(tls.config{ca_file = CA.ca, session_cache = true})
        local function once(cfg)
            local c = assert(tls.dial("tcp", addr(ln, "localhost"), cfg))
            assert(c:write("r"))
            lu.assertEquals(c:read(), "r")     -- reading takes in the session tickets
            local resumed = c:connection_state().resumed
            c:close()
            return resumed
        end
        lu.assertFalse(once(cached))
        lu.assertTrue(once(cached), "the second dial must resume")
        lu.assertTrue(once(cached), "each ticket is used once; the next one resumes too")
        lu.assertFalse(once(CLI), "no session_cache: no resumption")
        local cached12 = assert(tls.config{ca_file = CA.ca, session_cache = true, max_version = "1.2"})
        lu.assertFalse(once(cached12))
        lu.assertTrue(once(cached12), "TLS 1.2 resumes")
        lu.assertTrue(once(cached12), "a resumed TLS 1.2 session is kept for the next dial")
        local ln2 = echo_server(defer, assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key,
                                                          session_tickets = false}))
        ln = ln2
        lu.assertFalse(once(cached))
        lu.assertFalse(once(cached), "session_tickets = false on the server: nothing to resume")
    end)()
end

function TestTLS:test_keylog_file_is_written()
    H.test(function(defer)
        local path = H.tmpfile()
        defer(function() os.remove(path) end)
        local ln = echo_server(defer)
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"),
                                        assert(tls.config{ca_file = CA.ca, keylog_file = path}))))
        assert(c:write("k"))
        lu.assertEquals(c:read(), "k")
        local log = slurp(path)
        lu.assertStrContains(log, "CLIENT_HANDSHAKE_TRAFFIC_SECRET ")
        lu.assertStrContains(log, "CLIENT_TRAFFIC_SECRET_0 ")
        local lines = select(2, log:gsub("\n", ""))
        lu.assertTrue(lines >= 5, "TLS 1.3 logs five secrets per connection, got " .. lines)
    end)()
end

function TestTLS:test_client_certificates_required_and_refused()
    H.test(function(defer)
        local scfg = assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key,
                                       client_auth = "verify", client_ca_file = CA.ca})
        local ln, seen = echo_server(defer, scfg)
        local with = assert(tls.config{ca_file = CA.ca, cert_file = CA.client, key_file = CA.client_key})
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"), with)))
        assert(c:write("cert"))
        lu.assertEquals(c:read(), "cert")
        local st = seen[1].state
        lu.assertTrue(st.verified)
        lu.assertEquals(st.peer_certificates[1].subject, "CN=client")
        -- TLS 1.3: the client's handshake completes before the server checks;
        -- the refusal arrives as an alert on the client's first read.
        local c2 = defer(assert(tls.dial("tcp", addr(ln, "localhost"), CLI)))
        c2:write("nocert")
        local v, err = c2:read()
        H.assert_err(v, err, "alert_certificate_required")
        lu.assertStrContains(tostring(err), "remote error: tls: certificate required")
        H.settle()
        H.assert_err(nil, seen[2].err, "certificate_required")
        lu.assertEquals(seen[2].err.op, "handshake")
        -- a cert from another CA is refused too
        local bad = assert(tls.config{ca_file = CA.ca, cert_file = CA.other, key_file = CA.other_key})
        local c3 = defer(assert(tls.dial("tcp", addr(ln, "localhost"), bad)))
        c3:write("x")
        v, err = c3:read()
        H.assert_err(v, err)
        lu.assertStrContains(err.code, "alert_")
    end)()
end

---------------------------------------------------------------------------
-- verification failures
---------------------------------------------------------------------------

local function dial_fails(cert, key, ccfg, code, needle)
    H.test(function(defer)
        local ln = echo_server(defer, assert(tls.config{cert_file = cert, key_file = key}))
        local fds = H.open_fds()
        local v, err = tls.dial("tcp", addr(ln, "localhost"), ccfg or CLI)
        H.assert_err(v, err, code)
        lu.assertEquals(err.op, "handshake")
        if needle then lu.assertStrContains(tostring(err), needle) end
        H.settle()                                 -- the server side ends its conn too
        lu.assertEquals(H.open_fds(), fds, "a failed dial must close its conn")
    end)()
end

function TestTLS:test_wrong_host_name_is_refused_like_go()
    dial_fails(CA.leaf, CA.leaf_key, assert(tls.config{ca_file = CA.ca, server_name = "b.test"}),
               "certificate_hostname_mismatch",
               "x509: certificate is valid for localhost, a.test, 127.0.0.1, ::1, not b.test")
end

function TestTLS:test_expired_certificate_is_refused()
    dial_fails(CA.expired, CA.expired_key, nil, "certificate_expired", "certificate has expired")
end

function TestTLS:test_self_signed_without_insecure_is_refused()
    dial_fails(CA.self, CA.self_key, nil, "certificate_unknown_authority",
               "certificate signed by unknown authority")
end

function TestTLS:test_unknown_ca_is_refused()
    dial_fails(CA.other, CA.other_key, nil, "certificate_unknown_authority")
end

function TestTLS:test_system_store_does_not_trust_a_private_ca()
    dial_fails(CA.leaf, CA.leaf_key, assert(tls.config{}), "certificate_unknown_authority")
end

function TestTLS:test_insecure_skip_verify_connects_unverified()
    H.test(function(defer)
        local ln = echo_server(defer, assert(tls.config{cert_file = CA.self, key_file = CA.self_key}))
        local c = defer(assert(tls.dial("tcp", addr(ln), {insecure_skip_verify = true})))
        assert(c:write("i"))
        lu.assertEquals(c:read(), "i")
        lu.assertFalse(c:connection_state().verified)
    end)()
end

function TestTLS:test_client_needs_a_name_or_insecure()
    H.test(function(defer)
        local a = H.pair(defer)
        local v, err = tls.client(a, CLI)
        H.assert_err(v, err, "tls_config")
        lu.assertStrContains(tostring(err), "server_name or insecure_skip_verify")
        local bad, err2 = tls.config{cert_file = "/nonexistent.pem", key_file = "/nonexistent.key"}
        H.assert_err(bad, err2, "tls_config")
        lu.assertError(tls.config, {nope = 1})
        lu.assertError(tls.config, {min_version = "0.9"})
    end)()
end

function TestTLS:test_versions_refused_below_the_minimum()
    H.test(function(defer)
        local ln = echo_server(defer, assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key,
                                                         min_version = "1.3"}))
        local v, err = tls.dial("tcp", addr(ln, "localhost"), {ca_file = CA.ca, max_version = "1.2"})
        H.assert_err(v, err)
        lu.assertStrContains(err.code, "protocol_version")
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"), CLI)))
        assert(c:handshake())
        lu.assertEquals(c:connection_state().version, "TLS1.3")
    end)()
end

---------------------------------------------------------------------------
-- real peers: openssl s_server / s_client, curl
---------------------------------------------------------------------------

function TestTLS:test_client_against_openssl_s_server()
    H.test(function(defer)
        local port = free_port()
        local p, pipe = peer(("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -rev "
                              .. "-alpn http/1.1 -naccept 1 2>&1"):format(port, CA.leaf, CA.leaf_key))
        defer(p.kill)
        for line in pipe:lines() do if line:find("ACCEPT", 1, true) then break end end
        local c = defer(assert(tls.dial("tcp", "localhost:" .. port,
                                        {ca_file = CA.ca, alpn = {"h2", "http/1.1"}})))
        assert(c:write("hello openssl\n"))
        local r = net.bufio.reader(c)
        local line = assert(r:read_line())
        lu.assertEquals(line, "lssnepo olleh")           -- -rev reverses each line
        local st = c:connection_state()
        lu.assertEquals(st.alpn, "http/1.1")
        lu.assertTrue(st.verified)
    end)()
end

function TestTLS:test_openssl_s_client_against_coronet_server()
    H.test(function(defer)
        local cfg = assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key,
                                      alpn = {"h2", "http/1.1"}})
        local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", cfg)))
        local out = H.tmpfile()
        defer(function() os.remove(out) end)
        local p = peer(("sh -c %s"):format(quote(("printf 'ping\\n' | timeout 20 openssl s_client "
            .. "-connect 127.0.0.1:%d -servername localhost -CAfile %s -alpn h2 -verify_return_error "
            .. "-quiet -ign_eof >%s 2>&1"):format(ln:addr().port, CA.ca, out))))
        defer(p.kill)
        local c = assert(ln:accept())
        local r = net.bufio.reader(c)
        lu.assertEquals(assert(r:read_line()), "ping")
        local st = c:connection_state()
        assert(c:write("pong from coronet\n"))
        c:close()
        lu.assertEquals(p.wait(), 0, slurp(out))
        lu.assertStrContains(slurp(out), "pong from coronet")
        lu.assertEquals(st.alpn, "h2")
        lu.assertEquals(st.server_name, "localhost")
    end)()
end

function TestTLS:test_curl_against_coronet_https_server()
    H.test(function(defer)
        local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", assert(tls.config{
            cert_file = CA.leaf, key_file = CA.leaf_key, alpn = {"http/1.1"}}))))
        local out = H.tmpfile()
        defer(function() os.remove(out) end)
        local p = peer(("timeout 20 curl -sS --http1.1 --cacert %s -o %s https://localhost:%d/hello 2>&1")
            :format(CA.ca, out, ln:addr().port))
        defer(p.kill)
        local c = assert(ln:accept())
        local r = net.bufio.reader(c)
        lu.assertEquals(assert(r:read_line()), "GET /hello HTTP/1.1")
        repeat local l = assert(r:read_line()) until l == ""
        local body = "hello from coronet over TLS\n"
        assert(c:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body))
        c:close()
        lu.assertEquals(p.wait(), 0)
        lu.assertEquals(slurp(out), body)
    end)()
end

---------------------------------------------------------------------------
-- hostile peers
---------------------------------------------------------------------------

-- A plain TCP client that sends raw bytes to the TLS port, then reads what
-- comes back until EOF (bounded by a deadline).
local function raw_client(address, bytes)
    return H.spawn(function()
        local c = assert(net.dial("tcp", address))
        c:write(bytes)
        c:set_read_deadline(net.now() + 5)
        local got = H.read_to_eof(c)
        c:close()
        return got
    end)
end

function TestTLS:test_garbage_and_plain_http_get_clear_errors_and_the_server_goes_on()
    H.test(function(defer)
        local ln, seen = echo_server(defer)
        H.join(raw_client(addr(ln), ("\255\0\1garbage"):rep(100)))
        H.join(raw_client(addr(ln), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"), CLI)))   -- still serving
        assert(c:write("ok"))
        lu.assertEquals(c:read(), "ok")
        H.settle()
        H.assert_err(nil, seen[1].err, "tls")
        lu.assertEquals(seen[1].err.op, "handshake")
        H.assert_err(nil, seen[2].err, "tls_http_request")
    end)()
end

function TestTLS:test_half_client_hello_stalls_only_its_own_conn()
    H.test(function(defer)
        local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", SRV)))
        -- a real ClientHello's first 40 bytes, then silence
        local hello = H.spawn(function()
            local cap = assert(net.listen("tcp", "127.0.0.1:0"))
            local t = H.spawn(function()
                local c = assert(cap:accept())
                local d = assert(c:read())
                c:close()
                return d
            end)
            local x = assert(tls.client(assert(net.dial("tcp", tostring(cap:addr()))), CLI, "localhost"))
            x:set_deadline(net.now() + 5)
            x:handshake()                          -- fails: the capture closes
            x:close()
            cap:close()
            return H.join(t)
        end)
        local ch = H.join(hello)
        lu.assertTrue(#ch > 100)
        local stall = defer(assert(net.dial("tcp", addr(ln))))
        assert(stall:write(ch:sub(1, 40)))
        local first = assert(ln:accept())               -- accept returns: no handshake there
        local hs = H.spawn(function()
            first:set_read_deadline(net.now() + 0.2)
            return first:handshake()
        end)
        -- meanwhile a second client is accepted and served
        local good = H.spawn(function()
            local c = assert(tls.dial("tcp", addr(ln, "localhost"), CLI))
            c:write("fine")
            local d = c:read()
            c:close()
            return d
        end)
        local second = assert(ln:accept())
        local d = assert(second:read())
        assert(second:write(d))
        lu.assertEquals(H.join(good), "fine")
        local ok, err = H.join(hs)
        H.assert_err(ok, err, "timeout")
        lu.assertEquals(err.op, "handshake")
        lu.assertTrue(err.timeout)
        -- the failure sticks, as Go's handshake error
        local v, err2 = first:read()
        H.assert_err(v, err2, "timeout")
        first:close()
        second:close()
    end)()
end

function TestTLS:test_handshake_bounded_by_read_deadline_set_before_it_q40()
    H.test(function(defer)
        local silent = defer(assert(net.listen("tcp", "127.0.0.1:0")))   -- accepts nothing, answers nothing
        local c = defer(assert(tls.client(assert(net.dial("tcp", tostring(silent:addr()))), CLI, "localhost")))
        c:set_read_deadline(net.now() + 0.05)
        local ok, err = c:handshake()
        H.assert_err(ok, err, "timeout")
        lu.assertEquals(err.op, "handshake")
    end)()
end

function TestTLS:test_handshake_canceled_by_ctx()
    H.test(function(defer)
        local silent = defer(assert(net.listen("tcp", "127.0.0.1:0")))
        local c = defer(assert(tls.client(assert(net.dial("tcp", tostring(silent:addr()))), CLI, "localhost")))
        local ctx, cancel = net.context.with_cancel(net.context.background())
        local t = H.spawn(function() return c:handshake(ctx) end)
        net.yield()
        cancel()
        local ok, err = H.join(t)
        H.assert_err(ok, err, "canceled")
        -- tls.dial with a ctx already cancelled never connects
        local v, err2 = tls.dial("tcp", tostring(silent:addr()), CLI, ctx)
        H.assert_err(v, err2, "canceled")
    end)()
end

-- A relay between a client and a TLS 1.2 server: once the server's first
-- application-data record (type 23) arrives it forwards `cut` bytes of it
-- (all of it when nil) and closes the client side (with RST when rst).
local function truncating_relay(defer, server_addr, cut, rst)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    net.go(function()
        local c = ln:accept()
        if not c then return end
        ln:close()
        local s = assert(net.dial("tcp", server_addr))
        local up = net.go(function()
            while true do
                local d = c:read()
                if not d or not s:write(d) then break end
            end
        end)
        local buf = ""
        while true do
            local d = s:read()
            if not d then break end
            buf = buf .. d
            local sent = false
            while #buf >= 5 do
                local typ, len = buf:byte(1), buf:byte(4) * 256 + buf:byte(5)
                if #buf < 5 + len then break end
                local rec = buf:sub(1, 5 + len)
                buf = buf:sub(6 + len)
                if typ == 23 then
                    c:write(rec:sub(1, cut or #rec))
                    sent = true
                    break
                end
                c:write(rec)
            end
            if sent then break end
        end
        if rst then c:set_linger(0) end
        c:close()
        s:close()
        up:wait()
    end)
    return tostring(ln:addr())
end

local function server12(defer)
    local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", assert(tls.config{
        cert_file = CA.leaf, key_file = CA.leaf_key, max_version = "1.2"}))))
    net.go(function()
        local c = ln:accept()
        if not c then return end
        c:write("hello")
        c:set_read_deadline(net.now() + 5)
        c:read()
        c:close()
    end)
    return tostring(ln:addr())
end

-- A dial bounded by a timeout turns it into one deadline for the dial and
-- the handshake; every other dial option must still reach the socket.
function TestTLS:test_a_timed_dial_keeps_the_other_dial_options()
    H.test(function(defer)
        local ln = echo_server(defer, nil, {notsent_lowat = 8192})
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"), CLI,
                                        {timeout = 5, notsent_lowat = 16384, keepalive = 7})))
        lu.assertEquals(net.getsockopt(c:fd(), "IPPROTO_TCP", "TCP_NOTSENT_LOWAT"), 16384)
        lu.assertEquals(net.getsockopt(c:fd(), "IPPROTO_TCP", "TCP_KEEPIDLE"), 7)
        assert(c:write("opts"))
        lu.assertEquals(c:read(), "opts")
    end)()
end

function TestTLS:test_fin_mid_record_is_unexpected_eof()
    H.test(function(defer)
        local via = truncating_relay(defer, server12(defer), 5 + 3)
        local c = defer(assert(tls.dial("tcp", via, CLI, {timeout = 5}) or error("dial")))
        local v, err = c:read()
        lu.assertNil(v)
        lu.assertEquals(err, net.ErrUnexpectedEOF)
        lu.assertEquals(c:connection_state().version, "TLS1.2")
    end)()
end

function TestTLS:test_fin_at_a_record_boundary_is_eof()
    H.test(function(defer)
        local via = truncating_relay(defer, server12(defer), nil)
        local c = defer(assert(tls.dial("tcp", via, {ca_file = CA.ca, server_name = "localhost"})))
        lu.assertEquals(c:read(), "hello")
        local v, err = c:read()
        lu.assertNil(v)
        lu.assertEquals(err, net.EOF, "a FIN without close_notify at a record boundary reads as EOF (Go)")
        local v2, err2 = c:read()
        lu.assertEquals(err2, net.EOF, "EOF repeats")
        lu.assertNil(v2)
    end)()
end

function TestTLS:test_reset_mid_record_is_econnreset()
    H.test(function(defer)
        local via = truncating_relay(defer, server12(defer), 5 + 3, true)
        local c = defer(assert(tls.dial("tcp", via, {ca_file = CA.ca, server_name = "localhost"})))
        local v, err = c:read()
        H.assert_err(v, err, "ECONNRESET")
        -- writing to the reset peer fails too, and never kills the process
        local n, werr = c:write(("w"):rep(100000))
        H.assert_err(n, werr)
    end)()
end

function TestTLS:test_many_failed_handshakes_leave_nothing_behind()
    H.test(function(defer)
        local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", SRV)))
        local live, failed = 0, 0
        net.go(function()                          -- a server that keeps nothing per conn
            while true do
                local c = ln:accept()
                if not c then break end
                live = live + 1
                net.go(function()
                    local ok = c:handshake()
                    if not ok then failed = failed + 1 end
                    while ok do                    -- echo for the last, real client
                        local d = c:read()
                        if not d or not c:write(d) then break end
                    end
                    c:close()
                    live = live - 1
                end)
            end
        end)
        local target = addr(ln)
        local function churn(n)
            for _ = 1, n do
                local c = assert(net.dial("tcp", target))
                c:write("\255\3\1\0\5junk!")             -- no such record type: fails at once
                c:set_read_deadline(net.now() + 5)
                c:read()                           -- the server's alert or EOF
                c:close()
            end
            H.settle()
        end
        local function rss()
            collectgarbage()
            collectgarbage()
            local f = io.open("/proc/self/status")
            local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
            f:close()
            return kb
        end
        local N = SLOW and 300 or 10000
        -- ASan's quarantine keeps freed memory: RSS says nothing there (valgrind
        -- checks leaks instead); fds and tasks are still checked.
        local asan = (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) ~= nil
        -- The first N warm up allocators and tables (the registry of tracked
        -- conns grows to the most that await collection at once); a leak of
        -- even 400 bytes a handshake would then show in the second N.
        churn(N // 10)
        local fds = H.open_fds()
        churn(N)
        local r1 = rss()
        churn(N)
        local r2 = rss()
        lu.assertEquals(H.open_fds(), fds, "fds leaked")
        lu.assertEquals(live, 0, "server conn tasks still running")
        lu.assertEquals(failed, 2 * N + N // 10, "every garbage handshake must fail")
        if not asan then
            lu.assertTrue(r2 - r1 < 4096, ("RSS grew %d KiB over %d failed handshakes"):format(r2 - r1, N))
        end
        -- and a real client is still served
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"), CLI)))
        assert(c:write("alive"))
        lu.assertEquals(c:read(), "alive")
    end)()
end

---------------------------------------------------------------------------
-- conn semantics over TLS
---------------------------------------------------------------------------

--- tls_pair(defer [, srv_cfg]) -> a (client, handshaken), b (server, handshaken).
local function tls_pair(defer, srv_cfg)
    return TLSCA.pair(defer, srv_cfg or SRV, CLI)
end

function TestTLS:test_reader_and_writer_racing_into_the_handshake()
    H.test(function(defer)
        local ln, seen = echo_server(defer)
        local c = defer(assert(tls.client(assert(net.dial("tcp", addr(ln))), CLI, "localhost")))
        -- both start before any handshake: one drives it, the other waits its turn
        local r = H.spawn(function() return c:read_full(6) end)
        local w = H.spawn(function() return c:write("racing") end)
        lu.assertEquals(H.join(w), 6)
        lu.assertEquals(H.join(r), "racing")
        lu.assertTrue(c:connection_state().handshake_complete)
        lu.assertNotNil(seen[1])
    end)()
end

function TestTLS:test_one_reader_one_writer_one_closer_and_busy()
    H.test(function(defer)
        local a, b = tls_pair(defer)
        local big = ("0123456789abcdef"):rep(1 << 16)       -- 1 MiB, many records
        local echo = H.spawn(function()
            local got = 0
            while got < #big do
                local d = assert(b:read())
                got = got + #d
                assert(b:write(d))
            end
            return got
        end)
        local reader = H.spawn(function() return a:read_full(#big) end)
        net.yield()
        local v, err = a:read()
        H.assert_err(v, err, "busy")                        -- a second reader
        lu.assertEquals(assert(a:write(big)), #big)
        lu.assertEquals(H.join(reader), big)
        lu.assertEquals(H.join(echo), #big)
        -- a closer wakes a parked reader with ErrClosed
        local parked = H.spawn(function() return a:read() end)
        net.yield()
        a:close()
        local v2, err2 = H.join(parked)
        lu.assertNil(v2)
        lu.assertTrue(net.errors.is(err2, net.ErrClosed))
        local _, err3 = a:close()
        lu.assertTrue(net.errors.is(err3, net.ErrClosed))
    end)()
end

function TestTLS:test_write_cut_mid_record_by_a_deadline_sticks()
    H.test(function(defer)
        local a = tls_pair(defer)                      -- the server never reads
        assert(a:set_write_buffer(4096))
        local payload = ("x"):rep(8 << 20)           -- built before the deadline starts
        a:set_write_deadline(net.now() + 0.2)
        local n, err, done = a:write(payload)
        H.assert_err(n, err, "timeout")
        lu.assertTrue(done > 0 and done < 8 << 20)
        a:set_write_deadline(nil)
        local n2, err2, done2 = a:write("more")
        H.assert_err(n2, err2, "timeout")             -- Go: the TLS state is corrupt now
        lu.assertEquals(done2, 0)
    end)()
end

function TestTLS:test_close_write_sends_close_notify_and_reading_goes_on()
    H.test(function(defer)
        local a, b = tls_pair(defer)
        assert(a:write("last words"))
        lu.assertTrue(a:close_write())
        lu.assertTrue(a:close_write(), "idempotent")
        local v, err = a:write("after")
        H.assert_err(v, err, "shutdown")
        lu.assertEquals(b:read(), "last words")
        local v2, err2 = b:read()
        lu.assertNil(v2)
        lu.assertEquals(err2, net.EOF)
        assert(b:write("reply after close_write"))
        lu.assertEquals(a:read(), "reply after close_write")
        -- before the handshake, close_write is an error (Go)
        local raw = defer(H.pair(defer))
        local x = assert(tls.client(raw, CLI, "localhost"))
        local ok, err3 = x:close_write()
        H.assert_err(ok, err3, "handshake_incomplete")
    end)()
end

function TestTLS:test_bufio_frames_and_copy_over_tls()
    H.test(function(defer)
        local a, b = tls_pair(defer)
        local w = net.bufio.writer(a)
        w:write("line one\r\nline two\n")
        assert(w:flush())
        local r = net.bufio.reader(b)
        lu.assertEquals(r:read_line(), "line one")
        lu.assertEquals(r:read_line(), "line two")
        local fw, fr = net.frame.writer(a), net.frame.reader(r)
        assert(fw:write("framed"))
        lu.assertEquals(fr:read(), "framed")
        -- io.copy from a TLS conn into a plain conn: the read/write path
        local p, q = H.pair(defer)
        local copier = H.spawn(function() return net.io.copy(p, b) end)
        local payload = ("c"):rep(300000)
        assert(a:write(payload))
        a:close_write()
        local got = assert(q:read_full(#payload))
        lu.assertEquals(got, payload)
        lu.assertEquals(H.join(copier), #payload)
    end)()
end

function TestTLS:test_starttls_upgrades_a_conn_and_its_reader_in_place()
    H.test(function(defer)
        local p, q = H.pair(defer)
        local srv = H.spawn(function()
            local r = net.bufio.reader(q)
            lu.assertEquals(r:read_line(), "STARTTLS")
            assert(q:write("OK\r\n"))
            local t = assert(tls.server(q, SRV))
            lu.assertTrue(rawequal(t, q), "the conn itself is upgraded")
            lu.assertEquals(r:read_line(), "secret")    -- the reader made before now reads TLS
            return t:connection_state().version
        end)
        assert(p:write("STARTTLS\r\n"))
        lu.assertEquals(p:read_full(4), "OK\r\n")
        local t = assert(tls.client(p, CLI, "localhost"))
        assert(t:write("secret\n"))
        lu.assertEquals(H.join(srv), "TLS1.3")
        lu.assertEquals(getmetatable(p).__name, "coronet.tls_conn")
    end)()
end

function TestTLS:test_probe_tells_healthy_dubious_and_dead()
    H.test(function(defer)
        local a, b = tls_pair(defer)
        assert(b:write("t"))
        lu.assertEquals(a:read(), "t")          -- the tickets are taken in too
        lu.assertEquals(a:probe(), "ok")
        assert(b:write("unsolicited"))
        net.sleep(0.02)
        lu.assertEquals(a:probe(), "dubious")
        lu.assertEquals(a:read(), "unsolicited")
        b:close()
        net.sleep(0.02)
        lu.assertEquals(a:probe(), "dead")
    end)()
end

function TestTLS:test_gc_of_unclosed_tls_conns_frees_them()
    H.test(function(defer)
        local ln = echo_server(defer)
        local fds = H.open_fds()
        for _ = 1, 20 do
            local c = assert(tls.dial("tcp", addr(ln, "localhost"), CLI))
            c:write("g")
            c:read()
        end
        collectgarbage()
        collectgarbage()
        H.settle()
        lu.assertEquals(H.open_fds(), fds)
    end)()
end

function TestTLS:test_sslscan_finds_no_old_protocol_and_no_cipher_without_forward_secrecy()
    -- the example's server, as a user would run it (LD_PRELOAD kept: under
    -- make asan the child loads the sanitized core.so too)
    local pipe = assert(io.popen("echo $$; exec lua5.4 examples/tls_echo.lua --serve 0 2>&1"))
    local pid = tonumber(pipe:read("l"))
    local first = pipe:read("l") or ""
    local port = first:match("127%.0%.0%.1:(%d+)")
    local scan = ""
    if port then
        local sp = assert(io.popen("unset LD_PRELOAD; timeout 60 sslscan --no-colour 127.0.0.1:" .. port .. " 2>&1"))
        scan = sp:read("a")
        sp:close()
    end
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
    lu.assertNotNil(port, "tls_echo.lua --serve did not start: " .. first)
    for _, old in ipairs{"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"} do
        local pat = "\n" .. old:gsub("%.", "%%.") .. "%s+disabled"
        lu.assertNotNil(scan:find(pat), old .. " must be disabled:\n" .. scan)
    end
    lu.assertStrContains(scan, "TLSv1.3   enabled")
    lu.assertStrContains(scan, "Session renegotiation not supported")
    local n = 0
    for proto, suite in scan:gmatch("\n%a+%s+(TLSv1%.%d)%s+%d+ bits%s+(%S+)") do
        n = n + 1
        lu.assertTrue(proto == "TLSv1.3" or suite:find("^ECDHE%-") ~= nil,
                      proto .. " " .. suite .. " has no forward secrecy")
        lu.assertNil(suite:find("CBC", 1, true), suite .. " is a CBC suite")
    end
    lu.assertTrue(n >= 4, "sslscan listed no accepted suites:\n" .. scan)
end

function TestTLS:test_pool_over_tls_conns_probes_through_tls()
    H.test(function(defer)
        local ln, seen = echo_server(defer)
        local dials = 0
        local pool = defer(net.pool{max_idle = 2, dial = function(ctx)
            dials = dials + 1
            return tls.dial("tcp", addr(ln, "localhost"), CLI, ctx)
        end})
        local c = assert(pool:get())
        assert(c:write("p1"))
        lu.assertEquals(c:read(), "p1")
        pool:put(c)
        local c2 = assert(pool:get())
        lu.assertTrue(rawequal(c, c2), "a healthy idle TLS conn is reused")
        pool:put(c2)
        -- the server ends the conn (close_notify): the next get must not hand it out
        H.settle()
        lu.assertNotNil(seen[1])
        local victim = c2
        local t = seen[1]
        net.go(function() victim:close_write() end)   -- the echo server then closes its side
        local limit = net.now() + 5
        while not t.done and net.now() < limit do net.sleep(0.005) end
        lu.assertTrue(t.done)
        local c3 = assert(pool:get())
        lu.assertFalse(rawequal(c3, victim), "a TLS conn whose peer closed is never handed out")
        lu.assertEquals(pool:stats().evicted_dead, 1)
        assert(c3:write("p3"))
        lu.assertEquals(c3:read(), "p3")
        pool:put(c3)
        lu.assertEquals(dials, 2)
    end)()
end

function TestTLS:test_deadlines_follow_each_role_while_the_handshake_waits()
    H.test(function(defer)
        local silent = defer(assert(net.listen("tcp", "127.0.0.1:0")))   -- never answers
        local c = defer(assert(tls.client(assert(net.dial("tcp", tostring(silent:addr()))), CLI, "localhost")))
        -- a writer drives the handshake and waits for the ServerHello: it
        -- parks for readability, yet only the write deadline bounds it
        local w = H.spawn(function() return c:write("x") end)
        net.yield()
        c:set_read_deadline(net.now() - 1)
        for _ = 1, 5 do net.yield() end
        lu.assertFalse(w:is_done(), "the read deadline ended a parked writer")
        c:set_write_deadline(net.now() - 1)
        local n, err = H.join(w)
        H.assert_err(n, err, "timeout")
    end)()
end

function TestTLS:test_a_ctx_ended_before_any_handshake_does_not_poison_the_conn()
    H.test(function(defer)
        local ln = echo_server(defer)
        local c = defer(assert(tls.client(assert(net.dial("tcp", addr(ln))), CLI, "localhost")))
        local ctx, cancel = net.context.with_cancel(net.context.background())
        cancel()
        local v, err = c:read(ctx)
        H.assert_err(v, err, "canceled")
        assert(c:write("still usable"))
        lu.assertEquals(c:read(), "still usable")
    end)()
end

function TestTLS:test_a_deadline_ctx_sticks_as_a_timeout()
    H.test(function(defer)
        local silent = defer(assert(net.listen("tcp", "127.0.0.1:0")))
        local c = defer(assert(tls.client(assert(net.dial("tcp", tostring(silent:addr()))), CLI, "localhost")))
        local ctx = net.context.with_timeout(net.context.background(), 0.05)
        local ok, err = c:handshake(ctx)
        H.assert_err(ok, err, "timeout")
        local v, err2 = c:read()
        H.assert_err(v, err2, "timeout")             -- not "canceled"
    end)()
end

function TestTLS:test_read_full_reports_a_bare_unexpected_eof_mid_record()
    H.test(function(defer)
        local via = truncating_relay(defer, server12(defer), 5 + 3)
        local c = defer(assert(tls.dial("tcp", via, {ca_file = CA.ca, server_name = "localhost"})))
        local v, err = c:read_full(100)
        lu.assertNil(v)
        lu.assertEquals(err, net.ErrUnexpectedEOF)
    end)()
end

function TestTLS:test_h2_only_server_lets_an_http11_client_through_without_alpn()
    H.test(function(defer)
        local ln = echo_server(defer, assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key,
                                                         alpn = {"h2"}}))
        local c = defer(assert(tls.dial("tcp", addr(ln, "localhost"), {ca_file = CA.ca, alpn = {"http/1.1"}})))
        assert(c:write("h1"))
        lu.assertEquals(c:read(), "h1")
        lu.assertNil(c:connection_state().alpn)
    end)()
end

function TestTLS:test_config_failures_are_errors_at_once()
    H.test(function()
        -- a server config without a certificate fails at listen, not at accept
        local v, err = tls.listen("tcp", "127.0.0.1:0", CLI)
        H.assert_err(v, err, "tls_config")
        -- an encrypted key is an error, never a passphrase prompt
        local key = CA.dir .. "/enc.key"
        assert(os.execute(("unset LD_PRELOAD; openssl pkey -in %s -aes256 -passout pass:secret -out %s")
                          :format(CA.leaf_key, key)))
        local cfg, err2 = tls.config{cert_file = CA.leaf, key_file = key}
        H.assert_err(cfg, err2, "tls_config")
        -- the key log holds secrets: owner-only
        local log = CA.dir .. "/keys.log"
        assert(tls.config{ca_file = CA.ca, keylog_file = log})
        local p = io.popen("stat -c %a " .. log)
        lu.assertEquals(p:read("l"), "600")
        p:close()
    end)()
end

-- remove the certificates when the suite is done with them
local remove_ca = CA.remove
TestTLSZZCleanup = {}
function TestTLSZZCleanup:test_remove_fixtures() remove_ca() end

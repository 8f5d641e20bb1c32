--- spec/tls_conn_spec.lua: a TLS conn's life after the happy path: the
-- first failure's text sticks, failures are classified by the reason that
-- describes them, close_write waits for a write in flight, the negotiated
-- state outlives close, and the client session cache keeps as many
-- sessions as it was given.
local lu = require "luaunit"
local net = require "coronet"
local tls = net.tls
local H = dofile("spec/helpers.lua")
local TLSCA = dofile("spec/tlsca.lua")
local CA = TLSCA.make()

local SRV = assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key})
local CLI = assert(tls.config{ca_file = CA.ca})

local T, spawn = H.watched(20)

local addr = TLSCA.addr

--- A TLS echo server on 127.0.0.1:0 (cfg, default SRV), one task per conn.
local function echo_server(defer, cfg)
    local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", cfg or SRV)))
    net.go(function()
        while true do
            local c = ln:accept()
            if not c then break end
            net.go(function()
                while true do
                    local d = c:read()
                    if not d or not c:write(d) then break end
                end
                c:close()
            end)
        end
    end)
    return ln
end

--- A plain TCP relay to target; relay.client is the accepted conn towards
-- the client, so a test can put raw bytes into the client's TLS stream.
local function relay(defer, target)
    local ln = defer(assert(net.listen("tcp", "127.0.0.1:0")))
    local r = {addr = tostring(ln:addr())}
    r.ready = net.go(function()
        local c = ln:accept()
        if not c then return end
        ln:close()
        local s = assert(net.dial("tcp", target))
        defer(c)
        defer(s)
        r.client = c
        net.go(function() net.io.copy(s, c) end)
        net.go(function() net.io.copy(c, s) end)
        return true
    end)
    return r
end

TestTLSConn = {}

function TestTLSConn:teardown() collectgarbage() end

---------------------------------------------------------------------------
-- 1. a conn's sticky TLS error is its first one
---------------------------------------------------------------------------

TestTLSConn.test_a_failed_handshake_keeps_its_text_after_a_premature_close_write = T(function(defer)
    local ln = echo_server(defer)
    local c = defer(assert(tls.client(assert(net.dial("tcp", addr(ln))), CLI, "b.test")))
    local ok, err = c:handshake()
    H.assert_err(ok, err, "certificate_hostname_mismatch")
    local first = tostring(err)
    local ok2, err2 = c:close_write()            -- Go: errEarlyCloseWrite, an error of its own
    H.assert_err(ok2, err2, "handshake_incomplete")
    local v, err3 = c:read()
    H.assert_err(v, err3, "certificate_hostname_mismatch")
    lu.assertEquals(tostring(err3), first, "the handshake's failure must keep its text")
    local ok4, err4 = c:handshake()
    H.assert_err(ok4, err4, "certificate_hostname_mismatch")
    lu.assertEquals(tostring(err4), first)
end)

TestTLSConn.test_a_read_failure_keeps_its_text_after_a_write_refused_by_close_write = T(function(defer)
    local ln = echo_server(defer)
    local r = relay(defer, addr(ln))
    local c = defer(assert(tls.dial("tcp", r.addr, CLI, {timeout = 5}), "dial"))
    lu.assertTrue(r.ready:wait())
    assert(c:write("ping"))
    lu.assertEquals(c:read(), "ping")              -- tickets and the reply are in
    lu.assertTrue(c:close_write())
    -- an application-data record that does not decrypt: a fatal TLS failure
    assert(r.client:write("\23\3\3\0\32" .. ("x"):rep(32)))
    local v, err = c:read()
    H.assert_err(v, err, "tls")
    local first = tostring(err)
    lu.assertStrContains(first, "read tcp")
    local n, werr = c:write("after")
    H.assert_err(n, werr, "shutdown")              -- Go: errShutdown for writes after CloseWrite
    local v2, err2 = c:read()
    H.assert_err(v2, err2, "tls")
    lu.assertEquals(tostring(err2), first, "the read's failure must keep its text")
end)

---------------------------------------------------------------------------
-- 2. classification by the reason that describes the failure
---------------------------------------------------------------------------

-- The leaf with one bit of its signature flipped: the chain still reaches
-- the CA, the signature does not verify. OpenSSL 3.0 queues an ASN1 "EVP
-- lib" error before SSL's "certificate verify failed".
local function bad_signature_leaf()
    local dir = CA.dir
    assert(os.execute(("unset LD_PRELOAD; openssl x509 -in %s -outform DER -out %s/badsig.der")
        :format(CA.leaf, dir)))
    local f = assert(io.open(dir .. "/badsig.der", "rb"))
    local der = f:read("a")
    f:close()
    f = assert(io.open(dir .. "/badsig.der", "wb"))
    f:write(der:sub(1, -2), string.char(der:byte(-1) ~ 1))
    f:close()
    assert(os.execute(("unset LD_PRELOAD; openssl x509 -inform DER -in %s/badsig.der -out %s/badsig.pem")
        :format(dir, dir)))
    return dir .. "/badsig.pem"
end

TestTLSConn.test_a_bad_signature_is_a_certificate_error_not_the_first_queued_reason = T(function(defer)
    local ln = echo_server(defer, assert(tls.config{cert_file = bad_signature_leaf(),
                                                     key_file = CA.leaf_key}))
    local v, err = tls.dial("tcp", addr(ln, "localhost"), CLI)
    H.assert_err(v, err, "certificate_invalid")
    lu.assertEquals(err.op, "handshake")
    lu.assertStrContains(tostring(err), "tls: failed to verify certificate: x509: certificate signature failure")
end)

---------------------------------------------------------------------------
-- 3. close_write waits for the write in flight (Go's CloseWrite)
---------------------------------------------------------------------------

--- tls_pair(defer [, srv_cfg]) -> a (client, handshaken), b (server, handshaken).
local function tls_pair(defer, srv_cfg)
    return TLSCA.pair(defer, srv_cfg or SRV, CLI)
end

-- a (client) writing size bytes (more than the socket buffers hold) that b
-- does not read yet: returns the writer task once it is parked mid-write.
-- (Shrinking the buffers would make loopback crawl: delayed ACKs.)
local function stuck_writer(defer, size)
    local a, b = tls_pair(defer)
    local payload = H.pattern(size)
    local w = spawn(function() return a:write(payload) end)
    net.yield()
    lu.assertFalse(w:is_done(), "the write must be in flight")
    return a, b, w, payload
end

TestTLSConn.test_close_write_during_a_write_waits_for_it_and_loses_nothing = T(function(defer)
    local a, b, w, payload = stuck_writer(defer, 8 << 20)
    local cw = spawn(function() return a:close_write() end)
    net.yield()
    lu.assertFalse(cw:is_done(), "close_write must wait behind the writer")
    local got = H.read_to_eof(b)                 -- all the bytes, then close_notify
    lu.assertEquals(#got, #payload)
    lu.assertTrue(got == payload, "bytes must arrive whole and in order")
    lu.assertEquals(H.join(w), #payload)
    lu.assertTrue(H.join(cw))
    local n, err = a:write("more")
    H.assert_err(n, err, "shutdown")
    assert(b:write("reply"))                     -- the other half still works
    lu.assertEquals(a:read(), "reply")
end)

TestTLSConn.test_close_write_behind_a_writer_honours_its_ctx = T(function(defer)
    local a, b, w, payload = stuck_writer(defer, 8 << 20)
    local ctx, cancel = net.context.with_cancel(net.context.background())
    local cw = spawn(function() return a:close_write(ctx) end)
    net.yield()
    lu.assertFalse(cw:is_done())
    cancel()
    local ok, err = H.join(cw)
    H.assert_err(ok, err, "canceled")
    lu.assertEquals(err.op, "close")
    local reader = spawn(function() return H.read_to_eof(b) end)
    lu.assertEquals(H.join(w), #payload, "the writer goes on untouched")
    lu.assertTrue(a:close_write())
    lu.assertTrue(H.join(reader) == payload)
end)

TestTLSConn.test_close_write_behind_a_writer_honours_the_write_deadline = T(function(defer)
    local a, _, w = stuck_writer(defer, 8 << 20)
    local cw = spawn(function() return a:close_write() end)
    net.yield()
    lu.assertFalse(cw:is_done())
    a:set_write_deadline(net.now() + 0.05)
    local ok, err = H.join(cw)
    H.assert_err(ok, err, "timeout")
    local n, werr = H.join(w)
    H.assert_err(n, werr, "timeout")
end)

TestTLSConn.test_close_during_a_queued_close_write_wakes_it_closed = T(function(defer)
    local a, _, w = stuck_writer(defer, 8 << 20)
    local cw = spawn(function() return a:close_write() end)
    net.yield()
    a:close()
    local ok, err = H.join(cw)
    lu.assertNil(ok)
    lu.assertTrue(net.errors.is(err, net.ErrClosed), tostring(err))
    local n, werr = H.join(w)
    lu.assertNil(n)
    lu.assertTrue(net.errors.is(werr, net.ErrClosed), tostring(werr))
end)

---------------------------------------------------------------------------
-- 4. connection_state() after close
---------------------------------------------------------------------------

TestTLSConn.test_connection_state_survives_close_on_both_sides = T(function(defer)
    local srv_cfg = assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key,
                                      alpn = {"h2", "http/1.1"}, client_auth = "verify",
                                      client_ca_file = CA.ca})
    local cli_cfg = assert(tls.config{ca_file = CA.ca, alpn = {"h2"}, cert_file = CA.client,
                                      key_file = CA.client_key})
    local ln = defer(assert(tls.listen("tcp", "127.0.0.1:0", srv_cfg)))
    local srv = spawn(function()
        local s = assert(ln:accept())
        local d = assert(s:read())
        assert(s:write(d))
        local open = s:connection_state()
        lu.assertEquals(s:read(), nil)
        s:close()
        return open, s:connection_state(), tostring(s)
    end)
    local c = assert(tls.dial("tcp", addr(ln, "localhost"), cli_cfg))
    assert(c:write("x"))
    lu.assertEquals(c:read(), "x")
    local open = c:connection_state()
    lu.assertTrue(open.handshake_complete)
    lu.assertEquals(open.alpn, "h2")
    lu.assertEquals(#open.peer_certificates, 1)
    c:close()
    lu.assertEquals(c:connection_state(), open, "the client's state after close")
    lu.assertStrContains(tostring(c), "(closed)")
    local sopen, sclosed, sstr = H.join(srv)
    lu.assertEquals(sopen.server_name, "localhost")
    lu.assertTrue(sopen.verified)
    lu.assertEquals(sopen.peer_certificates[1].subject, "CN=client")
    lu.assertEquals(sclosed, sopen, "the server's state after close")
    lu.assertStrContains(sstr, "(closed)")
    -- a conn closed before its handshake has nothing to report
    local raw = assert(net.dial("tcp", addr(ln)))
    local x = assert(tls.client(raw, CLI, "localhost"))
    x:close()
    lu.assertEquals(x:connection_state(), {handshake_complete = false})
end)

TestTLSConn.test_connection_state_of_a_resumed_conn_survives_close = T(function(defer)
    local ln = echo_server(defer)
    local cfg = assert(tls.config{ca_file = CA.ca, session_cache = true})
    local states = {}
    for i = 1, 2 do
        local c = assert(tls.dial("tcp", addr(ln, "localhost"), cfg))
        assert(c:write("r"))
        lu.assertEquals(c:read(), "r")
        local open = c:connection_state()
        c:close()
        local closed = c:connection_state()
        lu.assertEquals(closed, open)
        states[i] = closed
    end
    lu.assertFalse(states[1].resumed)
    lu.assertTrue(states[2].resumed)
    lu.assertEquals(states[2].peer_certificates[1].sha256, states[1].peer_certificates[1].sha256)
end)

---------------------------------------------------------------------------
-- 5. the client session cache honours its capacity
---------------------------------------------------------------------------

TestTLSConn.test_session_cache_keeps_capacity_sessions_and_evicts_the_oldest = T(function(defer)
    local ln = echo_server(defer)
    local cfg = assert(tls.config{ca_file = CA.ca, session_cache = 2})
    -- three keys: the name verified (an IP literal for 127.0.0.1)
    local function once(name)
        local c
        if name == "a.test" then
            c = assert(tls.client(assert(net.dial("tcp", addr(ln))), cfg, "a.test"))
        else
            c = assert(tls.dial("tcp", addr(ln, name), cfg))
        end
        assert(c:write("r"))
        lu.assertEquals(c:read(), "r")             -- takes in the TLS 1.3 tickets (two of them)
        local st = c:connection_state()
        c:close()
        lu.assertEquals(st.server_name, name)
        return st.resumed
    end
    lu.assertFalse(once("localhost"))
    lu.assertFalse(once("127.0.0.1"))
    lu.assertTrue(once("localhost"), "two sessions fit in a cache of two")
    lu.assertTrue(once("127.0.0.1"), "two sessions fit in a cache of two")
    lu.assertFalse(once("a.test"))               -- a third: the oldest (localhost) goes
    lu.assertTrue(once("127.0.0.1"), "the second newest stays")
    lu.assertTrue(once("a.test"), "the newest stays")
    lu.assertFalse(once("localhost"), "the oldest was evicted")
end)

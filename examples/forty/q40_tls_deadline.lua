#!/usr/bin/env lua5.4
--- examples/forty/q40_tls_deadline.lua: Q40, a TLS handshake on a conn, and
-- the deadline that bounds it.
-- net.tls.client(conn, cfg) / net.tls.server(conn, cfg) wrap an existing
-- conn; the first read/write or handshake() runs the handshake over it, and
-- the conn's deadlines (or a ctx) bound the handshake too, as in Go. Against
-- a peer that accepts TCP and never speaks TLS, a deadline set before
-- handshake() ends it with a timeout; against a real server (a cert made
-- with the openssl CLI in a temp dir) the handshake completes and
-- connection_state() says what was agreed. Then openssl s_client, a real
-- peer, handshakes with our server.
--   lua5.4 examples/forty/q40_tls_deadline.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local tls, errors = net.tls, net.errors

local dir = F.sh("mktemp -d"):gsub("%s+$", "")
local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
local _, made = F.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    .. " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
    .. " -keyout " .. key .. " -out " .. cert)
assert(made, "openssl could not make a certificate")

net.run(function()
    F.say("Q40. a peer that accepts TCP and never answers the ClientHello")
    local mute <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()                                 -- reads the ClientHello, answers nothing
        local s = mute:accept()
        if not s then return end
        while s:read(1 << 16) do end                   -- until the client gives up and closes
        s:close()
    end)
    local raw = assert(net.dial("tcp", tostring(mute:addr())))
    local tc = tls.client(raw, tls.config{server_name = "localhost", ca_file = cert})
    tc:set_deadline(net.now() + 0.3)                  -- before the handshake: it covers it
    local t0 = net.now()
    local ok, err = tc:handshake()
    F.say("  handshake() -> %s after %.2f s", tostring(err), net.now() - t0)
    F.check(not ok and errors.is(err, net.ErrDeadlineExceeded) and err.timeout,
            "the conn's deadline bounded the handshake")
    tc:close()
    mute:close()

    F.say("Q40. a real handshake with net.tls.listen")
    local scfg = tls.config{cert_file = cert, key_file = key}
    local ln <close> = assert(tls.listen("tcp", "127.0.0.1:0", scfg))
    net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                s:set_deadline(net.now() + 5)
                local d = s:read(100)                 -- the handshake happens here
                if d then s:write("secret " .. d) end
                s:close()
            end)
        end
    end)
    local c <close> = assert(tls.dial("tcp", tostring(ln:addr()), tls.config{ca_file = cert,
                                                                          server_name = "localhost"}))
    c:set_deadline(net.now() + 5)
    assert(c:handshake())
    local st = c:connection_state()
    F.say("  version %s, cipher %s, verified %s, peer %s", tostring(st.version), tostring(st.cipher),
          tostring(st.verified), st.peer_certificates and st.peer_certificates[1]
          and tostring(st.peer_certificates[1].subject) or "?")
    F.check(st.verified == true, "the chain and the host name were verified against our CA file")
    c:write("ping")
    F.check(c:read(100) == "secret ping", "application data flows over the same socket, encrypted")

    F.say("Q40. openssl s_client (a real peer) against our server")
    -- s_client runs while our server task serves: poll for its end with
    -- net.sleep (a blocking read of the pipe would stop the loop), then reap it
    local flag = dir .. "/done"
    local p = io.popen("echo hi | timeout 5 openssl s_client -connect " .. tostring(ln:addr())
        .. " -CAfile " .. cert .. " -verify_return_error -servername localhost -quiet 2>&1; touch " .. flag)
    local limit = net.now() + 6
    while not io.open(flag) and net.now() < limit do net.sleep(0.02) end
    local out = p:read("a")
    p:close()
    F.check(out:find("secret hi", 1, true) ~= nil, "s_client handshakes and gets the answer", out)
    ln:close()
end)
os.execute("rm -rf '" .. dir .. "'")
F.done()

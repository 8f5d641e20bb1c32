#!/usr/bin/env lua5.4
--- examples/tls_echo.lua: a TLS echo server and a client that verifies it,
-- with a throwaway CA made at startup by the openssl CLI (see docs/tls.md).
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/tls_echo.lua
-- No argument: start the server, talk to it once, say what happened.
-- `--selftest`: the same with assertions, exit 0 (used by make check).
-- `--serve PORT`: only the server, on 127.0.0.1:PORT (0: any port); it
-- prints the address and the CA certificate, then serves until killed:
--   sslscan 127.0.0.1:PORT
--   openssl s_client -connect 127.0.0.1:PORT -CAfile ca.pem -servername localhost
local net = require "coronet"
local tls = net.tls

local mode = arg[1] or "demo"
local say = mode == "demo" and print or function() end

-- Run a shell command quietly; raise with its output when it fails.
local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    if not ok then error(cmd .. " failed:\n" .. out, 2) end
end

-- A CA, and a leaf for localhost/127.0.0.1/::1 signed by it, in a temp dir.
-- Returns the PEM paths (the caller removes dir).
local function make_certs()
    local p = io.popen("mktemp -d")
    local dir = p:read("l")
    p:close()
    assert(dir and dir ~= "", "mktemp -d failed")
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    sh(("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 1 -subj '/CN=tls_echo CA'")
        :format(dir, ec))
    sh(("cd %s && openssl req %s -keyout leaf.key -out leaf.csr -subj '/CN=localhost'"):format(dir, ec))
    local ext = assert(io.open(dir .. "/leaf.ext", "w"))
    ext:write("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
              "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ext:close()
    sh(("cd %s && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        .. " -out leaf.pem -days 1 -extfile leaf.ext"):format(dir))
    return dir, dir .. "/ca.pem", dir .. "/leaf.pem", dir .. "/leaf.key"
end

-- One client, served in its own task: echo until EOF. The deadline bounds
-- the handshake (run by the first read) and drops idle clients.
local function handle(c)
    while true do
        c:set_read_deadline(net.now() + 30)
        local data, err = c:read(16384)
        if not data then
            if err ~= net.EOF and mode ~= "--serve" then say("   server: " .. tostring(err)) end
            break
        end
        if not c:write(data) then break end
    end
    c:close()
end

-- The accept loop: accept never handshakes, so a stalled client can't stall it.
local function serve(ln)
    while true do
        local c, err = ln:accept()
        if not c then
            if net.errors.is(err, net.ErrClosed) then return end
            io.stderr:write("tls_echo: accept: ", tostring(err), "\n")
            net.sleep(0.05)                      -- EMFILE and friends: back off
        else
            net.go(handle, c)
        end
    end
end

local dir, ca_file, cert_file, key_file = make_certs()
local ok, err = pcall(function()
    -- Configs read their files when built, so the temp dir can go right away.
    local server_cfg = assert(tls.config{cert_file = cert_file, key_file = key_file})
    local client_cfg = assert(tls.config{ca_file = ca_file, server_name = "localhost"})
    local other_cfg = assert(tls.config{ca_file = ca_file, server_name = "other.test"})
    local f = assert(io.open(ca_file))
    local ca_pem = f:read("a")
    f:close()
    os.execute("rm -rf '" .. dir .. "'")
    dir = nil

    if mode == "--serve" then
        local port = assert(math.tointeger(tonumber(arg[2] or "0")), "usage: tls_echo.lua --serve PORT")
        local ln = assert(tls.listen("tcp", "127.0.0.1:" .. port, server_cfg))
        io.stdout:write("tls echo server on ", tostring(ln:addr()), "\n", ca_pem)
        io.stdout:flush()
        net.run(serve, ln)
        return
    end

    local ln = assert(tls.listen("tcp", "127.0.0.1:0", server_cfg))
    local addr = tostring(ln:addr())
    net.go(serve, ln)
    say("TLS echo server on " .. addr)

    -- A verifying client: the chain against our CA, the name "localhost".
    local c = assert(tls.dial("tcp", addr, client_cfg))
    local st = c:connection_state()
    say(("client: %s %s, verified=%s, server certificate %s issued by %s")
        :format(st.version, st.cipher, st.verified, st.peer_certificates[1].subject,
                st.peer_certificates[1].issuer))
    assert(st.verified and st.version == "TLS1.3" and st.server_name == "localhost")
    assert(st.peer_certificates[1].issuer == "CN=tls_echo CA")
    assert(c:write("hello over TLS\n"))
    local line = assert(c:read_full(15))
    say("client: echoed " .. line:gsub("\n", "\\n"))
    assert(line == "hello over TLS\n")
    local big = ("0123456789abcdef"):rep(8192)  -- 128 KiB: many records each way
    net.go(function() assert(c:write(big)) end)
    assert(assert(c:read_full(#big)) == big)
    say("client: 128 KiB echoed intact")
    -- close_write sends close_notify: the server sees EOF and closes; so do we.
    assert(c:write("last"))
    assert(c:close_write())
    assert(assert(c:read_full(4)) == "last")
    local rest, eof = c:read(10)
    say("client: after close_write: " .. tostring(rest) .. ", " .. tostring(eof))
    assert(rest == nil and eof == net.EOF)
    c:close()

    -- Verification is on: a client that trusts only the system store refuses
    -- our private CA, and one expecting another name refuses the name.
    local _, e1 = tls.dial("tcp", addr, {server_name = "localhost"})
    say("no CA:      " .. tostring(e1))
    assert(e1 and e1.op == "handshake" and e1.code == "certificate_unknown_authority")
    local _, e2 = tls.dial("tcp", addr, other_cfg)
    say("wrong name: " .. tostring(e2))
    assert(e2 and e2.op == "handshake" and e2.code == "certificate_hostname_mismatch")

    ln:close()
    if mode == "--selftest" then print("selftest ok") end
end)
if dir then os.execute("rm -rf '" .. dir .. "'") end
if not ok then error(err, 0) end

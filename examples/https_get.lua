#!/usr/bin/env lua5.4
--- examples/https_get.lua: an HTTP/1.1 GET over `net.tls.dial`, against a
-- local HTTPS server it starts itself (`openssl s_server -WWW`, serving a
-- file from a temp dir, with a throwaway CA made at startup). Prints the
-- status line, the headers and the body.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/https_get.lua
-- `--selftest` asserts the response and exits 0 (used by make check).
local net = require "coronet"
local tls = net.tls

local selftest = arg[1] == "--selftest"
local BODY = "Hello from openssl s_server, fetched by coronet over TLS.\n"

local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    if not p:close() then error(cmd .. " failed:\n" .. out, 2) end
end

-- A CA and a leaf for localhost/127.0.0.1 signed by it, plus the file to serve.
local function make_site()
    local p = io.popen("mktemp -d")
    local dir = p:read("l")
    p:close()
    assert(dir and dir ~= "", "mktemp -d failed")
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    sh(("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 1 -subj '/CN=https_get CA'")
        :format(dir, ec))
    sh(("cd %s && openssl req %s -keyout leaf.key -out leaf.csr -subj '/CN=localhost'"):format(dir, ec))
    local f = assert(io.open(dir .. "/leaf.ext", "w"))
    f:write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    f:close()
    sh(("cd %s && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        .. " -out leaf.pem -days 1 -extfile leaf.ext"):format(dir))
    f = assert(io.open(dir .. "/hello.txt", "w"))
    f:write(BODY)
    f:close()
    return dir
end

-- Start `openssl s_server -WWW` in dir on a kernel-chosen port. It prints
-- "ACCEPT 127.0.0.1:PORT" once it listens: that line is the readiness signal.
-- Returns the address, the server's pid and the pipe to close after killing it.
local function start_server(dir)
    local pipe = io.popen(("cd %s && exec sh -c 'echo $$; exec openssl s_server"
        .. " -accept 127.0.0.1:0 -cert leaf.pem -key leaf.key -WWW' 2>&1 </dev/null"):format(dir))
    local pid = assert(math.tointeger(tonumber(pipe:read("l"))), "no pid from the shell")
    for line in pipe:lines() do
        local addr = line:match("^ACCEPT (%S+)")
        if addr then return addr, pid, pipe end
    end
    pipe:close()
    error("openssl s_server did not start")
end

-- GET path from addr over TLS: {status =, reason =, proto =, headers = {{name, value}...}, body =}.
local function https_get(addr, path, cfg)
    local c, err = tls.dial("tcp", addr, cfg, {timeout = 10})
    if not c then return nil, err end
    c:set_deadline(net.now() + 10)               -- the whole exchange
    local ok, werr = c:write(("GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: coronet-https_get\r\n"
        .. "Accept: */*\r\nConnection: close\r\n\r\n"):format(path))
    if not ok then c:close() return nil, werr end
    local r = net.bufio.reader(c)
    local line, rerr = r:read_line()
    if not line then c:close() return nil, rerr end
    local resp = {headers = {}, tls = c:connection_state()}
    resp.proto, resp.status, resp.reason = line:match("^(HTTP/%d%.%d) (%d%d%d) ?(.*)$")
    if not resp.status then c:close() return nil, "bad status line: " .. line end
    resp.status = tonumber(resp.status)
    while true do
        local h, herr = r:read_line()
        if not h then c:close() return nil, herr end
        if h == "" then break end
        local name, value = h:match("^([^:]+):%s*(.-)%s*$")
        resp.headers[#resp.headers + 1] = {name, value}
    end
    -- Connection: close, and s_server sends no Content-Length: the body runs to EOF.
    local body, berr = net.io.read_all(r, 1 << 20)
    c:close()
    if not body then return nil, berr end
    resp.body = body
    return resp
end

local dir = make_site()
local addr, pid, pipe
local ok, err = pcall(function()
    addr, pid, pipe = start_server(dir)
    local cfg = assert(tls.config{ca_file = dir .. "/ca.pem", server_name = "localhost"})
    local resp = assert(https_get(addr, "/hello.txt", cfg))
    local st = resp.tls
    print(("GET https://localhost/hello.txt via %s: %s %s, verified=%s"):format(addr, st.version,
        st.cipher, st.verified))
    print(("%s %d %s"):format(resp.proto, resp.status, resp.reason))
    for _, h in ipairs(resp.headers) do print(h[1] .. ": " .. h[2]) end
    print()
    io.write(resp.body)
    if selftest then
        assert(resp.status == 200, "status " .. tostring(resp.status))
        assert(resp.headers[1] and resp.headers[1][1]:lower() == "content-type")
        assert(resp.headers[1][2] == "text/plain", resp.headers[1][2])
        assert(resp.body == BODY, "body: " .. resp.body)
        assert(st.verified and st.server_name == "localhost")
        assert(st.peer_certificates[1].issuer == "CN=https_get CA")
        -- a client that trusts only the system store refuses our private CA
        local _, e = https_get(addr, "/hello.txt", {server_name = "localhost"})
        assert(e and e.code == "certificate_unknown_authority", tostring(e))
        print("selftest ok")
    end
end)
if pid then
    os.execute("kill " .. pid)
    pipe:close()                                 -- reaps the shell and s_server
end
os.execute("rm -rf '" .. dir .. "'")
if not ok then error(err, 0) end

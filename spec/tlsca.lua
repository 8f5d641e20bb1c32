--- spec/tlsca.lua: throwaway certificates for the TLS specs, made with the
-- openssl CLI in a temp dir (no key material is committed):
--   local CA = dofile("spec/tlsca.lua").make()
--   CA.ca (CA certificate), CA.leaf / CA.leaf_key (localhost, a.test,
--   127.0.0.1, ::1), CA.b / CA.b_key (b.test), CA.expired / CA.expired_key,
--   CA.self / CA.self_key (self-signed localhost), CA.other / CA.other_key
--   (localhost from an untrusted CA), CA.client / CA.client_key (CN=client)
--   CA:remove() deletes the directory.
-- M.addr(ln [, host]) and M.pair(defer, srv, cli): a listener's address
-- by name, and a handshaken loopback TLS pair.
local M = {}

--- addr(ln [, host]) -> "host:port" of listener ln (host: 127.0.0.1).
function M.addr(ln, host) return (host or "127.0.0.1") .. ":" .. ln:addr().port end

--- pair(defer, srv, cli) -> a (client), b (server): a verified TLS pair over
-- loopback with both handshakes done (the server's as the client dials),
-- srv and cli the tls.configs; both closed by defer.
function M.pair(defer, srv, cli)
    local net, tls = require "coronet", require "coronet.tls"
    local ln = assert(tls.listen("tcp", "127.0.0.1:0", srv))
    local t = net.go(function()
        local b = assert(ln:accept())
        assert(b:handshake())
        return b
    end)
    local a = defer(assert(tls.dial("tcp", M.addr(ln, "localhost"), cli)))
    local b = defer(assert(t:wait()))
    ln:close()
    return a, b
end

local function sh(cmd)
    local ok = os.execute("unset LD_PRELOAD; " .. cmd .. " >/dev/null 2>&1")
    if not ok then error("tlsca: failed: " .. cmd) end
end

-- A P-256 key and a self-signed CA certificate named cn in dir/name.{key,pem}.
local function make_ca(dir, name, cn)
    sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/%s.key "
        .. "-out %s/%s.pem -days 2 -subj '/CN=%s' -addext basicConstraints=critical,CA:TRUE "
        .. "-addext keyUsage=critical,keyCertSign,cRLSign"):format(dir, name, dir, name, cn))
end

-- A leaf dir/name.{key,pem} for subject cn with subjectAltName san, signed
-- by dir/ca.{pem,key}, valid for days (negative: already expired).
local function make_leaf(dir, ca, name, cn, san, days, usage)
    sh(("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/%s.key "
        .. "-out %s/%s.csr -subj '/CN=%s'"):format(dir, name, dir, name, cn))
    local ext = io.open(dir .. "/" .. name .. ".ext", "w")
    if san then ext:write("subjectAltName=", san, "\n") end
    ext:write("extendedKeyUsage=", usage or "serverAuth", "\n")
    ext:close()
    sh(("openssl x509 -req -in %s/%s.csr -CA %s/%s.pem -CAkey %s/%s.key -CAcreateserial "
        .. "-out %s/%s.pem -days %d -extfile %s/%s.ext"):format(dir, name, dir, ca, dir, ca,
        dir, name, days, dir, name))
end

--- make() -> the fixture table described above.
function M.make()
    local p = io.popen("mktemp -d /tmp/coronet-tls.XXXXXX")
    local dir = p:read("l")
    p:close()
    make_ca(dir, "ca", "coronet spec CA")
    make_ca(dir, "otherca", "untrusted CA")
    make_leaf(dir, "ca", "leaf", "localhost", "DNS:localhost,DNS:a.test,IP:127.0.0.1,IP:::1", 1)
    make_leaf(dir, "ca", "b", "b.test", "DNS:b.test", 1)
    make_leaf(dir, "ca", "expired", "localhost", "DNS:localhost,IP:127.0.0.1", -1)
    make_leaf(dir, "otherca", "other", "localhost", "DNS:localhost,IP:127.0.0.1", 1)
    make_leaf(dir, "ca", "client", "client", nil, 1, "clientAuth")
    sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/self.key "
        .. "-out %s/self.pem -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1")
       :format(dir, dir))
    local t = {dir = dir}
    for _, n in ipairs{"ca", "leaf", "b", "expired", "other", "client", "self"} do
        t[n] = dir .. "/" .. n .. ".pem"
        t[n .. "_key"] = dir .. "/" .. n .. ".key"
    end
    function t.remove() os.execute("rm -rf '" .. dir .. "'") end
    return t
end

return M

-- bench/tls/cqueues.lua echo PORT CERT KEY: lua-http's TLS stack as its
-- HTTPS server uses it: cqueues sockets, socket:starttls() with a luaossl
-- SSL context made by lua-http's http.tls.new_server_context(), one coroutine
-- per connection, read(-16384) plus unbuffered write (as
-- ../../../shared/bench/peers/cqueues.lua).
--
-- Debian packages lua-http for Lua 5.1-5.3 only; its http/tls.lua is plain
-- Lua over luaossl, so it is loaded from the 5.3 tree (cqueues and luaossl
-- themselves are 5.4 builds). One change to its context: lua-http offers the
-- groups P-521:P-384:P-256 only, so X25519 is put first, as coronet, Go and
-- the load generator use it; every server then negotiates the same thing.
package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local signal = require "cqueues.signal"
local http_tls = require "http.tls"
local x509 = require "openssl.x509"
local pkey = require "openssl.pkey"

local workload, port, certf, keyf = arg[1], tonumber(arg[2]), arg[3], arg[4]
assert(workload == "echo" and port and certf and keyf, "usage: cqueues.lua echo PORT CERT KEY")

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local ctx = http_tls.new_server_context()
ctx:setGroups("X25519:P-256:P-384:P-521")
ctx:setCertificate(x509.new(slurp(certf), "PEM"))
ctx:setPrivateKey(pkey.new(slurp(keyf), "PEM"))

-- OpenSSL's socket BIO writes with write(): a reset peer would raise SIGPIPE.
signal.ignore(signal.SIGPIPE)

local cq = cqueues.new()
local failures = 0
local function report(what, err)
  failures = failures + 1
  if failures <= 10 then io.stderr:write(("cqueues.lua: %s: %s\n"):format(what, tostring(err))) end
end

local function echo(con)
  local ok, err = con:starttls(ctx)            -- handshake runs with the first read
  if not ok then report("starttls", err) return end
  while true do
    local data, rerr = con:read(-16384)        -- 1..16384 bytes, whatever is there
    if not data then
      if rerr then report("read", rerr) end
      break
    end
    local wok, werr = con:write(data)
    if not wok then report("write", werr) break end
  end
end

local srv = socket.listen { host = "127.0.0.1", port = port, backlog = 4096 }
cq:wrap(function()
  for con in srv:clients({ nodelay = true }) do
    cq:wrap(function()
      con:setmode("b", "bn")                    -- binary, unbuffered output (flush each write)
      con:onerror(function(_, _, e) return e end) -- return I/O errors instead of throwing
      echo(con)
      con:close()
    end)
  end
end)

while true do                                   -- keep serving even if one coroutine fails
  local ok, err = cq:loop()
  if ok then break end
  io.stderr:write("cqueues: ", tostring(err), "\n")
end

--- bench/tls/server.lua echo PORT CERT KEY: the TLS echo server of bench/tls,
-- written the way a user would write it with coronet's net.tls: one config
-- built once, tls.listen, one task per conn, a plain read/write loop (the
-- handshake runs on the first read, in the conn's own task).
-- Failures other than a clean end of stream are counted and the first few
-- printed on stderr, so a misbehaving run shows in the server's log.
local net = require "coronet"
local tls = require "coronet.tls"

local workload, port, cert, key = arg[1], arg[2], arg[3], arg[4]
assert(workload == "echo" and port and cert and key, "usage: server.lua echo PORT CERT KEY")

local cfg = assert(tls.config {cert_file = cert, key_file = key})

local failures = 0
local function report(what, err)
    failures = failures + 1
    if failures <= 10 then
        io.stderr:write(("server.lua: %s: %s (code %s)\n"):format(what, tostring(err), tostring(err and err.code)))
    elseif failures % 1000 == 0 then
        io.stderr:write(("server.lua: %d failures so far\n"):format(failures))
    end
end

local function echo(c)
    while true do
        local data, err = c:read(65536)
        if not data then
            if err ~= net.EOF then report("read", err) end
            break
        end
        local ok, werr = c:write(data)
        if not ok then report("write", werr) break end
    end
    c:close()
end

net.run(function()
    local ln = assert(tls.listen("tcp", "127.0.0.1:" .. port, cfg, {backlog = 4096}))
    while true do
        local c, err = ln:accept()
        if c then
            net.go(echo, c)
        elseif err.code == "EMFILE" or err.code == "ENFILE" then
            net.sleep(0.01)                   -- back off, as Go's server does
        else
            error(err)
        end
    end
end)

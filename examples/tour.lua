#!/usr/bin/env lua5.4
--- examples/tour.lua: a narrated tour of coronet on loopback (`make demo`).
-- Every step is a few lines you could type into a REPL: top-level calls
-- drive the loop themselves, so background tasks keep serving meanwhile.
local net = require "coronet"

local step = 0
local function say(title)
    step = step + 1
    print(("\n%d. %s"):format(step, title))
end
local function show(label, ...)
    local parts = {}
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    print(("   %-22s %s"):format(label, table.concat(parts, "  ")))
end

say("An echo server: a listener on a kernel-chosen port, one task per conn")
local ln = assert(net.listen("tcp", "127.0.0.1:0"))
show("listening on", ln:addr())
local server = net.go(function()
    while true do
        local c, err = ln:accept()
        if not c then return tostring(err) end          -- ln:close() ends the loop
        net.go(function()
            while true do
                local data = c:read(4096)
                if not data then break end
                c:write(data)
            end
            c:close()
        end)
    end
end)

say("Clients as tasks, each with its own round trip, all at once")
local wg = net.wait_group()
for i = 1, 3 do
    wg:add(1)
    net.go(function()
        local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
        c:write("hello from client " .. i)
        show("client " .. i .. " got", c:read(100))
        wg:done()
    end)
end
wg:wait()                     -- top level: drives the loop until all three are done

say("The top level is not a task, yet it can dial and read: the loop runs meanwhile")
local c = assert(net.dial("tcp", tostring(ln:addr())))
show("conn", c)
c:write("typed at the prompt")
show("read", c:read(100))

say("A read deadline firing: absolute time, persists until changed")
c:set_read_deadline(net.now() + 0.2)
local t0 = net.now()
local data, err = c:read(100)
show("result", data, err)
show("err.code, err.timeout", err.code, err.timeout)
show("waited", ("%.2f s"):format(net.now() - t0))
c:set_read_deadline(nil)      -- nil clears it

say("Half-close: close_write sends FIN, the server sees EOF, we still read")
c:write("last words")
c:close_write()
local rest = {}
while true do
    local d, e = c:read(100)
    if not d then show("then", e, "(net.EOF: " .. tostring(e == net.EOF) .. ")") break end
    rest[#rest + 1] = d
end
show("echoed after FIN", table.concat(rest))
c:close()
show("close twice", c:close())

say("A context cancels an in-flight read; the conn stays usable")
local c2 = assert(net.dial("tcp", tostring(ln:addr())))
local ctx, cancel = net.context.with_cancel(net.context.background())
net.go(function() net.sleep(0.05) cancel() end)
show("read(ctx)", c2:read(100, ctx))
c2:write("still works")
show("read again", c2:read(100))
c2:close()

say("A unix socket in the abstract namespace (no file to clean up)")
local name = "@coronet-tour-" .. require("coronet.core").getpid()
local uln = assert(net.listen("unix", name))
net.go(function()
    local u = assert(uln:accept())
    u:write("hi over " .. tostring(u:local_addr()))
    u:close()
end)
local u = assert(net.dial("unix", name))
show("unix read", u:read(100))
u:close()
uln:close()

say("Datagrams: one read_from is exactly one datagram, with its sender")
local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
net.go(function()
    local d, from = pc:read_from(512)
    pc:write_to(d:upper(), from)
end)
local uc = assert(net.dial("udp", tostring(pc:local_addr())))
uc:write("ping over udp")
show("udp reply", (uc:read(512)))
uc:close()
pc:close()

say("Records out of a byte stream: net.bufio over a conn")
local lln = assert(net.listen("tcp", "127.0.0.1:0"))
net.go(function()
    local s = assert(lln:accept())
    s:write("first line\r\nsecond li")            -- lines arrive in pieces
    net.sleep(0.01)
    s:write("ne\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s:close()
end)
local lc = assert(net.dial("tcp", tostring(lln:addr())))
local r = net.bufio.reader(lc)
show("read_line", r:read_line())
show("read_line", r:read_line())
show("read_until", (r:read_until("\r\n\r\n"):gsub("\r\n", "|")))
lc:close()
lln:close()

say("Errors read like Go's and carry a stable code")
local probe = assert(net.listen("tcp", "127.0.0.1:0"))
local dead = tostring(probe:addr())
probe:close()                                    -- nothing listens there now
local _, derr = net.dial("tcp", dead)
show("dial refused", derr)
show("code / errno", derr.code, derr.errno)
show("is ECONNREFUSED", net.errors.is(derr, net.errors.ECONNREFUSED))
show("bad address", select(2, net.dial("tcp", "127.0.0.1")))
show("unknown network", select(2, net.dial("carrier-pigeon", "x:1")))

say("TLS: the same conn methods, encrypted and verified (net.tls)")
local mk = io.popen("mktemp -d")                -- a throwaway CA and leaf (docs/tls.md)
local tmp = mk:read("l")
mk:close()
os.execute(("cd %s && (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    .. " -keyout ca.key -out ca.pem -days 1 -subj /CN=tour-CA -addext basicConstraints=critical,CA:TRUE"
    .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key"
    .. " -out leaf.pem -days 1 -subj /CN=localhost -CA ca.pem -CAkey ca.key"
    .. " -addext subjectAltName=DNS:localhost -addext basicConstraints=CA:FALSE"
    .. ") >/dev/null 2>&1"):format(tmp))
local tln = assert(net.tls.listen("tcp", "127.0.0.1:0",
    {cert_file = tmp .. "/leaf.pem", key_file = tmp .. "/leaf.key"}))
net.go(function()
    while true do
        local s = tln:accept()                       -- accept does not handshake ...
        if not s then return end
        s:set_read_deadline(net.now() + 5)           -- ... this bounds it (Q40)
        local got = s:read(100)                      -- ... the first read does
        if got then s:write(got) end
        s:close()
    end
end)
local tcfg = assert(net.tls.config{ca_file = tmp .. "/ca.pem", server_name = "localhost"})
local tc = assert(net.tls.dial("tcp", tostring(tln:addr()), tcfg))
local st = tc:connection_state()
show("tls conn", tc)
show("version, cipher", st.version, st.cipher)
show("verified, peer", st.verified, st.peer_certificates[1].subject)
tc:write("secret")
show("echoed", tc:read(100))
tc:close()
local _, terr = net.tls.dial("tcp", tostring(tln:addr()), {server_name = "localhost"})
show("no CA given", terr.code)                     -- the system store can't vouch for it
tln:close()
os.execute("rm -rf " .. tmp)

say("Closing the listener wakes the blocked accept with ErrClosed")
ln:close()
show("server task returned", server:wait())
show("debug.stats", ("tasks=%d fds=%d"):format(net.debug.stats().tasks, net.debug.stats().fds))
print("\nTour done.")

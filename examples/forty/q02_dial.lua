#!/usr/bin/env lua5.4
--- examples/forty/q02_dial.lua: Q2, what net.dial("tcp", "name:port") does.
-- It resolves the name through the dialer's resolver (net.dns.default, or
-- opts.resolver), connects, and returns a conn with no deadline: a read on
-- it waits as long as the peer stays silent. Hermetic: the name comes from
-- a hosts file this script writes; the resolver's only server is a
-- loopback port where nothing answers.
--   lua5.4 examples/forty/q02_dial.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local hosts = os.tmpname()
local f = assert(io.open(hosts, "w"))
f:write("127.0.0.1 example.test\n")
f:close()

net.run(function()
    local r <close> = assert(net.dns.resolver{servers = {"127.0.0.1:9"}, hosts_file = hosts,
                                              timeout = 0.2, attempts = 1})
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local addr = "example.test:" .. ln:addr().port
    F.say("Q2. net.dial(\"tcp\", %q, {resolver = r})", addr)
    local c <close> = assert(net.dial("tcp", addr, {resolver = r}))
    local s <close> = assert(ln:accept())
    F.say("  connected %s -> %s", tostring(c:local_addr()), tostring(c:remote_addr()))
    F.check(tostring(c:remote_addr()) == "127.0.0.1:" .. ln:addr().port,
            "the name was resolved (hosts file) and the conn is to its address")

    -- no deadline: a read parks until the peer writes, however long that is
    local reader = net.go(function() return c:read(10) end)
    net.sleep(0.3)                            -- the peer stays silent a while
    local st = net.debug.stats()
    F.say("  after 0.3 s of silence: %d task(s) blocked in read, %d timer(s) armed",
          st.blocked.read, st.timers)
    F.check(st.blocked.read == 1, "the read is still waiting: a dialed conn has no deadline")
    assert(s:write("late"))
    F.check(reader:wait() == "late", "it returns whenever the data comes")
end)
os.remove(hosts)
F.done()

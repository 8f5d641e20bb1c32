#!/usr/bin/env lua5.4
--- examples/forty/q20_q28_resolvers.lua: Q20 (the resolver split) and Q28
-- (why getaddrinfo lookups can't be cancelled).
-- coronet has two paths, chosen per resolver rather than per call: c-ares
-- on the loop (the default, like Go's pure-Go resolver: it reads
-- resolv.conf and sends packets itself) and prefer = "system", getaddrinfo
-- on a pool of up to 4 worker threads (like Go's cgo resolver: nsswitch,
-- mDNS, LDAP). A ctx wakes the task at once on either path. The difference
-- is what is left behind: a cancelled c-ares query holds no thread (its
-- answer is dropped when it comes, and r:close() forgets it at once);
-- a cancelled getaddrinfo keeps its worker thread busy until the libc call
-- returns by itself, because nothing can interrupt it (glibc has no
-- cancellation for it).
-- Hermetic: c-ares asks a dnsmasq this script starts on loopback, or a
-- loopback socket that never answers; the system path is only asked for
-- "localhost", which /etc/hosts answers, and the slow getaddrinfo is
-- simulated with the core's test delay (a stand-in for a stuck nsswitch
-- module): no query ever reaches the machine's resolver.
--   lua5.4 examples/forty/q20_q28_resolvers.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local core = require "coronet.core"
local context, errors = net.context, net.errors
net.dns.default = net.dns.resolver{servers = {"127.0.0.1:9"}, timeout = 0.2, attempts = 1}

local function hosts_has_localhost()
    for line in io.lines("/etc/hosts") do
        local addr, names = line:gsub("#.*", ""):match("^%s*(%S+)%s+(.*)$")
        if addr == "127.0.0.1" and (" " .. names .. " "):find("%slocalhost%s") then return true end
    end
    return false
end

local function cancel_after(s)
    local ctx, cancel = context.with_cancel(context.background())
    net.go(function() net.sleep(s); cancel() end)
    return ctx
end

local D = dofile(F.root .. "/spec/dnsmasq.lua")
local srv = D.start()
local ok, why = pcall(net.run, function()
    F.say("Q20. c-ares on the loop, asking dnsmasq at %s", srv.addr)
    local r <close> = assert(net.dns.resolver{servers = {srv.addr}, hosts_file = false})
    local addrs = assert(r:lookup_host("host.test"))
    F.say("  lookup_host(\"host.test\") -> %s", table.concat(addrs, " "))
    F.check(table.concat(addrs, " ") == "2001:db8::10 192.0.2.10", "c-ares got dnsmasq's records")

    F.say("Q28. c-ares: a lookup to a server that never answers, cancelled after 0.1 s")
    local hole <close> = assert(net.listen_packet("udp", "127.0.0.1:0"))   -- never answers
    local rh = assert(net.dns.resolver{servers = {tostring(hole:local_addr())}, timeout = 5,
                                       attempts = 1, hosts_file = false})
    local v, err = rh:lookup_host("slow.test", cancel_after(0.1))
    F.say("  -> %s", tostring(err))
    F.check(v == nil and errors.is(err, net.ErrCanceled), "the ctx ended the lookup (ErrCanceled, not the 5 s timeout)")
    local q = hole:read_from(512, context.with_timeout(context.background(), 2))
    F.check(q and q:find("slow", 1, true), "the query really was on the wire")
    F.check(rh:stats().abandoned == 1, "c-ares keeps the abandoned query (no thread holds it)")
    local sys = net.dns.stats().system
    F.check(sys.busy == 0, "and no worker thread is involved", sys.busy)
    local sockets = rh:stats().sockets
    rh:close()
    local ok_st, st = pcall(rh.stats, rh)
    F.say("  before close: %d c-ares socket(s); after: %s", sockets,
          ok_st and (st.abandoned .. " abandoned, " .. st.sockets .. " socket(s)") or tostring(st))
    F.check(sockets >= 1 and ok_st and st.abandoned == 0 and st.sockets == 0,
            "r:close() forgets it at once: nothing waits for the server")

    if not hosts_has_localhost() then
        F.say("Q20/Q28. /etc/hosts has no 127.0.0.1 localhost line: the system path would ask the")
        F.say("         machine's DNS server, which this script never does; skipping that half")
        return
    end
    F.say("Q20. prefer = \"system\": getaddrinfo on a worker thread (nsswitch: /etc/hosts here)")
    local rs <close> = assert(net.dns.resolver{prefer = "system"})
    local la = assert(rs:lookup_host("localhost"))
    F.say("  lookup_host(\"localhost\") -> %s", table.concat(la, " "))
    local has = {}
    for _, a in ipairs(la) do has[a] = true end
    F.check(has["127.0.0.1"] or has["::1"], "getaddrinfo answered from /etc/hosts")

    F.say("Q28. the same, with getaddrinfo stuck for 1 s (the core's test delay), cancelled after 0.1 s")
    core.dns_sys_test_delay(1.0)
    v, err = rs:lookup_host("localhost", cancel_after(0.1))
    sys = net.dns.stats().system
    F.say("  -> %s; workers busy %d, abandoned %d", tostring(err), sys.busy, sys.abandoned)
    F.check(v == nil and errors.is(err, net.ErrCanceled), "the task woke at once with ErrCanceled")
    F.check(sys.busy == 1 and sys.abandoned == 1, "but the worker is still inside getaddrinfo")
    local turns = 0
    while net.dns.stats().system.abandoned > 0 do net.sleep(0.05); turns = turns + 1 end
    F.say("  the worker came back by itself after %d more polls", turns)
    F.check(turns > 0, "only getaddrinfo returning frees it")
    core.dns_sys_test_delay(0)
end)
core.dns_sys_test_delay(0)
srv:stop()
F.check(ok, "the script ran to the end", why)
F.done()

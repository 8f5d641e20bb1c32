#!/usr/bin/env lua5.4
--- examples/forty/q31_pool_health.lua: Q31, a pool's health check.
-- Without one, a conn the peer closed or reset while it sat idle is handed
-- out again: the caller's write succeeds (the bytes go to the kernel) and
-- only the read fails, after the request is committed. The first half shows
-- that poison on a raw conn. net.pool's get() probes each idle conn without
-- blocking first (a peek: nothing = healthy, EOF/RST = dead, stray bytes =
-- dubious) and evicts the bad ones; idle_timeout retires old ones by timer.
--   lua5.4 examples/forty/q31_pool_health.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

net.run(function()
    -- a server whose conns answer each request; `kill` resets or closes them
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local server_conns = {}
    net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            server_conns[#server_conns + 1] = s
            net.go(function()
                while true do
                    local d = s:read(100)
                    if not d or not s:write("re:" .. d) then break end
                end
                s:close()
            end)
        end
    end)
    local addr = tostring(ln:addr())

    F.say("Q31. the poison, without a pool: the peer closes an idle conn (a restart, a NAT timeout)")
    local raw = assert(net.dial("tcp", addr))
    raw:write("a"); assert(raw:read(100))
    server_conns[#server_conns]:close()                    -- a FIN we don't look at
    for _ = 1, 100 do                                      -- until our kernel has it
        if F.sh("ss -tnH state close-wait '( sport = :" .. raw:local_addr().port .. " )'") ~= "" then break end
        net.sleep(0.01)
    end
    local wn = raw:write("request")
    local d, err = raw:read(100)
    F.say("  write -> %s; read -> %s", tostring(wn), tostring(err))
    F.check(wn == 7 and d == nil, "the write 'succeeds', the read fails: the request is lost")
    raw:close()

    local pool <close> = net.pool{dial = function(ctx) return net.dial("tcp", addr, ctx) end,
                                  max_idle = 2, idle_timeout = 1}
    local c1 = assert(pool:get())
    c1:write("one"); assert(c1:read(100) == "re:one")
    pool:put(c1)
    F.check(pool:stats().idle == 1, "put() parks the conn as idle")
    local s1 = server_conns[#server_conns]
    local sport, p1 = ln:addr().port, c1:local_addr().port
    s1:set_linger(0); s1:close()                           -- the peer resets it while idle
    for _ = 1, 100 do                                      -- until our kernel has the RST
        if not F.recv_q(p1, sport) then break end
        net.sleep(0.01)
    end
    local c2 = assert(pool:get())
    F.say("Q31. net.pool: the idle conn was reset; get() -> %s (a new one: %s)", tostring(c2), tostring(c2 ~= c1))
    F.check(c2 ~= c1, "get() did not hand out the dead conn")
    F.check(pool:stats().evicted_dead == 1, "stats().evicted_dead counts it", pool:stats().evicted_dead)
    c2:write("two")
    F.check(c2:read(100) == "re:two", "the conn it gave works")
    pool:put(c2)

    local s2 = server_conns[#server_conns]
    local p2 = c2:local_addr().port
    s2:write("stray")                                      -- bytes nobody asked for
    for _ = 1, 100 do                                      -- until they sit in c2's queue
        if F.recv_q(p2, sport) == 5 then break end
        net.sleep(0.01)
    end
    local c3 = assert(pool:get())
    F.check(c3 ~= c2 and pool:stats().evicted_dubious == 1, "an idle conn with unread bytes is dubious: evicted")
    pool:put(c3)
    local limit = net.now() + 5
    while pool:stats().idle > 0 and net.now() < limit do net.sleep(0.05) end
    F.check(pool:stats().idle == 0 and pool:stats().evicted_idle >= 1, "idle_timeout retires idle conns by timer")
    ln:close()
end)
F.done()

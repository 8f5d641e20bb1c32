#!/usr/bin/env lua5.4
--- examples/forty/q34_pool_time_wait.lua: Q34 (and the pool part of Q27),
-- reuse instead of TIME_WAIT.
-- 20 requests, each on a new conn closed by the client, leave 20 sockets in
-- TIME_WAIT (examples/forty/q26_q27_time_wait.lua); the same 20 through
-- net.pool reuse one conn: one dial, no TIME_WAIT until the pool closes, and
-- then one. This is the first fix for "connect: cannot assign requested
-- address"; tcp_tw_reuse and a wider ip_local_port_range come after.
--   lua5.4 examples/forty/q34_pool_time_wait.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

local N = 20
net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                while true do
                    local d = s:read(100)
                    if not d or not s:write("resp") then break end
                end
                s:close()
            end)
        end
    end)
    local port = ln:addr().port
    local dials, mine = 0, {}
    local pool = net.pool{max_idle = 4, dial = function(ctx)
        dials = dials + 1
        local c, err = net.dial("tcp", "127.0.0.1:" .. port, ctx)
        if c then mine[c:local_addr().port] = true end
        return c, err
    end}
    for _ = 1, N do
        local c = assert(pool:get())
        c:write("req")
        assert(c:read(100) == "resp")
        pool:put(c)
    end
    local st = pool:stats()
    local client_side = F.tcp_states(port, mine)
    F.say("Q34. %d requests through net.pool: %d dial(s), hits %d, misses %d; TIME_WAIT now %d",
          N, dials, st.hits, st.misses, client_side.TIME_WAIT or 0)
    F.check(dials == 1 and st.hits == N - 1 and st.misses == 1, "one conn served every request")
    F.check((client_side.TIME_WAIT or 0) == 0, "no TIME_WAIT while the pool holds it")
    pool:close()
    for _ = 1, 200 do
        client_side = F.tcp_states(port, mine)
        if (client_side.TIME_WAIT or 0) >= 1 then break end
        net.sleep(0.01)
    end
    F.say("  after pool:close(): TIME_WAIT %d (without the pool: %d)", client_side.TIME_WAIT or 0, N)
    F.check(client_side.TIME_WAIT == 1, "closing the pool leaves one, not twenty")
    ln:close()
end)
F.done()

#!/usr/bin/env lua5.4
--- bench/dns/coronet.lua SERVER [CONCURRENCY] [ROUNDS] [NAME] [MAX_INFLIGHT]:
-- lookups/s for CONCURRENCY (1000) concurrent lookup_host(NAME) calls
-- (A + AAAA), ROUNDS (5) times after one warm-up round, on one coronet
-- resolver (max_inflight: its default, 128, unless given).
-- Prints "lookups/s N errors E".
local net = require "coronet"

local server, conc, rounds = arg[1], tonumber(arg[2]) or 1000, tonumber(arg[3]) or 5
local name = arg[4] or "host.test"
local r = assert(net.dns.resolver{servers = {server}, hosts_file = false,
                                  max_inflight = tonumber(arg[5])})

local function round()
    local wg, errs = net.wait_group(), 0
    for _ = 1, conc do
        wg:add(1)
        net.go(function()
            if not r:lookup_host(name) then errs = errs + 1 end
            wg:done()
        end)
    end
    wg:wait()
    return errs
end

net.run(function()
    round()
    local t0, errs = net.now(), 0
    for _ = 1, rounds do errs = errs + round() end
    local el = net.now() - t0
    print(string.format("lookups/s %.0f errors %d", conc * rounds / el, errs))
end)
r:close()

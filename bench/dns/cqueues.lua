#!/usr/bin/env lua5.4
--- bench/dns/cqueues.lua SERVER [CONCURRENCY] [ROUNDS] [NAME]: the same
-- load through cqueues' resolver pool (cqueues.dns.resolvers): each
-- lookup asks A then AAAA, as lookup_host does (one pool, hiwat raised
-- to CONCURRENCY so every coroutine gets a resolver).
-- Prints "lookups/s N errors E".
local cqueues = require "cqueues"
local resolvers = require "cqueues.dns.resolvers"
local config = require "cqueues.dns.config"

local server, conc, rounds = arg[1], tonumber(arg[2]) or 1000, tonumber(arg[3]) or 5
local name = arg[4] or "host.test"
local host, port = server:match("^(.*):(%d+)$")
local pool = resolvers.new(config.new{nameserver = {"[" .. host .. "]:" .. port}, search = {},
                                      lookup = {"bind"}, timeout = 5, attempts = 2})
pool.hiwat = conc
pool.lowat = conc

local function round()
    local cq, errs = cqueues.new(), 0
    for _ = 1, conc do
        cq:wrap(function()
            local a = pool:query(name, "A")
            local aaaa = pool:query(name, "AAAA")
            if not a or not aaaa then errs = errs + 1 end
        end)
    end
    assert(cq:loop())
    return errs
end

round()
local t0, errs = cqueues.monotime(), 0
for _ = 1, rounds do errs = errs + round() end
local el = cqueues.monotime() - t0
print(string.format("lookups/s %.0f errors %d", conc * rounds / el, errs))

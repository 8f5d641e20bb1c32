#!/usr/bin/env lua5.4
--- bench/dns/run.lua [ROUNDS]: lookups/s for concurrent lookup_host calls
-- against one dnsmasq (spec/dnsmasq.lua's, on a random loopback port):
-- coronet's resolver, cqueues' resolver pool and Go's pure resolver
-- (GODEBUG=netdns=go; with all CPUs and with GOMAXPROCS=1), at 1000 and
-- 100 concurrent lookups. Prints a Markdown table.
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/dns/run.lua
-- Needs dnsmasq-base, lua-cqueues and golang-go (tools/deps.sh bench).
local D = dofile("spec/dnsmasq.lua")

local rounds = tonumber(arg[1]) or 5

local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    return out, ok
end

local go_bin = "build/bench/dns-go"
local out, ok = sh("mkdir -p build/bench && cd bench/dns/go && GOCACHE=${GOCACHE:-/tmp/coronet-gocache} "
                   .. "go build -o ../../../" .. go_bin .. " main.go")
if not ok then io.stderr:write("go build failed (skipping Go):\n", out) go_bin = nil end

local srv = D.start()
local ok_run, err = pcall(function()
    local clients = {
        {"coronet (c-ares, one loop)", "lua5.4 bench/dns/coronet.lua %s %d %d"},
        {"coronet, no in-flight cap", "lua5.4 bench/dns/coronet.lua %s %d %d host.test 1000000"},
        {"cqueues (dns.resolvers pool)", "lua5.4 bench/dns/cqueues.lua %s %d %d"},
    }
    if go_bin then
        clients[#clients + 1] = {"Go pure resolver, GOMAXPROCS=all",
                                 "env GODEBUG=netdns=go " .. go_bin .. " -server %s -c %d -rounds %d"}
        clients[#clients + 1] = {"Go pure resolver, GOMAXPROCS=1",
                                 "env GODEBUG=netdns=go GOMAXPROCS=1 " .. go_bin .. " -server %s -c %d -rounds %d"}
    end
    local nproc = sh("nproc"):gsub("%s+$", "")
    print(string.format("dnsmasq on %s; %s CPUs; %d rounds after a warm-up round; "
                        .. "each lookup is A + AAAA for host.test\n", srv.addr, nproc, rounds))
    print("| client | 1000 concurrent | 100 concurrent |")
    print("|---|---|---|")
    for _, c in ipairs(clients) do
        local cells = {}
        for _, conc in ipairs{1000, 100} do
            local res = sh("timeout 300 " .. string.format(c[2], srv.addr, conc, rounds))
            local rate, errs = res:match("lookups/s (%d+) errors (%d+)")
            cells[#cells + 1] = rate and (rate .. (errs ~= "0" and (" (" .. errs .. " errors)") or ""))
                                or ("failed: " .. res:gsub("%s+", " "):sub(1, 60))
        end
        print(string.format("| %s | %s | %s |", c[1], cells[1], cells[2]))
    end
end)
srv:stop()
if not ok_run then error(err, 0) end

-- spec/dns_spec.lua: net.dns (c-ares on the coronet loop, the system
-- resolver) and dialing by name with Happy Eyeballs. Fixtures come from a
-- dnsmasq on a random loopback port (spec/dnsmasq.lua), started in setUp
-- and stopped by PID in tearDown; faults come from UDP "servers" written
-- with coronet's packet conns in this file. Loopback only.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local D = dofile("spec/dnsmasq.lua")

local dns, errors, context = net.dns, net.errors, net.context
local fmt = string.format

local AT_ONCE = 0.25        -- "at once", generous for a loaded host

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local srv                   -- the dnsmasq of the running test
local open_pcs = {}         -- fake servers still open: closed by tearDown on failure

local function cleanup()
    local left = next(open_pcs) ~= nil
    for pc in pairs(open_pcs) do pc:close() end
    open_pcs = {}
    if left then H.drain() end
end

local function dnsmasq_up() srv = D.start() end
local function dnsmasq_down()
    cleanup()
    if srv then srv:stop() end
    srv = nil
end

-- resolver(opts): a resolver on the test's dnsmasq (opts added).
local function resolver(opts)
    local o = {servers = {srv.addr}, timeout = 1, attempts = 2, hosts_file = false}
    for k, v in pairs(opts or {}) do o[k] = v end
    return assert(dns.resolver(o))
end

local function sorted(t)
    local c = {}
    for i, v in ipairs(t) do c[i] = tostring(v) end
    table.sort(c)
    return c
end

local timed = H.timed      -- timed(fn, ...) -> elapsed, fn's results

-- wait_blocked(n): yield until n tasks are parked in a lookup.
local function wait_blocked(n)
    for _ = 1, 10000 do
        if net.debug.stats().blocked.lookup >= n then return end
        net.yield()
    end
    error("tasks never blocked in a lookup")
end

-- wait_until(pred): let the loop run until pred() holds (bounded: 5 s).
local function wait_until(pred, what)
    local limit = net.now() + 5
    while not pred() do
        if net.now() > limit then error("timed out waiting for " .. what) end
        net.sleep(0.002)
    end
end

local function is_dns_err(err, code)
    lu.assertNotNil(err)
    lu.assertEquals(getmetatable(err).__name, "coronet.error")
    lu.assertEquals(err.op, "lookup")
    if code then lu.assertEquals(err.code, code, tostring(err)) end
end

-- A DNS message's parts: id (2 bytes), the question section (after the
-- 12-byte header; c-ares sends exactly one question and nothing else).
local function split_query(q) return q:sub(1, 2), q:sub(13) end

local function header(id, flags, qd, an)
    return id .. string.pack(">I2I2I2I2I2", flags, qd, an, 0, 0)
end

-- What a hostile server answers to query q, by mode (nil: nothing).
local RESPONSES = {
    silent = function() return nil end,
    garbage = function()
        local t = {}
        for i = 1, 64 do t[i] = string.char(math.random(0, 255)) end
        return table.concat(t)
    end,
    short = function(q) return q:sub(1, 2) end,
    wrongid = function(q)
        local id, question = split_query(q)
        local bad = string.pack(">I2", string.unpack(">I2", id) ~ 0x5a5a)
        return header(bad, 0x8183, 1, 0) .. question
    end,
    mismatch = function(q)                  -- right id, another question
        local id = split_query(q)
        return header(id, 0x8183, 1, 0) .. "\5other\4test\0\0\1\0\1"
    end,
    truncated = function(q)                 -- TC set: c-ares retries over TCP
        local id, question = split_query(q)
        return header(id, 0x8380, 1, 0) .. question
    end,
    badbody = function(q)                   -- claims 3 answers, carries none
        local id, question = split_query(q)
        return header(id, 0x8180, 1, 3) .. question
    end,
    servfail = function(q)
        local id, question = split_query(q)
        return header(id, 0x8182, 1, 0) .. question
    end,
    refused = function(q)
        local id, question = split_query(q)
        return header(id, 0x8185, 1, 0) .. question
    end,
    formerr = function(q)
        local id, question = split_query(q)
        return header(id, 0x8181, 1, 0) .. question
    end,
}

-- rr(type, rdata): an answer record for the question's name (pointer 0xC00C).
local function rr(rtype, rdata)
    return "\192\12" .. string.pack(">I2I2I4I2", rtype, 1, 60, #rdata) .. rdata
end

-- Answers whose record names are not domain names (CVE-2021-33195), and
-- answers holding only records of another type than asked.
local function answer(q, ...)
    local id, question = split_query(q)
    local rrs = table.pack(...)
    return header(id, 0x8180, 1, rrs.n) .. question .. table.concat(rrs)
end
for name, target in pairs{semi = "\5a;b<c\4test\0", nul = "\3a\0b\4test\0",
                          esc = "\4a\\.b\4test\0"} do
    RESPONSES["badmx_" .. name] = function(q)
        return answer(q, rr(15, "\0\10" .. target))
    end
    RESPONSES["badsrv_" .. name] = function(q)
        return answer(q, rr(33, string.pack(">I2I2I2", 1, 2, 80) .. target))
    end
end
RESPONSES.other_type = function(q)                -- only an A record, whatever was asked
    return answer(q, rr(1, "\192\0\2\7"))
end
RESPONSES.good_mx_srv = function(q)               -- valid names pass (the control case)
    local qtype = string.unpack(">I2", q, #q - 3)
    if qtype == 15 then return answer(q, rr(15, "\0\10\4mail\5x_y-z\4test\0")) end
    return answer(q, rr(33, string.pack(">I2I2I2", 1, 2, 80) .. "\3web\4test\0"))
end

-- hostile(mode): a UDP "DNS server" on 127.0.0.1:0, written with coronet,
-- answering every query as RESPONSES[mode] says and counting queries.
-- Call :stop() before the test ends.
local function hostile(mode)
    local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
    open_pcs[pc] = true
    local h = {addr = tostring(pc:local_addr()), received = 0}
    h.task = net.go(function()
        while true do
            local q, from = pc:read_from(4096)
            if not q then return end
            h.received = h.received + 1
            local resp = RESPONSES[mode](q)
            if resp then pc:write_to(resp, from) end
        end
    end)
    function h.stop()
        open_pcs[pc] = nil
        pc:close()
        h.task:wait()
    end
    return h
end

-- silent(): a UDP socket that never answers (its queries just queue up).
local function silent()
    local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
    open_pcs[pc] = true
    return {addr = tostring(pc:local_addr()), stop = function() open_pcs[pc] = nil; pc:close() end}
end

local tmpfile = H.tmpfile

---------------------------------------------------------------------------
-- Every lookup kind against dnsmasq
---------------------------------------------------------------------------
TestDnsLookup = {setUp = dnsmasq_up, tearDown = dnsmasq_down}

function TestDnsLookup:test_lookup_host()
    H.run(function()
        local r <close> = resolver()
        lu.assertEquals(r:lookup_host("host.test"), {"2001:db8::10", "192.0.2.10"})
        lu.assertEquals(r:lookup_host("v4.test"), {"192.0.2.11"})
        lu.assertEquals(r:lookup_host("v6.test"), {"2001:db8::11"})
        lu.assertEquals(sorted(r:lookup_host("many.test")), {"192.0.2.21", "192.0.2.22", "192.0.2.23"})
        lu.assertEquals(r:lookup_host("HOST.test."), {"2001:db8::10", "192.0.2.10"}) -- absolute, any case
        lu.assertEquals(r:lookup_host("alias.test"), {"2001:db8::10", "192.0.2.10"}) -- through the CNAME
    end)
end

function TestDnsLookup:test_lookup_ip_returns_addrs_by_family()
    H.run(function()
        local r <close> = resolver()
        local all = assert(r:lookup_ip("ip", "host.test"))
        lu.assertEquals(#all, 2)
        lu.assertTrue(all[1]:is_v6())
        lu.assertEquals(all[1], net.ip.parse("2001:db8::10"))
        lu.assertTrue(all[2]:is_v4())
        lu.assertEquals(sorted(r:lookup_ip("ip4", "host.test")), {"192.0.2.10"})
        lu.assertEquals(sorted(r:lookup_ip("ip6", "host.test")), {"2001:db8::10"})
        local none, err = r:lookup_ip("ip6", "v4.test")
        lu.assertNil(none)
        is_dns_err(err, "nodata")
        lu.assertTrue(err.not_found)
        local bad, err2 = r:lookup_ip("tcp", "host.test")
        H.assert_err(bad, err2, "unknown_network")
    end)
end

function TestDnsLookup:test_literals_localhost_and_the_hosts_file_need_no_server()
    H.run(function()
        local q = hostile("silent")          -- would time out if asked
        local path = tmpfile("# fixture\n192.0.2.50 fromfile.test alias-ff\n"
                             .. "2001:db8::50 fromfile.test\n127.0.0.1 localhost\n")
        local r <close> = assert(dns.resolver{servers = {q.addr}, timeout = 2, hosts_file = path})
        local el, addrs = timed(r.lookup_host, r, "fromfile.test")
        lu.assertEquals(addrs, {"192.0.2.50", "2001:db8::50"})        -- file order, as Go
        lu.assertTrue(el < AT_ONCE)
        lu.assertEquals(r:lookup_host("ALIAS-FF"), {"192.0.2.50"})
        lu.assertEquals(sorted(r:lookup_ip("ip6", "fromfile.test")), {"2001:db8::50"})
        lu.assertEquals(r:lookup_addr("192.0.2.50"), {"fromfile.test.", "alias-ff."})
        lu.assertEquals(r:lookup_host("192.0.2.1"), {"192.0.2.1"})
        lu.assertEquals(r:lookup_host("::1"), {"::1"})
        lu.assertEquals(r:lookup_host("localhost"), {"127.0.0.1"})   -- the file says so
        lu.assertEquals(r:lookup_host("db.localhost"), {"::1", "127.0.0.1"}) -- RFC 6761
        local v, err = r:lookup_ip("ip6", "192.0.2.1")
        lu.assertNil(v)
        is_dns_err(err, "nodata")
        lu.assertEquals(q.received, 0)
        -- the file is read again once it changes (and hosts_max_age passed)
        local age = dns.hosts_max_age
        dns.hosts_max_age = 0
        local f = assert(io.open(path, "a"))
        f:write("192.0.2.51 added.test\n")
        f:close()
        lu.assertEquals(r:lookup_host("added.test"), {"192.0.2.51"})
        dns.hosts_max_age = age
        os.remove(path)
        q.stop()
    end)
end

function TestDnsLookup:test_lookup_cname()
    H.run(function()
        local r <close> = resolver()
        lu.assertEquals(r:lookup_cname("alias.test"), "host.test.")
        lu.assertEquals(r:lookup_cname("alias2.test"), "host.test.")  -- a chain
        lu.assertEquals(r:lookup_cname("host.test"), "host.test.")    -- no CNAME: itself
        local v, err = r:lookup_cname("nope.test")
        lu.assertNil(v)
        is_dns_err(err, "nxdomain")
    end)
end

function TestDnsLookup:test_lookup_mx_sorted_by_preference()
    H.run(function()
        local r <close> = resolver()
        for _ = 1, 5 do
            local mx = assert(r:lookup_mx("test"))
            lu.assertEquals(mx, {{host = "mail1.test.", pref = 10}, {host = "mail2.test.", pref = 20},
                                 {host = "mail3.test.", pref = 30}})
        end
        local v, err = r:lookup_mx("host.test")
        lu.assertNil(v)
        is_dns_err(err, "nodata")
    end)
end

function TestDnsLookup:test_lookup_txt_joins_a_records_strings()
    H.run(function()
        local r <close> = resolver()
        lu.assertEquals(r:lookup_txt("txt.test"), {"v=spf1 -allsecond string"})
        lu.assertEquals(sorted(r:lookup_txt("multi.test")), {"first record", "second record"})
        -- > 512 bytes: the UDP answer is truncated, c-ares retries over TCP
        local long = assert(r:lookup_txt("long.test"))
        lu.assertEquals(long, {D.LONG:rep(3)})
        lu.assertTrue(#long[1] > 512)
    end)
end

function TestDnsLookup:test_lookup_srv_sorted_by_priority()
    H.run(function()
        local r <close> = resolver()
        local seen = {}
        for _ = 1, 20 do
            local cname, recs = r:lookup_srv("http", "tcp", "test")
            lu.assertEquals(cname, "_http._tcp.test.")
            lu.assertEquals(#recs, 3)
            lu.assertEquals(recs[1].priority, 10)
            lu.assertEquals(recs[2].priority, 10)
            lu.assertEquals(recs[3], {target = "backup.test.", port = 8082, priority = 20, weight = 0})
            seen[recs[1].target] = true
        end
        lu.assertTrue(seen["web1.test."])                          -- weight 60 of 100: both come first
        local cname, recs = r:lookup_srv("", "", "_ldap._tcp.test") -- the name as is
        lu.assertEquals(cname, "_ldap._tcp.test.")
        lu.assertEquals(recs, {{target = "ldap.test.", port = 389, priority = 0, weight = 0}})
        local v, err = r:lookup_srv("nope", "tcp", "test")
        lu.assertNil(v)
        is_dns_err(err, "nxdomain")
        lu.assertEquals(err.name, "_nope._tcp.test")
    end)
end

function TestDnsLookup:test_lookup_ns()
    H.run(function()
        local r <close> = resolver()
        local ns = assert(r:lookup_ns("test"))
        local hosts = {}
        for i, n in ipairs(ns) do hosts[i] = n.host end
        lu.assertEquals(sorted(hosts), {"ns1.test.", "ns2.test."})
    end)
end

function TestDnsLookup:test_lookup_addr()
    H.run(function()
        local r <close> = resolver()
        lu.assertEquals(r:lookup_addr("192.0.2.5"), {"ptr.test."})
        lu.assertEquals(sorted(r:lookup_addr("192.0.2.6")), {"ptr1.test.", "ptr2.test."})
        lu.assertEquals(r:lookup_addr("2001:db8::10"), {"host.test."})
        lu.assertEquals(r:lookup_addr(net.ip.parse("192.0.2.10")), {"host.test."})
        local v, err = r:lookup_addr("192.0.2.99")
        lu.assertNil(v)
        is_dns_err(err, "nxdomain")
        local v2, err2 = r:lookup_addr("not an address")
        lu.assertNil(v2)
        is_dns_err(err2, "badaddr")
        lu.assertEquals(tostring(err2), "lookup not an address: unrecognized address")
    end)
end

function TestDnsLookup:test_lookup_port()
    H.run(function()
        local r <close> = resolver()
        lu.assertEquals(r:lookup_port("tcp", "http"), 80)
        lu.assertEquals(r:lookup_port("tcp6", "HTTPS"), 443)
        lu.assertEquals(r:lookup_port("udp", "domain"), 53)
        lu.assertEquals(r:lookup_port("", "ssh"), 22)
        lu.assertEquals(r:lookup_port("tcp", "8080"), 8080)
        local v, err = r:lookup_port("tcp", "no-such-service")
        lu.assertNil(v)
        is_dns_err(err, "unknown_port")
        lu.assertTrue(err.not_found)
        lu.assertEquals(tostring(err), "lookup tcp/no-such-service: unknown port")
        H.assert_err(r:lookup_port("tcp", "70000"))
        H.assert_err(r:lookup_port("sctp", "http"))
    end)
end

function TestDnsLookup:test_search_list_and_ndots()
    H.run(function()
        local r <close> = resolver{search = {"sub.test", "test"}, ndots = 1}
        lu.assertEquals(r:lookup_host("host"), {"2001:db8::10", "192.0.2.10"})
        lu.assertEquals(r:lookup_txt("txt"), {"v=spf1 -allsecond string"})
        local r0 <close> = resolver{search = {}}
        local v, err = r0:lookup_host("host")
        lu.assertNil(v)
        is_dns_err(err)
    end)
end

function TestDnsLookup:test_lookups_outside_a_task_drive_the_loop()
    H.run_top(function()
        local r <close> = resolver()
        lu.assertEquals(r:lookup_host("v4.test"), {"192.0.2.11"})
        lu.assertEquals(r:lookup_cname("alias.test"), "host.test.")
    end)
end

function TestDnsLookup:test_net_shortcuts_use_the_default_resolver()
    -- only what the default resolver answers without a server (no packets
    -- leave the host): literals, /etc/hosts, localhost, ports
    H.run(function()
        lu.assertEquals(getmetatable(dns.default), dns.Resolver)
        lu.assertIs(dns.default, dns.default)
        lu.assertEquals(net.lookup_host("127.0.0.1"), {"127.0.0.1"})
        lu.assertTrue(#net.lookup_host("localhost") >= 1)
        lu.assertEquals(net.lookup_ip("ip4", "127.0.0.1")[1], net.ip.parse("127.0.0.1"))
        lu.assertEquals(net.lookup_port("tcp", "http"), 80)
        local v, err = net.lookup_mx("bad..name")
        lu.assertNil(v)
        is_dns_err(err, "badname")
        for _, k in ipairs{"host", "ip", "addr", "cname", "mx", "txt", "srv", "ns", "port"} do
            lu.assertEquals(type(net["lookup_" .. k]), "function", k)
        end
    end)
end

function TestDnsLookup:test_default_resolver_reopens_after_close()
    local d = dns.default
    lu.assertTrue(d:close())
    local ok, err = d:close()
    lu.assertNil(ok)
    lu.assertTrue(errors.is(err, net.ErrClosed))
    local remade = dns.default          -- made from /etc/resolv.conf: not hermetic,
    lu.assertNotIs(remade, d)           -- so only literals are asked of it, and
    lu.assertEquals(net.lookup_host("127.0.0.1"), {"127.0.0.1"})
    remade:close()
    H.hermetic_dns()                    -- the loopback-only default comes back
end

---------------------------------------------------------------------------
-- Errors
---------------------------------------------------------------------------
TestDnsErrors = {setUp = dnsmasq_up, tearDown = dnsmasq_down}

function TestDnsErrors:test_nxdomain_error_shape()
    H.run(function()
        local r <close> = resolver()
        local v, err = r:lookup_host("nope.test")
        lu.assertNil(v)
        is_dns_err(err, "nxdomain")
        lu.assertEquals(tostring(err), "lookup nope.test on " .. srv.addr .. ": no such host")
        lu.assertEquals(err.name, "nope.test")
        lu.assertEquals(err.server, srv.addr)
        lu.assertTrue(err.not_found)
        lu.assertFalse(err.timeout)
        lu.assertTrue(errors.is(err, dns.errors.nxdomain))
        lu.assertTrue(err:is(dns.errors.nxdomain))
        lu.assertFalse(errors.is(err, net.ErrDeadlineExceeded))
        -- the same through a dial: Go's "dial tcp: lookup ...: no such host"
        local c, derr = net.dial("tcp", "nope.test:80", {resolver = r})
        H.assert_err(c, derr, "nxdomain")
        lu.assertEquals(tostring(derr), "dial tcp: lookup nope.test on " .. srv.addr .. ": no such host")
        lu.assertEquals(derr.op, "dial")
        lu.assertTrue(errors.is(derr, dns.errors.nxdomain))
    end)
end

function TestDnsErrors:test_nodata_and_refused()
    H.run(function()
        local r <close> = resolver()
        local v, err = r:lookup_txt("host.test")
        lu.assertNil(v)
        is_dns_err(err, "nodata")
        lu.assertTrue(err.not_found)
        lu.assertEquals(tostring(err), "lookup host.test on " .. srv.addr .. ": no such host")
        -- outside dnsmasq's --local domains (and no upstream): REFUSED
        local v2, err2 = r:lookup_host("example.com")
        lu.assertNil(v2)
        is_dns_err(err2, "refused")
        lu.assertFalse(err2.not_found)
    end)
end

local BAD_NAMES = {
    ("a"):rep(64) .. ".test",                              -- a label over 63 octets
    ("abcdefghi."):rep(25) .. "abcd",                      -- 254 octets
    "a..test", ".test", "..", "",                          -- empty labels
    "bad\0name.test", "bad\nname.test", "tab\tname", "sp ace.test", "del\127.test",
}

function TestDnsErrors:test_bad_names_fail_before_any_packet()
    H.run(function()
        local q = hostile("servfail")
        local r <close> = assert(dns.resolver{servers = {q.addr}, timeout = 1, hosts_file = false})
        lu.assertTrue(dns.valid_name(("abcdefghi."):rep(25) .. "abc"))  -- 253: fine
        lu.assertTrue(dns.valid_name(("a"):rep(63) .. ".test."))
        for _, name in ipairs(BAD_NAMES) do
            local what = fmt("%q", name)
            lu.assertFalse(dns.valid_name(name), what)
            for _, call in ipairs{
                function() return r:lookup_host(name) end,
                function() return r:lookup_ip("ip4", name) end,
                function() return r:lookup_cname(name) end,
                function() return r:lookup_mx(name) end,
                function() return r:lookup_txt(name) end,
                function() return r:lookup_ns(name) end,
                function() return r:lookup_srv("", "", name) end,
            } do
                local el, v, err = timed(call)
                lu.assertNil(v, what)
                is_dns_err(err, "badname")
                lu.assertTrue(el < AT_ONCE, what)
            end
        end
        local _, err = r:lookup_srv("x", "tcp", ("a"):rep(64))
        is_dns_err(err, "badname")
        lu.assertStrContains(tostring(err), "invalid domain name")
        lu.assertEquals(q.received, 0, "a packet was sent for a bad name")
        q.stop()
    end)
end

function TestDnsErrors:test_misuse_raises()
    local r <close> = resolver()
    lu.assertErrorMsgContains("unknown option", dns.resolver, {timout = 1})
    lu.assertErrorMsgContains("prefer", dns.resolver, {prefer = "magic"})
    lu.assertError(r.lookup_host, r, 42)
    lu.assertError(r.lookup_host, r, "host.test", "not a ctx")
    for _, bad in ipairs{{"not an address"}, {"127.0.0.1:0"}, {"127.0.0.1:99999"}, {}} do
        local v, err = dns.resolver{servers = bad}
        lu.assertNil(v)
        H.assert_err(v, err, "badserver")
        lu.assertEquals(err.op, "resolver")
        lu.assertStrContains(tostring(err), "dns resolver: bad server address")
    end
end

function TestDnsErrors:test_silent_server_times_out_within_timeout_times_attempts()
    H.run(function()
        local s = silent()
        local r <close> = assert(dns.resolver{servers = {s.addr}, timeout = 0.1, attempts = 2})
        local el, v, err = timed(r.lookup_host, r, "host.test")
        lu.assertNil(v)
        is_dns_err(err, "timeout")
        lu.assertTrue(err.timeout)
        lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
        lu.assertEquals(tostring(err), "lookup host.test on " .. s.addr .. ": i/o timeout")
        lu.assertTrue(el >= 0.19 and el < 0.2 + AT_ONCE, "timed out after " .. el)
        -- attempts = 1: one try
        local r1 <close> = assert(dns.resolver{servers = {s.addr}, timeout = 0.1, attempts = 1})
        local el1, _, err1 = timed(r1.lookup_mx, r1, "test")
        is_dns_err(err1, "timeout")
        lu.assertTrue(el1 >= 0.09 and el1 < 0.1 + AT_ONCE, "timed out after " .. el1)
        s.stop()
    end)
end

-- mode -> the code it must produce
local HOSTILE = {
    garbage = "timeout", short = "timeout", wrongid = "timeout", mismatch = "timeout",
    silent = "timeout", truncated = "unreachable", badbody = "badresp",
    servfail = "servfail", refused = "refused", formerr = "formerr",
}

function TestDnsErrors:test_hostile_servers_give_clear_errors_in_time()
    H.run(function()
        for mode, code in pairs(HOSTILE) do
            local q = hostile(mode)
            local r <close> = assert(dns.resolver{servers = {q.addr}, timeout = 0.1, attempts = 2})
            for _, kind in ipairs{"host", "mx", "txt", "addr"} do
                local what = mode .. " " .. kind
                local el, v, err
                if kind == "addr" then
                    el, v, err = timed(r.lookup_addr, r, "192.0.2.5")
                else
                    el, v, err = timed(r["lookup_" .. kind], r, "host.test")
                end
                lu.assertNil(v, what)
                is_dns_err(err)
                lu.assertEquals(err.code, code, what .. ": " .. tostring(err))
                lu.assertTrue(el < 0.2 + AT_ONCE, what .. " took " .. el)
                lu.assertStrContains(tostring(err), "lookup ")
            end
            lu.assertTrue(q.received > 0, mode)
            r:close()
            q.stop()
        end
    end)
end

-- Issue 15 item 5: MX and SRV names are validated as Go does since
-- CVE-2021-33195 (badresp), and an answer with records of another type
-- only is "no such host" (nodata), not an empty list.
function TestDnsErrors:test_bad_mx_srv_names_and_other_type_answers()
    H.run(function()
        local function ask(mode, kind)
            local q = hostile(mode)
            local r <close> = assert(dns.resolver{servers = {q.addr}, timeout = 0.5, attempts = 1})
            local v, err
            if kind == "srv" then v, err = r:lookup_srv("", "", "host.test")
            else v, err = r["lookup_" .. kind](r, "host.test") end
            r:close()
            q.stop()
            return v, err
        end
        for _, name in ipairs{"semi", "nul", "esc"} do
            local v, err = ask("badmx_" .. name, "mx")
            lu.assertNil(v, "MX " .. name .. " was handed to the user")
            is_dns_err(err, "badresp")
            v, err = ask("badsrv_" .. name, "srv")
            lu.assertNil(v, "SRV " .. name .. " was handed to the user")
            is_dns_err(err, "badresp")
        end
        for _, kind in ipairs{"mx", "txt", "srv"} do
            local v, err = ask("other_type", kind)
            lu.assertNil(v, kind .. " of an A-only answer")
            is_dns_err(err, "nodata")
        end
        local mx = assert(ask("good_mx_srv", "mx"))
        lu.assertEquals(mx[1].host, "mail.x_y-z.test.")
        local _, srvs = ask("good_mx_srv", "srv")
        lu.assertEquals(srvs[1].target, "web.test.")
    end)
end

-- Issue 15 item 5: lookups queued behind max_inflight are bounded by
-- timeout x attempts x #servers from the call, like the ones on the wire:
-- 20 lookups against a silent server, 2 on the wire at a time, all end at
-- about the same time (unbounded, the last batch ended 10x later).
function TestDnsErrors:test_queued_lookups_are_bounded_by_the_timeout_too()
    H.run(function()
        local s = silent()
        local r <close> = assert(dns.resolver{servers = {s.addr}, timeout = 0.1, attempts = 1,
                                              max_inflight = 2})
        local t0 = net.now()
        local tasks = {}
        for i = 1, 20 do
            tasks[i] = net.go(function()
                local v, err = r:lookup_mx("host.test")
                return net.now() - t0, v, err
            end)
        end
        local lo, hi = math.huge, 0
        for i = 1, 20 do
            local el, v, err = tasks[i]:wait()
            lu.assertNil(v)
            is_dns_err(err, "timeout")
            lo, hi = math.min(lo, el), math.max(hi, el)
        end
        io.stderr:write(fmt("queued lookups: first %.3f s, last %.3f s (ratio %.2f)\n", lo, hi, hi / lo))
        lu.assertTrue(hi / lo < 3, fmt("the last queued lookup took %.2fx the first", hi / lo))
        r:close()
        s.stop()
    end)
end

-- A server port where nothing listens answers with ICMP port unreachable:
-- single-query lookups fail at once with "unreachable"; see docs/dns.md
-- for lookups of both families, which c-ares 1.18 makes wait.
function TestDnsErrors:test_icmp_unreachable_fails_fast_for_single_queries()
    H.run(function()
        local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
        local addr = tostring(pc:local_addr())
        pc:close()                                   -- nothing listens there now
        local r <close> = assert(dns.resolver{servers = {addr, addr}, timeout = 5, attempts = 2})
        for _, call in ipairs{{"lookup_mx", "host.test"}, {"lookup_txt", "host.test"},
                              {"lookup_ns", "host.test"}, {"lookup_addr", "192.0.2.1"},
                              {"lookup_ip", "ip4", "host.test"}, {"lookup_ip", "ip6", "host.test"}} do
            -- "unreachable" comes only from the ICMP refusal: a lookup that
            -- waited out its 5 s x 2 attempts x 2 servers would say "timeout"
            local v, err = r[call[1]](r, call[2], call[3])
            lu.assertNil(v)
            is_dns_err(err, "unreachable")
        end
        r:close()
    end)
end

---------------------------------------------------------------------------
-- Cancellation and cleanup
---------------------------------------------------------------------------
TestDnsCancel = {setUp = dnsmasq_up, tearDown = dnsmasq_down}

function TestDnsCancel:test_cancel_wakes_at_once_and_the_query_is_cleaned_up()
    H.run(function()
        local s = silent()
        local r = assert(dns.resolver{servers = {s.addr}, timeout = 0.2, attempts = 1})
        local ctx, cancel = context.with_cancel(context.background())
        local t = net.go(function() return timed(r.lookup_host, r, "host.test", ctx) end)
        wait_blocked(1)
        lu.assertEquals(r:stats().waiting, 1)
        cancel()
        local el, v, err = t:wait()
        lu.assertNil(v)
        is_dns_err(err, "canceled")
        lu.assertTrue(errors.is(err, net.ErrCanceled))
        lu.assertFalse(err.timeout)
        lu.assertTrue(el < AT_ONCE, "woke after " .. el)
        local st = r:stats()
        lu.assertEquals(st.waiting, 0)
        lu.assertEquals(st.abandoned, 1)                 -- c-ares still runs it...
        wait_until(function() return r:stats().requests == 0 end, "the abandoned query")
        lu.assertEquals(r:stats(), {pending = 0, queued = 0, waiting = 0, abandoned = 0,
                                    sockets = 0, requests = 0})  -- ...until its timeout
        lu.assertEquals(net.debug.stats().blocked.lookup, 0)
        r:close()
        s.stop()
    end)
end

function TestDnsCancel:test_ctx_deadline_and_ended_ctx()
    H.run(function()
        local s = silent()
        local r <close> = assert(dns.resolver{servers = {s.addr}, timeout = 5})
        local ctx = context.with_timeout(context.background(), 0.05)
        local el, v, err = timed(r.lookup_mx, r, "test", ctx)
        lu.assertNil(v)
        is_dns_err(err, "timeout")
        lu.assertTrue(err.timeout)
        lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
        lu.assertTrue(el >= 0.04 and el < 0.05 + AT_ONCE, "woke after " .. el)
        -- an ended ctx fails at once, before any packet
        local done, cancel = context.with_cancel(context.background())
        cancel()
        for _, call in ipairs{
            function() return r:lookup_host("host.test", done) end,
            function() return r:lookup_txt("txt.test", done) end,
            function() return r:lookup_srv("http", "tcp", "test", done) end,
            function() return r:lookup_addr("192.0.2.5", done) end,
        } do
            local el2, v2, err2 = timed(call)
            lu.assertNil(v2)
            is_dns_err(err2, "canceled")
            lu.assertTrue(el2 < AT_ONCE)
        end
        r:close()                                         -- drops the abandoned query
        lu.assertEquals(r:stats().requests, 0)
        s.stop()
    end)
end

function TestDnsCancel:test_close_wakes_every_waiter_with_err_closed()
    H.run(function()
        local s = silent()
        local r = assert(dns.resolver{servers = {s.addr}, timeout = 5, max_inflight = 4})
        local tasks = {}
        for i = 1, 10 do                 -- 4 sent (2 lookups x A, AAAA), the rest queued
            tasks[i] = net.go(function() return r:lookup_host("host" .. i .. ".test") end)
        end
        wait_blocked(10)
        local st = r:stats()
        lu.assertEquals(st.waiting, 10)
        lu.assertEquals(st.queued, 8)
        lu.assertTrue(r:close())
        for _, t in ipairs(tasks) do
            local v, err = t:wait()
            lu.assertNil(v)
            is_dns_err(err, "closed")
            lu.assertTrue(errors.is(err, net.ErrClosed))
        end
        lu.assertEquals(r:stats().requests, 0)
        local ok, err = r:close()
        lu.assertNil(ok)
        lu.assertTrue(errors.is(err, net.ErrClosed))
        local v, err2 = r:lookup_host("host.test")
        lu.assertNil(v)
        is_dns_err(err2, "closed")
        s.stop()
    end)
end

function TestDnsCancel:test_many_cancelled_lookups_leave_nothing_behind()
    H.run(function()
        local r = resolver()
        local mem0 = collectgarbage("count")
        for round = 1, 3 do
            local ctx, cancel = context.with_cancel(context.background())
            local wg = net.wait_group()
            for i = 1, 200 do
                wg:add(1)
                net.go(function()
                    local v, err = r:lookup_host(i % 2 == 0 and "host.test" or "many.test", ctx)
                    lu.assertTrue(v ~= nil or err.code == "canceled", tostring(err))
                    wg:done()
                end)
            end
            if round > 1 then wait_blocked(1) end
            cancel()
            wg:wait()
        end
        wait_until(function() return r:stats().requests == 0 end, "abandoned queries")
        lu.assertEquals(r:stats().pending, 0)
        r:close()
        collectgarbage()
        collectgarbage()
        lu.assertTrue(collectgarbage("count") < mem0 + 256, "Lua memory grew")
    end)
end

function TestDnsCancel:test_abandoned_answers_are_freed_when_they_arrive()
    H.run(function()
        local r <close> = resolver()
        for _ = 1, 20 do
            local ctx, cancel = context.with_cancel(context.background())
            local t = net.go(function() return r:lookup_txt("long.test", ctx) end)  -- over TCP
            wait_blocked(1)
            cancel()
            local v, err = t:wait()
            lu.assertNil(v)
            is_dns_err(err, "canceled")
        end
        wait_until(function() return r:stats().requests == 0 end, "abandoned answers")
        lu.assertEquals(r:lookup_txt("long.test"), {D.LONG:rep(3)})      -- still works
    end)
end

---------------------------------------------------------------------------
-- Load
---------------------------------------------------------------------------
TestDnsLoad = {setUp = dnsmasq_up, tearDown = dnsmasq_down}

function TestDnsLoad:test_1000_concurrent_lookups_complete_and_memory_returns()
    H.run(function()
        local r <close> = resolver()
        local names = {"host.test", "v4.test", "many.test", "alias.test", "v6.test"}
        local function round()
            local wg, ok, failed = net.wait_group(), 0, {}
            for i = 1, 1000 do
                wg:add(1)
                net.go(function()
                    local v, err = r:lookup_host(names[i % #names + 1])
                    if v then ok = ok + 1 else failed[#failed + 1] = tostring(err) end
                    wg:done()
                end)
            end
            wg:wait()
            return ok, failed
        end
        round()                                          -- warm up
        collectgarbage()
        collectgarbage()
        local mem0 = collectgarbage("count")
        for _ = 1, 3 do
            local ok, failed = round()
            lu.assertEquals(ok, 1000, failed[1])
        end
        lu.assertEquals(r:stats(), {pending = 0, queued = 0, waiting = 0, abandoned = 0,
                                    sockets = 0, requests = 0})
        lu.assertEquals(net.debug.stats().blocked.lookup, 0)
        collectgarbage()
        collectgarbage()
        lu.assertTrue(collectgarbage("count") < mem0 + 256,
                      fmt("Lua memory %.0f KiB -> %.0f KiB", mem0, collectgarbage("count")))
    end)
end

---------------------------------------------------------------------------
-- The system resolver (getaddrinfo on worker threads)
---------------------------------------------------------------------------
TestDnsSystem = {}

-- The system path goes through nsswitch: these tests only ask for
-- "localhost" and 127.0.0.1, which must be answered from /etc/hosts so no
-- query can reach the (non-loopback) server in /etc/resolv.conf. Where the
-- file lacks them, the tests are skipped rather than risk a packet.
local function hosts_has_localhost()
    local f = io.open("/etc/hosts")
    if not f then return false end
    local ok = false
    for line in f:lines() do
        local addr, names = line:gsub("#.*", ""):match("^%s*(%S+)%s+(.*)$")
        if addr == "127.0.0.1" and (" " .. names .. " "):find("%slocalhost%s") then ok = true end
    end
    f:close()
    return ok
end

function TestDnsSystem:setUp()
    lu.skipIf(not hosts_has_localhost(), "/etc/hosts has no 127.0.0.1 localhost line")
end

function TestDnsSystem:tearDown()
    require("coronet.core").dns_sys_test_delay(0)
    cleanup()
end

function TestDnsSystem:test_system_lookups()
    H.run(function()
        local r <close> = assert(dns.resolver{prefer = "system"})
        local addrs = assert(r:lookup_host("localhost"))      -- /etc/hosts via nsswitch
        lu.assertTrue(#addrs >= 1)
        local has = {}
        for _, a in ipairs(addrs) do has[a] = true end
        lu.assertTrue(has["127.0.0.1"] or has["::1"], table.concat(addrs, " "))
        local ips = assert(r:lookup_ip("ip4", "localhost"))
        lu.assertTrue(ips[1]:is_loopback())
        lu.assertEquals(r:lookup_host("192.0.2.1"), {"192.0.2.1"})     -- literals stay local
        lu.assertEquals(r:lookup_cname("localhost"), "localhost.")
        local names = assert(r:lookup_addr("127.0.0.1"))
        lu.assertTrue(#names >= 1)
        lu.assertEquals(names[1]:sub(-1), ".")
        is_dns_err(select(2, r:lookup_host("bad..name")), "badname")
        local st = dns.stats().system
        lu.assertEquals(st.waiting, 0)
        lu.assertTrue(st.threads >= 1 and st.threads <= 4)
        -- an idle pool holds no thread (and no fd: H.run checks)
        wait_until(function() return dns.stats().system.threads == 0 end, "idle workers to exit")
    end)
end

function TestDnsSystem:test_system_lookup_outside_a_task()
    -- nothing but the worker can wake this task: the loop's deadlock
    -- detector must see the pool as busy
    H.run_top(function()
        local r <close> = assert(dns.resolver{prefer = "system"})
        require("coronet.core").dns_sys_test_delay(0.05)
        lu.assertTrue(#assert(r:lookup_host("localhost")) >= 1)
        require("coronet.core").dns_sys_test_delay(0)
        while dns.stats().system.threads > 0 do net.sleep(0.01) end
    end)
end

function TestDnsSystem:test_ctx_wakes_the_task_while_getaddrinfo_runs_on()
    H.run(function()
        local core = require "coronet.core"
        local r <close> = assert(dns.resolver{prefer = "system"})
        core.dns_sys_test_delay(0.3)            -- each lookup takes 0.3 s in its worker
        local ctx, cancel = context.with_cancel(context.background())
        local tasks = {}
        for i = 1, 6 do                         -- 4 workers run, 2 jobs wait in the queue
            tasks[i] = net.go(function() return timed(r.lookup_host, r, "localhost", ctx) end)
        end
        wait_blocked(6)
        wait_until(function() return dns.stats().system.busy == 4 end, "4 busy workers")
        lu.assertEquals(dns.stats().system.queued, 2)
        cancel()
        for _, t in ipairs(tasks) do
            local el, v, err = t:wait()
            lu.assertNil(v)
            is_dns_err(err, "canceled")
            lu.assertTrue(el < 0.3, "woke after " .. el)
        end
        local st = dns.stats().system
        lu.assertEquals(st.queued, 0)           -- queued jobs are dropped at once
        lu.assertEquals(st.abandoned, 4)        -- running ones finish in their thread
        lu.assertEquals(st.waiting, 0)
        wait_until(function() return dns.stats().system.abandoned == 0 end, "the workers")
        core.dns_sys_test_delay(0)
        lu.assertTrue(#assert(r:lookup_host("localhost")) >= 1)   -- the pool goes on
        -- a deadline works the same way
        core.dns_sys_test_delay(0.3)
        local el, v, err = timed(r.lookup_host, r, "localhost",
                                 context.with_timeout(context.background(), 0.05))
        lu.assertNil(v)
        is_dns_err(err, "timeout")
        lu.assertTrue(el < 0.3)
        wait_until(function() return dns.stats().system.abandoned == 0 end, "the workers")
        core.dns_sys_test_delay(0)
        wait_until(function() return dns.stats().system.threads == 0 end, "idle workers to exit")
    end)
end

---------------------------------------------------------------------------
-- Dialing by name, Happy Eyeballs
---------------------------------------------------------------------------
TestDnsDial = {setUp = dnsmasq_up, tearDown = dnsmasq_down}

-- A resolver in Lua (the dialer's resolver field accepts any object with
-- lookup_ip): answers every name with list, and records the calls.
local function fake_resolver(list)
    local f = {calls = 0}
    function f:lookup_ip(network, host, ctx)
        self.calls = self.calls + 1
        self.last = {network, host, ctx}
        local out = {}
        for _, s in ipairs(list) do
            local a = net.ip.parse(s)
            if network == "ip" or (network == "ip4") == a:is_v4() then out[#out + 1] = a end
        end
        return out
    end
    return f
end

-- A [::1] listener whose accept queue is full: a dial to it hangs (the
-- kernel drops the SYN), like a v6 path that blackholes. Returns it and
-- the conns that filled it (close them all at the end).
-- The port comes from a 127.0.0.1 listener (returned too) on which [::1]
-- was free as well: a port free on one family may be taken on the other
-- (EADDRINUSE), so the pair is picked together, retrying.
local function blackhole_v6()
    local ln, ln4
    for _ = 1, 50 do
        ln4 = assert(net.listen("tcp4", "127.0.0.1:0"))
        ln = net.listen("tcp6", "[::1]:" .. ln4:addr().port, {backlog = 1})
        if ln then break end
        ln4:close()
    end
    assert(ln, "no port free on both 127.0.0.1 and [::1]")
    local port, held = ln:addr().port, {ln}
    held.v4 = ln4
    for _ = 1, 16 do
        local c = net.dial("tcp", "[::1]:" .. port, {timeout = 0.1})
        if not c then return ln, port, held end
        held[#held + 1] = c
    end
    error("the v6 listener never filled up")
end

local function close_all(list) for _, x in ipairs(list) do x:close() end end

function TestDnsDial:test_dial_by_name_through_dnsmasq()
    H.run(function()
        local r <close> = resolver()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local port = ln:addr().port
        local acc = net.go(function() return ln:accept() end)
        -- dual.test: ::1 (nobody listens: refused at once) and 127.0.0.1
        local c = assert(net.dial("tcp", "dual.test:" .. port, {resolver = r}))
        local s = assert(acc:wait())
        lu.assertEquals(tostring(c:remote_addr()), "127.0.0.1:" .. port)
        c:close(); s:close(); ln:close()
    end)
end

function TestDnsDial:test_happy_eyeballs_v4_wins_within_fallback_delay()
    H.run(function()
        local hole, port, held = blackhole_v6()
        local ln = held.v4
        local acc = net.go(function() return ln:accept() end)
        local f = fake_resolver{"::1", "127.0.0.1"}
        local took = {}
        for i, delay in ipairs{0.1, false} do           -- false: the default, 300 ms
            local d = net.dialer{resolver = f, fallback_delay = delay or nil, timeout = 5}
            local el, c, err = timed(d.dial, d, "tcp", "twofamilies.test:" .. port)
            lu.assertNotNil(c, tostring(err))          -- v6 hangs: only v4 can win, before 5 s
            lu.assertEquals(tostring(c:remote_addr()), "127.0.0.1:" .. port)
            local want = delay or 0.3
            lu.assertTrue(el >= want * 0.9, fmt("v4 started before the fallback delay: %.3f s", el))
            took[i] = el
            c:close()
            assert(acc:wait()):close()
            acc = net.go(function() return ln:accept() end)
        end
        lu.assertTrue(took[1] < took[2], fmt("0.1 s took %.3f s, 0.3 s took %.3f s", took[1], took[2]))
        lu.assertEquals(f.last[1], "ip")
        lu.assertEquals(f.last[2], "twofamilies.test")
        ln:close()
        acc:wait()
        close_all(held)
        lu.assertNotNil(hole)
    end)
end

function TestDnsDial:test_families_are_interleaved_and_the_first_error_returned()
    H.run(function()
        local port = (function()
            local ln = assert(net.listen("tcp", "127.0.0.1:0"))
            local p = ln:addr().port
            ln:close()
            return p
        end)()
        local order = {}
        local f = fake_resolver{"::1", "::1", "127.0.0.1", "127.0.0.2"}
        local c, err = net.dial("tcp", "nobody.test:" .. port, {resolver = f, fallback_delay = 5,
            control = function(_, _, address) order[#order + 1] = address end})
        H.assert_err(c, err, "ECONNREFUSED")
        lu.assertEquals(order, {"[::1]:" .. port, "127.0.0.1:" .. port, "[::1]:" .. port,
                                "127.0.0.2:" .. port})             -- v6, v4, v6, v4
        lu.assertEquals(err.addr, "[::1]:" .. port)                -- the first attempt's error
    end)
end

function TestDnsDial:test_the_losers_are_closed()
    H.run(function()
        local ln = assert(net.listen("tcp", "[::]:0"))            -- both families
        local port = ln:addr().port
        local conns = {}
        local acc = net.go(function()
            while true do
                local s = ln:accept()
                if not s then return end
                conns[#conns + 1] = s
            end
        end)
        for _ = 1, 10 do
            local f = fake_resolver{"::1", "127.0.0.1"}
            local c = assert(net.dial("tcp", "both.test:" .. port, {resolver = f, fallback_delay = 0.0001}))
            c:write("x")
            c:close()
        end
        H.settle()
        -- every accepted conn beyond the winners reads EOF: its dialer closed it
        local wrote = 0
        for _, s in ipairs(conns) do
            s:set_read_deadline(net.now() + 1)
            local d = s:read(1)
            if d == "x" then wrote = wrote + 1 end
            s:close()
        end
        lu.assertEquals(wrote, 10)
        ln:close()
        acc:wait()
    end)
end

function TestDnsDial:test_dial_timeout_and_ctx_bound_the_lookup()
    H.run(function()
        local s = silent()
        local r <close> = assert(dns.resolver{servers = {s.addr}, timeout = 5})
        local el, c, err = timed(net.dial, "tcp", "host.test:80", {resolver = r, timeout = 0.1})
        H.assert_err(c, err, "timeout")
        lu.assertTrue(err.timeout)
        lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
        lu.assertEquals(tostring(err), "dial tcp: lookup host.test on " .. s.addr .. ": i/o timeout")
        lu.assertTrue(el >= 0.09 and el < 0.1 + AT_ONCE, "dial failed after " .. el)
        local ctx, cancel = context.with_cancel(context.background())
        local t = net.go(function() return timed(net.dial, "tcp", "host.test:80", {resolver = r}, ctx) end)
        wait_blocked(1)
        cancel()
        local el2, c2, err2 = t:wait()
        H.assert_err(c2, err2, "canceled")
        lu.assertTrue(el2 < AT_ONCE)
        r:close()
        s.stop()
    end)
end

function TestDnsDial:test_service_names_and_families()
    H.run(function()
        local r <close> = resolver()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local f = fake_resolver{"127.0.0.1"}
        local c, err = net.dial("tcp", "127.0.0.1:http", {timeout = 0.5})  -- port 80 by name
        lu.assertNil(c)
        lu.assertEquals(err.addr, "127.0.0.1:80")
        local c6, err6 = net.dial("tcp6", "v4.test:80", {resolver = r})
        H.assert_err(c6, err6)
        lu.assertStrContains(tostring(err6), "lookup v4.test")
        local acc = net.go(function() return ln:accept() end)
        local c4 = assert(net.dial("tcp4", "x.test:" .. ln:addr().port, {resolver = f}))
        lu.assertEquals(f.last[1], "ip4")
        c4:close()
        assert(acc:wait()):close()
        ln:close()
    end)
end

---------------------------------------------------------------------------
-- SRV ordering (RFC 2782), with a seeded random source
---------------------------------------------------------------------------
TestDnsSrvOrder = {tearDown = cleanup}

function TestDnsSrvOrder:test_priority_then_weighted_selection()
    math.randomseed(42)
    local first, zero_first = {}, 0
    for _ = 1, 4000 do
        local recs = dns._srv_order({
            {target = "c", priority = 20, weight = 100},
            {target = "a", priority = 10, weight = 75},
            {target = "z", priority = 10, weight = 0},
            {target = "b", priority = 10, weight = 25},
        })
        lu.assertEquals(recs[4].target, "c")
        first[recs[1].target] = (first[recs[1].target] or 0) + 1
        if recs[1].target == "z" then zero_first = zero_first + 1 end
    end
    -- a: 75 / 101, b: 25 / 101, z (weight 0): 1 / 101
    lu.assertTrue(math.abs(first.a / 4000 - 75 / 101) < 0.04, "a first " .. first.a)
    lu.assertTrue(math.abs(first.b / 4000 - 25 / 101) < 0.04, "b first " .. first.b)
    lu.assertTrue(zero_first < 120, "z first " .. zero_first)
    -- all weights zero: still every record, in some order
    local recs = dns._srv_order({{target = "x", priority = 1, weight = 0},
                                 {target = "y", priority = 1, weight = 0}})
    lu.assertEquals(sorted({recs[1].target, recs[2].target}), {"x", "y"})
end

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end

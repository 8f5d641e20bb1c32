--- spec/netns_spec.lua: faults under a real (virtual) network. Each test
-- makes two network namespaces of its own (coronet-PID-N-a/-b) joined by a
-- veth pair (10.77.N.1 <-> 10.77.N.2, nothing routed anywhere else), runs
-- coronet programs inside them with `ip netns exec`, breaks the network
-- (link down, an address nobody holds, netem delay) and checks what the
-- programs report; and write_batch's UDP GSO against a small MTU. The
-- namespaces and their processes are always removed.
-- Skipped, with a message, when not root or without network namespaces;
-- the netem test also without the sch_netem qdisc.
local lu = require "luaunit"

local PID = require("coronet.core").getpid()
local seq = 0

local function sh(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

local function read1(cmd)
    local p = io.popen(cmd)
    local v = p:read("l")
    p:close()
    return v
end

local available, why
local function check_available()
    if available ~= nil then return available end
    if read1("id -u") ~= "0" then
        available, why = false, "not root"
    elseif not sh("ip netns add coronet-" .. PID .. "-probe") then
        available, why = false, "network namespaces unavailable (ip netns add failed)"
    else
        sh("ip netns del coronet-" .. PID .. "-probe")
        available = true
    end
    return available
end

-- net_up() -> net {a, b, ipa, ipb, va, vb, procs}: two namespaces and a
-- veth pair; net_down(net) kills the processes and deletes both.
local function net_up()
    seq = seq + 1
    local n = {a = "coronet-" .. PID .. "-" .. seq .. "-a", b = "coronet-" .. PID .. "-" .. seq .. "-b",
               ipa = "10.77." .. seq .. ".1", ipb = "10.77." .. seq .. ".2",
               va = "cva" .. PID % 100000 .. seq, vb = "cvb" .. PID % 100000 .. seq, procs = {}}
    local cmds = {
        "ip netns add " .. n.a, "ip netns add " .. n.b,
        "ip link add " .. n.va .. " type veth peer name " .. n.vb,
        "ip link set " .. n.va .. " netns " .. n.a, "ip link set " .. n.vb .. " netns " .. n.b,
        "ip -n " .. n.a .. " addr add " .. n.ipa .. "/24 dev " .. n.va,
        "ip -n " .. n.b .. " addr add " .. n.ipb .. "/24 dev " .. n.vb,
        "ip -n " .. n.a .. " link set " .. n.va .. " up", "ip -n " .. n.b .. " link set " .. n.vb .. " up",
        "ip -n " .. n.a .. " link set lo up", "ip -n " .. n.b .. " link set lo up",
    }
    for _, c in ipairs(cmds) do
        if not sh(c) then
            n.failed = c
            break
        end
    end
    return n
end

local function net_down(n)
    for _, p in ipairs(n.procs) do
        if p.pid then sh("kill " .. p.pid) end
        p.f:close()
    end
    sh("ip netns del " .. n.a)
    sh("ip netns del " .. n.b)
end

-- spawn(n, ns, code) -> proc: lua5.4 running code inside namespace ns
-- (with our LUA_PATH/LUA_CPATH and cwd, so it loads the same build), its
-- stdout readable with proc.f:read("l"); the first line is its PID.
local function spawn(n, ns, code)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('local net = require "coronet"\nio.stdout:setvbuf("line")\n', code)
    f:close()
    local p = {f = io.popen("ip netns exec " .. ns .. " sh -c 'echo $$; exec lua5.4 "
        .. path .. "' 2>&1"), path = path}
    p.pid = tonumber(p.f:read("l"))
    n.procs[#n.procs + 1] = p
    return p
end

-- with_net(fn): fn(net) between net_up and net_down, always cleaned up.
local function with_net(fn)
    if not check_available() then lu.skip("netns spec skipped: " .. why) end
    local n = net_up()
    local ok, err = pcall(function()
        if n.failed then error("netns setup failed: " .. n.failed, 0) end
        fn(n)
    end)
    net_down(n)
    for _, p in ipairs(n.procs) do os.remove(p.path) end
    if not ok then error(err, 0) end
end

TestNetns = {}

-- A dead peer: the link goes down under an idle conn; keepalive (1 s idle,
-- 1 s interval, 3 probes) must end the blocked read with ETIMEDOUT.
function TestNetns:test_keepalive_detects_a_dead_peer()
    with_net(function(n)
        local srv = spawn(n, n.b, string.format([[
            local ln = assert(net.listen("tcp", "%s:7000"))
            print("listening")
            local c = assert(ln:accept())
            print("accepted")
            c:read()
        ]], n.ipb))
        lu.assertEquals(srv.f:read("l"), "listening")
        local cli = spawn(n, n.a, string.format([[
            local c = assert(net.dial("tcp", "%s:7000", {timeout = 5}))
            assert(c:set_keepalive_period(1))
            assert(net.setsockopt(c:fd(), "IPPROTO_TCP", "TCP_KEEPCNT", 3))
            c:set_read_deadline(net.now() + 30)          -- a safety net only
            print("connected")
            local t0 = net.now()
            local d, err = c:read()
            print(string.format("read %%s %%s %%.1f", tostring(d), err and err.code, net.now() - t0))
        ]], n.ipb))
        lu.assertEquals(cli.f:read("l"), "connected")
        lu.assertEquals(srv.f:read("l"), "accepted")
        assert(sh("ip -n " .. n.b .. " link set " .. n.vb .. " down"))
        local line = cli.f:read("l") or "nil"
        io.stderr:write("netns keepalive: " .. line .. "\n")
        local code, el = line:match("^read nil (%S+) ([%d.]+)$")
        lu.assertEquals(code, "ETIMEDOUT", line)
        lu.assertTrue(tonumber(el) < 29, "the safety deadline fired, not keepalive: " .. line)
    end)
end

-- A black-holed address (on the link, but nobody answers ARP for it): the
-- dial's timeout and a ctx's deadline end the connect, with a timeout.
function TestNetns:test_connect_to_a_black_hole_times_out()
    with_net(function(n)
        local cli = spawn(n, n.a, string.format([[
            local t0 = net.now()
            local c, err = net.dial("tcp", "%s:80", {timeout = 0.3})
            local t1 = net.now()
            local ctx = net.context.with_timeout(net.context.background(), 0.3)
            local c2, err2 = net.dial("tcp", "%s:80", ctx)
            print(string.format("dial %%s %%s %%s %%s %%.2f %%.2f", tostring(c), err and err.code,
                tostring(c2), err2 and err2.code, t1 - t0, net.now() - t1))
        ]], n.ipa:gsub("%.1$", ".99"), n.ipa:gsub("%.1$", ".99")))
        local line = cli.f:read("l") or "nil"
        io.stderr:write("netns black hole: " .. line .. "\n")
        local c1, e1, c2, e2 = line:match("^dial (%S+) (%S+) (%S+) (%S+)")
        lu.assertEquals({c1, e1, c2, e2}, {"nil", "timeout", "nil", "timeout"}, line)
    end)
end

-- Real RTT (netem delay 50 ms each way): a read deadline shorter than the
-- round trip fires, a longer one does not, and the round trip measured is
-- at least the delay (ordering, not a time bound).
function TestNetns:test_deadlines_under_real_rtt()
    with_net(function(n)
        if not sh("ip netns exec " .. n.a .. " tc qdisc add dev " .. n.va .. " root netem delay 50ms") then
            lu.skip("netem unavailable (no sch_netem in this kernel): deadline-under-RTT test skipped")
        end
        local srv = spawn(n, n.b, string.format([[
            local ln = assert(net.listen("tcp", "%s:7001"))
            print("listening")
            local c = assert(ln:accept())
            while true do
                local d = c:read()
                if not d then break end
                c:write(d)
            end
        ]], n.ipb))
        lu.assertEquals(srv.f:read("l"), "listening")
        local cli = spawn(n, n.a, string.format([[
            local c = assert(net.dial("tcp", "%s:7001", {timeout = 5}))
            local t0 = net.now()
            c:write("x")
            assert(c:read(1))
            local rtt = net.now() - t0
            c:set_read_deadline(net.now() + rtt / 5)
            c:write("y")
            local d, err = c:read(1)
            c:set_read_deadline(net.now() + 10 * rtt)
            local d2 = c:read(1)                   -- the "y" arrives after all
            print(string.format("rtt %%.3f short %%s %%s then %%s", rtt, tostring(d), err and err.code, tostring(d2)))
        ]], n.ipb))
        local line = cli.f:read("l") or "nil"
        io.stderr:write("netns rtt: " .. line .. "\n")
        local rtt, d, code, d2 = line:match("^rtt ([%d.]+) short (%S+) (%S+) then (%S+)")
        lu.assertTrue(tonumber(rtt) >= 0.05, line)
        lu.assertEquals({d, code, d2}, {"nil", "timeout", "y"}, line)
    end)
end

-- write_batch's UDP GSO, seen from the namespace's own UDP counters (no
-- other traffic moves them): a run of small datagrams leaves as fewer sends
-- than datagrams arrive (one on Linux 6.x: OutDatagrams counts sends,
-- InDatagrams each datagram). With lo's MTU at 1500, a run of 2000-byte
-- datagrams is refused GSO (EINVAL): write_batch sends them one by one
-- (fragmented), every one arrives intact, and small runs still coalesce.
function TestNetns:test_write_batch_gso_and_its_mtu_fallback()
    with_net(function(n)
        assert(sh("ip -n " .. n.a .. " link set lo mtu 1500"))
        local p = spawn(n, n.a, [[
            local function udp()                       -- OutDatagrams, InDatagrams
                local f = {}
                for l in io.lines("/proc/net/snmp") do
                    if l:match("^Udp: %d") then for x in l:gmatch("%S+") do f[#f + 1] = x end end
                end
                return tonumber(f[5]), tonumber(f[2])
            end
            net.run(function()
                local rx = assert(net.listen_packet("udp4", "127.0.0.1:0"))
                local tx = assert(net.listen_packet("udp4", "127.0.0.1:0"))
                assert(rx:set_read_buffer(1 << 20))
                local function run(label, size, count)
                    local msgs = {}
                    for i = 1, count do
                        msgs[i] = {data = (string.format("%03d", i) .. ("z"):rep(size)):sub(1, size),
                                   addr = rx:local_addr()}
                    end
                    local o0, i0 = udp()
                    local sent = tx:write_batch(msgs)
                    local intact = 0
                    for i = 1, count do
                        rx:set_read_deadline(net.now() + 5)
                        if rx:read_from(4096) == msgs[i].data then intact = intact + 1 end
                    end
                    local o1, i1 = udp()
                    print(string.format("%s sent=%s intact=%d out=%d in=%d", label, tostring(sent),
                        intact, o1 - o0, i1 - i0))
                end
                run("small", 100, 10)
                run("large", 2000, 6)
                run("again", 100, 10)
            end)
        ]])
        for _, label in ipairs({"small", "large", "again"}) do
            local line = p.f:read("l") or "nil"
            io.stderr:write("netns gso: " .. line .. "\n")
            local l, sent, intact, out, inn = line:match("^(%a+) sent=(%S+) intact=(%d+) out=(%d+) in=(%d+)$")
            local count = label == "large" and 6 or 10
            lu.assertEquals({l, sent, tonumber(intact), tonumber(inn)},
                            {label, tostring(count), count, count}, line)
            if label == "large" then
                lu.assertEquals(tonumber(out), count, "refused GSO: one send per datagram: " .. line)
            else
                lu.assertTrue(tonumber(out) < count, "the run was coalesced: " .. line)
            end
        end
    end)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

#!/usr/bin/env lua5.4
--- examples/forty/q14_keepalive.lua: Q14, what keepalive does.
-- Every TCP conn coronet dials or accepts has SO_KEEPALIVE on with a 15 s
-- period (TCP_KEEPIDLE and TCP_KEEPINTVL, Go's default); set_keepalive_period
-- changes both, set_keepalive(false) turns it off. The kernel then probes an
-- idle conn; when TCP_KEEPCNT probes go unanswered the conn is dead and a
-- blocked read returns an error with code "ETIMEDOUT" (Go's answer says
-- "ECONNRESET or similar": on Linux it is ETIMEDOUT).
--
-- Always shown: the options read back with getsockopt, and the kernel's
-- keepalive timer in `ss -o`. As root, the script also shows the probes
-- failing: it makes two network namespaces joined by a veth pair (traffic
-- never leaves them; both are deleted at the end), runs a server in one and
-- a client in the other, takes the server's link down, and the client's
-- read ends with ETIMEDOUT after the probes. Not root: it says it can't.
--   lua5.4 examples/forty/q14_keepalive.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local core = require "coronet.core"

local function opt(c, level, name) return net.getsockopt(c:fd(), level, name) end

-- ss's timer for the conn with local port `port`: kind, probes ("keepalive", 0)
local function ss_timer(port)
    local out = F.sh("ss -tnoH state established '( sport = :" .. port .. " )'")
    local kind, probes = out:match("timer:%((%a+),[^,]*,(%d+)%)")
    return kind, tonumber(probes), out:gsub("%s+$", "")
end

-- The two halves that run inside the namespaces (re-executions of this script).
if arg[1] == "--ka-server" then
    net.run(function()
        local ln = assert(net.listen("tcp", arg[2] .. ":0", {keepalive = -1}))
        print("listening " .. ln:addr().port .. " " .. core.getpid())
        io.stdout:flush()
        local s = assert(ln:accept())
        s:read(100, net.context.with_timeout(net.context.background(), 20))
    end)
    os.exit(0)
elseif arg[1] == "--ka-client" then
    net.run(function()
        local c = assert(net.dial("tcp", arg[2], {timeout = 5}))
        assert(c:set_keepalive_period(1))                 -- idle 1 s, then a probe every 1 s
        assert(net.setsockopt(c:fd(), "IPPROTO_TCP", "TCP_KEEPCNT", 2))
        local port = c:local_addr().port
        print("connected " .. port)
        io.stdout:flush()
        local max_probes, done = 0, false
        local watch = net.go(function()                   -- sample ss's probe count
            while not done do
                local _, probes = ss_timer(port)
                if probes and probes > max_probes then max_probes = probes end
                net.sleep(0.25)
            end
        end)
        local t0 = net.now()
        local d, err = c:read(100, net.context.with_timeout(net.context.background(), 15))
        print(string.format("result %s %s %.1f %d", tostring(d), err and err.code or "-",
                            net.now() - t0, max_probes))
        print("error " .. tostring(err))
        done = true
        watch:wait()
        c:close()
    end)
    os.exit(0)
end

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())
    F.say("Q14. a dialed conn: SO_KEEPALIVE %d, TCP_KEEPIDLE %d, TCP_KEEPINTVL %d, TCP_KEEPCNT %d",
          opt(c, "SOL_SOCKET", "SO_KEEPALIVE"), opt(c, "IPPROTO_TCP", "TCP_KEEPIDLE"),
          opt(c, "IPPROTO_TCP", "TCP_KEEPINTVL"), opt(c, "IPPROTO_TCP", "TCP_KEEPCNT"))
    F.check(opt(c, "SOL_SOCKET", "SO_KEEPALIVE") == 1 and opt(s, "SOL_SOCKET", "SO_KEEPALIVE") == 1,
            "keepalive is on for dialed and accepted conns")
    F.check(opt(c, "IPPROTO_TCP", "TCP_KEEPIDLE") == 15 and opt(c, "IPPROTO_TCP", "TCP_KEEPINTVL") == 15,
            "with Go's 15 s period (idle and interval)")
    assert(c:set_keepalive_period(3))
    F.check(opt(c, "IPPROTO_TCP", "TCP_KEEPIDLE") == 3 and opt(c, "IPPROTO_TCP", "TCP_KEEPINTVL") == 3,
            "set_keepalive_period(3) sets both")
    local kind, _, line = ss_timer(c:local_addr().port)
    F.say("  ss -o: %s", line)
    F.check(kind == "keepalive", "the kernel has a keepalive timer armed on it (ss -o)", kind)
    assert(c:set_keepalive(false))
    F.check(opt(c, "SOL_SOCKET", "SO_KEEPALIVE") == 0, "set_keepalive(false) turns it off")
    F.check(ss_timer(c:local_addr().port) ~= "keepalive", "and the timer is gone")
end)

if not F.is_root() or not F.sh("command -v ip") :match("ip") then
    F.say("Q14. not root (or no iproute2): can't make network namespaces, so the probes going")
    F.say("     unanswered and the ETIMEDOUT they cause can't be shown here; above are the")
    F.say("     options and the kernel's timer, the closest this machine allows.")
    F.done()
end

F.say("Q14. a peer that stops answering, inside two network namespaces made for this")
local id = "coronet-q14-" .. core.getpid()
local A, B = id .. "-a", id .. "-b"
local setup = table.concat({
    "ip netns add " .. A, "ip netns add " .. B,
    "ip -n " .. A .. " link add va type veth peer name vb netns " .. B,
    "ip -n " .. A .. " addr add 10.251.0.1/30 dev va", "ip -n " .. B .. " addr add 10.251.0.2/30 dev vb",
    "ip -n " .. A .. " link set va up", "ip -n " .. B .. " link set vb up",
    "ip -n " .. A .. " link set lo up", "ip -n " .. B .. " link set lo up"}, " && ")
local ok, why = pcall(function()
    local _, made = F.sh(setup)
    if not made then
        F.say("  could not make the namespaces (a container without CAP_SYS_ADMIN?): only the above")
        return
    end
    local self = arg[0]
    local server = assert(io.popen("exec ip netns exec " .. B .. " lua5.4 " .. self .. " --ka-server 10.251.0.2"))
    local port, spid = server:read("l"):match("^listening (%d+) (%d+)")
    local client = assert(io.popen("exec ip netns exec " .. A .. " lua5.4 " .. self
                                   .. " --ka-client 10.251.0.2:" .. port))
    local first = client:read("l") or ""
    F.check(first:match("^connected") ~= nil, "the client connected across the veth pair", first)
    os.execute("ip -n " .. B .. " link set vb down")          -- the peer goes silent
    F.say("  the server's link is down; the client reads, idle 1 s, probes every 1 s, 2 probes")
    local result, errline = client:read("l") or "", client:read("l") or ""
    client:close()
    os.execute("kill " .. spid .. " 2>/dev/null")
    server:close()
    local data, code, secs, probes = result:match("^result (%S+) (%S+) (%S+) (%d+)")
    F.say("  client: %s after %s s; ss saw up to %s unanswered probe(s)", errline, secs, probes)
    F.check(data == "nil" and code == "ETIMEDOUT", "the read ends with ETIMEDOUT once the probes fail", result)
    F.check(tonumber(probes or 0) >= 1, "ss -o counted keepalive probes going unanswered", probes)
    F.check(tonumber(secs or 0) >= 2, "not before idle + the probes", secs)
end)
os.execute("ip netns del " .. A .. " 2>/dev/null; ip netns del " .. B .. " 2>/dev/null")
F.check(not F.sh("ip netns list"):find(id, 1, true), "both namespaces are gone")
if not ok then F.check(false, "the namespace part ran", why) end
F.done()

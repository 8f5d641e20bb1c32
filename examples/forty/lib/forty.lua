--- examples/forty/lib/forty.lua: what the forty-question scripts share.
-- Each script sets its load paths from its own location, then
-- `local F = require "forty"`. A script narrates what it shows and checks
-- every claim it makes with F.check; F.done() exits 1 when one failed, so
-- `lua5.4 examples/forty/qNN_x.lua --selftest` (what `make check` runs)
-- fails when the behaviour a claim describes breaks. Without --selftest
-- the same checks run and the narration is the point.
local F = {}

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
F.root = here .. "/../.."                 -- the checkout, as the script found it
F.selftest = false
for _, a in ipairs(arg or {}) do
    if a == "--selftest" then F.selftest = true end
end

local fails, passes = 0, 0

--- say(fmt, ...): one line of narration.
function F.say(fmt, ...)
    io.write(string.format(fmt, ...), "\n")
    io.flush()
end

--- check(cond, claim [, detail]) -> cond: record one claim; a false cond
-- is a failure (printed with detail), and F.done() will exit 1.
function F.check(cond, claim, detail)
    if cond then
        passes = passes + 1
        F.say("  ok    %s", claim)
    else
        fails = fails + 1
        F.say("  FAIL  %s%s", claim, detail and (" (" .. tostring(detail) .. ")") or "")
    end
    return cond
end

--- done(): the summary line; exits 1 when a claim failed.
function F.done()
    F.say("%d claims checked, %d failed", passes + fails, fails)
    os.exit(fails == 0 and 0 or 1, true)
end

--- sh(cmd) -> output: a shell command's stdout (stderr dropped), and
-- whether it succeeded.
function F.sh(cmd)
    local p = io.popen(cmd .. " 2>/dev/null")
    local out = p:read("a")
    local ok = p:close()
    return out, ok
end

--- open_fds() -> n: the fds this process holds, from /proc/PID/fd (not
-- counting the pipe popen uses to ask, as spec/helpers.lua does).
function F.open_fds()
    local pid = require("coronet.core").getpid()
    local out = F.sh("me=$(readlink /proc/$$/fd/1); ls -l /proc/" .. pid
        .. "/fd | grep -- '->' | grep -vcF \"$me\"")
    return tonumber(out:match("%d+"))
end

--- is_root() -> bool
function F.is_root()
    return F.sh("id -u"):match("^0%s") ~= nil
end

local TCP_STATES = {["01"] = "ESTABLISHED", ["02"] = "SYN_SENT", ["03"] = "SYN_RECV",
    ["04"] = "FIN_WAIT1", ["05"] = "FIN_WAIT2", ["06"] = "TIME_WAIT", ["07"] = "CLOSE",
    ["08"] = "CLOSE_WAIT", ["09"] = "LAST_ACK", ["0A"] = "LISTEN", ["0B"] = "CLOSING"}

--- tcp_states(port [, mine]) -> {STATE = n}, {STATE = n}: the kernel's TCP
-- sockets (/proc/net/tcp and tcp6) whose remote port is `port` (the dialing
-- side), then those whose local port is `port` (the listening side), by
-- state. `mine` ({[local_port] = true}) keeps only the dialing-side sockets
-- on those local ports: a TIME_WAIT left by someone else's earlier conn to
-- a server that had the same port number must not count.
function F.tcp_states(port, mine)
    local remote, localside = {}, {}
    for _, file in ipairs{"/proc/net/tcp", "/proc/net/tcp6"} do
        local f = io.open(file)
        if f then
            f:read("l")                                   -- the header
            for line in f:lines() do
                local lp, rp, st = line:match("^%s*%d+: %x+:(%x+) %x+:(%x+) (%x%x)")
                if st then
                    local name = TCP_STATES[st] or st
                    if tonumber(rp, 16) == port and (not mine or mine[tonumber(lp, 16)]) then
                        remote[name] = (remote[name] or 0) + 1
                    end
                    if tonumber(lp, 16) == port then localside[name] = (localside[name] or 0) + 1 end
                end
            end
            f:close()
        end
    end
    return remote, localside
end

--- recv_q(lport, rport) -> n: the bytes queued unread on the established TCP
-- socket from local port lport to remote port rport (ss's Recv-Q), or nil.
function F.recv_q(lport, rport)
    local out = F.sh("ss -tnH state established '( sport = :" .. lport .. " and dport = :" .. rport .. " )'")
    return tonumber(out:match("^%s*(%d+)"))
end

--- sysctl(name) -> string: a value under /proc/sys (dots as in sysctl).
function F.sysctl(name)
    local f = io.open("/proc/sys/" .. name:gsub("%.", "/"))
    if not f then return nil end
    local v = f:read("a"):gsub("%s+$", "")
    f:close()
    return v
end

return F

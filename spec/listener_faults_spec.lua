--- spec/listener_faults_spec.lua: accept under fd exhaustion. Runs a child
-- with `ulimit -n 32` so exhausting fds is cheap and cannot disturb us.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local CHILD = [[
local net = require "coronet"
local ln = assert(net.listen("tcp", "127.0.0.1:0"))
local c = assert(net.dial("tcp", tostring(ln:addr())))
local hold = {}
while true do                       -- use up every fd the limit allows
    local f = io.open("/dev/null")
    if not f then break end
    hold[#hold + 1] = f
end
local t0 = net.now()
local a, err = ln:accept()          -- a connection is pending, but no fd is left
local took = net.now() - t0
print("first", a, err and err.code, err and tostring(err), string.format("%.3f", took))
for _, f in ipairs(hold) do f:close() end
a, err = ln:accept()                -- with fds back, the same pending conn is accepted
print("second", a ~= nil, err)
a:write("ok") print("read", c:read(10))
]]

TestListenerFaults = {}

function TestListenerFaults:test_accept_emfile_is_an_error_not_a_busy_loop()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(CHILD)
    f:close()
    local p = io.popen("ulimit -n 32 && "
        .. "timeout 10 lua5.4 " .. path .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(path)
    local code, msg, took = out:match("first\tnil\t(%S+)\t([^\t]+)\t([%d.]+)")
    lu.assertEquals(code, "EMFILE", out)
    lu.assertStrContains(msg, "accept tcp 127.0.0.1:")
    lu.assertStrContains(msg, "too many open files")
    lu.assertTrue(tonumber(took) < 0.5, "accept returned at once, not after spinning")
    lu.assertStrContains(out, "second\ttrue\tnil")
    lu.assertStrContains(out, "read\tok")
end

-- The reproducer from issue 15: a plain accept loop whose handlers read
-- then close, 100 clients at once, under `ulimit -n 64`. The server tells
-- the spec over a control conn when accept first fails with EMFILE and
-- when all 100 conns were served; the spec samples the server's CPU time
-- (utime+stime from /proc/PID/stat) over wall time while the clients hold
-- their conns, so EMFILE is the state the server is in.
local SERVER = [[
local net = require "coronet"
local ctl = assert(net.dial("tcp", "127.0.0.1:" .. arg[1]))
local ln = assert(net.listen("tcp", "127.0.0.1:0"))
ctl:write(ln:addr().port .. "\n")
net.go(function() ctl:read(1) os.exit(0) end)     -- the spec closes ctl: exit
local served, emfile = 0, 0
net.run(function()
    while true do
        local c, err = ln:accept()
        if c then
            net.go(function()
                while c:read(100) do end
                c:close()
                served = served + 1
                if served == 100 then ctl:write("served " .. emfile .. "\n") end
            end)
        elseif err.code == "EMFILE" then
            emfile = emfile + 1
            if emfile == 1 then ctl:write("emfile\n") end
        end
    end
end)
]]

local function cpu_ticks(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    local rest = s:match("%) (.*)$")          -- after the command name
    local fields = {}
    for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
    return tonumber(fields[12]) + tonumber(fields[13])   -- utime, stime (fields 14, 15)
end

function TestListenerFaults:test_emfile_plain_accept_loop_recovers_without_spinning()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(SERVER)
    f:close()
    local hz = tonumber(io.popen("getconf CLK_TCK"):read("l"))
    H.run(function()
        local ctlln = assert(net.listen("tcp", "127.0.0.1:0"))
        local p = io.popen("ulimit -n 64 && echo $$ && exec lua5.4 " .. path .. " " .. ctlln:addr().port)
        local pid = p:read("l")
        local ok, err = pcall(function()
            local ctl = assert(ctlln:accept())
            ctlln:close()
            ctl:set_read_deadline(net.now() + 20)
            local r = net.bufio.reader(ctl)
            local port = assert(r:read_line())
            local release = net.chan()
            local clients = {}
            for i = 1, 100 do
                clients[i] = net.go(function()
                    local c = assert(net.dial("tcp", "127.0.0.1:" .. port))
                    release:recv()
                    c:write("bye")
                    c:close()
                end)
            end
            lu.assertEquals(r:read_line(), "emfile")
            local c0, w0 = cpu_ticks(pid), net.now()
            net.sleep(0.5)                      -- the EMFILE phase, held by the clients
            local c1, w1 = cpu_ticks(pid), net.now()
            local ratio = (c1 - c0) / hz / (w1 - w0)
            io.stderr:write(string.format("emfile phase: server cpu/wall = %.3f\n", ratio))
            release:close()
            for _, t in ipairs(clients) do t:wait() end
            local served = r:read_line()
            io.stderr:write("emfile phase: server says: ", tostring(served), " accept errors\n")
            ctl:close()
            lu.assertNotNil(served and served:match("^served %d+$"), "the server never served all 100")
            lu.assertTrue(ratio < 0.25, string.format("accept spun during EMFILE: cpu/wall %.3f", ratio))
        end)
        ctlln:close()
        os.execute("kill " .. pid .. " 2>/dev/null")
        p:close()
        if not ok then error(err, 0) end
    end)
    os.remove(path)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

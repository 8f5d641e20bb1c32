--- spec/listener_faults_spec.lua: accept under fd exhaustion. Runs a child
-- with `ulimit -n 32` so exhausting fds is cheap and cannot disturb us.
local lu = require "luaunit"

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

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

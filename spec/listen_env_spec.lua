--- spec/listen_env_spec.lua: systemd socket activation. A child started
-- the way systemd starts a service (the listening socket as fd 3,
-- LISTEN_PID = its pid, LISTEN_FDS = 1) serves through
-- net.listeners_from_env().
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local CHILD = [[
local net = require "coronet"
local lns = assert(net.listeners_from_env())
assert(#lns == 1, "listeners: " .. #lns)
lns[1]:set_deadline(net.now() + 10)          -- never outlive the test
local c = assert(lns[1]:accept())
c:write("served by " .. tostring(lns[1]:addr()))
c:close()
]]

TestListenEnv = {}

function TestListenEnv:test_child_serves_on_the_inherited_fd_3()
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local fd = assert(ln:file())                 -- inheritable dup for the child
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        f:write(CHILD)
        f:close()
        -- sh moves the socket to fd 3, then execs lua5.4 in its own pid
        local cmd = string.format("sh -c 'exec 3<&%d %d<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec lua5.4 %s' &",
                                  fd, fd, path)
        assert(os.execute(cmd))
        net.close_fd(fd)
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        c:set_read_deadline(net.now() + 10)
        local parts = {}
        while true do
            local d = c:read()
            if not d then break end
            parts[#parts + 1] = d
        end
        lu.assertEquals(table.concat(parts), "served by " .. tostring(ln:addr()))
        c:close()
        ln:close()
        os.remove(path)
    end)
end

function TestListenEnv:test_env_for_another_pid_is_ignored()
    local out = io.popen("LISTEN_PID=1 LISTEN_FDS=1 lua5.4 -e 'print(#require(\"coronet\").listeners_from_env())' 2>&1")
    lu.assertEquals(out:read("a"), "0\n")
    out:close()
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

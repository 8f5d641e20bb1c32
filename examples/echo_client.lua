#!/usr/bin/env lua5.4
--- examples/echo_client.lua [ADDRESS]: send each line of stdin to an echo
-- server and print what comes back. Default address 127.0.0.1:7007.
-- `--selftest` starts a server task itself and sends three lines.
local net = require "coronet"

local function roundtrip(c, line)
    assert(c:write(line .. "\n"))
    c:set_read_deadline(net.now() + 5)
    return assert(c:read_full(#line + 1)):sub(1, -2)
end

if arg[1] == "--selftest" then
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        local s = assert(ln:accept())
        while true do
            local d = s:read()
            if not d then break end
            s:write(d)
        end
        s:close()
    end)
    local c = assert(net.dial("tcp", tostring(ln:addr()), {timeout = 2}))
    for _, line in ipairs{"one", "two", "three"} do
        assert(roundtrip(c, line) == line)
        print("echoed: " .. line)
    end
    c:close()
    ln:close()
    return
end

local c, err = net.dial("tcp", arg[1] or "127.0.0.1:7007", {timeout = 5})
if not c then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
end
for line in io.lines() do print(roundtrip(c, line)) end
c:close()

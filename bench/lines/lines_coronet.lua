--- bench/lines/lines_coronet.lua [MB]: the coronet side of bench/lines:
-- bufio reader read_line() over a unix stream connection while another
-- task of the same loop writes MB MiB (default 100) of 80-byte lines.
-- Prints "lines bytes seconds" (reading time, first line to EOF).
local net = require "coronet"

local mb = tonumber(arg[1]) or 100
local line = string.rep("x", 79) .. "\n"
local block = string.rep(line, (1 << 20) // 80)

net.run(function()
    local name = "@coronet-bench-lines-" .. require("coronet.core").getpid()
    local ln = assert(net.listen("unix", name))
    net.go(function()
        local c = assert(ln:accept())
        for _ = 1, mb do assert(c:write(block)) end
        c:close()
    end)
    local c = assert(net.dial("unix", name))
    local rd = net.bufio.reader(c)
    local t0 = net.now()
    local n, bytes = 0, 0
    while true do
        local l, err = rd:read_line()
        if not l then
            assert(err == net.EOF, tostring(err))
            break
        end
        n = n + 1
        bytes = bytes + #l + 1
    end
    print(string.format("%d %d %.6f", n, bytes, net.now() - t0))
    c:close()
    ln:close()
end)

--- bench/lines/lines_cqueues.lua [MB]: the cqueues side of bench/lines:
-- read("*l") over a socket pair (cqueues.socket.pair) while another
-- coroutine of the same controller writes MB MiB of 80-byte lines.
-- Prints "lines bytes seconds".
local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local mb = tonumber(arg[1]) or 100
local line = string.rep("x", 79) .. "\n"
local block = string.rep(line, (1 << 20) // 80)

local w, r = socket.pair()
w:setmode("bn", "bn")
r:setmode("bn", "bn")
local cq = cqueues.new()
cq:wrap(function()
    for _ = 1, mb do assert(w:write(block)) end
    w:flush()
    w:close()
end)
local result
cq:wrap(function()
    local t0 = cqueues.monotime()
    local n, bytes = 0, 0
    while true do
        local l = r:read("*l")
        if not l then break end
        n = n + 1
        bytes = bytes + #l + 1
    end
    result = string.format("%d %d %.6f", n, bytes, cqueues.monotime() - t0)
end)
assert(cq:loop())
print(result)

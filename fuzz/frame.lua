--- fuzz/frame.lua: the frame reader over a memory source: length-prefixed
-- messages with 1, 2 or 4-byte headers and a max. Every message it
-- returns is at most max and the bytes it returns are in the input; a bad
-- or oversized header is nil, ErrFrameTooLarge, never a raise.
local net = require "coronet"
local EOF = net.EOF

local function source(data, step)
    local pos = 1
    return {read = function()
        if pos > #data then return nil, EOF end
        local s = data:sub(pos, pos + step - 1)
        pos = pos + #s
        return s
    end}
end

local HEADERS = {1, 2, 4}

return function(data)
    if #data < 2 then return end
    local b1, b2 = data:byte(1, 2)
    local header = HEADERS[b1 % 3 + 1]
    local max = 1 + b2 * 16
    local body = data:sub(3)
    local fr = net.frame.reader(source(body, 1 + b1 % 13), {header = header, max = max})
    local total = 0
    for _ = 1, 1000 do
        local msg, err = fr:read()
        if not msg then
            assert(type(err) == "table", "error is not an error object")
            break
        end
        assert(#msg <= max, "a message over max")
        total = total + #msg + header
        assert(total <= #body, "more bytes than the input holds")
    end
end

--- fuzz/bufio.lua: the bufio reader and scanner over a memory source.
-- The first bytes choose the buffer size, max_token and how the source
-- chunks the rest; then a sequence of reader ops (chosen by the data too)
-- runs until EOF. Properties: the bytes handed out, in order, are a
-- prefix of the input (nothing lost, nothing invented), every op returns
-- a value or nil, err (never raises), and every scanner's tokens are the
-- same however the source is chunked.
local net = require "coronet"
local bufio = net.bufio
local EOF = net.EOF

local function source(data, chunks)
    local pos, i = 1, 0
    return {read = function()
        if pos > #data then return nil, EOF end
        i = i + 1
        local n = chunks[(i - 1) % #chunks + 1]
        local s = data:sub(pos, pos + n - 1)
        pos = pos + #s
        return s
    end}
end

local function tokens(data, chunks, split, max)
    local sc = bufio.scanner(source(data, chunks), {max_token = max, split = split})
    local out = {}
    while sc:scan() do out[#out + 1] = sc:text() end
    return out, sc:err()
end

return function(data)
    if #data < 3 then return end
    local b1, b2, b3 = data:byte(1, 3)
    local size, max = 16 + b1 % 64, 16 + b2 * 4
    local chunks = {}
    for k = 1, 1 + b3 % 4 do chunks[k] = 1 + (data:byte(k + 3) or 7) % 37 end
    local body = data:sub(4)
    local r = bufio.reader(source(body, chunks), {size = size, max_token = max})
    local taken, ops = 0, 0                 -- bytes handed out (less those unread)
    while ops < 200 do
        ops = ops + 1
        local op = (body:byte(ops) or 0) % 9
        local v, err, extra
        if op == 0 then v, err = r:read(1 + ops % 17)
        elseif op == 1 then v, err, extra = r:read_line()
            if v then v = nil; extra = nil; err = nil end       -- the LF is not returned
        elseif op == 2 then v, err, extra = r:read_until("\n")
        elseif op == 3 then v, err, extra = r:read_full(ops % 23)
        elseif op == 4 then
            local p = r:peek(1 + ops % 5)
            assert(p == nil or type(p) == "string")
        elseif op == 5 then v, err = r:read_byte()
            if v then v = string.char(v) end
        elseif op == 6 then
            local cp, w = r:read_rune()
            if cp then
                assert(w >= 1 and w <= 4)
                taken = taken + w
            else
                err = w
            end
        elseif op == 7 then
            if r:unread_byte() then taken = taken - 1 end
        else v, err, extra = r:discard(ops % 9)
            if v then v = nil end
        end
        if type(v) == "string" then taken = taken + #v end
        if err == EOF then break end
        assert(err == nil or type(err) == "table", "error is not an error object")
        if err and err ~= EOF and err.code ~= "too_long" and err.code ~= "unexpected_eof" then
            error("unexpected error: " .. tostring(err))
        end
    end
    assert(taken >= 0 and taken <= #body, "the reader handed out more bytes than there were")
    -- scanners: neither chunking nor the path (the built-in split's C
    -- fast path, or the same split called from Lua) changes the tokens
    for _, split in ipairs{bufio.scan_lines, bufio.scan_words, bufio.scan_runes, bufio.scan_bytes} do
        local t1, e1 = tokens(body, chunks, split, max)
        local t2, e2 = tokens(body, {4096}, function(d, e) return split(d, e) end, max)
        assert((e1 == nil) == (e2 == nil), "one path failed: " .. tostring(e1 or e2))
        if e1 == nil then
            assert(#t1 == #t2, "the paths disagree on the number of tokens")
            for k = 1, #t1 do assert(t1[k] == t2[k], "the paths disagree on a token") end
        end
    end
end

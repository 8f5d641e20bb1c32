-- spec/frame_spec.lua - net.frame (lua/coronet/frame.lua): length-prefixed
-- messages with 1/2/4/8-byte headers in either byte order; hostile
-- headers (over max, 4 GiB, 2^63+) refused without allocating; EOF inside
-- a header or a body; retry after a deadline; random chunking.
-- Run from the repo root:
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/frame_spec.lua
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local frame = net.frame
local bufio = net.bufio
local errors = net.errors

local EOF, ErrUnexpectedEOF, ErrFrameTooLarge = net.EOF, net.ErrUnexpectedEOF, net.ErrFrameTooLarge
local rep, spack = string.rep, string.pack

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------
local T = H.test       -- T(fn): fn(defer) as a test body under H.run
local pair = H.pair    -- pair(defer): two connected TCP conns on loopback

-- src(chunks): a reader returning the chunks in turn, then EOF.
local function src(chunks)
    local i = 0
    return {read = function()
        i = i + 1
        if chunks[i] == nil then return nil, EOF end
        return chunks[i]
    end}
end

local sink = H.sink

---------------------------------------------------------------------------
-- Round trips and the wire format
---------------------------------------------------------------------------
TestFrame = {}

TestFrame.test_round_trip_over_a_conn = T(function(defer)
    local a, b = pair(defer)
    local fw, fr = frame.writer(a), frame.reader(b)
    local msgs = {"", "x", "hello", rep("m", 70000), rep("z", 1 << 20)}
    local t = net.go(function()
        for _, m in ipairs(msgs) do assert(fw:write(m) == #m) end
        a:close_write()
    end)
    for i, m in ipairs(msgs) do
        local got = fr:read()
        lu.assertTrue(got == m, "message " .. i)
    end
    local v, err = fr:read()
    lu.assertNil(v)
    lu.assertIs(err, EOF)
    t:wait()
end)

TestFrame.test_wire_format = T(function()
    local cases = {
        {{header = 1}, "\5hello"},
        {{header = 2}, "\0\5hello"},
        {{header = 2, endian = "little"}, "\5\0hello"},
        {{}, "\0\0\0\5hello"},
        {{header = 4, endian = "little"}, "\5\0\0\0hello"},
        {{header = 8}, "\0\0\0\0\0\0\0\5hello"},
        {{header = 8, endian = "little"}, "\5\0\0\0\0\0\0\0hello"},
    }
    for _, c in ipairs(cases) do
        local s = sink()
        lu.assertEquals(frame.writer(s, c[1]):write("hello"), 5)
        lu.assertEquals(s:data(), c[2])
        lu.assertEquals(frame.reader(src{c[2]}, c[1]):read(), "hello")
    end
end)

TestFrame.test_each = T(function()
    local s = sink()
    local fw = frame.writer(s, {header = 2})
    for _, m in ipairs{"a", "bb", "", "ccc"} do fw:write(m) end
    local got = {}
    for m in frame.reader(src{s:data()}, {header = 2}):each() do got[#got + 1] = m end
    lu.assertEquals(got, {"a", "bb", "", "ccc"})
    local it = frame.reader(src{"\0\3ab"}, {header = 2}):each()
    local ok, err = pcall(it)
    lu.assertFalse(ok)
    lu.assertIs(err, ErrUnexpectedEOF)
end)

TestFrame.test_reader_over_a_bufio_reader_shares_it = T(function()
    local rd = bufio.reader(src{"line\n\0\0\0\3abcrest"})
    lu.assertEquals(rd:read_line(), "line")
    lu.assertEquals(frame.reader(rd):read(), "abc")
    lu.assertEquals(rd:read(), "rest")
end)

TestFrame.test_writer_flush_passes_through = T(function(defer)
    local a, b = pair(defer)
    local w = bufio.writer(a)
    local fw = frame.writer(w)
    fw:write("buffered")
    lu.assertEquals(w:buffered(), 12)
    lu.assertTrue(fw:flush())
    lu.assertEquals(frame.reader(b):read(), "buffered")
    lu.assertTrue(frame.writer(sink()):flush())
end)

---------------------------------------------------------------------------
-- Hostile input
---------------------------------------------------------------------------
TestFrameHostile = {}

TestFrameHostile.test_header_over_max_refused_without_allocating = T(function(defer)
    local a, b = pair(defer)
    a:write("\255\255\255\255" .. "just a few bytes")
    local fr = frame.reader(b, {max = 1024})
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    local v, err, n = fr:read()
    local grew = collectgarbage("count") - before
    collectgarbage("restart")
    lu.assertNil(v)
    lu.assertIs(err, ErrFrameTooLarge)
    lu.assertEquals(n, 0xFFFFFFFF)
    lu.assertTrue(grew < 4, "allocated " .. grew .. " KiB for a 4 GiB header")
    v, err = fr:read()                               -- the stream is not resynchronised
    lu.assertIs(err, ErrFrameTooLarge)
end)

TestFrameHostile.test_default_max_is_one_mib = T(function()
    lu.assertEquals(frame.reader(src{spack(">I4", 1 << 20) .. rep("k", 1 << 20)}):read(), rep("k", 1 << 20))
    local v, err, n = frame.reader(src{spack(">I4", (1 << 20) + 1)}):read()
    lu.assertNil(v)
    lu.assertIs(err, ErrFrameTooLarge)
    lu.assertEquals(n, (1 << 20) + 1)
end)

TestFrameHostile.test_eight_byte_header_past_2_63 = T(function()
    local v, err = frame.reader(src{"\255\0\0\0\0\0\0\1xyz"}, {header = 8}):read()
    lu.assertNil(v)
    lu.assertIs(err, ErrFrameTooLarge)
    v, err = frame.reader(src{"\1\0\0\0\0\0\0\255"}, {header = 8, endian = "little", max = 1 << 40}):read()
    lu.assertNil(v)
    lu.assertIs(err, ErrFrameTooLarge)
end)

TestFrameHostile.test_short_body_and_short_header = T(function()
    local v, err, part = frame.reader(src{"\0\0\0\10", "abc"}):read()
    lu.assertNil(v)
    lu.assertIs(err, ErrUnexpectedEOF)
    lu.assertEquals(part, "abc")
    v, err, part = frame.reader(src{"\0\0\0\10"}):read()
    lu.assertIs(err, ErrUnexpectedEOF)                -- header, then nothing
    lu.assertEquals(part, "")
    local fr = frame.reader(src{"\0\0"})
    v, err, part = fr:read()
    lu.assertIs(err, ErrUnexpectedEOF)
    lu.assertEquals(part, "\0\0")
    v, err = fr:read()
    lu.assertIs(err, EOF)
    v, err = frame.reader(src{}):read()
    lu.assertIs(err, EOF)                             -- a clean end
end)

TestFrameHostile.test_short_body_over_a_conn = T(function(defer)
    local a, b = pair(defer)
    a:write("\0\0\0\100" .. rep("p", 40))
    a:close()
    local v, err, part = frame.reader(b):read()
    lu.assertNil(v)
    lu.assertIs(err, ErrUnexpectedEOF)
    lu.assertEquals(part, rep("p", 40))
end)

TestFrameHostile.test_deadline_mid_body_then_retry = T(function(defer)
    local a, b = pair(defer)
    local fr = frame.reader(b)
    a:write("\0\0\0\8" .. "half")
    b:set_read_deadline(net.now() + 0.05)
    local v, err = fr:read()
    lu.assertNil(v)
    lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
    b:set_read_deadline(nil)
    a:write("full")                                  -- nothing was consumed: retry
    lu.assertEquals(fr:read(), "halffull")
end)

TestFrameHostile.test_writer_refuses_over_max = T(function()
    local s = sink()
    local v, err, n = frame.writer(s, {max = 4}):write("12345")
    lu.assertNil(v)
    lu.assertIs(err, ErrFrameTooLarge)
    lu.assertEquals(n, 5)
    lu.assertEquals(#s.parts, 0)
    v, err = frame.writer(s, {header = 1, max = 1000}):write(rep("x", 256))  -- 255 is all 1 byte says
    lu.assertIs(err, ErrFrameTooLarge)
    lu.assertEquals(frame.writer(s, {header = 1}):write(rep("x", 255)), 255)
end)

TestFrameHostile.test_bad_options_raise = T(function()
    lu.assertErrorMsgContains("header must be", frame.reader, src{}, {header = 3})
    lu.assertErrorMsgContains("endian", frame.writer, sink(), {endian = "middle"})
    lu.assertErrorMsgContains("unknown option", frame.reader, src{}, {size = 1})
    lu.assertErrorMsgContains("max must be", frame.reader, src{}, {max = -1})
    lu.assertErrorMsgContains("string expected", function() frame.writer(sink()):write(5) end)
end)

---------------------------------------------------------------------------
-- Randomized: random chunk boundaries give the same messages
---------------------------------------------------------------------------
TestFrameFuzz = {}

TestFrameFuzz.test_random_chunking = T(function()
    for seed = 1, 30 do
        math.randomseed(seed)
        local header = ({1, 2, 4, 8})[math.random(4)]
        local opts = {header = header, endian = math.random(2) == 1 and "big" or "little"}
        local s = sink()
        local fw = frame.writer(s, opts)
        local msgs = {}
        for i = 1, math.random(1, 40) do
            local m = rep(string.char(math.random(0, 255)), math.random(0, 255))
            msgs[i] = m
            fw:write(m)
        end
        local data, chunks, pos = s:data(), {}, 1
        while pos <= #data do
            local k = math.random(1, 50)
            chunks[#chunks + 1] = data:sub(pos, pos + k - 1)
            pos = pos + k
        end
        local got = {}
        for m in frame.reader(src(chunks), opts):each() do got[#got + 1] = m end
        lu.assertEquals(got, msgs, "seed " .. seed)
    end
end)

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end

-- spec/bufio_spec.lua - net.bufio (csrc/bufio.c, lua/coronet/bufio.lua):
-- the reader over Lua sources and over conns (read, read_full, read_line,
-- read_until, peek, discard, lines, buffered, size), the scanner with
-- every split function and custom ones, the writer; hostile input
-- (over-long lines, 100 MB without a delimiter, one byte at a time past a
-- deadline or a ctx, EOF mid-record) and a randomized split test (random
-- chunk boundaries give the same records).
-- Run from the repo root:
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/bufio_spec.lua
-- Loopback only, ports from ":0"; sleeps only pace a slow sender.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local bufio = net.bufio
local context = net.context
local errors = net.errors

local EOF, ErrUnexpectedEOF, ErrTooLong = net.EOF, net.ErrUnexpectedEOF, bufio.ErrTooLong
local rep = string.rep

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local T = H.test       -- T(fn): fn(defer) as a test body under H.run

-- src(chunks): a Lua source returning the chunks in turn, then nil, EOF.
-- src.asked records each max it was called with.
local function src(chunks, final_err)
    local i = 0
    return {asked = {}, read = function(self, max)
        self.asked[#self.asked + 1] = max
        i = i + 1
        local c = chunks[i]
        if c == nil then return nil, final_err or EOF end
        return c
    end}
end

-- chop(s, sizes...): s cut into chunks of the given sizes (the rest last).
local function chop(s, ...)
    local out, pos = {}, 1
    for _, n in ipairs({...}) do
        out[#out + 1] = s:sub(pos, pos + n - 1)
        pos = pos + n
    end
    if pos <= #s then out[#out + 1] = s:sub(pos) end
    return out
end

local pair = H.pair    -- pair(defer): two connected TCP conns on loopback

-- allocated(rd): the reader's buffer capacity (from its __tostring).
local function allocated(rd)
    return tonumber(tostring(rd):match("(%d+) allocated"))
end

local function assert_fail(v, err, target, msg)
    lu.assertNil(v, msg)
    lu.assertTrue(errors.is(err, target), (msg or "") .. ": got " .. tostring(err))
end

---------------------------------------------------------------------------
-- Reader over Lua sources
---------------------------------------------------------------------------
TestBufioReader = {}

TestBufioReader.test_read_line_lf_crlf_and_empty_lines = T(function()
    local rd = bufio.reader(src(chop("a\nb\r\n\n\r\nc\rd\n", 1, 2, 3)))
    lu.assertEquals(rd:read_line(), "a")
    lu.assertEquals(rd:read_line(), "b")
    lu.assertEquals(rd:read_line(), "")
    lu.assertEquals(rd:read_line(), "")
    lu.assertEquals(rd:read_line(), "c\rd")        -- a bare CR stays
    local v, err, part = rd:read_line()
    assert_fail(v, err, EOF)
    lu.assertNil(part)
    lu.assertIs(select(2, rd:read_line()), EOF)      -- EOF again
end)

TestBufioReader.test_read_line_partial_at_eof = T(function()
    local rd = bufio.reader(src{"one\ntw", "o"})
    lu.assertEquals(rd:read_line(), "one")
    local v, err, part = rd:read_line()
    assert_fail(v, err, ErrUnexpectedEOF)
    lu.assertEquals(part, "two")
    v, err = rd:read_line()
    lu.assertIs(err, EOF)
end)

TestBufioReader.test_read_line_too_long = T(function()
    local rd = bufio.reader(src{rep("x", 100) .. "\nok\n"}, {size = 16, max_token = 64})
    local v, err, part = rd:read_line()
    lu.assertNil(v)
    lu.assertIs(err, ErrTooLong)
    lu.assertEquals(part, rep("x", 64))             -- consumed: the stream goes on
    lu.assertEquals(rd:read_line(), rep("x", 36))
    lu.assertEquals(rd:read_line(), "ok")
end)

TestBufioReader.test_read_line_max_token_is_the_whole_record = T(function()
    -- the line and its LF must fit in max_token
    local rd = bufio.reader(src{rep("a", 63) .. "\n" .. rep("b", 64) .. "\n"}, {max_token = 64})
    lu.assertEquals(rd:read_line(), rep("a", 63))
    local v, err = rd:read_line()
    lu.assertNil(v)
    lu.assertIs(err, ErrTooLong)
end)

TestBufioReader.test_read_until_single_and_multi_byte = T(function()
    local req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    -- the delimiter is split over every possible pair of chunks
    for cut = 1, #req - 1 do
        local rd = bufio.reader(src{req:sub(1, cut), req:sub(cut + 1) .. req})
        lu.assertEquals(rd:read_until("\r\n\r\n"), req, "cut at " .. cut)
        lu.assertEquals(rd:read_until("\r\n\r\n"), req)
        lu.assertIs(select(2, rd:read_until("\r\n\r\n")), EOF)
    end
    local rd = bufio.reader(src{"a,b", ",,c"})
    lu.assertEquals(rd:read_until(","), "a,")
    lu.assertEquals(rd:read_until(","), "b,")
    lu.assertEquals(rd:read_until(","), ",")
    local v, err, part = rd:read_until(",")
    lu.assertIs(err, ErrUnexpectedEOF)
    lu.assertNil(v)
    lu.assertEquals(part, "c")
end)

-- read_until cuts where string.find (plain) finds the delimiter, for
-- short delimiters (memchr and a compare in C) and long ones (memmem):
-- near misses, overlaps, a delimiter at the very end, random records.
TestBufioReader.test_read_until_agrees_with_string_find = T(function()
    local function cuts(data, delim, chunk)
        local chunks = {}
        for i = 1, #data, chunk do chunks[#chunks + 1] = data:sub(i, i + chunk - 1) end
        local rd, got = bufio.reader(src(chunks), {max_token = 1 << 16}), {}
        while true do
            local rec, err, part = rd:read_until(delim)
            if not rec then
                if part and part ~= "" then got[#got + 1] = part end
                lu.assertTrue(err == EOF or err == ErrUnexpectedEOF)
                return got
            end
            got[#got + 1] = rec
        end
    end
    local function want(data, delim)
        local out, pos = {}, 1
        while pos <= #data do
            local i = data:find(delim, pos, true)
            if not i then out[#out + 1] = data:sub(pos); break end
            out[#out + 1] = data:sub(pos, i + #delim - 1)
            pos = i + #delim
        end
        return out
    end
    local fixed = {
        {"x\r\n\ry\r\n\r\n\r\r\n\r\nz", "\r\n\r\n"},
        {"aaab|aab|ab", "aab"},
        {"--bound", "--bound"},
        {"..123456789..12345678..123456789", "123456789"},   -- 9 bytes: memmem
        {"\r\r\r\r\r\r\r\n", "\r\r\n"},
    }
    for _, c in ipairs(fixed) do
        for _, chunk in ipairs{1, 3, 64} do
            lu.assertEquals(cuts(c[1], c[2], chunk), want(c[1], c[2]), c[2] .. " by " .. chunk)
        end
    end
    local rnd = 12345                               -- a fixed LCG: the same cases each run
    local function rand(n)
        rnd = (rnd * 1103515245 + 12345) % 2147483648
        return rnd % n
    end
    local alphabet = {"a", "b", "\r", "\n"}
    for _ = 1, 200 do
        local len, dlen = 1 + rand(80), 1 + rand(10)
        local t, d = {}, {}
        for i = 1, len do t[i] = alphabet[1 + rand(4)] end
        for i = 1, dlen do d[i] = alphabet[1 + rand(4)] end
        local data, delim = table.concat(t), table.concat(d)
        lu.assertEquals(cuts(data, delim, 1 + rand(16)), want(data, delim))
    end
end)

TestBufioReader.test_read_until_one_byte_chunks = T(function()
    local data = "xx\r\n\r\nyy\r\n\r\n"
    local chunks = {}
    for i = 1, #data do chunks[i] = data:sub(i, i) end
    local rd = bufio.reader(src(chunks))
    lu.assertEquals(rd:read_until("\r\n\r\n"), "xx\r\n\r\n")
    lu.assertEquals(rd:read_until("\r\n\r\n"), "yy\r\n\r\n")
end)

TestBufioReader.test_read_until_too_long_keeps_a_straddling_delimiter = T(function()
    -- 62 bytes then the 4-byte delimiter: 66 > max 64
    local rd = bufio.reader(src{rep("h", 62) .. "\r\n\r\nnext\r\n\r\n"}, {max_token = 64})
    local v, err, part = rd:read_until("\r\n\r\n")
    lu.assertNil(v)
    lu.assertIs(err, ErrTooLong)
    lu.assertEquals(part, rep("h", 61))             -- max - #delim + 1 bytes
    lu.assertEquals(rd:read_until("\r\n\r\n"), "h\r\n\r\n")
    lu.assertEquals(rd:read_until("\r\n\r\n"), "next\r\n\r\n")
end)

TestBufioReader.test_read_returns_buffered_or_one_read = T(function()
    local s = src{"hello", "world"}
    local rd = bufio.reader(s)
    lu.assertEquals(rd:read(2), "he")
    lu.assertEquals(rd:buffered(), 3)
    lu.assertEquals(rd:read(10), "llo")             -- only what is buffered
    lu.assertEquals(rd:read(), "world")
    lu.assertIs(select(2, rd:read(1)), EOF)
    lu.assertEquals(s.asked[1], 4096)               -- asked for the buffer's room
end)

TestBufioReader.test_read_full = T(function()
    local rd = bufio.reader(src{"ab", "cdef", "g"}, 4)
    lu.assertEquals(rd:read_full(0), "")
    lu.assertEquals(rd:read_full(3), "abc")
    lu.assertEquals(rd:read_full(3), "def")
    local v, err, part = rd:read_full(5)
    lu.assertNil(v)
    lu.assertIs(err, ErrUnexpectedEOF)
    lu.assertEquals(part, "g")
    v, err, part = rd:read_full(5)
    lu.assertIs(err, EOF)
    lu.assertEquals(part, "")
end)

TestBufioReader.test_read_full_larger_than_the_buffer = T(function()
    local big = rep("0123456789", 10000)
    local chunks = {}
    for i = 1, #big, 777 do chunks[#chunks + 1] = big:sub(i, i + 776) end
    local rd = bufio.reader(src(chunks), 64)
    lu.assertEquals(rd:read_full(#big), big)
    lu.assertTrue(allocated(rd) <= 64, tostring(rd))  -- shrunk back
end)

TestBufioReader.test_peek_and_discard = T(function()
    local rd = bufio.reader(src{"abc", "defgh"})
    lu.assertEquals(rd:peek(0), "")
    lu.assertEquals(rd:peek(5), "abcde")
    lu.assertEquals(rd:peek(2), "ab")               -- nothing consumed
    lu.assertEquals(rd:discard(1), 1)
    lu.assertEquals(rd:read(3), "bcd")
    local v, err, avail = rd:peek(10)
    lu.assertNil(v)
    lu.assertIs(err, EOF)
    lu.assertEquals(avail, "efgh")                  -- still buffered
    lu.assertEquals(rd:buffered(), 4)
    v, err = rd:peek(65537)
    lu.assertNil(v)
    lu.assertIs(err, ErrTooLong)
    local n, derr, dropped = rd:discard(10)
    lu.assertNil(n)
    lu.assertIs(derr, EOF)
    lu.assertEquals(dropped, 4)
end)

TestBufioReader.test_discard_past_the_buffer = T(function()
    local rd = bufio.reader(src{rep("a", 10000), rep("b", 10000), "tail"}, 16)
    lu.assertEquals(rd:discard(20000), 20000)
    lu.assertEquals(rd:read(), "tail")
end)

TestBufioReader.test_lines_iterator = T(function()
    local got = {}
    for l in bufio.reader(src{"a\r\nb", "\nlast"}):lines() do got[#got + 1] = l end
    lu.assertEquals(got, {"a", "b", "last"})
    local rd = bufio.reader(src({"x\n", "y"}, errors.ErrClosed))
    local it = rd:lines()
    lu.assertEquals(it(), "x")
    local ok, err = pcall(it)
    lu.assertFalse(ok)
    lu.assertIs(err, errors.ErrClosed)              -- raised, as io.lines raises
end)

TestBufioReader.test_size_buffered_tostring = T(function()
    local rd = bufio.reader(src{"abc\n"}, 100)
    lu.assertEquals(rd:size(), 100)
    lu.assertEquals(rd:buffered(), 0)
    lu.assertEquals(rd:peek(1), "a")
    lu.assertEquals(rd:buffered(), 4)
    lu.assertStrContains(tostring(rd), "bufio.reader (4 buffered")
end)

TestBufioReader.test_source_errors_pass_through = T(function()
    local boom = errors.new{op = "read", code = "boom", msg = "boom"}
    local rd = bufio.reader(src({"par"}, boom))
    local v, err = rd:read_line()
    lu.assertNil(v)
    lu.assertIs(err, boom)
    lu.assertEquals(rd:buffered(), 3)               -- kept for a retry
end)

TestBufioReader.test_source_that_raises = T(function()
    local rd = bufio.reader({read = function() error("source exploded") end})
    local ok, err = pcall(rd.read_line, rd)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "source exploded")
    ok, err = pcall(rd.read_line, rd)                -- not left busy
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "source exploded")
end)

TestBufioReader.test_source_with_no_progress = T(function()
    local rd = bufio.reader({read = function() return "" end})
    local v, err = rd:read_line()
    lu.assertNil(v)
    lu.assertIs(err, bufio.ErrNoProgress)
end)

TestBufioReader.test_source_returning_more_than_asked = T(function()
    local big = rep("z", 100000) .. "\n"
    local rd = bufio.reader(src{big}, {size = 16, max_token = 200000})
    lu.assertEquals(rd:read_line(), rep("z", 100000))
end)

TestBufioReader.test_lua_file_source = T(function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("first\nsecond\r\nthird")
    f:close()
    f = assert(io.open(path, "rb"))
    local got = {}
    local ctx = context.with_cancel(context.background())    -- a file's read takes no ctx
    for l in bufio.reader(f):lines(ctx) do got[#got + 1] = l end
    f:close()
    os.remove(path)
    lu.assertEquals(got, {"first", "second", "third"})
end)

TestBufioReader.test_yielding_source = T(function()
    -- a Lua source that blocks (a channel): the reader waits through it
    local ch = net.chan()
    local rd = bufio.reader({read = function()
        local v = ch:recv()
        if v == nil then return nil, EOF end
        return v
    end})
    local t = net.go(function()
        for _, c in ipairs{"he", "llo\nwor", "ld\n"} do ch:send(c) end
        ch:close()
    end)
    lu.assertEquals(rd:read_line(), "hello")
    lu.assertEquals(rd:read_line(), "world")
    lu.assertIs(select(2, rd:read_line()), EOF)
    t:wait()
end)

-- A reader costs the collector a finaliser only once it keeps a buffer
-- past an op (csrc/bufio.c, bufr_arm): one whose records come out whole
-- hands its default buffer back to the loop, and has none to free. One
-- dropped while it holds bytes still frees them (valgrind's leak check
-- runs this spec too).
TestBufioReader.test_the_finaliser_comes_with_a_kept_buffer = T(function()
    local rd = bufio.reader(src{"GET / HTTP/1.1\r\n\r\n", "GET /2 HTTP/1.1\r\n\r\n"})
    lu.assertNil(getmetatable(rd).__gc)
    lu.assertEquals(rd:read_until("\r\n\r\n"), "GET / HTTP/1.1\r\n\r\n")
    lu.assertEquals(rd:read_until("\r\n\r\n"), "GET /2 HTTP/1.1\r\n\r\n")
    lu.assertNil(getmetatable(rd).__gc)               -- left empty each time
    lu.assertTrue(bufio.is_reader(rd))
    lu.assertStrContains(tostring(rd), "reader")
    local kept = bufio.reader(src{"a\nb\n"})
    lu.assertEquals(kept:read_line(), "a")            -- "b\n" stays buffered
    lu.assertEquals(kept:buffered(), 2)
    lu.assertNotNil(getmetatable(kept).__gc)
    lu.assertIs(getmetatable(kept).__index, getmetatable(rd).__index)
    lu.assertTrue(bufio.is_reader(kept))
    lu.assertEquals(kept:read_line(), "b")            -- and it works on as before
    local small = bufio.reader(src{"xyz"}, 16)        -- not the loop's size: kept
    lu.assertEquals(small:read(), "xyz")
    lu.assertNotNil(getmetatable(small).__gc)
    local unread = bufio.reader(src{"q"})
    lu.assertEquals(unread:read_byte(), ("q"):byte())
    lu.assertTrue(unread:unread_byte())               -- the byte is held again
    lu.assertNotNil(getmetatable(unread).__gc)
    for _ = 1, 500 do                                 -- dropped holding bytes
        local r = bufio.reader(src{"line\npartial"})
        r:read_line()
    end
    collectgarbage()
    collectgarbage()
end)

TestBufioReader.test_bad_arguments_raise = T(function()
    lu.assertErrorMsgContains("reader expected", bufio.reader, 42)
    lu.assertErrorMsgContains("reader expected", bufio.reader, {})
    lu.assertErrorMsgContains("size out of range", bufio.reader, src{}, 0)
    lu.assertErrorMsgContains("unknown option", bufio.reader, src{}, {sise = 1})
    lu.assertErrorMsgContains("unknown option '1'", bufio.reader, src{}, {4096})
    lu.assertErrorMsgContains("size must be an integer", bufio.reader, src{}, {size = "big"})
    lu.assertErrorMsgContains("max_token must be an integer", bufio.reader, src{}, {max_token = 1.5})
    lu.assertErrorMsgContains("max_token out of range", bufio.reader, src{}, {size = 16, max_token = 0})
    local ok, err = pcall(function()                        -- blames the caller's line
        local rd = bufio.reader(src{}, {sise = 1})
        return rd
    end)
    lu.assertFalse(ok)
    lu.assertStrContains(err, "bufio_spec.lua:")
    lu.assertEquals(bufio.reader(src{}, {max_token = 100}):size(), 100)  -- size follows a smaller max
    lu.assertEquals(bufio.reader(src{}, {size = 16, max_token = 1 << 20}):size(), 16)
    local inherited = setmetatable({size = 32}, {__index = {size = 8, max_token = 16}})
    lu.assertEquals(bufio.reader(src{}, inherited):size(), 32)          -- its own field first
    lu.assertEquals(bufio.reader(src{}, setmetatable({}, {__index = {max_token = 100}})):size(), 100)
    lu.assertErrorMsgContains("size must be an integer", bufio.reader, src{},
        setmetatable({}, {__index = {size = "big"}}))
    local rd = bufio.reader(src{})
    lu.assertErrorMsgContains("delimiter", rd.read_until, rd, "")
    lu.assertErrorMsgContains("negative", rd.read_full, rd, -1)
    lu.assertErrorMsgContains("positive", rd.read, rd, 0)
    lu.assertErrorMsgContains("coronet.bufio.reader expected", rd.read_line, {})
end)

---------------------------------------------------------------------------
-- Reader over conns
---------------------------------------------------------------------------
TestBufioConn = {}

TestBufioConn.test_lines_over_tcp = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local t = net.go(function()
        b:write("one\r\ntwo\n")
        b:write("thr")
        net.yield()
        b:write("ee\nfour")
        b:close_write()
    end)
    lu.assertEquals(rd:read_line(), "one")
    lu.assertEquals(rd:read_line(), "two")
    lu.assertEquals(rd:read_line(), "three")
    local v, err, part = rd:read_line()
    lu.assertNil(v)
    lu.assertIs(err, ErrUnexpectedEOF)
    lu.assertEquals(part, "four")
    lu.assertIs(select(2, rd:read_line()), EOF)
    t:wait()
end)

TestBufioConn.test_every_method_over_a_conn = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a, 8)
    net.go(function()
        b:write("peekREAD" .. rep("f", 20) .. "DISCARDxx--END--tail")
        b:close()
    end)
    lu.assertEquals(rd:peek(4), "peek")
    lu.assertEquals(rd:read_full(4), "peek")
    lu.assertEquals(rd:read_full(4), "READ")
    lu.assertEquals(rd:read_full(20), rep("f", 20))
    lu.assertEquals(rd:discard(7), 7)
    lu.assertEquals(rd:read_until("--END--"), "xx--END--")
    lu.assertEquals(rd:read(100), "tail")
    lu.assertIs(select(2, rd:read(1)), EOF)
end)

TestBufioConn.test_one_lua_string_per_buffered_line = T(function(defer)
    local a, b = pair(defer)
    b:write(rep("l\n", 1000))
    b:close()
    local rd = bufio.reader(a)
    lu.assertEquals(rd:read_line(), "l")
    -- the other 999 are buffered: read_line makes one string and nothing else
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    for _ = 1, 999 do rd:read_line() end
    local grew = (collectgarbage("count") - before) * 1024
    collectgarbage("restart")
    -- "l" is a short (interned) string: no new object per line at all
    lu.assertTrue(grew < 1024, "read_line allocated " .. grew .. " bytes for 999 buffered lines")
end)

TestBufioConn.test_long_lines_cost_one_string_each = T(function(defer)
    local a, b = pair(defer)
    local line = rep("L", 99)
    b:write(rep(line .. "\n", 41))                  -- 4100 bytes: 40 whole lines in 4096
    b:close()
    local rd = bufio.reader(a)
    lu.assertEquals(rd:read_line(), line)           -- fills the buffer once
    collectgarbage()
    collectgarbage("stop")
    local before = collectgarbage("count")
    local keep = {}
    for i = 1, 39 do keep[i] = rd:read_line() end
    local per = (collectgarbage("count") - before) * 1024 / 39
    collectgarbage("restart")
    lu.assertEquals(keep[39], line)
    -- one string: 99 bytes plus Lua's string header, no intermediate copies
    lu.assertTrue(per < 99 + 64, "read_line allocated " .. per .. " bytes per line")
end)

TestBufioConn.test_idle_reader_holds_no_buffer = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local got
    local t = net.go(function() got = rd:read_line() end)
    net.yield()
    net.yield()
    lu.assertEquals(allocated(rd), 0, tostring(rd))  -- parked with nothing buffered
    b:write("x\n")
    t:wait()
    lu.assertEquals(got, "x")
end)

TestBufioConn.test_long_line_grows_then_shrinks = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    net.go(function() b:write(rep("y", 50000) .. "\nshort\n") end)
    lu.assertEquals(#rd:read_line(), 50000)
    lu.assertTrue(allocated(rd) <= 4096, tostring(rd))
    lu.assertEquals(rd:read_line(), "short")
end)

TestBufioConn.test_deadline_fires_on_a_trickling_peer = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local stop, sent = false, 0
    local t = net.go(function()
        while not stop do
            b:write("a")
            sent = sent + 1
            net.sleep(0.005)                        -- pacing, not synchronisation
        end
        b:write("\n")
    end)
    local t0 = net.now()
    a:set_read_deadline(t0 + 0.15)
    local v, err = rd:read_line()
    local dt = net.now() - t0
    assert_fail(v, err, net.ErrDeadlineExceeded)
    lu.assertTrue(err.timeout)
    lu.assertStrContains(tostring(err), "read tcp")
    lu.assertTrue(dt >= 0.14 and dt < 1.5, "took " .. dt)
    lu.assertTrue(rd:buffered() > 0)                -- what came is kept
    -- clear the deadline: the line completes with every byte
    a:set_read_deadline(nil)
    stop = true
    t:wait()
    local line = rd:read_line()
    lu.assertEquals(line, rep("a", sent))
end)

TestBufioConn.test_ctx_deadline_on_a_trickling_peer = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local stop = false
    local t = net.go(function()
        while not stop do
            b:write("z")
            net.sleep(0.005)
        end
    end)
    local ctx = context.with_timeout(context.background(), 0.1)
    local v, err = rd:read_until("\r\n\r\n", ctx)
    assert_fail(v, err, net.ErrDeadlineExceeded)
    stop = true
    t:wait()
    lu.assertStrContains(rd:peek(1), "z")           -- the conn and reader go on
end)

TestBufioConn.test_ctx_cancel_wakes_and_keeps_the_data = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    b:write("partial")
    local ctx, cancel = context.with_cancel(context.background())
    local t = net.go(function()
        net.sleep(0.02)
        cancel()
    end)
    local v, err = rd:read_line(ctx)
    assert_fail(v, err, net.ErrCanceled)
    t:wait()
    b:write(" line\nmore\n")
    lu.assertEquals(rd:read_line(), "partial line")  -- nothing was lost
    -- an ended ctx only matters when the call would have to wait
    lu.assertEquals(rd:read_line(ctx), "more")
    v, err = rd:read_line(ctx)
    assert_fail(v, err, net.ErrCanceled)
end)

TestBufioConn.test_close_wakes_a_parked_reader = T(function(defer)
    local a = pair(defer)
    local rd = bufio.reader(a)
    local t = net.go(function() return table.pack(rd:read_line()) end)
    net.yield()
    a:close()
    local r = t:wait()
    assert_fail(r[1], r[2], net.ErrClosed)
    local v, err = rd:read_line()
    assert_fail(v, err, net.ErrClosed)               -- closed: ErrClosed again
end)

TestBufioConn.test_second_reader_is_busy = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local t = net.go(function() return rd:read_line() end)
    net.yield()
    local v, err = rd:read_line()
    lu.assertNil(v)
    lu.assertEquals(err.code, "busy")
    local v2, err2 = a:read(10)                      -- the conn itself is busy too
    lu.assertNil(v2)
    lu.assertEquals(err2.code, "busy")
    b:write("mine\n")
    lu.assertEquals(t:wait(), "mine")
end)

TestBufioConn.test_hostile_flood_without_delimiter = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local total = 16 * 1024 * 1024
    local t = net.go(function()
        local chunk = rep("x", 65536)
        for _ = 1, total // #chunk do
            if not b:write(chunk) then break end
        end
        b:close()
    end)
    collectgarbage()
    local base, peak, consumed = collectgarbage("count"), 0, 0
    local t0 = net.now()
    while true do
        local v, err, part = rd:read_line()
        lu.assertNil(v)
        if err == EOF then break end
        lu.assertTrue(err == ErrTooLong or err == ErrUnexpectedEOF, tostring(err))
        consumed = consumed + #part
        part = nil
        lu.assertTrue(allocated(rd) <= 65536, tostring(rd))
        if consumed % (1 << 20) == 0 then             -- what stays alive must not grow
            collectgarbage()
            local kb = collectgarbage("count") - base
            if kb > peak then peak = kb end
        end
    end
    t:wait()
    lu.assertEquals(consumed, total)
    lu.assertTrue(peak < 1024, "live Lua heap grew by " .. peak .. " KiB")
    lu.assertTrue(net.now() - t0 < 10)
end)

TestBufioConn.test_read_line_outside_a_task = function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        local c = ln:accept()
        c:write("hello\nwor")
        net.sleep(0.01)
        c:write("ld\n")
        c:close()
    end)
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    local rd = bufio.reader(c)
    lu.assertEquals(rd:read_line(), "hello")        -- drives the loop itself
    lu.assertEquals(rd:read_line(), "world")
    lu.assertIs(select(2, rd:read_line()), EOF)
    c:close()
    ln:close()
    net.run(H.settle)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

TestBufioConn.test_discard_outside_a_task_keeps_its_count = function()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        local c = ln:accept()
        c:write("0123456789")
        net.sleep(0.01)
        c:write("abcdefghij")
        c:close()
    end)
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    local rd = bufio.reader(c)
    lu.assertEquals(rd:peek(3), "012")              -- part of it is buffered first
    lu.assertEquals(rd:discard(15), 15)             -- waits outside a task halfway
    lu.assertEquals(rd:read(), "fghij")
    c:close()
    ln:close()
    net.run(H.settle)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

TestBufioConn.test_plain_coroutine_gets_a_clear_error_and_no_stuck_reader = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(a)
    local co = coroutine.create(function() return rd:read_line() end)
    local ok, err = coroutine.resume(co)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "not a coronet task")
    b:write("still usable\n")
    lu.assertEquals(rd:read_line(), "still usable")
end)

---------------------------------------------------------------------------
-- Hostile input from a Lua source: 100 MB without a delimiter
---------------------------------------------------------------------------
TestBufioHostile = {}

TestBufioHostile.test_100mb_without_delimiter_is_bounded = T(function()
    local total, sent = 100 * 1024 * 1024, 0
    local chunk = rep("q", 65536)
    local rd = bufio.reader({read = function(_, max)
        if sent >= total then return nil, EOF end
        local d = max >= #chunk and chunk or chunk:sub(1, max)
        sent = sent + #d
        return d
    end})
    collectgarbage()
    local base, peak, errs = collectgarbage("count"), 0, 0
    local t0 = os.clock()
    while true do
        local v, err = rd:read_line()
        lu.assertNil(v)
        if err ~= ErrTooLong then
            lu.assertIs(err, EOF)
            break
        end
        errs = errs + 1
        lu.assertTrue(allocated(rd) <= 65536)
        if errs % 64 == 0 then                        -- what stays alive must not grow
            collectgarbage()
            local kb = collectgarbage("count") - base
            if kb > peak then peak = kb end
        end
    end
    lu.assertEquals(errs, total // 65536)
    lu.assertTrue(peak < 1024, "live Lua heap grew by " .. peak .. " KiB")
    lu.assertTrue(os.clock() - t0 < 20, "took " .. (os.clock() - t0))
end)

TestBufioHostile.test_scanner_token_too_long = T(function()
    local sc = bufio.scanner(src{"ok\n" .. rep("w", 100) .. "\nnever\n"}, {max_token = 32})
    lu.assertTrue(sc:scan())
    lu.assertEquals(sc:text(), "ok")
    lu.assertFalse(sc:scan())
    lu.assertIs(sc:err(), ErrTooLong)
    lu.assertFalse(sc:scan())                        -- stops for good
    local custom = bufio.scanner(src{rep("w", 100)}, {max_token = 32,
        split = function(data, at_eof) return bufio.scan_lines(data, at_eof) end})
    lu.assertFalse(custom:scan())
    lu.assertIs(custom:err(), ErrTooLong)
end)

---------------------------------------------------------------------------
-- Scanner
---------------------------------------------------------------------------
TestBufioScanner = {}

local function tokens(r, opts)
    local sc = bufio.scanner(r, opts)
    local out = {}
    for tok in sc:each() do out[#out + 1] = tok end
    return out, sc:err()
end

TestBufioScanner.test_lines_default = T(function()
    local got, err = tokens(src{"a\r\n\nb", "\nlast\r"})
    lu.assertEquals(got, {"a", "", "b", "last"})    -- Go drops a final CR too
    lu.assertNil(err)
    lu.assertEquals(tokens(src{}), {})
end)

TestBufioScanner.test_words_with_unicode_spaces = T(function()
    local text = "  héllo\tworld\u{A0}foo\u{3000}bar\u{2003}baz  \n qux"
    lu.assertEquals(tokens(src(chop(text, 3, 1, 5, 2)), {split = bufio.scan_words}),
                    {"héllo", "world", "foo", "bar", "baz", "qux"})
end)

TestBufioScanner.test_bytes = T(function()
    lu.assertEquals(tokens(src{"ab", "", "c"}, {split = bufio.scan_bytes}), {"a", "b", "c"})
end)

TestBufioScanner.test_runes_valid_invalid_and_cut = T(function()
    local s = "aé€😀" .. "\xFF" .. "\xE2\x82" .. "z"   -- a cut € before z is invalid
    local got = tokens(src(chop(s, 2, 1, 2, 3)), {split = bufio.scan_runes})
    lu.assertEquals(got, {"a", "é", "€", "😀", "\u{FFFD}", "\u{FFFD}", "\u{FFFD}", "z"})
    -- a valid rune cut at EOF is U+FFFD per byte
    lu.assertEquals(tokens(src{"\xF0\x9F"}, {split = bufio.scan_runes}), {"\u{FFFD}", "\u{FFFD}"})
end)

TestBufioScanner.test_split_functions_follow_go_contract = T(function()
    lu.assertEquals({bufio.scan_lines("a\r\nb", false)}, {3, "a"})
    lu.assertEquals({bufio.scan_lines("ab", false)}, {0})
    lu.assertEquals({bufio.scan_lines("ab\r", true)}, {3, "ab"})
    lu.assertEquals({bufio.scan_lines("", true)}, {0})
    lu.assertEquals({bufio.scan_words("  ab cd", false)}, {5, "ab"})
    lu.assertEquals({bufio.scan_words("   ", false)}, {3})
    lu.assertEquals({bufio.scan_words("ab", true)}, {2, "ab"})
    lu.assertEquals({bufio.scan_bytes("xy", false)}, {1, "x"})
    lu.assertEquals({bufio.scan_runes("\xE2\x82", false)}, {0})
    lu.assertEquals({bufio.scan_runes("\xE2\x82", true)}, {1, "\u{FFFD}"})
    lu.assertEquals({bufio.scan_runes("€x", false)}, {3, "€"})
end)

local function csv_split(data, at_eof)
    local i = data:find(",", 1, true)
    if i then return i, data:sub(1, i - 1) end
    if at_eof and #data > 0 then return #data, data end
    return 0, nil
end

TestBufioScanner.test_custom_split = T(function()
    lu.assertEquals(tokens(src{"a,bb", ",", "ccc,d"}, {split = csv_split}), {"a", "bb", "ccc", "d"})
end)

TestBufioScanner.test_custom_split_final_token_and_errors = T(function()
    local function upto_stop(data, at_eof)
        local adv, tok = csv_split(data, at_eof)
        if tok == "STOP" then return adv, "last", bufio.ErrFinalToken end
        return adv, tok
    end
    local got, err = tokens(src{"a,STOP,b,c"}, {split = upto_stop})
    lu.assertEquals(got, {"a", "last"})
    lu.assertNil(err)
    local bad = errors.new{code = "bad_input", msg = "bad input"}
    got, err = tokens(src{"a,b"}, {split = function() return 0, nil, bad end})
    lu.assertEquals(got, {})
    lu.assertIs(err, bad)
    got, err = tokens(src{"abc"}, {split = function() return -1, nil end})
    lu.assertIs(err, bufio.ErrNegativeAdvance)
    got, err = tokens(src{"abc"}, {split = function(d) return #d + 1, nil end})
    lu.assertIs(err, bufio.ErrAdvanceTooFar)
    lu.assertErrorMsgContains("too many empty tokens", function()
        tokens(src{"abc"}, {split = function() return 0, "" end})
    end)
end)

TestBufioScanner.test_scan_text_err_before_and_after = T(function()
    local sc = bufio.scanner(src{"x\n"})
    lu.assertNil(sc:text())
    lu.assertTrue(sc:scan())
    lu.assertEquals(sc:text(), "x")
    lu.assertFalse(sc:scan())
    lu.assertNil(sc:text())
    lu.assertNil(sc:err())
    lu.assertStrContains(tostring(sc), "done")
end)

TestBufioScanner.test_source_error_ends_the_scan = T(function()
    local got, err = tokens(src({"a\nb"}, errors.ErrClosed))
    lu.assertEquals(got, {"a"})
    lu.assertIs(err, errors.ErrClosed)
end)

TestBufioScanner.test_scanner_over_a_conn_with_ctx = T(function(defer)
    local a, b = pair(defer)
    local sc = bufio.scanner(a, {split = bufio.scan_words})
    b:write("alpha beta ")
    lu.assertTrue(sc:scan())
    lu.assertEquals(sc:text(), "alpha")
    lu.assertTrue(sc:scan())
    lu.assertEquals(sc:text(), "beta")
    local ctx = context.with_timeout(context.background(), 0.05)
    lu.assertFalse(sc:scan(ctx))
    lu.assertTrue(errors.is(sc:err(), net.ErrDeadlineExceeded), tostring(sc:err()))
end)

TestBufioScanner.test_bad_options_raise = T(function()
    lu.assertErrorMsgContains("unknown option", bufio.scanner, src{}, {spilt = bufio.scan_lines})
    lu.assertErrorMsgContains("split must be a function", bufio.scanner, src{}, {split = 1})
end)

---------------------------------------------------------------------------
-- Writer
---------------------------------------------------------------------------
TestBufioWriter = {}

-- sink(): a writer that records every write call.
local function sink(fail_after)
    local s = {writes = {}}
    function s:write(data)
        if fail_after and #self.writes >= fail_after then
            return nil, errors.ErrClosed, 2
        end
        self.writes[#self.writes + 1] = data
        return #data
    end
    return s
end

TestBufioWriter.test_buffers_until_flush = T(function()
    local s = sink()
    local w = bufio.writer(s, 10)
    lu.assertEquals(w:size(), 10)
    lu.assertEquals(w:write("abc"), 3)
    lu.assertEquals(w:write("def"), 3)
    lu.assertEquals(w:buffered(), 6)
    lu.assertEquals(w:available(), 4)
    lu.assertEquals(#s.writes, 0)
    lu.assertTrue(w:flush())
    lu.assertEquals(s.writes, {"abcdef"})
    lu.assertEquals(w:buffered(), 0)
    lu.assertTrue(w:flush())                         -- nothing to do
    lu.assertEquals(#s.writes, 1)
end)

TestBufioWriter.test_overflow_flushes_first_and_large_writes_go_through = T(function()
    local s = sink()
    local w = bufio.writer(s, 10)
    w:write("12345678")
    lu.assertEquals(w:write("abcd"), 4)             -- would overflow: flush, then buffer
    lu.assertEquals(s.writes, {"12345678"})
    lu.assertEquals(w:buffered(), 4)
    local big = rep("B", 25)
    lu.assertEquals(w:write(big), 25)
    lu.assertEquals(s.writes, {"12345678", "abcd", big})  -- straight through, uncopied
    lu.assertEquals(w:buffered(), 0)
end)

TestBufioWriter.test_failure_keeps_unwritten_bytes = T(function()
    local s = sink(0)
    local w = bufio.writer(s, 10)
    w:write("abcdef")
    local ok, err = w:flush()
    lu.assertNil(ok)
    lu.assertIs(err, errors.ErrClosed)
    lu.assertEquals(w:buffered(), 4)                 -- 2 were written
    s.write = sink().write
    lu.assertTrue(w:flush())
    lu.assertEquals(s.writes, {"cdef"})
end)

TestBufioWriter.test_short_write_is_an_error_and_keeps_the_bytes = T(function()
    -- Go's io.ErrShortWrite: a sink that takes fewer bytes than given, with
    -- no error, must not make flush report success for the rest.
    local took = {}
    local s = {limit = 0}
    function s:write(d)
        local n = math.min(#d, self.limit)
        took[#took + 1] = d:sub(1, n)
        return n
    end
    local w = bufio.writer(s, 10)
    w:write("abcdef")
    local ok, err = w:flush()
    lu.assertNil(ok, "flush reported success for bytes the sink did not take")
    lu.assertIs(err, bufio.ErrShortWrite)
    lu.assertEquals(err.code, "short_write")
    lu.assertEquals(tostring(err), "short write")
    lu.assertEquals(w:buffered(), 6)
    s.limit = 2                                      -- takes 2: 4 stay buffered
    ok, err = w:flush()
    lu.assertIs(err, bufio.ErrShortWrite)
    lu.assertEquals(w:buffered(), 4)
    s.limit = 100
    lu.assertTrue(w:flush())
    lu.assertEquals(table.concat(took), "abcdef")
    -- a large write that goes straight through, short too
    s.limit = 3
    local n, err2, accepted = w:write(rep("Z", 25))
    lu.assertNil(n)
    lu.assertIs(err2, bufio.ErrShortWrite)
    lu.assertEquals(accepted, 3)
    -- a sink returning true (or itself, like a Lua file) wrote everything
    local t = {}
    local w2 = bufio.writer({write = function(_, d) t[#t + 1] = d return true end}, 4)
    w2:write("xy")
    lu.assertTrue(w2:flush())
    lu.assertEquals(t, {"xy"})
end)

-- Issue 15 item 7: Go's texts and the reader/writer methods Go users
-- reach for.
TestBufioWriter.test_err_too_long_text_is_gos = T(function()
    lu.assertEquals(tostring(ErrTooLong), "bufio.Scanner: token too long")
end)

TestBufioWriter.test_reader_bytes_runes_unread_and_reset = T(function()
    local function one_shot(s)
        return {read = function(self)
            if self.done then return nil, EOF end
            self.done = true
            return s
        end}
    end
    local r = bufio.reader(one_shot("aé€x"))
    lu.assertEquals(r:read_byte(), 97)
    lu.assertTrue(r:unread_byte())
    lu.assertEquals(r:read_byte(), 97)
    local ch, size = r:read_rune()
    lu.assertEquals(ch, 0xE9)
    lu.assertEquals(size, 2)
    lu.assertTrue(r:unread_rune())
    lu.assertEquals(select(2, r:unread_rune()), bufio.ErrInvalidUnreadRune)  -- only once
    lu.assertEquals({r:read_rune()}, {0xE9, 2})
    lu.assertEquals({r:read_rune()}, {0x20AC, 3})
    lu.assertEquals(r:peek(1), "x")
    local ok, err = r:unread_rune()                      -- not after peek
    lu.assertNil(ok)
    lu.assertIs(err, bufio.ErrInvalidUnreadRune)
    lu.assertEquals(tostring(err), "bufio: invalid use of UnreadRune")
    lu.assertEquals(r:read_byte(), 120)
    local b, e = r:read_byte()
    lu.assertNil(b)
    lu.assertIs(e, EOF)
    lu.assertTrue(r:unread_byte() == nil)                -- EOF read nothing to unread
    -- an invalid byte is U+FFFD of size 1, as Go
    local r2 = bufio.reader(one_shot("\xff\xc3"))
    lu.assertEquals({r2:read_rune()}, {0xFFFD, 1})
    lu.assertEquals({r2:read_rune()}, {0xFFFD, 1})        -- a truncated sequence at EOF
    local _, e2 = r2:unread_byte()
    lu.assertNil(e2)                                     -- unread_byte after read_rune: fine
    lu.assertEquals(r2:read_byte(), 0xC3)
    -- unread_byte right after a fresh read, when the buffer was emptied
    local r3 = bufio.reader(one_shot("z"))
    lu.assertEquals(r3:read_byte(), 122)
    lu.assertTrue(r3:unread_byte())
    lu.assertEquals(r3:read(10), "z")
    local _, e3 = r3:unread_byte()
    lu.assertIs(e3, bufio.ErrInvalidUnreadByte)
    lu.assertEquals(tostring(e3), "bufio: invalid use of UnreadByte")
    -- reset: drop the buffer, read from another source
    local r4 = bufio.reader(one_shot("first line\nrest"))
    lu.assertEquals(r4:read_line(), "first line")
    r4:reset(one_shot("other\n"))
    lu.assertEquals(r4:buffered(), 0)
    lu.assertEquals(r4:read_line(), "other")
    lu.assertIs(select(2, r4:read_line()), EOF)
    lu.assertErrorMsgContains("reader expected", r4.reset, r4, 42)
end)

TestBufioWriter.test_writer_reset = T(function()
    local s1, s2 = sink(), sink()
    local w = bufio.writer(s1, 10)
    w:write("lost")
    w:reset(s2)
    lu.assertEquals(w:buffered(), 0)
    w:write("kept")
    lu.assertTrue(w:flush())
    lu.assertEquals(s1.writes, {})
    lu.assertEquals(s2.writes, {"kept"})
    lu.assertErrorMsgContains("write(data)", w.reset, w, 1)
end)

-- Found by `make fuzz` (fuzz/bufio.lua): a Lua source that returns more
-- than it was asked for let a custom split see past max_token and hand
-- out a token longer than it; the built-in splits said ErrTooLong.
TestBufioWriter.test_custom_split_never_sees_past_max_token = T(function()
    local body = rep("x", 300) .. "\nyyyy\n"
    local function over_delivering()
        return {read = function(self)
            if self.done then return nil, EOF end
            self.done = true
            return body                                  -- all of it, whatever was asked
        end}
    end
    for _, split in ipairs{bufio.scan_lines, function(d, e) return bufio.scan_lines(d, e) end} do
        local sc = bufio.scanner(over_delivering(), {max_token = 16, split = split})
        lu.assertFalse(sc:scan())
        lu.assertIs(sc:err(), ErrTooLong)
    end
    -- ... and a window of max_token bytes it can advance through (spaces
    -- between words) is split before reading more: not ErrTooLong
    body = "a" .. rep(" ", 90) .. "b c"
    for _, split in ipairs{bufio.scan_words, function(d, e) return bufio.scan_words(d, e) end} do
        local sc = bufio.scanner(over_delivering(), {max_token = 16, split = split})
        local got = {}
        while sc:scan() do got[#got + 1] = sc:text() end
        lu.assertNil(sc:err())
        lu.assertEquals(got, {"a", "b", "c"})
    end
    -- ... and a space cut by the max_token bound is no delimiter, on the C
    -- path too (Go's ScanWords sees U+3000's first two bytes only)
    body = rep("w", 22) .. "\u{3000}"
    for _, split in ipairs{bufio.scan_words, function(d, e) return bufio.scan_words(d, e) end} do
        local sc = bufio.scanner(over_delivering(), {max_token = 24, split = split})
        lu.assertFalse(sc:scan())
        lu.assertIs(sc:err(), ErrTooLong)
    end
end)

TestBufioWriter.test_writer_over_a_conn = T(function(defer)
    local a, b = pair(defer)
    local w = bufio.writer(a)
    for i = 1, 1000 do w:write("line " .. i .. "\n") end
    lu.assertTrue(w:flush())
    a:close_write()
    local rd = bufio.reader(b)
    for i = 1, 1000 do lu.assertEquals(rd:read_line(), "line " .. i) end
    lu.assertIs(select(2, rd:read_line()), EOF)
end)

TestBufioWriter.test_bad_arguments_raise = T(function()
    lu.assertErrorMsgContains("write(data)", bufio.writer, 1)
    lu.assertErrorMsgContains("size", bufio.writer, sink(), 0)
    local w = bufio.writer(sink())
    lu.assertErrorMsgContains("string expected", w.write, w, {})
end)

---------------------------------------------------------------------------
-- Randomized split: random chunk boundaries give the same records
---------------------------------------------------------------------------
TestBufioFuzz = {}

-- random_text(n): lines and words of random length, CRLF now and then,
-- multi-byte runes and empty lines.
local function random_text(n)
    local parts = {}
    local alphabet = {"a", "b", " ", "\t", "é", "€", "😀", "x", "y", "\u{A0}"}
    local len = 0
    while len < n do
        local k = math.random(0, 40)
        local line = {}
        for i = 1, k do line[i] = alphabet[math.random(#alphabet)] end
        local s = table.concat(line) .. (math.random(4) == 1 and "\r\n" or "\n")
        parts[#parts + 1] = s
        len = len + #s
    end
    return table.concat(parts)
end

local function random_chunks(s)
    local out, pos = {}, 1
    while pos <= #s do
        local k = math.random(1, math.random(2) == 1 and 3 or 200)
        out[#out + 1] = s:sub(pos, pos + k - 1)
        pos = pos + k
    end
    return out
end

local function collect(rd, method, ...)
    local out = {}
    while true do
        local v = rd[method](rd, ...)
        if not v then return out end
        out[#out + 1] = v
    end
end

TestBufioFuzz.test_random_chunking_gives_the_same_records = T(function()
    for seed = 1, 40 do
        math.randomseed(seed)
        local text = random_text(3000)
        local whole = {}
        for _, split in ipairs{"lines", "until", "words", "runes"} do
            local function run(chunks)
                if split == "lines" then return collect(bufio.reader(src(chunks), 16), "read_line") end
                if split == "until" then return collect(bufio.reader(src(chunks), 16), "read_until", "\r\n") end
                local fn = bufio["scan_" .. split]
                local c = tokens(src(chunks), {split = fn})
                -- the same split through the Lua function (the custom path)
                local l = tokens(src(chunks), {split = function(d, e) return fn(d, e) end})
                lu.assertEquals(l, c, split .. " C vs Lua, seed " .. seed)
                return c
            end
            whole[split] = whole[split] or run({text})
            lu.assertEquals(run(random_chunks(text)), whole[split], split .. ", seed " .. seed)
        end
        -- read_line agrees with the reference split of the text
        local ref = {}
        for l in (text):gmatch("([^\n]*)\n") do ref[#ref + 1] = l:gsub("\r$", "") end
        lu.assertEquals(whole.lines, ref, "seed " .. seed)
    end
end)

TestBufioFuzz.test_random_writes_over_a_socket = T(function(defer)
    local a, b = pair(defer)
    math.randomseed(7)
    local text = random_text(200000)
    local chunks = random_chunks(text)
    local t = net.go(function()
        for _, c in ipairs(chunks) do
            b:write(c)
            if math.random(8) == 1 then net.yield() end
        end
        b:close()
    end)
    local got = collect(bufio.reader(a, 64), "read_line")
    t:wait()
    lu.assertEquals(table.concat(got, "\n") .. "\n", (text:gsub("\r\n", "\n")))
end)

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end

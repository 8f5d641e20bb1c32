-- spec/buffer_spec.lua - net.buffer (csrc/buffer.c): every method, growth,
-- "buffer busy" while a call using it is parked; conn:read_into over TCP,
-- unix and TLS (EOF, deadline, ctx, close while parked, a hostile huge max,
-- outside a task); conn:write(buf) with ranges and a partial failure;
-- bufio's read_into and write(buf); net.io.copy(c, c); and a proxy loop
-- on read_into that allocates a small fraction of the same loop on read.
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/run.lua buffer
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local CA = dofile("spec/tlsca.lua").make()
local tls = net.tls
local bufio = net.bufio

local T, pair = H.test, H.pair
local EOF = net.EOF
local rep = string.rep
local SRV = assert(tls.config{cert_file = CA.leaf, key_file = CA.leaf_key})
local CLI = assert(tls.config{ca_file = CA.ca})
CA.remove()                                          -- the configs hold what they need

local pattern = H.pattern  -- pattern(n): n bytes that are not all alike

-- busy(buf): each mutator raises "buffer busy"; the readers still work.
local function assert_busy(buf)
    for _, f in ipairs{function() buf:append("x") end, function() buf:reserve(1 << 20) end,
                       function() buf:discard(1) end, function() buf:reset() end} do
        local ok, err = pcall(f)
        lu.assertFalse(ok)
        lu.assertStrContains(tostring(err), "buffer busy")
    end
    lu.assertIsNumber(#buf)
    lu.assertIsString(buf:tostring())
    lu.assertStrContains(tostring(buf), "busy")
end

-- tls_pair(defer) -> client, server: two TLS conns over loopback TCP.
local function tls_pair(defer)
    local ln = assert(tls.listen("tcp", "127.0.0.1:0", SRV))
    local t = net.go(function()
        local c = assert(ln:accept())
        assert(c:handshake())                        -- tls.dial waits for it
        return c
    end)
    local a = defer(assert(tls.dial("tcp", "localhost:" .. ln:addr().port, CLI)))
    local b = defer(assert(t:wait()))
    ln:close()
    return a, b
end

-- The pair makers each transport test runs over.
local TRANSPORTS = {
    tcp = function(defer) return pair(defer) end,
    unix = function(defer) return pair(defer, "unix") end,
    tls = tls_pair,
}

---------------------------------------------------------------------------
-- The buffer itself
---------------------------------------------------------------------------
TestBuffer = {}

function TestBuffer:test_new_len_cap_available()
    local b = net.buffer()
    lu.assertEquals(#b, 0)
    lu.assertEquals(b:len(), 0)
    lu.assertEquals(b:cap(), 0)
    lu.assertEquals(b:available(), 0)
    local c = net.buffer(100)
    lu.assertEquals(c:cap(), 100)
    lu.assertEquals(c:available(), 100)
    lu.assertStrContains(tostring(c), "net.buffer (0 bytes, cap 100)")
    lu.assertError(net.buffer, -1)
    lu.assertError(net.buffer, "x")
end

function TestBuffer:test_append_tostring_like_string_sub()
    local b = net.buffer(4)
    lu.assertIs(b:append("hello"), b)                -- chains; grows past 4
    b:append(" "):append(42)
    lu.assertEquals(b:tostring(), "hello 42")
    lu.assertEquals(#b, 8)
    local s = "hello 42"
    for _, ij in ipairs{{1, 5}, {-2}, {3, -3}, {0, 100}, {6, 2}, {-100, 2}, {9}, {5, 5}} do
        lu.assertEquals(b:tostring(ij[1], ij[2]), s:sub(ij[1], ij[2] or -1), ij[1] .. "," .. tostring(ij[2]))
    end
    local other = net.buffer():append("!")
    b:append(other)
    lu.assertEquals(b:tostring(), "hello 42!")
    lu.assertEquals(other:tostring(), "!", "the source buffer is not consumed")
    lu.assertError(b.append, b, {})
    lu.assertError(b.append, b)
end

function TestBuffer:test_append_itself()
    local b = net.buffer(8):append("abcdefgh")
    b:discard(2)
    b:append(b)                                      -- grows: the source moves along
    lu.assertEquals(b:tostring(), "cdefghcdefgh")
    b:append(b)
    lu.assertEquals(b:tostring(), rep("cdefgh", 4))
end

function TestBuffer:test_discard_and_reset_keep_the_memory()
    local b = net.buffer(16):append("0123456789")
    lu.assertEquals(b:discard(3), 3)
    lu.assertEquals(b:tostring(), "3456789")
    lu.assertEquals(b:available(), 6, "discard frees nothing at the tail")
    lu.assertEquals(b:discard(100), 7, "more than it holds: all of it")
    lu.assertEquals(#b, 0)
    lu.assertEquals(b:available(), 16, "empty: the whole block is free again")
    lu.assertEquals(b:discard(0), 0)
    lu.assertError(b.discard, b, -1)
    b:append("abc")
    lu.assertIs(b:reset(), b)
    lu.assertEquals(#b, 0)
    lu.assertEquals(b:cap(), 16)
end

function TestBuffer:test_reserve_compacts_then_grows()
    local b = net.buffer(16):append("0123456789abcdef")
    b:discard(10)                                    -- 6 held at [10, 16)
    lu.assertEquals(b:available(), 0)
    b:reserve(8)                                     -- fits once compacted
    lu.assertEquals(b:cap(), 16)
    lu.assertEquals(b:available(), 10)
    lu.assertEquals(b:tostring(), "abcdef")
    b:reserve(100)                                   -- must grow: to len + n
    lu.assertEquals(b:cap(), 106)
    lu.assertEquals(b:tostring(), "abcdef")
    b:reserve(10)                                    -- already there: no change
    lu.assertEquals(b:cap(), 106)
    local c = net.buffer(100)
    c:append("x"):reserve(101)                      -- doubling beats len + n
    lu.assertEquals(c:cap(), 200)
    lu.assertError(b.reserve, b, -1)
    lu.assertError(b.reserve, b, 1 << 62)            -- out of range, raised, nothing changed
    lu.assertEquals(b:tostring(), "abcdef")
end

function TestBuffer:test_appends_grow_geometrically()
    local b, grows, cap = net.buffer(), 0, 0
    for _ = 1, 10000 do
        b:append("0123456789")
        if b:cap() ~= cap then grows, cap = grows + 1, b:cap() end
    end
    lu.assertEquals(#b, 100000)
    lu.assertTrue(grows <= 20, "grew " .. grows .. " times")
end

---------------------------------------------------------------------------
-- conn:read_into over each transport
---------------------------------------------------------------------------
TestReadInto = {}

for name, mk in pairs(TRANSPORTS) do
    TestReadInto["test_round_trip_" .. name] = T(function(defer)
        local a, b = mk(defer)
        local data = pattern(300000)
        local w = net.go(function()
            assert(a:write(data))
            assert(a:close_write())
        end)
        local buf = net.buffer(1000)
        local reads = 0
        while true do
            local n, err = b:read_into(buf)
            if not n then
                lu.assertIs(err, EOF)
                break
            end
            lu.assertTrue(n >= 1)
            reads = reads + 1
        end
        w:wait()
        lu.assertEquals(#buf, #data)
        lu.assertTrue(buf:tostring() == data, "the bytes in order")
        lu.assertTrue(reads > 1)
        -- write(buf) back: the peer gets every byte, the buffer keeps them
        local r = net.go(function() return H.read_to_eof(a) end)
        lu.assertEquals(b:write(buf), #data)
        lu.assertEquals(#buf, #data, "write does not consume")
        b:close_write()
        lu.assertTrue(r:wait() == data)
    end)
end

TestReadInto.test_appends_after_what_is_held_and_honours_max = T(function(defer)
    local a, b = pair(defer)
    local buf = net.buffer(64):append("head:")
    assert(a:write("0123456789"))
    lu.assertEquals(b:read_into(buf, 4), 4)
    lu.assertEquals(buf:tostring(), "head:0123")
    local n = 0
    while n < 6 do n = n + assert(b:read_into(buf)) end
    lu.assertEquals(buf:tostring(), "head:0123456789")
    lu.assertError(b.read_into, b, buf, 0)
    lu.assertError(b.read_into, b, buf, -1)
    lu.assertError(b.read_into, b, "not a buffer")
    lu.assertError(b.read_into, b)
end)

TestReadInto.test_full_buffer_grows_by_a_bounded_step = T(function(defer)
    local a, b = pair(defer)
    local buf = net.buffer(16):append(rep("x", 16))
    assert(a:write("abc"))
    lu.assertEquals(b:read_into(buf), 3)
    lu.assertEquals(buf:cap(), 16 + 65536, "full: grown to make 64 KiB free")
    lu.assertEquals(buf:tostring(17), "abc")
    local small = net.buffer(4):append("1234")
    assert(a:write("defgh"))
    lu.assertEquals(b:read_into(small, 2), 2)
    lu.assertEquals(small:cap(), 8, "full with max 2: doubled, no more")
    -- a full buffer whose front was discarded compacts instead of growing
    local c = net.buffer(65536):append(rep("y", 65536))
    c:discard(65536 - 1)
    lu.assertEquals(c:available(), 0)
    assert(a:write("ijk"))
    local got = 0
    while got < 6 do got = got + assert(b:read_into(c, 100)) end   -- "fgh" was left over
    lu.assertEquals(c:cap(), 65536, "compacted, not grown")
    lu.assertEquals(c:tostring(), "yfghijk")
end)

TestReadInto.test_hostile_huge_max_allocates_only_what_arrives = T(function(defer)
    local a, b = pair(defer)
    local buf = net.buffer()
    assert(a:write("tiny"))
    lu.assertEquals(b:read_into(buf, 1 << 40), 4)
    lu.assertEquals(buf:tostring(), "tiny")
    lu.assertTrue(buf:cap() <= 65536, "cap " .. buf:cap())
end)

TestReadInto.test_eof_leaves_the_buffer = T(function(defer)
    local a, b = pair(defer)
    local buf = net.buffer():append("kept")
    a:close()
    local n, err = b:read_into(buf)
    lu.assertNil(n)
    lu.assertIs(err, EOF)
    lu.assertEquals(buf:tostring(), "kept")
end)

for name, mk in pairs(TRANSPORTS) do
    TestReadInto["test_busy_while_parked_then_free_" .. name] = T(function(defer)
        local a, b = mk(defer)
        local buf = net.buffer(64):append("x")
        local r = H.spawn(function() return b:read_into(buf) end)
        net.yield()
        net.yield()
        assert_busy(buf)
        local n2, err2 = b:read_into(net.buffer())   -- one reader at a time
        H.assert_err(n2, err2, "busy")
        assert(a:write("yz"))
        local n = H.join(r)
        lu.assertTrue(n >= 1)
        buf:append("!")                              -- free again
        lu.assertStrMatches(buf:tostring(), "xyz?!")
    end)

    TestReadInto["test_deadline_" .. name] = T(function(defer)
        local _, b = mk(defer)
        local buf = net.buffer(8)
        b:set_read_deadline(net.now() + 0.05)
        local n, err = b:read_into(buf)
        H.assert_err(n, err, "timeout")
        lu.assertTrue(err.timeout)
        lu.assertEquals(#buf, 0)
        buf:append("free")                           -- not left busy
        b:set_read_deadline(net.now() - 1)           -- already past: at once
        H.assert_err(b:read_into(buf))
    end)

    TestReadInto["test_ctx_cancel_" .. name] = T(function(defer)
        local a, b = mk(defer)
        local buf = net.buffer(8)
        local ctx, cancel = net.context.with_cancel(net.context.background())
        local r = H.spawn(function() return b:read_into(buf, ctx) end)
        net.yield()
        assert_busy(buf)
        cancel()
        local n, err = H.join(r)
        H.assert_err(n, err, "canceled")
        buf:reset()
        assert(a:write("ok"))                        -- the conn stays usable
        local got = 0
        while got < 2 do got = got + assert(b:read_into(buf, 16, net.context.background())) end
        lu.assertEquals(buf:tostring(), "ok")
        H.assert_err(b:read_into(buf, ctx))          -- an ended ctx: at once
    end)

    TestReadInto["test_close_wakes_parked_" .. name] = T(function(defer)
        local _, b = mk(defer)
        local buf = net.buffer(8)
        local r = H.spawn(function() return b:read_into(buf) end)
        net.yield()
        b:close()
        local n, err = H.join(r)
        lu.assertNil(n)
        lu.assertTrue(err == net.ErrClosed or net.errors.is(err, net.ErrClosed), tostring(err))
        buf:append("free")
        local n3, err3 = b:read_into(buf)
        H.assert_err(n3, err3, "closed")
    end)
end

function TestReadInto:test_outside_a_task()
    H.run_top(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local s = net.go(function()
            local c = ln:accept()
            c:write("top")
            c:close()
        end)
        local c = assert(net.dial("tcp", tostring(ln:addr())))
        local buf = net.buffer()
        while true do
            local n = c:read_into(buf)
            if not n then break end
        end
        lu.assertEquals(buf:tostring(), "top")
        s:wait()
        c:close()
        ln:close()
    end)
end

---------------------------------------------------------------------------
-- conn:write(buf)
---------------------------------------------------------------------------
TestWriteBuffer = {}

TestWriteBuffer.test_ranges_like_strings = T(function(defer)
    local a, b = pair(defer)
    local buf = net.buffer():append("0123456789")
    buf:discard(1)                                   -- "123456789"
    lu.assertEquals(a:write(buf, 2, 4), 3)
    lu.assertEquals(a:write(buf, -2), 2)
    lu.assertEquals(a:write(buf, 5, 2), 0)
    lu.assertEquals(a:write(net.buffer()), 0)
    a:close_write()
    lu.assertEquals(H.read_to_eof(b), "23489")
    lu.assertEquals(buf:tostring(), "123456789")
    lu.assertError(a.write, a, io.stdout)            -- another userdata: raised
end)

for name, mk in pairs(TRANSPORTS) do
    TestWriteBuffer["test_busy_while_parked_" .. name] = T(function(defer)
        local a, b = mk(defer)
        local data = pattern(8 << 20)                -- more than the socket buffers hold
        local buf = net.buffer():append(data)
        local w = H.spawn(function() return a:write(buf) end)
        net.yield()
        assert_busy(buf)
        local r = net.go(function() return H.read_to_eof(b) end)
        lu.assertEquals(H.join(w), #data)
        buf:reset()                                  -- free again
        a:close_write()
        lu.assertTrue(r:wait() == data)
    end)

    TestWriteBuffer["test_partial_failure_" .. name] = T(function(defer)
        local a = mk(defer)
        local data = pattern(16 << 20)
        local buf = net.buffer():append(data)
        a:set_write_deadline(net.now() + 0.1)        -- the peer never reads
        local n, err, done = a:write(buf)
        H.assert_err(n, err, "timeout")
        lu.assertTrue(done > 0 and done < #data, "done " .. tostring(done))
        lu.assertEquals(#buf, #data, "a failed write consumes nothing either")
        buf:discard(done)                            -- what a caller does to retry later
        lu.assertEquals(#buf, #data - done)
    end)
end

TestWriteBuffer.test_read_into_must_not_grow_a_buffer_a_write_uses = T(function(defer)
    local a, b = pair(defer)
    local c, d = pair(defer)
    local data = pattern(8 << 20)
    local buf = net.buffer(#data):append(data)       -- full: a read_into would have to grow it
    local w = H.spawn(function() return a:write(buf) end)
    net.yield()
    assert(c:write("more"))
    local ok, err = pcall(d.read_into, d, buf)
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), "buffer busy")
    lu.assertEquals(buf:cap(), #data, "nothing moved")
    local r = net.go(function() return H.read_to_eof(b) end)
    lu.assertEquals(H.join(w), #data)
    a:close_write()
    lu.assertTrue(r:wait() == data)
    buf:reset()
    lu.assertEquals(d:read_into(buf), 4)              -- idle again: it reads
end)

TestWriteBuffer.test_read_into_while_write_parked_appends = T(function(defer)
    local a, b = pair(defer)
    local c, d = pair(defer)
    local data = pattern(8 << 20)
    local buf = net.buffer(#data + 100):append(data)
    local w = H.spawn(function() return a:write(buf) end)  -- the range is fixed at the call
    net.yield()
    assert(c:write("tail"))
    local got = 0
    while got < 4 do got = got + assert(d:read_into(buf)) end  -- room without growing
    local r = net.go(function() return H.read_to_eof(b) end)
    lu.assertEquals(H.join(w), #data)
    a:close_write()
    lu.assertTrue(r:wait() == data, "the write sent what buf held when it was called")
    lu.assertEquals(buf:tostring(-4), "tail")
end)

---------------------------------------------------------------------------
-- bufio
---------------------------------------------------------------------------
TestBufioBuffer = {}

TestBufioBuffer.test_reader_read_into_buffered_first_then_through = T(function(defer)
    local a, b = pair(defer)
    local rd = bufio.reader(b)
    assert(a:write("hello world"))
    lu.assertEquals(rd:read(5), "hello")
    local buf = net.buffer()
    lu.assertEquals(rd:read_into(buf), 6)            -- " world" was buffered
    lu.assertEquals(buf:tostring(), " world")
    lu.assertEquals(rd:buffered(), 0)
    assert(a:write("more"))
    lu.assertEquals(rd:read_into(buf, 2), 2)         -- through the conn, max honoured
    lu.assertEquals(buf:tostring(), " worldmo")
    assert(a:write("abcdef"))
    rd:peek(1)                                       -- buffer some again
    lu.assertEquals(rd:read_into(buf, 3), 3)
    a:close()
    while rd:read_into(buf) do end
    lu.assertEquals(buf:tostring(), " worldmoreabcdef")
    local n, err = rd:read_into(buf)
    lu.assertNil(n)
    lu.assertIs(err, EOF)
end)

TestBufioBuffer.test_reader_read_into_over_a_lua_source = T(function()
    local chunks, i = {"ab", "cd"}, 0
    local src = {read = function() i = i + 1; if chunks[i] then return chunks[i] end return nil, EOF end}
    local rd = bufio.reader(src)
    local buf = net.buffer()
    while rd:read_into(buf) do end
    lu.assertEquals(buf:tostring(), "abcd")
end)

TestBufioBuffer.test_reader_read_into_over_tls = T(function(defer)
    local a, b = tls_pair(defer)
    local rd = bufio.reader(b)
    assert(a:write("line\nrest"))
    lu.assertEquals(rd:read_line(), "line")
    local buf = net.buffer()
    while #buf < 4 do assert(rd:read_into(buf)) end
    lu.assertEquals(buf:tostring(), "rest")
end)

TestBufioBuffer.test_writer_write_buffer = T(function(defer)
    local a, b = pair(defer)
    local w = bufio.writer(a, 16)
    local small = net.buffer():append("abc")
    lu.assertEquals(w:write(small), 3)
    small:reset():append("XYZ")                      -- copied in: later changes do not leak
    lu.assertEquals(w:buffered(), 3)
    local big = net.buffer():append(pattern(100))
    lu.assertEquals(w:write(big), 100)              -- flushes, then straight through
    lu.assertEquals(w:buffered(), 0)
    lu.assertEquals(#big, 100)
    assert(w:write("!"))
    assert(w:flush())
    a:close_write()
    lu.assertTrue(H.read_to_eof(b) == "abc" .. pattern(100) .. "!")
    local sink = H.sink()
    local ws = bufio.writer(sink, 4)
    ws:write(net.buffer():append("0123456789"))      -- a sink without buffers gets a string
    ws:flush()
    lu.assertEquals(sink:data(), "0123456789")
end)

---------------------------------------------------------------------------
-- net.io.copy(c, c): an echo
---------------------------------------------------------------------------
TestIoCopySame = {}

for name, mk in pairs(TRANSPORTS) do
    TestIoCopySame["test_echo_" .. name] = T(function(defer)
        local a, b = mk(defer)
        local e = net.go(function()
            local n, err = net.io.copy(b, b)
            b:close_write()                          -- the echo's EOF for a
            return n, err
        end)
        local data = pattern(2 << 20)
        local r = net.go(function() return H.read_to_eof(a) end)
        assert(a:write(data))
        a:close_write()
        lu.assertTrue(r:wait() == data)
        lu.assertEquals(e:wait(), #data)
    end)
end

---------------------------------------------------------------------------
-- net.debug.tap shows the bytes of read_into and write(buf)
---------------------------------------------------------------------------
TestTapBuffer = {}

TestTapBuffer.test_tap_shows_buffer_bytes = T(function(defer)
    local a, b = pair(defer)
    local records = {}
    local ta = net.debug.tap(a, function(r) records[#records + 1] = r end)
    local buf = net.buffer():append("old:")
    assert(b:write("hi"))
    local got = 0
    while got < 2 do got = got + assert(ta:read_into(buf)) end
    lu.assertEquals(ta:write(buf, 5), 2)
    lu.assertEquals(b:read_full(2), "hi")
    lu.assertStrMatches(records[1], '.* < %d bytes "hi?"$')  -- the bytes read, not the buffer
    lu.assertStrContains(records[#records], '> 2 bytes "hi"')  -- the range written
    assert(ta:write("xyz", 2, 3))                    -- a string's range too
    lu.assertStrContains(records[#records], '> 2 bytes "yz"')
    lu.assertEquals(b:read_full(2), "yz")
end)

---------------------------------------------------------------------------
-- No allocation per chunk
---------------------------------------------------------------------------
TestNoAlloc = {}

-- proxied(recv, chunks) -> KiB allocated while a proxy task moves chunks
-- 4 KiB chunks from one pair to another, with recv(conn, buf) as its read.
local function proxied(recv, chunks)
    return H.run(function()
        local a, b = pair()
        local c, d = pair()
        local chunk = pattern(4096)
        local proxy = net.go(function()
            local buf = net.buffer(65536)
            while true do
                local data = recv(b, buf)
                if not data then break end
                assert(c:write(data))
                buf:reset()
            end
            c:close_write()
            lu.assertEquals(buf:cap(), 65536, "the block never grew")
        end)
        local got = 0
        local sink = net.go(function()
            local buf = net.buffer(65536)
            while d:read_into(buf) do got = got + #buf; buf:reset() end
        end)
        local w = net.go(function()
            for _ = 1, chunks do assert(a:write(chunk)) end
            a:close_write()
        end)
        collectgarbage()
        collectgarbage("stop")
        local k0 = collectgarbage("count")
        w:wait()
        proxy:wait()
        sink:wait()
        local used = collectgarbage("count") - k0
        collectgarbage("restart")
        lu.assertEquals(got, chunks * 4096)
        for _, x in ipairs{a, b, c, d} do x:close() end
        return used
    end)
end

function TestNoAlloc:test_read_into_loop_allocates_a_fraction_of_read()
    local with_read = proxied(function(b) return b:read(65536) end, 1000)
    local with_buf = proxied(function(b, buf) return b:read_into(buf) and buf end, 1000)
    if os.getenv("SPEC_VERBOSE") then print(("\nKiB allocated: read %.1f, read_into %.1f"):format(with_read, with_buf)) end
    lu.assertTrue(with_read > 3000, "read() made the strings: " .. with_read .. " KiB")
    lu.assertTrue(with_buf < with_read / 20,
        ("read_into allocated %.1f KiB, read %.1f KiB"):format(with_buf, with_read))
end

function TestNoAlloc.teardown() collectgarbage() end

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end

-- spec/io_spec.lua - net.io (lua/coronet/io.lua, csrc/iocopy.c): copy
-- between conns (splice), from files (sendfile), into files, through a
-- buffer for anything else, with n, ctx and deadlines; limit_reader,
-- multi_writer, read_all.
-- Run from the repo root:
--   make && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/io_spec.lua
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local nio = net.io
local bufio = net.bufio
local context = net.context
local errors = net.errors

local EOF = net.EOF
local rep = string.rep

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------
local T = H.test       -- T(fn): fn(defer) as a test body under H.run
local pair = H.pair    -- pair(defer [, "unix"]): two connected conns

local pattern = H.pattern  -- pattern(n): n bytes that are not all alike

-- drain(c): a task that reads c to EOF and returns everything.
local function drain(c)
    return net.go(function()
        local parts = {}
        while true do
            local d = c:read(65536)
            if not d then break end
            parts[#parts + 1] = d
        end
        return table.concat(parts)
    end)
end

-- src(chunks): a reader returning the chunks in turn (cut to max), then EOF.
local function src(chunks)
    local i, rest = 0, nil
    return {read = function(_, max)
        if not rest then
            i = i + 1
            rest = chunks[i]
            if rest == nil then return nil, EOF end
        end
        local d = rest:sub(1, max or #rest)
        rest = #rest > #d and rest:sub(#d + 1) or nil
        return d
    end}
end

local sink, tmpfile = H.sink, H.tmpfile

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local d = f:read("a")
    f:close()
    return d
end

---------------------------------------------------------------------------
-- copy
---------------------------------------------------------------------------
TestIoCopy = {}

TestIoCopy.test_conn_to_conn_splice = T(function(defer)
    local a1, a2 = pair(defer)                       -- a1 -> a2 is the source
    local b1, b2 = pair(defer)                       -- b1 -> b2 is the destination
    local data = pattern(4 * 1024 * 1024 + 123)
    local w = net.go(function()
        a1:write(data)
        a1:close()
    end)
    local r = drain(b2)
    local n = nio.copy(b1, a2)
    lu.assertEquals(n, #data)
    b1:close_write()
    lu.assertTrue(r:wait() == data)
    w:wait()
end)

TestIoCopy.test_conn_to_conn_unix_with_n = T(function(defer)
    local a1, a2 = pair(defer, "unix")
    local b1, b2 = pair(defer, "unix")
    a1:write("0123456789abcdef")
    lu.assertEquals(nio.copy(b1, a2, 10), 10)
    lu.assertEquals(b2:read_full(10), "0123456789")
    lu.assertEquals(a2:read(100), "abcdef")          -- the rest is still there
    a1:write("xyz")
    a1:close()
    local v, err, n = nio.copy(b1, a2, 10)           -- EOF before n: Go's CopyN
    lu.assertNil(v)
    lu.assertIs(err, EOF)
    lu.assertEquals(n, 3)
    lu.assertEquals(b2:read_full(3), "xyz")
    lu.assertEquals(nio.copy(b1, a2, 0), 0)
end)

TestIoCopy.test_file_to_conn_sendfile_keeps_the_file_position = T(function(defer)
    local data = pattern(300000)
    local path = tmpfile(data)
    local f = assert(io.open(path, "rb"))
    defer(function() f:close(); os.remove(path) end)
    lu.assertEquals(f:read(10), data:sub(1, 10))     -- stdio read ahead: copy starts at 11
    local a, b = pair(defer)
    local r = drain(b)
    lu.assertEquals(nio.copy(a, f, 1000), 1000)
    lu.assertEquals(f:read(5), data:sub(1011, 1015)) -- the file goes on after the copy
    lu.assertEquals(nio.copy(a, f), #data - 1015)
    a:close_write()
    lu.assertTrue(r:wait() == data:sub(11, 1010) .. data:sub(1016))
end)

TestIoCopy.test_conn_to_file_splice = T(function(defer)
    local path = tmpfile()
    local f = assert(io.open(path, "wb"))
    defer(function() pcall(f.close, f); os.remove(path) end)
    f:write("head:")                                 -- buffered in stdio: flushed first
    local a, b = pair(defer)
    local data = pattern(200000)
    net.go(function()
        a:write(data)
        a:close()
    end)
    lu.assertEquals(nio.copy(f, b), #data)
    f:write(":tail")
    f:close()
    lu.assertTrue(slurp(path) == "head:" .. data .. ":tail")
end)

TestIoCopy.test_file_to_file = T(function()
    local data = pattern(70000)
    local p1, p2 = tmpfile(data), tmpfile()
    local f1, f2 = assert(io.open(p1, "rb")), assert(io.open(p2, "wb"))
    lu.assertEquals(nio.copy(f2, f1), #data)
    f1:close()
    f2:close()
    lu.assertTrue(slurp(p2) == data)
    os.remove(p1)
    os.remove(p2)
end)

TestIoCopy.test_append_mode_file_goes_through_a_buffer = T(function(defer)
    local path = tmpfile("start:")
    local f = assert(io.open(path, "ab"))
    defer(function() pcall(f.close, f); os.remove(path) end)
    local a, b = pair(defer)
    a:write("appended")
    a:close()
    lu.assertEquals(nio.copy(f, b), 8)
    f:close()
    lu.assertEquals(slurp(path), "start:appended")
end)

TestIoCopy.test_lua_objects_through_a_buffer = T(function()
    local s = sink()
    lu.assertEquals(nio.copy(s, src{"ab", "", "cd"}), 4)
    lu.assertEquals(s:data(), "abcd")
    local s2 = sink()
    local v, err, n = nio.copy(s2, src{"abc"}, 5)
    lu.assertNil(v)
    lu.assertIs(err, EOF)
    lu.assertEquals(n, 3)
    local bad = {write = function() return nil, errors.ErrClosed end}
    v, err, n = nio.copy(bad, src{"abc"})
    lu.assertNil(v)
    lu.assertIs(err, errors.ErrClosed)
    lu.assertEquals(n, 0)
end)

TestIoCopy.test_bufio_reader_source_sends_its_buffer_first = T(function(defer)
    local a1, a2 = pair(defer)
    local b1, b2 = pair(defer)
    local rd = bufio.reader(a2)
    a1:write("header\nbody-bytes")
    a1:close()
    lu.assertEquals(rd:read_line(), "header")
    lu.assertTrue(rd:buffered() > 0)
    lu.assertEquals(rd:write_to(b1), 10)
    lu.assertEquals(b2:read_full(10), "body-bytes")
end)

TestIoCopy.test_bufio_writer_destination_is_flushed_first = T(function(defer)
    local a, b = pair(defer)
    local w = bufio.writer(a)
    w:write("buffered;")
    lu.assertEquals(nio.copy(w, src{"copied"}), 6)
    a:close_write()
    lu.assertEquals(b:read_full(15), "buffered;copied")
end)

TestIoCopy.test_limit_reader_over_a_conn = T(function(defer)
    local a1, a2 = pair(defer)
    local b1, b2 = pair(defer)
    a1:write("0123456789")
    local lr = nio.limit_reader(a2, 4)
    lu.assertEquals(nio.copy(b1, lr), 4)             -- the limit ends it: not an error
    lu.assertEquals(lr.n, 0)
    lu.assertEquals(b2:read_full(4), "0123")
    local lr2 = nio.limit_reader(a2, 3)
    local v, err, n = nio.copy(b1, lr2, 5)           -- limit before n: EOF
    lu.assertNil(v)
    lu.assertIs(err, EOF)
    lu.assertEquals(n, 3)
    lu.assertEquals(b2:read_full(3), "456")
end)

TestIoCopy.test_ctx_cancel_mid_copy = T(function(defer)
    local a1, a2 = pair(defer)
    local b1, b2 = pair(defer)
    a1:write("first")
    local ctx, cancel = context.with_cancel(context.background())
    local t = net.go(function()
        lu.assertEquals(b2:read_full(5), "first")
        cancel()
    end)
    local v, err, n = nio.copy(b1, a2, ctx)
    lu.assertNil(v)
    lu.assertTrue(errors.is(err, net.ErrCanceled), tostring(err))
    lu.assertEquals(n, 5)
    t:wait()
    a1:write("again")                                -- the conns stay usable
    lu.assertEquals(nio.copy(b1, a2, 5), 5)
    lu.assertEquals(b2:read_full(5), "again")
end)

TestIoCopy.test_source_deadline = T(function(defer)
    local _, a2 = pair(defer)
    local b1 = pair(defer)
    a2:set_read_deadline(net.now() + 0.05)
    local v, err, n = nio.copy(b1, a2)
    lu.assertNil(v)
    lu.assertTrue(errors.is(err, net.ErrDeadlineExceeded))
    lu.assertEquals(err.op, "read")
    lu.assertEquals(n, 0)
end)

TestIoCopy.test_closed_destination = T(function(defer)
    local a1, a2 = pair(defer)
    local b1 = pair(defer)
    b1:close()
    a1:write("x")
    local v, err = nio.copy(b1, a2)
    lu.assertNil(v)
    lu.assertIs(err.err, net.ErrClosed)
    lu.assertEquals(err.op, "write")
end)

TestIoCopy.test_peer_reset_on_destination = T(function(defer)
    local a1, a2 = pair(defer)
    local b1, b2 = pair(defer)
    b2:set_linger(0)
    b2:close()
    local w = net.go(function()
        for _ = 1, 64 do if not a1:write(rep("r", 65536)) then break end end
        a1:close()
    end)
    local v, err = nio.copy(b1, a2)
    lu.assertNil(v)
    lu.assertNotNil(err.errno, tostring(err))        -- ECONNRESET or EPIPE
    a2:close()
    w:wait()
end)

TestIoCopy.test_copy_outside_a_task = function()
    local la = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        local c = la:accept()
        c:write(rep("o", 100000))
        c:close()
    end)
    local a = assert(net.dial("tcp", tostring(la:addr())))
    local s = sink()
    lu.assertEquals(nio.copy(s, a), 100000)          -- a buffer: drives the loop itself
    a:close()
    la:close()
    net.run(H.settle)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

TestIoCopy.test_splice_outside_a_task = function()
    local la = assert(net.listen("tcp", "127.0.0.1:0"))
    local lb = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        local c = la:accept()
        c:write(rep("s", 300000))
        c:close()
    end)
    local got = net.go(function()
        local c = lb:accept()
        local d = c:read_full(300000)
        c:close()
        return d
    end)
    local a = assert(net.dial("tcp", tostring(la:addr())))
    local b = assert(net.dial("tcp", tostring(lb:addr())))
    lu.assertEquals(nio.copy(b, a), 300000)          -- splice, driving the loop itself
    lu.assertEquals(#got:wait(), 300000)
    a:close()
    b:close()
    la:close()
    lb:close()
    net.run(H.settle)
    lu.assertEquals(net.debug.stats().tasks, 0)
end

TestIoCopy.test_bad_arguments_raise = T(function()
    lu.assertErrorMsgContains("write() expected", nio.copy, 1, src{})
    lu.assertErrorMsgContains("read() expected", nio.copy, sink(), {})
    lu.assertErrorMsgContains("integer expected", nio.copy, sink(), src{}, 1.5)
end)

---------------------------------------------------------------------------
-- limit_reader, multi_writer, read_all
---------------------------------------------------------------------------
TestIoHelpers = {}

TestIoHelpers.test_limit_reader = T(function()
    local lr = nio.limit_reader(src{"hello", "world"}, 7)
    lu.assertEquals(lr:read(3), "hel")
    lu.assertEquals(lr:read(), "lo")
    lu.assertEquals(lr:read(10), "wo")
    lu.assertEquals(lr.n, 0)
    local v, err = lr:read()
    lu.assertNil(v)
    lu.assertIs(err, EOF)
    lu.assertEquals(nio.read_all(nio.limit_reader(src{"abc"}, 10)), "abc")
end)

TestIoHelpers.test_multi_writer = T(function()
    local s1, s2 = sink(), sink()
    local mw = nio.multi_writer(s1, s2)
    lu.assertEquals(mw:write("tee"), 3)
    lu.assertEquals(s1:data(), "tee")
    lu.assertEquals(s2:data(), "tee")
    local bad = {write = function() return nil, errors.ErrClosed end}
    local v, err, i = nio.multi_writer(s1, bad, s2):write("x")
    lu.assertNil(v)
    lu.assertIs(err, errors.ErrClosed)
    lu.assertEquals(i, 2)
    lu.assertEquals(s2:data(), "tee")                -- stopped at the failure
    lu.assertErrorMsgContains("write() expected", nio.multi_writer, s1, 5)
end)

TestIoHelpers.test_multi_writer_over_conns = T(function(defer)
    local a1, a2 = pair(defer)
    local b1, b2 = pair(defer)
    local mw = nio.multi_writer(a1, b1)
    lu.assertEquals(mw:write("both"), 4)
    lu.assertEquals(a2:read_full(4), "both")
    lu.assertEquals(b2:read_full(4), "both")
end)

TestIoHelpers.test_read_all = T(function(defer)
    lu.assertEquals(nio.read_all(src{"a", "bc", "", "d"}), "abcd")
    lu.assertEquals(nio.read_all(src{}), "")
    lu.assertEquals(nio.read_all(src{"abc"}, 3), "abc")   -- exactly max is fine
    local v, err, part = nio.read_all(src{"ab", "cd"}, 3)
    lu.assertNil(v)
    lu.assertIs(err, bufio.ErrTooLong)
    lu.assertEquals(part, "abc")
    local fail = src({"xy"})
    local n = 0
    fail.read = function()
        n = n + 1
        if n == 1 then return "xy" end
        return nil, errors.ErrClosed
    end
    v, err, part = nio.read_all(fail)
    lu.assertNil(v)
    lu.assertIs(err, errors.ErrClosed)
    lu.assertEquals(part, "xy")
    local a, b = pair(defer)
    net.go(function()
        a:write(rep("r", 200000))
        a:close()
    end)
    lu.assertEquals(#nio.read_all(b), 200000)
end)

TestIoHelpers.test_read_all_refuses_a_flood = T(function(defer)
    local a, b = pair(defer)
    local t = net.go(function()
        local chunk = rep("f", 65536)
        for _ = 1, 256 do if not a:write(chunk) then break end end
        a:close()
    end)
    local v, err, part = nio.read_all(b, 100000)
    lu.assertNil(v)
    lu.assertIs(err, bufio.ErrTooLong)
    lu.assertEquals(#part, 100000)
    b:close()
    t:wait()
end)

if not SPEC_RUNNER then os.exit(require("luaunit").LuaUnit.run()) end

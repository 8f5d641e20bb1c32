--- spec/conn_writers_spec.lua: concurrent writers on one conn are
-- serialised (each write goes out whole, FIFO), as Go's fd write lock does.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

-- A connected pair with a small send buffer, so big writes park.
local function pair()
    local c, s = H.pair()
    assert(c:set_write_buffer(4096))
    return c, s
end

local function drain(s, n)
    return net.go(function()
        local parts, got = {}, 0
        while got < n do
            local d = assert(s:read(65536))
            parts[#parts + 1] = d
            got = got + #d
        end
        return table.concat(parts)
    end)
end

TestConnWriters = {}

function TestConnWriters:test_concurrent_writes_are_whole_and_fifo()
    H.run(function()
        local c, s = pair()
        local N, SZ = 4, 1024 * 1024
        local ws = {}
        for i = 1, N do
            ws[i] = net.go(function() return c:write(string.rep(string.char(64 + i), SZ)) end)
        end
        local reader = drain(s, N * SZ)
        for i = 1, N do lu.assertEquals(ws[i]:wait(), SZ) end
        local data = reader:wait()
        for i = 1, N do
            lu.assertEquals(data:sub((i - 1) * SZ + 1, i * SZ), string.rep(string.char(64 + i), SZ),
                            "write " .. i .. " interleaved or out of order")
        end
        c:close()
        s:close()
    end)
end

function TestConnWriters:test_queued_writer_times_out_and_the_queue_moves_on()
    H.run(function()
        local c, s = pair()
        local SZ = 4 * 1024 * 1024
        local first = net.go(function() return c:write(string.rep("a", SZ)) end)
        net.yield()                                   -- first is parked mid-write
        c:set_write_deadline(net.now() + 0.05)        -- bounds first and the queued one
        local v, err, n = c:write("queued")          -- waits behind first, then times out
        lu.assertNil(v)
        lu.assertEquals(err.code, "timeout")
        lu.assertEquals(n, 0)
        local r1, err1, n1 = first:wait()
        lu.assertNil(r1)
        lu.assertEquals(err1.code, "timeout")
        lu.assertTrue(n1 > 0 and n1 < SZ)
        -- the conn stays usable and the lock was released: a new write goes out
        c:set_write_deadline(nil)
        local reader = drain(s, n1 + 4)
        lu.assertEquals(c:write("tail"), 4)
        lu.assertEquals(reader:wait(), string.rep("a", n1) .. "tail")
        c:close()
        s:close()
    end)
end

function TestConnWriters:test_close_wakes_queued_writers()
    H.run(function()
        local c, s = pair()
        local SZ = 1024 * 1024
        local ws = {}
        for i = 1, 3 do ws[i] = net.go(function() return c:write(string.rep("x", SZ)) end) end
        net.yield()
        net.yield()
        c:close()
        for i = 1, 3 do
            local v, err = ws[i]:wait()
            lu.assertNil(v)
            lu.assertTrue(net.errors.is(err, net.ErrClosed), tostring(err))
        end
        s:close()
    end)
end

function TestConnWriters:test_cancelled_queued_writer_leaves_the_queue()
    H.run(function()
        local c, s = pair()
        local SZ = 1024 * 1024
        local first = net.go(function() return c:write(string.rep("a", SZ)) end)
        net.yield()
        local ctx, cancel = net.context.with_cancel(net.context.background())
        local second = net.go(function() return c:write(string.rep("b", 10), ctx) end)
        local third = net.go(function() return c:write(string.rep("c", 10)) end)
        net.yield()
        cancel()
        local v, err = second:wait()
        lu.assertNil(v)
        lu.assertTrue(net.errors.is(err, net.ErrCanceled))
        local data = drain(s, SZ + 10):wait()
        lu.assertEquals(first:wait(), SZ)
        lu.assertEquals(third:wait(), 10)
        lu.assertEquals(data, string.rep("a", SZ) .. string.rep("c", 10))
        c:close()
        s:close()
    end)
end

-- io.copy into a conn is a writer too: it holds the write lock while it
-- waits, so a concurrent write queues behind it instead of cutting in.
function TestConnWriters:test_io_copy_holds_the_write_lock()
    H.run(function()
        local srcw, srcr = H.pair()
        local dst, peer = H.pair()
        local SZ = 4 * 1024 * 1024
        local feeder = net.go(function()
            assert(srcw:write(string.rep("c", SZ)))
            srcw:close_write()
        end)
        local copier = net.go(function() return net.io.copy(dst, srcr) end)
        -- wait until the copy is parked on dst's write side: something waits
        -- to write, nothing to read (the copy has data), nothing is queued
        local function parked()
            local st = net.debug.stats()
            return st.blocked.write >= 1 and st.blocked.read == 0 and st.ready == 0
        end
        while not parked() do net.yield() end
        local writer = net.go(function() return dst:write("after") end)
        local data = drain(peer, SZ + 5):wait()
        lu.assertEquals(copier:wait(), SZ)
        lu.assertEquals(writer:wait(), 5)
        feeder:wait()
        lu.assertEquals(#data, SZ + 5)
        lu.assertEquals(data:sub(1, SZ), string.rep("c", SZ), "the write cut into the copy")
        lu.assertEquals(data:sub(SZ + 1), "after")
        for _, c in ipairs{srcw, srcr, dst, peer} do c:close() end
    end)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

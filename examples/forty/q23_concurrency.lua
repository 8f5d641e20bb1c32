#!/usr/bin/env lua5.4
--- examples/forty/q23_concurrency.lua: Q23, the reader/writer/closer contract.
-- One task reading, one writing, one setting deadlines and one closing the
-- same conn at once is legal. A second concurrent reader gets an error with
-- code "busy" instead of interleaved data (coronet differs from Go, where
-- two readers silently split the stream). Writers queue: each write goes
-- out whole, in order. close() wakes the blocked reader and writer with
-- ErrClosed.
--   lua5.4 examples/forty/q23_concurrency.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local errors = net.errors

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    local s <close> = assert(ln:accept())

    F.say("Q23. a reader, a writer and a deadline setter on one conn at once")
    local reader = net.go(function()
        local got = {}
        while true do
            local d, err = c:read(65536)
            if not d then return table.concat(got), err end
            got[#got + 1] = d
        end
    end)
    while net.debug.stats().blocked.read == 0 do net.yield() end
    local d2, e2 = c:read(10)
    F.say("  a second reader -> %s", tostring(e2))
    F.check(d2 == nil and e2.code == "busy" and errors.is(e2, errors.ErrBusy),
            "a second concurrent reader gets code \"busy\", not half the data")

    -- the peer echoes, so the reader sees what the writers wrote
    local echo = net.go(function()
        while true do
            local d = s:read(65536)
            if not d or not s:write(d) then return end
        end
    end)
    local big = string.rep("a", 1 << 20)
    local w1 = net.go(function() return c:write(big) end)
    local w2 = net.go(function() return c:write(string.rep("b", 1000)) end)
    local setter = net.go(function()
        for _ = 1, 10 do c:set_write_deadline(net.now() + 10); net.yield() end
        return true
    end)
    F.check(w1:wait() == #big and w2:wait() == 1000 and setter:wait(), "both writers and the setter finished")
    local want = #big + 1000
    while true do                                     -- wait until the echo came back
        local st = net.debug.stats()
        if st.blocked.read >= 2 then break end        -- reader and echo both idle
        net.yield()
    end
    -- the closer
    local flood = string.rep("x", 16 << 20)
    local blocked_writer = net.go(function()
        s:close_read()
        return c:write(flood)                        -- blocks: the peer stops reading
    end)
    while net.debug.stats().blocked.write == 0 do net.yield() end
    c:close()
    local data, rerr = reader:wait()
    local wn, werr, nw = blocked_writer:wait()
    F.say("  after close: reader got %d bytes then %s; blocked writer -> %s after %s bytes",
          #data, tostring(rerr), tostring(werr), tostring(nw))
    F.check(#data == want, "the reader got every byte written", #data)
    F.check(data == big .. string.rep("b", 1000) or data == string.rep("b", 1000) .. big,
            "each write went out whole: no interleaving")
    F.check(errors.is(rerr, net.ErrClosed), "close woke the reader with ErrClosed")
    F.check(wn == nil and errors.is(werr, net.ErrClosed), "and the blocked writer with ErrClosed")
    s:close()
    echo:wait()
end)
F.done()

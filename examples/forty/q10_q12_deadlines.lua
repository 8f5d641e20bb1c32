#!/usr/bin/env lua5.4
--- examples/forty/q10_q12_deadlines.lua: Q10 (a read that hangs), Q11
-- (deadlines are absolute and persist), Q12 (per-request timeouts).
-- Q10: set_read_deadline(net.now() + d) bounds a read against a silent
-- peer: nil, err with errors.is(err, net.ErrDeadlineExceeded), err.timeout.
-- Q11: the deadline is a point in time, not a duration: it keeps applying
-- to every later read until changed (nil clears it), and once it has passed
-- a read fails at once even with data waiting, as in Go.
-- Q12: on a long-lived conn, move the deadline before each request; set
-- once, it cuts the conn's whole life short instead.
--   lua5.4 examples/forty/q10_q12_deadlines.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local errors = net.errors

-- an echo server that answers each request after `delay` seconds
local function slow_echo(delay)
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(function()
        while true do
            local s = ln:accept()
            if not s then return end
            net.go(function()
                while true do
                    local d = s:read(100)
                    if not d then break end
                    if d ~= "silence" then
                        net.sleep(delay)
                        if not s:write(d) then break end
                    end
                end
                s:close()
            end)
        end
    end)
    return ln
end

net.run(function()
    local ln <close> = slow_echo(0.1)
    local c = assert(net.dial("tcp", tostring(ln:addr())))

    F.say("Q10. a read from a silent peer, with set_read_deadline(net.now() + 0.2)")
    c:write("silence")
    c:set_read_deadline(net.now() + 0.2)
    local t0 = net.now()
    local d, err = c:read(100)
    F.say("  read -> %s, %s after %.2f s (code %s, timeout %s)", tostring(d), tostring(err),
          net.now() - t0, err and err.code, tostring(err and err.timeout))
    F.check(d == nil and errors.is(err, net.ErrDeadlineExceeded) and err.timeout == true,
            "the read fails with ErrDeadlineExceeded (err.timeout)")
    F.check(net.now() - t0 >= 0.2, "not before the deadline")

    F.say("Q11. the deadline stays: the next read, without touching it")
    local returned = false
    net.go(function() d, err = c:read(100); returned = true end)
    net.yield()                              -- one turn: enough unless the read parked
    F.check(returned, "the read returns without waiting: the deadline is a time, not a duration")
    F.check(d == nil and errors.is(err, net.ErrDeadlineExceeded),
            "it fails too: the passed deadline still applies", tostring(err))
    c:write("ping")                          -- the answer arrives after 0.1 s
    net.sleep(0.3)                           -- ... so data is waiting now
    d, err = c:read(100)
    F.check(d == nil and errors.is(err, net.ErrDeadlineExceeded),
            "a passed deadline fails the read even with data waiting (as Go)", tostring(d))
    c:set_read_deadline(nil)
    F.check(c:read(100) == "ping", "nil clears it: the conn was usable all along")

    F.say("Q12. eight requests, each answered after 0.1 s, under a 0.5 s budget")
    local function requests(reset)
        local okn = 0
        c:set_read_deadline(net.now() + 0.5)
        for i = 1, 8 do
            if reset then c:set_read_deadline(net.now() + 0.5) end
            c:write("r" .. i)
            local got = c:read(100)
            if got ~= "r" .. i then break end
            okn = okn + 1
        end
        return okn
    end
    local once = requests(false)
    F.say("  deadline set once: %d of 8 requests made it", once)
    F.check(once < 8, "set once, the deadline ends the conn's life, not a request")
    c:close()
    c = assert(net.dial("tcp", tostring(ln:addr())))   -- a fresh conn (an answer may be in flight)
    local each = requests(true)
    F.say("  deadline moved before each request: %d of 8", each)
    F.check(each == 8, "reset before each request, every one gets its full budget")
    c:close()
end)
F.done()

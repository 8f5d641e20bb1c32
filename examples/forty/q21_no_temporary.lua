#!/usr/bin/env lua5.4
--- examples/forty/q21_no_temporary.lua: Q21, why there is no temporary().
-- coronet never had one: an error object has a stable `code`, a `timeout`
-- flag, and wraps a sentinel, and retry logic tests for the case it can act
-- on: errors.is(err, net.ErrDeadlineExceeded) (or err.timeout) is worth a
-- retry with a new deadline, errors.is(err, net.ErrClosed) means stop,
-- code "ECONNREFUSED"/"ECONNRESET" (or errors.is(err, net.errors.ECONNRESET))
-- means the peer is gone. The script makes each of those errors for real
-- and classifies them.
--   lua5.4 examples/forty/q21_no_temporary.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local errors = net.errors

-- what a caller should do about err: the test instead of temporary()
local function classify(err)
    if errors.is(err, net.ErrDeadlineExceeded) then return "retry with a new deadline" end
    if errors.is(err, net.ErrClosed) then return "stop: we closed it" end
    if errors.is(err, errors.ECONNREFUSED) then return "peer not listening: back off" end
    if errors.is(err, errors.ECONNRESET) or errors.is(err, errors.EPIPE) then return "peer gone: redial" end
    if err == net.EOF then return "peer finished" end
    return "unknown: give up"
end

net.run(function()
    local made = {}
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    local s = assert(ln:accept())
    c:set_read_deadline(net.now() + 0.05)
    made.timeout = select(2, c:read(10))
    c:set_read_deadline(nil)
    s:set_linger(0)
    s:close()                                           -- an RST
    made.reset = select(2, c:read(10))
    c:close()
    made.closed = select(2, c:read(10))
    local port = ln:addr().port
    ln:close()
    made.refused = select(2, net.dial("tcp", "127.0.0.1:" .. port))

    F.say("Q21. four real errors, classified without temporary():")
    local want = {timeout = "retry with a new deadline", closed = "stop: we closed it",
                  reset = "peer gone: redial", refused = "peer not listening: back off"}
    for _, k in ipairs{"timeout", "reset", "closed", "refused"} do
        local e = made[k]
        F.say("  %-8s %-60s code=%-13s timeout=%-5s -> %s", k, tostring(e), e.code, tostring(e.timeout), classify(e))
        F.check(classify(e) == want[k], k .. " is told apart by errors.is/code alone")
        F.check(e.temporary == nil, k .. ": the error has no temporary field or method")
    end
    F.check(errors.temporary == nil and net.temporary == nil, "net.errors has no temporary() either")
    F.check(made.timeout.timeout == true and made.reset.timeout == false,
            "err.timeout is the one boolean, and it means exactly a timeout")
end)
F.done()

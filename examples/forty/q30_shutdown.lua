#!/usr/bin/env lua5.4
--- examples/forty/q30_shutdown.lua: Q30, graceful shutdown losing nothing.
-- srv:shutdown(ctx) closes the listeners (a new dial is refused), ends the
-- ctx handed to handlers, closes idle conns, and waits for the requests in
-- flight to finish: every client that was being served gets its whole
-- answer. It returns true when drained; when ctx ends first it force-closes
-- the rest and returns nil, ctx:err(), n. coronet's server is a table of
-- conns, a wait group and a select on the ctx, as Go's http.Server.
--   lua5.4 examples/forty/q30_shutdown.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local context, errors = net.context, net.errors

local N = 5
net.run(function()
    local in_flight = 0
    local srv = net.server{handler = function(c, ctx)
        local req = c:read(100)
        if not req then return end
        in_flight = in_flight + 1
        net.sleep(req == "slow" and 3 or 0.3)         -- the work, in flight
        c:write("done " .. req)
        in_flight = in_flight - 1
    end}
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local addr = tostring(ln:addr())
    local serving = net.go(function() return srv:serve(ln) end)

    local clients = {}
    for i = 1, N do
        clients[i] = net.go(function()
            local c <close> = assert(net.dial("tcp", addr))
            c:write("req" .. i)
            c:set_read_deadline(net.now() + 5)
            return c:read(100)
        end)
    end
    while in_flight < N do net.yield() end
    F.say("Q30. %d requests in flight; srv:shutdown(ctx) starts", N)
    local sd = net.go(function() return srv:shutdown(context.with_timeout(context.background(), 5)) end)
    local refused
    for _ = 1, 100 do
        local c, err = net.dial("tcp", addr, {timeout = 0.5})
        if not c and err.code == "ECONNREFUSED" then refused = err; break end
        if c then c:close() end                     -- (a dial racing the close may be reset)
        net.sleep(0.01)
    end
    F.say("  a new dial -> %s", tostring(refused))
    F.check(refused and refused.code == "ECONNREFUSED", "the listener is closed: new dials are refused")
    local answered = 0
    for i, t in ipairs(clients) do
        if t:wait() == "done req" .. i then answered = answered + 1 end
    end
    F.say("  %d of %d in-flight clients got their whole answer", answered, N)
    F.check(answered == N, "shutdown let every request in flight finish")
    F.check(sd:wait() == true, "shutdown returned true: drained")
    F.check(serving:wait() == true, "serve returned true")

    F.say("Q30. a handler that outlives the shutdown ctx (0.2 s)")
    local srv2 = net.server{handler = function(c) local r = c:read(100); net.sleep(3); c:write(r) end}
    local ln2 = assert(net.listen("tcp", "127.0.0.1:0"))
    local serving2 = net.go(function() return srv2:serve(ln2) end)
    local c <close> = assert(net.dial("tcp", tostring(ln2:addr())))
    c:write("slow")
    while srv2:stats() and net.debug.stats().blocked.sleep == 0 do net.yield() end
    local ok, err, n = srv2:shutdown(context.with_timeout(context.background(), 0.2))
    F.say("  shutdown -> %s, %s, %s", tostring(ok), tostring(err), tostring(n))
    F.check(ok == nil and errors.is(err, net.ErrDeadlineExceeded) and n == 1,
            "nil, ctx:err() and the count it force-closed")
    local d, rerr = c:read(100)
    F.check(d == nil and rerr ~= nil, "the force-closed client sees its conn end", tostring(rerr))
    serving2:wait()
end)
F.done()

#!/usr/bin/env lua5.4
--- examples/forty/q37_slowloris.lua: Q37, a slow-loris-resistant server.
-- net.server does the six things Go's answer lists: (1) first_byte_timeout
-- from accept to the first byte, (2) read_timeout/write_timeout per request,
-- absolute from its first byte (a 1-byte trickle can't extend them),
-- (3) max_conns, (4) max_conns_per_ip, (5) max_request_bytes, the cap of
-- sc:reader()'s tokens, (6) a refusal is linger 0 + close: one RST, no
-- TIME_WAIT, nothing read. The handler marks request boundaries with
-- sc:next_request(), so the server knows which deadline applies.
--   lua5.4 examples/forty/q37_slowloris.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local context = net.context

net.run(function()
    local srv = net.server{first_byte_timeout = 0.3, read_timeout = 0.5, write_timeout = 0.5,
                           idle_timeout = 0.5, max_conns = 10, max_conns_per_ip = 3,
                           max_request_bytes = 64, on_error = function() end,
        handler = function(c, ctx, sc)
            local rd = sc:reader()
            while sc:next_request() do
                local line, err = rd:read_line()
                if not line then
                    if err == net.bufio.ErrTooLong then c:write("431 too long\n") end
                    return
                end
                if line == "hold" then net.sleep(0.2) end      -- within write_timeout
                c:write("ok " .. line .. "\n")
            end
        end}
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local addr = tostring(ln:addr())
    local serving = net.go(function() return srv:serve(ln) end)
    local function bounded() return context.with_timeout(context.background(), 5) end

    F.say("Q37 (1). a client that connects and says nothing")
    local idle = assert(net.dial("tcp", addr))
    local t0 = net.now()
    local d, err = idle:read(100, bounded())
    F.say("  its read -> %s after %.2f s", tostring(err), net.now() - t0)
    F.check(d == nil and not (err and err.code == "canceled"), "the server dropped it (first_byte_timeout)")
    F.check(net.now() - t0 >= 0.3, "not before first_byte_timeout")
    idle:close()

    F.say("Q37 (2). a client that trickles one byte every 0.1 s and never ends its line")
    local trickle = assert(net.dial("tcp", addr))
    local sent, ended = 0, false
    local reader = net.go(function() local r = trickle:read(100, bounded()); ended = true; return r end)
    while not ended and sent < 40 do
        if not trickle:write("x") then break end
        sent = sent + 1
        net.sleep(0.1)
    end
    reader:wait()
    F.say("  the server ended it after %d trickled bytes", sent)
    F.check(ended and sent < 40, "the absolute read_timeout ended the request; the trickle didn't extend it")
    trickle:close()

    F.say("Q37 (4). four conns from one IP with max_conns_per_ip = 3")
    local holders = {}
    for i = 1, 3 do
        holders[i] = assert(net.dial("tcp", addr))
        holders[i]:write("hold\n")
    end
    while srv:stats().active < 3 do net.yield() end
    local fourth = assert(net.dial("tcp", addr))
    d, err = fourth:read(100, bounded())
    F.say("  the fourth's read -> %s; stats: refused_per_ip %d", tostring(err), srv:stats().refused_per_ip)
    F.check(d == nil and err.code == "ECONNRESET", "refused with an RST (linger 0 + close)")
    F.check(srv:stats().refused_per_ip == 1, "and counted")
    fourth:close()
    for _, h in ipairs(holders) do
        F.check(h:read(100, bounded()) == "ok hold\n", "the three within the cap were served")
        h:close()
    end

    F.say("Q37 (5). a request line over max_request_bytes (64)")
    local big = assert(net.dial("tcp", addr))
    big:write(string.rep("A", 100) .. "\n")
    local answer = big:read(100, bounded())
    F.say("  -> %q", tostring(answer))
    F.check(answer == "431 too long\n", "the capped reader refused it; nothing past 64 bytes was buffered")
    big:close()

    F.check(srv:stats().timed_out >= 2, "stats().timed_out counts the silent and the trickling client",
            srv:stats().timed_out)
    srv:shutdown(bounded())
    serving:wait()
end)
F.done()

#!/usr/bin/env lua5.4
--- examples/forty/q16_half_close.lua: Q16, half-close.
-- The client sends a request and c:close_write() (a FIN). The server reads
-- until EOF, so it knows the request is complete, then answers on the same
-- conn; the client still reads. Writing after close_write fails.
--   lua5.4 examples/forty/q16_half_close.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

net.run(function()
    local ln <close> = assert(net.listen("tcp", "127.0.0.1:0"))
    local server = net.go(function()
        local s <close> = assert(ln:accept())
        local req = {}
        while true do
            local d, err = s:read(100)
            if not d then
                if err ~= net.EOF then return nil, err end
                break
            end
            req[#req + 1] = d
        end
        req = table.concat(req)
        assert(s:write("got " .. #req .. " bytes: " .. req))
        return req
    end)
    local c <close> = assert(net.dial("tcp", tostring(ln:addr())))
    c:write("GET /")
    c:write(" HTTP/1.0")
    assert(c:close_write())
    F.say("Q16. the client wrote its request and called close_write()")
    local answer = {}
    while true do
        local d = c:read(100)
        if not d then break end
        answer[#answer + 1] = d
    end
    answer = table.concat(answer)
    F.say("  the client still reads: %q", answer)
    F.check(server:wait() == "GET / HTTP/1.0", "the server read the whole request, then EOF")
    F.check(answer == "got 14 bytes: GET / HTTP/1.0", "the answer came back on the half-closed conn")
    local n, err = c:write("more")
    F.say("  write after close_write -> %s, %s", tostring(n), tostring(err))
    F.check(n == nil and err.code == "EPIPE", "our write half is closed (EPIPE)", err and err.code)
end)
F.done()

#!/usr/bin/env lua5.4
--- examples/unixgram.lua: a request/response service over unix datagram
-- sockets. The server binds a path and answers each datagram with its
-- upper-case form; clients dial it (a dialed unixgram conn gets an abstract
-- name of its own, so the server can answer).
--   lua5.4 examples/unixgram.lua server PATH
--   lua5.4 examples/unixgram.lua client PATH WORDS...
-- `--selftest` does both in a temporary directory and exits.
local net = require "coronet"

local function serve(pc)
    while true do
        local data, from = pc:read_from()
        if not data then
            if net.errors.is(from, net.ErrClosed) then return end
            io.stderr:write("unixgram: ", tostring(from), "\n")
        elseif from then                       -- nil: an unnamed sender can't be answered
            local _, err = pc:write_to(data:upper(), from)
            if err then io.stderr:write("unixgram: ", tostring(err), "\n") end
        end
    end
end

local function ask(path, words)
    local c <close> = assert(net.dial("unixgram", path))
    local out = {}
    for _, w in ipairs(words) do
        assert(c:write(w))
        c:set_read_deadline(net.now() + 2)      -- unixgram does not drop, but don't hang
        out[#out + 1] = assert(c:read())
    end
    return out
end

local mode, path = arg[1], arg[2]
if mode == "--selftest" then
    local p = io.popen("mktemp -d /tmp/coronet-unixgram.XXXXXX")
    local dir = p:read("l")
    p:close()
    path = dir .. "/upper.sock"
    local pc = assert(net.listen_packet("unixgram", path))
    net.go(serve, pc)
    local got = ask(path, {"hello", "datagram", "world"})
    assert(table.concat(got, " ") == "HELLO DATAGRAM WORLD", table.concat(got, " "))
    print("answers: " .. table.concat(got, " "))
    -- an abstract name needs no file at all
    local abs = assert(net.listen_packet("unixgram", "@coronet-example-" .. require("coronet.core").getpid()))
    net.go(serve, abs)
    print("abstract: " .. ask(tostring(abs:local_addr()), {"abstract"})[1])
    abs:close()
    pc:close()                                  -- removes the path it created
    os.remove(dir)
    print("selftest ok")
elseif mode == "server" and path then
    local pc = assert(net.listen_packet("unixgram", path))
    print("unixgram server on " .. tostring(pc:local_addr()))
    net.run(serve, pc)
elseif mode == "client" and path then
    for _, a in ipairs(ask(path, {table.unpack(arg, 3)})) do print(a) end
else
    io.stderr:write("usage: unixgram.lua server PATH | client PATH WORDS... | --selftest\n")
    os.exit(2)
end

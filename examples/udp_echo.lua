#!/usr/bin/env lua5.4
--- examples/udp_echo.lua: a UDP echo server and client.
--   lua5.4 examples/udp_echo.lua server [ADDRESS]   echo every datagram (default 127.0.0.1:7008)
--   lua5.4 examples/udp_echo.lua client [ADDRESS]   send each stdin line, print the echo
-- (with LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' from the repo root)
-- `--selftest` starts a server task on :0, runs the client against it and
-- exits (used by make check).
local net = require "coronet"

-- serve: echo each datagram to its sender. Batches: one recvmmsg takes up
-- to 32 datagrams and one sendmmsg answers them (read_from/write_to would
-- do the same one datagram per call).
local function serve(pc)
    local msgs = {}
    for i = 1, 32 do msgs[i] = {} end
    while true do
        local n, err = pc:read_batch(msgs)
        if not n then
            if net.errors.is(err, net.ErrClosed) then return end
            io.stderr:write("udp echo: ", tostring(err), "\n")
        else
            local _, werr = pc:write_batch(msgs, 1, n)
            if werr then io.stderr:write("udp echo: ", tostring(werr), "\n") end
        end
    end
end

-- roundtrip: send one datagram on the connected conn c and wait (bounded)
-- for the echo; UDP may lose either, so a timeout is an answer too.
local function roundtrip(c, line)
    assert(c:write(line))
    c:set_read_deadline(net.now() + 2)
    local data, err, truncated = c:read(65536)
    if not data then return nil, err end
    return data .. (truncated and " (truncated)" or "")
end

local function client(address, lines)
    local c, err = net.dial("udp", address)
    if not c then return nil, err end
    for line in lines do
        local echo, rerr = roundtrip(c, line)
        print(echo or ("no echo: " .. tostring(rerr)))
    end
    c:close()
    return true
end

local mode, address = arg[1], arg[2]
if mode == "--selftest" then
    local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
    net.go(serve, pc)
    local sent = {"one", "two", "", "three"}
    local c = assert(net.dial("udp", tostring(pc:local_addr())))
    for _, line in ipairs(sent) do
        assert(assert(roundtrip(c, line)) == line, "echo mismatch")
        print("echoed: '" .. line .. "'")
    end
    -- an unconnected client: write_to with a string address, read_from
    local u = assert(net.listen_packet("udp", "127.0.0.1:0"))
    assert(u:write_to("loose", tostring(pc:local_addr())))
    u:set_read_deadline(net.now() + 2)
    local data, from = assert(u:read_from())
    assert(data == "loose" and tostring(from) == tostring(pc:local_addr()))
    print("echoed: 'loose' from " .. tostring(from))
    u:close()
    c:close()
    pc:close()
    print("selftest ok")
elseif mode == "server" then
    local pc = assert(net.listen_packet("udp", address or "127.0.0.1:7008"))
    print("udp echo server on " .. tostring(pc:local_addr()))
    net.run(serve, pc)
elseif mode == "client" then
    local ok, err = client(address or "127.0.0.1:7008", io.lines())
    if not ok then
        io.stderr:write(tostring(err), "\n")
        os.exit(1)
    end
else
    io.stderr:write("usage: udp_echo.lua server|client [ADDRESS] | --selftest\n")
    os.exit(2)
end

#!/usr/bin/env lua5.4
--- examples/line_chat.lua [ADDRESS]: a line-based chat server. Each line
-- a client sends goes to every other client, prefixed with the sender's
-- address. Default address 127.0.0.1:7008; try `nc 127.0.0.1 7008` from
-- two terminals.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/line_chat.lua
-- `--selftest` starts it on :0, connects three clients, checks that each
-- line reaches the two others (and not its sender), and exits.
--
-- One task reads each client (a bufio reader: read_line, lines capped at
-- MAX_LINE bytes) and one writes to it from a bounded queue, so a client
-- that stops reading is dropped instead of slowing everyone down.
local net = require "coronet"
local bufio = net.bufio

local MAX_LINE = 4096      -- a longer line disconnects its sender
local QUEUE = 64           -- lines a client may fall behind before it is dropped
local IDLE = 300           -- seconds of silence before a client is dropped

local clients = {}         -- conn -> its outgoing queue (a channel)

-- Queue line for every client but from; drop those whose queue is full.
local function broadcast(from, line)
    for c, out in pairs(clients) do
        if c ~= from and not out:try_send(line) then
            c:close()                              -- too slow: its reader ends it
        end
    end
end

-- Write the queued lines to c, flushing once the queue runs dry.
local function writer(c, out)
    local w = bufio.writer(c)
    for line in out:iter() do
        if not w:write(line) then break end
        if #out == 0 and not w:flush() then break end
    end
    c:close()
end

local function handle(c)
    local name = tostring(c:remote_addr())
    local out = net.chan(QUEUE)
    clients[c] = out
    net.go(writer, c, out)
    broadcast(c, "* " .. name .. " joined\n")
    local rd = bufio.reader(c, {max_token = MAX_LINE})
    while true do
        c:set_read_deadline(net.now() + IDLE)
        local line, err = rd:read_line()
        if not line then
            if not net.errors.is(err, net.EOF) and not net.errors.is(err, net.ErrClosed) then
                io.stderr:write("chat: ", name, ": ", tostring(err), "\n")
            end
            break
        end
        broadcast(c, name .. ": " .. line .. "\n")
    end
    clients[c] = nil
    out:close()                                    -- the writer drains it and closes c
    broadcast(c, "* " .. name .. " left\n")
end

local function serve(ln)
    while true do
        local c, err = ln:accept()
        if not c then
            if net.errors.is(err, net.ErrClosed) then return end
            io.stderr:write("chat: accept: ", tostring(err), "\n")
            net.sleep(0.05)                        -- EMFILE and friends: back off
        else
            net.go(handle, c)
        end
    end
end

local function selftest()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    net.go(serve, ln)
    local addr = tostring(ln:addr())
    local function join()
        local c = assert(net.dial("tcp", addr))
        return {c = c, rd = bufio.reader(c), name = tostring(c:local_addr())}
    end
    local function expect(who, want)
        local line = assert(who.rd:read_line())
        assert(line == want, "got " .. line .. ", want " .. want)
    end
    local a = join()
    local b = join()
    expect(a, "* " .. b.name .. " joined")          -- b is registered
    local c = join()
    expect(a, "* " .. c.name .. " joined")
    expect(b, "* " .. c.name .. " joined")          -- everyone is registered
    assert(a.c:write("hello from a\n"))
    expect(b, a.name .. ": hello from a")
    expect(c, a.name .. ": hello from a")
    assert(b.c:write("hi a\r\n"))
    expect(a, b.name .. ": hi a")                   -- a never got its own line back
    expect(c, b.name .. ": hi a")
    c.c:close()
    expect(a, "* " .. c.name .. " left")
    a.c:close()
    b.c:close()
    ln:close()
    print("selftest ok")
end

if arg[1] == "--selftest" then
    net.run(selftest)
    return
end

local ln = assert(net.listen("tcp", arg[1] or "127.0.0.1:7008"))
print("chat server on " .. tostring(ln:addr()))
net.run(serve, ln)

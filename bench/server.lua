--- bench/server.lua WORKLOAD PORT: the echo and http servers of the
-- shared benchmark, written the way a user would write them with coronet:
-- one task per connection; echo uses plain read/write (or, with
-- CORONET_BENCH_ECHO, a net.buffer or net.io.copy: see below), http a bufio reader.
local net = require "coronet"

local workload, port = arg[1], arg[2]
assert(workload and port, "usage: server.lua echo|http|udp PORT")

local RESP = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
local RESP_CLOSE = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
    .. "Connection: close\r\n\r\nHello, World!"
local MAX_HEADER = 65536

-- CORONET_BENCH_READ: the string echo's read size (65536 unless set; the
-- bulk A/B in bench/ab/20261206-083856 compares sizes)
local READ = math.tointeger(tonumber(os.getenv("CORONET_BENCH_READ") or "65536"))
    or error("CORONET_BENCH_READ: a whole number of bytes")

local function echo(c)
    while true do
        local data = c:read(READ)
        if not data or not c:write(data) then break end
    end
    c:close()
end

-- The same echo for users who move bytes (docs/buffer.md), picked by
-- CORONET_BENCH_ECHO (bench/server_buffer, bench/server_splice): on one
-- reused net.buffer (read_into, write(buf), reset), so no chunk becomes a
-- Lua string; or as net.io.copy(c, c), socket -> pipe -> socket by splice(2).
local function echo_buffer(c)
    local buf = net.buffer(16384)
    while c:read_into(buf) and c:write(buf) do
        buf:reset()
    end
    c:close()
end

local function echo_splice(c)
    net.io.copy(c, c)
    c:close()
end

local echoes = {string = echo, buffer = echo_buffer, splice = echo_splice}
echo = echoes[os.getenv("CORONET_BENCH_ECHO") or "string"]
    or error("CORONET_BENCH_ECHO: string, buffer or splice")

-- Answer every request (the bytes up to "\r\n\r\n", cut by a bufio
-- reader's read_until in C). Answers to pipelined requests that are
-- already buffered go out in one write; none waits for more input.
local function http(c)
    local find, concat = string.find, table.concat
    local rd = net.bufio.reader(c, {max_token = MAX_HEADER})
    local out, n = {}, 0
    while true do
        local req = rd:read_until("\r\n\r\n")
        if not req then break end
        local closing = find(req, "Connection: close", 1, true) ~= nil
        n = n + 1
        out[n] = closing and RESP_CLOSE or RESP
        local more = rd:buffered()
        if closing or more == 0 or not find(rd:peek(more), "\r\n\r\n", 1, true) then
            local ok = c:write(n == 1 and out[1] or concat(out, "", 1, n))
            n = 0
            if not ok or closing then break end
        end
    end
    c:close()
end

local handlers = {echo = echo, http = http}
local handler = handlers[workload] or error("unknown workload " .. workload)

net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:" .. port, {backlog = 4096}))
    while true do
        local c, err = ln:accept()
        if c then
            net.go(handler, c)
        elseif err.code == "EMFILE" or err.code == "ENFILE" then
            net.sleep(0.01)                   -- back off, as Go's server does
        else
            error(err)
        end
    end
end)

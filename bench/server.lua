--- bench/server.lua WORKLOAD PORT: the echo and http servers of the
-- shared benchmark, written the way a user would write them with coronet:
-- one task per connection, plain read/write.
local net = require "coronet"

local workload, port = arg[1], arg[2]
assert(workload and port, "usage: server.lua echo|http|udp PORT")

local RESP = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
local RESP_CLOSE = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
    .. "Connection: close\r\n\r\nHello, World!"
local MAX_HEADER = 65536

local function echo(c)
    while true do
        local data = c:read(65536)
        if not data or not c:write(data) then break end
    end
    c:close()
end

-- Answer every complete request (up to "\r\n\r\n") in the input, pipelined
-- ones in one write; keep the unfinished tail for the next read.
local function http(c)
    local find, sub = string.find, string.sub
    local pending = ""
    while true do
        local data = c:read(65536)
        if not data then break end
        if pending ~= "" then data = pending .. data end
        local pos, out, n, closing = 1, nil, 0, false
        while true do
            local s, e = find(data, "\r\n\r\n", pos, true)
            if not s then break end
            closing = find(sub(data, pos, s), "Connection: close", 1, true) ~= nil
            n = n + 1
            if n == 1 then out = closing and RESP_CLOSE or RESP
            else out = out .. (closing and RESP_CLOSE or RESP) end
            pos = e + 1
            if closing then break end
        end
        pending = pos > #data and "" or sub(data, pos)
        if #pending > MAX_HEADER then break end
        if out and not c:write(out) then break end
        if closing then break end
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

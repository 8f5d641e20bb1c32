--- bench/prefork/http.lua WORKERS PORT: bench/server_srv.lua's http server
-- (net.server, per-request deadlines) in WORKERS prefork worker processes
-- sharing one listening socket (net.prefork). bench/prefork/run.sh drives
-- it with wrk for 1 and 2 workers.
local net = require "coronet"

local workers, port = tonumber(arg[1]), arg[2]
assert(workers and port, "usage: http.lua WORKERS PORT")

local RESP = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
local RESP_CLOSE = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
    .. "Connection: close\r\n\r\nHello, World!"

local function http(c, _, sc)
    local find = string.find
    local rd = sc:reader()
    while sc:next_request() do
        local req = rd:read_until("\r\n\r\n")
        if not req then break end
        local closing = find(req, "Connection: close", 1, true) ~= nil
        if not c:write(closing and RESP_CLOSE or RESP) or closing then break end
    end
end

net.prefork{workers = workers, addresses = {"127.0.0.1:" .. port}, serve = function(lns, ctx)
    local srv = net.server{handler = http, max_request_bytes = 65536, first_byte_timeout = 10,
                           read_timeout = 10, write_timeout = 10, idle_timeout = 60}
    net.go(function()
        ctx:done():recv()                  -- TERM from the supervisor
        srv:shutdown(net.context.with_timeout(net.context.background(), 5))
    end)
    srv:serve(lns[1])
end}

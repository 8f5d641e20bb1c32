--- bench/server_srv.lua WORKLOAD PORT: bench/server.lua's echo and http
-- servers written on net.server, so that run.sh can compare what the
-- server costs over the hand-written accept loop (srv us/op). http runs
-- with the per-request machinery a real server uses: next_request marks
-- each request's boundary and arms its deadlines, the header is capped by
-- sc:reader(). echo is a byte stream with no request boundaries, so it
-- runs without timeouts (a deadline from accept would cut long-lived
-- echo conns): there the server's cost is per conn (admission, tracking).
-- CORONET_SRV_TIMEOUTS=0 runs http without deadlines too, which splits
-- the server's own cost from that of the timers its deadlines arm.
local net = require "coronet"

local workload, port = arg[1], arg[2]
assert(workload and port, "usage: server_srv.lua echo|http PORT")

local RESP = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
local RESP_CLOSE = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n"
    .. "Connection: close\r\n\r\nHello, World!"

local function echo(c)
    while true do
        local data = c:read(65536)
        if not data or not c:write(data) then break end
    end
end

-- As bench/server.lua's http, with sc:next_request() at each request:
-- answers to pipelined requests already buffered go out in one write.
local function http(c, _ctx, sc)
    local find, concat = string.find, table.concat
    local rd = sc:reader()
    local out, n = {}, 0
    while sc:next_request() do
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
end

local opts
if workload == "echo" then
    opts = {handler = echo}
elseif workload == "http" then
    opts = {handler = http, max_request_bytes = 65536}
    if os.getenv("CORONET_SRV_TIMEOUTS") ~= "0" then   -- 0: isolate the deadlines' own cost
        opts.first_byte_timeout, opts.read_timeout, opts.write_timeout = 10, 10, 10
        opts.idle_timeout = 60
    end
else
    error("unknown workload " .. workload)
end

net.run(function()
    local ln = assert(net.listen("tcp", "127.0.0.1:" .. port, {backlog = 4096}))
    assert(net.server(opts):serve(ln))
end)

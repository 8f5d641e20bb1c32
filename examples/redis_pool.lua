#!/usr/bin/env lua5.4
--- examples/redis_pool.lua [ADDRESS]: a small RESP (redis) client over
-- net.bufio, shared by many tasks through net.pool. 20 tasks each SET and
-- GET their own keys against the server at ADDRESS (default
-- 127.0.0.1:6379) through at most 4 conns, then print the pool's stats.
-- `--selftest` starts its own redis-server on a free loopback port (stopped
-- by its PID), runs the same work and asserts every answer.
local net = require "coronet"

---------------------------------------------------------------------------
-- The client: a conn and its bufio reader. To the pool it is conn-like:
-- close(), fd() (for the health probe) and buffered() (bytes read ahead
-- but not consumed: such a client is never pooled).
---------------------------------------------------------------------------
local Client = {}
Client.__index = Client

local function dial(addr, ctx)
    local c, err = net.dial("tcp", addr, {timeout = 2}, ctx)
    if not c then return nil, err end
    return setmetatable({conn = c, rd = net.bufio.reader(c)}, Client)
end

function Client:fd() return self.conn:fd() end
function Client:close() return self.conn:close() end
function Client:buffered() return self.rd:buffered() end

-- read_reply: one RESP reply. Errors from the server are nil, "ERR ...".
function Client:read_reply()
    local line, err = self.rd:read_line()
    if not line then return nil, err end
    local kind, rest = line:sub(1, 1), line:sub(2)
    if kind == "+" then return rest end
    if kind == "-" then return nil, rest end
    if kind == ":" then return math.tointeger(tonumber(rest)) end
    if kind == "$" then
        local n = tonumber(rest)
        if n < 0 then return false end                    -- a nil bulk string
        local data, e = self.rd:read_full(n + 2)
        if not data then return nil, e end
        return data:sub(1, n)
    end
    if kind == "*" then
        local t = {}
        for i = 1, tonumber(rest) do
            local v, e = self:read_reply()
            if v == nil then return nil, e end
            t[i] = v
        end
        return t
    end
    return nil, "protocol error: " .. line
end

--- call(...) -> reply | nil, err: one command, sent as a RESP array of
-- bulk strings, and its reply.
function Client:call(...)
    local n = select("#", ...)
    local out = {"*" .. n .. "\r\n"}
    for i = 1, n do
        local s = tostring((select(i, ...)))
        out[#out + 1] = "$" .. #s .. "\r\n" .. s .. "\r\n"
    end
    local ok, err = self.conn:write(table.concat(out))
    if not ok then return nil, err end
    return self:read_reply()
end

---------------------------------------------------------------------------
-- Pooled use: get, call, put (with the error, if any: a failed conn is
-- closed instead of pooled).
---------------------------------------------------------------------------
local function call(pool, ...)
    local c, err = pool:get()
    if not c then return nil, err end
    local v, e = c:call(...)
    -- a redis error reply ("-ERR ...") leaves the conn fine; an I/O error doesn't
    pool:put(c, v == nil and type(e) ~= "string" and e or nil)
    return v, e
end

local function work(addr)
    local dials = 0
    local pool <close> = net.pool{
        dial = function(ctx) dials = dials + 1; return dial(addr, ctx) end,
        max_open = 4, max_idle = 4, idle_timeout = 30,
    }
    local wrong = 0
    local wg = net.wait_group()
    for t = 1, 20 do
        wg:add(1)
        net.go(function()
            for i = 1, 25 do
                local key = "example:" .. t .. ":" .. i
                assert(call(pool, "SET", key, t * i) == "OK")
                if call(pool, "GET", key) ~= tostring(t * i) then wrong = wrong + 1 end
            end
            wg:done()
        end)
    end
    wg:wait()
    local s = pool:stats()
    print(string.format("1000 commands, %d wrong; %d conns dialed; hits %d, misses %d, "
                        .. "evicted dead %d / dubious %d", wrong, dials, s.hits, s.misses,
                        s.evicted_dead, s.evicted_dubious))
    return wrong, dials, s
end

---------------------------------------------------------------------------
-- --selftest: our own redis-server, stopped by PID
---------------------------------------------------------------------------
local function start_redis()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local port = ln:addr().port
    ln:close()
    local pipe = assert(io.popen("unset LD_PRELOAD; echo $$; exec redis-server --save '' "
        .. "--appendonly no --bind 127.0.0.1 --port " .. port .. " --logfile '' 2>&1"))
    local pid = tonumber(pipe:read("l"))
    for line in pipe:lines() do
        if line:find("Ready to accept connections", 1, true) then
            return "127.0.0.1:" .. port, function()
                os.execute("kill " .. pid)
                pipe:close()                               -- reaps it
            end
        end
    end
    pipe:close()
    error("redis-server did not start (is it installed? apt-get install redis-server)")
end

if arg[1] == "--selftest" then
    local addr, stop
    for _ = 1, 5 do                                        -- the port may be taken meanwhile
        local ok, a, s = pcall(start_redis)
        if ok then addr, stop = a, s break end
    end
    assert(addr, "redis-server did not start")
    local ok, wrong, dials, s = pcall(net.run, work, addr)
    stop()
    assert(ok, wrong)
    assert(wrong == 0, "wrong answers")
    assert(dials >= 1 and dials <= 4, "dials " .. dials)
    assert(s.hits + s.misses == 1000 and s.misses == dials)
    print("selftest ok")
    return
end

net.run(work, arg[1] or "127.0.0.1:6379")

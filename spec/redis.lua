--- spec/redis.lua: a redis-server on a free 127.0.0.1 port for the pool
-- specs, started as a child process and stopped by its PID; plus a tiny
-- RESP client (enough for GET, SET, INFO).
--   local R = dofile("spec/redis.lua")
--   local srv = R.start()        -- raises with redis's log if it can't start
--   ... srv.addr ("127.0.0.1:PORT"), srv.port, srv.pid ...
--   srv:stop()                   -- kill PID, then reap it (no zombie)
--   srv = R.start(srv.port)      -- again on the same port (a restart)
-- A missing redis-server is an error, never a skip (`make check` installs
-- the Debian package, see tools/deps.sh).
local net = require "coronet"

local R = {}

R.BIN = "/usr/bin/redis-server"

local function free_port()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local port = ln:addr().port
    ln:close()
    return port
end

local Server = {}
Server.__index = Server

--- stop(): SIGTERM by PID and reap it (pclose waits); idempotent.
function Server:stop()
    if not self.pipe then return end
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pipe:close()
    self.pipe = nil
end

-- try(port) -> server | nil, log: one attempt; redis prints "Ready to
-- accept connections" once its listener is bound.
local function try(port)
    -- LD_PRELOAD (make asan's) must not reach redis; a watchdog kills it if
    -- this process dies without a stop (a timeout, a crash).
    local watchdog = "(while kill -0 $PPID 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 0.5; done;"
                     .. " kill $$ 2>/dev/null) </dev/null >/dev/null 2>&1 &"
    local cmd = "unset LD_PRELOAD; echo $$; " .. watchdog .. " exec " .. R.BIN
        .. " --save '' --appendonly no --bind 127.0.0.1 --port " .. port
        .. " --loglevel notice --logfile '' --daemonize no 2>&1"
    local pipe = assert(io.popen(cmd))
    local pid = tonumber(pipe:read("l"))
    local log = {}
    for line in pipe:lines() do
        log[#log + 1] = line
        if line:find("Ready to accept connections", 1, true) then
            return setmetatable({pid = pid, port = port, addr = "127.0.0.1:" .. port,
                                 pipe = pipe, log = log}, Server)
        end
    end
    pipe:close()
    return nil, table.concat(log, "\n")
end

--- start([port]) -> server: redis-server on 127.0.0.1 (a free port, or
-- `port`), ready when this returns. Retries a few times (a free port can
-- be taken between the check and redis's bind).
function R.start(port)
    local f = io.open(R.BIN)
    if not f then
        error("redis-server is not installed (Debian: apt-get install redis-server; `make check` does it)")
    end
    f:close()
    local log
    for _ = 1, 5 do
        local srv
        srv, log = try(port or free_port())
        if srv then return srv end
    end
    error("redis-server did not start:\n" .. tostring(log))
end

---------------------------------------------------------------------------
-- A minimal RESP client over a bufio reader
---------------------------------------------------------------------------

--- command(c, rd, ...) -> reply | nil, err: send one command (RESP array
-- of bulk strings) on conn c and read one reply through bufio reader rd.
-- Integers become numbers, nil bulk strings become false, errors
-- `nil, "ERR ..."` (a string).
function R.command(c, rd, ...)
    local args = table.pack(...)
    local out = {"*" .. args.n .. "\r\n"}
    for i = 1, args.n do
        local s = tostring(args[i])
        out[#out + 1] = "$" .. #s .. "\r\n" .. s .. "\r\n"
    end
    local ok, err = c:write(table.concat(out))
    if not ok then return nil, err end
    return R.reply(rd)
end

--- reply(rd) -> one RESP reply (see command).
function R.reply(rd)
    local line, err = rd:read_line()
    if not line then return nil, err end
    local kind, rest = line:sub(1, 1), line:sub(2)
    if kind == "+" then return rest end
    if kind == "-" then return nil, rest end
    if kind == ":" then return tonumber(rest) end
    if kind == "$" then
        local n = tonumber(rest)
        if n < 0 then return false end
        local data, e = rd:read_full(n + 2)
        if not data then return nil, e end
        return data:sub(1, n)
    end
    if kind == "*" then
        local t = {}
        for i = 1, tonumber(rest) do
            local v, e = R.reply(rd)
            if v == nil then return nil, e end
            t[i] = v
        end
        return t
    end
    return nil, "bad reply: " .. line
end

--- info_field(c, rd, section, name) -> the number `name` in INFO section.
function R.info_field(c, rd, section, name)
    local text = assert(R.command(c, rd, "INFO", section))
    return tonumber(text:match(name .. ":(%d+)"))
end

return R

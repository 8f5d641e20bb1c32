--- coronet.pool: a connection pool that never hands out a conn the peer
-- has already closed or reset (net.pool). `net.pool{...}` calls this
-- module's `new` (the module table has a `__call`).
--
-- Model: Go's database/sql pool (max_idle, max_open with waiters,
-- idle_timeout, max_lifetime) with Go Transport's and OpenResty's health
-- rule: before an idle conn is handed out, one non-blocking peek
-- (`recv(MSG_PEEK|MSG_DONTWAIT)`, csrc/probe.c) tells whether the peer
-- closed it (EOF), reset it (ECONNRESET) or sent bytes nobody asked for
-- ("dubious": a late reply, a server's goodbye); any of those retires it.
-- A conn-like object with a `probe()` method (TLS conns: SSL_peek) is asked
-- itself; any other is probed through `fd()`.
--
-- Idle conns are a stack: `get` takes the newest (most recently put) first,
-- as Go's Transport does. The newest is the one least likely to have been
-- closed by the server's own idle timeout, and under light load the same
-- few conns stay hot while the surplus ages at the bottom of the stack
-- until idle_timeout retires it, so the pool shrinks to what the load needs.
--
-- Idle and lifetime limits are enforced by a janitor task that exists only
-- while the pool holds idle conns (and one of the two limits is set): it
-- sleeps until the next expiry, closes what expired, and ends when no idle
-- conn is left (at its next wake-up) or at once when the pool is closed.
-- The janitor holds the pool, so an unclosed pool with idle conns lives
-- until they expire; close pools (`local p <close> = net.pool{...}`).
--
-- Every conn `get` hands out must come back through `put` (with an error
-- when the caller saw one): `max_open` counts it until then.
local sched = require "coronet.sched"
local errors = require "coronet.errors"
local core = require "coronet.core"
local context = require "coronet.context"

local now, cprobe = core.now, core.probe
local current, park_ctx, park, wake, block, go = sched.current, sched.park_ctx, sched.park,
    sched.wake, sched.block, sched.go
local KIND_SYNC, KIND_SLEEP = sched.KIND.sync, sched.KIND.sleep
local CANCELED = sched.WAKE.canceled
local ErrClosed = errors.ErrClosed
local type, error, pcall, setmetatable, tostring, huge = type, error, pcall, setmetatable,
    tostring, math.huge

local M = {}

local IDLE, OUT = 1, 2             -- values of pool._state[conn]

local Pool = {}
Pool.__index = Pool
Pool.__name = "coronet.pool"
M.Pool = Pool

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------
local function opt_num(opts, k, min, integer)
    local v = opts[k]
    if v == nil then return nil end
    if type(v) ~= "number" or v < min or (integer and v ~= math.floor(v)) then
        error("pool: option '" .. k .. "' must be " .. (integer and "an integer" or "a number")
              .. " >= " .. min .. " (got " .. tostring(v) .. ")", 4)
    end
    return v
end

local KNOWN = {dial = true, max_idle = true, max_open = true, idle_timeout = true,
               max_lifetime = true, health = true}

--- new: a pool (also `net.pool{...}`).
-- @tparam table opts `dial = fn(ctx) -> conn | nil, err` (required; any
--   conn-like object: it needs `close()` and `fd()` or `probe()`);
--   `max_idle` (idle conns kept, default 2, at most max_open);
--   `max_open` (conns open or being dialed, in use or idle; 0 or nil: no
--   limit); `idle_timeout` (seconds an idle conn is kept; nil: forever);
--   `max_lifetime` (seconds since its dial after which a conn is not
--   reused; nil: forever); `health = fn(conn, idle_seconds) -> ok` (an
--   extra check run by `get` after the probe passed; falsy retires the
--   conn, counted in evicted_dead). Unknown options and bad values raise.
-- @treturn pool
function M.new(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'pool' (table expected, got " .. type(opts) .. ")", 2)
    end
    for k in pairs(opts) do
        if not KNOWN[k] then error("pool: unknown option '" .. tostring(k) .. "'", 2) end
    end
    if type(opts.dial) ~= "function" then
        error("pool: option 'dial' must be a function (got " .. type(opts.dial) .. ")", 2)
    end
    if opts.health ~= nil and type(opts.health) ~= "function" then
        error("pool: option 'health' must be a function (got " .. type(opts.health) .. ")", 2)
    end
    local max_open = opt_num(opts, "max_open", 0, true) or 0
    local max_idle = opt_num(opts, "max_idle", 0, true) or 2
    if max_open > 0 and max_idle > max_open then max_idle = max_open end
    local idle_timeout = opt_num(opts, "idle_timeout", 0)
    local max_lifetime = opt_num(opts, "max_lifetime", 0)
    return setmetatable({
        _dial = opts.dial, _health = opts.health, _max_open = max_open, _max_idle = max_idle,
        _idle_timeout = idle_timeout, _max_lifetime = max_lifetime,
        _idle = {}, _since = {}, _nidle = 0,     -- stack of idle conns, [n] newest; put times
        _born = {}, _state = {},                -- conn -> dial time; conn -> IDLE | OUT
        _open = 0, _in_use = 0,                 -- _open includes dials in progress
        _wq = {}, _whead = 1, _wtail = 0,       -- FIFO of waiting gets
        _nwait = 0, _ndead = 0,                 -- live waiters; entries whose ctx ended
        _timed = (idle_timeout or max_lifetime) ~= nil,   -- a janitor is needed
        _closed = false, _janitor = nil, _jwake = huge,
        hits = 0, misses = 0, evicted_dead = 0, evicted_dubious = 0, evicted_idle = 0,
        evicted_lifetime = 0, dial_errors = 0,
    }, Pool)
end

setmetatable(M, {__call = function(_, opts) return M.new(opts) end})

---------------------------------------------------------------------------
-- Internals
---------------------------------------------------------------------------

-- probe(c) -> "ok" | "dubious" | "dead": the conn's own probe when it has
-- one (TLS), else the socket peek; bytes buffered above the socket (an
-- object with `buffered()`, such as a client holding a bufio reader) are
-- unread bytes too.
local function probe(c)
    local buffered = c.buffered
    if buffered and buffered(c) > 0 then return "dubious" end
    local p = c.probe
    if p then return (p(c)) end
    return (cprobe(c:fd()))
end

-- retire: close c and forget it (the caller accounts for its slot).
local function retire(self, c)
    self._born[c] = nil
    self._state[c] = nil
    pcall(c.close, c)
end

-- first waiter, unlinked (nil if none).
local function pop_waiter(self)
    local h = self._whead
    if h > self._wtail then
        self._whead, self._wtail = 1, 0      -- empty: start over at index 1
        return nil
    end
    local wq = self._wq
    local w = wq[h]
    wq[h] = nil
    self._whead = h + 1
    if not w.done then
        self._nwait = self._nwait - 1
        return w
    end
    self._ndead = self._ndead - 1
    return pop_waiter(self)                 -- a waiter whose ctx ended: skip it
end

-- compact: drop the entries of waiters whose ctx ended, so gets that time
-- out while every conn stays out cannot grow the queue without bound.
local function compact(self)
    local wq, j = self._wq, 0
    for i = self._whead, self._wtail do
        local w = wq[i]
        wq[i] = nil
        if not w.done then
            j = j + 1
            wq[j] = w
        end
    end
    self._whead, self._wtail, self._ndead = 1, j, 0
end

-- serve: complete waiter w with what it gets and wake its task.
local function serve(w, conn, slot)
    w.done, w.conn, w.slot = true, conn, slot
    wake(w.task)
end

-- free_slot: a conn (or a dial) gave up its place: hand the place to the
-- first waiter (which then dials), or shrink `open`.
local function free_slot(self)
    local w = not self._closed and pop_waiter(self)
    if w then
        serve(w, nil, true)
    else
        self._open = self._open - 1
    end
end

-- expired(self, c, since, t) -> the eviction counter's name, or nil.
local function expired(self, c, since, t)
    local life = self._max_lifetime
    if life and t - self._born[c] >= life then return "evicted_lifetime" end
    local it = self._idle_timeout
    if it and since and t - since >= it then return "evicted_idle" end
    return nil
end

-- expiry(self, c, since) -> when c must be retired (math.huge: never).
local function expiry(self, c, since)
    local e = huge
    local life, it = self._max_lifetime, self._idle_timeout
    if life then e = self._born[c] + life end
    if it and since + it < e then e = since + it end
    return e
end

-- janitor: the task that retires idle conns whose time is up.
local function janitor(self)
    while not self._closed and self._nidle > 0 do
        local t = now()
        local idle, since = self._idle, self._since
        local n, j, nxt = self._nidle, 0, huge
        for i = 1, n do                      -- compact in place, keeping the order
            local c, s = idle[i], since[i]
            local why = expired(self, c, s, t)
            if why then
                self[why] = self[why] + 1
                retire(self, c)
                free_slot(self)
            else
                j = j + 1
                idle[j], since[j] = c, s
                local e = expiry(self, c, s)
                if e < nxt then nxt = e end
            end
        end
        for i = j + 1, n do idle[i], since[i] = nil, nil end
        self._nidle = j
        if j == 0 then break end
        self._jwake = nxt
        park(nxt, KIND_SLEEP)
    end
    self._janitor, self._jwake = nil, huge
end

-- arm: make sure the janitor will see conn c (just put, at time since).
local function arm(self, c, since)
    local j = self._janitor
    if not j then
        self._jwake = expiry(self, c, since)
        self._janitor = go(janitor, self)
    elseif expiry(self, c, since) < self._jwake then
        wake(j)                              -- it sleeps past c's expiry: reschedule
    end
end

-- check(self, c, since, for_get) -> true if c may be handed out (for_get:
-- also run `health`) or pooled; otherwise it is retired, counted, and
-- false is returned (the caller owns c's slot).
local function check(self, c, since, for_get)
    local health = for_get and self._health
    local t, why = 0, nil
    if self._timed or health then t = now() end
    if self._timed then why = expired(self, c, since, t) end
    if not why then
        local st = probe(c)
        if st == "dubious" then
            why = "evicted_dubious"
        elseif st ~= "ok" then
            why = "evicted_dead"
        elseif not health then
            return true
        else
            local ok, good = pcall(health, c, since and t - since or 0)
            if not ok then                   -- a bug in health: lose no slot, raise it
                retire(self, c)
                free_slot(self)
                error(good, 0)
            end
            if good then return true end
            why = "evicted_dead"
        end
    end
    self[why] = self[why] + 1
    retire(self, c)
    return false
end

-- dial: dial into a slot already counted in `open`.
local function dial(self, ctx)
    local ok, c, err = pcall(self._dial, ctx or context.background())
    if not ok then
        free_slot(self)
        error(c, 0)
    end
    if not c then
        self.dial_errors = self.dial_errors + 1
        free_slot(self)
        return nil, err
    end
    if self._closed then
        pcall(c.close, c)
        self._open = self._open - 1
        return nil, ErrClosed
    end
    self._born[c] = now()
    self._state[c] = OUT
    self._in_use = self._in_use + 1
    return c
end

-- wait: park until a put hands us a conn or a slot, the pool closes, or
-- ctx ends. -> conn | "slot" | nil, err
local function wait(self, ctx)
    local me = current()
    local w = {task = me, done = false}
    local t = self._wtail + 1
    self._wtail = t
    self._wq[t] = w
    self._nwait = self._nwait + 1
    while true do
        local r = park_ctx(nil, KIND_SYNC, ctx)
        if w.done then break end
        if r == CANCELED and ctx and ctx:err() then
            w.done = true                    -- pop_waiter skips it
            self._nwait = self._nwait - 1
            local dead = self._ndead + 1
            self._ndead = dead
            if dead > 16 and dead > self._nwait then compact(self) end
            return nil, ctx:err()
        end
    end
    if w.closed then return nil, ErrClosed end
    if w.slot then return "slot" end
    return w.conn
end

---------------------------------------------------------------------------
-- Methods
---------------------------------------------------------------------------

--- pool:get: a healthy conn: the newest idle one that passes the probe
-- (and `health`), else a new one from `dial(ctx)`. When `max_open` conns
-- are open, wait (FIFO) for a `put` or for `ctx` to end.
-- @param[opt] ctx a net.context bounding the wait and passed to dial
--   (default: background, so the wait is unbounded)
-- @treturn[1] conn the caller's until it calls `put`
-- @treturn[2] nil
-- @treturn[2] error `ErrClosed` (pool closed, also for a waiting get),
--   `ctx:err()` (ErrDeadlineExceeded, ErrCanceled), or dial's error
function Pool:get(ctx)
    if self._closed then return nil, ErrClosed end
    local idle, since = self._idle, self._since
    while self._nidle > 0 do
        local n = self._nidle
        local c, s = idle[n], since[n]
        idle[n], since[n] = nil, nil
        self._nidle = n - 1
        if check(self, c, s, true) then
            if self._closed then                 -- closed while `health` ran
                retire(self, c)
                self._open = self._open - 1
                return nil, ErrClosed
            end
            self._state[c] = OUT
            self._in_use = self._in_use + 1
            self.hits = self.hits + 1
            return c
        end
        self._open = self._open - 1          -- nobody waits while conns are idle
    end
    local max = self._max_open
    if max == 0 or self._open < max then
        self._open = self._open + 1
        self.misses = self.misses + 1
        return dial(self, ctx)
    end
    if not current() then return block(Pool.get, self, ctx) end
    local c, err = wait(self, ctx)
    if c == "slot" then
        if self._closed then
            self._open = self._open - 1
            return nil, ErrClosed
        end
        self.misses = self.misses + 1
        return dial(self, ctx)
    end
    if not c then return nil, err end
    -- a conn handed over by put, in use already: check it again (the peer
    -- may have closed it since)
    self._in_use = self._in_use - 1
    if check(self, c, nil, true) then
        self._in_use = self._in_use + 1
        self.hits = self.hits + 1
        return c
    end
    if self._closed then
        self._open = self._open - 1
        return nil, ErrClosed
    end
    self.misses = self.misses + 1
    return dial(self, ctx)                   -- its slot is ours
end

--- pool:put: give back a conn `get` handed out. It is closed instead of
-- pooled when `err` is given (the caller saw a failure: the conn's state
-- is unknown), when it has unread bytes (the probe sees them, or the
-- object's `buffered()` is > 0: counted in evicted_dubious), when the
-- peer closed it (evicted_dead), when it is past max_lifetime, when the
-- pool is closed, or when max_idle conns are idle already. A waiting
-- `get` gets it first (FIFO). Raises when `conn` is not in use from this
-- pool (a second put, or a conn from elsewhere).
-- @param conn
-- @param[opt] err any value but nil or false: the conn must not be reused
-- @treturn boolean true
function Pool:put(conn, err)
    local state = self._state
    if conn == nil or state[conn] ~= OUT then
        error("pool: put of a conn that is not in use from this pool", 2)
    end
    self._in_use = self._in_use - 1
    if err or self._closed then
        retire(self, conn)
        free_slot(self)
        return true
    end
    if not check(self, conn, nil, false) then
        free_slot(self)
        return true
    end
    local w = pop_waiter(self)
    if w then
        self._in_use = self._in_use + 1      -- in use by the waiter from now
        serve(w, conn, false)
        return true
    end
    local n = self._nidle
    if n >= self._max_idle then
        retire(self, conn)
        self._open = self._open - 1
        return true
    end
    local t = (self._timed or self._health) and now() or 0
    n = n + 1
    self._idle[n], self._since[n] = conn, t
    self._nidle = n
    state[conn] = IDLE
    if self._timed then arm(self, conn, t) end
    return true
end

--- pool:close: close the idle conns, wake waiting gets with ErrClosed;
-- conns in use stay open until their `put`, which closes them. Later gets
-- return `nil, ErrClosed`.
-- @treturn[1] boolean true
-- @treturn[2] nil, ErrClosed if already closed
function Pool:close()
    if self._closed then return nil, ErrClosed end
    self._closed = true
    local idle, since = self._idle, self._since
    for i = self._nidle, 1, -1 do
        retire(self, idle[i])
        idle[i], since[i] = nil, nil
        self._open = self._open - 1
    end
    self._nidle = 0
    while true do
        local h = self._whead
        if h > self._wtail then break end
        local w = self._wq[h]
        self._wq[h] = nil
        self._whead = h + 1
        if not w.done then
            w.closed = true
            serve(w, nil, false)
        end
    end
    self._whead, self._wtail, self._nwait, self._ndead = 1, 0, 0, 0
    if self._janitor then wake(self._janitor) end
    return true
end

--- pool:stats: a snapshot. `open` (conns open or being dialed), `idle`,
-- `in_use`, `waiting` (gets parked for a conn), `hits` (gets served by a
-- pooled conn), `misses` (gets that dialed), `evicted_dead` (EOF, reset,
-- or health failed), `evicted_dubious` (unread bytes), `evicted_idle`,
-- `evicted_lifetime`, `dial_errors`, and `closed` (boolean).
-- @treturn table
function Pool:stats()
    return {
        open = self._open, idle = self._nidle, in_use = self._in_use, waiting = self._nwait,
        hits = self.hits, misses = self.misses, evicted_dead = self.evicted_dead,
        evicted_dubious = self.evicted_dubious, evicted_idle = self.evicted_idle,
        evicted_lifetime = self.evicted_lifetime, dial_errors = self.dial_errors,
        closed = self._closed,
    }
end

function Pool:__tostring()
    return "pool: " .. self._open .. " open, " .. self._nidle .. " idle"
        .. (self._closed and " (closed)" or "")
end

function Pool:__close() self:close() end
function Pool:__gc() pcall(Pool.close, self) end

return M

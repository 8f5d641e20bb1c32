--- coronet.sync: channels, select, wait groups, mutexes and semaphores for
-- coronet tasks (net.sync; the constructors are also on `net`).
-- Go's semantics: an unbuffered channel is a rendezvous, waiters are served
-- in FIFO order, a value is handed straight to a parked waiter (so a wake is
-- never lost or stolen), and misuse (send on or double close of a closed
-- channel, a negative WaitGroup counter, unlocking an unlocked mutex) raises
-- like Go panics. Every blocking call takes an optional ctx; it only matters
-- when the call would block, and its end makes the call return
-- `nil, ctx:err()` (recv: `nil, false, ctx:err()`). Outside a task, a call
-- that would block drives the loop until it completes (sched.block).
local sched = require "coronet.sched"

local current, park_ctx, wake, block = sched.current, sched.park_ctx, sched.wake, sched.block
local go, sleep, now = sched.go, sched.sleep, sched.now
local KIND_CHAN, KIND_SYNC, KIND_SELECT = sched.KIND.chan, sched.KIND.sync, sched.KIND.select
local CANCELED = sched.WAKE.canceled
local abandoned = sched.abandoned
local error, type, tostring, getmetatable, setmetatable = error, type, tostring, getmetatable,
    setmetatable
local tointeger, random, mininteger = math.tointeger, math.random, math.mininteger

local M = {}

---------------------------------------------------------------------------
-- Wait queues: doubly linked FIFOs of waiters, O(1) push and removal.
-- A waiter is {task, val, ok, done, closed, sel, idx, send, q, prev, next};
-- whoever serves it unlinks it, fills it in, sets `done` and wakes its task.
---------------------------------------------------------------------------
local function q_new() return {head = nil, tail = nil} end

local function q_push(q, w)
    local tail = q.tail
    w.q, w.prev = q, tail
    if tail then tail.next = w else q.head = w end
    q.tail = w
end

local function q_remove(q, w)
    local p, n = w.prev, w.next
    if p then p.next = n else q.head = n end
    if n then n.prev = p else q.tail = p end
    w.q, w.prev, w.next = nil, nil, nil
end

-- serve: complete waiter w (already unlinked). A select's other waiters are
-- unlinked at once, so no stale registration can take a later value.
local function serve(w)
    local sel = w.sel
    if sel then
        sel.fired = w
        local ws = sel.ws
        for i = 1, #ws do
            local o = ws[i]
            if o.q then q_remove(o.q, o) end
        end
    end
    w.done = true
    wake(w.task)
end

-- await: park the running task until w is served (true) or ctx ends
-- (false, with w unlinked). Other wakes are spurious: park again.
local function await(w, kind, ctx)
    while true do
        local r = park_ctx(nil, kind, ctx)
        if w.done then return true end
        if r == CANCELED and (ctx and ctx:err() or abandoned()) then
            if w.q then q_remove(w.q, w) end
            return false
        end
    end
end

local function check_count(n, what, fname, min)
    local i = tointeger(n)
    if not i or i < min then
        error("bad argument #1 to '" .. fname .. "' (" .. what .. " expected, got "
              .. (type(n) == "number" and tostring(n) or type(n)) .. ")", 3)
    end
    return i
end

---------------------------------------------------------------------------
-- Channels. The buffer is a ring of `size` slots indexed by `head` and a
-- count `n`, so nil values are kept. Invariants: a parked receiver implies
-- an empty buffer; a parked sender implies a full one.
---------------------------------------------------------------------------
local Chan = {}
Chan.__index = Chan
Chan.__name = "coronet.chan"

--- chan: a new channel.
-- @tparam[opt=0] integer cap buffer capacity; 0 is unbuffered (a rendezvous)
-- @treturn chan
function M.chan(cap)
    local size = cap == nil and 0 or check_count(cap, "non-negative integer", "chan", 0)
    return setmetatable({buf = {}, head = 1, n = 0, size = size, closed = false,
                         recvq = q_new(), sendq = q_new()}, Chan)
end

-- send_now: send v without blocking: true, false (would block) or "closed".
local function send_now(ch, v)
    if ch.closed then return "closed" end
    local q = ch.recvq
    local w = q.head
    if w then                       -- a parked receiver: hand v over
        q_remove(q, w)
        w.val, w.ok = v, true
        serve(w)
        return true
    end
    local n, size = ch.n, ch.size
    if n < size then
        ch.buf[(ch.head - 1 + n) % size + 1] = v
        ch.n = n + 1
        return true
    end
    return false
end

-- recv_now: receive without blocking: true, v; "closed"; or false.
local function recv_now(ch)
    local n = ch.n
    local q = ch.sendq
    if n > 0 then
        local buf, head, size = ch.buf, ch.head, ch.size
        local v = buf[head]
        buf[head] = nil
        ch.head = head % size + 1
        local w = q.head
        if w then                   -- the buffer was full: the freed slot is the new tail
            q_remove(q, w)
            buf[head] = w.val
            serve(w)
        else
            ch.n = n - 1
        end
        return true, v
    end
    local w = q.head
    if w then                       -- unbuffered: take straight from the sender
        q_remove(q, w)
        local v = w.val
        serve(w)
        return true, v
    end
    if ch.closed then return "closed" end
    return false
end

--- chan:send: send `v` (nil is a value like any other), blocking until a
-- receiver takes it (unbuffered) or there is room in the buffer.
-- Raises "send on closed channel" if the channel is closed, also when it
-- is closed while the sender is blocked.
-- @param v the value
-- @param[opt] ctx a net.context; only consulted when the send would block
-- @treturn[1] boolean true
-- @treturn[2] nil when ctx ended first (v was not sent)
-- @treturn[2] error ctx:err()
function Chan:send(v, ctx)
    local st = send_now(self, v)
    if st == true then return true end
    if st == "closed" then error("send on closed channel", 2) end
    local me = current()
    if not me then return block(Chan.send, self, v, ctx) end
    local w = {task = me, val = v}
    q_push(self.sendq, w)
    if not await(w, KIND_CHAN, ctx) then return nil, ctx and ctx:err() end
    if w.closed then error("send on closed channel", 2) end
    return true
end

--- chan:recv: receive a value, blocking until one is sent or the channel
-- is closed.
-- @param[opt] ctx a net.context; only consulted when the recv would block
-- @return[1] the value (may be nil)
-- @treturn[1] boolean true: a value was received
-- @return[2] nil
-- @treturn[2] boolean false: the channel is closed and drained
-- @return[3] nil
-- @treturn[3] boolean false
-- @treturn[3] error ctx:err(): ctx ended first
function Chan:recv(ctx)
    local st, v = recv_now(self)
    if st == true then return v, true end
    if st == "closed" then return nil, false end
    local me = current()
    if not me then return block(Chan.recv, self, ctx) end
    local w = {task = me}
    q_push(self.recvq, w)
    if not await(w, KIND_CHAN, ctx) then return nil, false, ctx and ctx:err() end
    return w.val, w.ok
end

--- chan:try_send: send `v` only if that needs no waiting.
-- Raises "send on closed channel" on a closed channel.
-- @treturn boolean whether v was sent
function Chan:try_send(v)
    local st = send_now(self, v)
    if st == "closed" then error("send on closed channel", 2) end
    return st
end

--- chan:try_recv: receive only if that needs no waiting.
-- @return[1] the value, true: received
-- @return[2] nil, false: the channel is closed and drained
-- @return[3] nil, nil: nothing to receive now
function Chan:try_recv()
    local st, v = recv_now(self)
    if st == true then return v, true end
    if st == "closed" then return nil, false end
    return nil, nil
end

--- chan:close: close the channel. Buffered values can still be received;
-- then recv returns `nil, false`. Parked receivers get `nil, false`;
-- parked senders raise "send on closed channel". Raises "close of closed
-- channel" if already closed.
function Chan:close()
    if self.closed then error("close of closed channel", 2) end
    self.closed = true
    local q = self.recvq
    local w = q.head
    while w do
        q_remove(q, w)
        w.val, w.ok = nil, false
        serve(w)
        w = q.head
    end
    q = self.sendq
    w = q.head
    while w do
        q_remove(q, w)
        w.closed = true
        serve(w)
        w = q.head
    end
end

local function iter_next(ch)
    local v, ok = ch:recv()
    if ok then return v end
    return nil
end

--- chan:iter: `for v in ch:iter() do ... end` receives until the channel is
-- closed and drained. Lua's generic for ends at a nil first value, so a
-- received nil ends the loop too: use `recv` on channels that carry nil.
function Chan:iter()
    return iter_next, self
end

--- chan:len: the number of buffered values (also `#ch`).
function Chan:len() return self.n end
Chan.__len = Chan.len

--- chan:cap: the buffer capacity (0: unbuffered).
function Chan:cap() return self.size end

--- chan:is_closed: whether close has been called.
function Chan:is_closed() return self.closed end

function Chan:__tostring()
    return "chan(" .. self.size .. ") len " .. self.n .. (self.closed and " (closed)" or "")
end

---------------------------------------------------------------------------
-- after
---------------------------------------------------------------------------
local function after_task(ch, s)
    sleep(s)
    if not ch.closed then send_now(ch, now()) end
end

--- after: a channel of capacity 1 that receives `net.now()` once, `s`
-- seconds from now (Go's time.After). A task sleeps until then.
-- @tparam number s seconds
-- @treturn chan
function M.after(s)
    if type(s) ~= "number" then
        error("bad argument #1 to 'after' (number expected, got " .. type(s) .. ")", 2)
    end
    local ch = M.chan(1)
    if s <= 0 then send_now(ch, now()) else go(after_task, ch, s) end
    return ch
end

---------------------------------------------------------------------------
-- select
---------------------------------------------------------------------------
local function case_error(i, why)
    error("bad argument #1 to 'select' (case " .. i .. ": " .. why .. ")", 4)
end

-- scan: validate the cases and pick one ready case uniformly at random.
-- @return chosen case index or nil, default's return index or nil
local function scan(cases)
    local chosen, nready, dflt = nil, 0, nil
    for i = 1, #cases do
        local c = cases[i]
        if type(c) ~= "table" then case_error(i, "table expected") end
        local ch, op = c[1], c[2]
        if ch == "default" then
            if dflt then case_error(i, "second default") end
            dflt = i
        else
            if ch and getmetatable(ch) ~= Chan then case_error(i, "channel expected") end
            local ready
            if op == "recv" then
                ready = ch and (ch.n > 0 or ch.sendq.head ~= nil or ch.closed)
            elseif op == "send" then
                ready = ch and (ch.closed or ch.recvq.head ~= nil or ch.n < ch.size)
            else
                case_error(i, "\"recv\" or \"send\" expected, got " .. tostring(op))
            end
            if ready then                       -- reservoir sampling: uniform, no allocation
                nready = nready + 1
                if nready == 1 or random(nready) == 1 then chosen = i end
            end
        end
    end
    if cases.default then
        if dflt then error("bad argument #1 to 'select' (second default)", 3) end
        dflt = 0
    end
    return chosen, dflt
end

-- finish: the chosen case i with its values: run its fn, return the results.
local function finish(c, i, op, v, ok)
    if op == "recv" then
        local fn = c[3]
        if fn then fn(v, ok) end
        return i, v, ok
    end
    local fn = c[4]
    if fn then fn() end
    return i
end

-- park_select: register on every case's channel, park, deregister.
local function park_select(cases, me, ctx)
    local ws = {}
    local sel = {ws = ws, fired = nil}
    for i = 1, #cases do
        local c = cases[i]
        local ch = c[1]
        if ch then
            local w
            if c[2] == "send" then
                w = {task = me, sel = sel, idx = i, send = true, val = c[3]}
                q_push(ch.sendq, w)
            else
                w = {task = me, sel = sel, idx = i}
                q_push(ch.recvq, w)
            end
            ws[#ws + 1] = w
        end
    end
    while true do
        local r = park_ctx(nil, KIND_SELECT, ctx)
        if sel.fired then break end
        if r == CANCELED and (ctx and ctx:err() or abandoned()) then
            for i = 1, #ws do
                local w = ws[i]
                if w.q then q_remove(w.q, w) end
            end
            return nil
        end
    end
    return sel.fired
end

--- select: wait until one of several channel operations can proceed, run
-- it and return which. A case is `{ch, "recv" [, fn]}` or
-- `{ch, "send", v [, fn]}`; a nil or false `ch` never proceeds (Go's nil
-- channel). When several are ready, one is chosen uniformly at random.
-- `fn`, when given, is called with the case's values (recv: `v, ok`;
-- send: none) and its results are ignored. A default makes select
-- non-blocking: either a `default = fn` field (select returns 0) or a case
-- `{"default" [, fn]}` (select returns its index); fn may be omitted.
-- Raises "send on closed channel" if the chosen send case's channel is
-- closed.
-- @tparam table cases
-- @param[opt] ctx a net.context: its end makes select return `nil, ctx:err()`
-- @treturn[1] integer the chosen case index; for recv followed by `v, ok`
-- @treturn[2] nil when ctx ended first
-- @treturn[2] error ctx:err()
function M.select(cases, ctx)
    if type(cases) ~= "table" then
        error("bad argument #1 to 'select' (table expected, got " .. type(cases) .. ")", 2)
    end
    local i, dflt = scan(cases)
    if i then
        local c = cases[i]
        local ch, op = c[1], c[2]
        if op == "recv" then
            local st, v = recv_now(ch)
            return finish(c, i, op, v, st == true)
        end
        if send_now(ch, c[3]) == "closed" then error("send on closed channel", 2) end
        return finish(c, i, op)
    end
    if dflt then
        local fn = dflt == 0 and cases.default or cases[dflt][2]
        if type(fn) == "function" then fn() end
        return dflt
    end
    local me = current()
    if not me then return block(M.select, cases, ctx) end
    local w = park_select(cases, me, ctx)
    if not w then return nil, ctx:err() end
    local c = cases[w.idx]
    if w.send then
        if w.closed then error("send on closed channel", 2) end
        return finish(c, w.idx, "send")
    end
    return finish(c, w.idx, "recv", w.val, w.ok)
end

---------------------------------------------------------------------------
-- WaitGroup
---------------------------------------------------------------------------
local WaitGroup = {}
WaitGroup.__index = WaitGroup
WaitGroup.__name = "coronet.wait_group"

--- wait_group: a new WaitGroup (counter 0).
function M.wait_group()
    return setmetatable({n = 0, q = q_new()}, WaitGroup)
end

local function wg_add(wg, n)
    local c = wg.n + n
    if c < 0 then error("sync: negative WaitGroup counter", 3) end
    wg.n = c
    if c == 0 then
        local q = wg.q
        local w = q.head
        while w do
            q_remove(q, w)
            serve(w)
            w = q.head
        end
    end
end

--- wait_group:add: add `n` (default 1; may be negative) to the counter;
-- at 0, every waiter is released. Raises "sync: negative WaitGroup
-- counter" if it would go below 0.
function WaitGroup:add(n)
    wg_add(self, n == nil and 1 or check_count(n, "integer", "add", mininteger))
end

--- wait_group:done: add(-1).
function WaitGroup:done()
    wg_add(self, -1)
end

--- wait_group:wait: block until the counter is 0.
-- @param[opt] ctx a net.context
-- @treturn[1] boolean true
-- @treturn[2] nil when ctx ended first
-- @treturn[2] error ctx:err()
function WaitGroup:wait(ctx)
    if self.n == 0 then return true end
    local me = current()
    if not me then return block(WaitGroup.wait, self, ctx) end
    local w = {task = me}
    q_push(self.q, w)
    if not await(w, KIND_SYNC, ctx) then return nil, ctx and ctx:err() end
    return true
end

--- wait_group:count: the current counter.
function WaitGroup:count() return self.n end

function WaitGroup:__tostring() return "wait_group(" .. self.n .. ")" end

---------------------------------------------------------------------------
-- Mutex and semaphore: one permit pool with FIFO handoff. `avail` permits
-- are free; release hands a permit straight to the first waiter, so a
-- newcomer cannot barge ahead of parked tasks (avail > 0 implies nobody
-- waits).
---------------------------------------------------------------------------
local function acquire(p, ctx, fn)
    if p.avail > 0 then
        p.avail = p.avail - 1
        return true
    end
    local me = current()
    if not me then return block(fn, p, ctx) end
    local w = {task = me}
    q_push(p.q, w)
    if not await(w, KIND_SYNC, ctx) then return nil, ctx and ctx:err() end
    return true
end

local function try_acquire(p)
    if p.avail > 0 then
        p.avail = p.avail - 1
        return true
    end
    return false
end

-- release: false if every permit is already free (misuse).
local function release(p)
    local q = p.q
    local w = q.head
    if w then
        q_remove(q, w)
        serve(w)
        return true
    end
    if p.avail >= p.size then return false end
    p.avail = p.avail + 1
    return true
end

local Mutex = {}
Mutex.__index = Mutex
Mutex.__name = "coronet.mutex"

--- mutex: a new, unlocked mutex. Not tied to a task: any task may unlock.
function M.mutex()
    return setmetatable({avail = 1, size = 1, q = q_new()}, Mutex)
end

--- mutex:lock: block until the mutex is ours; waiters get it in FIFO order.
-- @param[opt] ctx a net.context
-- @treturn[1] boolean true
-- @treturn[2] nil when ctx ended first (not locked)
-- @treturn[2] error ctx:err()
function Mutex:lock(ctx) return acquire(self, ctx, Mutex.lock) end

--- mutex:try_lock: lock if free.
-- @treturn boolean whether it is now ours
function Mutex:try_lock() return try_acquire(self) end

--- mutex:unlock: unlock, handing the mutex to the first waiter.
-- Raises "sync: unlock of unlocked mutex".
function Mutex:unlock()
    if not release(self) then error("sync: unlock of unlocked mutex", 2) end
end

--- mutex:is_locked: whether the mutex is held.
function Mutex:is_locked() return self.avail == 0 end

function Mutex:__tostring()
    return "mutex (" .. (self.avail == 0 and "locked" or "unlocked") .. ")"
end

local Semaphore = {}
Semaphore.__index = Semaphore
Semaphore.__name = "coronet.semaphore"

--- semaphore: a counting semaphore with `n` permits (n >= 1).
function M.semaphore(n)
    local size = check_count(n, "positive integer", "semaphore", 1)
    return setmetatable({avail = size, size = size, q = q_new()}, Semaphore)
end

--- semaphore:acquire: block until a permit is ours (FIFO).
-- @param[opt] ctx a net.context
-- @treturn[1] boolean true
-- @treturn[2] nil when ctx ended first (no permit taken)
-- @treturn[2] error ctx:err()
function Semaphore:acquire(ctx) return acquire(self, ctx, Semaphore.acquire) end

--- semaphore:try_acquire: take a permit if one is free.
-- @treturn boolean
function Semaphore:try_acquire() return try_acquire(self) end

--- semaphore:release: give a permit back (to the first waiter, if any).
-- Raises "semaphore: released more than held".
function Semaphore:release()
    if not release(self) then error("semaphore: released more than held", 2) end
end

--- semaphore:available: the number of free permits.
function Semaphore:available() return self.avail end

function Semaphore:__tostring()
    return "semaphore(" .. self.size .. ") available " .. self.avail
end

return M

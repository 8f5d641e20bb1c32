--- coronet.context: cancellation trees, like Go's context package.
-- A ctx ends when it is cancelled, when its deadline passes, or when its
-- parent ends. Every blocking call takes an optional trailing ctx; a task
-- parked under a ctx is registered in it, so a cancel wakes exactly the
-- tasks waiting under it and its descendants: O(descendants + waiters).
-- Deadlines cost no timer: a wait under a ctx parks with the earlier of
-- its own deadline and the ctx's, and `err()` notices a passed deadline.
-- Only `ctx:done()` on a ctx with a deadline starts one small timer task
-- (until the deadline or the cancel), so that the channel closes on time.
local core = require "coronet.core"
local errors = require "coronet.errors"
local sched = require "coronet.sched"

local now, cwake = core.now, core.wake
local WAKE = sched.WAKE
local next, type, tostring, setmetatable, getmetatable, error =
    next, type, tostring, setmetatable, getmetatable, error

local M = {}

--- Go's context.Canceled / context.DeadlineExceeded: what ctx:err() returns.
M.Canceled, M.DeadlineExceeded = errors.ErrCanceled, errors.ErrDeadlineExceeded

local Ctx = {}
Ctx.__index = Ctx
Ctx.__name = "coronet.context"
M.Context = Ctx

-- Fields: _parent, _deadline (absolute, inherited), _err (set once, when it
-- ends), _waiters (task -> true: parked under this ctx), _children (weak
-- set of live descendants one level down; nil once ended), _done (the done
-- channel, made on demand), _timer (the done channel's timer task), and
-- _key/_value/_has_value for with_value.
local WEAK_KEYS = {__mode = "k"}             -- shared by every _children set

local function new(parent)
    return setmetatable({_parent = parent, _deadline = parent and parent._deadline,
                         _waiters = {}, _children = setmetatable({}, WEAK_KEYS)}, Ctx)
end

local background = new(nil)
background._background = true

-- End c and its descendants with err; wake everything waiting under them.
-- Iterative (an explicit stack), so a deep chain of ctxs cannot overflow
-- the Lua stack half way through a cancel.
local function cancel(c, err)
    if c._err then return end
    local p = c._parent
    if p and p._children then p._children[c] = nil end
    local stack, n = {c}, 1
    while n > 0 do
        local x = stack[n]
        stack[n] = nil
        n = n - 1
        if not x._err then
            x._err = err
            local ws = x._waiters
            for t in next, ws do
                ws[t] = nil
                cwake(t, WAKE.canceled)
            end
            local done = x._done
            if done and not done:is_closed() then done:close() end
            if x._timer then sched.wake(x._timer, WAKE.canceled) end
            local children = x._children
            x._children = nil
            for child in next, children do
                n = n + 1
                stack[n] = child
            end
        end
    end
end

local function attach(parent, c)
    if parent._err then
        c._err = parent._err
        c._children = nil
    elseif not parent._background then
        parent._children[c] = true
    end
end

local function check_parent(parent, fname)
    if getmetatable(parent) ~= Ctx then
        error("bad argument #1 to '" .. fname .. "' (context expected, got "
              .. (getmetatable(parent) and getmetatable(parent).__name or type(parent)) .. ")", 3)
    end
end

local function check_number(v, i, fname)
    if type(v) ~= "number" or v ~= v then
        error("bad argument #" .. i .. " to '" .. fname .. "' (number expected, got "
              .. type(v) .. ")", 3)
    end
end

--- background() -> ctx: the root; never ends, has no deadline or values.
function M.background() return background end

--- todo() -> ctx: background(), for code that has no ctx to pass yet (Go's TODO).
M.todo = M.background

local function canceler(c)
    return function() cancel(c, errors.ErrCanceled) end
end

--- with_cancel(parent) -> ctx, cancel: cancel() ends ctx and its
-- descendants with ErrCanceled; idempotent. Call it once the work is done
-- (it releases the ctx's place in its parent).
function M.with_cancel(parent)
    check_parent(parent, "with_cancel")
    local c = new(parent)
    attach(parent, c)
    return c, canceler(c)
end

--- with_deadline(parent, t) -> ctx, cancel: also ends, with
-- ErrDeadlineExceeded, at the absolute time t (net.now() clock); never
-- later than the parent's deadline. A t already past ends it at once.
function M.with_deadline(parent, t)
    check_parent(parent, "with_deadline")
    check_number(t, 2, "with_deadline")
    local c = new(parent)
    if not c._deadline or t < c._deadline then c._deadline = t end
    attach(parent, c)
    c:err()                                   -- a deadline already past ends it now
    return c, canceler(c)
end

--- with_timeout(parent, s) -> ctx, cancel: with_deadline(parent, now() + s).
function M.with_timeout(parent, s)
    check_parent(parent, "with_timeout")
    check_number(s, 2, "with_timeout")
    return M.with_deadline(parent, now() + s)
end

--- with_value(parent, key, value) -> ctx: carries key = value for
-- ctx:value; ends when its parent ends. key must not be nil.
function M.with_value(parent, key, value)
    check_parent(parent, "with_value")
    if key == nil then error("bad argument #2 to 'with_value' (key must not be nil)", 2) end
    local c = new(parent)
    c._key, c._value, c._has_value = key, value, true
    attach(parent, c)
    return c
end

--- ctx:err() -> nil while live, else ErrCanceled or ErrDeadlineExceeded
-- (the first reason it ended; it never changes afterwards).
function Ctx:err()
    local e = self._err
    if e then return e end
    local d = self._deadline
    if d and now() >= d then
        -- the deadline may be inherited: end the ancestor that owns it first
        local owner = self
        while owner._parent and owner._parent._deadline == d and not owner._parent._err do
            owner = owner._parent
        end
        cancel(owner, errors.ErrDeadlineExceeded)
        if not self._err then cancel(self, errors.ErrDeadlineExceeded) end
        return self._err
    end
    return nil
end

--- ctx:deadline() -> t | nil: the absolute deadline, if any.
function Ctx:deadline() return self._deadline end

--- ctx:value(key) -> the value of the nearest ancestor carrying key.
function Ctx:value(key)
    local c = self
    while c do
        if c._has_value and c._key == key then return c._value end
        c = c._parent
    end
    return nil
end

--- ctx:done() -> chan: closed when the ctx ends (select on it with
-- {ctx:done(), "recv"}). A ctx with a deadline then runs one small timer
-- task until the deadline or the cancel.
function Ctx:done()
    local d = self._done
    if d then return d end
    d = require("coronet.sync").chan(0)
    self._done = d
    if self:err() then
        d:close()
    elseif self._deadline then
        self._timer = sched.go(function()
            while not self._err do
                if sched.park(self._deadline, sched.KIND.sleep) == WAKE.canceled then break end
                self:err()
            end
            self._timer = nil
        end)
    end
    return d
end

function Ctx:__tostring()
    if self._background then return "context.background" end
    return "context" .. (self._err and " (" .. tostring(self._err) .. ")" or "")
        .. (self._deadline and string.format(" deadline %.3f", self._deadline) or "")
end

--- is_context(v): whether v is a ctx.
function M.is_context(v) return getmetatable(v) == Ctx end

-- The protocol blocking calls use (C through core.ctx_init, Lua through
-- sched.park_ctx): enter registers the running task and returns the
-- ctx's deadline (0: none); leave unregisters it.
-- A ctx that has already ended registers nothing and answers with a
-- deadline long past, so the park times out at once and the call fails
-- with ctx:err(): a C call that parks again after a wake (read_full with
-- part of its data, a partial write) must not sleep in an ended ctx that
-- will never wake it.
local ENDED = 1e-9

local function enter(c)
    if c._err then return ENDED end
    local t = sched.current()
    if t and not c._background then c._waiters[t] = true end
    return c._deadline or 0
end

local function leave(c)
    local t = sched.current()
    if t then c._waiters[t] = nil end
    return true
end

local function err(c) return c:err() end

core.ctx_init(Ctx, {enter, leave, err})
sched.set_context(M, enter, leave)

return M

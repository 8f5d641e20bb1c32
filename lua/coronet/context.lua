--- coronet.context: cancellation trees, like Go's context package.
-- A ctx ends when it is cancelled, when its deadline passes, or when its
-- parent ends. Every blocking call takes an optional trailing ctx; a task
-- parked under a ctx is registered in it, so a cancel wakes exactly the
-- tasks waiting under it and its descendants: O(descendants + waiters).
-- Deadlines cost no timer: a wait under a ctx parks with the earlier of
-- its own deadline and the ctx's, and `err()` notices a passed deadline.
local core = require "coronet.core"
local errors = require "coronet.errors"
local sched = require "coronet.sched"

local now, cwake = core.now, core.wake
local WAKE = sched.WAKE
local pairs, setmetatable, getmetatable = pairs, setmetatable, getmetatable

local M = {}

local Ctx = {}
Ctx.__index = Ctx
Ctx.__name = "coronet.context"
M.Context = Ctx

local function new(parent)
    local c = setmetatable({_parent = parent, _deadline = parent and parent._deadline,
                            _waiters = {}, _children = setmetatable({}, {__mode = "k"})}, Ctx)
    return c
end

local background = new(nil)
background._background = true

-- End c and its descendants with err; wake everything waiting under them.
local function cancel(c, err)
    if c._err then return end
    c._err = err
    for t in pairs(c._waiters) do
        c._waiters[t] = nil
        cwake(t.w, WAKE.canceled)
    end
    local done = c._done
    if done then done:close() end
    if c._timer then sched.wake(c._timer, WAKE.canceled) end
    for child in pairs(c._children) do cancel(child, err) end
    c._children = {}
    local p = c._parent
    if p then p._children[c] = nil end
end

local function attach(parent, c)
    if parent._err then
        c._err = parent._err
    elseif not parent._background then
        parent._children[c] = true
    end
end

--- background() -> ctx: the root; never ends, has no deadline or values.
function M.background() return background end

--- with_cancel(parent) -> ctx, cancel: cancel() ends ctx and its children
-- with ErrCanceled; idempotent.
function M.with_cancel(parent)
    local c = new(parent)
    attach(parent, c)
    return c, function() cancel(c, errors.ErrCanceled) end
end

--- with_deadline(parent, t) -> ctx, cancel: also ends at the absolute
-- time t (never later than the parent's deadline).
function M.with_deadline(parent, t)
    local c = new(parent)
    if not c._deadline or t < c._deadline then c._deadline = t end
    attach(parent, c)
    c:err()                                   -- a deadline already past ends it now
    return c, function() cancel(c, errors.ErrCanceled) end
end

--- with_timeout(parent, s) -> ctx, cancel: with_deadline(parent, now() + s).
function M.with_timeout(parent, s)
    return M.with_deadline(parent, now() + s)
end

--- with_value(parent, key, value) -> ctx: carries key = value for ctx:value.
function M.with_value(parent, key, value)
    local c = new(parent)
    c._key, c._value, c._has_value = key, value, true
    attach(parent, c)
    return c
end

--- ctx:err() -> nil while live, else ErrCanceled or ErrDeadlineExceeded.
function Ctx:err()
    local e = self._err
    if e then return e end
    local d = self._deadline
    if d and now() >= d then
        -- the deadline may be inherited: end the ancestor that owns it first
        local owner = self
        while owner._parent and owner._parent._deadline == d do owner = owner._parent end
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
local function enter(c)
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

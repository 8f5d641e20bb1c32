--- coronet.sched: the task scheduler.
-- Tasks are coroutines. A blocking call parks its task in C (on a conn's
-- handle, or with `core.park` for Lua-side waits) and yields; the loop turn
-- (`core.poll`) wakes the tasks whose wait ended and `core.run_ready`
-- resumes them (csrc/task.c: a task is one userdata, its methods are
-- here). A blocking call made outside any task drives the loop itself
-- until that call completes (the REPL contract in API.md).
local core = require "coronet.core"

local costatus, coclose = coroutine.status, coroutine.close
local pack, unpack, select = table.pack, table.unpack, select
local traceback, getinfo = debug.traceback, debug.getinfo
local poll, run_ready, spawn, current, cwake, cpark = core.poll, core.run_ready, core.spawn,
    core.current, core.wake, core.park
local now = core.now
local KIND = core.park_kinds
local WAKE = core.wake_reasons
local CANCELED = WAKE.canceled

local M = {KIND = KIND, WAKE = WAKE}

-- keep_going: when true (the REPL sets it), an error in a task nobody
-- waits for is only written to stderr, not re-raised from the driver.
M.keep_going = false

local unobserved = nil                        -- first error nobody waited for
local running = false                         -- a driver is running the loop

---------------------------------------------------------------------------
-- Tasks
---------------------------------------------------------------------------
-- A task is a userdata (csrc/task.c). C keeps id, co (its coroutine,
-- nil once it ended), started, done, ok, observed, abandoned and canceled;
-- any other field (results, err, traceback, waiters, ctx...) goes to a
-- table made on first use. Task holds its methods.
local Task = {}

-- finish(t, ok, ...): C tells of a task that ended: ok and its results,
-- or not ok, the error and (when it raised) its dead coroutine, whose
-- traceback is kept and whose pending to-be-closed variables are closed
-- (as the pcall of a task body did).
local function finish(t, ok, ...)
    if ok then
        if select("#", ...) > 0 then t.results = pack(...) end
    else
        local err, co = ...
        t.err = err
        if co then
            t.traceback = traceback(co, tostring(err))
            coclose(co)
        end
    end
    local waiters = t.waiters
    if waiters then
        t.waiters = nil
        for w in pairs(waiters) do cwake(w, WAKE.ready) end
    elseif not ok and not t.observed then
        io.stderr:write("coronet: task ", t.id, " failed: ", t.traceback or tostring(t.err), "\n")
        if not M.keep_going then unobserved = unobserved or t.err end
    end
end

--- go: start `fn(...)` as a new task; it first runs on the next loop turn.
-- It is C's spawn itself (csrc/task.c), so starting a task runs no Lua.
-- @tparam function fn a function or callable value (else an error that
-- names the caller of go)
-- @treturn task a handle with `:wait()`
M.go = spawn

--- set_trace_creation(fn): from now on `go` sets each new task's
-- `created` field to `fn(3)`, fn's view of where go was called; an
-- error in fn is go's error, and no task starts. net.debug.mark() turns
-- it on (replacing any fn set before).
-- @tparam ?function fn the creation-site function, nil to stop
M.set_trace_creation = core.set_trace_creation

--- current: the running task, or nil outside tasks.
M.current = current

--- park: park the running task until `wake` or the absolute `deadline`
-- (nil: none); `kind` (a KIND code) is what debug.stats() counts it as.
-- @treturn integer a WAKE code: why it woke
M.park = cpark

-- Set by coronet.context when it loads (it requires this module).
local ctx_enter, ctx_leave

--- set_context(mod, enter, leave): coronet.context registers itself (its
-- module and the functions a park under a ctx calls); not for users.
function M.set_context(mod, enter, leave)
    M.context = mod
    ctx_enter, ctx_leave = enter, leave
end

--- park_ctx: park like `park`, also woken with WAKE.canceled when `ctx`
-- (optional, a net.context) ends, and bounded by its deadline. A ctx
-- already ended returns at once. The caller turns WAKE.canceled into
-- `nil, ctx:err()`.
function M.park_ctx(deadline, kind, ctx)
    if ctx == nil then return cpark(deadline, kind) end
    if ctx:err() then return WAKE.canceled end
    local cd = ctx_enter(ctx)
    if cd > 0 and (not deadline or deadline <= 0 or cd < deadline) then deadline = cd end
    local r = cpark(deadline, kind)
    ctx_leave(ctx)
    if r ~= WAKE.ready and ctx:err() then r = WAKE.canceled end
    return r
end

local ErrCanceled

--- cancel_err: after a park that returned `r`, the error that ends the
-- wait: `ctx:err()` when ctx ended, net.ErrCanceled when the running task
-- was canceled (task:cancel()), nil when the wake was not a cancel.
function M.cancel_err(r, ctx)
    if r ~= WAKE.canceled then return nil end
    local e = ctx and ctx:err()
    if e then return e end
    local t = current()
    if t and (t.canceled or t.abandoned) then       -- task:cancel(), or its driver unwound
        ErrCanceled = ErrCanceled or require("coronet.errors").ErrCanceled
        return ErrCanceled
    end
    return nil
end

--- wake: wake a parked task with `reason` (a WAKE code, default ready).
-- @treturn boolean whether it was parked
function M.wake(t, reason)
    return cwake(t, reason or WAKE.ready)
end

---------------------------------------------------------------------------
-- Driving the loop
---------------------------------------------------------------------------
local function drive(t)
    running = true
    core.set_running(true)
    local ok, err = pcall(function()
        local done = t.done
        while not done do
            if poll(true) then
                error("coronet: deadlock: every task is blocked and nothing can wake one", 0)
            end
            done = run_ready(t)
            if unobserved then
                local e = unobserved
                unobserved = nil
                error(e, 0)
            end
        end
    end)
    running = false
    core.set_running(false)
    if not ok then error(err, 0) end
end

-- abandon(t): the driver of t (a task made for a top-level call) unwound
-- with an error (Ctrl-C's "interrupted!", a failed task nobody waits
-- for): nobody will take t's results, so t must stop waiting instead of
-- holding a handle slot ("busy") and later taking data meant for the next
-- call. t is woken with WAKE.canceled and the loop turns (without
-- waiting, at most 100 times) until t has ended: C calls fail with
-- ErrCanceled and release their slot; Lua-level waits (channels, select,
-- sleep, wait) give up and unlink when M.abandoned() says so. A t that
-- never ran does not run its function. Other ready tasks run in those
-- turns too, as in any loop turn.
local function abandon(t)
    if t.done then return end
    t.abandoned = true
    core.cancel(t)                            -- its later C waits fail at once too
    running = true
    core.set_running(true)
    pcall(function()
        run_ready()                           -- the rest of a batch an error cut short
        for _ = 1, 100 do                     -- a few turns, never waiting
            if t.done then break end
            cwake(t, WAKE.canceled)
            poll(false)
            run_ready()
        end
    end)
    running = false
    core.set_running(false)
end

--- abandoned: whether the running task was abandoned by its driver
-- (see abandon); a Lua-level wait woken with WAKE.canceled and no ctx
-- then gives up.
function M.abandoned()
    local t = current()
    return t ~= nil and t.abandoned == true
end

local function drive_or_abandon(t)
    local ok, err = pcall(drive, t)
    if not ok then
        abandon(t)
        error(err, 0)
    end
end

local function results(t)
    if not t.ok then return nil, t.err end
    local r = t.results
    if r then return unpack(r, 1, r.n) end
end

--- run: run `fn(...)` as a task and drive the loop until it returns.
-- Other tasks go on meanwhile and stay parked afterwards. An error in `fn`
-- (or in any task nobody waits for) is raised here. Inside a task, it
-- simply calls `fn(...)`.
function M.run(fn, ...)
    if M.current() then return fn(...) end
    if running then error("coronet: net.run inside a running loop", 2) end
    local t = M.go(fn, ...)
    t.observed = true
    drive(t)         -- an error leaves fn's task running: it is a program, not one call
    if not t.ok then error(t.traceback or t.err, 0) end
    return results(t)
end

--- block: the blocking call `fn(...)` made outside a task: run it as a
-- task, drive the loop until it completes, return its results.
function M.block(fn, ...)
    if running then
        error("coronet: blocking call in a coroutine that is not a coronet task "
              .. "while the loop runs (start it with net.go)", 3)
    end
    local t = M.go(fn, ...)
    t.observed = true
    drive_or_abandon(t)
    if not t.ok then error(t.err, 0) end
    return results(t)
end
core.set_block(M.block)

---------------------------------------------------------------------------
-- Task methods and helpers
---------------------------------------------------------------------------

--- task:wait([ctx]): block until the task ends (or ctx ends).
-- @treturn[1] any the task's results
-- @treturn[2] nil
-- @treturn[2] any the error it raised, or ctx:err()
function Task:wait(ctx)
    local me = current()
    if not me then return M.block(Task.wait, self, ctx) end
    self.observed = true
    while not self.done do
        local w = self.waiters              -- a set: a cancel leaves in O(1)
        if not w then w = {}; self.waiters = w end
        w[me] = true
        local r = M.park_ctx(nil, KIND.task, ctx)
        local e = r == CANCELED and M.cancel_err(r, ctx)
        if e then
            w[me] = nil
            return nil, e
        end
    end
    return results(self)
end

function Task:__tostring()
    return "task " .. self.id .. (self.done and " (done)" or "")
end

--- is_done: whether the task has ended.
function Task:is_done() return self.done == true end

--- task:cancel(): stop the task the Go way: its current blocking call and
-- every later one that would block return `nil, net.ErrCanceled` (through
-- `task:context()`, a ctx the task owns, which ends too). The task decides
-- how to finish; a call that completes without waiting still completes,
-- and a loop that never blocks is not stopped. Idempotent; a no-op on a
-- task that has ended.
function Task:cancel()
    if self.done or self.canceled then return end
    self.canceled = true
    if self.cancel_ctx then self.cancel_ctx() end
    core.cancel(self)
end

--- task:context() -> ctx: the ctx this task owns, ended by task:cancel()
-- (with ErrCanceled); pass it to work the task starts so a cancel reaches it.
function Task:context()
    local c = self.ctx
    if not c then
        local context = M.context or require("coronet.context")
        c, self.cancel_ctx = context.with_cancel(context.background())
        self.ctx = c
        if self.canceled then self.cancel_ctx() end
    end
    return c
end

--- task:is_canceled(): whether task:cancel() was called.
function Task:is_canceled() return self.canceled == true end

--- sleep(s [, ctx]): suspend the running task for `s` seconds (0 just
-- yields). Returns true, or nil, ctx:err() when ctx ends first.
function M.sleep(s, ctx)
    local t = current()
    if not t then return M.block(M.sleep, s, ctx) end
    s = tonumber(s) or error("bad argument #1 to 'sleep' (number expected)", 2)
    if ctx and ctx:err() then return nil, ctx:err() end
    if s <= 0 then M.yield() return true end
    local deadline = now() + s
    while true do
        local r = M.park_ctx(deadline, KIND.sleep, ctx)
        if r == CANCELED then
            local e = M.cancel_err(r, ctx)
            if e then return nil, e end
        end
        if now() >= deadline then return true end
    end
end

--- yield: let every other ready task run first.
function M.yield()
    if not current() then return M.block(M.yield) end
    core.yield()
end

---------------------------------------------------------------------------
-- Diagnostics
---------------------------------------------------------------------------

--- stats: {tasks, blocked = {read, write, ...}, timers, fds, ready}.
M.stats = core.stats

-- The directory of coronet's own Lua modules: frames there are skipped
-- when telling where a task is.
local moddir = (getinfo(1, "S").source:match("^@(.*[/\\])[^/\\]*$"))

-- where: the innermost frame of co that is the user's code (not C, not a
-- coronet module): "file:line".
local function where(co, fn)
    local first
    for level = 0, 200 do
        local info = getinfo(co, level, "Sl")
        if not info then break end
        if info.what ~= "C" and info.currentline and info.currentline > 0 then
            local src = info.source
            local ours = moddir and src:sub(1, 1) == "@" and src:sub(2, #moddir + 1) == moddir
            local here = info.short_src .. ":" .. info.currentline
            first = first or here
            if not ours then return here end
        end
    end
    if not fn then                                -- the task's function: before it
        local t = core.task_of(co)                -- starts, the one it will run;
        fn = t and core.task_fn(t)                -- then the bottom frame's (the
        if not fn then                            -- coroutine's main function)
            local level = 0
            while getinfo(co, level + 1, "l") do level = level + 1 end
            local info = getinfo(co, level, "f")
            fn = info and info.func
        end
    end
    local info = type(fn) == "function" and getinfo(fn, "S")  -- a tail call left no user frame
    if info and info.what == "Lua" then return info.short_src .. ":" .. info.linedefined end
    return first or "?"
end

--- where(co [, fn]) -> "file:line": the innermost line of the user's code
-- in coroutine co (frames in coronet's modules skipped; with none, where
-- fn, the task's function, is defined).
M.where = where

local kind_names = {}
for name, code in pairs(KIND) do kind_names[code] = name end

--- kind_name(code) -> the name of a park kind code ("read", "sleep", ...).
function M.kind_name(code) return kind_names[code] end

--- task_of(co) -> the task running coroutine co, or nil.
M.task_of = core.task_of

--- live_tasks() -> {[id] = task}: every live task by id.
function M.live_tasks()
    local out = {}
    for _, t in ipairs(core.live_tasks()) do out[t.id] = t end
    return out
end

--- tasks: one entry per live task: {id, state, where, traceback, kind,
-- age, task}. `where` is the innermost line of the user's code (frames in
-- coronet's own modules are skipped); `kind` what it is parked on (nil
-- when not parked); `age` seconds since net.go.
function M.tasks()
    local out = {}
    local t0 = now()
    for _, t in ipairs(core.live_tasks()) do
        local co = t.co
        out[#out + 1] = {
            id = t.id,
            state = costatus(co),
            where = where(co),
            traceback = traceback(co),
            kind = core.task_kind(t),
            age = t0 - core.task_born(t),
            created = t.created,
            task = t,
        }
    end
    table.sort(out, function(a, b) return a.id < b.id end)
    return out
end

core.task_setup(Task, finish)

M.now = now
return M

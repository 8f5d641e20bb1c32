--- coronet.signal: signals as channels (Go's os/signal).
-- `net.signal.notify("INT", "TERM")` returns a channel that receives the
-- names ("INT") of those signals as they arrive, through the loop, while
-- other tasks run. A send never blocks: a full channel drops the signal
-- (Go's rule), so a burst costs at most the channel's capacity.
--
-- Mechanism (csrc/signal.c): a sigaction handler writes the signal number
-- to a self-pipe; one dispatcher task, alive while any notify is active,
-- waits on the pipe and try-sends to the subscribed channels. Nothing is
-- ever blocked, so children started by any means (os.execute, io.popen,
-- net.process.spawn) get an empty mask and, since exec resets a caught
-- signal, default dispositions.
local core = require "coronet.core"
local sched = require "coronet.sched"
local sync = require "coronet.sync"

local M = {}

local subs = {}        -- signal name -> array of chans subscribed to it
local by_chan = {}     -- chan -> array of the names it is subscribed to
local watcher = nil    -- the pipe watcher while any notify is active

local function dispatch(w)
    while true do
        local names = w:wait()
        if not names then return end          -- closed by the last stop
        for i = 1, #names do
            local list = subs[names[i]]
            if list then
                for j = 1, #list do
                    local ch = list[j]
                    if not ch:is_closed() then ch:try_send(names[i]) end
                end
            end
        end
    end
end

local function check_name(name, i)
    if type(name) ~= "string" then
        error("bad argument #" .. i .. " to 'notify' (signal name expected, got " .. type(name) .. ")", 3)
    end
    return name
end

--- notify: start delivering the named signals to a new channel.
-- Arguments are signal names without or with "SIG" ("INT", "TERM",
-- "HUP", "USR1", ...), and optionally a table `{cap = n}` (default 1,
-- Go's advice for a signal channel). KILL and STOP cannot be caught and
-- fault signals (SEGV, BUS, FPE, ILL, TRAP) cannot go through the loop:
-- naming one raises. The channel receives the name without "SIG".
-- @treturn chan a channel of capacity cap
function M.notify(...)
    local names, cap = {}, 1
    for i = 1, select("#", ...) do
        local a = select(i, ...)
        if type(a) == "table" then
            cap = a.cap or cap
        else
            names[#names + 1] = check_name(a, i)
        end
    end
    if #names == 0 then error("bad argument to 'notify' (at least one signal name expected)", 2) end
    if math.type(cap) ~= "integer" or cap < 1 then
        error("bad argument to 'notify' (cap must be a positive integer)", 2)
    end
    for i, name in ipairs(names) do names[i] = core.signal_check(name) end -- raises for bad names
    local ch = sync.chan(cap)
    if not watcher then
        local w, err = core.signal_watcher()
        if not w then return nil, err end
        watcher = w
        sched.go(dispatch, w)
    end
    local mine = {}
    for _, name in ipairs(names) do
        local list = subs[name]
        if not list then
            local ok, err = core.signal_catch(name)
            if not ok then
                by_chan[ch] = mine
                M.stop(ch)
                return nil, err
            end
            list = {}
            subs[name] = list
        end
        list[#list + 1] = ch
        mine[#mine + 1] = name
    end
    by_chan[ch] = mine
    return ch
end

--- stop: end delivery to `ch` (a channel from notify; others are
-- ignored). When no channel is left for a signal, its disposition from
-- before the first notify comes back (for most signals: the default, so
-- a later TERM ends the process). The channel is not closed.
function M.stop(ch)
    local mine = by_chan[ch]
    if not mine then return end
    by_chan[ch] = nil
    for _, name in ipairs(mine) do
        local list = subs[name]
        for i = #list, 1, -1 do
            if list[i] == ch then table.remove(list, i) end
        end
        if #list == 0 then
            subs[name] = nil
            core.signal_release(name)
        end
    end
    if next(subs) == nil and watcher then
        watcher:close()
        watcher = nil
    end
end

--- disposition: what the process does with a signal now: "default",
-- "ignore" or "caught" (a handler: net.signal's, or the host's).
M.disposition = core.signal_disposition

--- raise: send the named signal to this process (kill(getpid(), sig)).
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] error
M.raise = core.signal_raise

return M

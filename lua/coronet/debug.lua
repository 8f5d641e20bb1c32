--- coronet.debug (net.debug): looking inside a running program from the
-- program itself, or from the REPL.
--   net.debug.stats()         counts: tasks, blocked by kind, timers, fds
--   net.debug.tasks()         one entry per live task (the goroutine dump)
--   net.debug.dump()          that dump as text, like Go's SIGQUIT output
--   net.debug.conns()         every open conn, listener and packet conn
--   net.debug.dump_conns()    that list as text, with the kernel's view
--   net.debug.tcp_info(c)     TCP_INFO and queued bytes (also c:tcp_info())
--   net.debug.tap(c [, sink]) a conn whose traffic is shown as it flows
--   net.debug.mark()          remember what is alive now ...
--   net.debug.leaks(mark)     ... and list tasks and conns made since, still alive
--   net.debug.pretty(v)       a value rendered for reading (coronet.pretty)
local core = require "coronet.core"
local sched = require "coronet.sched"
local pretty = require "coronet.pretty"

local M = {}

M.stats = sched.stats
M.tasks = sched.tasks
M.pretty = pretty.pretty

local function emit(out, text)
    if out == nil then return text end
    if type(out) == "function" then out(text) else out:write(text, "\n") end
    return text
end

local function age(s)
    if not s then return "?" end
    if s < 60 then return string.format("%.1f s", s) end
    if s < 3600 then return string.format("%.1f min", s / 60) end
    return string.format("%.1f h", s / 3600)
end

-- The traceback of a parked task without the scheduler's own frames.
local function user_traceback(tb)
    local out = {}
    for line in tb:gmatch("[^\n]+") do
        if not line:find("coronet/sched.lua", 1, true) and not line:find("coronet/debug.lua", 1, true)
           and not line:find("^stack traceback")
           and not line:find("%[C%]: in function 'xpcall'") and not line:find("%(%.%.%.tail calls%.%.%.%)") then
            out[#out + 1] = "        " .. line:gsub("^%s+", "")
        end
    end
    return table.concat(out, "\n")
end

--- dump([out]) -> text: every live task as Go prints goroutines: id,
-- state (what it is parked on), age, the user's line, then its stack.
-- Written to out (a file or a function taking the text) when given.
function M.dump(out)
    local lines = {}
    local list = {}
    for _, t in ipairs(sched.tasks()) do
        if not t.task.repl_internal then list[#list + 1] = t end   -- the REPL's Ctrl-C watcher
    end
    lines[1] = string.format("%d task%s", #list, #list == 1 and "" or "s")
    for _, t in ipairs(list) do
        local state = t.kind and ("parked on " .. (sched.kind_name(t.kind) or "?")) or t.state
        if t.task.canceled then state = state .. ", canceled" end
        lines[#lines + 1] = string.format("task %d [%s, %s]: %s", t.id, state, age(t.age), t.where)
        if t.created then lines[#lines + 1] = "    created at " .. t.created end
        local tb = user_traceback(t.traceback)
        if tb ~= "" then lines[#lines + 1] = tb end
    end
    return emit(out, table.concat(lines, "\n"))
end

---------------------------------------------------------------------------
-- conns
---------------------------------------------------------------------------

--- tcp_info(c) -> info | nil, err: the kernel's view of TCP conn c:
-- {state, rtt, rttvar, rto (seconds), cwnd, ssthresh, mss, unacked,
-- sacked, lost, retrans, retransmits, total_retrans, pmtu, bytes_acked,
-- bytes_received, notsent, delivery_rate, outq, inq}; outq is SIOCOUTQ
-- (written, not yet acknowledged), inq SIOCINQ (received, not yet read).
-- Any object with :fd() qualifies; also available as c:tcp_info().
function M.tcp_info(c)
    local fd = c:fd()
    if type(fd) ~= "number" or fd < 0 then
        return nil, require("coronet.errors").new{op = "tcp_info", err = require("coronet.errors").ErrClosed}
    end
    local info, err = core.tcp_info(fd)
    if not info then return nil, err end
    info.outq, info.inq = core.sock_queues(fd)
    return info
end

--- conns() -> list: every open conn, listener and packet conn, each
-- {obj, class ("conn", "listener", "packet"), desc (its tostring), fd,
-- owner (the task that created it, while it lives), reader, writer (the
-- tasks parked on it), read_deadline, write_deadline (seconds from now,
-- nil when none), outq, inq (bytes queued in the kernel), tcp (tcp_info
-- for TCP conns: rtt, cwnd, retransmits, bytes_acked / bytes_received
-- are the bytes out / in)}. Sorted by fd.
function M.conns()
    collectgarbage("step")                      -- drop closed, unreferenced ones first
    local out = {}
    local now = core.now()
    local live = sched.live_tasks()
    for obj, creator in pairs(core.tracked()) do
        local h = core.handle_info(obj)
        if h and h.fd >= 0 then
            local e = {obj = obj, class = h.class, desc = tostring(obj), fd = h.fd,
                       owner = live[creator],
                       reader = h.rd and sched.task_of(h.rd), writer = h.wr and sched.task_of(h.wr),
                       read_deadline = h.rdl > 0 and h.rdl - now or nil,
                       write_deadline = h.wrl > 0 and h.wrl - now or nil}
            if h.class == "conn" then e.outq, e.inq = core.sock_queues(h.fd) end
            if h.class == "conn" then
                e.tcp = core.tcp_info(h.fd) or nil    -- nil for unix sockets
            end
            out[#out + 1] = e
        end
    end
    table.sort(out, function(a, b) return a.fd < b.fd end)
    return out
end

--- dump_conns([out]) -> text: conns() as one block per object, like
-- `ss -tip` for this process only.
function M.dump_conns(out)
    local list = M.conns()
    local lines = {string.format("%d open", #list)}
    for _, e in ipairs(list) do
        local parts = {}
        if e.owner then parts[#parts + 1] = "owner task " .. e.owner.id end
        if e.reader then parts[#parts + 1] = (e.class == "listener" and "accepting: task " or "reading: task ") .. e.reader.id end
        if e.writer then parts[#parts + 1] = "writing: task " .. e.writer.id end
        if e.read_deadline then parts[#parts + 1] = string.format("read deadline in %.3g s", e.read_deadline) end
        if e.write_deadline then parts[#parts + 1] = string.format("write deadline in %.3g s", e.write_deadline) end
        lines[#lines + 1] = string.format("fd %d %s%s", e.fd, e.desc,
            #parts > 0 and " (" .. table.concat(parts, ", ") .. ")" or "")
        local t = e.tcp
        if t then
            lines[#lines + 1] = string.format(
                "    %s rtt %.3f ms cwnd %d unacked %d retrans %d/%d bytes out %s in %s unsent %d queued-in %d",
                t.state, t.rtt * 1e3, t.cwnd, t.unacked, t.retrans, t.total_retrans,
                tostring(t.bytes_acked or "?"), tostring(t.bytes_received or "?"), e.outq or 0, e.inq or 0)
        elseif e.outq then
            lines[#lines + 1] = string.format("    unsent %d queued-in %d", e.outq, e.inq)
        end
    end
    return emit(out, table.concat(lines, "\n"))
end

---------------------------------------------------------------------------
-- tap
---------------------------------------------------------------------------

local function printable(s)
    return utf8.len(s) ~= nil and not s:find("[%z\1-\8\11\12\14-\31\127]")
end

--- hexdump(s [, max]) -> text: 16 bytes a line with offsets and the
-- printable bytes on the right; at most max bytes (default 1024) shown.
function M.hexdump(s, max)
    max = max or 1024
    local lines = {}
    for off = 0, math.min(#s, max) - 1, 16 do
        local chunk = s:sub(off + 1, math.min(off + 16, max))
        local hex = chunk:gsub(".", function(c) return string.format("%02x ", c:byte()) end)
        local asc = chunk:gsub("[^\32-\126]", ".")
        lines[#lines + 1] = string.format("%08x  %-48s |%s|", off, hex, asc)
    end
    if #s > max then lines[#lines + 1] = string.format("...(%d bytes)", #s) end
    return table.concat(lines, "\n")
end

local function show_data(s, max)
    if printable(s) then return pretty.quote(s, max) end
    return "\n" .. M.hexdump(s, max)
end

local Tap = {}
Tap.__name = "coronet.debug.tap"

local DATA_IN = {read = true, read_full = true, read_from = true, read_line = true, read_into = true}
local DATA_OUT = {write = true, write_to = true}

--- tap(c [, sink [, opts]]) -> conn: a conn that behaves as c (every
-- method is c's) and shows each read and write as it happens: time since
-- the tap was made, direction ("<" in, ">" out), byte count, and the data
-- quoted (text) or as a hexdump (binary). sink is a function taking each
-- record, or a file (default io.stderr); opts.max bounds the bytes shown
-- per record (default 1024). Errors and EOF are shown too.
-- Closing the tap closes c.
function M.tap(c, sink, opts)
    if c == nil then error("bad argument #1 to 'tap' (conn expected)", 2) end
    sink = sink or io.stderr
    local max = opts and opts.max or 1024
    local t0 = core.now()
    local name = tostring(c)
    local function record(dir, what, text)
        local line = string.format("%8.3f %s %s %s", core.now() - t0, name, dir, what)
        if text then line = line .. (text:sub(1, 1) == "\n" and "" or " ") .. text end
        if type(sink) == "function" then sink(line) else sink:write(line, "\n") end
    end
    local wrappers = {}
    local tap = setmetatable({}, {
        __name = Tap.__name,
        __index = function(_, k)
            local w = wrappers[k]
            if w then return w end
            local m = c[k]
            if type(m) ~= "function" then return m end
            if DATA_IN[k] then
                w = function(_, ...)
                    local r = table.pack(m(c, ...))
                    if k == "read_into" and math.type(r[1]) == "integer" then  -- the bytes just appended
                        record("<", r[1] .. " bytes", show_data((...):tostring(-r[1]), max))
                    elseif type(r[1]) == "string" then
                        record("<", #r[1] .. " bytes", show_data(r[1], max))
                    elseif r[1] == nil then
                        record("<", k .. ": " .. tostring(r[r.n]))
                    end
                    return table.unpack(r, 1, r.n)
                end
            elseif DATA_OUT[k] then
                w = function(_, data, ...)
                    local r = table.pack(m(c, data, ...))
                    local mt = getmetatable(data)
                    local s = type(mt) == "table" and mt.__name == "coronet.buffer" and data:tostring()
                        or tostring(data)
                    local i, j = ...
                    if math.type(i) == "integer" then             -- write(data, i [, j]): that range
                        s = s:sub(i, math.type(j) == "integer" and j or -1)
                    end
                    local n = math.type(r[1]) == "integer" and r[1] or (r[1] and #s or r[2] and 0)
                    if n and n > 0 then
                        record(">", n .. " bytes", show_data(s:sub(1, n), max))
                    end
                    if r[1] == nil then record(">", k .. ": " .. tostring(r[r.n])) end
                    return table.unpack(r, 1, r.n)
                end
            else
                w = function(_, ...) return m(c, ...) end
            end
            wrappers[k] = w
            return w
        end,
        __tostring = function() return "tap(" .. tostring(c) .. ")" end,
        __close = function() c:close() end,
    })
    return tap
end

---------------------------------------------------------------------------
-- leaks
---------------------------------------------------------------------------

-- "file:line" of the code that called net.go (coronet's frames skipped).
local function creation_site(level)
    for l = level, level + 20 do
        local info = debug.getinfo(l, "Sl")
        if not info then break end
        if info.what ~= "C" and not info.source:find("coronet/[%w_]+%.lua$") then
            return info.short_src .. ":" .. (info.currentline or 0)
        end
    end
    return "?"
end

--- mark() -> mark: what is alive now (tasks, open conns, fd count). From
-- the first mark on, net.go records where each new task was started (a
-- small cost per net.go), so leaks() can say.
function M.mark()
    sched.set_trace_creation(creation_site)
    local m = {tasks = {}, conns = setmetatable({}, {__mode = "k"}), stats = sched.stats(),
               time = core.now()}
    for _, t in ipairs(sched.tasks()) do m.tasks[t.id] = true end
    for _, e in ipairs(M.conns()) do m.conns[e.obj] = true end
    return m
end

--- leaks(mark) -> {tasks = {...}, conns = {...}, fds = n}: the tasks
-- started since mark that are still alive (each {id, state, where,
-- created, age}), the conns, listeners and packet conns opened since mark
-- and still open (conns() entries), and how many more fds the loop holds
-- than at the mark.
function M.leaks(mark)
    if type(mark) ~= "table" or not mark.tasks then error("bad argument #1 to 'leaks' (mark expected)", 2) end
    local r = {tasks = {}, conns = {}}
    for _, t in ipairs(sched.tasks()) do
        if not mark.tasks[t.id] and t.task ~= sched.current() then
            r.tasks[#r.tasks + 1] = {id = t.id, state = t.kind and sched.kind_name(t.kind) or t.state,
                                     where = t.where, created = t.created, age = t.age}
        end
    end
    for _, e in ipairs(M.conns()) do
        if not mark.conns[e.obj] then r.conns[#r.conns + 1] = e end
    end
    r.fds = sched.stats().fds - mark.stats.fds
    return r
end

return M

--- coronet.pretty: values rendered for a person to read (the REPL prints
-- results with it; `net.debug.pretty(v)` from scripts).
-- Tables nest with indentation when they do not fit on one line, repeated
-- references and cycles are marked, and depth, entries per table and
-- string length are bounded, so printing a huge or self-referencing
-- structure costs little. Strings are quoted with escapes for control and
-- non-UTF-8 bytes; error objects show their fields; conns, listeners and
-- packet conns show their addresses and state (deadlines, tasks parked);
-- tasks their state and where they are.
-- Written here rather than taken from lua-inspect or penlight: the rock
-- gains no dependency, and the renderings of coronet's own objects (which
-- are userdata, opaque to those libraries) are the point.
local core = require "coronet.core"

local M = {}

--- defaults: depth (4), items per table (40), string bytes (240), line
-- width before a table breaks into lines (78).
M.defaults = {depth = 4, items = 40, string = 240, width = 78}

local escapes = {
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\\"] = "\\\\", ['"'] = '\\"',
    ["\0"] = "\\0", ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f", ["\v"] = "\\v",
}

--- quote(s [, max]) -> string: s as a Lua string literal with escapes for
-- control bytes (and for every byte >= 0x80 unless s is valid UTF-8),
-- cut after max bytes with the total length noted.
function M.quote(s, max)
    max = max or M.defaults.string
    local cut = #s > max
    local body = cut and s:sub(1, max) or s
    local utf = utf8.len(body) ~= nil or (cut and utf8.len(body:sub(1, -4)) ~= nil)
    body = body:gsub('[%c\\"\128-\255]', function(ch)
        local e = escapes[ch]
        if e then return e end
        local b = ch:byte()
        if b >= 128 and utf then return ch end
        return string.format("\\x%02x", b)
    end)
    return '"' .. body .. '"' .. (cut and string.format("...(%d bytes)", #s) or "")
end

local function is_ident(k)
    return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function num(n)
    if math.type(n) == "integer" then return tostring(n) end
    if n ~= n then return "nan" end
    if n == math.huge then return "inf" elseif n == -math.huge then return "-inf" end
    return string.format("%.14g", n):find("[%.eni]") and string.format("%.14g", n)
        or string.format("%.1f", n)
end

-- deadline text: "read deadline in 1.9 s" / "... passed"
local function deadline(what, t, now)
    if not t or t <= 0 then return nil end
    local d = t - now
    if d <= 0 then return what .. " deadline passed" end
    return string.format("%s deadline in %.3g s", what, d)
end

local sched -- loaded on first use (it is loaded whenever coronet is)

local function task_of(co)
    sched = sched or require "coronet.sched"
    return co and sched.task_of(co)
end

--- handle_state(obj) -> string | nil: "open, read deadline in 1.9 s,
-- reading: task 3" for a conn, listener or packet conn; nil for anything else.
function M.handle_state(obj)
    local info = core.handle_info(obj)
    if not info then return nil end
    if info.fd < 0 then return "closed" end
    local now = core.now()
    local parts = {"open", "fd " .. info.fd}
    parts[#parts + 1] = deadline("read", info.rdl, now)
    parts[#parts + 1] = deadline("write", info.wrl, now)
    local r, w = task_of(info.rd), task_of(info.wr)
    if r then parts[#parts + 1] = (info.class == "listener" and "accepting: task " or "reading: task ") .. r.id end
    if w then parts[#parts + 1] = "writing: task " .. w.id end
    return table.concat(parts, ", ")
end

--- task_state(t) -> string: "running", "parked on chan at stdin:1",
-- "done", "failed: err", "canceled, parked on read at ...".
function M.task_state(t)
    sched = sched or require "coronet.sched"
    if t.done then
        if t.ok then return "done" end
        return "failed: " .. tostring(t.err)
    end
    local kind = core.task_kind(t)
    local s = kind and ("parked on " .. (sched.kind_name(kind) or "?")) or "ready"
    if coroutine.status(t.co) == "running" or coroutine.running() == t.co then s = "running" end
    if t.canceled then s = "canceled, " .. s end
    return s .. " at " .. sched.where(t.co)
end

-- a one-line rendering of a value that is not a plain table
local function atom(v, opts)
    local tv = type(v)
    if tv == "string" then return M.quote(v, opts.string) end
    if tv == "number" then return num(v) end
    if tv == "function" then
        local info = debug.getinfo(v, "S")
        if info.what == "C" then return "function: builtin" end
        return "function: " .. info.short_src .. ":" .. info.linedefined
    end
    local mt = getmetatable(v)
    local name = type(mt) == "table" and rawget(mt, "__name")
    if name == "coronet.task" and tv == "userdata" then
        return "task " .. v.id .. " (" .. M.task_state(v) .. ")"
    end
    if tv == "userdata" then
        local st = M.handle_state(v)
        if st then return tostring(v):gsub(" %(closed%)$", "") .. " (" .. st .. ")" end
    end
    if tv == "table" then return nil end                -- rendered as a table
    local ok, s = pcall(tostring, v)
    return ok and s or tv
end

local function sorted_keys(t, n)
    local keys, nk = {}, 0
    for k in next, t do
        if not (math.type(k) == "integer" and k >= 1 and k <= n) then
            nk = nk + 1
            keys[nk] = k
        end
    end
    local order = {boolean = 1, number = 2, string = 3}
    table.sort(keys, function(a, b)
        local ta, tb = type(a), type(b)
        if ta ~= tb then return (order[ta] or 9) < (order[tb] or 9) end
        if ta == "number" or ta == "string" then return a < b end
        return tostring(a) < tostring(b)
    end)
    return keys
end

local render

local function key_text(k, opts, seen, depth)
    if is_ident(k) then return k end
    return "[" .. render(k, opts, seen, depth + 1, "") .. "]"
end

-- render(v): the text of v at nesting depth; seen maps tables on the
-- current path to true (cycles) and already shown ones to their number.
function render(v, opts, seen, depth, indent)
    local a = atom(v, opts)
    if a then return a end
    -- a table: an error object, a plain table, or one with __tostring
    local mt = getmetatable(v)
    local name = type(mt) == "table" and rawget(mt, "__name")
    if seen[v] then return "<cycle>" end
    if depth >= opts.depth then return "{...}" end
    local head = ""
    if name == "coronet.error" and depth > 0 and rawget(v, "msg") then   -- a sentinel
        return "error " .. M.quote(tostring(v)) .. " (" .. tostring(rawget(v, "code")) .. ")"
    elseif name == "coronet.error" then
        head = "error " .. M.quote(tostring(v)) .. " "
    elseif type(mt) == "table" and rawget(mt, "__tostring") then
        local ok, s = pcall(tostring, v)
        if ok then return s end
    end
    seen[v] = true
    local n = rawlen(v)
    local items, count = {}, 0
    local total = 0
    for i = 1, n do
        total = total + 1
        if count < opts.items then
            count = count + 1
            items[count] = render(rawget(v, i), opts, seen, depth + 1, indent .. "  ")
        end
    end
    for _, k in ipairs(sorted_keys(v, n)) do
        total = total + 1
        if count < opts.items then
            count = count + 1
            items[count] = key_text(k, opts, seen, depth) .. " = "
                .. render(rawget(v, k), opts, seen, depth + 1, indent .. "  ")
        end
    end
    seen[v] = nil
    if total > count then items[count + 1] = "...(" .. total .. " entries)" end
    if #items == 0 then return head .. "{}" end
    local one = head .. "{" .. table.concat(items, ", ") .. "}"
    if #one + #indent <= opts.width and not one:find("\n", 1, true) then return one end
    local sep = ",\n" .. indent .. "  "
    if total == n then                 -- an array of short items: fill lines
        local lines, cur = {}, nil
        for i = 1, #items do
            local it = items[i]
            if it:find("\n", 1, true) or #it > 20 then cur = nil; break end
            if cur and #cur + #it + 2 + #indent + 2 <= opts.width then
                cur = cur .. ", " .. it
            else
                if cur then lines[#lines + 1] = cur end
                cur = it
            end
        end
        if cur then
            lines[#lines + 1] = cur
            items = lines
        end
    end
    return head .. "{\n" .. indent .. "  " .. table.concat(items, sep) .. "\n" .. indent .. "}"
end

--- pretty(v [, opts]) -> string: v rendered for reading. opts overrides
-- M.defaults (depth, items, string, width).
function M.pretty(v, opts)
    local o = {}
    for k, d in pairs(M.defaults) do o[k] = opts and opts[k] or d end
    return render(v, o, {}, 0, "")
end

return setmetatable(M, {__call = function(_, v, opts) return M.pretty(v, opts) end})

--- coronet.repl: the `coronet` command, a Lua 5.4 REPL whose lines run as
-- coronet tasks, so servers and clients started at the prompt keep running
-- while you type (and may print: the line being typed is redrawn).
--   coronet [options] [script [args]]
--     -e stmt   run stmt (may repeat)
--     -i        enter the REPL after running script / -e
--     -v        print the version
--     --        stop handling options
--     -         run stdin as the script
-- With no script and no -e, the REPL starts. On a terminal it has line
-- editing, history (~/.coronet_history), completion and Ctrl-C; when stdin
-- is not a terminal it reads lines plainly (so input can be piped in).
-- Not loaded by `require "coronet"`.
local net = require "coronet"
local core = require "coronet.core"
local sched = require "coronet.sched"
local pretty = require "coronet.pretty"

local M = {}

M.usage = [==[
usage: coronet [options] [script [args]]
  -e stmt  execute string 'stmt' (may repeat)
  -i       enter the REPL after executing 'script' and -e
  -v       show version information
  --       stop handling options
  -        execute stdin as the script and stop handling options
With no script and no -e, the REPL starts: each line runs as a task, `net`
is loaded, `=expr` and bare expressions print their values, `:tasks` and
`:conns` show what is running and open, ^C cancels the running line, ^D quits.]==]

--- version: the version of the coronet command.
M.version = "scm"

M.banner = "coronet REPL on " .. _VERSION
    .. " (net is loaded; tasks run while you type; :help for commands; ^D quits)"

local stderr = io.stderr

local function errtext(e)
    if type(e) == "table" or type(e) == "userdata" then return pretty.pretty(e) end
    return tostring(e)
end

-- A task's traceback without the scheduler's frames; just the message when
-- nothing but the line itself is left.
local function clean_traceback(tb, msg)
    if not tb then return msg end
    local keep, frames = {}, 0
    for line in tb:gmatch("[^\n]+") do
        -- the scheduler's and the REPL's own frames are dropped
        local machinery = line:find("coronet/sched.lua", 1, true) or line:find("in function 'xpcall'", 1, true)
            or line:find("(...tail calls...)", 1, true) or line:find("coronet/repl.lua", 1, true)
        if not machinery then
            if line:match("^%s") and not line:find("[C]:", 1, true) then frames = frames + 1 end
            keep[#keep + 1] = line
        end
    end
    if frames <= 1 then return msg end
    return table.concat(keep, "\n")
end

M.line_task = nil        -- the task running the current line

--- run(f, ...) -> ok, results | false, message: run f(...) as a task and
-- drive the loop until it ends. A deadlock (every task blocked, nothing
-- can wake one) is this call's error, not the process's: the task is then
-- canceled and the caller goes on.
function M.run(f, ...)
    local t = sched.go(f, ...)
    t.observed = true
    M.line_task = t
    core.sigint_target(t.co)
    local ok, err = pcall(sched.run, function() return t:wait() end)
    core.sigint_target(nil)
    M.line_task = nil
    if not ok then
        t:cancel()
        return false, tostring(err):gsub("^coronet: ", "") .. " (the line was canceled)"
    end
    if t.ok then return true, t.results or {n = 0} end
    local e = t.err
    if e == "interrupted!" then return false, "\ninterrupted!" end   -- after the terminal's "^C^C"
    if type(e) == "string" or e == nil then return false, clean_traceback(t.traceback, tostring(e)) end
    return false, errtext(e)
end

--- compile(src [, name]) -> f | nil, "incomplete" | nil, message: like
-- lua.c: "return <src>" first (an expression prints its values), then src
-- as statements; a syntax error at <eof> means more lines are needed.
function M.compile(src, name)
    name = name or "=stdin"
    local eq = src:match("^%s*=(.*)$")
    if eq then src = "return " .. eq end
    local f = load("return " .. src, name)
    if f then return f end
    local err
    f, err = load(src, name)
    if f then return f end
    if err:sub(-5) == "<eof>" then return nil, "incomplete" end
    return nil, err
end

--- show(results): print a line's values, pretty, tab-separated.
function M.show(r)
    if not r or r.n == 0 then return end
    local out = {}
    for i = 1, r.n do out[i] = pretty.pretty(r[i]) end
    print(table.concat(out, "\t"))
end

local commands = {
    help = function()
        print([[
:tasks   every live task, as a goroutine dump (net.debug.dump())
:conns   every open conn, listener and packet conn (net.debug.dump_conns())
:help    this text
=expr    print expr's values (a bare expression does too)
^C       clear the line; while a line runs, cancel it (twice: interrupt a busy loop)
^D       quit (on an empty line)]])
    end,
    tasks = function() print(net.debug.dump()) end,
    conns = function() print(net.debug.dump_conns()) end,
}

--- new_session() -> session: the line handler the REPL feeds, one line at
-- a time (session:line(text)); session:prompt() is "> " or ">> " while a
-- chunk is incomplete; session:reset() drops a partial chunk.
function M.new_session()
    local s = {chunk = nil}
    function s.prompt() return s.chunk and ">> " or "> " end
    function s.reset() s.chunk = nil end
    function s.line(line)
        if not s.chunk then
            local cmd = line:match("^%s*:(%a+)%s*$")
            if cmd then
                local fn = commands[cmd]
                if fn then fn() else stderr:write("unknown command :", cmd, " (:help lists them)\n") end
                return
            end
        end
        local src = s.chunk and (s.chunk .. "\n" .. line) or line
        if not src:find("%S") then s.chunk = nil return end
        local f, err = M.compile(src)
        if err == "incomplete" then s.chunk = src return end
        s.chunk = nil
        if not f then stderr:write(err, "\n") return end
        local ok, r = M.run(f)
        if ok then M.show(r) else stderr:write(r, "\n") end
    end
    return s
end

---------------------------------------------------------------------------
-- completion
---------------------------------------------------------------------------

local keywords = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function",
                  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
                  "true", "until", "while"}

local lazy_names -- coronet submodules net.X would load, found once
local function net_submodules()
    if lazy_names then return lazy_names end
    lazy_names = {}
    local init = package.searchpath("coronet", package.path)
    local dir = init and init:match("^(.*)/init%.lua$")
    local p = dir and io.popen("ls '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
    if p then
        for f in p:lines() do
            local m = f:match("^([%w_]+)%.lua$")
            if m and m ~= "init" and m ~= "repl" and m ~= "editor" then lazy_names[#lazy_names + 1] = m end
        end
        p:close()
    end
    return lazy_names
end

-- The value a dotted name refers to, without running anything but plain
-- field reads (tables with rawget, then metatable __index tables).
local function lookup(path)
    local v = _G
    for name in path:gmatch("[^%.:]+") do
        if type(v) ~= "table" then return nil end
        local x = rawget(v, name)
        if x == nil then
            local mt = getmetatable(v)
            local idx = type(mt) == "table" and rawget(mt, "__index")
            if type(idx) == "table" then x = idx[name]
            elseif v == net then x = rawget(v, name) or (package.loaded["coronet." .. name]) end
        end
        v = x
        if v == nil then return nil end
    end
    return v
end

local function fields(v, methods_only)
    local names, seen = {}, {}
    local function add(k, val)
        if type(k) == "string" and k:match("^[%a_][%w_]*$") and not seen[k]
           and (not methods_only or type(val) == "function") then
            seen[k] = true
            names[#names + 1] = k
        end
    end
    local depth = 0
    local x = v
    while x ~= nil and depth < 4 do
        depth = depth + 1
        if type(x) == "table" then for k, val in next, x do add(k, val) end end
        local mt = getmetatable(x)
        if type(x) == "string" then mt = {__index = string} end
        local idx = type(mt) == "table" and rawget(mt, "__index")
        if type(idx) ~= "table" then break end
        x = idx
    end
    if v == net and not methods_only then
        for _, m in ipairs(net_submodules()) do add(m, true) end
    end
    return names
end

--- complete(before) -> candidates, start: completions for the name ending
-- `before` (the text left of the cursor): globals and keywords, fields
-- after ".", methods after ":" (a conn's, a string's, ...).
function M.complete(before)
    local word = before:match("[%w_%.:]*$")
    local start = #before - #word + 1
    local base, sep, prefix = word:match("^(.*)([%.:])([%w_]*)$")
    local cands = {}
    if not base then
        for _, k in ipairs(fields(_G)) do if k:sub(1, #word) == word then cands[#cands + 1] = k end end
        for _, k in ipairs(keywords) do if k:sub(1, #word) == word then cands[#cands + 1] = k end end
    else
        if not base:match("^[%a_][%w_]*([%.:][%a_][%w_]*)*$") and not base:match("^[%a_][%w_]*$") then return {}, start end
        local v = lookup(base)
        if v == nil then return {}, start end
        for _, k in ipairs(fields(v, sep == ":")) do
            if k:sub(1, #prefix) == prefix then cands[#cands + 1] = base .. sep .. k end
        end
    end
    table.sort(cands)
    return cands, start
end

---------------------------------------------------------------------------
-- the REPL loops
---------------------------------------------------------------------------

local function plain_repl(stdin, s, prompts)
    local buf = ""
    local function prompt()
        if prompts then io.write(s.prompt()) io.flush() end
    end
    prompt()
    while true do
        local data = stdin:read(4096)
        if not data then break end
        buf = buf .. data
        while true do
            local nl = buf:find("\n", 1, true)
            if not nl then break end
            local line = buf:sub(1, nl - 1)
            buf = buf:sub(nl + 1)
            s.line(line)
            prompt()
        end
    end
    if buf ~= "" then s.line(buf) end      -- a last line without a newline
    if prompts then io.write("\n") end
end

-- Output from tasks while a line is being typed goes around it: the line
-- is cleared, the output written, the line redrawn.
local function route_output(ed)
    local fmeta = getmetatable(io.stdout).__index
    local raw_write = fmeta.write
    local orig_print, orig_iowrite = print, io.write
    local function around(fn)
        return function(...)
            if not ed.active then return fn(...) end
            ed:hide()
            local r = table.pack(fn(...))
            io.stdout:flush()
            ed:show()
            return table.unpack(r, 1, r.n)
        end
    end
    _G.print = around(orig_print)
    io.write = function(...)  -- luacheck: ignore 122 (background output is drawn around the edited line)
        if not ed.active then return orig_iowrite(...) end
        ed:hide()
        local r = table.pack(orig_iowrite(...))
        local last = select("#", ...) > 0 and tostring((select(select("#", ...), ...))) or ""
        if last:sub(-1) ~= "\n" then raw_write(io.stdout, "\n") end
        io.stdout:flush()
        ed:show()
        return table.unpack(r, 1, r.n)
    end
    fmeta.write = function(f, ...)
        if not ed.active or (f ~= io.stdout and f ~= io.stderr) then return raw_write(f, ...) end
        ed:hide()
        local r = table.pack(raw_write(f, ...))
        local n = select("#", ...)
        local last = n > 0 and tostring((select(n, ...))) or ""
        if last:sub(-1) ~= "\n" then raw_write(f, "\n") end
        f:flush()
        ed:show()
        return table.unpack(r, 1, r.n)
    end
    return function(s) raw_write(io.stdout, s) io.stdout:flush() end
end

local function tty_repl(stdin, s)
    local editor = require "coronet.editor"
    local home = os.getenv("HOME")
    local ed
    local raw = function(x) io.stdout:write(x) io.stdout:flush() end
    ed = editor.new{fd = 0, write = function(x) raw(x) end, complete = M.complete,
                    history_file = home and (home .. "/.coronet_history")}
    raw = route_output(ed)
    -- Ctrl-C while a line runs: SIGINT (the terminal is in its own mode
    -- then) wakes this watcher, which cancels the line's task.
    local watcher = sched.go(function()
        while true do
            sched.park(nil, sched.KIND.other)
            if core.sigint_take() and M.line_task and not M.line_task.canceled then
                io.stdout:write("\n")              -- after the terminal's "^C"
                M.line_task:cancel()
            end
        end
    end)
    watcher.observed = true
    watcher.repl_internal = true
    assert(core.sigint_watch(watcher))
    local ok, err = xpcall(function()
        ed:start(s.prompt())
        while true do
            local ev, line = ed:step()
            if not ev then
                local data = stdin:read(4096)
                if data then ed:feed(data) else ev = "eof" end
            end
            if ev == "line" then
                ed:add_history(line)
                s.line(line)
                ed:start(s.prompt())
            elseif ev == "interrupt" then
                s.reset()
                ed:start(s.prompt())
            elseif ev == "eof" then
                break
            end
        end
    end, debug.traceback)
    ed:stop()
    if not ok then error(err, 0) end
end

--- repl([prompts]): the read-eval-print loop on stdin until end of input.
-- On a terminal (stdin and stdout): the line editor; otherwise plain lines,
-- with prompts when asked (-i) or when stdin is a terminal.
function M.repl(prompts)
    local stdin = core.watch_fd(0)
    local s = M.new_session()
    if core.tty_isatty(0) and core.tty_isatty(1) then
        print(M.banner)
        tty_repl(stdin, s)
    else
        plain_repl(stdin, s, prompts or core.tty_isatty(0))   -- a person typing sees prompts
    end
    stdin:close()
end

---------------------------------------------------------------------------
-- the command line
---------------------------------------------------------------------------

local function die(msg)
    stderr:write("coronet: ", msg, "\n")
    os.exit(1, true)
end

--- main(argv) -> status: the `coronet` command (argv is the script's
-- global `arg`). Runs -e statements, the script with its arguments (each
-- as a task, driving the loop until it returns), then the REPL when asked
-- (-i) or when there was nothing else to run.
function M.main(argv)
    argv = argv or {}
    _G.net = net
    sched.keep_going = true
    local execs, interactive, version = {}, false, false
    local i = 1
    while argv[i] ~= nil do
        local a = argv[i]
        if a == "-e" then
            i = i + 1
            if argv[i] == nil then stderr:write("coronet: '-e' needs argument\n", M.usage, "\n") return 1 end
            execs[#execs + 1] = argv[i]
        elseif a:match("^%-e.") then execs[#execs + 1] = a:sub(3)
        elseif a == "-i" then interactive = true
        elseif a == "-v" or a == "--version" then version = true
        elseif a == "-h" or a == "--help" then print(M.usage) return 0
        elseif a == "--" then i = i + 1 break
        elseif a == "-" then break
        elseif a:sub(1, 1) == "-" then
            stderr:write("coronet: unrecognized option '", a, "'\n", M.usage, "\n")
            return 1
        else break end
        i = i + 1
    end
    local script = argv[i]
    -- the script sees arg as lua.c builds it: arg[0] the script, arg[1..] its arguments
    local newarg = {[0] = script or argv[0]}
    for j = i + 1, #argv do newarg[j - i] = argv[j] end
    for j = -1, -i, -1 do newarg[j] = argv[i + j] end
    newarg[-i - 1] = argv[0]
    _G.arg = newarg
    if version then print("coronet " .. M.version .. " on " .. _VERSION) end
    for _, stmt in ipairs(execs) do
        local f, err = load(stmt, "=(command line)")
        if not f then die(err) end
        local ok, msg = M.run(f)
        if not ok then die(msg) end
    end
    if script then
        local f, err
        if script == "-" then f, err = load(io.read("a"), "=stdin") else f, err = loadfile(script) end
        if not f then die(err) end
        local ok, msg = M.run(f, table.unpack(newarg, 1, #newarg))
        if not ok then die(msg) end
    end
    if interactive or (not script and #execs == 0) then
        if script == "-" then return 0 end
        M.repl(interactive)
    end
    return 0
end

return M

--- spec/repl_tty_spec.lua: bin/coronet driven as a person would, in a
-- real pseudo-terminal (tmux on a private socket): a server started on one
-- line answers a dial on the next, arrow-key editing, history across
-- restarts, completion, Ctrl-C during a blocking read and during a busy
-- loop, pretty-printed values, and output from background tasks going
-- around the line being typed. Every wait polls the screen, bounded.
local lu = require "luaunit"

local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    return out, ok
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local have_tmux = os.execute("command -v tmux >/dev/null 2>&1")
local pid = require("coronet.core").getpid()
local seq = 0

local Term = {}
Term.__index = Term

-- A REPL in a fresh tmux server of its own; HOME is a private temp dir
-- (so ~/.coronet_history is too), unless one is given.
local function term(home)
    seq = seq + 1
    local t = setmetatable({sock = "coronet-" .. pid .. "-" .. seq, own_home = not home}, Term)
    t.home = home or sh("mktemp -d"):gsub("%s+$", "")
    local cwd = sh("pwd"):gsub("%s+$", "")
    local cmd = "cd " .. q(cwd) .. " && HOME=" .. q(t.home) .. " TERM=xterm bin/coronet"
    local _, ok = sh("tmux -L " .. t.sock .. " -f /dev/null new-session -d -x 120 -y 40 " .. q(cmd))
    assert(ok, "tmux did not start")
    t:wait_for("%^D quits")
    return t
end

function Term:tmux(args) return sh("tmux -L " .. self.sock .. " " .. args) end
-- The screen (and scrollback), trailing blanks of each line and blank
-- lines at the end removed.
function Term:screen()
    local s = self:tmux("capture-pane -p -S -200")
    s = s:gsub("[ \t]+\n", "\n"):gsub("%s+$", "")
    return s
end
function Term:type(s) self:tmux("send-keys -l " .. q(s)) end
function Term:keys(...) self:tmux("send-keys " .. table.concat({...}, " ")) end
function Term:line(s) self:type(s) self:keys("Enter") end

-- Poll the screen until pattern (a Lua pattern) shows, at most ~10 s.
function Term:wait_for(pattern, plain)
    local s
    for _ = 1, 400 do
        s = self:screen()
        if s:find(pattern, 1, plain) then return s end
        os.execute("sleep 0.025")
    end
    lu.fail("screen never showed " .. pattern .. ":\n" .. tostring(s))
end

-- The number of times plain text occurs on the screen.
function Term:count(text)
    local n, i = 0, 1
    local s = self:screen()
    while true do
        local j = s:find(text, i, true)
        if not j then return n end
        n, i = n + 1, j + #text
    end
end

-- Wait until text has occurred n times (output that repeats).
function Term:wait_count(text, n)
    for _ = 1, 400 do
        if self:count(text) >= n then return end
        os.execute("sleep 0.025")
    end
    lu.fail("screen never showed " .. text .. " " .. n .. " times:\n" .. self:screen())
end

function Term:close()
    self:tmux("kill-server")
    if self.own_home then os.execute("rm -rf " .. q(self.home)) end
end

-- Start an echo server at the prompt ("echo:" .. data), as a user would.
function Term:echo_server()
    self:line('ln = net.listen("tcp", "127.0.0.1:0")')
    self:line('srv = net.go(function() while true do local c = ln:accept() if not c then return end '
              .. 'net.go(function() while true do local d = c:read() if not d then break end '
              .. 'c:write("echo:" .. d) end end) end end)')
    self:line('c = net.dial("tcp", tostring(ln:addr()))')
    self:wait_for("\n>$")
end

TestReplTty = {}

function TestReplTty:setUp()
    if not have_tmux then lu.skip("tmux not installed") end
end

function TestReplTty:test_server_on_one_line_answers_a_dial_on_the_next()
    local t = term()
    local ok, err = pcall(function()
        t:echo_server()
        t:line('c:write("hi") return c:read()')
        t:wait_for('"echo:hi"', true)
        t:line("c")
        t:wait_for("conn tcp 127%.0%.0%.1:%d+%->127%.0%.0%.1:%d+ %(open, fd %d+")
        t:line('t = {1, 2, "bin\\0\\255", nested = {deep = {x = true}}} t.self = t')
        t:line("t")
        t:wait_for('{1, 2, "bin\\0\\xff", nested = {deep = {x = true}}, self = <cycle>}', true)
        t:line("=srv")
        t:wait_for("task %d+ %(parked on accept at stdin:1%)")
    end)
    t:close()
    assert(ok, err)
end

function TestReplTty:test_arrow_keys_edit_the_line()
    local t = term()
    local ok, err = pcall(function()
        t:type('print("ac" .. "")')
        t:keys("Left", "Left", "Left", "Left", "Left", "Left", "Left", "Left", "Left")
        t:type("b")
        t:keys("Home")
        t:type("  ")
        t:keys("End", "BSpace")
        t:type(")")
        t:keys("Enter")
        t:wait_for("\nabc\n", true)
    end)
    t:close()
    assert(ok, err)
end

function TestReplTty:test_history_is_recalled_after_a_restart()
    local home = sh("mktemp -d"):gsub("%s+$", "")
    local t = term(home)
    local ok, err = pcall(function()
        t:line("history_probe = 6 * 7")
        t:line("=history_probe")
        t:wait_for("\n42\n", true)
        t:keys("C-d")
        for _ = 1, 400 do                         -- the REPL quits on ^D
            if not t:tmux("has-session"):find("^$") then break end
            os.execute("sleep 0.025")
        end
    end)
    t:close()
    assert(ok, err)
    local t2 = term(home)
    ok, err = pcall(function()
        t2:keys("Up", "Up")
        t2:wait_for("> history_probe = 6 %* 7")
        t2:keys("Enter")
        t2:line("=history_probe + 1")
        t2:wait_for("\n43\n", true)
    end)
    t2:close()
    local f = io.open(home .. "/.coronet_history")
    local saved = f and f:read("a") or ""
    if f then f:close() end
    os.execute("rm -rf " .. q(home))
    assert(ok, err)
    lu.assertStrContains(saved, "history_probe = 6 * 7\n=history_probe\n")
end

function TestReplTty:test_tab_completes_names_fields_and_methods()
    local t = term()
    local ok, err = pcall(function()
        t:type("net.li")
        t:keys("Tab")
        t:wait_for("> net.listen$")
        t:keys("Tab")                               -- nothing more in common: list them
        t:wait_for("net.listen_packet")
        t:keys("C-u")
        t:echo_server()
        t:type("c:set_read_d")
        t:keys("Tab")
        t:wait_for("> c:set_read_deadline$")
    end)
    t:close()
    assert(ok, err)
end

function TestReplTty:test_ctrl_c_cancels_a_blocked_read_and_the_server_goes_on()
    local t = term()
    local ok, err = pcall(function()
        t:echo_server()
        t:line('print("reading") return c:read()')  -- nothing to read: blocks
        t:wait_for("\nreading$")
        t:keys("C-c")
        t:wait_for("operation was canceled", true)
        t:line('c:write("again") return c:read()')
        t:wait_for('"echo:again"\n>$')
        -- at the prompt, ^C clears the line
        t:type("this is discarded")
        t:wait_for("> this is discarded$")
        t:keys("C-c")
        t:line("=1 + 1")
        t:wait_for("\n2\n", true)
    end)
    t:close()
    assert(ok, err)
end

function TestReplTty:test_second_ctrl_c_interrupts_a_busy_loop()
    local t = term()
    local ok, err = pcall(function()
        t:line('print("spinning") for i = 1, math.huge do end')
        t:wait_for("\nspinning$")
        local got
        for _ = 1, 20 do                            -- two ^C within a second
            t:keys("C-c")
            t:keys("C-c")
            got = pcall(t.wait_for, t, "interrupted!", true)
            if got then break end
        end
        lu.assertTrue(got)
        t:line('print("still here")')
        t:wait_for("\nstill here\n", true)
    end)
    t:close()
    assert(ok, err)
end

function TestReplTty:test_background_output_goes_around_the_line_being_typed()
    local t = term()
    local ok, err = pcall(function()
        t:line('n = 0 tk = net.go(function() while net.sleep(0.05) do n = n + 1 print("tick " .. n) end return "stopped" end)')
        t:type("half typ")
        t:wait_count("tick", 3)
        local s = t:wait_for("tick %d+\n> half typ$")
        lu.assertStrContains(s, "> half typ")
        t:type("ed")
        t:keys("C-a", "C-k")
        t:line("tk:cancel() return tk:wait()")
        t:wait_for('\n"stopped"\n', true)
    end)
    t:close()
    assert(ok, err)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

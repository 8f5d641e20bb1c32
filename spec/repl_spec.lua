--- spec/repl_spec.lua: bin/coronet, the REPL where tasks run while you type.
local lu = require "luaunit"

local function repl(input)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(input)
    f:close()
    local p = io.popen("timeout 10 bin/coronet < " .. path .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    os.remove(path)
    return out, ok
end

TestRepl = {}

function TestRepl:test_expressions_statements_and_multiline_chunks()
    local out, ok = repl("x = 40 + 2\nx\nfor i = 1, 2 do\nprint('line', i)\nend\n")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "42")
    lu.assertStrContains(out, "line\t1")
    lu.assertStrContains(out, "line\t2")
end

function TestRepl:test_background_task_serves_while_the_prompt_waits()
    local out, ok = repl(table.concat({
        'ln = net.listen("tcp", "127.0.0.1:0")',
        'net.go(function() while true do local c = ln:accept() if not c then return end c:write("served\\n") c:close() end end)',
        'c = net.dial("tcp", tostring(ln:addr()))',
        'c:read()',
        'ln:close()',
    }, "\n") .. "\n")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "served")
end

function TestRepl:test_errors_are_reported_and_the_repl_goes_on()
    local out, ok = repl('error("oops")\nnet.go(function() error("bg boom") end)\nnet.sleep(0.01)\nprint("still" .. " alive")\n')
    lu.assertTrue(ok)
    lu.assertStrContains(out, "oops")
    lu.assertStrContains(out, "bg boom")
    lu.assertStrContains(out, "still alive")
end

function TestRepl:test_syntax_error_is_reported()
    local out, ok = repl("x = = 1\nprint('after')\n")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "unexpected symbol")
    lu.assertStrContains(out, "after")
end

local function run(cmd)
    local p = io.popen("timeout 10 " .. cmd .. " 2>&1")
    local out = p:read("a")
    local ok, _, code = p:close()
    return out, ok, code
end

function TestRepl:test_equals_expr_and_bare_expressions_print_values()
    local out, ok = repl("=1 + 1\n= 'a' .. 'b'\n2 * 21\n=nil\n")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "2\n")
    lu.assertStrContains(out, '"ab"')
    lu.assertStrContains(out, "42")
    lu.assertStrContains(out, "nil")
end

function TestRepl:test_values_are_pretty_printed()
    local out = repl('t = {1, "two\\0", k = {x = true}} t.me = t\nt\nnet.listen("tcp", "127.0.0.1:0")\n')
    lu.assertStrContains(out, '{1, "two\\0", k = {x = true}, me = <cycle>}')
    lu.assertStrMatches(out, ".*listener tcp 127%.0%.0%.1:%d+ %(open, fd %d+%).*")
end

function TestRepl:test_last_line_without_newline_runs()
    local out, ok = repl("x = 6\nprint('last', x * 7)")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "last\t42")
end

function TestRepl:test_a_deadlocking_line_is_that_lines_error_and_the_session_goes_on()
    local out, ok = repl("net.chan():recv()\nprint('after' .. ' deadlock')\nnet.wait_group():add(1)\n")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "deadlock")
    lu.assertStrContains(out, "after deadlock")
    local d = select(2, out:gsub("deadlock: every task", ""))
    lu.assertEquals(d, 1)
end

function TestRepl:test_dash_e_runs_statements_in_order_then_exits()
    local out, ok = run("bin/coronet -e 'x = 20' -e 'print(x + 22)'")
    lu.assertTrue(ok)
    lu.assertEquals(out, "42\n")
    out, ok = run("bin/coronet -e 'error(\"bad -e\")'")
    lu.assertNotEquals(ok, true)
    lu.assertStrContains(out, "bad -e")
end

function TestRepl:test_dash_i_enters_the_repl_after_the_script()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("greeting = 'hello from ' .. arg[0]:match('[^/]*$') .. ' ' .. select('#', ...) .. ' ' .. arg[1]\n")
    f:close()
    local out, ok = run("printf 'print(greeting)\\n' | bin/coronet -i " .. path .. " one two")
    os.remove(path)
    lu.assertTrue(ok)
    lu.assertStrContains(out, "hello from " .. path:match("[^/]*$") .. " 2 one")
    lu.assertStrContains(out, "> ")                    -- -i shows prompts
end

function TestRepl:test_script_gets_its_arguments_and_runs_as_a_task()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
local a, b = ...
local ln = net.listen("tcp", "127.0.0.1:0")
net.go(function() local c = ln:accept() c:write("served " .. a) c:close() end)
local c = net.dial("tcp", tostring(ln:addr()))
print(c:read(), b, #arg, arg[2])
]])
    f:close()
    local out, ok = run("bin/coronet " .. path .. " x y </dev/null")
    os.remove(path)
    lu.assertTrue(ok)
    lu.assertEquals(out, "served x\ty\t2\ty\n")
end

function TestRepl:test_script_error_exits_nonzero_with_the_message()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("error('script failed here')\n")
    f:close()
    local out, ok, code = run("bin/coronet " .. path)
    os.remove(path)
    lu.assertNotEquals(ok, true)
    lu.assertEquals(code, 1)
    lu.assertStrContains(out, "script failed here")
end

function TestRepl:test_help_version_and_bad_options()
    local out, ok = run("bin/coronet --help")
    lu.assertTrue(ok)
    lu.assertStrContains(out, "usage: coronet [options] [script [args]]")
    out, ok = run("bin/coronet -v")
    lu.assertTrue(ok)
    lu.assertStrContains(out, _VERSION)
    out, ok = run("bin/coronet --nope")
    lu.assertNotEquals(ok, true)
    lu.assertStrContains(out, "unrecognized option '--nope'")
end

function TestRepl:test_a_symlinked_command_finds_its_modules()
    local dir = io.popen("mktemp -d"):read("l")
    local cwd = io.popen("pwd"):read("l")
    assert(os.execute("ln -s " .. cwd .. "/bin/coronet " .. dir .. "/coronet"))
    local out, ok = run("sh -c 'cd / && " .. dir .. "/coronet -e \"print(net.ip.parse(\\\"::1\\\"))\"'")
    os.execute("rm -rf " .. dir)
    lu.assertTrue(ok, out)
    lu.assertEquals(out, "::1\n")
end

function TestRepl:test_commands_show_tasks_and_conns()
    local out, ok = repl(table.concat({
        'ln = net.listen("tcp", "127.0.0.1:0")',
        'srv = net.go(function() local c = ln:accept() c:read() end)',
        'c = net.dial("tcp", tostring(ln:addr()))',
        'net.sleep(0.01)',
        ':tasks',
        ':conns',
        ':nope',
    }, "\n") .. "\n")
    lu.assertTrue(ok)
    lu.assertStrMatches(out, ".*task %d+ %[parked on read, [%d.]+ s%]: stdin:1.*")
    lu.assertStrMatches(out, ".*fd %d+ listener tcp 127%.0%.0%.1:%d+.*")
    lu.assertStrMatches(out, ".*established rtt [%d.]+ ms cwnd %d+.*")
    lu.assertStrContains(out, "unknown command :nope")
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

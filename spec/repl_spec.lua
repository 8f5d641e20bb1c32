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

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

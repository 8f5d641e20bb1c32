--- spec/run.lua: run every spec/*_spec.lua in one process with luaunit,
-- then (unless SPEC_NO_EXAMPLES is set) smoke-run every example with
-- --selftest, and end
-- with one summary line "N passed, N failed".
-- usage (from the repo root, as `make check` does):
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 spec/run.lua [pattern]
SPEC_RUNNER = true
local lu = require "luaunit"

local pattern = arg[1]
local files = {}
local p = io.popen("ls spec/*_spec.lua")
for f in p:lines() do
    if not pattern or f:find(pattern, 1, true) then files[#files + 1] = f end
end
p:close()
for _, f in ipairs(files) do dofile(f) end

local runner = lu.LuaUnit.new()
runner:setOutputType("text")
local failures = runner:runSuite("-q")
local r = runner.result
local passed = r.successCount or (r.runCount - r.failureCount - r.errorCount - (r.skippedCount or 0))
local failed = (r.failureCount or 0) + (r.errorCount or 0)

-- smoke-run each example: `lua5.4 examples/X.lua --selftest` must exit 0
-- within 60 s (an example that serves forever takes --selftest to mean
-- "start, exercise yourself once, stop").
if not os.getenv("SPEC_NO_EXAMPLES") and not pattern then
    local ex = io.popen("ls examples/*.lua examples/forty/*.lua")   -- forty: docs/forty.md
    for f in ex:lines() do
        local log = os.tmpname()    -- its own file: other runs on the machine write theirs
        local cmd = "timeout 60 lua5.4 " .. f .. " --selftest >" .. log .. " 2>&1 </dev/null"
        if os.execute(cmd) then
            passed = passed + 1
            print("example ok: " .. f)
        else
            failed = failed + 1
            print("example FAILED: " .. f)
            os.execute("tail -20 " .. log)
        end
        os.remove(log)
    end
    ex:close()
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and failures == 0 and 0 or 1, true)

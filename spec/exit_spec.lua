--- spec/exit_spec.lua: a process that loaded coronet exits cleanly while
-- the system resolver's worker threads still run. Closing the Lua state
-- unloads C modules (dlclose); a worker thread that woke after that ran
-- code that was no longer mapped and the process died with SIGSEGV (about
-- one exit in five with four lingering workers). core.so is linked
-- NODELETE, so it stays mapped until the process ends.
local lu = require "luaunit"

TestExit = {}

local function core_path()
    return assert(package.searchpath("coronet.core", package.cpath))
end

function TestExit:test_core_is_never_unloaded()
    local f = io.popen("readelf -d '" .. core_path() .. "' 2>/dev/null")
    local out = f:read("a")
    f:close()
    if out == "" then lu.skip("readelf (binutils) is not installed") end
    lu.assertStrContains(out, "NODELETE")
end

function TestExit:test_exit_with_lingering_resolver_workers_does_not_crash()
    local cmd = ("LUA_PATH=%q LUA_CPATH=%q lua5.4 spec/fixtures/exit_with_lingering_workers.lua"
                 .. " >/dev/null 2>&1"):format(package.path, package.cpath)
    local failed = {}
    for i = 1, 20 do
        local ok, how, code = os.execute(cmd)
        if not ok then failed[#failed + 1] = ("run %d: %s %s"):format(i, how, code) end
    end
    lu.assertEquals(failed, {})
end

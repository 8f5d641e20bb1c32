--- spec/http_server_example_spec.lua: examples/http_server.lua as a user
-- runs it: TERM drains and exits 0, HUP hands the socket to a new copy with
-- no failed request under load, --prefork N serves from N workers and TERM
-- to the supervisor ends them all.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")

local function free_port()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local p = ln:addr().port
    ln:close()
    return p
end

-- GET path on 127.0.0.1:port over a fresh conn -> body | nil, err.
local function get(port, path)
    local c, err = net.dial("tcp", "127.0.0.1:" .. port, {timeout = 5})
    if not c then return nil, err end
    c:set_deadline(net.now() + 10)
    local ok
    ok, err = c:write("GET " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local r = net.bufio.reader(c)
    local status = ok and r:read_line()
    local len
    while status do
        local l = r:read_line()
        if not l or l == "" then break end
        len = len or tonumber(l:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)"))
    end
    local body = status and len and r:read_full(len)
    c:close()
    if not (status and status:find(" 200 ", 1, true) and body) then return nil, err or status end
    return body
end

-- The example as a child (net.process.spawn); its output is discarded.
local function start(args)
    local proc = assert(net.process.spawn{"/usr/bin/env", args = {"lua5.4", "examples/http_server.lua",
        table.unpack(args)}, stdout = "null", stderr = "null"})
    return proc
end

-- Wait (bounded) until GET /pid answers; returns the pid it names.
local function wait_serving(port)
    for _ = 1, 500 do
        local body = get(port, "/pid")
        if body then return tonumber(body) end
        net.sleep(0.01)
    end
    error("the example never served on port " .. port)
end

TestHTTPServerExample = {}

function TestHTTPServerExample:test_term_drains_and_exits_zero()
    H.run(function()
        local port = free_port()
        local proc = start{"--port", tostring(port)}
        lu.assertEquals(wait_serving(port), proc.pid)
        lu.assertEquals(get(port, "/"), "Hello, World!")
        assert(proc:kill("TERM"))
        lu.assertEquals(proc:wait().code, 0)
        lu.assertNil(get(port, "/"), "nothing serves after the drain")
    end)
end

function TestHTTPServerExample:test_hup_restarts_with_no_failed_request()
    H.run(function()
        assert(net.process.set_subreaper(true))   -- the new copy becomes our child to reap
        local port = free_port()
        local proc = start{"--port", tostring(port)}
        local old = wait_serving(port)
        local stop, ok, failed, pids = false, 0, 0, {}
        local clients = {}
        for i = 1, 8 do
            clients[i] = net.go(function()
                while not stop do
                    local body = get(port, "/pid")
                    if body then
                        ok = ok + 1
                        pids[tonumber(body)] = true
                    else
                        failed = failed + 1
                    end
                end
            end)
        end
        while ok < 50 do net.sleep(0.005) end
        assert(proc:kill("HUP"))
        lu.assertEquals(proc:wait().code, 0, "the old copy drains and exits 0")
        local new
        for p in pairs(pids) do if p ~= old then new = p end end
        local limit = ok + 2000
        while not new and ok < limit do
            net.sleep(0.005)
            for p in pairs(pids) do if p ~= old then new = p end end
        end
        local before = ok
        while ok < before + 50 do net.sleep(0.005) end
        stop = true
        for _, t in ipairs(clients) do t:wait() end
        -- stop every copy that answered before asserting anything, so a
        -- failure never leaves a server running (they are our children now)
        local codes = {}
        for p in pairs(pids) do
            local child = p ~= old and net.process.adopt(p)
            if child and child:kill("TERM") then codes[p] = child:wait().code end
        end
        net.process.set_subreaper(false)
        lu.assertNotNil(new, "a new copy answered")
        lu.assertEquals(failed, 0, ("%d of %d requests failed across the restart"):format(failed, ok + failed))
        lu.assertEquals(codes[new], 0, "the new copy drains and exits 0 on TERM")
    end)
end

function TestHTTPServerExample:test_prefork_serves_from_workers_and_term_ends_them()
    H.run(function()
        local port = free_port()
        local proc = start{"--port", tostring(port), "--prefork", "2"}
        wait_serving(port)
        local seen, n = {}, 0
        for _ = 1, 40 do
            local body = assert(get(port, "/pid"))
            if not seen[body] then n = n + 1 end
            seen[body] = true
        end
        lu.assertNil(seen[tostring(proc.pid)], "the supervisor itself serves nothing")
        lu.assertTrue(n >= 1 and n <= 2, "answers come from the two workers")
        assert(proc:kill("TERM"))
        lu.assertEquals(proc:wait().code, 0)
        for p in pairs(seen) do
            lu.assertFalse(os.execute("kill -0 " .. p .. " 2>/dev/null") == true, "worker " .. p .. " outlived TERM")
        end
    end)
end

--- spec/debug_spec.lua: net.debug (dump, conns, tcp_info, tap, mark/leaks)
-- and coronet.pretty, from a script as a user would call them.
local lu = require "luaunit"
local net = require "coronet"
local H = dofile("spec/helpers.lua")
local pretty = require "coronet.pretty"

TestDebug = {}

local function echo_pair()
    local ln = assert(net.listen("tcp", "127.0.0.1:0"))
    local srv = net.go(function()
        local c = assert(ln:accept())
        while true do
            local d = c:read()
            if not d then break end
            c:write(d)
        end
        c:close()
    end)
    local c = assert(net.dial("tcp", tostring(ln:addr())))
    return ln, srv, c
end

function TestDebug:test_net_debug_keeps_stats_and_tasks()
    H.run(function()
        lu.assertIs(net.debug, require "coronet.debug")
        lu.assertEquals(type(net.debug.stats().tasks), "number")
        lu.assertEquals(type(net.debug.tasks()), "table")
    end)
end

function TestDebug:test_dump_reads_like_a_goroutine_dump()
    H.run(function()
        local ch = net.chan()
        local line = debug.getinfo(1, "l").currentline + 1
        local t = net.go(function() ch:recv() end)
        net.yield()
        local text = net.debug.dump()
        lu.assertStrMatches(text, ".*task " .. t.id .. " %[parked on chan, [%d.]+ s%]: [^\n]*debug_spec.lua:" .. line .. ".*")
        local got
        net.debug.dump(function(s) got = s end)
        lu.assertStrContains(got, "task " .. t.id .. " [parked on chan")
        ch:close()
        t:wait()
    end)
end

function TestDebug:test_conns_lists_open_conns_with_owner_parked_tasks_deadlines_and_kernel_view()
    H.run(function()
        local ln, srv, c = echo_pair()
        c:set_read_deadline(net.now() + 30)
        local reader = net.go(function() return c:read() end)
        net.yield()
        local list = net.debug.conns()
        local mine, lst, peer
        for _, e in ipairs(list) do
            if e.obj == c then mine = e end
            if e.obj == ln then lst = e end
            if e.class == "conn" and e.obj ~= c then peer = e end
        end
        lu.assertNotNil(mine)
        lu.assertNotNil(lst)
        lu.assertNotNil(peer)
        lu.assertEquals(mine.class, "conn")
        lu.assertEquals(lst.class, "listener")
        lu.assertIs(mine.reader, reader)
        lu.assertIs(mine.owner, net.debug.tasks()[1].task)  -- the test body made it
        lu.assertIs(peer.owner, srv)
        lu.assertTrue(mine.read_deadline > 20 and mine.read_deadline <= 30)
        lu.assertEquals(mine.tcp.state, "established")
        lu.assertEquals(type(mine.tcp.rtt), "number")
        lu.assertEquals(mine.outq, 0)
        assert(c:write("12345"))
        lu.assertEquals(reader:wait(), "12345")
        local info = assert(c:tcp_info())
        lu.assertTrue(info.bytes_received >= 5)
        lu.assertIs(info.cwnd > 0, true)
        lu.assertStrContains(net.debug.dump_conns(), "listener tcp " .. tostring(ln:addr()))
        c:close()
        srv:wait()
        ln:close()
        for _, e in ipairs(net.debug.conns()) do
            lu.assertNotIs(e.obj, c)
            lu.assertNotIs(e.obj, ln)
        end
    end)
end

function TestDebug:test_tracking_keeps_neither_the_conn_nor_its_creator_alive()
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local weak = setmetatable({}, {__mode = "v"})
        local t = net.go(function()
            weak.co = coroutine.running()
            return assert(net.dial("tcp", tostring(ln:addr())))
        end)
        local c = t:wait()
        local s = assert(ln:accept())
        t = nil                                          -- luacheck: ignore
        for _ = 1, 4 do collectgarbage() end
        lu.assertNil(weak.co)                            -- the dead creator is gone ...
        local found
        for _, e in ipairs(net.debug.conns()) do if e.obj == c then found = e end end
        lu.assertNotNil(found)                           -- ... the conn is still listed
        lu.assertNil(found.owner)
        found = nil                                      -- luacheck: ignore
        weak.c = c
        c:close()
        c = nil                                          -- luacheck: ignore
        for _ = 1, 4 do collectgarbage() end
        lu.assertNil(weak.c)                             -- and tracking did not keep it
        s:close()
        ln:close()
    end)
end

-- The registry's slots (csrc/track.c): every live object is listed as
-- it grows past its first sizes, and slots the collector freed are taken
-- again, so making and dropping conns one after another does not grow it.
function TestDebug:test_tracking_lists_all_live_and_reuses_freed_slots()
    H.run(function()
        local core = require "coronet.core"
        collectgarbage()
        local function listed(set)
            local n = 0
            for _, e in ipairs(net.debug.conns()) do if set[e.obj] then n = n + 1 end end
            return n
        end
        local live = {}
        for _ = 1, 300 do live[assert(net.listen_packet("udp", "127.0.0.1:0"))] = true end
        lu.assertEquals(listed(live), 300)            -- kept through three growths
        local slots = core.track_slots()
        lu.assertTrue(slots >= 300)
        for pc in pairs(live) do pc:close() end
        live = nil                                    -- luacheck: ignore
        for round = 1, 20 do                          -- 2000 more, 100 alive at most
            local batch = {}
            for _ = 1, 100 do batch[assert(net.listen_packet("udp", "127.0.0.1:0"))] = true end
            if round == 20 then lu.assertEquals(listed(batch), 100) end
            for pc in pairs(batch) do pc:close() end
            batch = nil                               -- luacheck: ignore
            collectgarbage()
        end
        lu.assertEquals(core.track_slots(), slots)    -- no slot more than before
        local kept = {}                               -- closed but still referenced:
        for i = 1, 300 do kept[i] = assert(net.listen_packet("udp", "127.0.0.1:0")) end
        for _, pc in ipairs(kept) do pc:close() end   -- their slots are free at close
        local again = {}
        for i = 1, 300 do again[i] = assert(net.listen_packet("udp", "127.0.0.1:0")) end
        lu.assertEquals(core.track_slots(), slots)
        lu.assertEquals(listed(setmetatable({}, {__index = function(_, o)
            for _, pc in ipairs(kept) do if pc == o then return true end end
        end})), 0)
        for _, pc in ipairs(again) do pc:close() end
        local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
        lu.assertEquals(core.tracked()[pc], require("coronet.sched").current().id)
        pc:close()
    end)
    local outside = assert(net.listen_packet("udp", "127.0.0.1:0"))
    lu.assertIs(require("coronet.core").tracked()[outside], true)   -- made outside a task
    outside:close()
end

function TestDebug:test_conns_includes_packet_conns()
    H.run(function()
        local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
        local found
        for _, e in ipairs(net.debug.conns()) do if e.obj == pc then found = e end end
        lu.assertNotNil(found)
        lu.assertEquals(found.class, "packet")
        pc:close()
    end)
end

function TestDebug:test_tcp_info_on_a_closed_or_non_tcp_conn_is_an_error()
    H.run(function()
        local ln, srv, c = echo_pair()
        c:close()
        local v, err = net.debug.tcp_info(c)
        lu.assertNil(v)
        lu.assertNotNil(err)
        srv:wait()
        ln:close()
    end)
end

function TestDebug:test_tap_shows_every_read_and_write_with_direction()
    H.run(function()
        local ln, srv, c = echo_pair()
        local records = {}
        local tc = net.debug.tap(c, function(r) records[#records + 1] = r end)
        assert(tc:write("hello\n"))
        lu.assertEquals(tc:read(), "hello\n")
        assert(tc:write("\0\1\2\255"))
        lu.assertEquals(tc:read_full(4), "\0\1\2\255")
        lu.assertEquals(tostring(tc:remote_addr()), tostring(ln:addr()))   -- other methods pass through
        tc:close()
        srv:wait()
        ln:close()
        lu.assertEquals(#records, 4)
        lu.assertStrMatches(records[1], '^%s*[%d.]+ conn tcp [^ ]+ > 6 bytes "hello\\n"$')
        lu.assertStrMatches(records[2], '^%s*[%d.]+ conn tcp [^ ]+ < 6 bytes "hello\\n"$')
        lu.assertStrContains(records[3], "> 4 bytes\n00000000  00 01 02 ff")
        lu.assertStrContains(records[4], "< 4 bytes\n00000000  00 01 02 ff")
    end)
end

function TestDebug:test_tap_shows_errors_and_eof()
    H.run(function()
        local ln, srv, c = echo_pair()
        local records = {}
        local tc = net.debug.tap(c, function(r) records[#records + 1] = r end)
        c:close_write()
        srv:wait()
        local v = tc:read()
        lu.assertNil(v)
        lu.assertStrContains(records[#records], "< read: EOF")
        tc:close()
        ln:close()
    end)
end

function TestDebug:test_leaks_lists_tasks_and_conns_made_since_the_mark()
    H.run(function()
        local before = net.go(function() net.sleep(100) end)
        net.yield()
        local mark = net.debug.mark()
        local ch = net.chan()
        local line = debug.getinfo(1, "l").currentline + 1
        local leaked = net.go(function() ch:recv() end)
        local done = net.go(function() end)
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        net.yield()
        local r = net.debug.leaks(mark)
        lu.assertEquals(#r.tasks, 1)
        lu.assertEquals(r.tasks[1].id, leaked.id)
        lu.assertEquals(r.tasks[1].state, "chan")
        lu.assertStrContains(r.tasks[1].created, "debug_spec.lua:" .. line)
        lu.assertEquals(#r.conns, 1)
        lu.assertIs(r.conns[1].obj, ln)
        lu.assertEquals(r.fds, 1)
        ch:close()
        ln:close()
        leaked:wait()
        done:wait()
        before:cancel()
        before:wait()
        r = net.debug.leaks(mark)
        lu.assertEquals(#r.tasks, 0)
        lu.assertEquals(#r.conns, 0)
        lu.assertEquals(r.fds, 0)
        require("coronet.sched").set_trace_creation(nil)
        lu.assertNil(net.go(function() end).created)
    end)
end

function TestDebug:test_pretty_bounds_depth_width_and_strings()
    local deep = {a = {b = {c = {d = {e = {}}}}}}
    lu.assertEquals(pretty.pretty(deep), "{a = {b = {c = {d = {...}}}}}")
    local many = {}
    for i = 1, 100 do many[i] = i end
    local s = pretty.pretty(many)
    lu.assertStrContains(s, "...(100 entries)")
    lu.assertNotStrContains(s, " 41,")
    lu.assertEquals(pretty.quote("a\r\n\t\"\\"), '"a\\r\\n\\t\\"\\\\"')
    lu.assertEquals(pretty.quote("\xff\xfe"), '"\\xff\\xfe"')
    lu.assertEquals(pretty.quote("héllo"), '"héllo"')
    lu.assertStrContains(pretty.quote(string.rep("x", 1000)), "...(1000 bytes)")
    lu.assertEquals(pretty.pretty({[1] = "a", [3] = "c"}), '{"a", [3] = "c"}')
    local err = net.errors.new{op = "read", net = "tcp", err = net.ErrDeadlineExceeded}
    local es = pretty.pretty(err)
    lu.assertStrContains(es, 'error "read tcp: i/o timeout"')
    lu.assertStrContains(es, 'code = "timeout"')
    lu.assertStrContains(es, 'err = error "i/o timeout" (timeout)')
end

function TestDebug:test_tls_conns_are_listed_tapped_and_shown()
    local core = require "coronet.core"
    if not core.tls_config then lu.skip("net.tls not in this build") end
    local dir = io.popen("mktemp -d"):read("l")
    assert(os.execute("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. dir .. "/k.pem -out "
        .. dir .. "/c.pem -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null"))
    local ok, err = pcall(H.run, function()
        local ln = assert(net.tls.listen("tcp", "127.0.0.1:0", {cert_file = dir .. "/c.pem", key_file = dir .. "/k.pem"}))
        local srv = net.go(function() local s = ln:accept() local d = s:read() s:write("tls:" .. d) s:read() s:close() end)
        local c = assert(net.tls.dial("tcp", tostring(ln:addr()), {ca_file = dir .. "/c.pem"}))
        local records = {}
        local t = net.debug.tap(c, function(r) records[#records + 1] = r end)
        assert(t:write("hi"))
        lu.assertEquals(t:read(), "tls:hi")
        lu.assertStrContains(records[1], '> 2 bytes "hi"')
        lu.assertStrContains(records[2], '< 6 bytes "tls:hi"')
        local found
        for _, e in ipairs(net.debug.conns()) do if e.obj == c then found = e end end
        lu.assertNotNil(found)
        lu.assertEquals(found.class, "conn")
        lu.assertEquals(found.tcp.state, "established")
        lu.assertEquals(assert(c:tcp_info()).state, "established")
        lu.assertStrContains(net.debug.pretty(c), "(open, fd ")
        c:close()
        srv:wait()
        ln:close()
    end)
    os.execute("rm -rf " .. dir)
    assert(ok, err)
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

--- spec/perfdoc_spec.lua: tools/perfdoc.lua, the generator of
-- docs/performance.md's tables, on two harness runs under
-- spec/fixtures/perfdoc/: `smoke` (a real `run.sh --quick` run of c-epoll
-- and coronet on echo64 and idle) and `full` (a hand-made raw.tsv with every
-- workload and two coronet servers, its results.md printed by the harness's
-- own `run.sh --report`). The expected figures are worked out by hand from
-- the raw rows.
local lu = require "luaunit"
local H = dofile("spec/helpers.lua")
local P = dofile("tools/perfdoc.lua")

local SMOKE, FULL = "spec/fixtures/perfdoc/smoke", "spec/fixtures/perfdoc/full"

TestPerfdoc = {}

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

local function write(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local function cells_of(md, wl, srv)
    for line in md:gmatch("[^\n]+") do
        local cells = {}
        for c in line:sub(2):gmatch("([^|]*)|") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
        if cells[1] == wl and cells[2] == srv then return cells end
    end
    return nil
end

-- run the CLI; returns exit status and its stdout+stderr
local function cli(args)
    local p = io.popen("lua5.4 tools/perfdoc.lua " .. args .. " 2>&1")
    local out = p:read("a")
    local _, _, code = p:close()
    return code, out
end

local function bar_verdict(run, name, srv)
    for i, b in ipairs(P.BARS) do
        if b.name == name then
            local v, shown, verdict = P.bar(run, i, srv)
            return verdict, v, shown
        end
    end
    error("no bar " .. name)
end

function TestPerfdoc:test_smoke_run_medians_and_ratios_from_raw_rows()
    local run = assert(P.load(SMOKE))
    lu.assertEquals(run.workloads, {"echo64", "idle"})
    lu.assertEquals(run.servers, {"c-epoll", "coronet"})
    -- raw.tsv: echo64 c-epoll 191149 cpu=97/96, coronet 158668 cpu=94/92
    local cells = P.row_cells(run, "echo64", "coronet")
    lu.assertEquals(cells[3], "158668")
    lu.assertEquals(cells[5], string.format("%.2f", 158668 / 191149))    -- 0.83
    lu.assertEquals(cells[5], "0.83")
    lu.assertEquals(cells[6], "-")                                       -- no go in this run
    lu.assertEquals(cells[8], "303/680")
    lu.assertEquals(cells[9], "94/92")
    lu.assertEquals(cells[10], string.format("%.1f", 94 * 1e4 / 158668))  -- 5.9
    lu.assertEquals(P.row_cells(run, "idle", "coronet")[3], "2.42")
    lu.assertStrContains(P.row_cells(run, "idle", "coronet")[12], "est=500 alive=500")
    -- and the harness's own results.md says the same
    lu.assertEquals(P.verify(run), {})
    lu.assertEquals((bar_verdict(run, "echo64 round trips/s", "coronet")), "not met")
    lu.assertEquals((bar_verdict(run, "idle KiB per conn", "coronet")), "not met")
    lu.assertEquals((bar_verdict(run, "bulk MiB/s", "coronet")), "not in run")
    local md = P.render_bars(run, "coronet")
    lu.assertStrContains(md, "coronet: 0 of 2 bars in this run met.")
    lu.assertStrContains(md, "This is not a full run (1 run(s) x 3 s")
    lu.assertNotStrContains(P.render_bars(assert(P.load(FULL)), "coronet"), "not a full run")
end

function TestPerfdoc:test_full_run_table_agrees_with_the_harness_report()
    local run = assert(P.load(FULL))
    lu.assertEquals(#run.workloads, 9)
    lu.assertEquals(run.servers, {"c-epoll", "go", "cqueues", "coronet", "coronet-buf"})
    lu.assertEquals(P.verify(run), {})
    -- echo64 coronet runs 165000, 168000, 150000: median 165000 of c-epoll's 170000
    local c = P.row_cells(run, "echo64", "coronet")
    lu.assertEquals(c[3], "165000")
    lu.assertEquals(c[5], "0.97")
    lu.assertEquals(c[6], "1.35")                 -- go: 118000, 122000, 125000 -> 122000
    lu.assertEquals(c[7], "150000..168000")
    -- coronet-buf: run 2 failed; the median of the other two is their mean
    c = P.row_cells(run, "echo64", "coronet-buf")
    lu.assertEquals(run.cell.echo64["coronet-buf"].median, (166000 + 170001) / 2)
    lu.assertEquals(c[11], "2/3")
    lu.assertStrContains(c[12], "server died;")
    -- the rendered table has one row per workload x server
    local md = P.render_table(run)
    lu.assertEquals(cells_of(md, "bulk", "coronet")[10], string.format("%.1f", 99 * 1e4 / 1200))  -- 825.0
end

function TestPerfdoc:test_full_run_bars_worked_by_hand()
    local run = assert(P.load(FULL))
    local verdict, v = bar_verdict(run, "echo64 round trips/s", "coronet")
    lu.assertEquals(verdict, "met")
    lu.assertAlmostEquals(v, 165000 / 170000, 1e-9)
    verdict, v = bar_verdict(run, "echo4k round trips/s", "coronet")
    lu.assertEquals(verdict, "not met")                          -- 125000 / 140000 = 0.893
    lu.assertAlmostEquals(v, 125000 / 140000, 1e-9)
    verdict, v = bar_verdict(run, "udp datagrams/s", "coronet")
    lu.assertEquals(verdict, "met")                              -- 209000 / 215000 = 0.972
    lu.assertAlmostEquals(v, 209000 / 215000, 1e-9)
    lu.assertEquals((bar_verdict(run, "udp datagrams/s", "coronet-buf")), "not met")   -- 0.963
    local shown
    verdict, v, shown = bar_verdict(run, "bulk MiB/s", "coronet")
    lu.assertEquals(verdict, "met")                              -- go 1016 beats cqueues 742
    lu.assertAlmostEquals(v, 1200 / 1016, 1e-9)
    lu.assertStrContains(shown, "go")
    verdict, v = bar_verdict(run, "http srv us/op", "coronet")
    lu.assertEquals(verdict, "met")                              -- (95e4/115000) / (87e4/114814)
    lu.assertAlmostEquals(v, (95e4 / 115000) / (87e4 / 114814), 1e-9)
    verdict, v = bar_verdict(run, "accept srv us/op", "coronet")
    lu.assertEquals(verdict, "not met")                          -- 47.1 / 35.5 us
    lu.assertAlmostEquals(v, (99e4 / 21000) / (78e4 / 21975), 1e-9)
    lu.assertEquals((bar_verdict(run, "http-close srv us/op", "coronet")), "met")
    lu.assertEquals((bar_verdict(run, "idle KiB per conn", "coronet")), "met")          -- 1.45
    lu.assertEquals((bar_verdict(run, "idle KiB per conn", "coronet-buf")), "not met")  -- 2.10
    verdict, v = bar_verdict(run, "echo64-5k x c-epoll vs echo64's", "coronet")
    lu.assertEquals(verdict, "met")
    lu.assertAlmostEquals(v, (140000 / 150000) / (165000 / 170000), 1e-9)
    local md = P.render_bars(run, "coronet")
    lu.assertStrContains(md, "| bar | target | coronet | verdict | coronet-buf |")
    lu.assertStrContains(md, "coronet: 7 of 9 bars in this run met.")
    -- another server named by the option
    lu.assertStrContains(P.render_bars(run, "coronet-buf"), "| bar | target | coronet-buf | verdict | coronet |")
end

local DOC = table.concat({
    "# hand title", "", "hand text before", "",
    "<!-- perfdoc:table begin -->", "stale table", "<!-- perfdoc:table end -->",
    "", "between one *kept*", "",
    "<!-- perfdoc:bars begin -->", "<!-- perfdoc:bars end -->",
    "<!-- perfdoc:params begin -->", "old", "params", "<!-- perfdoc:params end -->",
    "between two", "<!-- perfdoc:callgrind begin -->", "<!-- perfdoc:callgrind end -->",
    "hand text after", ""}, "\n")

local function outside(doc)
    return (doc:gsub("<!%-%- perfdoc:(%w+) begin %-%->.-<!%-%- perfdoc:%1 end %-%->", "<%1>"))
end

function TestPerfdoc:test_generates_between_markers_keeps_the_rest_and_check_catches_an_edit()
    local dir = H.tmpdir()
    local doc = dir .. "/performance.md"
    write(doc, DOC)
    local code, out = cli(FULL .. " --doc " .. doc .. " --callgrind " .. dir .. "/none.tsv")
    lu.assertEquals(code, 0, out)
    local new = read(doc)
    lu.assertEquals(outside(new), outside(DOC))
    lu.assertStrContains(outside(new), "between one *kept*")
    lu.assertNotStrContains(new, "stale table")
    lu.assertEquals(P.extract(new, "table"), P.render_table(assert(P.load(FULL))))
    lu.assertStrContains(P.extract(new, "params"), "Command: `/work/shared/bench/run.sh --servers c-epoll,go,cqueues")
    lu.assertNotStrContains(P.extract(new, "params"), "command: ")     -- params.txt's line, shown once
    lu.assertStrContains(P.extract(new, "callgrind"), "No callgrind results")
    -- up to date: --check passes and writes nothing
    code, out = cli(FULL .. " --doc " .. doc .. " --callgrind " .. dir .. "/none.tsv --check")
    lu.assertEquals(code, 0, out)
    lu.assertStrContains(out, "up to date")
    -- a hand edit outside the markers is fine
    write(doc, (new:gsub("hand text after", "hand text after, edited")))
    code = cli(FULL .. " --doc " .. doc .. " --callgrind " .. dir .. "/none.tsv --check")
    lu.assertEquals(code, 0)
    -- a hand edit of one cell inside: --check fails and shows both lines
    local edited = read(doc):gsub("| echo64 | coronet | 165000 | req/s | 0%.97 |", "| echo64 | coronet | 165000 | req/s | 0.99 |")
    lu.assertNotEquals(edited, read(doc))
    write(doc, edited)
    code, out = cli(FULL .. " --doc " .. doc .. " --callgrind " .. dir .. "/none.tsv --check")
    lu.assertEquals(code, 1)
    lu.assertStrContains(out, "section table")
    lu.assertStrContains(out, "-6: | echo64 | coronet | 165000 | req/s | 0.99 |")
    lu.assertStrContains(out, "+6: | echo64 | coronet | 165000 | req/s | 0.97 |")
    lu.assertEquals(read(doc), edited)                    -- --check wrote nothing
    H.rm(dir)
end

function TestPerfdoc:test_results_md_that_disagrees_with_raw_tsv_fails()
    local dir = H.tmpdir()
    for _, f in ipairs{"raw.tsv", "params.txt", "versions.txt"} do write(dir .. "/" .. f, read(SMOKE .. "/" .. f)) end
    write(dir .. "/results.md", (read(SMOKE .. "/results.md"):gsub("| 158668 |", "| 158669 |")))
    local bad = P.verify(assert(P.load(dir)))
    lu.assertEquals(#bad, 1)
    lu.assertStrContains(bad[1], "echo64/coronet median")
    write(dir .. "/doc.md", DOC)
    local code, out = cli(dir .. " --doc " .. dir .. "/doc.md")
    lu.assertEquals(code, 1)
    lu.assertStrContains(out, "disagree")
    lu.assertEquals(read(dir .. "/doc.md"), DOC)
    H.rm(dir)
end

function TestPerfdoc:test_callgrind_before_after_and_missing_markers()
    local dir = H.tmpdir()
    local tsv = dir .. "/results.tsv"
    write(tsv, "label\tworkload\tinstr_per_op\tops\ttotal_instr\n"
        .. "before\techo64\t20000\t1000\t20000000\nbefore\tbulk\t900000\t64\t57600000\n"
        .. "after\techo64\t15000\t1000\t15000000\nafter\tbulk\t450000\t64\t28800000\n")
    local md = P.render_callgrind(tsv)
    lu.assertStrContains(md, "| workload | before instr/op | after instr/op | after / before |")
    lu.assertStrContains(md, "| echo64 | 20000 | 15000 | 0.75 |")
    lu.assertStrContains(md, "| bulk | 900000 | 450000 | 0.50 |")
    lu.assertStrContains(P.render_callgrind(dir .. "/missing.tsv"), "No callgrind results")
    local doc, err = P.splice("no markers here", P.sections(assert(P.load(SMOKE)), {callgrind = tsv}))
    lu.assertNil(doc)
    lu.assertStrContains(err, "perfdoc:table begin")
    H.rm(dir)
end

function TestPerfdoc:test_the_committed_doc_is_generated_from_the_newest_committed_run()
    local p = io.popen("ls -d bench/results/*/ 2>/dev/null | sort | tail -1")
    local newest = (p:read("a") or ""):gsub("%s+$", "")
    p:close()
    lu.assertNotEquals(newest, "", "no run committed under bench/results/")
    local code, out = cli(newest .. " --check")
    lu.assertEquals(code, 0, out)
end

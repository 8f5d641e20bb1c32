#!/usr/bin/env lua5.4
--- tools/perfdoc.lua: regenerate the generated sections of docs/performance.md
-- from one run of the side-by-side benchmark harness (its results directory:
-- raw.tsv, params.txt, versions.txt, results.md).
--   lua5.4 tools/perfdoc.lua RESULTS_DIR [--check] [--doc FILE] [--server NAME]
--          [--command CMD] [--callgrind TSV]
-- The sections sit between `<!-- perfdoc:NAME begin -->` and
-- `<!-- perfdoc:NAME end -->` lines; everything outside them is hand-written
-- and kept byte for byte. NAME is one of:
--   table      every workload x server: median, unit, ratios to c-epoll and go,
--              min..max, p50/p99, cpu0/cpu1, srv us/op, ok/runs, notes, all
--              computed from raw.tsv (and checked against results.md's table)
--   bars       issue 14's bars for --server (default coronet), measured and
--              met / not met, with the run's other coronet* servers beside it
--   params     params.txt, versions.txt and the command (a `command:` line in
--              params.txt, else RESULTS_DIR/command.txt, else --command)
--   callgrind  instructions per op before/after per workload from --callgrind
--              (default bench/callgrind/results.tsv: label workload
--              instr_per_op ops total_instr); a note when the file is missing
-- --check writes nothing: it exits 1, showing the differing lines, when the
-- doc's generated sections differ from what RESULTS_DIR produces.
-- Used as a library (dofile) it returns its functions, for spec/perfdoc_spec.lua.
local M = {}

local function fail(msg)
    io.stderr:write("perfdoc: ", msg, "\n")
    os.exit(1)
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function lines_of(s)
    local out = {}
    for line in (s .. "\n"):gmatch("(.-)\r?\n") do out[#out + 1] = line end
    if out[#out] == "" then out[#out] = nil end
    return out
end

local function split(s, sep)
    local out, i = {}, 1
    while true do
        local j = s:find(sep, i, true)
        if not j then out[#out + 1] = s:sub(i) break end
        out[#out + 1] = s:sub(i, j - 1)
        i = j + #sep
    end
    return out
end

-- numbers as the harness's awk prints them -------------------------------------

-- awk's string form of a computed number (CONVFMT %.6g, integers as %d)
local function awk_str(v)
    if v == math.floor(v) and math.abs(v) < 1e16 then return string.format("%d", v) end
    return string.format("%.6g", v)
end

local function num(s) return tonumber(s) or 0 end     -- awk's s + 0 for a numeric prefix

-- median over the strings of a list, as report() does: sorted by value; an
-- odd count gives the middle string itself, an even one the mean (a number)
function M.median(list)
    local n = #list
    if n == 0 then return nil end
    local a = {}
    for i = 1, n do a[i] = list[i] end
    table.sort(a, function(x, y) return num(x) < num(y) end)
    if n % 2 == 1 then return a[(n + 1) // 2] end
    return (num(a[n // 2]) + num(a[n // 2 + 1])) / 2
end

-- fmt(v): "-" for none, %.0f from 100 up, else %.2f
function M.fmt(v)
    if v == nil then return "-" end
    v = num(v)
    return v >= 100 and string.format("%.0f", v) or string.format("%.2f", v)
end

local function ratio_str(v, ref)
    if v == nil or ref == nil or num(ref) == 0 then return "-" end
    return string.format("%.2f", num(v) / num(ref))
end

local function as_str(v)
    if v == nil then return "" end
    if type(v) == "number" then return awk_str(v) end
    return v
end

M.UNIT = {echo64 = "req/s", echo4k = "req/s", ["echo64-5k"] = "req/s", bulk = "MiB/s", udp = "dgram/s",
          accept = "conn/s", http = "req/s", ["http-close"] = "req/s", idle = "KiB/conn"}

-- reading a run -------------------------------------------------------------------

-- add(list, s): append s unless empty (awk's split drops empty fields)
local function add(list, s)
    if s and s ~= "" then list[#list + 1] = s end
end

--- load(dir) -> run: raw.tsv parsed and summarised per workload and server:
-- {dir, workloads = {names in first-seen order}, servers = {...},
--  cell = {[wl] = {[server] = {median, min, max, p50, p99, cpu0, cpu1, uop,
--  nok, runs, notes, vals}}}, params, versions, results_md}.
function M.load(dir)
    local raw = read_file(dir .. "/raw.tsv")
    if not raw then return nil, dir .. "/raw.tsv: cannot read" end
    local run = {dir = dir, workloads = {}, servers = {}, cell = {}}
    local seenw, seens = {}, {}
    for lineno, line in ipairs(lines_of(raw)) do
        if line ~= "" then
            local f = split(line, "\t")
            if #f < 8 then return nil, string.format("%s/raw.tsv:%d: %d columns, want 8", dir, lineno, #f) end
            local wl, srv, status = f[1], f[2], f[4]
            if not seenw[wl] then seenw[wl] = true; run.workloads[#run.workloads + 1] = wl; run.cell[wl] = {} end
            if not seens[srv] then seens[srv] = true; run.servers[#run.servers + 1] = srv end
            local c = run.cell[wl][srv]
            if not c then
                c = {vals = {}, p50s = {}, p99s = {}, c0 = {}, c1 = {}, nok = 0, nfail = 0, notes = ""}
                run.cell[wl][srv] = c
            end
            if status == "ok" then
                add(c.vals, f[5]); add(c.p50s, f[6]); add(c.p99s, f[7])
                c.nok = c.nok + 1
            else
                c.nfail = c.nfail + 1
            end
            local parts = split(f[8], ";")
            local cpu = parts[1]:match("^cpu=(.*)$") or ""
            local a, b = cpu:match("^([^/]*)/(.*)$")
            add(c.c0, a); add(c.c1, b)
            for i = 2, #parts do
                local p = parts[i]
                if p ~= "" and not c.notes:find(p, 1, true) then c.notes = c.notes .. p .. ";" end
            end
        end
    end
    for _, wl in ipairs(run.workloads) do
        for _, c in pairs(run.cell[wl]) do
            c.median = M.median(c.vals)
            if #c.vals > 0 then
                c.min, c.max = c.vals[1], c.vals[1]
                for i = 2, #c.vals do
                    if num(c.vals[i]) < num(c.min) then c.min = c.vals[i] end
                    if num(c.vals[i]) > num(c.max) then c.max = c.vals[i] end
                end
            end
            if wl:match("^echo") or wl:match("^http") then
                c.p50, c.p99 = M.median(c.p50s), M.median(c.p99s)
            end
            c.cpu0, c.cpu1 = M.median(c.c0), M.median(c.c1)
            if wl ~= "idle" and c.median and num(c.median) > 0 then
                c.uop = num(c.cpu0) * 1e4 / num(c.median)
            end
            c.runs = c.nok + c.nfail
        end
    end
    run.params = read_file(dir .. "/params.txt")
    run.command = read_file(dir .. "/command.txt")
    run.versions = read_file(dir .. "/versions.txt")
    run.results_md = read_file(dir .. "/results.md")
    return run
end

-- the side-by-side table --------------------------------------------------------------

local TABLE_HEAD = {
    "| workload | server | median | unit | x c-epoll | x go | min..max | p50/p99 us | cpu0/cpu1 % | srv us/op | ok/runs | notes |",
    "|---|---|---:|---|---:|---:|---|---|---|---:|---|---|",
}

--- row_cells(run, wl, server) -> the table row's cells (strings), in column order.
function M.row_cells(run, wl, srv)
    local c = run.cell[wl][srv]
    if not c then return nil end
    local rc = run.cell[wl]["c-epoll"] and run.cell[wl]["c-epoll"].median
    local rg = run.cell[wl].go and run.cell[wl].go.median
    local m = c.median
    local lat = ""
    if c.p50 ~= nil and m ~= nil then lat = as_str(c.p50) .. "/" .. as_str(c.p99) end
    return {wl, srv, M.fmt(m), M.UNIT[wl] or "", ratio_str(m, rc), ratio_str(m, rg),
            #c.vals > 1 and (M.fmt(c.min) .. ".." .. M.fmt(c.max)) or "", lat,
            as_str(c.cpu0) .. "/" .. as_str(c.cpu1), c.uop and string.format("%.1f", c.uop) or "",
            c.nok .. "/" .. c.runs, c.notes}
end

--- render_table(run) -> markdown: every workload, every server that ran it.
function M.render_table(run)
    local out = {TABLE_HEAD[1], TABLE_HEAD[2]}
    for _, wl in ipairs(run.workloads) do
        for _, srv in ipairs(run.servers) do
            local cells = M.row_cells(run, wl, srv)
            if cells then out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |" end
        end
    end
    return table.concat(out, "\n")
end

-- the table rows of a results.md: {["wl\0server"] = cells}
local function md_rows(text)
    local rows = {}
    for _, line in ipairs(lines_of(text)) do
        if line:match("^| ") and not line:match("^| workload |") then
            local cells = {}
            for cell in line:sub(2):gmatch("([^|]*)|") do cells[#cells + 1] = cell:match("^%s*(.-)%s*$") end
            if cells[1] and cells[2] then rows[cells[1] .. "\0" .. cells[2]] = cells end
        end
    end
    return rows
end

local CHECKED = {[3] = "median", [5] = "x c-epoll", [6] = "x go", [7] = "min..max", [9] = "cpu0/cpu1 %",
                 [10] = "srv us/op", [11] = "ok/runs"}

--- verify(run) -> list of disagreements between our figures and results.md's
-- table (empty when they agree, or when the run has no results.md).
function M.verify(run)
    local bad = {}
    if not run.results_md then return bad end
    local rows = md_rows(run.results_md)
    for _, wl in ipairs(run.workloads) do
        for _, srv in ipairs(run.servers) do
            local ours = M.row_cells(run, wl, srv)
            if ours then
                local theirs = rows[wl .. "\0" .. srv]
                if not theirs then
                    bad[#bad + 1] = string.format("%s/%s: no row in results.md", wl, srv)
                else
                    for i, what in pairs(CHECKED) do
                        local a, b = ours[i] or "", theirs[i] or ""
                        if a ~= b then
                            bad[#bad + 1] = string.format("%s/%s %s: raw.tsv gives %q, results.md %q", wl, srv, what, a, b)
                        end
                    end
                end
            end
        end
    end
    table.sort(bad)
    return bad
end

-- the bars of issue 14 ------------------------------------------------------------------

local function median_of(run, wl, srv)
    local c = run.cell[wl] and run.cell[wl][srv]
    return c and c.median and num(c.median) or nil
end

local function uop_of(run, wl, srv)
    local c = run.cell[wl] and run.cell[wl][srv]
    return c and c.uop or nil
end

local function thr_ratio(run, wl, srv, ref)
    local a, b = median_of(run, wl, srv), median_of(run, wl, ref)
    if not a or not b or b == 0 then return nil end
    return a / b
end

local function uop_ratio(run, wl, srv)
    local a, b = uop_of(run, wl, srv), uop_of(run, wl, "c-epoll")
    if not a or not b or b == 0 then return nil end
    return a / b
end

-- Each bar: name, target (text), measure(run, srv) -> value, shown text; ok(value) -> bool.
M.BARS = {
    {name = "echo64 round trips/s", target = ">= 0.95x c-epoll",
     measure = function(run, s) local r = thr_ratio(run, "echo64", s, "c-epoll"); return r, r and string.format("%.3fx", r) end,
     ok = function(v) return v >= 0.95 end},
    {name = "echo4k round trips/s", target = ">= 0.95x c-epoll",
     measure = function(run, s) local r = thr_ratio(run, "echo4k", s, "c-epoll"); return r, r and string.format("%.3fx", r) end,
     ok = function(v) return v >= 0.95 end},
    {name = "udp datagrams/s", target = ">= 0.97x c-epoll",
     measure = function(run, s) local r = thr_ratio(run, "udp", s, "c-epoll"); return r, r and string.format("%.3fx", r) end,
     ok = function(v) return v >= 0.97 end},
    {name = "bulk MiB/s", target = ">= 1.1x the best of go and cqueues",
     measure = function(run, s)
         local m = median_of(run, "bulk", s)
         local g, q = median_of(run, "bulk", "go"), median_of(run, "bulk", "cqueues")
         local best, who = g, "go"
         if q and (not best or q > best) then best, who = q, "cqueues" end
         if not m or not best or best == 0 then return nil end
         return m / best, string.format("%.3fx %s", m / best, who)
     end,
     ok = function(v) return v >= 1.1 end},
    {name = "http srv us/op", target = "<= 1.10x c-epoll's",
     measure = function(run, s)
         local r = uop_ratio(run, "http", s)
         return r, r and string.format("%.1f us, %.3fx", uop_of(run, "http", s), r)
     end,
     ok = function(v) return v <= 1.10 end},
    {name = "accept srv us/op", target = "<= 1.20x c-epoll's",
     measure = function(run, s)
         local r = uop_ratio(run, "accept", s)
         return r, r and string.format("%.1f us, %.3fx", uop_of(run, "accept", s), r)
     end,
     ok = function(v) return v <= 1.20 end},
    {name = "http-close srv us/op", target = "<= 1.20x c-epoll's",
     measure = function(run, s)
         local r = uop_ratio(run, "http-close", s)
         return r, r and string.format("%.1f us, %.3fx", uop_of(run, "http-close", s), r)
     end,
     ok = function(v) return v <= 1.20 end},
    {name = "idle KiB per conn", target = "<= 1.5",
     measure = function(run, s) local v = median_of(run, "idle", s); return v, v and string.format("%.2f KiB", v) end,
     ok = function(v) return v <= 1.5 end},
    {name = "echo64-5k x c-epoll vs echo64's", target = ">= 0.90 of echo64's ratio",
     measure = function(run, s)
         local r5, r64 = thr_ratio(run, "echo64-5k", s, "c-epoll"), thr_ratio(run, "echo64", s, "c-epoll")
         if not r5 or not r64 or r64 == 0 then return nil end
         return r5 / r64, string.format("%.3fx vs %.3fx: %.3f", r5, r64, r5 / r64)
     end,
     ok = function(v) return v >= 0.90 end},
}

--- bar(run, i, server) -> value|nil, shown text, verdict ("met", "not met", "not in run").
function M.bar(run, i, srv)
    local b = M.BARS[i]
    local v, shown = b.measure(run, srv)
    if v == nil then return nil, "-", "not in run" end
    return v, shown, b.ok(v) and "met" or "not met"
end

--- render_bars(run, server) -> markdown: one row per bar for server, then a
-- column per other coronet* server of the run.
function M.render_bars(run, srv)
    local extra = {}
    for _, s in ipairs(run.servers) do
        if s ~= srv and s:match("^coronet") then extra[#extra + 1] = s end
    end
    local head = "| bar | target | " .. srv .. " | verdict |"
    local rule = "|---|---|---:|---|"
    for _, s in ipairs(extra) do head = head .. " " .. s .. " |"; rule = rule .. "---:|" end
    local out = {head, rule}
    local met, total = 0, 0
    for i, b in ipairs(M.BARS) do
        local _, shown, verdict = M.bar(run, i, srv)
        if verdict ~= "not in run" then total = total + 1 end
        if verdict == "met" then met = met + 1 end
        local row = "| " .. b.name .. " | " .. b.target .. " | " .. shown .. " | " .. verdict .. " |"
        for _, s in ipairs(extra) do
            local _, sh, vd = M.bar(run, i, s)
            row = row .. " " .. (vd == "not in run" and "-" or (sh .. " (" .. vd .. ")")) .. " |"
        end
        out[#out + 1] = row
    end
    out[#out + 1] = ""
    out[#out + 1] = string.format("%s: %d of %d bars in this run met.", srv, met, total)
    local r, d = (run.params or ""):match("Medians of (%d+) run%(s%) x ([%d.]+) s")
    if r and (tonumber(r) < 3 or tonumber(d) < 5) then
        out[#out + 1] = string.format("This is not a full run (%s run(s) x %s s; the bars are judged on 3 x 5 s):"
            .. " these verdicts do not count.", r, d)
    end
    return table.concat(out, "\n")
end

-- params, versions, command -----------------------------------------------------------

--- render_params(run, command) -> markdown: the run's parameters and versions
-- and the exact command (params.txt's `command:` line, else the run's
-- command.txt, else `command`).
function M.render_params(run, command)
    local params, cmd = {}, nil
    for _, line in ipairs(lines_of(run.params or "")) do
        local c = line:match("^command:%s*(.*)$")
        if c then cmd = c elseif line ~= "" then params[#params + 1] = line end
    end
    cmd = cmd or (run.command and run.command:match("^%s*(.-)%s*$")) or command
    local dir = run.dir:gsub("/+$", "")
    local stamp = dir:match("([^/]+)$")
    local inside = not dir:match("^/") and not dir:match("^%.%.")      -- a path in this checkout
    local out = {"Run `" .. stamp .. "`" .. (inside and (" (its raw.tsv, params.txt, versions.txt and results.md"
                 .. " are in " .. dir .. "/)") or "") .. ".", "", "```"}
    for _, l in ipairs(params) do out[#out + 1] = l end
    out[#out + 1] = "```"
    out[#out + 1] = ""
    out[#out + 1] = "Command: " .. (cmd and ("`" .. cmd .. "`") or "(not recorded)")
    out[#out + 1] = ""
    out[#out + 1] = "```"
    for _, l in ipairs(lines_of(run.versions or "(no versions.txt)")) do out[#out + 1] = l end
    out[#out + 1] = "```"
    return table.concat(out, "\n")
end

-- callgrind -------------------------------------------------------------------------------

--- render_callgrind(path) -> markdown: instructions per op per workload, one
-- column per label (first seen first) and the last label / first label ratio.
function M.render_callgrind(path)
    local text = read_file(path)
    if not text then
        return "No callgrind results in this checkout yet (" .. path .. " is written by bench/callgrind/run.sh)."
    end
    local labels, wls, seenl, seenw, v = {}, {}, {}, {}, {}
    for _, line in ipairs(lines_of(text)) do
        local f = split(line, "\t")
        if #f < 3 then                                    -- space-separated will do too
            f = {}
            for w in line:gmatch("%S+") do f[#f + 1] = w end
        end
        local ipo = tonumber(f[3])
        if #f >= 3 and ipo then
            local label, wl = f[1], f[2]
            if not seenl[label] then seenl[label] = true; labels[#labels + 1] = label end
            if not seenw[wl] then seenw[wl] = true; wls[#wls + 1] = wl end
            v[wl .. "\0" .. label] = {ipo = ipo, ops = f[4], total = f[5]}
        end
    end
    if #labels == 0 then return "No callgrind rows in " .. path .. "." end
    local first, last = labels[1], labels[#labels]
    local head, rule = "| workload |", "|---|"
    for _, l in ipairs(labels) do head = head .. " " .. l .. " instr/op |"; rule = rule .. "---:|" end
    if #labels > 1 then head = head .. " " .. last .. " / " .. first .. " |"; rule = rule .. "---:|" end
    local out = {head, rule}
    for _, wl in ipairs(wls) do
        local row = "| " .. wl .. " |"
        for _, l in ipairs(labels) do
            local x = v[wl .. "\0" .. l]
            row = row .. " " .. (x and string.format("%.0f", x.ipo) or "-") .. " |"
        end
        if #labels > 1 then
            local a, b = v[wl .. "\0" .. first], v[wl .. "\0" .. last]
            row = row .. " " .. ((a and b and a.ipo > 0) and string.format("%.2f", b.ipo / a.ipo) or "-") .. " |"
        end
        out[#out + 1] = row
    end
    out[#out + 1] = ""
    out[#out + 1] = "(from " .. path .. ": instructions per operation counted by callgrind, which does not vary"
        .. " from run to run the way the timings above do)"
    return table.concat(out, "\n")
end

-- the document -----------------------------------------------------------------------------

M.SECTIONS = {"table", "bars", "params", "callgrind"}

--- sections(run, opts) -> {name = text}: every generated section.
function M.sections(run, opts)
    return {
        table = M.render_table(run),
        bars = M.render_bars(run, opts.server or "coronet"),
        params = M.render_params(run, opts.command),
        callgrind = M.render_callgrind(opts.callgrind or "bench/callgrind/results.tsv"),
    }
end

--- splice(doc, sections) -> new doc | nil, err: each marker pair's content
-- replaced by its section; text outside the markers kept exactly. Every
-- marker must appear once, begin before end.
function M.splice(doc, sections)
    local out = doc
    for _, name in ipairs(M.SECTIONS) do
        local b = "<!-- perfdoc:" .. name .. " begin -->"
        local e = "<!-- perfdoc:" .. name .. " end -->"
        local bs, be = out:find(b, 1, true)
        local es = out:find(e, 1, true)
        if not bs or not es then return nil, "marker " .. (bs and e or b) .. " missing" end
        if out:find(b, be + 1, true) or out:find(e, es + 1, true) then return nil, "marker for " .. name .. " twice" end
        if es < be then return nil, "marker " .. e .. " before " .. b end
        local text = sections[name]
        if text == nil then return nil, "no section " .. name end
        out = out:sub(1, be) .. "\n" .. text .. "\n" .. out:sub(es)
    end
    return out
end

--- extract(doc, name) -> the text between name's markers (nil if absent).
function M.extract(doc, name)
    local _, be = doc:find("<!-- perfdoc:" .. name .. " begin -->\n", 1, true)
    local es = doc:find("\n<!-- perfdoc:" .. name .. " end -->", 1, true)
    if not be or not es or es < be then return nil end
    return doc:sub(be + 1, es - 1)
end

--- diff(old, new [, max]) -> lines: a line diff (longest common subsequence)
-- of two texts, "-N: line" for a line only in old, "+N: line" only in new,
-- at most max (default 40) lines.
function M.diff(old, new, max)
    max = max or 40
    local a, b = lines_of(old), lines_of(new)
    local n, m = #a, #b
    local L = {}
    for i = n + 1, 1, -1 do
        L[i] = {}
        for j = m + 1, 1, -1 do
            if i > n or j > m then L[i][j] = 0
            elseif a[i] == b[j] then L[i][j] = L[i + 1][j + 1] + 1
            else L[i][j] = math.max(L[i + 1][j], L[i][j + 1]) end
        end
    end
    local out, i, j = {}, 1, 1
    while (i <= n or j <= m) and #out < max do
        if i <= n and j <= m and a[i] == b[j] then i, j = i + 1, j + 1
        elseif j <= m and (i > n or L[i][j + 1] > L[i + 1][j]) then
            out[#out + 1] = string.format("+%d: %s", j, b[j]); j = j + 1
        else
            out[#out + 1] = string.format("-%d: %s", i, a[i]); i = i + 1
        end
    end
    return out
end

--- main(argv) -> exit status.
function M.main(argv)
    local opts = {doc = "docs/performance.md"}
    local dir
    local i = 1
    while i <= #argv do
        local a = argv[i]
        if a == "--check" then opts.check = true
        elseif a == "--doc" or a == "--server" or a == "--command" or a == "--callgrind" then
            opts[a:sub(3)] = argv[i + 1] or fail(a .. " needs a value")
            i = i + 1
        elseif a:sub(1, 2) == "--" then fail("unknown option " .. a)
        elseif dir then fail("one RESULTS_DIR only")
        else dir = a end
        i = i + 1
    end
    if not dir then
        io.stderr:write("usage: lua5.4 tools/perfdoc.lua RESULTS_DIR [--check] [--doc FILE] [--server NAME]"
            .. " [--command CMD] [--callgrind TSV]\n")
        return 2
    end
    local run, err = M.load(dir)
    if not run then fail(err) end
    local bad = M.verify(run)
    if #bad > 0 then
        fail("raw.tsv and results.md disagree (" .. #bad .. "):\n  " .. table.concat(bad, "\n  "))
    end
    local doc = read_file(opts.doc)
    if not doc then fail(opts.doc .. ": cannot read") end
    local new, serr = M.splice(doc, M.sections(run, opts))
    if not new then fail(opts.doc .. ": " .. serr) end
    if opts.check then
        if new == doc then
            print("perfdoc: " .. opts.doc .. " is up to date with " .. dir)
            return 0
        end
        io.stderr:write("perfdoc: " .. opts.doc .. "'s generated sections differ from what " .. dir
            .. " gives (edit outside the perfdoc markers, or run make perfdoc):\n")
        for _, name in ipairs(M.SECTIONS) do
            local old_s, new_s = M.extract(doc, name) or "", M.extract(new, name) or ""
            if old_s ~= new_s then
                io.stderr:write("  section ", name, " (line numbers within it):\n")
                for _, l in ipairs(M.diff(old_s, new_s)) do io.stderr:write("    ", l, "\n") end
            end
        end
        return 1
    end
    if new ~= doc then
        local f = assert(io.open(opts.doc, "wb"))
        f:write(new)
        f:close()
        print("perfdoc: regenerated " .. opts.doc .. " from " .. dir)
    else
        print("perfdoc: " .. opts.doc .. " already up to date with " .. dir)
    end
    return 0
end

if arg and arg[0] and arg[0]:match("perfdoc%.lua$") then
    os.exit(M.main(arg))
end
return M

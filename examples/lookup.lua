#!/usr/bin/env lua5.4
--- examples/lookup.lua: a small dig on net.dns.
--   lua5.4 examples/lookup.lua [type] name [@server[:port]] [+timeout=s] [+system]
--   type: host (default), a, aaaa, cname, mx, txt, srv, ns, ptr, port
--   lua5.4 examples/lookup.lua mx example.test @127.0.0.1:5353
--   lua5.4 examples/lookup.lua ptr 192.0.2.10 @127.0.0.1:5353
--   lua5.4 examples/lookup.lua port tcp https
-- `--selftest` starts a tiny DNS server written with coronet's packet
-- conns, asks it a few questions and exits 0.
local net = require "coronet"

local TYPES = {host = true, a = true, aaaa = true, cname = true, mx = true, txt = true,
               srv = true, ns = true, ptr = true, port = true}

-- Run one query; returns the lines to print, or nil, err.
local function query(r, qtype, name, extra)
    if qtype == "host" then
        return r:lookup_host(name)
    elseif qtype == "a" or qtype == "aaaa" then
        local ips, err = r:lookup_ip(qtype == "a" and "ip4" or "ip6", name)
        if not ips then return nil, err end
        for i, a in ipairs(ips) do ips[i] = tostring(a) end
        return ips
    elseif qtype == "cname" then
        local c, err = r:lookup_cname(name)
        return c and {c}, err
    elseif qtype == "mx" then
        local mx, err = r:lookup_mx(name)
        if not mx then return nil, err end
        for i, m in ipairs(mx) do mx[i] = m.pref .. " " .. m.host end
        return mx
    elseif qtype == "txt" then
        local txt, err = r:lookup_txt(name)
        if not txt then return nil, err end
        for i, t in ipairs(txt) do txt[i] = string.format("%q", t) end
        return txt
    elseif qtype == "srv" then                     -- name: _service._proto.domain
        local cname, recs = r:lookup_srv("", "", name)
        if not cname then return nil, recs end
        local out = {"; canonical name " .. cname}
        for _, s in ipairs(recs) do
            out[#out + 1] = string.format("%d %d %d %s", s.priority, s.weight, s.port, s.target)
        end
        return out
    elseif qtype == "ns" then
        local ns, err = r:lookup_ns(name)
        if not ns then return nil, err end
        for i, n in ipairs(ns) do ns[i] = n.host end
        return ns
    elseif qtype == "ptr" then
        return r:lookup_addr(name)
    else                                           -- port: network service
        local port, err = r:lookup_port(name, extra or "")
        return port and {tostring(port)}, err
    end
end

local function usage()
    io.stderr:write("usage: lookup.lua [type] name [@server[:port]] [+timeout=s] [+system]\n")
    os.exit(2)
end

local function main(args)
    local qtype, name, extra, opts = nil, nil, nil, {}
    for _, a in ipairs(args) do
        if a:sub(1, 1) == "@" then
            local s = a:sub(2)
            opts.servers = {s}
        elseif a:match("^%+timeout=") then
            opts.timeout = tonumber(a:match("=(.*)"))
        elseif a == "+system" then
            opts.prefer = "system"
        elseif not qtype and TYPES[a:lower()] and not name then
            qtype = a:lower()
        elseif not name then
            name = a
        else
            extra = a
        end
    end
    if not name then usage() end
    qtype = qtype or "host"
    local r, err = net.dns.resolver(opts)
    if not r then
        io.stderr:write(tostring(err), "\n")
        return 1
    end
    local t0 = net.now()
    local lines, qerr = query(r, qtype, name, extra)
    local ms = (net.now() - t0) * 1000
    r:close()
    if not lines then
        io.stderr:write(tostring(qerr), "\n")
        return 1
    end
    for _, l in ipairs(lines) do print(l) end
    print(string.format(";; %s %s: %d answer(s) in %.1f ms", qtype, name, #lines, ms))
    return 0
end

---------------------------------------------------------------------------
-- --selftest: a DNS server in a few lines, answering A, MX and TXT
---------------------------------------------------------------------------

local function label_name(name)
    local out = {}
    for l in name:gmatch("[^.]+") do out[#out + 1] = string.char(#l) .. l end
    return table.concat(out) .. "\0"
end

-- The answer to query q: A 192.0.2.7, MX 10 mail.<name>, a TXT, or
-- NXDOMAIN for names under "nope.".
local function answer(q)
    local id = q:sub(1, 2)
    local qend = 13
    while q:byte(qend) ~= 0 do qend = qend + q:byte(qend) + 1 end
    local question = q:sub(13, qend + 4)
    local qname = q:sub(13, qend)
    local qtype = string.unpack(">I2", q, qend + 1)
    local name = qname:gsub("[%z\1-\63]", "."):sub(2, -2)
    if name:match("^nope%.") then
        return id .. string.pack(">I2I2I2I2I2", 0x8183, 1, 0, 0, 0) .. question
    end
    local rdata
    if qtype == 1 then rdata = "\192\0\2\7"
    elseif qtype == 15 then rdata = string.pack(">I2", 10) .. label_name("mail." .. name)
    elseif qtype == 16 then rdata = "\5hello\5world"
    end
    if not rdata then return id .. string.pack(">I2I2I2I2I2", 0x8180, 1, 0, 0, 0) .. question end
    local rr = "\192\12" .. string.pack(">I2I2I4s2", qtype, 1, 60, rdata)
    return id .. string.pack(">I2I2I2I2I2", 0x8180, 1, 1, 0, 0) .. question .. rr
end

local function selftest()
    local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
    local server = net.go(function()
        while true do
            local q, from = pc:read_from(512)
            if not q then return end
            pc:write_to(answer(q), from)
        end
    end)
    local at = "@" .. tostring(pc:local_addr())
    assert(main{"host", "www.example.test", at} == 0)
    assert(main{"mx", "example.test", at} == 0)
    assert(main{"txt", "example.test", at} == 0)
    assert(main{"port", "tcp", "https"} == 0)
    assert(main{"nope.example.test", at, "+timeout=1"} == 1)    -- NXDOMAIN: exit 1
    pc:close()
    server:wait()
    print("selftest ok")
    return 0
end

if arg[1] == "--selftest" then os.exit(selftest()) end
os.exit(main(arg))

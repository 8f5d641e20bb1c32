--- coronet.dns: the resolver (net.dns), on c-ares driven by coronet's loop.
-- `net.dns.resolver{...}` makes one; `net.dns.default` is configured from
-- /etc/resolv.conf and /etc/hosts. Lookups park the calling task (or, at
-- the top level, drive the loop) and take an optional trailing ctx.
-- Failures are DNS errors: `code`, `name`, `server`, `not_found`,
-- `timeout`, and `tostring` as Go's *net.DNSError
-- ("lookup nope.test on 127.0.0.1:5353: no such host"). See docs/dns.md.
local core = require "coronet.core"
local errors = require "coronet.errors"

local ip = core.ip
local now = core.now
local dns_sys, dns_port, dns_stat = core.dns_sys, core.dns_port, core.dns_stat
local type, tostring, tonumber, ipairs, pairs = type, tostring, tonumber, ipairs, pairs
local getmetatable, setmetatable, error = getmetatable, setmetatable, error
local random, sort, concat = math.random, table.sort, table.concat

local M = {}

---------------------------------------------------------------------------
-- Errors
---------------------------------------------------------------------------
local Error = errors.Error

local MESSAGES = {
    nxdomain = "no such host",
    nodata = "no such host",
    servfail = "server misbehaving",
    refused = "server refused the query",
    formerr = "server misbehaving (format error)",
    notimp = "server does not implement the query",
    badname = "invalid domain name",
    badaddr = "unrecognized address",
    badresp = "cannot unmarshal DNS message",
    unreachable = "could not contact DNS servers",
    eof = "unexpected end of DNS answer",
    nomem = "out of memory",
    unknown_port = "unknown port",
    badserver = "bad server address",
    init = "cannot create the resolver",
    other = "lookup failed",
}

--- errors: the causes DNS errors wrap, by code (`net.dns.errors.nxdomain`,
-- ...); `net.errors.is(err, net.dns.errors.nxdomain)` tests for one.
-- Timeouts wrap net.ErrDeadlineExceeded, a ctx's end its err(), a closed
-- resolver net.ErrClosed.
M.errors = {}
for code, msg in pairs(MESSAGES) do
    M.errors[code] = setmetatable({code = code, msg = msg, timeout = false}, Error)
end

local NOT_FOUND = {nxdomain = true, nodata = true, unknown_port = true}

-- The cause for a code from C ("ctx": the ctx's own error).
local function cause_of(code, detail, ctx)
    if code == "ctx" then return ctx:err() end
    if code == "timeout" then return errors.ErrDeadlineExceeded end
    if code == "closed" then return errors.ErrClosed end
    local s = M.errors[code] or M.errors.other
    if detail then return setmetatable({code = s.code, msg = detail, timeout = false}, Error) end
    return s
end

--- error(code, name [, server] [, detail] [, ctx]): a DNS error object,
-- for resolvers written in Lua (fakes in tests) that want the same shape.
function M.error(code, name, server, detail, ctx)
    local cause = cause_of(code, detail, ctx)
    local head = "lookup " .. tostring(name) .. (server and (" on " .. server) or "")
    return setmetatable({op = "lookup", code = cause.code or code, name = name, server = server,
                         not_found = NOT_FOUND[code] == true, timeout = cause.timeout == true,
                         err = cause, msg = head .. ": " .. tostring(cause)}, Error)
end
local dns_error = M.error

-- A resolver that can't be made: "dns resolver: bad server address x".
local function config_error(code, what)
    local e = dns_error(code, what)
    e.op, e.name = "resolver", nil
    e.msg = "dns resolver: " .. tostring(e.err) .. (what ~= "" and (" " .. what) or "")
    return e
end

---------------------------------------------------------------------------
-- Names
---------------------------------------------------------------------------

--- valid_name(name) -> boolean: whether name can be a domain name: 1..253
-- octets (a trailing dot aside), labels of 1..63 octets, no control bytes
-- or spaces. Checked before any packet is sent.
function M.valid_name(name)
    if type(name) ~= "string" then return false end
    if name == "." then return true end
    if name:sub(-1) == "." then name = name:sub(1, -2) end
    local n = #name
    if n == 0 or n > 253 or name:find("[%c%s]") then return false end
    for label in (name .. "."):gmatch("([^.]*)%.") do
        if #label == 0 or #label > 63 then return false end
    end
    return true
end
local valid_name = M.valid_name

local function lower_name(name)
    name = name:lower()
    if #name > 1 and name:sub(-1) == "." then name = name:sub(1, -2) end
    return name
end

local function is_localhost(name)
    name = lower_name(name)
    return name == "localhost" or name:sub(-10) == ".localhost"
end

-- RFC 6761: names under "invalid." never exist; answer without a packet.
local function is_invalid(name)
    name = lower_name(name)
    return name == "invalid" or name:sub(-8) == ".invalid"
end

local function fqdn(name)
    return name:sub(-1) == "." and name or name .. "."
end

---------------------------------------------------------------------------
-- Hosts files: parsed once, re-read when they change (checked at most every
-- 5 s, as Go does)
---------------------------------------------------------------------------
--- hosts_max_age: seconds a parsed hosts file is trusted before its
-- size and mtime are checked again (5, as Go).
M.hosts_max_age = 5
local hosts_cache = {}

local function hosts_parse(path)
    local byname, byaddr = {}, {}
    local f = io.open(path)
    if not f then return {byname = byname, byaddr = byaddr} end
    for line in f:lines() do
        local fields = {}
        for w in line:gsub("#.*", ""):gmatch("%S+") do fields[#fields + 1] = w end
        local a = fields[1] and ip.parse(fields[1])
        for i = 2, a and #fields or 0 do
            local key = lower_name(fields[i])
            local list = byname[key] or {}
            byname[key] = list
            list[#list + 1] = a
            local ak = tostring(a)
            byaddr[ak] = byaddr[ak] or {}
            local names = byaddr[ak]
            names[#names + 1] = fqdn(fields[i])
        end
    end
    f:close()
    return {byname = byname, byaddr = byaddr}
end

local function hosts_get(path)
    local c, t = hosts_cache[path], now()
    if c and t < c.checked + M.hosts_max_age then return c end
    local mtime, size = dns_stat(path)
    if not (c and mtime == c.mtime and size == c.size) then
        c = hosts_parse(path)
        c.mtime, c.size = mtime, size
        hosts_cache[path] = c
    end
    c.checked = t
    return c
end

---------------------------------------------------------------------------
-- Ordering: MX by preference, SRV by priority and weight (RFC 2782)
---------------------------------------------------------------------------

-- A stable sort of list by key (shuffled first, so equal keys come in
-- random order, as Go does for MX).
local function shuffle_sort(list, key, rand)
    for i = #list, 2, -1 do
        local j = rand(i)
        list[i], list[j] = list[j], list[i]
    end
    for i, v in ipairs(list) do v._i = i end
    sort(list, function(a, b)
        if a[key] ~= b[key] then return a[key] < b[key] end
        return a._i < b._i
    end)
    for _, v in ipairs(list) do v._i = nil end
    return list
end

-- RFC 2782's weighted selection within one priority: zero weights first,
-- then repeatedly pick by a uniform number in [0, sum] against the running
-- sums.
local function srv_weighted(group, rand)
    local zeros, rest, out = {}, {}, {}
    for _, r in ipairs(group) do
        if r.weight == 0 then zeros[#zeros + 1] = r else rest[#rest + 1] = r end
    end
    for _, r in ipairs(rest) do zeros[#zeros + 1] = r end
    local pool = zeros
    while #pool > 0 do
        local sum = 0
        for _, r in ipairs(pool) do sum = sum + r.weight end
        local n, run, pick = rand(sum + 1) - 1, 0, #pool
        for i, r in ipairs(pool) do
            run = run + r.weight
            if run >= n then pick = i break end
        end
        out[#out + 1] = table.remove(pool, pick)
    end
    return out
end

--- _srv_order(records [, rand]): order SRV records by priority, each
-- priority's records by RFC 2782 weighted selection. rand(n) returns an
-- integer in 1..n (default math.random); exposed for tests.
function M._srv_order(records, rand)
    rand = rand or random
    sort(records, function(a, b) return a.priority < b.priority end)
    local out, i = {}, 1
    while i <= #records do
        local j, group = i, {}
        while j <= #records and records[j].priority == records[i].priority do
            group[#group + 1] = records[j]
            j = j + 1
        end
        for _, r in ipairs(srv_weighted(group, rand)) do out[#out + 1] = r end
        i = j
    end
    return out
end

---------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------

-- "options" from resolv.conf that c-ares 1.18 ignores (timeout, attempts).
local function resolv_options(path)
    local o = {}
    local f = io.open(path or "/etc/resolv.conf")
    if not f then return o end
    for line in f:lines() do
        local opts = line:match("^%s*options%s+(.*)")
        for w in (opts or ""):gmatch("%S+") do
            local k, v = w:match("^(%w+):(%d+)$")
            if k == "timeout" then o.timeout = tonumber(v) end
            if k == "attempts" then o.attempts = tonumber(v) end
        end
    end
    f:close()
    return o
end

-- servers {"127.0.0.1:5353", "::1", "[::1]:53"} -> c-ares CSV, or nil, err.
local function servers_csv(list)
    local out = {}
    if #list == 0 then return nil, config_error("badserver", "(none given)") end
    for _, s in ipairs(list) do
        if type(s) ~= "string" then error("resolver: servers must be strings", 3) end
        local a, port = ip.parse(s), 53
        if not a then
            local host, p = ip.split_host_port(s)
            a, port = host and ip.parse(host), tonumber(p)
        end
        if not a or not port or port < 1 or port > 65535 or port % 1 ~= 0 then
            return nil, config_error("badserver", s)
        end
        local h = tostring(a)
        out[#out + 1] = (a:is_v6() and "[" .. h .. "]" or h) .. ":" .. port
    end
    return concat(out, ",")
end

local OPTIONS = {servers = true, timeout = true, attempts = true, rotate = true, search = true,
                 ndots = true, hosts_file = true, prefer = true, rcvbuf = true,
                 max_inflight = true}

---------------------------------------------------------------------------
-- Resolver
---------------------------------------------------------------------------
local Resolver = {}
Resolver.__index = Resolver
Resolver.__name = "coronet.dns.resolver"
M.Resolver = Resolver

--- resolver(opts) -> resolver | nil, err: a resolver with its own c-ares
-- channel. opts: `servers` ({"ip[:port]", ...}; default: resolv.conf's),
-- `timeout` (seconds per try, default 5), `attempts` (tries per server,
-- default 2), `rotate`, `search` (domains), `ndots`, `hosts_file` (path,
-- default "/etc/hosts"; false: none), `prefer` ("ares", default, or
-- "system": host, IP, address and CNAME lookups through getaddrinfo on a
-- worker thread), `rcvbuf` (UDP receive buffer, bytes). Close it with
-- close() or let a `<close>` variable do it.
function M.resolver(opts)
    opts = opts or {}
    if type(opts) ~= "table" then error("bad argument #1 to 'resolver' (table expected)", 2) end
    for k in pairs(opts) do
        if not OPTIONS[k] then error("resolver: unknown option '" .. tostring(k) .. "'", 2) end
    end
    local prefer = opts.prefer or "ares"
    if prefer ~= "ares" and prefer ~= "system" then
        error("resolver: prefer must be \"ares\" or \"system\"", 2)
    end
    local copts = {timeout = opts.timeout, attempts = opts.attempts, rotate = opts.rotate,
                   search = opts.search, ndots = opts.ndots, rcvbuf = opts.rcvbuf,
                   max_inflight = opts.max_inflight}
    if opts.servers then
        if type(opts.servers) ~= "table" then error("resolver: servers must be a table", 2) end
        local csv, err = servers_csv(opts.servers)
        if not csv then return nil, err end
        copts.servers = csv
    end
    local ch, code, detail = core.dns_channel(copts)
    if not ch then return nil, config_error(code, detail or "") end
    local hosts = opts.hosts_file
    if hosts == nil then hosts = "/etc/hosts" end
    return setmetatable({_ch = ch, prefer = prefer, hosts_file = hosts or nil}, Resolver)
end

function Resolver:__tostring()
    return "dns resolver" .. (self._closed and " (closed)" or " " .. (self:server() or ""))
end

--- resolver:server() -> "ip:port" | nil: the first server, as errors name it.
function Resolver:server()
    local s = self._server
    if s == nil then
        s = self._ch:server() or false
        self._server = s
    end
    return s or nil
end

--- resolver:close() -> true | nil, ErrClosed: lookups in flight fail with
-- ErrClosed; c-ares's sockets are closed.
function Resolver:close()
    self._closed = true
    return self._ch:close()
end
Resolver.__close = Resolver.close

--- resolver:stats() -> {pending, waiting, abandoned, sockets, requests}:
-- queries c-ares still runs, tasks waiting, queries nobody waits for any
-- more, open sockets, live request records.
function Resolver:stats()
    return self._ch:stats()
end

local function check_ctx(ctx, fname)
    if ctx ~= nil then
        local mt = getmetatable(ctx)
        if not mt or mt.__name ~= "coronet.context" then
            error("bad argument to '" .. fname .. "' (net.context expected, got " .. type(ctx) .. ")", 3)
        end
    end
end

local function check_string(v, n, fname)
    if type(v) ~= "string" then
        error("bad argument #" .. n .. " to '" .. fname .. "' (string expected, got " .. type(v) .. ")", 3)
    end
end

-- Ask the server (or the system), after the checks and the hosts file.
function Resolver:_ask(kind, name, fam, deadline, ctx)
    local r, code, detail, server
    if type(name) == "string" and is_invalid(name) then
        return nil, dns_error("nxdomain", name, nil, nil, ctx)
    end
    if self.prefer == "system" and (kind == "host" or kind == "ip" or kind == "cname" or kind == "ptr") then
        r, code, detail = dns_sys(kind, name, fam, deadline, ctx)
    else
        r, code, detail = self._ch:_lookup(kind, name, fam, deadline, ctx)
        server = self:server()
    end
    if r == nil then
        local shown = type(name) == "string" and name or tostring(name)
        return nil, dns_error(code, shown, server, detail, ctx)
    end
    if kind == "srv" then return r, code end     -- cname, records
    return r
end

local FAMILY = {ip = 0, ip4 = 4, ip6 = 6}

local function family_ok(a, fam)
    if fam == 0 then return true end
    if fam == 4 then return a:is_v4() or a:is_4in6() end
    return a:is_v6() and not a:is_4in6()
end

-- Addresses from a literal, the hosts file or localhost; nil to ask.
-- The system resolver reads hosts files itself (nsswitch decides).
function Resolver:_local_addrs(name, fam)
    local a = ip.parse(name)
    local list
    if a then
        list = {a}
    elseif self.prefer == "system" then
        return nil
    else
        local h = self.hosts_file and hosts_get(self.hosts_file).byname[lower_name(name)]
        if h then list = h
        elseif is_localhost(name) then list = {ip.parse("::1"), ip.parse("127.0.0.1")}
        else return nil end
    end
    local out = {}
    for _, x in ipairs(list) do
        if family_ok(x, fam) then out[#out + 1] = x:is_4in6() and x:unmap() or x end
    end
    return out
end

-- host and ip lookups; as_strings for lookup_host.
function Resolver:_addrs(kind, fam, name, deadline, ctx)
    local list = self:_local_addrs(name, fam)
    if list then
        if #list == 0 then return nil, dns_error("nodata", name, nil, "no suitable address found") end
        if kind == "host" then
            for i, a in ipairs(list) do list[i] = tostring(a) end
        end
        return list
    end
    if not valid_name(name) then return nil, dns_error("badname", name) end
    return self:_ask(kind, name, fam, deadline, ctx)
end

--- resolver:lookup_host(name [, ctx]) -> {"ip", ...} | nil, err: the
-- addresses of name (IPv6 first): an IP literal as itself, then the hosts
-- file, "localhost", then DNS (A and AAAA).
function Resolver:lookup_host(name, ctx)
    check_string(name, 1, "lookup_host")
    check_ctx(ctx, "lookup_host")
    return self:_addrs("host", 0, name, 0, ctx)
end

--- resolver:lookup_ip(network, name [, ctx]) -> {Addr, ...} | nil, err:
-- as lookup_host, as net.ip Addrs; network "ip", "ip4" or "ip6".
function Resolver:lookup_ip(network, name, ctx)
    return self:_lookup_ip(network, name, 0, ctx)
end

--- resolver:_lookup_ip(network, name, deadline, ctx): lookup_ip bounded
-- by an absolute deadline too (the dialer's).
function Resolver:_lookup_ip(network, name, deadline, ctx)
    check_string(name, 2, "lookup_ip")
    check_ctx(ctx, "lookup_ip")
    local fam = FAMILY[network]
    if not fam then return nil, errors.unknown_network("lookup", network) end
    return self:_addrs("ip", fam, name, deadline, ctx)
end

--- resolver:lookup_addr(addr [, ctx]) -> {"name.", ...} | nil, err: the
-- names for an address (a string or a net.ip Addr): the hosts file, then
-- PTR records. Names are absolute (trailing dot), as in Go.
function Resolver:lookup_addr(addr, ctx)
    check_ctx(ctx, "lookup_addr")
    local a = type(addr) == "string" and ip.parse(addr) or addr
    local mt = getmetatable(a)
    if type(a) ~= "userdata" or not mt or mt.__name ~= "coronet.ip.addr" then
        return nil, dns_error("badaddr", tostring(addr))
    end
    if a:is_4in6() then a = a:unmap() end
    local names = self.hosts_file and self.prefer ~= "system"
        and hosts_get(self.hosts_file).byaddr[tostring(a)]
    if names then
        local out = {}
        for i, n in ipairs(names) do out[i] = n end
        return out
    end
    return self:_ask("ptr", a, 0, 0, ctx)
end

--- resolver:lookup_cname(name [, ctx]) -> "canonical.name." | nil, err:
-- where name's CNAME chain ends; name itself when it has addresses but
-- no CNAME (Go's LookupCNAME).
function Resolver:lookup_cname(name, ctx)
    check_string(name, 1, "lookup_cname")
    check_ctx(ctx, "lookup_cname")
    if not valid_name(name) then return nil, dns_error("badname", name) end
    return self:_ask("cname", name, 0, 0, ctx)
end

--- resolver:lookup_mx(name [, ctx]) -> {{host = "mx.", pref = n}, ...} |
-- nil, err: sorted by preference (equal ones in random order).
function Resolver:lookup_mx(name, ctx)
    check_string(name, 1, "lookup_mx")
    check_ctx(ctx, "lookup_mx")
    if not valid_name(name) then return nil, dns_error("badname", name) end
    local list, err = self:_ask("mx", name, 0, 0, ctx)
    if not list then return nil, err end
    return shuffle_sort(list, "pref", random)
end

--- resolver:lookup_txt(name [, ctx]) -> {"text", ...} | nil, err: one
-- string per TXT record, its character-strings joined (as Go).
function Resolver:lookup_txt(name, ctx)
    check_string(name, 1, "lookup_txt")
    check_ctx(ctx, "lookup_txt")
    if not valid_name(name) then return nil, dns_error("badname", name) end
    return self:_ask("txt", name, 0, 0, ctx)
end

--- resolver:lookup_srv(service, proto, name [, ctx]) -> cname, {{target,
-- port, priority, weight}, ...} | nil, err: the SRV records of
-- _service._proto.name (of name itself when service and proto are ""),
-- ordered by priority, then by RFC 2782 weighted random selection.
function Resolver:lookup_srv(service, proto, name, ctx)
    check_string(service, 1, "lookup_srv")
    check_string(proto, 2, "lookup_srv")
    check_string(name, 3, "lookup_srv")
    check_ctx(ctx, "lookup_srv")
    local target = name
    if service ~= "" or proto ~= "" then target = "_" .. service .. "._" .. proto .. "." .. name end
    if not valid_name(target) then return nil, dns_error("badname", target) end
    local cname, list = self:_ask("srv", target, 0, 0, ctx)
    if not cname then return nil, list end
    return cname, M._srv_order(list)
end

--- resolver:lookup_ns(name [, ctx]) -> {{host = "ns."}, ...} | nil, err.
function Resolver:lookup_ns(name, ctx)
    check_string(name, 1, "lookup_ns")
    check_ctx(ctx, "lookup_ns")
    if not valid_name(name) then return nil, dns_error("badname", name) end
    local hosts, err = self:_ask("ns", name, 0, 0, ctx)
    if not hosts then return nil, err end
    for i, h in ipairs(hosts) do hosts[i] = {host = h} end
    return hosts
end

-- Go's fallback when /etc/services lacks a name.
local SERVICES = {
    tcp = {ftp = 21, ftps = 990, gopher = 70, http = 80, https = 443, imap2 = 143, imap3 = 220,
           imaps = 993, pop3 = 110, pop3s = 995, smtp = 25, submissions = 465, ssh = 22,
           telnet = 23},
    udp = {domain = 53},
}
local PORT_NETS = {[""] = "", ip = "", tcp = "tcp", tcp4 = "tcp", tcp6 = "tcp",
                   udp = "udp", udp4 = "udp", udp6 = "udp"}

--- resolver:lookup_port(network, service [, ctx]) -> port | nil, err: a
-- port number ("80") or a service name ("http") from /etc/services for
-- network "tcp", "udp" (or their 4/6 forms; "" tries both).
function Resolver:lookup_port(network, service, ctx)
    check_string(service, 2, "lookup_port")
    check_ctx(ctx, "lookup_port")
    if service:match("^%d+$") then
        local n = tonumber(service)
        if n > 65535 then return nil, errors.address("lookup", network, service, "invalid port") end
        return n
    end
    local proto = PORT_NETS[network]
    if not proto then return nil, errors.unknown_network("lookup", network) end
    local name = service:lower()
    for _, p in ipairs(proto == "" and {"tcp", "udp"} or {proto}) do
        local port = dns_port(name, p) or SERVICES[p][name]
        if port then return port end
    end
    return nil, dns_error("unknown_port", (network == "" and "ip" or network) .. "/" .. service)
end

---------------------------------------------------------------------------
-- The default resolver
---------------------------------------------------------------------------
local default

-- net.dns.default: made on first use (and again after a close).
local function get_default()
    if not default or default._closed == true then
        local o = resolv_options()
        default = assert(M.resolver{timeout = o.timeout, attempts = o.attempts})
    end
    return default
end

--- stats() -> {default = resolver stats | nil, system = {threads, busy,
-- queued, waiting, abandoned}}: for leak checks.
function M.stats()
    return {default = default and not default._closed and default:stats() or nil,
            system = core.dns_sys_stats()}
end

-- net.dns.default may be replaced, like Go's net.DefaultResolver: with a
-- resolver (or any object with the lookup_* methods), or nil to go back to
-- one made from /etc/resolv.conf on next use.
return setmetatable(M, {
    __index = function(_, k)
        if k == "default" then return get_default() end
    end,
    __newindex = function(t, k, v)
        if k ~= "default" then return rawset(t, k, v) end
        if v ~= nil and (type(v) ~= "table" or type(v.lookup_ip) ~= "function") then
            error("net.dns.default must be a resolver (an object with lookup_ip)", 2)
        end
        default = v
    end,
})

--- coronet.stream: dialing and listening for stream networks ("tcp",
-- "tcp4", "tcp6", "unix"): address parsing, options, `net.dialer` and
-- `net.listen_config`. The conns and listeners themselves are C userdata
-- (csrc/conn.c, csrc/listener.c).
local core = require "coronet.core"
local errors = require "coronet.errors"
local sched = require "coronet.sched"

local ip = core.ip
local now = core.now
local M = {}

---------------------------------------------------------------------------
-- Address objects (net.addr)
---------------------------------------------------------------------------
local Addr = {}
Addr.__index = Addr
Addr.__name = "coronet.addr"

function Addr.__tostring(a)
    if a.name then return a.name end
    local host = tostring(a.ip)
    if a.ip:is_v6() then return "[" .. host .. "]:" .. a.port end
    return host .. ":" .. a.port
end

function Addr.__eq(a, b)
    return a.network == b.network and a.name == b.name and a.ip == b.ip and a.port == b.port
end
core.addr_init(Addr)

--- addr: an address object from its fields ({network, ip, port} or
-- {network = "unix", name}); `ip` may be a string.
function M.addr(t)
    local a = {network = t.network, name = t.name, port = t.port, zone = t.zone}
    if t.ip then a.ip = type(t.ip) == "string" and assert(ip.parse(t.ip)) or t.ip end
    return setmetatable(a, Addr)
end

---------------------------------------------------------------------------
-- Networks and addresses
---------------------------------------------------------------------------
local NETWORKS = {tcp = "ip", tcp4 = "4", tcp6 = "6", unix = "unix",
                  udp = "ip", udp4 = "4", udp6 = "6", unixgram = "unix"}
local PACKET = {udp = true, udp4 = true, udp6 = true, unixgram = true}

local function parse_port(op, net, address, port)
    local n = port:match("^%d+$") and tonumber(port)
    if not n or n > 65535 then
        return nil, errors.address(op, net, address, "invalid port")
    end
    return n
end

-- /etc/hosts, read once: name -> {addr, ...}. Names other than literals
-- and these resolve through net.dns once it exists (see docs/stream.md).
local hosts
local function hosts_lookup(name)
    if not hosts then
        hosts = {}
        local f = io.open("/etc/hosts")
        if f then
            for line in f:lines() do
                local fields = {}
                for w in line:gsub("#.*", ""):gmatch("%S+") do fields[#fields + 1] = w end
                local a = fields[1] and ip.parse(fields[1])
                for i = 2, a and #fields or 0 do
                    local key = fields[i]:lower()
                    hosts[key] = hosts[key] or {}
                    table.insert(hosts[key], a)
                end
            end
            f:close()
        end
    end
    return hosts[name:lower()]
end

local function family_ok(a, fam)
    if fam == "ip" then return true end
    if fam == "4" then return a:is_v4() or a:is_4in6() end
    return a:is_v6() and not a:is_4in6()
end

-- The candidate IPs for host on family fam ("ip", "4", "6"), in dial order.
local function resolve(op, net, address, host, fam, passive)
    if host == "" then
        if passive then return {} end
        host = "localhost"
    end
    local a = ip.parse(host)
    local cands
    if a then
        cands = {a}
    elseif host:lower() == "localhost" then
        cands = {ip.parse("::1"), ip.parse("127.0.0.1")}
    else
        cands = hosts_lookup(host)
        if not cands and M.resolver then
            local err
            cands, err = M.resolver(host, fam)
            if not cands then return nil, err end
        end
        if not cands then
            return nil, errors.new{op = op, net = net, addr = address, code = "nxdomain",
                err = setmetatable({code = "nxdomain", msg = "lookup " .. host .. ": no such host",
                                    timeout = false}, errors.Error)}
        end
    end
    local out = {}
    for _, c in ipairs(cands) do
        if family_ok(c, fam) then out[#out + 1] = c:is_4in6() and c:unmap() or c end
    end
    if #out == 0 then
        return nil, errors.address(op, net, address, "no suitable address found")
    end
    return out
end

-- Parse network and address for op; returns a table describing the
-- target: {net, fam, ips = {...}, port} or {net, path}.
local function target(op, network, address, passive)
    local fam = NETWORKS[network]
    if not fam then return nil, errors.unknown_network(op, network) end
    if type(address) ~= "string" then
        error("bad argument #2 to '" .. op .. "' (string expected, got " .. type(address) .. ")", 3)
    end
    if fam == "unix" then
        if address == "" then return nil, errors.address(op, network, address, "empty unix address") end
        return {net = network, path = address}
    end
    local host, port = ip.split_host_port(address)
    if not host then return nil, errors.address(op, network, nil, port) end
    local p, err = parse_port(op, network, address, port)
    if not p then return nil, err end
    local ips
    ips, err = resolve(op, network, address, host, fam, passive)
    if not ips then return nil, err end
    return {net = network, fam = fam, ips = ips, port = p, host = host}
end

local function famof(a) return a:is_v4() and "4" or "6" end

--- _target(op, network, address, passive) -> {net, fam, ips, port, host}
-- | {net, path} | nil, err: network and address parsed and resolved, for
-- coronet.packet. `passive` (listening) keeps an empty host empty.
M._target = target
M._famof = famof

---------------------------------------------------------------------------
-- Dialer
---------------------------------------------------------------------------
local Dialer = {}
Dialer.__index = Dialer
Dialer.__name = "coronet.dialer"

local DIAL_OPTS = {timeout = true, deadline = true, keepalive = true, local_addr = true,
                   fallback_delay = true, resolver = true, control = true}

local function check_opts(opts, known, what)
    for k in pairs(opts) do
        if not known[k] then error(what .. ": unknown option '" .. tostring(k) .. "'", 3) end
    end
end

--- dialer: a reusable dial configuration (Go's net.Dialer):
-- {timeout, deadline, keepalive, local_addr, fallback_delay, resolver, control}.
function M.dialer(opts)
    opts = opts or {}
    check_opts(opts, DIAL_OPTS, "dialer")
    local d = {}
    for k, v in pairs(opts) do d[k] = v end
    return setmetatable(d, Dialer)
end

local function dial_deadline(d)
    local dl = d.deadline
    if d.timeout and d.timeout > 0 then
        local t = now() + d.timeout
        if not dl or t < dl then dl = t end
    end
    return dl or 0
end

-- One connection attempt to ip/port (or a unix path); closes on failure.
local function dial_one(d, tg, a, deadline, ctx)
    local c, err = core.conn_socket(tg.net, a and famof(a) or "unix")
    if not c then return nil, err end
    local ok = true
    if d.control then
        local addr = a and ip.join_host_port(tostring(a), tg.port) or tg.path
        ok, err = d.control(c:fd(), tg.net, addr)
        if ok == nil and err ~= nil then c:close() return nil, err end
    end
    if d.local_addr then
        local la = d.local_addr
        if type(la) == "string" then
            local host, port = ip.split_host_port(la)
            la = {ip = host and ip.parse(host), port = tonumber(port) or 0, name = la}
        end
        if a then ok, err = c:_bind(la.ip, la.port or 0) else ok, err = c:_bind(la.name) end
        if not ok then c:close() return nil, err end
    end
    if a then ok, err = c:_connect(deadline, a, tg.port, ctx) else ok, err = c:_connect(deadline, tg.path, ctx) end
    if not ok then c:close() return nil, err end
    if a then
        local ka = d.keepalive or 15
        if ka > 0 then c:set_keepalive_period(ka) elseif ka < 0 then c:set_keepalive(false) end
    end
    return c
end

local function is_ctx(v)
    local mt = getmetatable(v)
    return mt ~= nil and mt.__name == "coronet.context"
end

local function ctx_fail(op, net, address, ctx)
    return nil, errors.new{op = op, net = net, addr = address, err = ctx:err()}
end

--- dialer:dial(network, address [, ctx]) -> conn | nil, err: connect to
-- address ("host:port", "[v6]:port", a unix path or "@abstract"). The
-- candidate addresses are tried in order until one connects (the first
-- error is returned); timeout, deadline and ctx bound the whole dial.
function Dialer:dial(network, address, ctx)
    if not sched.current() then return sched.block(Dialer.dial, self, network, address, ctx) end
    if ctx and ctx:err() then return ctx_fail("dial", network, address, ctx) end
    if PACKET[network] then return require("coronet.packet").dial(self, network, address, ctx) end
    local tg, err = target("dial", network, address, false)
    if not tg then return nil, err end
    local deadline = dial_deadline(self)
    if tg.path then return dial_one(self, tg, nil, deadline, ctx) end
    local first
    for _, a in ipairs(tg.ips) do
        local c, e = dial_one(self, tg, a, deadline, ctx)
        if c then return c end
        first = first or e
        if e.code == "timeout" or e.code == "canceled" then break end
    end
    return nil, first
end

--- dial(network, address [, opts] [, ctx]) -> conn | nil, err:
-- `net.dialer(opts):dial(network, address, ctx)`.
function M.dial(network, address, opts, ctx)
    if is_ctx(opts) then opts, ctx = nil, opts end
    return M.dialer(opts):dial(network, address, ctx)
end

---------------------------------------------------------------------------
-- Listen config
---------------------------------------------------------------------------
local ListenConfig = {}
ListenConfig.__index = ListenConfig
ListenConfig.__name = "coronet.listen_config"

local LISTEN_OPTS = {backlog = true, reuseaddr = true, reuseport = true, control = true,
                     keepalive = true, unlink_on_close = true}

--- listen_config: a reusable listen configuration (Go's net.ListenConfig):
-- {backlog, reuseaddr (default true for TCP), reuseport, control,
-- keepalive (accepted conns; default 15 s, -1 off), unlink_on_close}.
function M.listen_config(opts)
    opts = opts or {}
    check_opts(opts, LISTEN_OPTS, "listen_config")
    local lc = {}
    for k, v in pairs(opts) do lc[k] = v end
    return setmetatable(lc, ListenConfig)
end

local function listen_family(tg)
    if #tg.ips > 0 then return tg.ips[1], famof(tg.ips[1]) end
    if tg.fam == "4" then return ip.parse("0.0.0.0"), "4" end
    return ip.parse("::"), "6"        -- "tcp" with no host: dual-stack [::]
end

--- listen_config:listen(network, address [, ctx]) -> listener | nil, err.
-- ":0" picks a free port; "" or no host listens on every address (both
-- families for "tcp"); a unix path is removed on close if we created it.
-- Listening never blocks: ctx only matters if it has already ended.
function ListenConfig:listen(network, address, ctx)
    if ctx and ctx:err() then return ctx_fail("listen", network, address, ctx) end
    if PACKET[network] then
        return nil, errors.unknown_network("listen", network .. " (use listen_packet)")
    end
    local tg, err = target("listen", network, address, true)
    if not tg then return nil, err end
    local a, fam = nil, "unix"
    if not tg.path then a, fam = listen_family(tg) end
    local ln
    ln, err = core.listener_socket(tg.net, fam)
    if not ln then return nil, err end
    local fd = ln:fd()
    if fam == "6" then core.setsockopt(fd, "IPPROTO_IPV6", "IPV6_V6ONLY", tg.fam == "6") end
    if self.reuseaddr == false and a then core.setsockopt(fd, "SOL_SOCKET", "SO_REUSEADDR", 0) end
    if self.reuseport then core.setsockopt(fd, "SOL_SOCKET", "SO_REUSEPORT", 1) end
    local ok = true
    if self.control then
        ok, err = self.control(fd, tg.net, a and ip.join_host_port(tostring(a), tg.port) or tg.path)
        if ok == nil and err ~= nil then ln:close() return nil, err end
    end
    if a then ok, err = ln:_bind(a, tg.port) else ok, err = ln:_bind(tg.path) end
    if not ok then ln:close() return nil, err end
    local unlink = tg.path and tg.path:sub(1, 1) ~= "@" and self.unlink_on_close ~= false
    ok, err = ln:_listen(self.backlog, unlink, self.keepalive)
    if not ok then ln:close() return nil, err end
    return ln
end

--- listen_config:listen_packet(network, address [, ctx]) -> packet conn
-- | nil, err: "udp", "udp4", "udp6" or "unixgram" (see coronet.packet).
function ListenConfig:listen_packet(network, address, ctx)
    if ctx and ctx:err() then return ctx_fail("listen", network, address, ctx) end
    return require("coronet.packet").listen_packet(self, network, address, ctx)
end

--- listen_packet(network, address [, opts] [, ctx]) -> packet conn | nil, err.
function M.listen_packet(network, address, opts, ctx)
    if is_ctx(opts) then opts, ctx = nil, opts end
    return M.listen_config(opts):listen_packet(network, address, ctx)
end

--- listen(network, address [, opts] [, ctx]) -> listener | nil, err.
function M.listen(network, address, opts, ctx)
    if is_ctx(opts) then opts, ctx = nil, opts end
    return M.listen_config(opts):listen(network, address, ctx)
end

---------------------------------------------------------------------------
-- Inherited descriptors
---------------------------------------------------------------------------

--- file_conn(fd) -> conn | nil, err: a conn over a dup of fd (caller keeps fd).
M.file_conn = core.file_conn
--- file_listener(fd) -> listener | nil, err: a listener over a dup of fd.
M.file_listener = core.file_listener

--- listeners_from_env() -> {listener, ...}: systemd socket activation
-- (LISTEN_PID must be this process, LISTEN_FDS the count from fd 3).
-- Returns an empty table when the variables are absent or not for us.
function M.listeners_from_env()
    local pid, n = tonumber(os.getenv("LISTEN_PID")), tonumber(os.getenv("LISTEN_FDS"))
    local out = {}
    if not pid or not n or pid ~= core.getpid() then return out end
    for fd = 3, 3 + n - 1 do
        local ln, err = core.file_listener(fd)
        if not ln then return nil, err end
        out[#out + 1] = ln
    end
    return out
end

return M

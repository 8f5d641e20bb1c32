--- coronet.stream: dialing and listening for stream networks ("tcp",
-- "tcp4", "tcp6", "unix"): address parsing, options, `net.dialer` and
-- `net.listen_config`. The conns and listeners themselves are C userdata
-- (csrc/conn.c, csrc/listener.c).
local core = require "coronet.core"
local errors = require "coronet.errors"
local sched = require "coronet.sched"

local ip = core.ip
local now = core.now
local KIND = sched.KIND
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

-- A numeric port, or a service name ("http") looked up for network.
local function parse_port(op, net, address, port)
    local n = port:match("^%d+$") and tonumber(port)
    if not n and port:match("^[%a][%w%-_]*$") then
        n = require("coronet.dns").Resolver.lookup_port(nil, net, port)
    end
    if not n or n > 65535 then
        return nil, errors.address(op, net, address, "invalid port")
    end
    return n
end

local function family_ok(a, fam)
    if fam == "ip" then return true end
    if fam == "4" then return a:is_v4() or a:is_4in6() end
    return a:is_v6() and not a:is_4in6()
end

local LOOKUP_NET = {ip = "ip", ["4"] = "ip4", ["6"] = "ip6"}

-- Look host up through resolver (a net.dns resolver, or any object with
-- lookup_ip(network, host, ctx)); deadline (absolute, 0: none) and ctx
-- bound the lookup. Returns {Addr, ...} or nil, the lookup's error.
local function lookup(resolver, host, fam, deadline, ctx)
    local r = resolver or require("coronet.dns").default
    local network = LOOKUP_NET[fam]
    if r._lookup_ip then return r:_lookup_ip(network, host, deadline, ctx) end
    if deadline > 0 then
        ctx = require("coronet.context").with_deadline(ctx or require("coronet.context").background(),
                                                       deadline)
    end
    local list, err = r:lookup_ip(network, host, ctx)
    if not list then return nil, err end
    local out = {}
    for i, a in ipairs(list) do out[i] = type(a) == "string" and ip.parse(a) or a end
    return out
end

-- The candidate IPs for host on family fam ("ip", "4", "6"), in the
-- resolver's order. Literals and "localhost" need no resolver.
local function resolve(op, net, address, host, fam, passive, resolver, deadline, ctx)
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
        local err
        cands, err = lookup(resolver, host, fam, deadline or 0, ctx)
        if not cands then return nil, errors.new{op = op, net = net, err = err} end
    end
    local out = {}
    for _, c in ipairs(cands) do
        if family_ok(c, fam) then out[#out + 1] = c:is_4in6() and c:unmap() or c end
    end
    if passive then                  -- Go listens on a name's first IPv4 address
        local v4 = {}
        for _, c in ipairs(out) do if c:is_v4() then v4[#v4 + 1] = c end end
        for _, c in ipairs(out) do if not c:is_v4() then v4[#v4 + 1] = c end end
        out = v4
    end
    if #out == 0 then
        return nil, errors.address(op, net, address, "no suitable address found")
    end
    return out
end

-- Parse network and address for op; returns a table describing the
-- target: {net, fam, ips = {...}, port} or {net, path}.
local function target(op, network, address, passive, resolver, deadline, ctx)
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
    ips, err = resolve(op, network, address, host, fam, passive, resolver, deadline, ctx)
    if not ips then return nil, err end
    return {net = network, fam = fam, ips = ips, port = p, host = host}
end

local function famof(a) return a:is_v4() and "4" or "6" end

--- _target(op, network, address, passive [, resolver, deadline, ctx]) ->
-- {net, fam, ips, port, host} | {net, path} | nil, err: network and
-- address parsed and resolved, for coronet.packet. `passive` (listening)
-- keeps an empty host empty; names resolve through resolver (default:
-- net.dns.default), bounded by deadline (absolute, 0: none) and ctx.
M._target = target
M._famof = famof

---------------------------------------------------------------------------
-- Dialer
---------------------------------------------------------------------------
local Dialer = {}
Dialer.__index = Dialer
Dialer.__name = "coronet.dialer"

local DIAL_OPTS = {timeout = true, deadline = true, keepalive = true, local_addr = true,
                   fallback_delay = true, resolver = true, control = true, notsent_lowat = true}

-- new_config(opts, known, what, mt) -> a copy of opts (nil: {}) with
-- metatable mt; an option not in known raises. Constructors call it in
-- tail position, so error level 2 blames the constructor's caller.
local function new_config(opts, known, what, mt)
    opts = opts or {}
    for k in pairs(opts) do
        if not known[k] then error(what .. ": unknown option '" .. tostring(k) .. "'", 2) end
    end
    local c = {}
    for k, v in pairs(opts) do c[k] = v end
    return setmetatable(c, mt)
end

--- dialer: a reusable dial configuration (Go's net.Dialer):
-- {timeout, deadline, keepalive, local_addr, fallback_delay, resolver, control,
-- notsent_lowat}.
function M.dialer(opts)
    return new_config(opts, DIAL_OPTS, "dialer", Dialer)
end

-- The earlier of deadline and now + timeout; 0 when both are nil (no
-- bound). A bound <= 0 (a spent budget, Go's negative timeout) is long
-- past, as for every other deadline: a tiny positive time, never 0.
local function dial_deadline(d)
    local dl = d.deadline
    if dl and dl <= 0 then dl = 1e-9 end
    if d.timeout then
        local t = d.timeout > 0 and now() + d.timeout or 1e-9
        if not dl or t < dl then dl = t end
    end
    return dl or 0
end
M._dial_deadline = dial_deadline

-- The dial option local_addr as bind arguments: (ip, port) for IP
-- networks, (path) for unix; nil, err when it is malformed.
local function local_bind_args(tg, la)
    if not tg.ips then return type(la) == "string" and la or la.name end
    if type(la) == "string" then
        local host, port = ip.split_host_port(la)
        if not host then return nil, errors.address("dial", tg.net, la, port) end
        local p = port:match("^%d+$") and tonumber(port)
        local a = host == "" and ip.parse(tg.ips[1]:is_v4() and "0.0.0.0" or "::") or ip.parse(host)
        if not a or not p or p > 65535 then
            return nil, errors.address("dial", tg.net, la, a and "invalid port" or "bad local address")
        end
        return a, p
    end
    local a = type(la.ip) == "string" and ip.parse(la.ip) or la.ip
    if not a then return nil, errors.address("dial", tg.net, tostring(la), "bad local address") end
    return a, la.port or 0
end

-- One connection attempt to ip/port (or a unix path); closes on failure.
local function dial_one(d, tg, a, deadline, ctx)
    local c, err = core.conn_socket(tg.net, a and famof(a) or "unix", d.notsent_lowat)
    if not c then return nil, err end
    core.track(c)                                 -- for net.debug.conns()
    local ok
    if d.control then
        local addr = a and ip.join_host_port(tostring(a), tg.port) or tg.path
        ok, err = d.control(c:fd(), tg.net, addr)
        if ok == nil and err ~= nil then c:close() return nil, err end
    end
    if d.local_addr then
        local la, port = local_bind_args(tg, d.local_addr)
        if la == nil then c:close() return nil, port end
        if a then ok, err = c:_bind(la, port) else ok, err = c:_bind(la) end
        if not ok then c:close() return nil, err end
    end
    if a then ok, err = c:_connect(deadline, a, tg.port, ctx) else ok, err = c:_connect(deadline, tg.path, ctx) end
    if not ok then c:close() return nil, err end
    if a then
        local ka = d.keepalive
        if not ka or ka == 0 then ka = 15 end        -- Go: zero means the default
        if ka > 0 then c:set_keepalive_period(ka) else c:set_keepalive(false) end
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

-- Go's partialDeadline: with n addresses left to try in turn, each gets
-- an equal share of the time remaining (at least 2 s when there is that
-- much), so one unresponsive address can't use up the whole dial.
local function partial_deadline(deadline, n)
    if deadline <= 0 or n <= 1 then return deadline end
    local t = now()
    local left = deadline - t
    local share = left / n
    if share < 2 then share = left < 2 and left or 2 end
    return t + share
end

-- Try the addresses one after another (fallback_delay < 0, or a single
-- address); the first error is returned.
local function dial_serial(d, tg, ips, deadline, ctx)
    local first
    for i, a in ipairs(ips) do
        local c, e = dial_one(d, tg, a, partial_deadline(deadline, #ips - i + 1), ctx)
        if c then return c end
        first = first or e
        if e.code == "canceled" or (e.code == "timeout" and deadline > 0 and now() >= deadline) then
            break
        end
    end
    return nil, first
end

-- RFC 8305's order: alternate families, starting with the first address's.
local function interleave(ips)
    local fam1 = famof(ips[1])
    local a, b, out = {}, {}, {}
    for _, x in ipairs(ips) do
        if famof(x) == fam1 then a[#a + 1] = x else b[#b + 1] = x end
    end
    for i = 1, math.max(#a, #b) do
        out[#out + 1] = a[i]
        out[#out + 1] = b[i]
    end
    return out
end

-- Happy Eyeballs (RFC 8305): start an attempt, then the next one when it
-- fails or `delay` passes without a winner, and so on, each in its own
-- task; the first conn wins, the others are cancelled and closed.
local function dial_race(d, tg, ips, deadline, ctx)
    local context = require "coronet.context"
    local order = interleave(ips)
    local delay = (d.fallback_delay or 0) > 0 and d.fallback_delay or 0.3
    local me = sched.current()
    local rctx, cancel = context.with_cancel(ctx or context.background())
    local st = {inflight = 0, errs = {}}
    local function attempt(i)
        local c, e = dial_one(d, tg, order[i], deadline, rctx)
        st.inflight = st.inflight - 1
        if c and (st.winner or st.finished) then c:close()   -- lost, or nobody waits
        elseif c then st.winner = c
        else st.errs[i] = e end
        if not st.finished then sched.wake(me) end
    end
    local started, last = 0, 0
    local cerr                                     -- ctx ended, or the task was canceled
    while not st.winner do
        local t = now()
        local expired = deadline > 0 and t >= deadline
        if started < #order and not expired and (st.inflight == 0 or t >= last + delay) then
            started, last = started + 1, t
            st.inflight = st.inflight + 1
            sched.go(attempt, started)
        elseif st.inflight == 0 then
            break
        else
            local r = sched.park_ctx(started < #order and last + delay or nil, KIND.connect, ctx)
            if r == sched.WAKE.canceled then
                cerr = sched.cancel_err(r, ctx)
                break
            end
        end
    end
    st.finished = true
    cancel()
    if st.winner then return st.winner end
    if ctx and ctx:err() then return ctx_fail("dial", tg.net, tg.address, ctx) end
    if cerr then return nil, errors.new{op = "dial", net = tg.net, addr = tg.address, err = cerr} end
    for i = 1, started do
        if st.errs[i] then return nil, st.errs[i] end
    end
    return nil, errors.new{op = "dial", net = tg.net, addr = tg.address, err = errors.ErrDeadlineExceeded}
end

-- With local_addr set, only addresses of its family can be dialed (Go).
local function local_family(d, ips)
    local la = d.local_addr
    local a = type(la) == "table" and la.ip or nil
    if type(la) == "string" then
        local host = ip.split_host_port(la)
        a = host and ip.parse(host)
    end
    if type(a) == "string" then a = ip.parse(a) end
    if not a then return ips end
    local out = {}
    for _, x in ipairs(ips) do
        if famof(x) == famof(a:is_4in6() and a:unmap() or a) then out[#out + 1] = x end
    end
    return #out > 0 and out or ips
end

--- dialer:dial(network, address [, ctx]) -> conn | nil, err: connect to
-- address ("host:port", "[v6]:port", a unix path or "@abstract"). A host
-- name resolves through the dialer's resolver (default net.dns.default);
-- with addresses of both families the attempts race (Happy Eyeballs, RFC
-- 8305): families interleaved, the next attempt started when one fails or
-- fallback_delay (default 0.3 s; negative: one after another) passes, the
-- first conn wins and the others are closed. timeout, deadline and ctx
-- bound the whole dial, lookup included; when every attempt fails, the
-- first attempt's error is returned.
function Dialer:dial(network, address, ctx)
    if not sched.current() then return sched.block(Dialer.dial, self, network, address, ctx) end
    if ctx and ctx:err() then return ctx_fail("dial", network, address, ctx) end
    local deadline = dial_deadline(self)
    if deadline > 0 and deadline <= now() then
        return nil, errors.new{op = "dial", net = network, addr = address, err = errors.ErrDeadlineExceeded}
    end
    if PACKET[network] then return require("coronet.packet").dial(self, network, address, ctx) end
    local tg, err = target("dial", network, address, false, self.resolver, deadline, ctx)
    if not tg then return nil, err end
    if tg.path then return dial_one(self, tg, nil, deadline, ctx) end
    tg.address = address
    local ips = local_family(self, tg.ips)
    if #ips == 1 or (self.fallback_delay or 0) < 0 then return dial_serial(self, tg, ips, deadline, ctx) end
    return dial_race(self, tg, ips, deadline, ctx)
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
                     keepalive = true, unlink_on_close = true, notsent_lowat = true}

--- listen_config: a reusable listen configuration (Go's net.ListenConfig):
-- {backlog, reuseaddr (default true for TCP), reuseport, control,
-- keepalive (accepted conns; default 15 s, -1 off), unlink_on_close,
-- notsent_lowat (accepted TCP conns' TCP_NOTSENT_LOWAT; default 64 KiB,
-- 0 the kernel's)}.
function M.listen_config(opts)
    return new_config(opts, LISTEN_OPTS, "listen_config", ListenConfig)
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
    local ok
    if self.control then
        ok, err = self.control(fd, tg.net, a and ip.join_host_port(tostring(a), tg.port) or tg.path)
        if ok == nil and err ~= nil then ln:close() return nil, err end
    end
    if a then ok, err = ln:_bind(a, tg.port) else ok, err = ln:_bind(tg.path) end
    if not ok then ln:close() return nil, err end
    local unlink = tg.path and tg.path:sub(1, 1) ~= "@" and self.unlink_on_close ~= false
    ok, err = ln:_listen(self.backlog, unlink, self.keepalive, self.notsent_lowat)
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
function M.file_conn(fd)
    local c, err = core.file_conn(fd)
    if c then core.track(c) end                   -- for net.debug.conns()
    return c, err
end
--- file_listener(fd) -> listener | nil, err: a listener over a dup of fd.
M.file_listener = core.file_listener

--- listeners_from_env() -> {listener, ..., names = {name, ...}}: systemd
-- socket activation (LISTEN_PID must be this process, LISTEN_FDS the
-- count from fd 3; LISTEN_FDNAMES, `:`-separated, gives `names`, default
-- "unknown" each). As go-systemd does, the variables are removed from the
-- environment once read (a child started later does not see them) and
-- the inherited fds are closed once the listeners hold their own
-- close-on-exec copies. Returns an empty table when the variables are
-- absent or not for us.
-- @treturn[1] table the listeners, in fd order, with `names`
-- @treturn[2] nil
-- @treturn[2] error an fd that is not a listening stream socket
function M.listeners_from_env()
    local pid, n = tonumber(os.getenv("LISTEN_PID")), tonumber(os.getenv("LISTEN_FDS"))
    local fdnames = os.getenv("LISTEN_FDNAMES")
    for _, v in ipairs{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} do core.unsetenv(v) end
    local out = {names = {}}
    if not pid or not n or pid ~= core.getpid() then return out end
    local names = {}
    for name in (fdnames or ""):gmatch("[^:]*") do names[#names + 1] = name end
    for fd = 3, 3 + n - 1 do
        local ln, err = core.file_listener(fd)
        if not ln then
            for i = 1, #out do out[i]:close() end
            return nil, err
        end
        out[#out + 1] = ln
        out.names[#out] = names[#out] ~= nil and names[#out] ~= "" and names[#out] or "unknown"
    end
    for fd = 3, 3 + n - 1 do core.close_fd(fd) end
    return out
end

-- c:tcp_info(): the kernel's view of a TCP conn (net.debug.tcp_info), on
-- plain and TLS conns.
local function tcp_info(c) return require("coronet.debug").tcp_info(c) end
for _, name in ipairs{"coronet.conn", "coronet.tls_conn"} do
    local mt = debug.getregistry()[name]
    if type(mt) == "table" and type(mt.__index) == "table" then mt.__index.tcp_info = tcp_info end
end

return M

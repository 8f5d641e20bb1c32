--- coronet.packet: packet conns ("udp", "udp4", "udp6", "unixgram"), Go's
-- PacketConn. `net.listen_packet` and `net.dial` reach this module through
-- coronet.stream; the conns themselves are C userdata (csrc/packet.c), so
-- read_from/write_to and the batch calls have no Lua between the user and
-- the syscall. This module only builds the sockets and resolves the host
-- names write_to is given. See docs/packet.md.
local core = require "coronet.core"
local errors = require "coronet.errors"
local stream = require "coronet.stream"

local ip = core.ip
local setsockopt = core.setsockopt
local ipairs, type, tostring = ipairs, type, tostring

local M = {}

local PACKET = {udp = true, udp4 = true, udp6 = true, unixgram = true}

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- The socket family ("4", "6" or "unix") and bind address for listening
-- on tg: no host listens on every address, both families for "udp".
local function listen_family(tg)
    if tg.path then return nil, "unix" end
    if #tg.ips > 0 then return tg.ips[1], stream._famof(tg.ips[1]) end
    if tg.fam == "4" then return ip.parse("0.0.0.0"), "4" end
    return ip.parse("::"), "6"
end

-- Run the user's control(fd, network, address) before bind/connect.
local function control(fn, pc, tg, a)
    if not fn then return true end
    local ok, err = fn(pc:fd(), tg.net, a and ip.join_host_port(tostring(a), tg.port) or tg.path)
    if ok == nil and err ~= nil then return nil, err end
    return true
end

-- The dial option local_addr as bind arguments: an address object, a
-- "host:port" string, or a unixgram path.
local function local_bind(pc, la, unix, fam)
    if unix then
        return pc:_bind(type(la) == "string" and la or la.name)
    end
    local a, port = la.ip, la.port or 0
    if type(la) == "string" then
        local host, p = ip.split_host_port(la)
        if not host then return nil, errors.address("dial", nil, la, p) end
        a, port = host ~= "" and ip.parse(host), tonumber(p) or 0
        if host == "" then a = ip.parse(fam == "4" and "0.0.0.0" or "::") end
    elseif type(a) == "string" then
        a = ip.parse(a)
    end
    if not a then return nil, errors.address("dial", nil, tostring(la), "bad local address") end
    return pc:_bind(a, port)
end

---------------------------------------------------------------------------
-- Listening
---------------------------------------------------------------------------

--- listen_packet(listen_config, network, address [, ctx]) -> pc | nil, err:
-- a packet conn bound to address (":0" picks a port; no host: every
-- address, both families for "udp"; a unixgram path or "@abstract").
-- Options from the listen config: reuseaddr, reuseport, control, and
-- unlink_on_close (unixgram paths; default true). Never blocks.
function M.listen_packet(lc, network, address, ctx)
    local _ = ctx                         -- nothing here can block
    if not PACKET[network] then
        return nil, errors.unknown_network("listen", tostring(network) .. " (not a packet network)")
    end
    local tg, err = stream._target("listen", network, address, true)
    if not tg then return nil, err end
    local a, fam = listen_family(tg)
    local pc
    pc, err = core.packet_socket(tg.net, fam, false)
    if not pc then return nil, err end
    local fd = pc:fd()
    if fam == "6" then setsockopt(fd, "IPPROTO_IPV6", "IPV6_V6ONLY", tg.fam == "6") end
    if lc.reuseaddr then setsockopt(fd, "SOL_SOCKET", "SO_REUSEADDR", 1) end
    if lc.reuseport then setsockopt(fd, "SOL_SOCKET", "SO_REUSEPORT", 1) end
    local ok
    ok, err = control(lc.control, pc, tg, a)
    if ok then
        if a then
            ok, err = pc:_bind(a, tg.port)
        else
            local unlink = tg.path:sub(1, 1) ~= "@" and lc.unlink_on_close ~= false
            ok, err = pc:_bind(tg.path, unlink)
        end
    end
    if not ok then pc:close() return nil, err end
    pc:_ready()
    return pc
end

---------------------------------------------------------------------------
-- Dialing
---------------------------------------------------------------------------

-- One connected socket to a (an Addr) or tg.path; closes it on failure.
local function dial_one(d, tg, a)
    local fam = a and stream._famof(a) or "unix"
    local pc, err = core.packet_socket(tg.net, fam, true)
    if not pc then return nil, err end
    local ok
    ok, err = control(d.control, pc, tg, a)
    if ok and d.local_addr then
        ok, err = local_bind(pc, d.local_addr, not a, fam)
    elseif ok and not a then
        ok, err = pc:_autobind()          -- so the peer can answer
    end
    if ok then
        if a then ok, err = pc:_connect(a, tg.port) else ok, err = pc:_connect(tg.path) end
    end
    if not ok then pc:close() return nil, err end
    return pc
end

--- dial(dialer, network, address [, ctx]) -> pc | nil, err: a connected
-- packet conn (read/write; write_to refuses). Candidates are tried in
-- order until one connects. A unixgram conn without local_addr is bound
-- to an abstract name the kernel picks, so the peer can answer. Options:
-- local_addr, control, resolver; timeout, deadline and ctx bound the name
-- lookup (a datagram connect itself never blocks).
function M.dial(d, network, address, ctx)
    local tg, err = stream._target("dial", network, address, false, d.resolver,
                                   stream._dial_deadline(d), ctx)
    if not tg then return nil, err end
    if tg.path then return dial_one(d, tg, nil) end
    local first
    for _, a in ipairs(tg.ips) do
        local pc, e = dial_one(d, tg, a)
        if pc then return pc end
        first = first or e
    end
    return nil, first
end

---------------------------------------------------------------------------
-- Host names for write_to
---------------------------------------------------------------------------

-- write_to("host:port") with a host that is not an IP literal: resolve it
-- (literals never get here; C parses and caches them). sockfam is the
-- socket's family: a "4" socket can only reach v4 addresses. The write
-- deadline (absolute, 0: none) and ctx bound the lookup.
core.packet_init(function(network, address, sockfam, deadline, ctx)
    local tg, err = stream._target("write", network, address, false, nil, deadline, ctx)
    if not tg then return nil, err end
    for _, a in ipairs(tg.ips or {}) do
        if sockfam == "6" or a:is_v4() then
            return stream.addr{network = network, ip = a, port = tg.port}
        end
    end
    return nil, errors.address("write", network, address, "no suitable address found")
end)

--- file_packet_conn(fd) -> pc | nil, err: a packet conn over a dup of an
-- inherited datagram socket (the caller keeps fd). Also `net.packet.file_packet_conn`.
M.file_packet_conn = core.file_packet_conn

return M

--- spec/dnsmasq.lua: a dnsmasq on a random loopback port serving the DNS
-- fixtures the resolver specs use, started as a child process and stopped
-- by its PID.
--   local D = dofile("spec/dnsmasq.lua")
--   local srv = D.start()        -- raises with dnsmasq's log if it can't start
--   ... srv.addr ("127.0.0.1:PORT"), srv.port, srv.pid ...
--   srv:stop()                   -- kill PID, then reap it (no zombie)
-- `make check` installs dnsmasq (Debian package dnsmasq-base) when missing.
local net = require "coronet"

local D = {}

D.BIN = "/usr/sbin/dnsmasq"
D.LONG = ("0123456789abcdef"):rep(12)       -- 192 bytes: three make a >512-byte answer

--- FIXTURES: the records, as dnsmasq options (one per line).
D.FIXTURES = {
    "--local=/test/", "--local=/2.0.192.in-addr.arpa/", "--local=/8.b.d.0.1.0.0.2.ip6.arpa/",
    "--host-record=host.test,192.0.2.10,2001:db8::10",
    "--host-record=v4.test,192.0.2.11",
    "--host-record=v6.test,2001:db8::11",
    "--host-record=dual.test,127.0.0.1,::1",
    "--host-record=many.test,192.0.2.21", "--host-record=many.test,192.0.2.22",
    "--host-record=many.test,192.0.2.23",
    "--cname=alias.test,host.test",
    "--cname=alias2.test,alias.test",
    "--mx-host=test,mail2.test,20", "--mx-host=test,mail1.test,10", "--mx-host=test,mail3.test,30",
    "--txt-record=txt.test,v=spf1 -all,second string",
    "--txt-record=multi.test,first record",
    "--txt-record=multi.test,second record",
    "--txt-record=long.test," .. D.LONG .. "," .. D.LONG .. "," .. D.LONG,
    "--srv-host=_http._tcp.test,web1.test,8080,10,60",
    "--srv-host=_http._tcp.test,web2.test,8081,10,40",
    "--srv-host=_http._tcp.test,backup.test,8082,20,0",
    "--srv-host=_ldap._tcp.test,ldap.test,389,0,0",
    "--ptr-record=5.2.0.192.in-addr.arpa,ptr.test",
    "--ptr-record=6.2.0.192.in-addr.arpa,ptr1.test",
    "--ptr-record=6.2.0.192.in-addr.arpa,ptr2.test",
    -- NS records: type 2, rdata in wire form (ns1.test, ns2.test)
    "--dns-rr=test,2,036e73310474657374:00",
    "--dns-rr=test,2,036e73320474657374:00",
}

--- available(): whether the dnsmasq binary is installed.
function D.available()
    local f = io.open(D.BIN)
    if f then f:close() end
    return f ~= nil
end

-- A port free for both UDP and TCP on 127.0.0.1 (picked by the kernel).
local function free_port()
    for _ = 1, 20 do
        local pc = assert(net.listen_packet("udp", "127.0.0.1:0"))
        local port = pc:local_addr().port
        local ln = net.listen("tcp", "127.0.0.1:" .. port)
        pc:close()
        if ln then
            ln:close()
            return port
        end
    end
    error("dnsmasq.lua: no free port")
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local Server = {}
Server.__index = Server

--- stop(): kill dnsmasq by its PID and reap it; idempotent.
function Server:stop()
    if not self.pipe then return end
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pipe:close()                       -- waits for the child: no zombie
    self.pipe = nil
end

--- start([extra]) -> server: dnsmasq on 127.0.0.1:<free port> with the
-- fixtures and the extra option strings; ready when this returns (it has
-- bound its sockets: it logs "started" only after that).
function D.start(extra)
    if not D.available() then
        error("dnsmasq is not installed (Debian: apt-get install dnsmasq-base; `make check` does it)")
    end
    local port = free_port()
    local args = {D.BIN, "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
                  "--no-resolv", "--no-hosts", "--no-negcache", "--listen-address=127.0.0.1",
                  "--bind-interfaces", "--port=" .. port, "--pid-file=", "--user=$(id -un)"}
    for _, o in ipairs(D.FIXTURES) do args[#args + 1] = quote(o) end
    for _, o in ipairs(extra or {}) do args[#args + 1] = quote(o) end
    -- LD_PRELOAD (make asan's) must not reach dnsmasq. A watchdog kills it
    -- if this process dies without a tearDown (a timeout, a crash).
    local watchdog = "(while kill -0 $PPID 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 0.5; done;"
                     .. " kill $$ 2>/dev/null) </dev/null >/dev/null 2>&1 &"
    local pipe = assert(io.popen("unset LD_PRELOAD; echo $$; " .. watchdog .. " exec "
                                 .. table.concat(args, " ") .. " 2>&1"))
    local pid = tonumber(pipe:read("l"))
    local log = {}
    for line in pipe:lines() do
        log[#log + 1] = line
        if line:find("started, version", 1, true) then
            return setmetatable({pid = pid, port = port, addr = "127.0.0.1:" .. port,
                                 pipe = pipe, log = log}, Server)
        end
    end
    pipe:close()
    error("dnsmasq did not start:\n" .. table.concat(log, "\n"))
end

return D

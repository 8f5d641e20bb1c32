#!/usr/bin/env lua5.4
--- examples/forty/q25_ip_mapped.lua: Q25, 4-byte and 16-byte addresses.
-- net.ip's Addr (like Go's netip.Addr) is a value, not a byte slice: ==
-- is strict, so ::ffff:1.2.3.4 (an IPv4-mapped IPv6 address) ~= 1.2.3.4;
-- a:unmap() == b and a:equal(b) (like net.IP.Equal) treat them as the same.
-- bytes() is 16 long for the mapped form, 4 for IPv4. A dual-stack
-- listener on [::] accepts an IPv4 client: coronet gives its address in the
-- plain 4-byte form (the kernel says ::ffff:127.0.0.1; Go's net.IP keeps the
-- 16 bytes, which is where bytes.Equal goes wrong).
--   lua5.4 examples/forty/q25_ip_mapped.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"
local ip = net.ip

local m, v4 = assert(ip.parse("::ffff:1.2.3.4")), assert(ip.parse("1.2.3.4"))
F.say("Q25. %s (bytes %d, is_4in6 %s) vs %s (bytes %d)", tostring(m), #m:bytes(), tostring(m:is_4in6()),
      tostring(v4), #v4:bytes())
F.check(#m:bytes() == 16 and #v4:bytes() == 4, "the mapped form has 16 bytes, IPv4 has 4")
F.check(m ~= v4, "== is strict: the two differ (like comparing the byte slices)")
F.check(m:unmap() == v4, "m:unmap() == v4")
F.check(m:equal(v4) and v4:equal(m), "m:equal(v4), like net.IP.Equal")
F.check(ip.parse("1.2.3.4") == v4, "two parses of one address are ==")
F.check(not m:equal(assert(ip.parse("1.2.3.5"))), "equal still tells different addresses apart")

net.run(function()
    local ln = net.listen("tcp", "[::]:0")
    if not ln then
        F.say("  no IPv6 on this machine: skipping the dual-stack listener")
        return
    end
    local c <close> = assert(net.dial("tcp", "127.0.0.1:" .. ln:addr().port))  -- luacheck: ignore 211
    local s <close> = assert(ln:accept())
    local ra = s:remote_addr().ip
    F.say("  a [::] listener accepted an IPv4 client; remote ip %s (bytes %d)", tostring(ra), #ra:bytes())
    F.check(ra == ip.parse("127.0.0.1") and #ra:bytes() == 4,
            "coronet hands out the plain IPv4 form (Go's net.IP here is the 16-byte one)")
    F.check(ra:equal(ip.parse("127.0.0.1")), "the client's address equals 127.0.0.1 under equal()")
    F.check(ra:unmap() == ip.parse("127.0.0.1"), "and == after unmap(): normalise before comparing")
    ln:close()
end)
F.done()

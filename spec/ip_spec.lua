-- ip_spec.lua - net.ip (csrc/addr.c): parsing, RFC 5952 formatting,
-- predicates, ordering, prefixes, addr:port and host:port helpers.
-- Run from the repo root:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 spec/ip_spec.lua
local lu = require("luaunit")
local ip = require("coronet.core").ip

local fmt = string.format

-- ===== helpers =====

-- P: parse s, failing the test with the error when it does not parse.
local function P(s)
  local a, err = ip.parse(s)
  if a == nil then lu.fail(fmt("ip.parse(%q) failed: %s", s, err)) end
  return a
end

local function hex(s)
  return (s:gsub(".", function(c) return fmt("%02x", c:byte()) end))
end

-- ===== parsing: valid input =====

-- {input, canonical form, family, is_4in6, zone}
local VALID = {
  {"0.0.0.0", "0.0.0.0", 4},
  {"1.2.3.4", "1.2.3.4", 4},
  {"192.168.140.255", "192.168.140.255", 4},
  {"255.255.255.255", "255.255.255.255", 4},
  {"10.0.0.10", "10.0.0.10", 4},
  {"::", "::", 6},
  {"::1", "::1", 6},
  {"1::", "1::", 6},
  {"::0:1", "::1", 6},
  {"0:0:0:0:0:0:0:0", "::", 6},
  {"0:0:0:0:0:0:0:1", "::1", 6},
  {"1:0:0:0:0:0:0:0", "1::", 6},
  {"2001:db8::1", "2001:db8::1", 6},
  {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6},
  {"2001:DB8::AbCd", "2001:db8::abcd", 6},
  {"FD7A:115C:A1E0:AB12:4843:CD96:626B:430B",
   "fd7a:115c:a1e0:ab12:4843:cd96:626b:430b", 6},
  {"abcd:ef01:2345:6789:abcd:ef01:2345:6789",
   "abcd:ef01:2345:6789:abcd:ef01:2345:6789", 6},
  -- RFC 5952: longest run, leftmost on a tie, a lone zero stays
  {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6},
  {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1", 6},
  {"1:0:0:4:0:0:0:8", "1:0:0:4::8", 6},
  {"1:0:0:4:5:0:0:8", "1::4:5:0:0:8", 6},
  {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 6},
  {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8", 6},
  {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0", 6},
  {"1:2:3:4:5:6:0:0", "1:2:3:4:5:6::", 6},
  {"0:0:3:4:5:6:7:8", "::3:4:5:6:7:8", 6},
  {"1:2::7:8", "1:2::7:8", 6},
  {"00:000:0000:1::1", "::1:0:0:0:1", 6},
  {"1:0:0:0:1:0:0:0", "1::1:0:0:0", 6},
  {"1:0:0:1:0:0:0:0", "1:0:0:1::", 6},
  -- embedded IPv4
  {"::ffff:192.168.140.255", "::ffff:192.168.140.255", 6, true},
  {"::ffff:c0a8:8cff", "::ffff:192.168.140.255", 6, true},
  {"0:0:0:0:0:ffff:1.2.3.4", "::ffff:1.2.3.4", 6, true},
  {"::FFFF:1.2.3.4", "::ffff:1.2.3.4", 6, true},
  {"::ffff:0.0.0.0", "::ffff:0.0.0.0", 6, true},
  {"::1.2.3.4", "::102:304", 6},
  {"1::1.2.3.4", "1::102:304", 6},
  {"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304", 6},
  {"64:ff9b::192.0.2.33", "64:ff9b::c000:221", 6},
  -- zones
  {"fe80::1%eth0", "fe80::1%eth0", 6, false, "eth0"},
  {"fe80::1%1", "fe80::1%1", 6, false, "1"},
  {"FE80::1%Eth0", "fe80::1%Eth0", 6, false, "Eth0"},
  {"fe80::1%eth0.100", "fe80::1%eth0.100", 6, false, "eth0.100"},
  {"fe80::1%en:1", "fe80::1%en:1", 6, false, "en:1"},
  {"::%lo", "::%lo", 6, false, "lo"},
  {"::ffff:1.2.3.4%eth1", "::ffff:1.2.3.4%eth1", 6, true, "eth1"},
  {"fe80::1%" .. ("z"):rep(31), "fe80::1%" .. ("z"):rep(31), 6, false,
   ("z"):rep(31)},
}

TestParseValid = {}

function TestParseValid:test_table()
  for _, c in ipairs(VALID) do
    local a = P(c[1])
    lu.assertEquals(tostring(a), c[2], c[1])
    lu.assertEquals(a:family(), c[3], c[1])
    lu.assertEquals(a:is_4in6(), c[4] == true, c[1])
    lu.assertEquals(a:zone(), c[5] or "", c[1])
    lu.assertEquals(ip.type(a), "addr")
  end
end

function TestParseValid:test_canonical_form_reparses_equal()
  for _, c in ipairs(VALID) do
    local a = P(c[1])
    local b = P(tostring(a))
    lu.assertTrue(a == b, c[1])
    lu.assertEquals(tostring(b), c[2], c[1])
  end
end

function TestParseValid:test_bytes()
  lu.assertEquals(hex(P("1.2.3.4"):bytes()), "01020304")
  lu.assertEquals(hex(P("::ffff:1.2.3.4"):bytes()),
                  "00000000000000000000ffff01020304")
  lu.assertEquals(hex(P("2001:db8::1%eth0"):bytes()),
                  "20010db8000000000000000000000001")
  lu.assertEquals(#P("::"):bytes(), 16)
  lu.assertEquals(#P("0.0.0.0"):bytes(), 4)
end

-- ===== parsing: invalid input =====

local INVALID = {
  -- generic
  "", " ", "a", "1", "localhost", "%", "%eth0", "[::1]", "1.2.3.4/8",
  -- IPv4
  "1.2.3", "1.2.3.4.5", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1.2..3",
  "01.2.3.4", "1.02.3.4", "1.2.03.4", "1.2.3.04", "00.1.2.3", "1.2.3.00",
  "256.1.1.1", "1.256.1.1", "1.2.3.256", "1.2.3.1000", "300.0.0.0",
  "1.2.3.-4", "-1.2.3.4", "+1.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\n",
  "1.2.3.4\0", "a.b.c.d", "0x1.2.3.4", "1.2.3.4a", "1.2.3.4%eth0",
  "1.2.3.4%", "1.2.3.4:80", "1,2,3,4", "１.2.3.4",
  -- IPv6: structure
  ":", ":::", "::::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7:8:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::",
  "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8", "1::2::3", "::1::", "1:::2",
  ":1::2", "1:", "1::2:", "1:2", "::1 ", " ::1", "::1\n", "fe80::1]",
  "[::1", "::1]", "1:2:3:4:5:6:7:8 ",
  -- IPv6: groups
  "12345::", "::12345", "1:2:3:4:5:6:7:10000", "00000::1", "g::1", "::g",
  "1:2:3:4:5:6:7:8g", "::-1", "::+1", "0x1::", "::1.", "1.::",
  -- IPv6: embedded IPv4
  "::ffff:1.2.3", "::ffff:1.2.3.4.5", "::ffff:01.2.3.4", "::ffff:1.2.3.400",
  "::ffff:1.2.3.4:5", "::1.2.3.4:1", "1:2:3:4:5:6:7:1.2.3.4",
  "1:2:3:4:5:1.2.3.4", "1:2:3:4:5:6:7:8:1.2.3.4", "1.2.3.4::",
  "1:2:3:4:5:6:1.2.3.4:7", "::1.2.3.4.5", "::1.2..3", "::ffff:1.2.3.",
  "1::2:3:4:5:6:7:1.2.3.4",
  -- zones
  "fe80::1%", "::%", "::ffff:1.2.3.4%", "fe80::1%eth 0", "fe80::1%eth0%1",
  "fe80::1%eth0\n", "fe80::1%eth0]", "fe80::1%[eth0", "fe80::1%eth0/64",
  "fe80::1%\0", "fe80::1%" .. ("z"):rep(32), "%fe80::1", "fe80%eth0::1",
  "1.2.3.4%eth0",
}

TestParseInvalid = {}

function TestParseInvalid:test_each_fails()
  for _, s in ipairs(INVALID) do
    local a, err = ip.parse(s)
    lu.assertNil(a, fmt("%q parsed as %s", s, tostring(a)))
    lu.assertIsString(err, fmt("%q", s))
    lu.assertStrContains(err, "ParseAddr(")
  end
end

-- {input, exact message}: Go's ParseAddr wording
local MESSAGES = {
  {"", 'ParseAddr(""): unable to parse IP'},
  {"localhost", 'ParseAddr("localhost"): unable to parse IP'},
  {"%eth0", 'ParseAddr("%eth0"): missing IPv6 address'},
  {"01.2.3.4",
   'ParseAddr("01.2.3.4"): IPv4 field has octet with leading zero'},
  {"1.2.3.256", 'ParseAddr("1.2.3.256"): IPv4 field has value >255'},
  {"1.2.3", 'ParseAddr("1.2.3"): IPv4 address too short'},
  {"1.2.3.4.5", 'ParseAddr("1.2.3.4.5"): IPv4 address too long'},
  {"1..2.3", 'ParseAddr("1..2.3"): IPv4 field must have at least one digit'
     .. ' (at ".2.3")'},
  {"1.2.3.4x", 'ParseAddr("1.2.3.4x"): unexpected character (at "x")'},
  {"1.2.3.4%eth0", 'ParseAddr("1.2.3.4%eth0"): unexpected character (at "%eth0")'},
  {"fe80::1%", 'ParseAddr("fe80::1%"): zone must be a non-empty string'},
  {"1:2:3:4:5:6:7:8:9", 'ParseAddr("1:2:3:4:5:6:7:8:9"): trailing garbage'
     .. ' after address (at "9")'},
  {"1::2::3", 'ParseAddr("1::2::3"): multiple :: in address (at ":3")'},
  {"12345::", 'ParseAddr("12345::"): each group must have 4 or less digits'
     .. ' (at "12345::")'},
  {"1:2:3:4:5:6:7", 'ParseAddr("1:2:3:4:5:6:7"): address string too short'},
  {"1:2:3:4:5:6:7:8::", 'ParseAddr("1:2:3:4:5:6:7:8::"): the :: must expand'
     .. ' to at least one field of zeros'},
  {"1:2:3:4:5:6:7:1.2.3.4", 'ParseAddr("1:2:3:4:5:6:7:1.2.3.4"): embedded'
     .. ' IPv4 address must replace the final 2 fields of the address'
     .. ' (at "1.2.3.4")'},
  {"1:", 'ParseAddr("1:"): colon must be followed by more characters'
     .. ' (at ":")'},
  {"1:2x", 'ParseAddr("1:2x"): unexpected character, want colon (at "x")'},
  {":1", 'ParseAddr(":1"): each colon-separated field must have at least'
     .. ' one digit (at ":1")'},
  {"::ffff:01.2.3.4", 'ParseAddr("::ffff:01.2.3.4"): IPv4 field has octet'
     .. ' with leading zero'},
  {"fe80::1%a b", 'ParseAddr("fe80::1%a b"): zone has an invalid character'
     .. ' (at " b")'},
  {"1.2.3.4\n", 'ParseAddr("1.2.3.4\\x0a"): unexpected character'
     .. ' (at "\\x0a")'},
  {'1"', 'ParseAddr("1\\""): unable to parse IP'},
}

function TestParseInvalid:test_messages()
  for _, c in ipairs(MESSAGES) do
    local a, err = ip.parse(c[1])
    lu.assertNil(a, c[1])
    lu.assertEquals(err, c[2])
  end
end

-- A deterministic fuzz: whatever parses must print in a form that parses
-- back to the same address, and whatever fails must fail with a message.
function TestParseInvalid:test_fuzz_roundtrip()
  local alphabet = "0123456789abcdefABCDEF:::..%%[]/x "
  math.randomseed(20240601)
  local ok = 0
  for _ = 1, 20000 do
    local t = {}
    for i = 1, math.random(0, 24) do
      local k = math.random(#alphabet)
      t[i] = alphabet:sub(k, k)
    end
    local s = table.concat(t)
    local a, err = ip.parse(s)
    if a then
      ok = ok + 1
      lu.assertTrue(P(tostring(a)) == a, s)
    else
      lu.assertIsString(err, s)
    end
  end
  lu.assertTrue(ok > 0)
end

function TestParseInvalid:test_random_bytes_roundtrip()
  math.randomseed(7)
  for _ = 1, 5000 do
    local t = {}
    for i = 1, 16 do
      -- favour zero groups so that "::" placement is exercised
      t[i] = math.random() < 0.5 and 0 or math.random(0, 255)
    end
    local a = ip.from_bytes(string.char(table.unpack(t)))
    local b = P(tostring(a))
    lu.assertTrue(a == b, tostring(a))
    lu.assertEquals(b:bytes(), a:bytes())
    lu.assertEquals(P(a:string_expanded()):bytes(), a:bytes())
    lu.assertNil(tostring(a):find(":::"))
    lu.assertNil(tostring(a):find("::.*::"))
  end
end

-- ===== predicates =====

-- columns: loopback, multicast, link_local_unicast, link_local_multicast,
-- interface_local_multicast, private, unspecified, global_unicast
local PRED_NAMES = {
  "is_loopback", "is_multicast", "is_link_local_unicast",
  "is_link_local_multicast", "is_interface_local_multicast", "is_private",
  "is_unspecified", "is_global_unicast",
}
local o, X = false, true
local PREDICATES = {
  {"0.0.0.0",            o, o, o, o, o, o, X, o},
  {"::",                 o, o, o, o, o, o, X, o},
  {"::ffff:0.0.0.0",     o, o, o, o, o, o, o, o},
  {"127.0.0.1",          X, o, o, o, o, o, o, o},
  {"127.255.255.254",    X, o, o, o, o, o, o, o},
  {"::1",                X, o, o, o, o, o, o, o},
  {"::ffff:127.0.0.1",   X, o, o, o, o, o, o, o},
  {"::2",                o, o, o, o, o, o, o, X},
  {"224.0.0.1",          o, X, o, X, o, o, o, o},
  {"224.0.1.1",          o, X, o, o, o, o, o, o},
  {"239.255.255.250",    o, X, o, o, o, o, o, o},
  {"::ffff:224.0.0.1",   o, X, o, X, o, o, o, o},
  {"ff02::1",            o, X, o, X, o, o, o, o},
  {"ff12::2",            o, X, o, X, o, o, o, o},
  {"ff01::1",            o, X, o, o, X, o, o, o},
  {"ff05::2",            o, X, o, o, o, o, o, o},
  {"169.254.1.1",        o, o, X, o, o, o, o, o},
  {"::ffff:169.254.0.1", o, o, X, o, o, o, o, o},
  {"fe80::1",            o, o, X, o, o, o, o, o},
  {"fe80::1%eth0",       o, o, X, o, o, o, o, o},
  {"febf::1",            o, o, X, o, o, o, o, o},
  {"fec0::1",            o, o, o, o, o, o, o, X},
  {"10.0.0.1",           o, o, o, o, o, X, o, X},
  {"10.255.255.255",     o, o, o, o, o, X, o, X},
  {"172.16.0.1",         o, o, o, o, o, X, o, X},
  {"172.31.255.255",     o, o, o, o, o, X, o, X},
  {"172.15.0.1",         o, o, o, o, o, o, o, X},
  {"172.32.0.1",         o, o, o, o, o, o, o, X},
  {"192.168.0.1",        o, o, o, o, o, X, o, X},
  {"192.169.0.1",        o, o, o, o, o, o, o, X},
  {"::ffff:10.0.0.1",    o, o, o, o, o, X, o, X},
  {"fc00::1",            o, o, o, o, o, X, o, X},
  {"fdff::1",            o, o, o, o, o, X, o, X},
  {"fe00::1",            o, o, o, o, o, o, o, X},
  {"8.8.8.8",            o, o, o, o, o, o, o, X},
  {"2001:db8::1",        o, o, o, o, o, o, o, X},
  {"::ffff:8.8.8.8",     o, o, o, o, o, o, o, X},
  {"255.255.255.255",    o, o, o, o, o, o, o, o},
  {"::ffff:255.255.255.255", o, o, o, o, o, o, o, o},
}

TestPredicates = {}

function TestPredicates:test_table()
  for _, row in ipairs(PREDICATES) do
    local a = P(row[1])
    for i, name in ipairs(PRED_NAMES) do
      lu.assertEquals(a[name](a), row[i + 1], row[1] .. ":" .. name .. "()")
    end
  end
end

function TestPredicates:test_family()
  local cases = {
    -- input, is_v4, is_v6, is_4in6, family, bit_len
    {"1.2.3.4", true, false, false, 4, 32},
    {"::1", false, true, false, 6, 128},
    {"::ffff:1.2.3.4", false, true, true, 6, 128},
    {"::ffff:1.2.3.4%z", false, true, true, 6, 128},
    {"::fffe:1.2.3.4", false, true, false, 6, 128},
    {"0:0:0:0:1:ffff:1.2.3.4", false, true, false, 6, 128},
  }
  for _, c in ipairs(cases) do
    local a = P(c[1])
    lu.assertEquals({a:is_v4(), a:is_v6(), a:is_4in6(), a:family(),
                     a:bit_len()}, {c[2], c[3], c[4], c[5], c[6]}, c[1])
  end
end

-- ===== equality and ordering =====

TestCompare = {}

function TestCompare:test_eq_is_strict()
  lu.assertTrue(P("1.2.3.4") == P("1.2.3.4"))
  lu.assertTrue(P("::1") == P("0:0:0:0:0:0:0:1"))
  lu.assertTrue(P("fe80::1%eth0") == P("FE80::1%eth0"))
  lu.assertFalse(P("::ffff:1.2.3.4") == P("1.2.3.4"))
  lu.assertFalse(P("fe80::1%eth0") == P("fe80::1"))
  lu.assertFalse(P("fe80::1%eth0") == P("fe80::1%eth1"))
  lu.assertFalse(P("fe80::1%eth0") == P("fe80::1%Eth0"))
  lu.assertFalse(P("1.2.3.4") == P("1.2.3.5"))
  lu.assertFalse(P("1.2.3.4") == "1.2.3.4")
  lu.assertFalse(P("10.0.0.0") == ip.prefix("10.0.0.0/32"))
  lu.assertFalse(ip.prefix("10.0.0.0/32") == P("10.0.0.0"))
end

function TestCompare:test_unmap_and_equal()
  local m, v4 = P("::ffff:1.2.3.4"), P("1.2.3.4")
  lu.assertTrue(m:unmap() == v4)
  lu.assertTrue(m:unmap():is_v4())
  lu.assertTrue(v4:unmap() == v4)
  lu.assertTrue(P("::1"):unmap() == P("::1"))
  lu.assertEquals(tostring(P("::ffff:1.2.3.4%eth0"):unmap()), "1.2.3.4")
  lu.assertTrue(m:equal(v4))
  lu.assertTrue(v4:equal(m))
  lu.assertTrue(v4:equal(v4))
  lu.assertFalse(v4:equal(P("1.2.3.5")))
  lu.assertFalse(P("::1.2.3.4"):equal(v4))
  lu.assertFalse(P("fe80::1%a"):equal(P("fe80::1%b")))
  lu.assertTrue(P("fe80::1%a"):equal(P("fe80::1%a")))
end

function TestCompare:test_sort()
  local want = {
    "0.0.0.0", "1.2.3.4", "1.2.3.5", "10.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:1.2.3.4", "2001:db8::1", "fe80::1",
    "fe80::1%eth0", "fe80::1%eth1", "ff02::1",
  }
  local n = #want
  for _, step in ipairs({1, 5, 7, 11}) do
    local got = {}
    for i = 1, n do got[i] = P(want[(i * step) % n + 1]) end
    table.sort(got)
    for i = 1, n do got[i] = tostring(got[i]) end
    lu.assertEquals(got, want)
  end
end

function TestCompare:test_lt_le_compare()
  local a, b = P("1.2.3.4"), P("::1")
  lu.assertTrue(a < b)
  lu.assertTrue(a <= b)
  lu.assertFalse(b < a)
  lu.assertFalse(b <= a)
  lu.assertTrue(a <= P("1.2.3.4"))
  lu.assertFalse(a < P("1.2.3.4"))
  lu.assertTrue(P("1.2.3.4") > P("1.2.3.3"))
  lu.assertEquals(a:compare(b), -1)
  lu.assertEquals(b:compare(a), 1)
  lu.assertEquals(a:compare(P("1.2.3.4")), 0)
  lu.assertEquals(P("fe80::1"):compare(P("fe80::1%x")), -1)
  lu.assertErrorMsgContains("coronet.ip.addr expected",
                            function() return a < "1.2.3.5" end)
end

-- ===== constructors and transformations =====

TestAddr = {}

function TestAddr:test_constants()
  lu.assertEquals(tostring(ip.v4(127, 0, 0, 1)), "127.0.0.1")
  lu.assertTrue(ip.v4(127, 0, 0, 1) == P("127.0.0.1"))
  lu.assertEquals(tostring(ip.v4_unspecified()), "0.0.0.0")
  lu.assertEquals(tostring(ip.v6_unspecified()), "::")
  lu.assertEquals(tostring(ip.v6_loopback()), "::1")
  lu.assertEquals(tostring(ip.v6_link_local_all_nodes()), "ff02::1")
  lu.assertEquals(tostring(ip.v6_link_local_all_routers()), "ff02::2")
  lu.assertTrue(ip.v6_unspecified():is_unspecified())
end

function TestAddr:test_from_bytes()
  lu.assertTrue(ip.from_bytes("\1\2\3\4") == P("1.2.3.4"))
  local m = ip.from_bytes("\0\0\0\0\0\0\0\0\0\0\255\255\1\2\3\4")
  lu.assertTrue(m == P("::ffff:1.2.3.4"))
  lu.assertTrue(m:is_4in6())
  for _, c in ipairs(VALID) do
    local a = P(c[1]):with_zone("")
    lu.assertTrue(ip.from_bytes(a:bytes()) == a, c[1])
  end
  for _, s in ipairs({"", "\1\2\3", "\1\2\3\4\5", ("x"):rep(15),
                      ("x"):rep(17)}) do
    local a, err = ip.from_bytes(s)
    lu.assertNil(a)
    lu.assertStrContains(err, "want 4 or 16 bytes, got " .. #s)
  end
end

function TestAddr:test_next_prev()
  local cases = {
    {"1.2.3.4", "1.2.3.5"},
    {"1.2.3.255", "1.2.4.0"},
    {"0.255.255.255", "1.0.0.0"},
    {"::", "::1"},
    {"::ffff", "::1:0"},
    {"fe80::1%eth0", "fe80::2%eth0"},
    {"::ffff:255.255.255.255", "::1:0:0:0"},
  }
  for _, c in ipairs(cases) do
    lu.assertEquals(tostring(P(c[1]):next()), c[2], c[1])
    lu.assertEquals(tostring(P(c[2]):prev()), c[1], c[2])
  end
  lu.assertNil(P("255.255.255.255"):next())
  lu.assertNil(P("0.0.0.0"):prev())
  lu.assertNil(P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"):next())
  lu.assertNil(P("::"):prev())
end

function TestAddr:test_zone()
  local a = P("fe80::1")
  lu.assertEquals(a:zone(), "")
  local z = a:with_zone("eth0")
  lu.assertEquals(tostring(z), "fe80::1%eth0")
  lu.assertEquals(z:zone(), "eth0")
  lu.assertEquals(tostring(a), "fe80::1")           -- a is unchanged
  lu.assertTrue(z:with_zone("") == a)
  lu.assertEquals(tostring(P("1.2.3.4"):with_zone("eth0")), "1.2.3.4")
  for _, bad in ipairs({"a b", "a%b", "a/b", "[a", "a]", ("z"):rep(32),
                        "\n"}) do
    local r, err = a:with_zone(bad)
    lu.assertNil(r, bad)
    lu.assertStrContains(err, "invalid zone")
  end
end

function TestAddr:test_string_expanded()
  local cases = {
    {"1.2.3.4", "1.2.3.4"},
    {"::", "0000:0000:0000:0000:0000:0000:0000:0000"},
    {"2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001"},
    {"::ffff:1.2.3.4", "0000:0000:0000:0000:0000:ffff:0102:0304"},
    {"fe80::abcd%eth0", "fe80:0000:0000:0000:0000:0000:0000:abcd%eth0"},
  }
  for _, c in ipairs(cases) do
    lu.assertEquals(P(c[1]):string_expanded(), c[2])
  end
end

function TestAddr:test_immutable()
  local a = P("1.2.3.4")
  lu.assertFalse(pcall(function() a.family = 6 end))
  lu.assertFalse(pcall(function() a.x = 1 end))
  lu.assertEquals(a:family(), 4)
end

-- ===== prefixes =====

TestPrefix = {}

-- {input, tostring, bits, addr, masked}
local PREFIX_VALID = {
  {"10.0.0.0/8", "10.0.0.0/8", 8, "10.0.0.0", "10.0.0.0/8"},
  {"10.1.2.3/8", "10.1.2.3/8", 8, "10.1.2.3", "10.0.0.0/8"},
  {"0.0.0.0/0", "0.0.0.0/0", 0, "0.0.0.0", "0.0.0.0/0"},
  {"1.2.3.4/0", "1.2.3.4/0", 0, "1.2.3.4", "0.0.0.0/0"},
  {"1.2.3.4/32", "1.2.3.4/32", 32, "1.2.3.4", "1.2.3.4/32"},
  {"192.168.1.77/27", "192.168.1.77/27", 27, "192.168.1.77",
   "192.168.1.64/27"},
  {"::/0", "::/0", 0, "::", "::/0"},
  {"2001:DB8::1/32", "2001:db8::1/32", 32, "2001:db8::1", "2001:db8::/32"},
  {"fe80::1:2:3:4/64", "fe80::1:2:3:4/64", 64, "fe80::1:2:3:4",
   "fe80::/64"},
  {"::1/128", "::1/128", 128, "::1", "::1/128"},
  {"ffff::ffff/3", "ffff::ffff/3", 3, "ffff::ffff", "e000::/3"},
  {"::ffff:1.2.3.4/120", "::ffff:1.2.3.4/120", 120, "::ffff:1.2.3.4",
   "::ffff:1.2.3.0/120"},
}

function TestPrefix:test_valid()
  for _, c in ipairs(PREFIX_VALID) do
    local p, err = ip.prefix(c[1])
    lu.assertNotNil(p, err)
    lu.assertEquals(tostring(p), c[2], c[1])
    lu.assertEquals(p:bits(), c[3], c[1])
    lu.assertEquals(tostring(p:addr()), c[4], c[1])
    lu.assertEquals(tostring(p:masked()), c[5], c[1])
    lu.assertTrue(ip.prefix(tostring(p)) == p, c[1])
    lu.assertEquals(ip.type(p), "prefix")
  end
end

local PREFIX_INVALID = {
  {"", "no '/'"}, {"10.0.0.0", "no '/'"},
  {"10.0.0.0/", 'bad bits after slash: ""'},
  {"10.0.0.0/33", "prefix length out of range"},
  {"10.0.0.0/99999999999999999999", "prefix length out of range"},
  {"::/129", "prefix length out of range"},
  {"10.0.0.0/-1", "bad bits after slash"},
  {"10.0.0.0/+8", "bad bits after slash"},
  {"10.0.0.0/08", 'bad bits after slash: "08"'},
  {"10.0.0.0/00", "bad bits after slash"},
  {"::/0128", "bad bits after slash"},
  {"10.0.0.0/8 ", "bad bits after slash"},
  {"10.0.0.0/ 8", "bad bits after slash"},
  {"10.0.0.0/a", "bad bits after slash"},
  {"10.0.0.0/0x8", "bad bits after slash"},
  {"/8", 'ParseAddr(""): unable to parse IP'},
  {"10.0.0/8", "IPv4 address too short"},
  {"010.0.0.0/8", "leading zero"},
  {"10.0.0.0/8/8", "ParseAddr(\"10.0.0.0/8\")"},
  {"fe80::1%eth0/64", "IPv6 zones cannot be present in a prefix"},
  {"1.2.3.4%eth0/8", "unexpected character (at \"%eth0\")"},
}

function TestPrefix:test_invalid()
  for _, c in ipairs(PREFIX_INVALID) do
    local p, err = ip.prefix(c[1])
    lu.assertNil(p, c[1])
    lu.assertStrContains(err, fmt("ParsePrefix(%q): ", c[1]))
    lu.assertStrContains(err, c[2])
  end
end

function TestPrefix:test_contains()
  -- prefix, {inside}, {outside}
  local cases = {
    {"10.0.0.0/8", {"10.0.0.0", "10.255.255.255", "10.1.2.3"},
     {"11.0.0.0", "9.255.255.255", "::ffff:10.1.2.3", "::a01:203"}},
    {"10.1.2.3/8", {"10.9.9.9"}, {"11.0.0.0"}},
    {"192.168.1.64/27", {"192.168.1.64", "192.168.1.95"},
     {"192.168.1.63", "192.168.1.96"}},
    {"0.0.0.0/0", {"0.0.0.0", "255.255.255.255"}, {"::", "::ffff:1.2.3.4"}},
    {"1.2.3.4/32", {"1.2.3.4"}, {"1.2.3.5"}},
    {"::/0", {"::", "::1", "::ffff:1.2.3.4", "ffff::"},
     {"1.2.3.4", "fe80::1%eth0"}},
    {"fe80::/10", {"fe80::1", "febf:ffff::"}, {"fec0::", "fe80::1%eth0"}},
    {"2001:db8::/32", {"2001:db8::", "2001:db8:ffff:ffff::1"},
     {"2001:db9::", "2001:db7:ffff::"}},
    {"::ffff:0.0.0.0/96", {"::ffff:1.2.3.4"}, {"1.2.3.4", "::1"}},
    {"2001:db8::1/128", {"2001:db8::1"}, {"2001:db8::2"}},
  }
  for _, c in ipairs(cases) do
    local p = assert(ip.prefix(c[1]))
    for _, s in ipairs(c[2]) do
      lu.assertTrue(p:contains(P(s)), c[1] .. " contains " .. s)
    end
    for _, s in ipairs(c[3]) do
      lu.assertFalse(p:contains(P(s)), c[1] .. " does not contain " .. s)
    end
  end
end

function TestPrefix:test_from_addr()
  local a = P("10.1.2.3")
  lu.assertTrue(a:prefix(8) == ip.prefix("10.0.0.0/8"))
  lu.assertEquals(tostring(a:prefix(0)), "0.0.0.0/0")
  lu.assertEquals(tostring(a:prefix(32)), "10.1.2.3/32")
  lu.assertEquals(tostring(P("fe80::1%eth0"):prefix(64)), "fe80::/64")
  lu.assertEquals(tostring(P("::ffff:1.2.3.4"):prefix(100)),
                  "::ffff:0.0.0.0/100")
  local p, err = a:prefix(33)
  lu.assertNil(p)
  lu.assertEquals(err, "prefix length 33 too large for IPv4")
  p, err = P("::1"):prefix(129)
  lu.assertNil(p)
  lu.assertEquals(err, "prefix length 129 too large for IPv6")
  p, err = a:prefix(-1)
  lu.assertNil(p)
  lu.assertEquals(err, "negative Prefix bits")
  -- prefix_from keeps the host bits, like Go's PrefixFrom
  lu.assertEquals(tostring(ip.prefix_from(a, 8)), "10.1.2.3/8")
  lu.assertEquals(tostring(ip.prefix_from(P("fe80::1%x"), 10)),
                  "fe80::1/10")
  lu.assertNil(ip.prefix_from(a, 40))
end

function TestPrefix:test_eq_overlaps_single()
  local p = ip.prefix
  lu.assertTrue(p("10.0.0.0/8") == p("10.0.0.0/8"))
  lu.assertFalse(p("10.0.0.0/8") == p("10.0.0.0/9"))
  lu.assertFalse(p("10.1.0.0/8") == p("10.0.0.0/8"))
  lu.assertTrue(p("10.1.0.0/8"):masked() == p("10.0.0.0/8"))
  lu.assertFalse(p("0.0.0.0/0") == p("::/0"))
  local overlap = {
    {"10.0.0.0/8", "10.1.0.0/16", true},
    {"10.1.0.0/16", "10.0.0.0/8", true},
    {"10.0.0.0/8", "11.0.0.0/8", false},
    {"0.0.0.0/0", "1.2.3.4/32", true},
    {"0.0.0.0/0", "::/0", false},
    {"1.2.3.0/24", "1.2.3.7/32", true},
    {"1.2.3.0/24", "1.2.4.7/32", false},
    {"2001:db8::/32", "2001:db8:1::/48", true},
    {"2001:db8::/32", "2001:db9::/32", false},
  }
  for _, c in ipairs(overlap) do
    lu.assertEquals(p(c[1]):overlaps(p(c[2])), c[3], c[1] .. " " .. c[2])
  end
  lu.assertTrue(p("1.2.3.4/32"):is_single_ip())
  lu.assertTrue(p("::1/128"):is_single_ip())
  lu.assertFalse(p("1.2.3.4/31"):is_single_ip())
  lu.assertFalse(p("::ffff:1.2.3.4/32"):is_single_ip())
end

-- ===== addr:port =====

TestAddrPort = {}

function TestAddrPort:test_valid()
  -- input, tostring, addr, port
  local cases = {
    {"1.2.3.4:80", "1.2.3.4:80", "1.2.3.4", 80},
    {"0.0.0.0:0", "0.0.0.0:0", "0.0.0.0", 0},
    {"255.255.255.255:65535", "255.255.255.255:65535", "255.255.255.255",
     65535},
    {"1.2.3.4:080", "1.2.3.4:80", "1.2.3.4", 80},
    {"[::1]:80", "[::1]:80", "::1", 80},
    {"[::1%lo]:80", "[::1%lo]:80", "::1%lo", 80},
    {"[fe80::1%eth0]:8080", "[fe80::1%eth0]:8080", "fe80::1%eth0", 8080},
    {"[::ffff:1.2.3.4]:443", "[::ffff:1.2.3.4]:443", "::ffff:1.2.3.4", 443},
    {"[2001:DB8::1]:1", "[2001:db8::1]:1", "2001:db8::1", 1},
  }
  for _, c in ipairs(cases) do
    local ap, err = ip.addr_port(c[1])
    lu.assertNotNil(ap, err)
    lu.assertEquals(tostring(ap), c[2])
    lu.assertEquals(tostring(ap:addr()), c[3])
    lu.assertEquals(ap:port(), c[4])
    lu.assertEquals(math.type(ap:port()), "integer")
    lu.assertTrue(ip.addr_port(tostring(ap)) == ap)
    lu.assertEquals(ip.type(ap), "addr_port")
  end
end

function TestAddrPort:test_invalid()
  local cases = {
    {"1.2.3.4", "not an ip:port"},
    {"", "not an ip:port"},
    {"1.2.3.4:", "no port"},
    {":80", "no IP"},
    {"[]:80", 'ParseAddr(""): unable to parse IP'},
    {"1.2.3.4:65536", 'invalid port "65536" parsing "1.2.3.4:65536"'},
    {"1.2.3.4:99999999999999999999", "invalid port"},
    {"1.2.3.4:-1", "invalid port"},
    {"1.2.3.4:+1", "invalid port"},
    {"1.2.3.4:0x10", "invalid port"},
    {"1.2.3.4:8 0", "invalid port"},
    {"1.2.3.4:http", "invalid port"},
    {"host:80", 'ParseAddr("host"): unable to parse IP'},
    {"01.2.3.4:80", "leading zero"},
    {"[1.2.3.4]:80", "square brackets can only be used with IPv6"},
    {"::1:80", "IPv6 addresses must be surrounded by square brackets"},
    {"[::1]80", "missing ]"},
    {"[::1:80", "missing ]"},
    {"[:80", "missing ]"},
    {"[::1]:", "no port"},
    {"[fe80::1%]:80", "zone must be a non-empty string"},
    {"[::1]]:80", "unexpected character"},
  }
  for _, c in ipairs(cases) do
    local ap, err = ip.addr_port(c[1])
    lu.assertNil(ap, c[1])
    lu.assertStrContains(err, c[2])
  end
end

function TestAddrPort:test_from_eq_order()
  local a = P("::1")
  local ap = ip.addr_port_from(a, 443)
  lu.assertEquals(tostring(ap), "[::1]:443")
  lu.assertTrue(ap == ip.addr_port("[::1]:443"))
  lu.assertFalse(ap == ip.addr_port("[::1]:444"))
  lu.assertFalse(ap == a)
  lu.assertEquals(tostring(ip.addr_port_from(P("1.2.3.4"), 0)), "1.2.3.4:0")
  lu.assertTrue(ip.addr_port("1.2.3.4:80") < ip.addr_port("1.2.3.4:81"))
  lu.assertTrue(ip.addr_port("1.2.3.4:81") < ip.addr_port("[::1]:1"))
  lu.assertTrue(ip.addr_port("1.2.3.4:80") <= ip.addr_port("1.2.3.4:80"))
  lu.assertErrorMsgContains("port out of range",
                            ip.addr_port_from, a, 65536)
  lu.assertErrorMsgContains("port out of range", ip.addr_port_from, a, -1)
end

-- Issue 15 item 7: Go's Prefix.Compare order (family, then bits, then
-- address) and AddrPort.Compare.
function TestPrefix:test_compare_and_order()
  local pf = ip.prefix
  local function C(a, b) return pf(a):compare(pf(b)) end
  lu.assertEquals(C("10.0.0.0/8", "10.0.0.0/8"), 0)
  lu.assertEquals(C("10.0.0.0/8", "10.0.0.0/16"), -1)     -- shorter first
  lu.assertEquals(C("10.0.0.0/16", "10.0.0.0/8"), 1)
  lu.assertEquals(C("10.0.0.0/8", "11.0.0.0/8"), -1)       -- then the address
  lu.assertEquals(C("255.0.0.0/8", "::/0"), -1)            -- IPv4 before IPv6
  lu.assertEquals(C("::/0", "0.0.0.0/0"), 1)
  local list = {pf("::1/128"), pf("10.1.0.0/16"), pf("10.0.0.0/8"), pf("1.0.0.0/8"),
                pf("10.0.0.0/16"), pf("2001:db8::/32")}
  table.sort(list)                                         -- __lt
  local out = {}
  for i, x in ipairs(list) do out[i] = tostring(x) end
  lu.assertEquals(out, {"1.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16", "10.1.0.0/16",
                        "2001:db8::/32", "::1/128"})
  lu.assertTrue(pf("10.0.0.0/8") <= pf("10.0.0.0/8"))
  lu.assertErrorMsgContains("coronet.ip.prefix", function() return pf("10.0.0.0/8"):compare(1) end)
end

function TestAddrPort:test_compare()
  local ap = ip.addr_port
  lu.assertEquals(ap("1.2.3.4:80"):compare(ap("1.2.3.4:80")), 0)
  lu.assertEquals(ap("1.2.3.4:80"):compare(ap("1.2.3.4:81")), -1)
  lu.assertEquals(ap("[::1]:1"):compare(ap("1.2.3.4:81")), 1)
end

-- ===== host:port =====

TestHostPort = {}

function TestHostPort:test_split_valid()
  -- hostport, host, port (Go's net tests)
  local cases = {
    {"localhost:http", "localhost", "http"},
    {"localhost:80", "localhost", "80"},
    {"golang.org:", "golang.org", ""},
    {"127.0.0.1:80", "127.0.0.1", "80"},
    {"[::1]:80", "::1", "80"},
    {"[::1%lo0]:80", "::1%lo0", "80"},
    {"[fe80::1%lo0]:80", "fe80::1%lo0", "80"},
    {"[localhost%lo0]:80", "localhost%lo0", "80"},
    {"localhost%lo0:80", "localhost%lo0", "80"},
    {"[localhost]:http", "localhost", "http"},
    {"[]:80", "", "80"},
    {":80", "", "80"},
    {":", "", ""},
    {"[::1]:", "::1", ""},
  }
  for _, c in ipairs(cases) do
    local h, p = ip.split_host_port(c[1])
    lu.assertEquals({h, p}, {c[2], c[3]}, c[1])
  end
end

function TestHostPort:test_split_invalid()
  local cases = {
    {"golang.org", "missing port in address"},
    {"127.0.0.1", "missing port in address"},
    {"[::1]", "missing port in address"},
    {"[fe80::1%lo0]", "missing port in address"},
    {"[localhost%lo0]", "missing port in address"},
    {"localhost%lo0", "missing port in address"},
    {"::1", "too many colons in address"},
    {"fe80::1%lo0", "too many colons in address"},
    {"fe80::1%lo0:80", "too many colons in address"},
    {"[foo:bar]", "missing port in address"},
    {"[foo:bar]baz", "missing port in address"},
    {"[foo]bar:baz", "missing port in address"},
    {"[foo]:[bar]:baz", "too many colons in address"},
    {"[foo]:[bar]baz", "unexpected '[' in address"},
    {"foo[bar]:baz", "unexpected '[' in address"},
    {"foo]bar:baz", "unexpected ']' in address"},
    {"[foo:80", "missing ']' in address"},
  }
  for _, c in ipairs(cases) do
    local h, err = ip.split_host_port(c[1])
    lu.assertNil(h, c[1])
    lu.assertEquals(err, "address " .. c[1] .. ": " .. c[2])
  end
  local h, err = ip.split_host_port("")
  lu.assertNil(h)
  lu.assertEquals(err, "missing port in address")
end

function TestHostPort:test_join()
  local cases = {
    {"host", "80", "host:80"},
    {"1.2.3.4", "80", "1.2.3.4:80"},
    {"::1", "80", "[::1]:80"},
    {"::1%lo0", "80", "[::1%lo0]:80"},
    {"localhost%lo0", "80", "localhost%lo0:80"},
    {"", "80", ":80"},
    {"host", "", "host:"},
    {"host", "http", "host:http"},
    {"::1", 8080, "[::1]:8080"},
    {"h", 0, "h:0"},
  }
  for _, c in ipairs(cases) do
    local s = ip.join_host_port(c[1], c[2])
    lu.assertEquals(s, c[3])
    local h, p = ip.split_host_port(s)
    lu.assertEquals({h, p}, {c[1], tostring(c[2])}, s)
  end
end

-- ===== misuse raises =====

TestMisuse = {}

function TestMisuse:test_type_errors()
  local a = P("1.2.3.4")
  local any = ip.prefix("::/0")
  local raises = {
    {"string expected", function() return ip.parse() end},
    {"string expected", function() return ip.parse({}) end},
    {"string expected", function() return ip.prefix(nil) end},
    {"string expected", function() return ip.addr_port(false) end},
    {"string expected", function() return ip.split_host_port() end},
    {"string expected", function() return ip.from_bytes({}) end},
    {"string or integer", function() return ip.join_host_port("h", {}) end},
    {"string or integer", function() return ip.join_host_port("h", 1.5) end},
    {"coronet.ip.addr expected", function() return a.is_v4("1.2.3.4") end},
    {"coronet.ip.addr expected", function() return a:equal("1.2.3.4") end},
    {"coronet.ip.addr expected", function() return a:compare() end},
    {"coronet.ip.addr expected",
     function() return ip.addr_port_from("1.2.3.4", 80) end},
    {"coronet.ip.addr expected", function() return ip.prefix_from({}, 8) end},
    {"coronet.ip.addr expected", function() return any:contains("::1") end},
    {"coronet.ip.prefix expected", function() return any.bits(a) end},
    {"coronet.ip.addrport expected",
     function() return ip.addr_port("[::1]:1").port(a) end},
    {"number expected", function() return a:prefix("x") end},
    {"number has no integer representation",
     function() return a:prefix(1.5) end},
    {"out of range 0..255", function() return ip.v4(256, 0, 0, 0) end},
    {"out of range 0..255", function() return ip.v4(1, 2, 3, -1) end},
    {"number expected", function() return ip.v4(1, 2, 3) end},
    {"value expected", function() return ip.type() end},
  }
  for _, c in ipairs(raises) do
    lu.assertErrorMsgContains(c[1], c[2])
  end
end

function TestMisuse:test_type()
  lu.assertNil(ip.type("1.2.3.4"))
  lu.assertNil(ip.type(nil))
  lu.assertNil(ip.type(io.stdout))
end

-- spec/run.lua sets SPEC_RUNNER and runs every spec in one process.
if not SPEC_RUNNER then
  os.exit(require("luaunit").LuaUnit.run())
end

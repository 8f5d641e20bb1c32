--- spec/errors_spec.lua: error objects (net.errors): shape, Go-format
-- tostring, sentinels, errno sentinels and errors.is.
local lu = require "luaunit"
local net = require "coronet"
local errors = net.errors
local H = dofile("spec/helpers.lua")

TestErrors = {}

function TestErrors:test_sentinels_render_like_go()
    lu.assertEquals(tostring(net.EOF), "EOF")
    lu.assertEquals(tostring(net.ErrUnexpectedEOF), "unexpected EOF")
    lu.assertEquals(tostring(net.ErrClosed), "use of closed network connection")
    lu.assertEquals(tostring(net.ErrDeadlineExceeded), "i/o timeout")
    lu.assertEquals(tostring(net.ErrCanceled), "operation was canceled")
    lu.assertTrue(net.ErrDeadlineExceeded.timeout)
    lu.assertFalse(net.EOF.timeout)
    lu.assertEquals(net.ErrClosed.code, "closed")
    lu.assertEquals(net.ErrFrameTooLarge.code, "frame_too_large")
end

function TestErrors:test_operror_tostring_and_fields()
    local e = errors.new{op = "read", net = "tcp", source = "127.0.0.1:8080",
                         addr = "127.0.0.1:51234", err = net.ErrDeadlineExceeded}
    lu.assertEquals(tostring(e), "read tcp 127.0.0.1:8080->127.0.0.1:51234: i/o timeout")
    lu.assertEquals(e.code, "timeout")
    lu.assertTrue(e.timeout)
    lu.assertTrue(errors.is(e, net.ErrDeadlineExceeded))
    lu.assertTrue(e:is(net.ErrDeadlineExceeded))
    lu.assertFalse(errors.is(e, net.ErrClosed))
    -- without a source, only the address; without either, just the cause
    lu.assertEquals(tostring(errors.new{op = "dial", net = "tcp", addr = "1.2.3.4:5", err = net.ErrClosed}),
                    "dial tcp 1.2.3.4:5: use of closed network connection")
    lu.assertEquals(tostring(errors.new{err = net.EOF}), "EOF")
end

function TestErrors:test_errno_sentinels()
    local e = errors.ECONNRESET
    lu.assertEquals(e.code, "ECONNRESET")
    lu.assertEquals(e.errno, 104)
    lu.assertEquals(tostring(e), "connection reset by peer")
    lu.assertIs(errors.ECONNRESET, e)                    -- made once, then cached
    lu.assertNil(errors.ENOTANERRNO)
    lu.assertNil(errors.lowercase)
end

function TestErrors:test_is_walks_the_chain_and_matches_errno_by_code()
    local inner = errors.new{op = "write", err = errors.EPIPE}
    local outer = errors.new{op = "copy", err = inner}
    lu.assertTrue(errors.is(outer, inner))
    lu.assertTrue(errors.is(outer, errors.EPIPE))
    lu.assertFalse(errors.is(outer, errors.ECONNRESET))
    lu.assertFalse(errors.is(nil, net.EOF))
    lu.assertFalse(errors.is("a string", net.EOF))
    lu.assertTrue(errors.is(net.EOF, net.EOF))
end

function TestErrors:test_c_errors_have_the_same_shape()
    H.run(function()
        local ln = assert(net.listen("tcp", "127.0.0.1:0"))
        local addr = tostring(ln:addr())
        ln:close()
        local c, err = net.dial("tcp", addr)
        lu.assertNil(c)
        lu.assertEquals(getmetatable(err).__name, "coronet.error")
        lu.assertEquals(err.op, "dial")
        lu.assertEquals(err.net, "tcp")
        lu.assertEquals(err.addr, addr)
        lu.assertEquals(err.code, "ECONNREFUSED")
        lu.assertEquals(err.errno, 111)
        lu.assertEquals(err.syscall, "connect")
        lu.assertFalse(err.timeout)
        lu.assertEquals(tostring(err), "dial tcp " .. addr .. ": connect: connection refused")
        lu.assertTrue(errors.is(err, errors.ECONNREFUSED))
    end)
end

function TestErrors:test_address_errors_are_values_not_raises()
    H.run(function()
        local cases = {
            {"tcp", "127.0.0.1", "missing port in address"},
            {"tcp", "127.0.0.1:x", "invalid port"},
            {"tcp", "127.0.0.1:65536", "invalid port"},
            {"tcp", "[::1:80", "missing ']'"},
            {"nope", "1.2.3.4:5", "unknown network nope"},
        }
        for _, c in ipairs(cases) do
            local conn, err = net.dial(c[1], c[2])
            lu.assertNil(conn, c[2])
            lu.assertStrContains(tostring(err), c[3])
            lu.assertEquals(getmetatable(err).__name, "coronet.error")
        end
    end)
end

function TestErrors:test_misuse_raises()
    lu.assertErrorMsgContains("string expected", net.dial, "tcp", 42)
    lu.assertErrorMsgContains("unknown option", net.dial, "tcp", "127.0.0.1:1", {bogus = 1})
end

if not SPEC_RUNNER then os.exit(lu.LuaUnit.run()) end

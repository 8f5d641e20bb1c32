--- coronet.tls: TLS on OpenSSL 3.0 with Go's crypto/tls semantics (net.tls).
-- A TLS conn is a conn with another byte layer (csrc/tls.c): every conn
-- method, with the same deadlines, ctx and concurrency rules, plus
-- `handshake([ctx])`, `connection_state()` and `probe()`. Verification is
-- on by default: the chain against the system store (or `ca_file`), the
-- host name or IP address, and expiry. See docs/tls.md.
local core = require "coronet.core"
local sched = require "coronet.sched"
local stream = require "coronet.stream"
local errors = require "coronet.errors"

local split_host_port = core.ip.split_host_port
local M = {}

-- Configs made from plain tables, kept while the table lives: building one
-- loads the CA store (tens of milliseconds), so it is done once per table.
local from_table = setmetatable({}, {__mode = "k"})

--- config(opts) -> config | nil, err: one reusable TLS configuration (an
-- SSL_CTX). opts: server_name, alpn, ca_file, ca_path, cert_file,
-- key_file, certificates = {{cert_file=, key_file=}, ...}, min_version
-- (default "1.2"), max_version, ciphers, ciphersuites,
-- insecure_skip_verify, client_auth ("none", "request", "require",
-- "verify_if_given", "verify"), client_ca_file, session_cache (true or a
-- capacity: client resumption), session_tickets (default true),
-- keylog_file. Unknown options raise; unreadable files are `nil, err`.
-- @tparam table opts
-- @treturn[1] userdata config
-- @treturn[2] nil
-- @treturn[2] table error (code "tls_config")
function M.config(opts)
    return core.tls_config(opts)
end

-- A config from cfg: a config object, or a table turned into one once.
local function as_config(cfg)
    if type(cfg) ~= "table" then return cfg end
    local c = from_table[cfg]
    if not c then
        local err
        c, err = core.tls_config(cfg)
        if not c then return nil, err end
        from_table[cfg] = c
    end
    return c
end

--- client(conn, cfg [, server_name]) -> tls conn | nil, err: make conn the
-- client side of a TLS connection (STARTTLS: conn is converted in place and
-- returned; keep using the returned object). The handshake runs on the
-- first read or write, or on `handshake()`. The name verified and sent is
-- cfg.server_name, else server_name; without either, only
-- insecure_skip_verify allows it (as Go).
function M.client(conn, cfg, server_name)
    local c, err = as_config(cfg)
    if not c then return nil, err end
    return core.tls_wrap(conn, c, false, server_name)
end

--- server(conn, cfg) -> tls conn | nil, err: make conn the server side; the
-- handshake runs on the first read or write, or on `handshake()`.
function M.server(conn, cfg)
    local c, err = as_config(cfg)
    if not c then return nil, err end
    return core.tls_wrap(conn, c, true)
end

local function is_ctx(v)
    local mt = getmetatable(v)
    return mt ~= nil and mt.__name == "coronet.context"
end

--- dial(network, address, cfg [, opts] [, ctx]) -> tls conn | nil, err:
-- `net.dial` (same opts, Happy Eyeballs included) then the handshake, all
-- bounded by opts.timeout/deadline and ctx (Go's tls.DialWithDialer). The
-- server name defaults to the address's host (an IP is verified against
-- the certificate's IP SANs and not sent as SNI).
function M.dial(network, address, cfg, opts, ctx)
    if is_ctx(opts) then opts, ctx = nil, opts end
    if not sched.current() then return sched.block(M.dial, network, address, cfg, opts, ctx) end
    local config, err = as_config(cfg)
    if not config then return nil, err end
    local d = stream.dialer(opts)
    local deadline = stream._dial_deadline(d)     -- one bound for the dial and the handshake
    if deadline > 0 then                          -- every option kept, the bound made absolute
        local o = {}
        for k, v in pairs(d) do o[k] = v end
        o.timeout, o.deadline = nil, deadline
        d = stream.dialer(o)
    end
    local c
    c, err = d:dial(network, address, ctx)
    if not c then return nil, err end
    local host = split_host_port(address)
    local tc
    tc, err = core.tls_wrap(c, config, false, host ~= "" and host or nil)
    if not tc then c:close() return nil, err end
    if deadline > 0 then tc:set_deadline(deadline) end
    local ok
    ok, err = tc:handshake(ctx)
    if not ok then tc:close() return nil, err end
    if deadline > 0 then tc:set_deadline(nil) end
    return tc
end

---------------------------------------------------------------------------
-- Listener
---------------------------------------------------------------------------
local Listener = {}
Listener.__index = Listener
Listener.__name = "coronet.tls_listener"

-- A config that can serve: one without a certificate fails here, at
-- listen, not at every accept (Go's tls.Listen).
local function server_config(cfg)
    local c, err = as_config(cfg)
    if not c then return nil, err end
    if core.tls_config_certs(c) == 0 then
        return nil, errors.new{op = "listen", code = "tls_config",
            err = errors.new{code = "tls_config", msg = "tls: a server config needs cert_file/key_file or certificates"}}
    end
    return c
end

--- listener:accept([ctx]) -> tls conn | nil, err: the next conn, as a TLS
-- server conn that has not handshaken yet (its first read, write or
-- `handshake()` does that, in the task that serves it), so a slow or
-- hostile client never stalls the accept loop (Go's tls.NewListener).
function Listener:accept(ctx)
    local c, err = self.ln:accept(ctx)
    if not c then return nil, err end
    local tc
    tc, err = core.tls_wrap(c, self.cfg, true)
    if not tc then c:close() return nil, err end
    return tc
end

--- listener:close() -> true | nil, ErrClosed: as the plain listener's.
function Listener:close() return self.ln:close() end
--- listener:addr() -> address (valid after close).
function Listener:addr() return self.ln:addr() end
--- listener:set_deadline(t | nil): absolute deadline for accept.
function Listener:set_deadline(t) return self.ln:set_deadline(t) end
--- listener:fd() -> the listening socket's descriptor.
function Listener:fd() return self.ln:fd() end
--- listener:file() -> a dup of the descriptor (for a child process).
function Listener:file() return self.ln:file() end
--- listener:inner() -> the plain listener underneath.
function Listener:inner() return self.ln end
-- A listener tls.listen made is closed with its wrapper; one handed to
-- wrap_listener stays the caller's.
Listener.__close = function(self) if self.owned then self.ln:close() end end
Listener.__gc = Listener.__close
function Listener:__tostring() return "tls " .. tostring(self.ln) end

--- wrap_listener(ln, cfg) -> tls listener | nil, err: TLS over an existing
-- listener (an inherited one, say).
function M.wrap_listener(ln, cfg)
    local c, err = server_config(cfg)
    if not c then return nil, err end
    return setmetatable({ln = ln, cfg = c}, Listener)
end

--- listen(network, address, cfg [, opts]) -> tls listener | nil, err:
-- `net.listen` whose accept hands out TLS server conns.
function M.listen(network, address, cfg, opts)
    local c, err = server_config(cfg)
    if not c then return nil, err end
    local ln
    ln, err = stream.listen(network, address, opts)
    if not ln then return nil, err end
    return setmetatable({ln = ln, cfg = c, owned = true}, Listener)
end

return M

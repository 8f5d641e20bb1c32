--- coronet.io: net.io, helpers over readers and writers (Go's io).
-- A reader is anything with `read(max [, ctx])` returning data, or nil
-- and an error (net.EOF at the end; a Lua file's plain nil counts as EOF
-- too); a writer is anything with `write(data [, ctx])` returning a
-- true value or nil, err. Conns, bufio readers and writers, Lua files and
-- the objects made here all qualify. See docs/bufio.md.
local core = require "coronet.core"
local errors = require "coronet.errors"
local bufio = require "coronet.bufio"

local EOF = errors.EOF
local concat = table.concat
local type, getmetatable, setmetatable, error, tonumber = type, getmetatable, setmetatable,
    error, tonumber
local iotype = io.type
local copy_fd = core.io_copy_fd

local M = {}

local CHUNK = 65536

--- ErrTooLong: read_all refused data past its max (bufio.ErrTooLong).
M.ErrTooLong = bufio.ErrTooLong

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------
local function is_ctx(v)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name == "coronet.context"
end

local function named(v, name)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name == name
end

-- A Lua file takes no ctx argument (it would be read as a format).
local function rread(r, max, ctx)
    if ctx and not iotype(r) then return r:read(max, ctx) end
    return r:read(max)
end

local function wwrite(w, data, ctx)
    if ctx and not iotype(w) then return w:write(data, ctx) end
    return w:write(data)
end

-- A failed write's count of bytes written (a Lua file's third value is errno).
local function written(w, n)
    if iotype(w) then return 0 end
    return tonumber(n) or 0
end

-- nil (a Lua file at its end) or net.EOF.
local function is_eof(err)
    return err == nil or errors.is(err, EOF)
end

local function check(v, method, i, fname)
    local t = type(v)
    if (t ~= "table" and t ~= "userdata") or v[method] == nil then
        error("bad argument #" .. i .. " to '" .. fname .. "' (an object with " .. method
              .. "() expected, got " .. t .. ")", 3)
    end
end

---------------------------------------------------------------------------
-- limit_reader
---------------------------------------------------------------------------
local Limited = {}
Limited.__index = Limited
Limited.__name = "coronet.io.limited_reader"

--- limit_reader(r, n) -> reader: reads from r but ends (net.EOF) after n
-- bytes. Its field `n` is what is left.
function M.limit_reader(r, n)
    check(r, "read", 1, "limit_reader")
    if math.type(n) ~= "integer" then error("bad argument #2 to 'limit_reader' (integer expected)", 2) end
    return setmetatable({r = r, n = n}, Limited)
end

--- limited:read([max] [, ctx]) -> data | nil, err: at most max bytes
-- (default 64 KiB) and never past the limit.
function Limited:read(max, ctx)
    if is_ctx(max) then max, ctx = nil, max end
    local left = self.n
    if left <= 0 then return nil, EOF end
    max = max or CHUNK
    if max > left then max = left end
    local d, err = rread(self.r, max, ctx)
    if not d then
        if err == nil then return nil, EOF end
        return nil, err
    end
    if #d > left then d = d:sub(1, left) end
    self.n = left - #d
    return d
end

---------------------------------------------------------------------------
-- multi_writer
---------------------------------------------------------------------------
local Multi = {}
Multi.__index = Multi
Multi.__name = "coronet.io.multi_writer"

--- multi_writer(w1, w2, ...) -> writer: each write goes to every writer
-- in turn (like tee); the first failure stops it.
function M.multi_writer(...)
    local ws = table.pack(...)
    for i = 1, ws.n do check(ws[i], "write", i, "multi_writer") end
    return setmetatable({_ws = ws}, Multi)
end

--- multi:write(data [, ctx]) -> #data | nil, err, index: index is the
-- writer that failed.
function Multi:write(data, ctx)
    local ws = self._ws
    for i = 1, ws.n do
        local ok, err = wwrite(ws[i], data, ctx)
        if not ok then return nil, err, i end
    end
    return #data
end

---------------------------------------------------------------------------
-- read_all
---------------------------------------------------------------------------

--- read_all(r [, max] [, ctx]) -> data | nil, err, partial: everything up
-- to EOF. With max, more than max bytes is refused: nil, ErrTooLong and
-- the first max bytes (no more than max + 64 KiB is ever held).
function M.read_all(r, max, ctx)
    if is_ctx(max) then max, ctx = nil, max end
    check(r, "read", 1, "read_all")
    local parts, n, total = {}, 0, 0
    while true do
        local want = CHUNK
        if max and max - total + 1 < want then want = max - total + 1 end
        local d, err = rread(r, want, ctx)
        if not d then
            if is_eof(err) then return concat(parts, "", 1, n) end
            return nil, err, concat(parts, "", 1, n)
        end
        if #d > 0 then
            n = n + 1
            parts[n], total = d, total + #d
        end
        if max and total > max then
            return nil, M.ErrTooLong, concat(parts, "", 1, n):sub(1, max)
        end
    end
end

---------------------------------------------------------------------------
-- copy
---------------------------------------------------------------------------

-- Conns take a net.buffer wherever they take a string, and read into one.
local BUFFER_IO = {["coronet.conn"] = true, ["coronet.tls_conn"] = true}

local function type_name(v)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name or nil
end

-- Conn to conn (a TLS one on either side): chunks of up to 64 KiB through
-- one reused net.buffer (read_into, write(buf)), so no chunk is a string.
local function copy_net_buffer(dst, src, n, ctx)
    local buf, done = core.buffer(CHUNK), 0
    while n == nil or n > 0 do
        local want = CHUNK
        if n and n < want then want = n end
        local k, err
        if ctx then k, err = src:read_into(buf, want, ctx) else k, err = src:read_into(buf, want) end
        if not k then
            if is_eof(err) then return done, n and EOF or nil end
            return done, err
        end
        local ok, werr, wn = wwrite(dst, buf, ctx)
        if not ok then return done + written(dst, wn), werr end
        buf:reset()
        done = done + k
        if n then n = n - k end
    end
    return done, nil
end

-- Through a buffer: chunks of up to 64 KiB as Lua strings.
local function copy_buffer(dst, src, n, ctx)
    if BUFFER_IO[type_name(src)] and BUFFER_IO[type_name(dst)] then
        return copy_net_buffer(dst, src, n, ctx)
    end
    local done = 0
    while n == nil or n > 0 do
        local want = CHUNK
        if n and n < want then want = n end
        local d, err = rread(src, want, ctx)
        if not d then
            if is_eof(err) then return done, n and EOF or nil end
            return done, err
        end
        if n and #d > n then d = d:sub(1, n) end
        if #d > 0 then
            local ok, werr, wn = wwrite(dst, d, ctx)
            if not ok then return done + written(dst, wn), werr end
            done = done + #d
            if n then n = n - #d end
        end
    end
    return done, nil
end

-- xcopy: copy n bytes (nil: to EOF); returns copied and nil, or copied and
-- the failure (net.EOF when n was given and the source ended first).
local xcopy
local function copy_limited(dst, lr, n, ctx)
    local lim = lr.n
    if lim <= 0 then return 0, n and n > 0 and EOF or nil end
    local m, by_limit = n, false
    if m == nil or lim < m then m, by_limit = lim, true end
    local done, err = xcopy(dst, lr.r, m, ctx)
    lr.n = lim - done
    if err == EOF then return done, n and EOF or nil end
    if err then return done, err end
    if by_limit and n then return done, EOF end  -- the limit ended it before n
    return done, nil
end

xcopy = function(dst, src, n, ctx)
    if named(dst, "coronet.bufio.writer") then
        local ok, err = dst:flush(ctx)
        if not ok then return 0, err end
        dst = dst:_target()
    end
    local done = 0
    if bufio.is_reader(src) then              -- its buffered bytes, then its source
        local k = src:buffered()
        if n and k > n then k = n end
        if k > 0 then
            local d = src:read(k)
            local ok, err, wn = wwrite(dst, d, ctx)
            if not ok then return written(dst, wn), err end
            done = k
            if n then
                n = n - k
                if n == 0 then return done, nil end
            end
        end
        src = src:_source()
    end
    if getmetatable(src) == Limited then
        local c, err = copy_limited(dst, src, n, ctx)
        return done + c, err
    end
    local c, err, partial = copy_fd(dst, src, n, ctx)
    if c == false then
        c, err = copy_buffer(dst, src, n, ctx)
        return done + c, err
    end
    if c then return done + c, nil end
    return done + partial, err
end

--- copy(dst, src [, n] [, ctx]) -> copied | nil, err, copied: copy src to
-- dst until EOF (then EOF is not an error), or exactly n bytes (then
-- fewer is nil, net.EOF, copied, like Go's CopyN). Between conns and
-- regular files the bytes stay in the kernel (splice, sendfile); a bufio
-- reader's buffered bytes go first and then its source's; between conns
-- where one is TLS, through one reused net.buffer; otherwise it copies
-- through 64 KiB strings. dst and src may be the same conn (an echo).
function M.copy(dst, src, n, ctx)
    if is_ctx(n) then n, ctx = nil, n end
    check(dst, "write", 1, "copy")
    check(src, "read", 2, "copy")
    if n ~= nil and math.type(n) ~= "integer" then
        error("bad argument #3 to 'copy' (integer expected)", 2)
    end
    if n and n < 0 then n = 0 end
    local done, err = xcopy(dst, src, n, ctx)
    if err then return nil, err, done end
    return done
end

return M

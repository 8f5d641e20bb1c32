--- coronet.bufio: buffered I/O (net.bufio), like Go's bufio.
-- `bufio.reader` is C (csrc/bufio.c): its buffer is a userdata-owned
-- slab, records are cut with memchr/memmem, and over a coronet conn it
-- recv()s straight into that buffer. This module adds the reader's
-- `lines`/`write_to`, the scanner, the writer and the sentinels.
-- See docs/bufio.md.
local core = require "coronet.core"
local errors = require "coronet.errors"

local EOF = errors.EOF
local concat = table.concat
local type, getmetatable, setmetatable, error, pairs = type, getmetatable, setmetatable, error, pairs
local newreader = core.bufio_reader

local M = {}

---------------------------------------------------------------------------
-- Sentinels
---------------------------------------------------------------------------
local function sentinel(code, msg)
    return errors.new{code = code, msg = msg, timeout = false}
end

--- ErrTooLong: a line or token longer than max_token (Go's bufio.ErrTooLong).
M.ErrTooLong = sentinel("too_long", "bufio.Scanner: token too long")
--- ErrShortWrite: a writer took fewer bytes than given and reported no
-- error (Go's io.ErrShortWrite).
M.ErrShortWrite = sentinel("short_write", "short write")
--- ErrInvalidUnreadByte / ErrInvalidUnreadRune: an unread that does not
-- follow the read it would undo (Go's bufio sentinels).
M.ErrInvalidUnreadByte = sentinel("invalid_unread_byte", "bufio: invalid use of UnreadByte")
M.ErrInvalidUnreadRune = sentinel("invalid_unread_rune", "bufio: invalid use of UnreadRune")
--- ErrNoProgress: a source returned no data and no error 100 times in a row.
M.ErrNoProgress = sentinel("no_progress", "multiple read calls return no data or error")
--- ErrFinalToken: a split function returns it to stop after its token.
M.ErrFinalToken = sentinel("final_token", "final token")
--- ErrNegativeAdvance / ErrAdvanceTooFar: a split function misbehaved.
M.ErrNegativeAdvance = sentinel("negative_advance", "bufio.Scanner: SplitFunc returns negative advance count")
M.ErrAdvanceTooFar = sentinel("advance_too_far", "bufio.Scanner: SplitFunc returns advance count beyond input")

local DEFAULT_SIZE, DEFAULT_MAX = 4096, 65536

--- is_reader(v) -> whether v is a bufio reader (by its metatable's
-- __name: a reader's metatable changes when it gets its finaliser).
local function is_reader(v)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name == "coronet.bufio.reader"
end
M.is_reader = is_reader

---------------------------------------------------------------------------
-- Reader (C) and its Lua methods
---------------------------------------------------------------------------
local Reader = {}

--- reader:lines([ctx]): an iterator over the lines (without LF or CRLF);
-- a last line without LF is yielded too, as io.lines and Go's Scanner do.
-- It ends at EOF; any other failure (a timeout, ErrTooLong) raises the
-- error object, as io.lines raises. Use read_line for failures as values.
function Reader:lines(ctx)
    return function()
        local line, err = self:_token(1, ctx)
        if line then return line end
        if err == EOF then return nil end
        error(err, 2)
    end
end

--- reader:write_to(dst [, ctx]) -> copied | nil, err, copied: copy
-- everything up to EOF to dst: the buffered bytes first, then the rest
-- through net.io.copy (splice/sendfile when the source is a conn).
function Reader:write_to(dst, ctx)
    return require("coronet.io").copy(dst, self, ctx)
end

local function is_ctx(v)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name == "coronet.context"
end

--- reader:read_into(buf [, max] [, ctx]) -> n | nil, err: append up to
-- max bytes to the net.buffer buf (default: what fits, as
-- conn:read_into): the buffered bytes first, with no read; with nothing
-- buffered, one read of the source straight into buf (the source's
-- read_into when it has one, as conns do; else its read, appended).
-- nil, net.EOF at the end.
function Reader:read_into(buf, max, ctx)
    if is_ctx(max) then max, ctx = nil, max end
    local n, err = self:_take_into(buf, max)
    if n ~= 0 then return n, err end
    local src = self:_source()
    if src.read_into then
        if ctx then return src:read_into(buf, max, ctx) end
        return src:read_into(buf, max)
    end
    local d
    if ctx and io.type(src) == nil then d, err = src:read(max or DEFAULT_MAX, ctx)
    else d, err = src:read(max or DEFAULT_MAX) end
    if not d then
        if err == nil then err = EOF end             -- a Lua file at its end
        return nil, err
    end
    buf:append(d)
    return #d
end

core.bufio_init({too_long = M.ErrTooLong, no_progress = M.ErrNoProgress,
                 invalid_unread_byte = M.ErrInvalidUnreadByte,
                 invalid_unread_rune = M.ErrInvalidUnreadRune}, Reader)

--- reader(r [, size | {size =, max_token =}]) -> reader: a buffered
-- reader over r, a coronet conn or anything with a `read(max [, ctx])`
-- method returning data or nil, err. The buffer starts at `size` (4096)
-- and grows up to `max_token` (64 KiB) for one long line only. C
-- (csrc/bufio.c), options included: making a reader runs no Lua.
-- @treturn userdata with read, read_full, read_line, read_until, peek,
-- discard, lines, buffered, size, write_to
M.reader = newreader

---------------------------------------------------------------------------
-- Split functions (Go's contract: fn(data, at_eof) -> advance, token, err)
---------------------------------------------------------------------------
-- The scanner runs the built-in ones in C (reader:_token); as Lua
-- functions they can also be called, wrapped or reused by custom splits.

local function drop_cr(s)
    if s:byte(-1) == 13 then return s:sub(1, -2) end
    return s
end

--- scan_lines: lines without their LF or CRLF; a last line without LF too.
function M.scan_lines(data, at_eof)
    if at_eof and #data == 0 then return 0, nil end
    local i = data:find("\n", 1, true)
    if i then return i, drop_cr(data:sub(1, i - 1)) end
    if at_eof then return #data, drop_cr(data) end
    return 0, nil
end

--- scan_bytes: each byte.
function M.scan_bytes(data, at_eof)
    if at_eof and #data == 0 then return 0, nil end
    return 1, data:sub(1, 1)
end

-- decode: the UTF-8 rune at s[i] and its width (Go's utf8.DecodeRune: an
-- invalid byte is U+FFFD of width 1); cut is true when s ends inside a
-- sequence that is valid so far (Go's utf8.FullRune is false).
local function decode(s, i)
    local b0 = s:byte(i)
    if b0 < 0x80 then return b0, 1 end
    local need, lo, hi = 0, 0x80, 0xBF
    if b0 >= 0xC2 and b0 < 0xE0 then
        need = 2
    elseif b0 >= 0xE0 and b0 < 0xF0 then
        need = 3
        if b0 == 0xE0 then lo = 0xA0 elseif b0 == 0xED then hi = 0x9F end
    elseif b0 >= 0xF0 and b0 < 0xF5 then
        need = 4
        if b0 == 0xF0 then lo = 0x90 elseif b0 == 0xF4 then hi = 0x8F end
    end
    if need == 0 then return 0xFFFD, 1 end
    local cp = b0 & (0xFF >> (need + 1))
    for k = 1, need - 1 do
        local c = s:byte(i + k)
        if c == nil then return 0xFFFD, 1, true end
        if k > 1 then lo, hi = 0x80, 0xBF end
        if c < lo or c > hi then return 0xFFFD, 1 end
        cp = (cp << 6) | (c & 0x3F)
    end
    return cp, need
end

--- scan_runes: each UTF-8 rune; an invalid byte is U+FFFD ("\xEF\xBF\xBD").
function M.scan_runes(data, at_eof)
    if #data == 0 then return 0, nil end
    local cp, w, cut = decode(data, 1)
    if cut and not at_eof then return 0, nil end
    if cp == 0xFFFD and w == 1 then return 1, "\xEF\xBF\xBD" end
    return w, data:sub(1, w)
end

local function is_space(cp)
    if cp <= 0xFF then
        return cp == 32 or (cp >= 9 and cp <= 13) or cp == 0x85 or cp == 0xA0
    end
    if cp >= 0x2000 and cp <= 0x200A then return true end
    return cp == 0x1680 or cp == 0x2028 or cp == 0x2029 or cp == 0x202F or cp == 0x205F
        or cp == 0x3000
end

--- scan_words: runs of non-space runes (Go's unicode spaces); leading
-- spaces are skipped.
function M.scan_words(data, at_eof)
    local start, n = 1, #data
    while start <= n do
        local cp, w = decode(data, start)
        if not is_space(cp) then break end
        start = start + w
    end
    local i = start
    while i <= n do
        local cp, w = decode(data, i)
        if is_space(cp) then return i + w - 1, data:sub(start, i - 1) end
        i = i + w
    end
    if at_eof and n >= start then return n, data:sub(start) end
    return start - 1, nil
end

local BUILTIN = {[M.scan_lines] = 1, [M.scan_words] = 2, [M.scan_bytes] = 3, [M.scan_runes] = 4}

---------------------------------------------------------------------------
-- Scanner
---------------------------------------------------------------------------
local Scanner = {}
Scanner.__index = Scanner
Scanner.__name = "coronet.bufio.scanner"

local MAX_EMPTIES = 100

--- scanner(r [, {split =, max_token =}]) -> scanner: tokens from r (a
-- conn, a bufio reader or anything with read(max)); split defaults to
-- scan_lines, max_token to 64 KiB. Like Go's, it stops for good at the
-- end or at the first failure (see :err()).
function M.scanner(r, opts)
    opts = opts or {}
    for k in pairs(opts) do
        if k ~= "split" and k ~= "max_token" then
            error("bufio.scanner: unknown option '" .. tostring(k) .. "'", 2)
        end
    end
    local split = opts.split or M.scan_lines
    if type(split) ~= "function" then error("bufio.scanner: split must be a function", 2) end
    local max = opts.max_token or DEFAULT_MAX
    return setmetatable({_rd = newreader(r, nil, max), _kind = BUILTIN[split], _split = split,
                         _empties = 0, _max = max}, Scanner)
end

local function stop(sc, err)
    sc._done, sc._tok = true, nil
    if err ~= nil and err ~= EOF then sc._err = err end
    return false
end

-- Found a token (advance 0 counts towards Go's empty-token guard).
local function got(sc, adv, tok)
    if adv > 0 then
        sc._empties = 0
    else
        sc._empties = sc._empties + 1
        if sc._empties > MAX_EMPTIES then
            error("bufio.Scanner: too many empty tokens without progressing", 3)
        end
    end
    sc._tok = tok
    return true
end

-- A custom split function: call it on the buffered bytes, read more
-- when it asks for more. It sees at most max_token bytes, as Go's does
-- (its buffer holds no more), even when a Lua source returned more than
-- it was asked for: a token that does not fit is ErrTooLong on every path.
local function scan_custom(sc, ctx)
    local rd, split, max = sc._rd, sc._split, sc._max
    while true do
        local n = rd:buffered()
        local more = true                -- read more before calling split again
        local full = n >= max
        if full then n = max end
        if n > 0 or sc._eof then
            local data = n > 0 and rd:peek(n) or ""
            local adv, tok, err = split(data, sc._eof == true and not full)
            adv = adv or 0
            if err == M.ErrFinalToken then
                sc._done = true
                sc._tok = tok
                return tok ~= nil
            end
            if err ~= nil then return stop(sc, err) end
            if adv < 0 then return stop(sc, M.ErrNegativeAdvance) end
            if adv > n then return stop(sc, M.ErrAdvanceTooFar) end
            if adv > 0 then rd:discard(adv) end
            if tok ~= nil then return got(sc, adv, tok) end
            if sc._eof and adv == 0 then return stop(sc, nil) end
            more = not sc._eof and (adv == 0 or adv == n)
            if full and adv == 0 then return stop(sc, M.ErrTooLong) end
        end
        if more and rd:buffered() < max then    -- (a full window is split first)
            local ok, ferr = rd:_fill(ctx)
            if not ok then
                if ferr ~= EOF then return stop(sc, ferr) end
                sc._eof = true
            end
        end
    end
end

--- scanner:scan([ctx]) -> boolean: advance to the next token; false at
-- the end or on a failure (then :err() says which).
function Scanner:scan(ctx)
    if self._done then return false end
    local kind = self._kind
    if kind then
        local tok, err = self._rd:_token(kind, ctx)
        if tok then
            self._tok = tok
            return true
        end
        return stop(self, err)
    end
    return scan_custom(self, ctx)
end

--- scanner:text() -> the last token (nil before the first scan and at the end).
function Scanner:text() return self._tok end

--- scanner:err() -> nil after a clean end (EOF), else the failure.
function Scanner:err() return self._err end

--- scanner:each([ctx]): `for tok in sc:each() do`; check sc:err() after.
function Scanner:each(ctx)
    return function()
        if self:scan(ctx) then return self._tok end
        return nil
    end
end

function Scanner:__tostring()
    return "bufio.scanner" .. (self._done and " (done)" or "")
end

---------------------------------------------------------------------------
-- Writer
---------------------------------------------------------------------------
local Writer = {}
Writer.__index = Writer
Writer.__name = "coronet.bufio.writer"

--- writer(w [, size]) -> writer: buffers writes to w (a conn or anything
-- with write(data [, ctx])) in pieces of up to size (4096) bytes.
function M.writer(w, size)
    size = size or DEFAULT_SIZE
    if type(size) ~= "number" or size < 1 then error("bufio.writer: size must be positive", 2) end
    local t = type(w)
    if (t ~= "table" and t ~= "userdata") or w.write == nil then
        error("bad argument #1 to 'writer' (a conn or an object with write(data) expected)", 2)
    end
    return setmetatable({_w = w, _size = size, _n = 0, _parts = {}, _np = 0}, Writer)
end

local function is_file(w) return io.type(w) ~= nil end

-- w:write(data [, ctx]), without passing ctx to a Lua file.
local function wwrite(w, data, ctx)
    if ctx and not is_file(w) then return w:write(data, ctx) end
    return w:write(data)
end

-- wwrite_all(w, data, ctx) -> true | nil, err, written: one write of
-- data; a count below #data with no error is ErrShortWrite. The sink's
-- contract: the count it wrote, or any other true value (a Lua file
-- returns itself) for all of it; or nil, err [, written].
local function wwrite_all(w, data, ctx)
    local ok, err, done = wwrite(w, data, ctx)
    if ok then
        if type(ok) == "number" and ok < #data then
            return nil, M.ErrShortWrite, ok > 0 and ok or 0
        end
        return true
    end
    if is_file(w) then done = nil end             -- a file's third value is errno
    return nil, err, type(done) == "number" and done > 0 and done or 0
end

--- writer:flush([ctx]) -> true | nil, err: write out the buffered bytes.
-- On a failure what was not written stays buffered (a later flush
-- retries), and err comes from the underlying write; a write that took
-- fewer bytes without an error is ErrShortWrite.
function Writer:flush(ctx)
    if self._n == 0 then return true end
    local parts, np = self._parts, self._np
    local data = np == 1 and parts[1] or concat(parts, "", 1, np)
    for i = 1, np do parts[i] = nil end
    local ok, err, done = wwrite_all(self._w, data, ctx)
    if ok then
        self._n, self._np = 0, 0
        return true
    end
    local rest = done > 0 and data:sub(done + 1) or data
    parts[1], self._np, self._n = rest, 1, #rest
    return nil, err
end

-- Sinks whose write takes a net.buffer as it takes a string.
local BUFFER_SINKS = {["coronet.conn"] = true, ["coronet.tls_conn"] = true,
                      ["coronet.bufio.writer"] = true}

local function type_name(v)
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__name or nil
end

-- write_buffer(self, buf, ctx): Writer:write of a net.buffer. A small one
-- is copied in (buf may change once write returns); one as large as the
-- buffer goes straight to the sink, as a buffer when it takes one.
local function write_buffer(self, buf, ctx)
    local len = #buf
    if len < self._size then
        return self:write(buf:tostring(), ctx)
    end
    if self._n > 0 then
        local ok, err = self:flush(ctx)
        if not ok then return nil, err, 0 end
    end
    local data = BUFFER_SINKS[type_name(self._w)] and buf or buf:tostring()
    local ok, err, done = wwrite_all(self._w, data, ctx)
    if not ok then return nil, err, done end
    return len
end

--- writer:write(data [, ctx]) -> #data | nil, err, accepted: buffer data,
-- flushing when it would overflow; data as large as the buffer goes
-- straight through once the buffer is flushed. accepted counts the bytes
-- of data that were written or buffered before the failure. data may be
-- a net.buffer: its bytes are written (not consumed), a large one
-- straight from the buffer when the sink is a conn.
function Writer:write(data, ctx)
    if type(data) ~= "string" then
        if type_name(data) == "coronet.buffer" then return write_buffer(self, data, ctx) end
        if type(data) ~= "number" then
            error("bad argument #1 to 'write' (string expected, got " .. type(data) .. ")", 2)
        end
        data = tostring(data)
    end
    local len = #data
    if self._n + len <= self._size then
        if len > 0 then
            local np = self._np + 1
            self._parts[np], self._np, self._n = data, np, self._n + len
        end
        return len
    end
    if self._n > 0 then
        local ok, err = self:flush(ctx)
        if not ok then return nil, err, 0 end
    end
    if len >= self._size then
        local ok, err, done = wwrite_all(self._w, data, ctx)
        if not ok then return nil, err, done end
        return len
    end
    self._parts[1], self._np, self._n = data, 1, len
    return len
end

--- writer:reset(w): drop what is buffered (unflushed bytes are lost)
-- and write to w from now on (Go's Writer.Reset); the size stays.
function Writer:reset(w)
    local t = type(w)
    if (t ~= "table" and t ~= "userdata") or w.write == nil then
        error("bad argument #1 to 'reset' (a conn or an object with write(data) expected)", 2)
    end
    for i = 1, self._np do self._parts[i] = nil end
    self._w, self._n, self._np = w, 0, 0
end

--- writer:buffered() -> bytes waiting for a flush.
function Writer:buffered() return self._n end
--- writer:available() -> bytes that still fit before a flush.
function Writer:available() return self._size - self._n end
--- writer:size() -> the buffer size.
function Writer:size() return self._size end
--- writer:_target() -> the writer it writes to (for net.io.copy).
function Writer:_target() return self._w end

function Writer:__tostring()
    return "bufio.writer (" .. self._n .. " buffered)"
end

return M

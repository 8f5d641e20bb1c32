--- coronet.frame: length-prefixed messages (net.frame).
-- Each message is a header of 1, 2, 4 or 8 bytes holding the body's
-- length (big-endian unless told otherwise), then the body. The reader
-- checks the announced length against `max` before it reads or allocates
-- anything for the body, so a hostile 0xFFFFFFFF costs nothing. See
-- docs/bufio.md.
local errors = require "coronet.errors"
local bufio = require "coronet.bufio"

local EOF, ErrUnexpectedEOF, ErrFrameTooLarge = errors.EOF, errors.ErrUnexpectedEOF,
    errors.ErrFrameTooLarge
local spack, sunpack = string.pack, string.unpack
local type, error, setmetatable, pairs, tostring = type, error, setmetatable, pairs, tostring
local iotype = io.type

local M = {}

local DEFAULT_MAX = 1 << 20
local FORMATS = {[1] = "I1", [2] = "I2", [4] = "I4", [8] = "I8"}
local ENDIAN = {big = ">", little = "<"}
local OPTS = {header = true, endian = true, max = true}

-- The header size, its string.pack format and the effective max.
local function parse_opts(opts, what)
    opts = opts or {}
    if type(opts) ~= "table" then error(what .. ": options must be a table", 3) end
    for k in pairs(opts) do
        if not OPTS[k] then error(what .. ": unknown option '" .. tostring(k) .. "'", 3) end
    end
    local header = opts.header or 4
    if not FORMATS[header] then error(what .. ": header must be 1, 2, 4 or 8", 3) end
    local order = ENDIAN[opts.endian or "big"]
    if not order then error(what .. ": endian must be \"big\" or \"little\"", 3) end
    local max = opts.max or DEFAULT_MAX
    if math.type(max) ~= "integer" or max < 0 then
        error(what .. ": max must be a non-negative integer", 3)
    end
    if header < 8 and max > (1 << (8 * header)) - 1 then max = (1 << (8 * header)) - 1 end
    return header, order .. FORMATS[header], max
end

---------------------------------------------------------------------------
-- Reader
---------------------------------------------------------------------------
local Reader = {}
Reader.__index = Reader
Reader.__name = "coronet.frame.reader"

--- reader(r [, {header = 4, endian = "big", max = 1 MiB}]) -> reader:
-- messages from r (a conn, a bufio reader, or anything with read(max)).
-- A bufio reader is used as it is; anything else gets one.
function M.reader(r, opts)
    local header, fmt, max = parse_opts(opts, "frame.reader")
    local rd = bufio.is_reader(r) and r or bufio.reader(r)
    return setmetatable({_rd = rd, _header = header, _fmt = fmt, _max = max}, Reader)
end

--- reader:read([ctx]) -> msg | nil, err [, extra]: the next message.
-- nil, net.EOF at a clean end (between messages); EOF inside the header
-- or the body is nil, ErrUnexpectedEOF, partial (the bytes that came). A
-- length over max is nil, ErrFrameTooLarge, length, before anything is
-- allocated for it (the stream cannot be resynchronised: close it).
-- Other failures (a deadline, ctx) consume nothing: the call can be
-- retried.
function Reader:read(ctx)
    local rd, header = self._rd, self._header
    local h, err, part = rd:peek(header, ctx)
    if not h then
        if err == EOF and part and #part > 0 then
            rd:discard(#part)
            return nil, ErrUnexpectedEOF, part
        end
        return nil, err
    end
    local n = sunpack(self._fmt, h)
    if n < 0 or n > self._max then return nil, ErrFrameTooLarge, n end
    return rd:_read_full_at(header, n, ctx)
end

--- reader:each([ctx]): `for msg in fr:each() do`; it ends at EOF and
-- raises any other failure (read() returns them as values).
function Reader:each(ctx)
    return function()
        local msg, err = self:read(ctx)
        if msg then return msg end
        if err == EOF then return nil end
        error(err, 2)
    end
end

function Reader:__tostring() return "frame.reader" end

---------------------------------------------------------------------------
-- Writer
---------------------------------------------------------------------------
local Writer = {}
Writer.__index = Writer
Writer.__name = "coronet.frame.writer"

local COALESCE = 65536      -- up to this size, header and body go in one write

--- writer(w [, {header = 4, endian = "big", max = 1 MiB}]) -> writer:
-- messages to w (a conn, a bufio writer, or anything with write(data)).
function M.writer(w, opts)
    local _, fmt, max = parse_opts(opts, "frame.writer")
    local t = type(w)
    if (t ~= "table" and t ~= "userdata") or w.write == nil then
        error("bad argument #1 to 'writer' (an object with write() expected, got " .. t .. ")", 2)
    end
    return setmetatable({_w = w, _fmt = fmt, _max = max}, Writer)
end

local function wwrite(w, data, ctx)
    if ctx and not iotype(w) then return w:write(data, ctx) end
    return w:write(data)
end

--- writer:write(msg [, ctx]) -> #msg | nil, err: one message. Longer
-- than max (or than the header can say) is nil, ErrFrameTooLarge, and
-- nothing is written.
function Writer:write(msg, ctx)
    if type(msg) ~= "string" then
        error("bad argument #1 to 'write' (string expected, got " .. type(msg) .. ")", 2)
    end
    local n = #msg
    if n > self._max then return nil, ErrFrameTooLarge, n end
    local h, w = spack(self._fmt, n), self._w
    local ok, err
    if n <= COALESCE then
        ok, err = wwrite(w, h .. msg, ctx)
    else
        ok, err = wwrite(w, h, ctx)
        if ok then ok, err = wwrite(w, msg, ctx) end
    end
    if not ok then return nil, err end
    return n
end

--- writer:flush([ctx]) -> true | nil, err: flush w if it buffers.
function Writer:flush(ctx)
    local w = self._w
    if type(w) == "table" and w.flush or iotype(w) then return w:flush(ctx) end
    return true
end

function Writer:__tostring() return "frame.writer" end

return M

--- coronet.pool_map: one net.pool per key (an address, or anything that
-- makes conns differ: address, TLS server name, ALPN), as Go's Transport
-- keeps idle conns per host (net.pool_map). `net.pool_map{...}` calls this
-- module's `new`.
--
-- The limits apply per key (Go's MaxIdleConnsPerHost / MaxConnsPerHost);
-- there is no total cap across keys. A key's pool is made on its first
-- `get` and dropped once it has no conn open and nobody waiting, so a map
-- fed an endless stream of keys holds memory only for the keys in use.
local pool = require "coronet.pool"
local errors = require "coronet.errors"

local type, error, pairs, pcall, setmetatable = type, error, pairs, pcall, setmetatable

local M = {}

local Map = {}
Map.__index = Map
Map.__name = "coronet.pool_map"

--- new: a pool map (also `net.pool_map{...}`).
-- @tparam table opts `dial = fn(key, ctx) -> conn | nil, err` (required)
--   and the net.pool options for each key's pool (max_idle, max_open,
--   idle_timeout, max_lifetime, health).
-- @treturn pool_map
function M.new(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'pool_map' (table expected, got " .. type(opts) .. ")", 2)
    end
    if type(opts.dial) ~= "function" then
        error("pool_map: option 'dial' must be a function (got " .. type(opts.dial) .. ")", 2)
    end
    local per = {}
    for k, v in pairs(opts) do per[k] = v end
    per.dial = function() end
    pool.new(per)                            -- raises now for a bad option, not on first get
    return setmetatable({_opts = opts, _pools = {}, _owner = {}, _closed = false}, Map)
end

setmetatable(M, {__call = function(_, opts) return M.new(opts) end})

-- pool_for(self, key) -> the key's pool, made on demand.
local function pool_for(self, key)
    local p = self._pools[key]
    if p then return p end
    local per = {}
    for k, v in pairs(self._opts) do per[k] = v end
    local dial = self._opts.dial
    per.dial = function(ctx) return dial(key, ctx) end
    p = pool.new(per)
    self._pools[key] = p
    return p
end

-- drop(self, key, p): forget p when it holds nothing (its janitor, if any,
-- ends when woken by close).
local function drop(self, key, p)
    if p._open == 0 and p:stats().waiting == 0 and self._pools[key] == p then
        self._pools[key] = nil
        p:close()
    end
end

--- pool_map:get: a conn for `key` from its pool (see pool:get).
-- @param key a string or any value usable as a table key
-- @param[opt] ctx a net.context
-- @treturn[1] conn
-- @treturn[2] nil, err (ErrClosed after close)
function Map:get(key, ctx)
    if key == nil then error("bad argument #1 to 'get' (key expected, got nil)", 2) end
    if self._closed then return nil, errors.ErrClosed end
    local p = pool_for(self, key)
    local c, err = p:get(ctx)
    if not c then
        drop(self, key, p)
        return nil, err
    end
    self._owner[c] = key
    return c
end

--- pool_map:put: give `conn` back to the pool it came from (see pool:put).
-- Raises when conn is not in use from this map.
-- @treturn boolean true
function Map:put(conn, err)
    local key = conn ~= nil and self._owner[conn]
    if key == nil then error("pool_map: put of a conn that is not in use from this map", 2) end
    self._owner[conn] = nil
    local p = self._pools[key]
    p:put(conn, err)
    drop(self, key, p)
    return true
end

--- pool_map:pool: the pool for `key` (made on demand), for its stats.
function Map:pool(key) return pool_for(self, key) end

--- pool_map:stats: {[key] = pool:stats(), ...} for the keys with a pool.
function Map:stats()
    local out = {}
    for k, p in pairs(self._pools) do out[k] = p:stats() end
    return out
end

--- pool_map:close: close every key's pool (see pool:close); later gets
-- return ErrClosed and later puts close their conn.
-- @treturn[1] boolean true
-- @treturn[2] nil, ErrClosed if already closed
function Map:close()
    if self._closed then return nil, errors.ErrClosed end
    self._closed = true
    for _, p in pairs(self._pools) do p:close() end
    return true
end

function Map:__tostring()
    local n = 0
    for _ in pairs(self._pools) do n = n + 1 end
    return "pool_map: " .. n .. " keys" .. (self._closed and " (closed)" or "")
end

function Map:__close() self:close() end
function Map:__gc() pcall(Map.close, self) end

M.Map = Map
return M

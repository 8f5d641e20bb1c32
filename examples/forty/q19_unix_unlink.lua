#!/usr/bin/env lua5.4
--- examples/forty/q19_unix_unlink.lua: Q19, the unix socket file on shutdown.
-- coronet differs from Go here on purpose: a unix listener that created its
-- path removes it on close (opts.unlink_on_close, default true), so the
-- next listen on the path works without a manual os.remove. With
-- unlink_on_close = false you get Go's behaviour: the file stays and a new
-- listen fails with EADDRINUSE until someone removes it. An abstract
-- address (@name, Linux) has no file at all: it disappears with the socket.
--   lua5.4 examples/forty/q19_unix_unlink.lua [--selftest]
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/lib/?.lua;" .. here .. "/../../lua/?.lua;" .. here .. "/../../lua/?/init.lua;" .. package.path
package.cpath = here .. "/../../build/?.so;" .. package.cpath
local F = require "forty"
local net = require "coronet"

-- a socket file can't be opened (ENXIO), but that still says it exists
local function exists(p)
    local f, _, errno = io.open(p)
    if f then f:close() end
    return f ~= nil or errno ~= 2                 -- 2: ENOENT
end

local dir = F.sh("mktemp -d"):gsub("%s+$", "")
local path = dir .. "/q19.sock"
net.run(function()
    F.say("Q19. Go's behaviour: unlink_on_close = false")
    local ln = assert(net.listen("unix", path, {unlink_on_close = false}))
    ln:close()
    F.check(exists(path), "the socket file outlives the listener")
    local again, err = net.listen("unix", path)
    F.say("  listen again -> %s", tostring(err))
    F.check(again == nil and err.code == "EADDRINUSE", "a new listen fails: address already in use")
    os.remove(path)                                -- Go's defer os.Remove(path)
    F.check(not exists(path), "os.remove(path) clears the way")

    F.say("Q19. coronet's default: the listener removes the path it created")
    ln = assert(net.listen("unix", path))
    F.check(exists(path), "the listener created the file")
    ln:close()
    F.check(not exists(path), "close() removed it")
    ln = assert(net.listen("unix", path))
    F.check(ln ~= nil, "so the next listen on the path just works")
    ln:close()

    F.say("Q19. the abstract namespace")
    local name = "@coronet-q19-" .. require("coronet.core").getpid()
    local ab = assert(net.listen("unix", name))
    local c = assert(net.dial("unix", name))
    c:close()
    ab:close()
    local ab2, err2 = net.listen("unix", name)
    F.check(ab2 ~= nil, "an abstract name is free again once the socket closes (no file)", tostring(err2))
    if ab2 then ab2:close() end
end)
local left = F.sh("ls -A '" .. dir .. "'")
F.check(left == "", "nothing is left in the temp dir", left)
os.execute("rm -rf '" .. dir .. "'")
F.done()

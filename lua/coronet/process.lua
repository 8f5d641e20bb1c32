--- coronet.process: child processes with descriptor hand-off.
-- `net.process.spawn{path, args = {...}, env = {...}, files = {ln, ...}}`
-- starts a program with the given listeners/conns/fds at fd 3.. and
-- systemd's LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES set, so a coronet
-- child finds them with `net.listeners_from_env()`. The child starts with
-- default signal dispositions and an empty mask. `proc:wait([ctx])` parks
-- on a pidfd in the loop (no SIGCHLD handler, no reaping races with
-- os.execute or io.popen).
--
-- The readiness handshake (`ready_pipe` / `net.process.ready()`) lets a
-- parent learn that the child serves: the zero-downtime restart
-- (coronet.restart) and prefork (coronet.prefork) are built on it.
local core = require "coronet.core"

local M = {}

local READY_ENV = "CORONET_READY_FD"

---------------------------------------------------------------------------
-- Processes
---------------------------------------------------------------------------
local Process = {}
Process.__index = Process
Process.__name = "coronet.process"

-- An fd from a listener, conn, packet conn (anything with :fd()) or an integer.
local function fd_of(v, what)
    if math.type(v) == "integer" then return v end
    local ok, fd = pcall(function() return v:fd() end)
    if ok and math.type(fd) == "integer" and fd >= 0 then return fd end
    error("bad " .. what .. " (an fd, or a listener or conn that is open, expected)", 3)
end

local function stdio_fd(v, name)
    if v == nil or v == "inherit" then return -1 end
    if v == "null" then return -2 end
    return fd_of(v, name)
end

local LISTEN_VARS = {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}

--- spawn: start a program.
-- `opts`: `path` (or opts[1]; without a slash it is looked up in PATH;
-- it is also argv[0]), `args` (argv[1..]), `env` (`{NAME = value | false}`
-- over this process's environment; false removes), `files` (listeners,
-- conns or fds, placed at fd 3, 4, ... and announced with LISTEN_FDS,
-- LISTEN_PID = the child's pid, LISTEN_FDNAMES from `names`, default
-- "unknown" each), `extra_files` (placed after `files`, not announced),
-- `stdin`/`stdout`/`stderr` ("inherit", the default; "null"; or a conn or
-- fd), `dir` (working directory). Inherited LISTEN_* variables are never
-- passed on. The caller keeps its own copies of the files.
-- @treturn[1] process with `pid`, `wait`, `kill`, `close`
-- @treturn[2] nil
-- @treturn[2] error (exec failures such as ENOENT are reported here)
function M.spawn(opts)
    if type(opts) ~= "table" then error("bad argument #1 to 'spawn' (table expected)", 2) end
    local path = opts.path or opts[1]
    if type(path) ~= "string" then error("bad argument #1 to 'spawn' (path expected)", 2) end
    local argv = {path}
    for i, a in ipairs(opts.args or {}) do
        if type(a) ~= "string" and type(a) ~= "number" then
            error("bad argument #1 to 'spawn' (args[" .. i .. "] must be a string)", 2)
        end
        argv[#argv + 1] = tostring(a)
    end
    local env = {}
    for k, v in pairs(opts.env or {}) do
        if type(k) ~= "string" or k:find("=", 1, true) or
           (v ~= false and type(v) ~= "string" and type(v) ~= "number") then
            error("bad argument #1 to 'spawn' (env maps names to strings or false)", 2)
        end
        env[k] = v ~= false and tostring(v) or false
    end
    local files, fds, names = opts.files or {}, {}, {}
    for i, f in ipairs(files) do
        fds[i] = fd_of(f, "files[" .. i .. "]")
        local name = opts.names and opts.names[i] or "unknown"
        if name:find(":", 1, true) then error("bad argument #1 to 'spawn' (a name may not contain ':')", 2) end
        names[i] = name
    end
    for _, v in ipairs(LISTEN_VARS) do env[v] = false end
    if #fds > 0 then
        env.LISTEN_FDS = tostring(#fds)
        env.LISTEN_FDNAMES = table.concat(names, ":")
    end
    for i, f in ipairs(opts.extra_files or {}) do fds[#fds + 1] = fd_of(f, "extra_files[" .. i .. "]") end
    local h, err = core.process_spawn(argv[1], argv, env, fds, #files > 0,
        stdio_fd(opts.stdin, "stdin"), stdio_fd(opts.stdout, "stdout"),
        stdio_fd(opts.stderr, "stderr"), opts.dir)
    if not h then return nil, err end
    return setmetatable({pid = h:_pid(), _h = h}, Process)
end

--- adopt: a process object for an existing pid (a pidfd): `kill` works
-- for any process we may signal, `wait` only for our own child (for
-- example a restarted server's copy reparented to us as a subreaper).
-- @treturn[1] process
-- @treturn[2] nil
-- @treturn[2] error
function M.adopt(pid)
    local h, err = core.process_adopt(pid)
    if not h then return nil, err end
    return setmetatable({pid = pid, _h = h}, Process)
end

--- set_subreaper: become (or stop being) the reaper of orphaned
-- descendants (PR_SET_CHILD_SUBREAPER): a supervisor that must wait for
-- the copy a restarted child spawned uses it.
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] error
M.set_subreaper = core.set_subreaper

--- process:wait: block until the child ends (or ctx ends) and reap it.
-- @param[opt] ctx a net.context
-- @treturn[1] table `{code = n}` for an exit, `{signal = "TERM"}` for a
-- signal death; every later call returns the same
-- @treturn[2] nil
-- @treturn[2] error ctx:err(), ErrClosed after close, ErrBusy when
-- another task waits already
function Process:wait(ctx)
    return self._h:_wait(ctx)
end

--- process:kill: send a signal (default "KILL") through the pidfd, so a
-- recycled pid is never hit.
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] error (ESRCH once the child was reaped)
function Process:kill(sig)
    return self._h:_kill(sig or "KILL")
end

--- process:close: release the pidfd without waiting. A child that was
-- never waited for stays a zombie until this process exits (as in Go).
function Process:close()
    self._h:_close()
end

function Process:__tostring()
    return "process " .. self.pid
end

---------------------------------------------------------------------------
-- Readiness handshake
---------------------------------------------------------------------------

--- ready_pipe: a pipe for the readiness handshake.
-- Pass `env = {[M.READY_ENV] = tostring(fd_in_child)}` and `w` in the
-- child's files, then close `w` here and `wait_ready` on `r`.
-- @treturn integer r the read end (close-on-exec, non-blocking)
-- @treturn integer w the write end (close-on-exec; spawn clears it in the child)
M.pipe = core.pipe
M.READY_ENV = READY_ENV

--- wait_ready: wait on a readiness pipe's read end `r` for the child's
-- byte; closes `r`.
-- @param ctx a net.context bounding the wait (a ready timeout)
-- @treturn[1] boolean true: the child said it is ready
-- @treturn[2] nil
-- @treturn[2] error EOF (the child exited or closed the pipe unready) or ctx:err()
function M.wait_ready(r, ctx)
    local w = assert(core.watch_fd(r))
    local data, err = w:read(1, ctx)
    w:close()
    core.close_fd(r)
    if data then return true end
    return nil, err
end

--- ready: in a child started with a readiness pipe (CORONET_READY_FD set),
-- tell the parent it serves: one byte, then the pipe is closed and the
-- variable removed (a grandchild does not see it). Elsewhere a no-op.
-- @treturn[1] boolean true when a parent was told, false when there is none
-- @treturn[2] nil
-- @treturn[2] error the write failed (the parent gave up on us)
function M.ready()
    local fd = tonumber(os.getenv(READY_ENV))
    if not fd then return false end
    core.unsetenv(READY_ENV)
    local ok, err = core.write_fd(fd, "R")
    core.close_fd(fd)
    if not ok then return nil, err end
    return true
end

--- self_command: the program and arguments that started this process
-- (/proc/self/exe and the script with its arguments from `arg`), for
-- spawning a copy of oneself.
-- @treturn string path
-- @treturn table args
function M.self_command()
    local args = {}
    local a = rawget(_G, "arg")
    if type(a) == "table" then
        local lo = 0
        while a[lo - 1] ~= nil do lo = lo - 1 end
        for i = lo + 1, #a do args[#args + 1] = a[i] end
    end
    return core.exe_path(), args
end

--- getpid: this process's id.
M.getpid = core.getpid

--- cpu_count: the number of online CPUs.
M.cpu_count = core.cpu_count

M.Process = Process
return M

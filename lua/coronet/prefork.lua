--- coronet.prefork: serve on every core with N worker processes sharing
-- the listening socket(s), as nginx's workers do.
--
--     net.prefork{workers = 4, addresses = {"127.0.0.1:8080"},
--                 serve = function(listeners, ctx) ... end}
--
-- The supervisor (the process you start) listens, then spawns N copies of
-- this very program (net.process.self_command()) with the listening
-- sockets at fd 3.. and CORONET_PREFORK_WORKER set. In a copy the same
-- `net.prefork{...}` call becomes the worker: it takes the listeners from
-- the environment and calls `serve(listeners, ctx)`; ctx ends on TERM or
-- INT, and the worker exits when serve returns. So the code before the
-- call runs in every process: listen through `addresses` (the supervisor
-- does it once), not before the call; or pass `listeners =
-- net.listeners_from_env()` (a worker then finds its own copies).
--
-- Workers share one inherited fd (one accept queue), not one SO_REUSEPORT
-- listener each: a worker that stalls or dies strands nothing (with
-- reuseport the kernel keeps hashing conns to a stuck worker's queue, and
-- a dead worker's queued conns are reset), and the same fds go on to a
-- restart. bench/prefork_spread.lua measures both; see docs/process.md.
--
-- Why exec and not a bare fork: a forked copy would share the loop's
-- epoll set, the c-ares channel and the signal pipe with the supervisor;
-- a fresh program has none of that, and starts with clean signal state.
local context = require "coronet.context"
local process = require "coronet.process"
local restart = require "coronet.restart"
local sched = require "coronet.sched"
local signal = require "coronet.signal"
local stream = require "coronet.stream"

local WORKER_ENV = "CORONET_PREFORK_WORKER"

local M = {WORKER_ENV = WORKER_ENV}

--- is_worker: whether this process is a prefork worker (then the index,
-- 1..N, as a string).
function M.is_worker()
    return os.getenv(WORKER_ENV)
end

local function log_default(...)
    io.stderr:write("coronet.prefork[", process.getpid(), "]: ", ...)
    io.stderr:write("\n")
end

-- {network, address} or "address" (tcp) -> a listener.
local function listen_all(addresses)
    local lns, names = {}, {}
    for i, a in ipairs(addresses) do
        local net, addr = "tcp", a
        if type(a) == "table" then net, addr = a[1], a[2] end
        local ln, err = stream.listen(net, addr)
        if not ln then
            for j = 1, #lns do lns[j]:close() end
            return nil, err
        end
        lns[i], names[i] = ln, restart.key(net, addr)
    end
    return lns, names
end

---------------------------------------------------------------------------
-- The worker side
---------------------------------------------------------------------------
local function worker(opts)
    local lns = assert(stream.listeners_from_env())
    -- the script may have taken them already: `listeners = net.listeners_from_env()`
    if #lns == 0 and opts.listeners then lns = opts.listeners end
    local ctx, cancel = context.with_cancel(context.background())
    local sigs = signal.notify("TERM", "INT")
    local watcher = sched.go(function()
        local sig = sigs:recv()
        if sig then cancel() end
    end)
    local results = table.pack(opts.serve(lns, ctx))
    cancel()
    for _, ln in ipairs(lns) do ln:close() end
    signal.stop(sigs)
    sigs:close()
    watcher:wait()
    return table.unpack(results, 1, results.n)
end

---------------------------------------------------------------------------
-- The supervisor side
---------------------------------------------------------------------------
local Supervisor = {}
Supervisor.__index = Supervisor

--- supervisor:spawn(i) -> process | nil, err: start worker i (this
-- program again, with the listeners at fd 3.. and its slot in the env).
function Supervisor:spawn(i)
    local env = {[WORKER_ENV] = tostring(i)}
    for k, v in pairs(self.env) do env[k] = v end
    local p, err = process.spawn{self.path, args = self.args, env = env,
                                 files = self.listeners, names = self.names}
    if not p then return nil, err end
    self.procs[i] = p
    self.pids[#self.pids + 1] = p.pid
    if self.on_spawn then self.on_spawn(p.pid, i) end
    return p
end

--- supervisor:watch(i): one task per worker slot: wait for the worker;
-- while not stopping, replace it (after a pause that doubles while workers
-- die young).
function Supervisor:watch(i)
    local delay = 0
    while not self.stopping do
        local started = sched.now()
        local p, err = self:spawn(i)
        if not p then self.log("worker ", i, ": spawn: ", tostring(err)) end
        if p then
            local st = p:wait()
            self.procs[i] = nil
            if self.stopping then return end
            self.log("worker ", i, " (pid ", p.pid, ") ended: ",
                     st.code and ("exit " .. st.code) or ("signal " .. tostring(st.signal)))
            if self.on_exit then self.on_exit(p.pid, i, st) end
        end
        if sched.now() - started < 1 then delay = math.min(delay == 0 and 0.1 or delay * 2, 5)
        else delay = 0 end
        if delay > 0 then sched.sleep(delay, self.stop_ctx) end
    end
end

--- supervisor:stop_all(watchers): forward TERM; the watchers reap; KILL
-- what is left after shutdown_timeout.
function Supervisor:stop_all(watchers)
    self.stopping = true
    self.stop_cancel()                      -- a watcher pausing before a respawn
    for _, p in pairs(self.procs) do p:kill("TERM") end
    local ctx, cancel = context.with_timeout(context.background(), self.shutdown_timeout)
    for _, t in ipairs(watchers) do
        if not t:wait(ctx) then
            for _, p in pairs(self.procs) do
                self.log("worker pid ", p.pid, " did not stop in time: KILL")
                p:kill("KILL")
            end
            t:wait()
        end
    end
    cancel()
end

local function supervise(opts)
    local lns, names = opts.listeners, opts.names
    if not lns then
        lns, names = listen_all(opts.addresses or error("prefork: listeners or addresses expected", 3))
        if not lns then return nil, names end
    end
    local path, args = opts.path, opts.args
    if not path then path, args = process.self_command() end
    local self = setmetatable({
        listeners = lns, names = names, path = path, args = args or {}, env = opts.env or {},
        procs = {}, pids = {}, stopping = false, log = opts.log or log_default,
        on_spawn = opts.on_spawn, on_exit = opts.on_exit,
        shutdown_timeout = opts.shutdown_timeout or 30,
    }, Supervisor)
    self.stop_ctx, self.stop_cancel = context.with_cancel(context.background())
    local n = opts.workers or process.cpu_count()
    local sigs = signal.notify("TERM", "INT")
    local watchers = {}
    for i = 1, n do watchers[i] = sched.go(Supervisor.watch, self, i) end
    local why
    local _, _, cerr = sigs:recv(opts.ctx)
    why = cerr and "ctx" or "signal"
    self:stop_all(watchers)
    signal.stop(sigs)
    if not opts.listeners then
        for _, ln in ipairs(lns) do ln:close() end
    end
    return why, self.pids
end

--- prefork: run `serve` in N worker processes sharing the listeners.
-- `opts`: `workers` (default: the number of CPUs), `addresses`
-- (`{"127.0.0.1:8080", {"unix", "/run/x.sock"}, ...}`: the supervisor
-- listens) or `listeners` (already listening, with optional `names`),
-- `serve = fn(listeners, ctx)` (run in each worker; ctx ends on TERM/INT;
-- return to exit), `shutdown_timeout` (seconds a worker gets after TERM
-- before KILL; default 30), `path`/`args`/`env` (the worker command;
-- default this program), `on_spawn(pid, i)`, `on_exit(pid, i, status)`,
-- `log(...)`, `ctx` (ending it stops the supervisor as TERM does).
-- In the supervisor: blocks until TERM, INT or ctx, forwards TERM to the
-- workers, waits for them (KILL after shutdown_timeout) and returns
-- `"signal"` or `"ctx"` and the list of every worker pid it started; a
-- worker that dies is replaced (after a growing pause if workers keep
-- dying within a second). In a worker: returns what serve returned.
-- @treturn[1] string why the supervisor stopped (or serve's results)
-- @treturn[1] table every worker pid started
-- @treturn[2] nil
-- @treturn[2] error (listening failed)
function M.prefork(opts)
    if type(opts) ~= "table" or type(opts.serve) ~= "function" then
        error("bad argument #1 to 'prefork' (table with serve expected)", 2)
    end
    if M.is_worker() then return sched.run(worker, opts) end
    return sched.run(supervise, opts)
end

return setmetatable(M, {__call = function(_, opts) return M.prefork(opts) end})

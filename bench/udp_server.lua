--- bench/udp_server.lua udp PORT: the `udp` workload server of the shared
-- benchmark (../shared/bench): bind 127.0.0.1:PORT and send every datagram
-- back to its sender, unchanged. Written as a user would with the batch
-- calls: one recvmmsg takes what is queued (up to 64 datagrams), one
-- sendmmsg answers all of them. CORONET_UDP_MODE=single uses
-- read_from/write_to instead, one datagram per call (for comparison).
local net = require "coronet"

local workload, port = arg[1], arg[2]
assert(workload == "udp" and port, "usage: udp_server.lua udp PORT")

local function batched(pc)
    local msgs = {}
    for i = 1, 64 do msgs[i] = {} end
    local read_batch, write_batch = pc.read_batch, pc.write_batch
    while true do
        local n = read_batch(pc, msgs)
        if n then write_batch(pc, msgs, 1, n) end    -- a full socket drops, like UDP
    end
end

local function single(pc)
    local read_from, write_to = pc.read_from, pc.write_to
    while true do
        local data, from = read_from(pc)
        if data and from then write_to(pc, data, from) end
    end
end

local serve = os.getenv("CORONET_UDP_MODE") == "single" and single or batched

net.run(function()
    local pc = assert(net.listen_packet("udp4", "127.0.0.1:" .. port))
    serve(pc)
end)

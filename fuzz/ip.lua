--- fuzz/ip.lua: net.ip parsing. Every accepted form must round-trip
-- (format, parse again, equal); rejections must be nil, a message.
local ip = require("coronet.core").ip

return function(data)
    local a, err = ip.parse(data)
    if a then
        local b = assert(ip.parse(tostring(a)), "formatted address does not parse")
        assert(a == b, "round trip changed the address")
        assert(a:compare(b) == 0)
    else
        assert(type(err) == "string")
    end
    local p, perr = ip.prefix(data)
    if p then
        local q = assert(ip.prefix(tostring(p)), "formatted prefix does not parse")
        assert(p == q and p:compare(q) == 0, "prefix round trip")
        assert(p:masked():contains(p:masked():addr()) or p:addr():zone() ~= "")
    else
        assert(type(perr) == "string")
    end
    local ap = ip.addr_port(data)
    if ap then
        local bp = assert(ip.addr_port(tostring(ap)), "formatted addr:port does not parse")
        assert(ap == bp and ap:compare(bp) == 0, "addr:port round trip")
    end
    local host, port = ip.split_host_port(data)
    if host then
        local j = ip.join_host_port(host, port)
        local h2, p2 = ip.split_host_port(j)
        assert(h2 == host and p2 == port, "join(split(x)) does not split back")
    end
end

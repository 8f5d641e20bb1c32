--- fuzz/dns.lua: DNS answer parsing (c-ares's ares_parse_*_reply plus
-- dnsresult.c) on raw answers. Each kind returns a table of records or
-- nil and a short code; names it hands out are domain names.
local KINDS = {"mx", "txt", "srv", "ns", "ptr"}

local function name_ok(s)
    return type(s) == "string" and s:sub(-1) == "." and not s:find("[%z;<>\\ ]")
end

return function(data)
    for _, kind in ipairs(KINDS) do
        local r, code = _dns_answer(kind, data)
        if kind == "srv" then
            if r ~= nil then                    -- cname (or nil), records
                local list = code
                assert(type(list) == "table")
                for _, x in ipairs(list) do
                    assert(name_ok(x.target), "bad SRV target handed out: " .. tostring(x.target))
                    assert(x.port >= 0 and x.port <= 65535)
                end
            end
        elseif r == nil then
            assert(type(code) == "string", kind .. ": no code")
        else
            assert(type(r) == "table")
            if kind == "mx" then
                assert(#r > 0, "an empty MX list")
                for _, x in ipairs(r) do assert(name_ok(x.host), "bad MX host: " .. tostring(x.host)) end
            elseif kind == "txt" then
                assert(#r > 0, "an empty TXT list")
                for _, t in ipairs(r) do assert(type(t) == "string") end
            end
        end
    end
end

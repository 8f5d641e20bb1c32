--- tools/doccheck.lua: fail when a public function of lua/coronet/*.lua has
-- no doc comment (`make doccheck`, run by `make lint` and CI).
-- Public: `function M.name`, `function Class:name` / `Class.name` on a table
-- whose name starts with an upper-case letter, and `M.name = function`;
-- names starting with `_` are private. A doc comment is the comment block
-- right above the definition, starting with `---` (LDoc's marker).
--   lua5.4 tools/doccheck.lua [files...]   (default: lua/coronet/*.lua)
local files = {...}
if #files == 0 then
    local p = io.popen("ls lua/coronet/*.lua")
    for f in p:lines() do files[#files + 1] = f end
    p:close()
end

-- The public name a line defines, or nil.
local function public_name(line)
    local name = line:match("^function%s+M[.:]([%w_]+)%s*%(")
        or line:match("^M%.([%w_]+)%s*=%s*function")
    if not name then
        local cls, meth = line:match("^function%s+(%u[%w_]*)[.:]([%w_]+)%s*%(")
        if cls then name = cls .. ":" .. meth end
    end
    if not name or name:match("^_") or name:match("[.:]_") or name:match("__") then return nil end
    return name
end

-- Whether the comment block ending just above line i starts with `---`.
local function documented(lines, i)
    local j = i - 1
    if not (lines[j] and lines[j]:match("^%s*%-%-")) then return false end
    while lines[j - 1] and lines[j - 1]:match("^%s*%-%-") do j = j - 1 end
    return lines[j]:match("^%s*%-%-%-") ~= nil
end

local missing = 0
for _, f in ipairs(files) do
    local lines = {}
    for l in io.lines(f) do lines[#lines + 1] = l end
    for i, l in ipairs(lines) do
        local name = public_name(l)
        if name and not documented(lines, i) then
            missing = missing + 1
            io.stderr:write(("%s:%d: public function %s has no doc comment (---)\n"):format(f, i, name))
        end
    end
end
if missing > 0 then
    io.stderr:write(("doccheck: %d public function(s) without a doc comment\n"):format(missing))
    os.exit(1)
end
print(("doccheck: every public function in %d files has a doc comment"):format(#files))

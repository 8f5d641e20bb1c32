-- .luacheckrc: `make lint` (luacheck, Debian lua-check) over lua/, spec/,
-- examples/, bin/ and bench/.
std = "lua54"
max_line_length = 120
unused_args = false          -- callbacks and methods keep their documented signatures
files["spec/"] = {
    -- luaunit finds test classes as globals (TestX = {}); the runner sets SPEC_RUNNER
    allow_defined_top = true,
    globals = {"SPEC_RUNNER"},
}
files["spec/run.lua"] = {globals = {"SPEC_RUNNER"}}
files["bin/coronet"] = {globals = {"net"}}     -- the REPL preloads net for the user
exclude_files = {"build/", "bench/tls/build/"}

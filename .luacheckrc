-- .luacheckrc: `make lint` (luacheck, Debian lua-check) over lua/, spec/,
-- examples/, bin/ and bench/.
std = "lua54"
max_line_length = 132
unused_args = false          -- callbacks and methods keep their documented signatures
files["spec/"] = {
    -- luaunit finds test classes as globals (TestX = {}); the runner sets SPEC_RUNNER
    allow_defined_top = true,
    globals = {"SPEC_RUNNER"},
    -- `local v, err = call()` checking err alone is the specs' idiom
    ignore = {"311"},
}
files["spec/run.lua"] = {globals = {"SPEC_RUNNER"}}
files["bin/coronet"] = {globals = {"net"}}     -- the REPL preloads net for the user
exclude_files = {"build/", "bench/tls/build/"}

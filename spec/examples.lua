-- The examples spec/run.lua smoke-runs: each command must exit 0 in time.
return {
    {cmd = "examples/tour.lua", timeout = 30},
    {cmd = "examples/echo_server.lua --selftest", timeout = 20},
    {cmd = "examples/echo_client.lua --selftest", timeout = 20},
}

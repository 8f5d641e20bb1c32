#!/bin/sh
# bench/prefork/run.sh [SECS] [RUNS]: requests/s of bench/prefork/http.lua
# (net.server in net.prefork workers) with 1 and with 2 workers under
# `wrk -t1 -c100` (keep-alive), medians of RUNS. wrk is pinned to CPU 1;
# the workers are not pinned, so with 2 workers they share the machine's
# two CPUs with wrk: the figure shows whether a second worker process adds
# throughput at all here, not how prefork scales on a machine with cores
# to spare (see README.md).
set -eu
secs=${1:-5}
runs=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
export LUA_CPATH="$root/build/?.so;;"
make -s -C "$root" >/dev/null
free_port() { lua5.4 -e 'local s=require("coronet").listen("tcp","127.0.0.1:0") print(s:addr().port) s:close()'; }
echo "| workers | run | requests/s |"
echo "|---:|---:|---:|"
for w in 1 2; do
    for r in $(seq "$runs"); do
        port=$(free_port)
        lua5.4 "$root/bench/prefork/http.lua" "$w" "$port" >/dev/null 2>&1 &
        pid=$!
        i=0
        until ss -ltn "sport = :$port" | grep -q LISTEN; do
            i=$((i + 1)); [ $i -gt 500 ] && { echo "server did not listen" >&2; kill $pid; exit 1; }
            sleep 0.01
        done
        rps=$(taskset -c 1 wrk -t1 -c100 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
        kill -TERM $pid
        wait $pid || true
        echo "| $w | $r | $rps |"
    done
done

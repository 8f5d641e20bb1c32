#!/usr/bin/env bash
# bench/bulk_limits.sh [coronet|c-epoll | -- CMD...] [MIB] - what held each
# end of the harness's bulk echo back: one `loadgen bulk -n MIB` (default
# 3072) against the server on CPU 0, load on CPU 1 as in run.sh, and
# MIB / 4000 s into it (past the start even at 2000 MiB/s), the kernel's TCP_INFO time counters of
# both sockets as `ss -ti` prints them: busy (time with data outstanding),
# rwnd_limited (time the peer's receive window stopped the sender) and
# sndbuf_limited. A CMD after `--` is any server that takes `echo PORT`
# (the harness's contract: `-- lua5.4 ../shared/bench/peers/cqueues.lua`).
# The server inherits the environment. docs/performance.md (the thirteenth
# round) says how to read it: the end that waits on the other's window has
# its sends run by the other's CPU.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
bench_build "$root"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" LUA_CPATH="$root/build/?.so;;"
port=$((29000 + RANDOM % 2000))
listening=-ltnH
if [ "${1:-coronet}" = -- ]; then
    shift
    cmd=("$@" echo "$port")
    mib=3072
else
    server_cmd "$root" "${1:-coronet}" bulk "$port"
    mib=${2:-3072}
fi
taskset -c 0 "${cmd[@]}" >/dev/null 2>&1 &
pid=$!
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
wait_listening "$port"
taskset -c 1 "$build/loadgen" bulk -n "$mib" -p "$port" >"$out" 2>&1 &
lg=$!
sleep "$(awk -v m="$mib" 'BEGIN { printf "%.2f", m / 4000 }')"
limits() { ss -tinH "$1" | grep -o 'busy:[^ ]*\|rwnd_limited:[^ ]*\|sndbuf_limited:[^ ]*' | tr '\n' ' '; }
client=$(limits "dport = :$port") server=$(limits "sport = :$port")
wait "$lg"
echo "load generator's socket: ${client:-(none seen)}"
echo "server's socket:         ${server:-(none seen)}"
grep -o 'mibps=[0-9.]*\|complete=[01]' "$out" | tr '\n' ' '
echo

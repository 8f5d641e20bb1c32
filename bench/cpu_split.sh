#!/usr/bin/env bash
# bench/cpu_split.sh [coronet|c-epoll] [echo64|echo4k|http-close|udp|bulk] [SECS] -
# the server's user and kernel CPU per operation under the harness's load:
# utime and stime from /proc/PID/stat before and after SECS (default 4) of
# `loadgen echo -c 50 -s 64` or `-s 4096` (per round trip), `wrk -c100 -H
# 'Connection: close'` (per request) or `loadgen udp` (per datagram, against
# bench/udp_server.lua), or over one `loadgen bulk -n 1024` (per MiB; SECS
# unused), server on CPU 0 and load on CPU 1 as in run.sh. The server
# inherits the environment (CORONET_BENCH_READ sets bench/server.lua's read
# size).
# callgrind counts instructions; this says how fast they ran, which is what
# the harness's srv us/op adds the kernel's share to.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
which=${1:-coronet} wl=${2:-echo64} secs=${3:-4}
. "$root/bench/lib.sh"
bench_build "$root"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" LUA_CPATH="$root/build/?.so;;"
port=$((27000 + RANDOM % 2000))
server_cmd "$root" "$which" "$wl" "$port"
taskset -c 0 "${cmd[@]}" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
wait_listening "$port"
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
case $wl in
    http-close)
        rate=$(taskset -c 1 wrk -t1 -c100 -d"${secs}s" -H 'Connection: close' \
            "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}') ;;
    echo64|echo4k)
        size=64; [ "$wl" = echo4k ] && size=4096
        rate=$(taskset -c 1 "$build/loadgen" echo -c 50 -s "$size" -d "$secs" -p "$port" 2>&1 |
            grep -o 'rps=[0-9.]*' | cut -d= -f2) ;;
    udp)
        rate=$(taskset -c 1 "$build/loadgen" udp -d "$secs" -p "$port" 2>&1 |
            grep -o 'dps=[0-9.]*' | cut -d= -f2) ;;
    bulk)
        secs=1 rate=$(taskset -c 1 "$build/loadgen" bulk -n 1024 -p "$port" 2>&1 |
            grep 'complete=1' | grep -o 'echoed_mib=[0-9.]*' | cut -d= -f2) ;;
    *) echo "cpu_split.sh: unknown workload $wl" >&2; exit 2 ;;
esac
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
awk -v r="${rate:-0}" -v t="$secs" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) \
    -v hz="$(getconf CLK_TCK)" -v k="$which" -v w="$wl" 'BEGIN {
    n = r * t
    if (n <= 0) { print k, w ": no operations counted" > "/dev/stderr"; exit 1 }
    printf "%s %s ops=%d user=%.2f us/op kernel=%.2f us/op\n", k, w, n,
        du / hz * 1e6 / n, ds / hz * 1e6 / n }'

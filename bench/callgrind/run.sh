#!/usr/bin/env bash
# bench/callgrind/run.sh LABEL [coronet|c-epoll] - user-space instructions
# per operation of a bench server, counted by callgrind. A count is
# repeatable where seconds are not: it does not move with the load on the
# machine. Each workload runs the server twice under callgrind, for a small
# and a large fixed amount of work, and divides the difference of the two
# totals by the difference of the work, so start-up and shutdown cancel out:
#   echo64, echo4k: pingpong.c, N round trips of 64 / 4096 bytes over one
#     conn, each request sent 1 ms after the last reply, so every round
#     trip is one whole park-poll-wake-read-write turn with nothing to
#     batch it with: the worst case per round trip, repeatable to about 1%;
#   accept: pingpong.c with a conn per round trip of 8 bytes (connect,
#     ping, echo, close: per accepted conn, one conn at a time);
#   http: keep-alive requests over one conn to the http server (per request);
#   http-close: the same against the http server, one request with
#     "Connection: close" per conn (per request);
#   http-close-late: the same, but the client writes CG_LATE_US (5000)
#     after its connect, so the server's first read waits, as under wrk;
#   bulk: the harness's `loadgen bulk -n MIB` (per MiB; how reads split
#     the stream depends on timing, so this one moves by a percent or two);
#   echo64-c50: the harness's own echo load, `loadgen echo -c 50 -s 64`,
#     for D seconds (the work is the round trips it reports, rps x D): what
#     a round trip costs when one poll serves many conns and every resume
#     switches coroutine, as in the benchmark. Timing sets how many round
#     trips share a poll, so this one moves by a few percent.
#   udp: the harness's udp load, `loadgen udp`, for D seconds against
#     bench/udp_server.lua (the work is the datagrams echoed): a
#     datagram's cost when read_batch takes a full queue; moves by a few
#     percent, like echo64-c50.
#   http-close-wrk: the harness's http-close load, `wrk -t1 -c100 -H
#     'Connection: close'`, for D seconds (the work is the requests wrk
#     completed): a request's cost with 100 conns in flight, as in the
#     benchmark, where the collector has 100 live coroutines to traverse
#     and most conns outlive a minor collection. Needs wrk; moves by a few
#     percent, like echo64-c50.
# Rows are appended to bench/callgrind/results.tsv:
#   label workload instr_per_op ops total_instr
# (ops and total_instr: the differences.) Environment:
#   WORKLOADS="echo64 echo4k bulk", CG_N="1000 4000" (round trips),
#   CG_MIB="16 80", CG_SECS="3 9" (echo64-c50, http-close-wrk),
#   CG_LUA=lua5.4 (an unstripped build of the same Lua names its functions),
#   CG_KEEP=PREFIX keeps both runs' files as PREFIX.WORKLOAD.small and
#   .large (bench/callgrind/profile.sh turns them into a per-op profile).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
label=${1:?usage: run.sh LABEL [coronet|c-epoll]}
which=${2:-coronet}
. "$root/bench/lib.sh"
bench_build "$root"
lg=$build/loadgen
out=$root/bench/callgrind/results.tsv
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/pingpong" "$root/bench/callgrind/pingpong.c"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" LUA_CPATH="$root/build/?.so;;"
port=$((24000 + RANDOM % 2000))

# total WORKLOAD AMOUNT -> the server's whole-run instruction count and
# the operations done (AMOUNT, except for echo64-c50: the round trips made)
total() {
    port=$((port + 1))
    server_cmd "$root" "$which" "$1" "$port" "${CG_LUA:-lua5.4}"
    valgrind -q --tool=callgrind --callgrind-out-file="$tmp/cg.out" "${cmd[@]}" \
        >"$tmp/srv.log" 2>&1 &
    local pid=$! res
    wait_listening "$port"
    case $1 in
        echo64) res=$("$tmp/pingpong" "$port" "$2" 64) ;;
        echo4k) res=$("$tmp/pingpong" "$port" "$2" 4096) ;;
        accept) res=$("$tmp/pingpong" "$port" "$2" 8 1000 1) ;;
        http) res=$("$tmp/pingpong" "$port" "$2" 0 1000 0) ;;
        http-close) res=$("$tmp/pingpong" "$port" "$2" 0 1000 1) ;;
        http-close-late) res=$("$tmp/pingpong" "$port" "$2" 0 "${CG_LATE_US:-5000}" 2) ;;
        bulk) res=$("$lg" bulk -p "$port" -n "$2" | tail -1) ;;
        echo64-c50) res=$(taskset -c 1 "$lg" echo -c 50 -s 64 -d "$2" -p "$port" | tail -1) ;;
        udp) res=$(taskset -c 1 "$lg" udp -d "$2" -p "$port" | tail -1) ;;
        http-close-wrk)
            res=$(taskset -c 1 wrk -t1 -c100 -d"$2s" -H 'Connection: close' "http://127.0.0.1:$port/" |
                awk '/requests in/ {n = $1} /Non-2xx/ {bad = 1} END {if (n && !bad) print "mode=wrk requests=" n}') ;;
    esac
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    case $res in
        *mode=pingpong*|*mode=wrk*|*"complete=1"*"mismatches=0"*|*mode=echo*" errors=0 mismatches=0"*) ;;
        *mode=udp*" errors=0 mismatches=0"*) ;;
        *) echo "run.sh: $1 failed: $res" >&2; exit 1 ;;
    esac
    local ops=$2
    case $1 in
        echo64-c50) ops=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' <<< "$res"); ops=$((ops * $2)) ;;
        http-close-wrk) ops=${res##*requests=} ;;
        udp) ops=$(sed -n 's/.* echoed=\([0-9]*\).*/\1/p' <<< "$res") ;;
    esac
    awk -v ops="$ops" '/^totals:/ {t = $2} END {print t, ops}' "$tmp/cg.out"
}

for wl in ${WORKLOADS:-echo64 echo4k bulk}; do
    case $wl in
        bulk) read -r a b <<< "${CG_MIB:-16 80}" ;;
        echo64-c50|http-close-wrk|udp) read -r a b <<< "${CG_SECS:-3 9}" ;;
        *) read -r a b <<< "${CG_N:-1000 4000}" ;;
    esac
    r=$(total "$wl" "$a")                     # a failed run stops the script (set -e)
    read -r t1 o1 <<< "$r"
    [ -z "${CG_KEEP:-}" ] || cp "$tmp/cg.out" "$CG_KEEP.$wl.small"
    r=$(total "$wl" "$b")
    read -r t2 o2 <<< "$r"
    [ -z "${CG_KEEP:-}" ] || cp "$tmp/cg.out" "$CG_KEEP.$wl.large"
    ops=$((o2 - o1)) diff=$((t2 - t1))
    per=$(awk -v t="$diff" -v o="$ops" 'BEGIN { printf "%.0f", t / o }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$wl" "$per" "$ops" "$diff" | tee -a "$out"
done

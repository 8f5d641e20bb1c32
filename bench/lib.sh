# bench/lib.sh - sourced by bench/cpu_split.sh and bench/callgrind/run.sh
# (bash; ROOT is the checkout): the harness's tools, and which server runs
# a workload.
#   bench_build ROOT            sets $build, ../shared/bench's build directory
#                               (the harness's own fallback when that tree is
#                               read-only), and builds loadgen there if missing
#   server_cmd ROOT WHICH WL PORT [LUA]
#                               sets the array $cmd (c-epoll or coronet's bench
#                               server for workload WL on PORT) and $listening
#                               (the ss flags that see it bound)
#   wait_listening PORT         returns once ss sees the server bound (30 s cap)

bench_build() {
    local bench=${BENCH_DIR:-$1/../shared/bench}
    [ -d "$bench" ] || bench=/work/shared/bench
    build=$bench/build
    [ -w "$bench" ] || build=${TMPDIR:-/tmp}/coronet-bench/build
    [ -x "$build/loadgen" ] || make -s -C "$bench" BUILD="$build" >&2
}

server_cmd() {
    local root=$1 which=$2 wl=$3 port=$4 lua=${5:-lua5.4}
    local srv=echo script=server.lua
    listening=-ltnH
    case $wl in http*) srv=http ;; udp) srv=udp script=udp_server.lua listening=-lunH ;; esac
    case $which in
        c-epoll) cmd=("$build/c-epoll" "$srv" "$port") ;;
        *) cmd=("$lua" "$root/bench/$script" "$srv" "$port") ;;
    esac
}

wait_listening() {
    for _ in $(seq 600); do
        ss "$listening" "sport = :$1" | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

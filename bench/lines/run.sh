#!/bin/sh
# bench/lines/run.sh [MB] [RUNS] - lines/s for reading 80-byte lines one at
# a time from MB MiB (default 100) streamed through a unix socket pair:
#   coronet  net.bufio reader:read_line()      (lines_coronet.lua)
#   go       bufio.Scanner Scan()+Text()       (lines.go, stdlib only)
#   cqueues  socket:read("*l")                 (lines_cqueues.lua)
# Each program writes the data from a second task/goroutine/coroutine of
# the same process, checks the line count, and is pinned to CPU 0 with
# taskset so that all three get one core. Prints the median of RUNS
# (default 5) runs per program as a table.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mb=${1:-100}
runs=${2:-5}
tmp=$(mktemp -d /tmp/coronet-bench-lines.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

make -s -C "$root" >/dev/null
GO111MODULE=off GOFLAGS= GOCACHE="$tmp/gocache" GOPATH="$tmp/gopath" \
    go build -o "$tmp/lines_go" "$here/lines.go"

export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
export LUA_CPATH="$root/build/?.so;;"
want=$(( (1048576 / 80) * mb ))

# median of the seconds column over $runs runs of "$@"
measure() {
    i=0
    : >"$tmp/times"
    while [ "$i" -lt "$runs" ]; do
        out=$(taskset -c 0 "$@" "$mb")
        set -- "$@"
        lines=${out%% *}
        if [ "$lines" != "$want" ]; then
            echo "bench/lines: $1 read $lines lines, want $want" >&2
            exit 1
        fi
        echo "${out##* }" >>"$tmp/times"
        i=$((i + 1))
    done
    sort -n "$tmp/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

t_coronet=$(measure lua5.4 "$here/lines_coronet.lua")
t_go=$(measure "$tmp/lines_go")
t_cq=$(measure lua5.4 "$here/lines_cqueues.lua")

echo "read_line over $mb MiB of 80-byte lines ($want lines), unix socket pair, taskset -c 0, median of $runs"
echo
awk -v want="$want" -v c="$t_coronet" -v g="$t_go" -v q="$t_cq" 'BEGIN {
    printf "| %-30s | %9s | %12s | %9s | %12s |\n", "reader", "seconds", "lines/s", "time x go", "time x cqueues"
    printf "|%s|%s|%s|%s|%s|\n", "--------------------------------", "-----------", "--------------", "-----------", "----------------"
    row("coronet bufio read_line", c); row("go bufio.Scanner Text", g); row("cqueues read(\"*l\")", q)
}
function row(name, t) {
    printf "| %-30s | %9.3f | %12.0f | %9.2f | %14.2f |\n", name, t, want / t, t / g, t / q
}'

#!/usr/bin/env bash
# bench/callgrind/profile.sh PREFIX.WORKLOAD OPS [N] - the per-operation
# profile of one workload from the two files `CG_KEEP=PREFIX run.sh` kept:
# each function's instructions in the large run minus the small run,
# divided by OPS (the difference of the work, run.sh's `ops` column), so
# start-up code drops out. Prints the top N (default 25) by exclusive
# cost, then by inclusive cost.
set -eu
base=${1:?usage: profile.sh PREFIX.WORKLOAD OPS [N]} ops=${2:?ops} top=${3:-25}
per_fn() {   # file inclusive(yes|no) -> "fn<TAB>cost" lines
    callgrind_annotate --auto=no --inclusive="$2" --threshold=100 "$1" 2>/dev/null |
        awk '/^ *[0-9,]+ \(/ { c = $1; gsub(",", "", c); f = $0
                 sub(/^ *[0-9,]+ \([^)]*\) +\*? */, "", f); sub(/ \[.*$/, "", f)
                 if (f != "PROGRAM TOTALS") print f "\t" c }'
}
for kind in no yes; do
    [ "$kind" = no ] && echo "== exclusive instructions per op" || echo "== inclusive instructions per op"
    join -t "$(printf '\t')" -a 2 -e 0 -o 0,1.2,2.2 \
        <(per_fn "$base.small" "$kind" | sort -t "$(printf '\t')" -k1,1) \
        <(per_fn "$base.large" "$kind" | sort -t "$(printf '\t')" -k1,1) |
        awk -F'\t' -v ops="$ops" '{ d = ($3 - $2) / ops; if (d >= 1) printf "%8.0f  %s\n", d, $1 }' |
        sort -rn | head -n "$top"
done

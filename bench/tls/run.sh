#!/usr/bin/env bash
# bench/tls/run.sh - TLS side by side: every workload against every server
# (coronet net.tls, Go crypto/tls, cqueues + luaossl), server pinned to CPU 0,
# load generator (tlsload) pinned to CPU 1. See README.md.
#
#   run.sh [--quick] [-r RUNS] [-d SECS] [-k IDLE_CONNS] [--hold SECS] [-n BULK_MIB]
#          [--servers coronet,go,cqueues] [--workloads echo,bulk,handshake,resume,idle]
#          [--key p256|rsa2048] [--server NAME='CMD'] [--out DIR] [--report DIR]
#
# A server is "CMD echo PORT CERT KEY"; the PID started must be the server
# itself (exec), since its /proc/PID/status is read for idle.
set -u
B=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$B/../.." && pwd)
BUILD=$B/build
LG=$BUILD/tlsload
R=3 D=5 K=10000 HOLD=2 MIB=1024 OUT="" PORT=22000 REPORT="" KEY=p256
WLS="echo bulk handshake resume idle"
SERVERS=(coronet go cqueues)
EXTRA=()

declare -A CMD
CMD[coronet]="env 'LUA_PATH=$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;' 'LUA_CPATH=$ROOT/build/?.so;;' lua5.4 $B/server.lua"
CMD[go]="env GOMAXPROCS=1 $BUILD/go-tls-server"
CMD[cqueues]="lua5.4 $B/cqueues.lua"

while [ $# -gt 0 ]; do
    case $1 in
        --quick) R=1 D=2 K=1000 HOLD=1 MIB=256 ;;
        -r) R=$2; shift ;;
        -d) D=$2; shift ;;
        -k) K=$2; shift ;;
        -n) MIB=$2; shift ;;
        --hold) HOLD=$2; shift ;;
        --key) KEY=$2; shift ;;
        --out) OUT=$2; shift ;;
        --report) REPORT=$2; shift ;;
        --servers) IFS=, read -ra SERVERS <<< "$2"; shift ;;
        --workloads) WLS=${2//,/ }; shift ;;
        --server) n=${2%%=*}; CMD[$n]=${2#*=}; EXTRA+=("$n"); shift ;;
        *) sed -n '2,11p' "$0"; exit 1 ;;
    esac
    shift
done

# ---- report: raw.tsv -> markdown ------------------------------------------
# raw.tsv columns: workload server run status value cpu0% cpu1% notes srv_us_op cli_us_op
report() {
local dir; dir=$(dirname "$1")
cat "$dir/params.txt" 2>/dev/null
echo
awk -F'\t' '
function median(str,   a, n, i, j, t) {
    n = split(str, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function fmt(v) { return v == "" ? "-" : (v >= 100 ? sprintf("%.0f", v) : sprintf("%.2f", v)) }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
{
    if (!($1 in seenw)) { seenw[$1]; W[++nw] = $1 }
    if (!($2 in seens)) { seens[$2]; S[++ns] = $2 }
    k = $1 SUBSEP $2
    if ($4 == "ok") { vals[k] = vals[k] " " $5; nok[k]++ } else nfail[k]++
    c0[k] = c0[k] " " $6; c1[k] = c1[k] " " $7
    if ($4 == "ok" && $9 != "") sp[k] = sp[k] " " $9
    if ($4 == "ok" && $10 != "") cl[k] = cl[k] " " $10
    n = split($8, parts, ";")
    for (i = 1; i <= n; i++) if (parts[i] != "" && !index(notes[k], parts[i])) notes[k] = notes[k] parts[i] ";"
}
END {
    unit["echo"] = "round trips/s"; unit["bulk"] = "MiB/s"; unit["handshake"] = "handshakes/s"
    unit["resume"] = "handshakes/s"; unit["idle"] = "KiB/conn (lower is better)"
    # the bars of issue 9
    bar["echo"] = "> go, > cqueues"; bar["bulk"] = "> go, > cqueues"; bar["handshake"] = ">= go"
    bar["resume"] = ">= go"; bar["idle"] = "<= 8 KiB"
    hdr = "| workload | unit |"; sep = "|---|---|"
    for (i = 1; i <= ns; i++) { hdr = hdr " " S[i] " |"; sep = sep "---:|" }
    if (("coronet" in seens) && ("go" in seens)) { hdr = hdr " coronet/go |"; sep = sep "---:|" }
    if (("coronet" in seens) && ("cqueues" in seens)) { hdr = hdr " coronet/cqueues |"; sep = sep "---:|" }
    if ("coronet" in seens) { hdr = hdr " bar (issue 9) | met |"; sep = sep "---|---|" }
    print hdr; print sep
    for (w = 1; w <= nw; w++) {
        wl = W[w]; line = "| " wl " | " unit[wl] " |"
        for (i = 1; i <= ns; i++) {
            k = wl SUBSEP S[i]; m[S[i]] = median(vals[k])
            line = line " " fmt(m[S[i]]) (nfail[k] ? " (" nfail[k] " FAIL)" : "") " |"
        }
        if (("coronet" in seens) && ("go" in seens)) line = line " " ratio(m["coronet"], m["go"]) " |"
        if (("coronet" in seens) && ("cqueues" in seens)) line = line " " ratio(m["coronet"], m["cqueues"]) " |"
        if ("coronet" in seens) {
            c = m["coronet"]; g = m["go"]; q = m["cqueues"]; met = "?"
            if (c != "") {
                if (wl == "idle") met = (c + 0 <= 8) ? "yes" : "no"
                else if (wl == "echo" || wl == "bulk") met = (g == "" || q == "") ? "?" : (c + 0 > g + 0 && c + 0 > q + 0) ? "yes" : "no"
                else met = g == "" ? "?" : (c + 0 >= g + 0) ? "yes" : "no"
            }
            line = line " " bar[wl] " | " met " |"
        }
        print line
    }
    # the same workloads as the server process CPU time per operation: the figure
    # to compare where tlsload is the limit (full handshakes with ECDSA, say)
    for (w = 1; w <= nw; w++) {
        wl = W[w]; if (wl == "idle") continue
        line = "| " wl " server CPU | us/" (wl == "bulk" ? "MiB" : "op") " (lower is better) |"
        for (i = 1; i <= ns; i++) { m[S[i]] = median(sp[wl SUBSEP S[i]]); line = line " " fmt(m[S[i]]) " |" }
        if (("coronet" in seens) && ("go" in seens)) line = line " " ratio(m["coronet"], m["go"]) " |"
        if (("coronet" in seens) && ("cqueues" in seens)) line = line " " ratio(m["coronet"], m["cqueues"]) " |"
        if ("coronet" in seens) line = line " | |"
        print line
    }
    print ""
    print "| workload | server | median | min..max | cpu0/cpu1 % | cpu0 us/op | server us/op | tlsload us/op | ok/runs | notes |"
    print "|---|---|---:|---|---|---:|---:|---:|---|---|"
    for (w = 1; w <= nw; w++) for (i = 1; i <= ns; i++) {
        wl = W[w]; k = wl SUBSEP S[i]; md = median(vals[k])
        n = split(vals[k], a, " "); lo = hi = a[1]
        for (j = 2; j <= n; j++) { if (a[j] + 0 < lo + 0) lo = a[j]; if (a[j] + 0 > hi + 0) hi = a[j] }
        cpu0 = median(c0[k]); uop = (wl != "idle" && md > 0) ? sprintf("%.1f", cpu0 * 1e4 / md) : ""
        printf "| %s | %s | %s | %s | %s/%s | %s | %s | %s | %d/%d | %s |\n", wl, S[i], fmt(md), (n > 1 ? fmt(lo) ".." fmt(hi) : ""),
            cpu0, median(c1[k]), uop, median(sp[k]), median(cl[k]), nok[k], nok[k] + nfail[k], notes[k]
    }
}' "$1"
echo
echo "cpu0/cpu1 % = how busy CPU 0 (server) / CPU 1 (tlsload) were, softirq included; cpu0 us/op = CPU-0 busy"
echo "time per operation (per MiB for bulk; whatever else ran there counts too); server us/op = the server"
echo "process's own CPU time (utime+stime) per operation; tlsload us/op = the load generator's own."
echo "cpu1 near 100% with cpu0 well under it: the client is the limit; compare the us/op columns then."
}

[ -n "$REPORT" ] && { report "$REPORT/raw.tsv"; exit; }

kv() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<< "$2" | tail -1; }   # value of key=... in a RESULT line

# ---- build -----------------------------------------------------------------
mkdir -p "$BUILD"
make -s -C "$ROOT" >&2 || exit 1
if [ ! -x "$LG" ] || [ "$B/tlsload.c" -nt "$LG" ]; then
    cc -O2 -Wall -Wextra -o "$LG" "$B/tlsload.c" -lssl -lcrypto || exit 1
fi
if [ ! -x "$BUILD/sslmem" ] || [ "$B/sslmem.c" -nt "$BUILD/sslmem" ]; then
    cc -O2 -Wall -Wextra -o "$BUILD/sslmem" "$B/sslmem.c" -lssl -lcrypto || exit 1
fi
if command -v go >/dev/null && { [ ! -x "$BUILD/go-tls-server" ] || [ "$B/go/main.go" -nt "$BUILD/go-tls-server" ]; }; then
    # stdlib only, nothing fetched
    (cd "$B/go" && GOTOOLCHAIN=local GOPROXY=off GO111MODULE=off GOFLAGS= GOCACHE="$BUILD/gocache" \
        GOPATH="$BUILD/gopath" go build -o "$BUILD/go-tls-server" main.go) || exit 1
fi

SERVERS+=("${EXTRA[@]}")
# Drop servers whose runtime is missing (reported, not silently).
avail=()
for s in "${SERVERS[@]}"; do
    [ -n "${CMD[$s]:-}" ] || { echo "unknown server $s" >&2; exit 1; }
    case $s in
        go) [ -x "$BUILD/go-tls-server" ] || { echo "skip go: go not installed" >&2; continue; } ;;
        cqueues) lua5.4 -e 'package.path = package.path .. ";/usr/share/lua/5.3/?.lua"
                 require "cqueues.socket" require "openssl.ssl.context" require "http.tls"' 2>/dev/null ||
                 { echo "skip cqueues: lua-cqueues, lua-luaossl or lua-http missing" >&2; continue; } ;;
    esac
    avail+=("$s")
done
SERVERS=("${avail[@]}")

OUT=${OUT:-$BUILD/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
RAW=$OUT/raw.tsv
: > "$RAW"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((K + 100)) ] || echo "warning: ulimit -n $(ulimit -n) < idle conns $K" >&2

# ---- a throwaway CA and a leaf for localhost / 127.0.0.1 --------------------
CERTS=$(mktemp -d "${TMPDIR:-/tmp}/coronet-tlsbench.XXXXXX")
SPID=""
cleanup() { [ -n "$SPID" ] && stop_server; rm -rf "$CERTS"; }
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT
case $KEY in
    p256) KOPT=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa2048) KOPT=(-newkey rsa:2048) ;;
    *) echo "--key p256|rsa2048" >&2; exit 1 ;;
esac
(
    cd "$CERTS" &&
    openssl req -x509 "${KOPT[@]}" -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca &&
    openssl req "${KOPT[@]}" -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost &&
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
        'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' > ext.cnf &&
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext.cnf
) > "$OUT/logs/certs.log" 2>&1 || { echo "openssl could not make the certificates (see $OUT/logs/certs.log)" >&2; exit 1; }
CA=$CERTS/ca.pem CERT=$CERTS/leaf.pem LEAFKEY=$CERTS/leaf.key

{
    echo "kernel: $(uname -r); cpus: $(nproc); $(lua5.4 -v 2>&1); $(openssl version)"
    echo "coronet: $(git -C "$ROOT" describe --always --dirty 2>/dev/null)"
    echo "cqueues: $(lua5.4 -e 'print(require"cqueues".VERSION)' 2>&1) (deb $(dpkg-query -W -f='${Version}' lua-cqueues 2>/dev/null));" \
         "luaossl deb $(dpkg-query -W -f='${Version}' lua-luaossl 2>/dev/null); lua-http deb $(dpkg-query -W -f='${Version}' lua-http 2>/dev/null)"
    echo "go: $(go version 2>&1); cc: $(cc --version | head -1)"
} > "$OUT/versions.txt"
echo "TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, $KEY certificate. Medians of $R run(s) x $D s (bulk: $MIB MiB;" \
     "idle: 1 run, $K conns held $HOLD s); servers on CPU 0 (taskset -c 0), tlsload on CPU 1." > "$OUT/params.txt"
case " $WLS " in *" idle "*)     # OpenSSL's own floor under the idle figure (see sslmem.c)
    m=$("$BUILD/sslmem" "$CERT" "$LEAFKEY" | tail -1)
    echo "OpenSSL's own heap per idle server SSL (sslmem.c, coronet's settings): $(kv kib_per_conn "$m") KiB in" \
         "$(kv allocs_per_conn "$m") allocations, allocator overhead not included." >> "$OUT/params.txt" ;;
esac

# ---- server lifecycle -------------------------------------------------------
listening() { [ -n "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]; }
next_port() { while listening $PORT; do PORT=$((PORT + 1)); done; port=$PORT; PORT=$((PORT + 1)); }
start_server() {   # name port log
    ( exec taskset -c 0 bash -c "exec ${CMD[$1]} echo $2 $CERT $LEAFKEY" ) > "$3" 2>&1 &
    SPID=$!
    for _ in $(seq 500); do                          # up to 10 s
        listening "$2" && return 0
        kill -0 "$SPID" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}
stop_server() {    # SIGTERM, then SIGKILL after 3 s; by PID only
    kill -TERM "$SPID" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=""
}
proc_cpu() { awk '{sub(/.*\) /, ""); print $12 + $13}' /proc/"$1"/stat 2>/dev/null; }   # utime+stime, ticks
TCK=$(getconf CLK_TCK)
vm() { awk -v k="$2:" '$1 == k {print $2}' /proc/"$1"/status 2>/dev/null; }    # kB
cpustat() { awk '/^cpu[01] / {printf "%d %d ", $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
busy() { echo "$1 $2" | awk '{printf "%.0f\t%.0f", 100*($5-$1)/($6-$2+1e-9), 100*($7-$3)/($8-$4+1e-9)}'; }

# ---- one run: fresh server, load, stop, one row in raw.tsv ------------------
run_one() {   # workload server run#
    local wl=$1 s=$2 r=$3 port log out rc irc=0 note="" c0 c1 val
    next_port
    log=$OUT/logs/$wl.$s.$r
    if ! start_server "$s" "$port" "$log.server"; then
        printf '%s\t%s\t%s\tFAIL\t\t-\t-\tserver did not listen (see logs/%s)\t\t\n' "$wl" "$s" "$r" "${log##*/}.server" >> "$RAW"
        stop_server; return
    fi
    local rss0 p0 p1; rss0=$(vm "$SPID" VmRSS); p0=$(proc_cpu "$SPID")
    c0=$(cpustat)
    local T="timeout $((D + 60)) taskset -c 1 $LG"
    case $wl in
        echo)      out=$($T echo -c 50 -s 64 -d "$D" -p "$port" -C "$CA" 2>&1) ;;
        bulk)      out=$(timeout 200 taskset -c 1 "$LG" bulk -n "$MIB" -d 180 -p "$port" -C "$CA" 2>&1) ;;
        handshake) out=$($T handshake -c 32 -a 16 -d "$D" -p "$port" -C "$CA" 2>&1) ;;
        resume)    out=$($T resume -c 32 -a 16 -d "$D" -p "$port" -C "$CA" 2>&1) ;;
        idle)      # sample the server's RSS while the K conns are held
            timeout "$(awk -v h="$HOLD" 'BEGIN {printf "%d", h + 150}')" taskset -c 1 "$LG" idle -k "$K" -H "$HOLD" -p "$port" -C "$CA" > "$log.idle" 2>&1 &
            local lpid=$! rssk="" hwm=""
            for _ in $(seq 2400); do grep -q HOLDING "$log.idle" && break; kill -0 $lpid 2>/dev/null || break; sleep 0.05; done
            if grep -q HOLDING "$log.idle"; then
                sleep "$(awk -v h="$HOLD" 'BEGIN {print h / 2}')"
                rssk=$(vm "$SPID" VmRSS); hwm=$(vm "$SPID" VmHWM)
            fi
            wait $lpid; irc=$?
            out=$(cat "$log.idle")
            local est; est=$(kv established "$out")
            [ -n "$rssk" ] && [ "${est:-0}" -gt 0 ] &&
                out="$out kib_per_conn=$(awk -v a="$rss0" -v b="$rssk" -v n="$est" 'BEGIN {printf "%.2f", (b - a) / n}') rss0_kb=$rss0 rssk_kb=$rssk hwm_kb=$hwm" ;;
    esac
    rc=$?; [ "$wl" = idle ] && rc=$irc
    c1=$(cpustat)
    local rss1; rss1=$(vm "$SPID" VmRSS); p1=$(proc_cpu "$SPID")
    [ "$wl" != idle ] && [ -n "$rss1" ] && note="$note rss=$((rss0 / 1024))->$((rss1 / 1024))MiB;"
    echo "$out" > "$log.client"
    kill -0 "$SPID" 2>/dev/null || note="$note server died;"
    stop_server
    local res; res=$(grep '^RESULT' <<< "$out" | tail -1)
    case $wl in
        echo) val=$(kv rps "$res") ;; bulk) val=$(kv mibps "$res") ;;
        handshake|resume) val=$(kv hps "$res") ;; idle) val=$(kv kib_per_conn "$res") ;;
    esac
    local ops="" sop=""       # operations in the run: the server's own CPU time per op
    case $wl in
        echo) ops=$(awk -v r="$val" -v d="$D" 'BEGIN {print r * d}') ;; bulk) ops=$(kv echoed_mib "$res") ;;
        handshake|resume) ops=$(kv handshakes "$res") ;;
    esac
    [ -n "$ops" ] && [ -n "$p1" ] && [ -n "$p0" ] &&
        sop=$(awk -v a="$p0" -v b="$p1" -v t="$TCK" -v n="$ops" 'BEGIN {if (n > 0) printf "%.1f", (b - a) / t * 1e6 / n}')
    local e; e=$(kv errors "$res"); [ "${e:-0}" != 0 ] && note="$note errors=$e;"
    [ "$(kv complete "$res")" = 0 ] && note="$note incomplete;"
    local bad=""
    e=$(kv mismatches "$res"); [ "${e:-0}" != 0 ] && { note="$note MISMATCH;"; bad=1; }
    [ "$wl" = resume ] && note="$note resumed=$(kv resumed_frac "$res");"
    [ "$wl" = idle ] && note="$note est=$(kv established "$res") alive=$(kv alive "$res") rss0=$(kv rss0_kb "$res") rssK=$(kv rssk_kb "$res") hwm=$(kv hwm_kb "$res");"
    [ "$wl" = idle ] && [ "$(kv alive "$res")" != "$(kv established "$res")" ] && bad=1
    local nl; nl=$(grep -c . "$log.server" 2>/dev/null); [ "${nl:-0}" -gt 0 ] && note="$note server log $nl lines;"
    local st=ok
    # on loopback no conn should fail: any error fails the run
    if [ -z "$val" ] || [ "$rc" -ne 0 ] || [ -n "$bad" ] || [ "$(kv complete "$res")" = 0 ] || [ "$(kv errors "$res")" != 0 ]; then
        st=FAIL; note="$note rc=$rc;"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$s" "$r" "$st" "$val" "$(busy "$c0" "$c1")" "$note" \
        "$sop" "$(kv cli_us_op "$res")" >> "$RAW"
    printf '  %-9s %-8s run %s: %s %s %s\n' "$wl" "$s" "$r" "$st" "${val:-?}" "$note" >&2
}

# ---- main loop: runs interleaved across servers, so drift hits all alike ----
t0=$(date +%s)
echo "servers: ${SERVERS[*]}; workloads: $WLS; runs=$R secs=$D bulk=${MIB}MiB idle_conns=$K key=$KEY; out=$OUT" >&2
for wl in $WLS; do
    runs=$R; [ "$wl" = idle ] && runs=1        # memory is deterministic enough; one run each
    for r in $(seq "$runs"); do
        for s in "${SERVERS[@]}"; do run_one "$wl" "$s" "$r"; done
    done
done

report "$RAW" > "$OUT/results.md"
{ echo; echo '```'; cat "$OUT/versions.txt"; echo "wall time: $(( $(date +%s) - t0 )) s"; echo '```'; } >> "$OUT/results.md"
cat "$OUT/results.md"

#!/bin/sh
# deps.sh [demo|check|bench|lint|fuzz] - install the Debian packages coronet needs for
# that job when they are missing: with apt-get as root, otherwise one clear
# message naming them. Safe to run again: it installs nothing that is present.
set -eu
job=${1:-check}
pkgs="lua5.4 liblua5.4-dev libc-ares-dev libssl-dev gcc make pkg-config"
case $job in
    check) pkgs="$pkgs lua-unit luarocks valgrind socat curl dnsmasq-base redis-server slowhttptest openssl sslscan iproute2" ;;
    bench) pkgs="$pkgs lua-luv lua-cqueues lua-socket golang-go wrk" ;;
    lint) pkgs="$pkgs lua-check lua-ldoc" ;;
    fuzz) pkgs="$pkgs clang-14" ;;
esac
[ "$job" = check ] && pkgs="$pkgs tmux"   # the REPL's terminal spec (spec/repl_tty_spec.lua)
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "coronet needs these Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# Installs the Debian packages that the build, the tests and the benchmarks
# need. Idempotent: when every package is present it only runs dpkg-query.
set -eu

PKGS="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
libuv1-dev liblua5.4-dev lua5.4 libjansson-dev libmicrohttpd-dev
libsqlite3-dev libhiredis-dev libxxhash-dev libc-ares-dev libssl-dev
libcmocka-dev sip-tester python3 python3-pytest python3-prometheus-client
valgrind iproute2 dnsmasq-base"

if [ "${1:-}" = "--bench" ]; then
	PKGS="$PKGS kamailio kamailio-ims-modules kamailio-lua-modules"
fi

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/bash
# Instructions per call of imsdlgd with and without dialog tracking: the
# exact counterpart of run.sh's CPU figures, which this machine's noise
# (other VMs, wake-ups) moves by 10-50% between runs.
#
#   bench/dialog/instructions.sh [BUILD_DIR]      (default: build/)
#
# imsdlgd (one worker, worker ports) runs under callgrind with
# bench/proxy's imsdlg.cfg (tm + rr) and with bench/dialog's imsdlg.cfg
# (the same, plus ims_dialog and two profiles per call), each for N1 and
# N2 calls of bench/lib/scenarios' call at RATE calls/s; per call is
# (Ir(N2) - Ir(N1)) / (N2 - N1), so that start-up and shutdown cancel out.
# Each run waits WAIT s after its last call, longer than tm's wait timer,
# so that freeing transactions and dialogs is counted. Issue 4's target:
# dialog tracking adds at most 15% to tm + rr.
#
# KEEP=DIR keeps the callgrind profiles of the N2 runs there (tm.cg and
# dlg.cg, for callgrind_annotate: where the instructions go).
#
# User-space instructions only: the kernel's share (the syscalls and the
# wake-ups, the same for both) is not in them. About 4 minutes; a report,
# not a test: it exits 0 whether or not the target is met. 127.0.0.1 only;
# it stops only what it started.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
N1=${N1:-200}
N2=${N2:-3200}
RATE=${RATE:-100}
WAIT=${WAIT:-8}
PORT=${PORT:-19060} # proxy; its worker port + 100, the UAS + 10, the UAC + 20
KEEP=${KEEP:-}
TARGET_DLG_COST=15

for tool in valgrind sipp; do
	command -v "$tool" >/dev/null || {
		echo "$tool not found" >&2
		exit 2
	}
done
# shellcheck source=../lib/build_check.sh
. "$root/bench/lib/build_check.sh"
require_optimised_build "$build" "$build/imsdlgd" "make"

tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# cfg NAME SRC: SRC with an absolute path to its Lua script, no RPC
# listeners (nothing reads them here).
cfg() {
	local dir
	dir=$(cd "$(dirname "$2")" && pwd)
	sed -e '/^rpc_listen/d' \
		-e "s#^modparam(\"app_lua\", *\"load\", *\"\([^/\"][^\"]*\)\")#modparam(\"app_lua\", \"load\", \"$dir/\1\")#" \
		"$2" >"$tmp/$1.cfg"
}

# ir NAME CALLS: Ir of imsdlgd over CALLS calls (prints it).
ir() {
	local name=$1 calls=$2 out=$tmp/$1.$2 uas proxy ok
	sipp -sf "$root/bench/lib/scenarios/uas.xml" -i 127.0.0.1 \
		-p $((PORT + 10)) -nostdin >/dev/null 2>&1 </dev/null &
	uas=$!
	pids="$pids $uas"
	valgrind --tool=callgrind --callgrind-out-file="$out.cg" \
		"$build/imsdlgd" -f "$tmp/$name.cfg" -n 1 \
		-l "udp:127.0.0.1:$PORT worker_ports $((PORT + 100))" \
		>"$out.log" 2>&1 </dev/null &
	proxy=$!
	pids="$pids $proxy"
	for _ in $(seq 150); do
		grep -q ' started' "$out.log" && break
		sleep 0.2
	done
	(cd "$tmp" && sipp 127.0.0.1:$PORT -key uas 127.0.0.1:$((PORT + 10)) \
		-i 127.0.0.1 -p $((PORT + 20)) \
		-sf "$root/bench/lib/scenarios/uac.xml" -r "$RATE" -m "$calls" \
		-l $((RATE * 2)) -d 20 -recv_timeout 10000 -nostdin \
		-timeout $((calls / RATE * 3 + 30))s -trace_stat -stf "$out.csv" \
		>/dev/null 2>&1 </dev/null) || true
	sleep "$WAIT"
	kill "$proxy" "$uas"
	wait "$proxy" "$uas" 2>/dev/null || true
	ok=$(tail -1 "$out.csv" | cut -d';' -f16)
	if [ "$ok" != "$calls" ]; then
		echo "$name: $ok of $calls calls completed; see $out.log" >&2
		exit 1
	fi
	awk '/^summary:/ { print $2 }' "$out.cg"
}

cfg tm "$root/bench/proxy/imsdlg.cfg"
cfg dlg "$here/imsdlg.cfg"
declare -A per_call
for name in tm dlg; do
	a=$(ir "$name" "$N1")
	b=$(ir "$name" "$N2")
	per_call[$name]=$(((b - a) / (N2 - N1)))
	if [ -n "$KEEP" ]; then
		mkdir -p "$KEEP"
		cp "$tmp/$name.$N2.cg" "$KEEP/$name.cg"
	fi
done
tm=${per_call[tm]} dlg=${per_call[dlg]}
echo "instructions per call (callgrind, user space, 1 worker, $N1 and $N2 calls at $RATE calls/s)"
printf '%-28s %10s\n' "imsdlgd (tm + rr)" "$tm" "imsdlgd_dlg (+ ims_dialog)" "$dlg"
awk -v tm="$tm" -v dlg="$dlg" -v target="$TARGET_DLG_COST" 'BEGIN {
	cost = (dlg - tm) * 100 / tm
	printf "dialog tracking adds %.1f%% (target at most %d%%: %s)\n",
		cost, target, cost <= target ? "met" : "not met"
}'

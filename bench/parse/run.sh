#!/bin/sh
# Runs the parser benchmark of BUILD_DIR (built beforehand, e.g. by
# `make bench`) and prints time and instructions per message against the
# targets. A report, not a test: it exits 0 whether the targets are met.
#
# Instructions come from callgrind (perf counters are often missing in
# VMs): two runs of N1 and N2 iterations, so that start-up and the initial
# checks cancel out of (Ir(N2) - Ir(N1)) / (N2 - N1).
set -eu

TARGET_NS=500
TARGET_INSTR=3000
N1=1000
N2=11000

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$1
bin=$build/bench/parse/bench_parse
# shellcheck source=../lib/build_check.sh
. "$(dirname "$0")/../lib/build_check.sh"
require_optimised_build "$build" "$bin" "make bench"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== timing ($(grep -m1 '^CMAKE_BUILD_TYPE' "$build/CMakeCache.txt" \
	2>/dev/null | cut -d= -f2) build, $bin)"
"$bin" | tee "$tmp/timing"

# Ir of one callgrind run: the "summary:" line of its output file.
ir() {
	out=$1
	shift
	valgrind --tool=callgrind --callgrind-out-file="$out" "$@" \
		>/dev/null 2>"$out.log" || {
		cat "$out.log" >&2
		return 1
	}
	awk '/^summary:/ { print $2 }' "$out"
}

# Instructions per message of one kind (invite or ok), or "n/a".
instr() {
	kind=$1
	if ! command -v valgrind >/dev/null 2>&1; then
		echo n/a
		return
	fi
	a=$(ir "$tmp/cg.$kind.$N1" "$bin" --once $N1 "$kind") || {
		echo n/a
		return
	}
	b=$(ir "$tmp/cg.$kind.$N2" "$bin" --once $N2 "$kind") || {
		echo n/a
		return
	}
	# Kept for callgrind_annotate: where the instructions go.
	cp "$tmp/cg.$kind.$N2" "$build/bench_parse.$kind.callgrind"
	echo $(((b - a) / (N2 - N1)))
}

echo
echo "== callgrind ($N1 and $N2 iterations per message)"
instr_invite=$(instr invite)
instr_ok=$(instr ok)

# Fields from the end of a timing line, as the name "200 OK" has a space.
field() {
	awk -v name="$1" -v back="$2" \
		'index($0, name) == 1 { print $(NF - back) }' "$tmp/timing"
}

verdict() {
	ns=$1
	ins=$2
	v=OK
	if [ "$ins" = n/a ]; then
		v="OK?"
	elif [ "$ins" -gt $TARGET_INSTR ]; then
		v=MISSED
	fi
	if awk -v ns="$ns" -v t=$TARGET_NS 'BEGIN { exit !(ns > t) }'; then
		v=MISSED
	fi
	echo "$v"
}

echo
printf '%-8s %6s %8s %8s %10s   %s\n' message bytes ns/msg msgs/s \
	instr/msg target
for kind in invite ok; do
	case $kind in
	invite)
		name=INVITE
		ins=$instr_invite
		;;
	*)
		name="200 OK"
		ins=$instr_ok
		;;
	esac
	bytes=$(field "$name" 2)
	ns=$(field "$name" 1)
	rate=$(field "$name" 0)
	# The targets are set for the INVITE; the 200 OK is for reference.
	target=-
	if [ $kind = invite ]; then
		v=$(verdict "$ns" "$ins")
		target="<=$TARGET_NS ns, <=$TARGET_INSTR instr: $v"
	fi
	printf '%-8s %6s %8s %8s %10s   %s\n' "$name" "$bytes" "$ns" "$rate" \
		"$ins" "$target"
done
if [ -f "$build/bench_parse.invite.callgrind" ]; then
	echo
	echo "profile: callgrind_annotate --inclusive=yes" \
		"$build/bench_parse.invite.callgrind"
fi
exit 0

#!/bin/sh
# Smoke-fuzzes each libFuzzer target for a bounded time.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET
#
# For each target: replay the saved regression inputs of
# tests/fuzz/regressions/<target>/, then fuzz for SECONDS_PER_TARGET seconds
# from a work corpus under BUILD_DIR/fuzz-work/<target>/ seeded with the
# RFC 4475 torture messages (../shared/testdata/rfc4475, relative to the
# repository). A crash, leak, timeout or OOM is copied into the regression
# directory, to be committed so that every later run replays it, and the
# script goes on with the next target and exits non-zero at the end. One
# summary line per target that passed.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS_PER_TARGET" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
secs=$2
case $secs in
'' | *[!0-9]*)
	echo "$0: SECONDS_PER_TARGET must be a whole number" >&2
	exit 2
	;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
bindir=$build/tests/fuzz
regdir=$root/tests/fuzz/regressions
rfc=$root/../shared/testdata/rfc4475
workroot=$build/fuzz-work
# Slack over -max_total_time for start-up, corpus loading and the final
# report: past it the run is killed, so the total stays bounded even if
# libFuzzer itself hangs.
slack=60

if [ ! -d "$rfc" ]; then
	echo "$0: no seed corpus at $rfc" >&2
	exit 1
fi

# ------------------------------------------------------------- seeds

seed_msg() {
	cp "$rfc"/*.dat "$1"/
}

# Request-URIs and header URIs of the torture messages, one per file.
seed_uri() {
	out=$1
	n=0
	for f in "$rfc"/*.dat; do
		{
			# Request-URI: second field of a request line
			head -n 1 "$f" | tr -d '\r' |
				awk '$1 !~ /^SIP\// && NF >= 2 { print $2 }'
			# header lines only: stop at the first empty line
			tr -d '\r' <"$f" | sed '/^$/q' | grep -a -v '^SIP/' |
				{
					# URIs inside <>
					grep -a -o '<[^<>]*>' | tr -d '<>'
				} || true
			tr -d '\r' <"$f" | sed '/^$/q' |
				grep -a -i -E '^(to|from|contact|[tfm])[ 	]*:' |
				sed -E 's/^[^:]*:[ 	]*//' |
				grep -a -E '^[A-Za-z][A-Za-z0-9+.-]*:' |
				sed -E 's/[;, 	].*$//' || true
		} | while IFS= read -r u; do
			[ -n "$u" ] || continue
			n=$((n + 1))
			printf '%s' "$u" >"$out/$(basename "$f" .dat)-$n"
		done
	done
	# forms the torture messages lack: tel, IPv6, sips, every part
	printf '%s' 'tel:+1-201-555-0123;ext=1234;phone-context=example.com' \
		>"$out/extra-tel"
	printf '%s%s' 'sips:alice:secret@[2001:db8::10]:5061;transport=tls;lr;' \
		'maddr=239.255.255.1;ttl=15;user=ip;method=INVITE?subject=hi&x=y' \
		>"$out/extra-sips"
}

# The messages alone and back to back, as a TCP stream carries them.
seed_frame() {
	out=$1
	cp "$rfc"/*.dat "$out"/
	prev=
	for f in "$rfc"/*.dat; do
		if [ -n "$prev" ]; then
			cat "$prev" "$f" >"$out/pair-$(basename "$prev" .dat)-$(basename "$f")"
		fi
		prev=$f
	done
	printf '\r\n\r\n' >"$out/ping"
}

# ------------------------------------------------------------ running

# Value of a libFuzzer final stat from the log, or "?".
final_stat() {
	v=$(sed -n "s/^stat::$1:[ 	]*//p" "$2" | tail -n 1)
	echo "${v:-?}"
}

# Copies the findings of a failed run into the regression directory.
keep_findings() {
	target=$1
	art=$2
	mkdir -p "$regdir/$target"
	found=0
	for a in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* \
		"$art"/slow-unit-*; do
		[ -f "$a" ] || continue
		cp "$a" "$regdir/$target/"
		echo "$target: saved $(basename "$a")" \
			"in tests/fuzz/regressions/$target/ (commit it)" >&2
		found=1
	done
	[ $found -eq 1 ] ||
		echo "$target: failed without an artifact; see the log above" >&2
}

status=0
for target in fuzz_msg fuzz_uri fuzz_frame; do
	bin=$bindir/$target
	if [ ! -x "$bin" ]; then
		echo "$0: $bin not built" >&2
		exit 1
	fi
	case $target in
	fuzz_uri) maxlen=2048 ;;
	*) maxlen=65535 ;;
	esac

	work=$workroot/$target
	corpus=$work/corpus
	seeds=$work/seeds
	art=$work/artifacts
	log=$work/fuzz.log
	rm -rf "$seeds" "$art"
	mkdir -p "$corpus" "$seeds" "$art"

	# 1. Regression inputs: each must now pass.
	if [ -d "$regdir/$target" ] &&
		[ -n "$(find "$regdir/$target" -type f ! -name '.*' | head -n 1)" ]; then
		find "$regdir/$target" -type f ! -name '.*' | sort >"$work/regressions"
		nreg=$(wc -l <"$work/regressions")
		# shellcheck disable=SC2046 # names are hashes, no blanks
		if ! timeout $((slack + 60)) "$bin" -rss_limit_mb=2048 \
			-timeout=10 $(cat "$work/regressions") >"$work/regressions.log" 2>&1; then
			tail -n 40 "$work/regressions.log" >&2
			echo "$target: a regression input fails (list: $work/regressions)" >&2
			status=1
			continue
		fi
		echo "$target: $nreg regression input(s) pass"
	fi

	# 2. Fuzz.
	case $target in
	fuzz_msg) seed_msg "$seeds" ;;
	fuzz_uri) seed_uri "$seeds" ;;
	fuzz_frame) seed_frame "$seeds" ;;
	esac
	rc=0
	timeout $((secs + slack)) "$bin" -max_total_time="$secs" \
		-max_len=$maxlen -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$art/" \
		"$corpus" "$seeds" >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		tail -n 60 "$log" >&2
		echo "$target: fuzzing failed (exit $rc; log: $log)" >&2
		keep_findings "$target" "$art"
		status=1
		continue
	fi
	execs=$(final_stat number_of_executed_units "$log")
	rate=$(final_stat average_exec_per_sec "$log")
	elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' \
		"$log" | tail -n 1)
	ncorp=$(find "$corpus" -type f | wc -l)
	echo "$target: $execs executions in ${elapsed:-?} s ($rate/s)," \
		"corpus $ncorp inputs, no crash"
done
exit $status

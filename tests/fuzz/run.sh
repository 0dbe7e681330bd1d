#!/bin/sh
# Smoke-fuzzes each libFuzzer target for a bounded time.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET
#
# For each target: replay the saved regression inputs of
# tests/fuzz/regressions/<target>/, then fuzz for SECONDS_PER_TARGET seconds
# from a work corpus under BUILD_DIR/fuzz-work/<target>/ seeded with the
# RFC 4475 torture messages (../shared/testdata/rfc4475, relative to the
# repository), or for fuzz_jsonrpc with the requests kept in
# tests/fuzz/seeds/fuzz_jsonrpc/; tests/fuzz/<target>.dict, when there is
# one, is the libFuzzer dictionary. A crash, leak, timeout or OOM is copied
# into the regression directory, to be committed so that every later run
# replays it; the script goes on with the next target and exits non-zero
# at the end. One summary line per target that passed.
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
common="-rss_limit_mb=2048 -timeout=10"

if [ ! -d "$rfc" ]; then
	echo "$0: no seed corpus at $rfc" >&2
	exit 1
fi

# ------------------------------------------------------------- seeds

seed_msg() {
	cp "$rfc"/*.dat "$1"/
}

# Header lines of a message (up to the empty line), without CRs.
headers() {
	tr -d '\r' <"$1" | sed '/^$/q'
}

# URIs of one message: the Request-URI, those inside <> and the bare
# addr-specs of To, From and Contact.
uris_of() {
	headers "$1" | head -n 1 |
		awk '$1 !~ /^SIP\// && NF >= 2 { print $2 }'
	{ headers "$1" | grep -a -o '<[^<>]*>' | tr -d '<>'; } || true
	{
		headers "$1" | grep -a -i -E '^(to|from|contact|t|f|m) *:' |
			sed -E 's/^[^:]*: *//' |
			grep -a -E '^[A-Za-z][A-Za-z0-9+.-]*:' |
			sed -E 's/[;, 	].*$//'
	} || true
}

seed_uri() {
	for f in "$rfc"/*.dat; do
		name=$(basename "$f" .dat)
		# one file per URI; the counter lives in the subshell
		uris_of "$f" | {
			n=0
			while IFS= read -r u; do
				[ -n "$u" ] || continue
				n=$((n + 1))
				printf '%s' "$u" >"$1/$name-$n"
			done
		}
	done
	# forms the torture messages lack: tel, IPv6, every URI part
	printf '%s' 'tel:+1-201-555-0123;ext=1234;phone-context=example.com' \
		>"$1/extra-tel"
	printf '%s%s' 'sips:alice:pw@[2001:db8::10]:5061;transport=tls;lr;' \
		'maddr=239.255.255.1;ttl=15;user=ip;method=INVITE?subject=hi' \
		>"$1/extra-sips"
}

# The example and benchmark configurations.
seed_cfg() {
	cp "$root"/examples/*.cfg "$root"/bench/proxy/*.cfg "$1"/ \
		2>/dev/null || true
}

# The messages alone and two by two, as a TCP stream carries them.
seed_frame() {
	cp "$rfc"/*.dat "$1"/
	prev=
	for f in "$rfc"/*.dat; do
		if [ -n "$prev" ]; then
			cat "$prev" "$f" >"$1/pair-$(basename "$prev" .dat)"
		fi
		prev=$f
	done
	printf '\r\n\r\n' >"$1/ping"
}

# Handwritten JSON-RPC requests: ../shared/testdata has none.
seed_jsonrpc() {
	cp "$root"/tests/fuzz/seeds/fuzz_jsonrpc/* "$1"/
}

# ------------------------------------------------------------ running

# Value of a libFuzzer final stat from the log, or "?".
final_stat() {
	v=$(sed -n "s/^stat::$1:[ 	]*//p" "$2" | tail -n 1)
	echo "${v:-?}"
}

# Copies the findings of a failed run into the regression directory.
keep_findings() {
	mkdir -p "$regdir/$1"
	found=0
	for a in "$2"/crash-* "$2"/leak-* "$2"/timeout-* "$2"/oom-* \
		"$2"/slow-unit-*; do
		[ -f "$a" ] || continue
		# .gitignore ignores crash-* and the like wherever they are:
		# a prefix keeps the saved copy committable.
		keep=$1-$(basename "$a")
		cp "$a" "$regdir/$1/$keep"
		echo "$1: saved tests/fuzz/regressions/$1/$keep (commit it)" >&2
		found=1
	done
	if [ $found -eq 0 ]; then
		echo "$1: failed without an artifact; see the log above" >&2
	fi
}

# Replays the regression inputs of target $1 with binary $2 (work dir $3).
replay() {
	list=$3/regressions
	find "$regdir/$1" -type f ! -name '.*' 2>/dev/null | sort >"$list"
	[ -s "$list" ] || return 0
	# shellcheck disable=SC2046,SC2086 # names are hashes, no blanks
	if ! timeout $((slack + 60)) "$2" $common $(cat "$list") \
		>"$3/regressions.log" 2>&1; then
		tail -n 40 "$3/regressions.log" >&2
		echo "$1: a regression input fails (list: $list)" >&2
		return 1
	fi
	echo "$1: $(wc -l <"$list") regression input(s) pass"
}

status=0
for target in fuzz_msg fuzz_uri fuzz_frame fuzz_cfg fuzz_jsonrpc; do
	bin=$bindir/$target
	if [ ! -x "$bin" ]; then
		echo "$0: $bin not built" >&2
		exit 1
	fi
	case $target in
	fuzz_uri) maxlen=2048 ;;
	# past its server's max_request (8192), so that 413 is reached
	fuzz_jsonrpc) maxlen=9000 ;;
	*) maxlen=65535 ;;
	esac
	work=$workroot/$target
	log=$work/fuzz.log
	rm -rf "$work/seeds" "$work/artifacts"
	mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"

	# 1. The saved regression inputs must pass before fuzzing.
	if ! replay "$target" "$bin" "$work"; then
		status=1
		continue
	fi

	# 2. Fuzz; new inputs go to the corpus, kept between runs.
	case $target in
	fuzz_msg) seed_msg "$work/seeds" ;;
	fuzz_uri) seed_uri "$work/seeds" ;;
	fuzz_frame) seed_frame "$work/seeds" ;;
	fuzz_cfg) seed_cfg "$work/seeds" ;;
	fuzz_jsonrpc) seed_jsonrpc "$work/seeds" ;;
	esac
	dict=
	if [ -f "$root/tests/fuzz/$target.dict" ]; then
		dict=-dict=$root/tests/fuzz/$target.dict
	fi
	rc=0
	# shellcheck disable=SC2086 # $common and $dict: options, or none
	timeout $((secs + slack)) "$bin" $common $dict \
		-max_total_time="$secs" -max_len=$maxlen -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" \
		"$work/corpus" "$work/seeds" >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		tail -n 60 "$log" >&2
		echo "$target: fuzzing failed (exit $rc; log: $log)" >&2
		keep_findings "$target" "$work/artifacts"
		status=1
		continue
	fi
	execs=$(final_stat number_of_executed_units "$log")
	rate=$(final_stat average_exec_per_sec "$log")
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
	ncorp=$(find "$work/corpus" -type f | wc -l)
	echo "$target: $execs executions in ${took:-?} s ($rate/s)," \
		"corpus $ncorp inputs, no crash"
done
exit $status

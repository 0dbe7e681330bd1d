#!/usr/bin/env bash
# Dialog benchmark: what tracking every call (a dialog, two profiles) costs,
# in CPU per call and in memory per dialog, for imsdlgd and Debian's
# Kamailio 5.6 (its dialog and ims_dialog modules) in the same run, next to
# imsdlgd without dialogs and the UDP floor; and what listing 100,000
# dialogs (dlg.list) costs the calls set up meanwhile.
#
#   bench/dialog/run.sh [BUILD_DIR]        (BUILD_DIR defaults to build/)
#
# Three parts (PARTS), on the same proxies, started once, side by side:
#   cpu     the proxy's CPU per call at each of RATES, SIPp UAC -> proxy ->
#           SIPp UAS on 127.0.0.1 (bench/lib: the same runs as bench/proxy)
#   memory  HOLD_CALLS calls held up at once through each of HOLD_TARGETS:
#           the proxy's memory growth per confirmed dialog; then SIPp ends
#           the calls with BYEs and what the proxy has left is counted
#   rpc     while imsdlgd holds them: dlg.list timed over its UNIX socket and
#           over HTTP, and the set-up latency of a steady call flow with and
#           without dlg.list running (latency.py); Kamailio's dlg.list too
# See README.md. A report, not a test: it exits 0 whether the targets are
# met or not (2 on a usage error). Builds nothing but the floor tool.
# Everything runs on 127.0.0.1; every process is stopped by its PID.
#
# Settings (environment), besides bench/proxy's WORKERS, RATES, RUN_SECONDS,
# WARMUP_SECONDS, REPEAT, QUIET_WAIT, QUIET_MAX, TRIES, KAMAILIO, SIPP:
#   TARGETS="floor imsdlgd imsdlgd_dlg kamailio_dlg kamailio_ims"
#                        (kamailio, Kamailio without dialogs, may be added)
#   PARTS="cpu memory rpc"
#   RETRY_UNTIL=420      no more waits or retries of the cpu part after this
#   HOLD_CALLS=100000    calls held up at once ...
#   HOLD_RATE=1000       ... created at this rate
#   HOLD_TARGETS="imsdlgd_dlg kamailio_dlg kamailio_ims"
#   RPC_TARGETS="imsdlgd_dlg kamailio_dlg"
#   RPC_RATE=200         calls/s of the flow whose set-up latency is measured
#   RPC_SECONDS=15       length of that flow, without and then with dlg.list
#   RPC_TIMEOUT=120      a dlg.list taking longer is given up
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -gt 1 ]; then
	echo "usage: $0 [BUILD_DIR]" >&2
	exit 2
fi
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
bench=dialog
RETRY_UNTIL=${RETRY_UNTIL:-420}
# shellcheck source=../lib/bench.sh
. "$here/../lib/bench.sh"

TARGETS=${TARGETS:-floor imsdlgd imsdlgd_dlg kamailio_dlg kamailio_ims}
PARTS=${PARTS:-cpu memory rpc}
HOLD_CALLS=${HOLD_CALLS:-100000}
HOLD_RATE=${HOLD_RATE:-1000}
HOLD_TARGETS=${HOLD_TARGETS:-imsdlgd_dlg kamailio_dlg kamailio_ims}
RPC_TARGETS=${RPC_TARGETS:-imsdlgd_dlg kamailio_dlg}
RPC_RATE=${RPC_RATE:-200}
RPC_SECONDS=${RPC_SECONDS:-15}
RPC_TIMEOUT=${RPC_TIMEOUT:-120}
export RPC_TIMEOUT
RPC=$here/rpc.py
PROXY_DIR=$here/../proxy

# Ports: proxy, UAS, UAC; the latency flow's UAC and UAS are the proxy's
# + 30 and + 40, imsdlgd's HTTP listener the proxy's - 10. Below 20000,
# where tests/sip picks its own at random, and apart from bench/proxy's.
KIND[floor]=floor
KIND[imsdlgd]=imsdlgd PORTS[imsdlgd]="11060 11070 11080"
KIND[imsdlgd_dlg]=imsdlgd PORTS[imsdlgd_dlg]="12060 12070 12080"
KIND[kamailio_dlg]=kamailio PORTS[kamailio_dlg]="13060 13070 13080"
KIND[kamailio_ims]=kamailio PORTS[kamailio_ims]="14060 14070 14080"
KIND[kamailio]=kamailio PORTS[kamailio]="18060 18070 18080"

TARGET_VS_KAMAILIO=0.6 # imsdlgd_dlg / kamailio_dlg, CPU per call
TARGET_DLG_COST=15     # % imsdlgd_dlg may spend over imsdlgd (tm + rr)
TARGET_MEM=0.5         # imsdlgd's bytes per dialog / Kamailio's
HOLD_WINDOW=20         # s the held calls stay up after the readings begin

# imsdlgd_cfg TARGET SRC: SRC for TARGET in $tmp, with an absolute path to
# its Lua script and TARGET's own RPC socket and HTTP port. Prints its path.
imsdlgd_cfg() {
	local t=$1 src=$2 dir
	dir=$(cd "$(dirname "$src")" && pwd)
	mkdir -p "$tmp/$t"
	{
		sed -e '/^rpc_listen/d' \
			-e "s#^modparam(\"app_lua\", *\"load\", *\"\([^/\"][^\"]*\)\")#modparam(\"app_lua\", \"load\", \"$dir/\1\")#" "$src"
		echo "rpc_listen=unix:$tmp/$t/rpc.sock"
		echo "rpc_listen=http:127.0.0.1:$((${PORTS[$t]%% *} - 10))"
	} >"$tmp/$t/imsdlg.cfg"
	echo "$tmp/$t/imsdlg.cfg"
}

launch_proxy() { # TARGET PORT
	local t=$1 defs=()
	case $t in
	imsdlgd) imsdlgd_launch "$t" "$(imsdlgd_cfg "$t" "$PROXY_DIR/imsdlg.cfg")" ;;
	imsdlgd_dlg) imsdlgd_launch "$t" "$(imsdlgd_cfg "$t" "$here/imsdlg.cfg")" ;;
	kamailio*)
		[ "$t" = kamailio_dlg ] && defs=(-A WITH_DIALOG)
		[ "$t" = kamailio_ims ] && defs=(-A WITH_IMS_DIALOG)
		kamailio_launch "$t" "$PROXY_DIR/kamailio.cfg" "${defs[@]}" -A WITH_JSONRPC \
			-A "JSONRPC_FIFO=\"$tmp/$t/rpc.fifo\"" -A "JSONRPC_DIR=\"$tmp/$t/\""
		;;
	esac
}

# The RPC transports of a running target (rpc.py's names), the first to ask.
transports() {
	case ${KIND[$1]} in
	imsdlgd) echo "unix:$tmp/$1/rpc.sock http://127.0.0.1:$((${PORTS[$1]%% *} - 10))/RPC" ;;
	kamailio) echo "kamfifo:$tmp/$1/rpc.fifo" ;;
	esac
}
rpc_get() { # TARGET METHOD PATH [PARAM...]: a value of a result, "" on error
	local t=$1 tr
	shift
	read -r tr _ <<<"$(transports "$t")"
	python3 "$RPC" get "$tr" "$@" 2>>"$logs/$t.rpc.err"
}

# confirmed TARGET: the dialogs the proxy counts as confirmed (ACKed) now.
# Kamailio's dialog module and imsdlgd: dlg.stats_active's "ongoing" (state
# 4); ims_dialog has no such method: its counter of active dialogs.
confirmed() {
	case $1 in
	kamailio_ims) rpc_get "$1" stats.fetch dialog_ng.active dialog_ng: ;;
	*) rpc_get "$1" dlg.stats_active ongoing ;;
	esac
}
unfinished() { # TARGET: dialogs in any state but ended, "" if unknown
	case $1 in
	kamailio_ims) rpc_get "$1" stats.fetch dialog_ng.active dialog_ng: ;;
	*) rpc_get "$1" dlg.stats_active all ;;
	esac
}

# mem TARGET: "RSS_KB PSS_KB SHM_USED SHM_REAL_USED" of the proxy: RSS of
# its main process, PSS summed over all its processes (shared pages counted
# once), Kamailio's shared memory in use (bytes; "-" for imsdlgd).
mem() {
	local t=$1 pid=${PROXY[$1]} rss pss p used=- real=-
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
	pss=0
	for p in "$pid" $(tree_pids "$pid"); do
		pss=$((pss + $(awk '/^Pss:/ { print $2; exit }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
	done
	if [ "${KIND[$t]}" = kamailio ]; then
		used=$(rpc_get "$t" core.shmmem used)
		real=$(rpc_get "$t" core.shmmem real_used)
	fi
	echo "${rss:-0} $pss ${used:--} ${real:--}"
}

# heap TARGET: what imsdlgd's allocator holds for dialogs and profile
# memberships (mem.info: dialog_bytes + profile_bytes, malloc_usable_size
# summed over the records); "-" for Kamailio.
heap() {
	local b p
	[ "${KIND[$1]}" = imsdlgd ] || { echo - && return; }
	b=$(rpc_get "$1" mem.info dialog_bytes)
	p=$(rpc_get "$1" mem.info profile_bytes)
	[ -n "$b" ] && [ -n "$p" ] && echo $((b + p)) || echo -
}

per_dialog() { # AFTER BEFORE DIALOGS SCALE: (AFTER - BEFORE) * SCALE / DIALOGS, or -
	case "$1$2" in *-* | "") echo - && return ;; esac
	[ "${3:-0}" -gt 0 ] 2>/dev/null || { echo - && return; }
	fcalc "sprintf(\"%.0f\", ($1 - $2) * $4 / $3)"
}

# ---------------------------------------------------------------- memory

# slope TARGET SAMPLES: bytes per dialog as the least-squares slope of the
# proxy's memory (imsdlgd: RSS; Kamailio: shm used) against its count of
# dialogs, sampled every 2 s while the calls were created, between 30% and
# 95% of HOLD_CALLS: free memory the proxy held before the calls (from
# earlier runs) is used up by then and does not hide what dialogs take,
# and the transactions in flight are as many at both ends.
slope() {
	awk -v lo=$((HOLD_CALLS * 3 / 10)) -v hi=$((HOLD_CALLS * 95 / 100)) -v kind="${KIND[$1]}" '
		$2 + 0 >= lo && $2 + 0 <= hi {
			x = $2; y = (kind == "imsdlgd") ? $3 * 1024 : $5
			if (y == "-") next
			n++; sx += x; sy += y; sxx += x * x; sxy += x * y
		}
		END {
			d = n * sxx - sx * sx
			if (n < 3 || d == 0) print "-"
			else printf "%.0f", (n * sxy - sx * sy) / d
		}' "$2"
}

# hold TARGET: HOLD_CALLS calls set up at HOLD_RATE through TARGET and held
# (SIPp's pause after the ACK, -d) long enough for the readings, the rpc
# part when TARGET is one of RPC_TARGETS, and then ended by SIPp's BYEs, at
# the rate they were created. Sets H_* figures of TARGET.
declare -A H_DLG H_FAILED H_MEM0 H_MEM1 H_MEM2 H_LEFT H_NOTE H_CREATED H_TIME H_SLOPE H_HEAP0 H_HEAP1
hold() {
	local t=$1 pport uasport uacport with_rpc=no
	read -r pport uasport uacport <<<"${PORTS[$t]}"
	case " $PARTS " in *" rpc "*) case " $RPC_TARGETS " in *" $t "*) with_rpc=yes ;; esac ;; esac
	local creation=$((HOLD_CALLS / HOLD_RATE)) window=$HOLD_WINDOW
	[ $with_rpc = yes ] && window=$((window + 2 * RPC_SECONDS + 150))
	[ $with_rpc = yes ] && [ "${KIND[$t]}" = kamailio ] && window=$((window + RPC_TIMEOUT))
	# the first call's BYE goes once every call is up (given half as long
	# again to be created), settled, and measured
	local pause=$(((creation * 3 / 2 + SETTLE_SECONDS + window) * 1000))
	# A fresh proxy, warmed up at the rate of the hold: memory freed by
	# the CPU runs (transactions at 2,000 calls/s) would take the first
	# dialogs without the RSS growing.
	log "$t: started again for the hold"
	stop_proxy "$t"
	STATUS[$t]=ok
	WARMUP_RATE=$HOLD_RATE start_proxy "$t" || return
	wait_free "$uacport"
	sleep "$SETTLE_SECONDS" # what the warm-up left behind is freed
	H_MEM0[$t]=$(mem "$t")
	H_HEAP0[$t]=$(heap "$t")
	local n0
	n0=$(unfinished "$t")
	log "$t: holding $HOLD_CALLS calls, created at $HOLD_RATE calls/s, each up for $((pause / 1000)) s; before: ${n0:-?} dialogs, memory (RSS kB, PSS kB, shm used, shm real_used) ${H_MEM0[$t]}"
	local stf t0=$SECONDS
	stf=$logs/$t-hold-$(date +%s%N).csv
	SIPP_LIMIT=$((HOLD_CALLS + 1000)) sipp_uac "$t" "$uacport" "$HOLD_RATE" "$HOLD_CALLS" "$pause" "$stf"
	local uac=$UAC created=0 deadline=$((SECONDS + creation * 3 / 2 + 10))
	local samples=$logs/$t-hold-samples.txt
	: >"$samples"
	while kill -0 "$uac" 2>/dev/null && [ "$created" -lt "$HOLD_CALLS" ] && [ $SECONDS -lt $deadline ]; do
		sleep 2
		created=$(csv_field "$stf" "OutgoingCall(C)")
		created=${created:-0}
		PHASE="the hold, $created calls created" alive "$t" || break
		echo "$((SECONDS - t0)) $(unfinished "$t") $(mem "$t")" >>"$samples"
	done
	H_SLOPE[$t]=$(slope "$t" "$samples")
	H_CREATED[$t]=$created
	H_TIME[$t]=$((SECONDS - t0))
	if PHASE="the hold, $created calls created" alive "$t"; then
		sleep "$SETTLE_SECONDS" # tm's wait timer: the transactions are freed
		H_DLG[$t]=$(confirmed "$t")
		H_MEM1[$t]=$(mem "$t")
		H_HEAP1[$t]=$(heap "$t")
		H_FAILED[$t]=$(csv_field "$stf" "FailedCall(C)")
		log "  $created calls created in ${H_TIME[$t]} s; the proxy counts ${H_DLG[$t]:-?} confirmed dialogs, SIPp ${H_FAILED[$t]:-?} failed calls; memory ${H_MEM1[$t]}"
		[ $with_rpc = yes ] && rpc_part "$t"
	else
		H_NOTE[$t]="died during the hold, before the readings ($created of $HOLD_CALLS calls created; see $logs/$t.log)"
		H_FAILED[$t]=$(csv_field "$stf" "FailedCall(C)")
		log "  $t ${H_NOTE[$t]}"
	fi
	# SIPp ends the calls: BYEs as their pauses end, over about as long as
	# the calls took to be created (bounded here, and by SIPp's -timeout)
	if [ -z "${H_NOTE[$t]:-}" ]; then
		log "$t: SIPp ends the calls (BYE)"
		local until=$((t0 + pause / 1000 + creation * 2 + 60))
		while kill -0 "$uac" 2>/dev/null && [ $SECONDS -lt $until ] &&
			PHASE="the end of the hold (BYEs)" alive "$t"; do
			sleep 2
		done
		kill -0 "$uac" 2>/dev/null && alive "$t" && log "  the UAC still runs after $((SECONDS - t0)) s: stopped"
	fi
	stop_pid "$uac"
	H_FAILED[$t]=$(csv_field "$stf" "FailedCall(C)")
	if PHASE="the end of the hold (BYEs)" alive "$t"; then
		sleep $((SETTLE_SECONDS + 2)) # ended dialogs linger 5 s (end_timeout)
		H_LEFT[$t]=$(unfinished "$t")
		H_MEM2[$t]=$(mem "$t")
		log "  after the BYEs: ${H_LEFT[$t]:-?} dialogs left, SIPp ${H_FAILED[$t]:-?} failed calls in all; memory ${H_MEM2[$t]}"
	elif [ -z "${H_NOTE[$t]:-}" ]; then
		H_NOTE[$t]="died while the calls were held or ended (see $logs/$t.log)"
	fi
}

# ------------------------------------------------------------------- rpc

# rpc_part TARGET: with the calls held: dlg.list timed on each transport
# (twice), then the set-up latency of a RPC_RATE flow for RPC_SECONDS
# without dlg.list, and again while dlg.list runs back to back.
declare -A L_ONCE L_WITHOUT L_WITH L_LOOP L_MEM L_DURING
rpc_part() {
	local t=$1 pport uasport lport tr i
	read -r pport _ _ <<<"${PORTS[$t]}"
	lport=$((pport + 30)) uasport=$((pport + 40))
	# twice per transport on imsdlgd; once on Kamailio, where a listing of
	# 100,000 dialogs takes minutes and holds its workers meanwhile
	local rounds=2
	[ "${KIND[$t]}" = kamailio ] && rounds=1
	log "$t: dlg.list, $rounds time(s) per transport ($(transports "$t")), given up after $RPC_TIMEOUT s"
	L_MEM[$t]=$(echo "${H_MEM1[$t]}" | cut -d" " -f2)
	for i in $(seq $rounds); do
		# shellcheck disable=SC2046
		timeout $((RPC_TIMEOUT * 2 + 10)) python3 "$RPC" once $(transports "$t") \
			>>"$logs/$t-dlglist-once.jsonl" 2>>"$logs/$t.rpc.err"
		L_MEM[$t]="${L_MEM[$t]} $(mem "$t" | cut -d" " -f2)"
	done
	L_ONCE[$t]=$logs/$t-dlglist-once.jsonl
	sed 's/^/  /' "${L_ONCE[$t]}" >&2
	wait_free "$lport"
	wait_free "$uasport"
	sleep "$SETTLE_SECONDS"
	log "$t: set-up latency, $RPC_RATE calls/s for $RPC_SECONDS s, without dlg.list"
	L_WITHOUT[$t]=$(timeout $((RPC_SECONDS + 30)) python3 "$here/latency.py" "$pport" "$uasport" "$lport" \
		"$RPC_RATE" "$RPC_SECONDS" "$logs/$t-latency-without.txt" 2>>"$logs/$t.rpc.err")
	log "  ${L_WITHOUT[$t]}"
	log "$t: set-up latency, $RPC_RATE calls/s for $RPC_SECONDS s, while dlg.list runs back to back"
	L_LOOP[$t]=$logs/$t-dlglist-loop.jsonl
	# shellcheck disable=SC2046
	timeout $((RPC_SECONDS + RPC_TIMEOUT + 10)) python3 "$RPC" loop $((RPC_SECONDS + 2)) "${L_LOOP[$t]}" $(transports "$t") \
		2>>"$logs/$t.rpc.err" &
	local loop=$!
	started="$started $loop"
	sleep 1
	L_WITH[$t]=$(timeout $((RPC_SECONDS + 30)) python3 "$here/latency.py" "$pport" "$uasport" "$lport" \
		"$RPC_RATE" "$RPC_SECONDS" "$logs/$t-latency-with.txt" 2>>"$logs/$t.rpc.err")
	log "  ${L_WITH[$t]}"
	wait "$loop" 2>/dev/null
	forget "$loop"
	# the calls set up while a listing was in progress (the loop's record
	# of a listing is written when it ends)
	L_DURING[$t]=$(python3 "$here/latency.py" during "$logs/$t-latency-with.txt" "${L_LOOP[$t]}" 2>>"$logs/$t.rpc.err")
	log "  set up during a listing: ${L_DURING[$t]}"
	L_MEM[$t]="${L_MEM[$t]} $(mem "$t" | cut -d" " -f2)"
}

# ---------------------------------------------------------------- output

jfield() { # JSON FIELD...: fields of a JSON object (a.b for nested), "-" if absent
	python3 -c '
import json, sys
try:
    o = json.loads(sys.argv[1])
except ValueError:
    o = {}
out = []
for f in sys.argv[2:]:
    v = o
    for k in f.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    out.append("-" if v is None else str(v))
print(" ".join(out))' "$@"
}

# dlg.list figures per transport from a JSON-lines file: replies, dialogs,
# pages, bytes, min and max seconds, errors.
list_summary() {
	python3 -c '
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["transport"], []).append(r)
for tr, rs in rows.items():
    ok = [r for r in rs if not r["error"]]
    err = [r for r in rs if r["error"]]
    s = sorted(r["seconds"] for r in ok)
    print("%-8s %7d %9s %6s %11s %9s %9s %9s  %s" % (tr, len(rs),
          ok[-1]["dialogs"] if ok else "-", ok[-1]["pages"] if ok else "-",
          ok[-1]["bytes"] if ok else "-",
          "%.3f" % s[0] if s else "-", "%.3f" % s[len(s) // 2] if s else "-",
          "%.3f" % s[-1] if s else "-",
          ("%d failed: %s" % (len(err), str(err[0]["error"])[:100])) if err else ""))
' "$1" 2>/dev/null
}

report_cpu() {
	echo
	echo "CPU per call: SIPp UAC -> proxy -> SIPp UAS on 127.0.0.1; $ncpu cores; $WORKERS proxy workers"
	echo "imsdlgd: tm + rr (bench/proxy's config); imsdlgd_dlg: the same + ims_dialog, dlg_manage() and two profiles per call;"
	echo "kamailio_dlg: Kamailio 5.6 + dialog, dlg_manage() and two profiles; kamailio_ims: Kamailio 5.6 + ims_dialog (dlg_flag), two profiles"
	cpu_legend
	for t in $TARGETS; do
		[ -n "${NPROC[$t]:-}" ] && echo "$t: ${NPROC[$t]}"
	done
	echo
	cpu_table imsdlgd kamailio_dlg floor
	echo
	local rate vk vi ok_k ok_i
	for rate in $RATES; do
		vk=$(ratio "${CPU[imsdlgd_dlg,$rate]:-}" "${CPU[kamailio_dlg,$rate]:-}")
		vi=$(ratio "${CPU[imsdlgd_dlg,$rate]:-}" "${CPU[imsdlgd,$rate]:-}")
		ok_k="not measured" ok_i="not measured"
		[ "$vk" != - ] && ok_k=$(fcalc "($vk <= $TARGET_VS_KAMAILIO) ? \"met\" : \"not met\"")
		[ "$vi" != - ] && ok_i=$(fcalc "($vi <= 1 + $TARGET_DLG_COST / 100) ? \"met\" : \"not met\"")
		[ "$vi" != - ] && vi="$vi ($(fcalc "sprintf(\"%+.0f%%\", ($vi - 1) * 100)"))"
		echo "at $rate calls/s: imsdlgd_dlg / kamailio_dlg = ${vk} (target <= $TARGET_VS_KAMAILIO: $ok_k); imsdlgd_dlg / imsdlgd = $vi (target <= +$TARGET_DLG_COST%: $ok_i)"
		echo "  the same of the medians: $(median_ratio imsdlgd_dlg "$rate" kamailio_dlg); $(median_ratio imsdlgd_dlg "$rate" imsdlgd)"
	done
}

report_memory() {
	echo
	echo "Memory: $HOLD_CALLS calls held up at once (created at $HOLD_RATE calls/s), read $SETTLE_SECONDS s after the last was created"
	echo "dialogs: confirmed dialogs the proxy counts; failed: calls SIPp did not complete (all of the hold, BYEs included);"
	echo "B/dialog: imsdlgd: RSS growth / dialogs; Kamailio: shared memory used (core.shmmem used) growth / dialogs;"
	echo "slope: the same memory against the dialog count while the calls were created (30% to 95% of them), bytes per dialog;"
	echo "heap/dlg: imsdlgd's mem.info (dialog_bytes + profile_bytes: what its allocator holds for them) growth / dialogs;"
	echo "shm_real/dlg: Kamailio's shm real_used (with its allocator's overhead) growth / dialogs; PSS/dlg: PSS of all the"
	echo "proxy's processes, growth / dialogs; left: dialogs not ended $((SETTLE_SECONDS + 2)) s after SIPp's last BYE; RSS_end: RSS then (MB)"
	echo
	printf '%-13s %8s %8s %7s %9s %7s %9s %13s %8s %7s %8s\n' target created dialogs failed B/dialog slope heap/dlg shm_real/dlg PSS/dlg left RSS_end
	local t r0 r1 r2 p0 p1 s0 s1 q0 q1 bpd
	for t in $HOLD_TARGETS; do
		[ -n "${H_CREATED[$t]:-}" ] || { [ -n "${STATUS[$t]:-}" ] && printf '%-13s %s\n' "$t" "not held: ${STATUS[$t]}"; continue; }
		read -r r0 p0 s0 q0 <<<"${H_MEM0[$t]}"
		read -r r1 p1 s1 q1 <<<"${H_MEM1[$t]:-- - - -}"
		if [ "${KIND[$t]}" = imsdlgd ]; then
			bpd=$(per_dialog "$r1" "$r0" "${H_DLG[$t]:-0}" 1024)
		else
			bpd=$(per_dialog "$s1" "$s0" "${H_DLG[$t]:-0}" 1)
		fi
		BPD[$t]=$bpd
		r2=${H_MEM2[$t]:-}
		r2=${r2%% *}
		[ -n "$r2" ] && r2=$(fcalc "sprintf(\"%.0f\", $r2 / 1024)")
		printf '%-13s %8s %8s %7s %9s %7s %9s %13s %8s %7s %8s\n' "$t" "${H_CREATED[$t]}" "${H_DLG[$t]:--}" \
			"${H_FAILED[$t]:--}" "$bpd" "${H_SLOPE[$t]:--}" \
			"$(per_dialog "${H_HEAP1[$t]:--}" "${H_HEAP0[$t]:--}" "${H_DLG[$t]:-0}" 1)" \
			"$(per_dialog "$q1" "$q0" "${H_DLG[$t]:-0}" 1)" \
			"$(per_dialog "$p1" "$p0" "${H_DLG[$t]:-0}" 1024)" "${H_LEFT[$t]:--}" "${r2:--}"
		[ -n "${H_NOTE[$t]:-}" ] && echo "  $t ${H_NOTE[$t]}"
	done
	echo
	local v=-
	[ -n "${BPD[imsdlgd_dlg]:-}" ] && [ -n "${BPD[kamailio_dlg]:-}" ] && v=$(ratio "${BPD[imsdlgd_dlg]}" "${BPD[kamailio_dlg]}")
	if [ "$v" = - ]; then
		echo "bytes per dialog, imsdlgd_dlg / kamailio_dlg: not measured"
	else
		echo "bytes per dialog, imsdlgd_dlg / kamailio_dlg = $v (target <= $TARGET_MEM: $(fcalc "($v <= $TARGET_MEM) ? \"met\" : \"not met\""))"
	fi
}

latency_row() { # LABEL CALLS FAILED RTX P50 P99 MAX
	printf '  %-22s %6s %7s %5s %8s %8s %9s\n' "$@"
}

report_rpc() {
	local t
	for t in $RPC_TARGETS; do
		[ -n "${L_ONCE[$t]:-}" ] || continue
		echo
		echo "dlg.list on $t with ${H_DLG[$t]:-?} confirmed dialogs (client-side wall time, request sent to the last byte of the reply):"
		printf '%-8s %7s %9s %6s %11s %9s %9s %9s\n' transport replies dialogs pages bytes min_s median_s max_s
		list_summary "${L_ONCE[$t]}"
		[ -s "${L_LOOP[$t]:-}" ] && echo "during the latency flow:" && list_summary "${L_LOOP[$t]}"
		echo "the PSS of all the proxy's processes (MB) before the listings, after each round of them, after the latency flows:$(
			for r in ${L_MEM[$t]:-}; do printf ' %s' $((r / 1024)); done)"
		echo "set-up latency (first INVITE sent -> 200 received, us) of a $RPC_RATE calls/s flow for $RPC_SECONDS s through $t"
		echo "(latency.py: its own UAC and UAS, retransmitting as RFC 3261 17.1; failed: no 200, or no 200 to the BYE, in 5 s):"
		latency_row "" calls failed rtx p50 p99 max
		# shellcheck disable=SC2046
		latency_row "without dlg.list" $(jfield "${L_WITHOUT[$t]:-}" calls failed retransmissions p50_us p99_us max_us)
		# shellcheck disable=SC2046
		latency_row "dlg.list back to back" $(jfield "${L_WITH[$t]:-}" calls failed retransmissions p50_us p99_us max_us)
		# shellcheck disable=SC2046
		latency_row "  set up during a list" $(jfield "${L_DURING[$t]:-}" calls failed retransmissions p50_us p99_us max_us)
	done
}

# ---------------------------------------------------------------------------
command -v "$SIPP" >/dev/null || {
	echo "$SIPP not found" >&2
	exit 2
}
declare -A BPD
bench_init
check_targets
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
if ! want cpu; then # the other parts need no floor, nor a proxy they do not use
	TARGETS=$(for t in $TARGETS; do case " $HOLD_TARGETS $RPC_TARGETS " in *" $t "*) echo "$t" ;; esac; done)
fi

load_before=$(machine_load)
log "bench/dialog: $ncpu cores, $WORKERS proxy workers; parts: $PARTS; machine ${load_before}% busy before; logs in $logs"
start_proxies
want cpu && measure_rounds
if want memory || want rpc; then
	for t in $HOLD_TARGETS; do
		# hold starts it again, also after a crash
		case ${STATUS[$t]:-} in ok | "died during"*) hold "$t" ;; esac
	done
fi
stop_proxies
load_after=$(machine_load)

echo
echo "dialog benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'); machine busy before: ${load_before}%, after: ${load_after}%"
want cpu && report_cpu
{ want memory || want rpc; } && report_memory
want rpc && report_rpc
echo
crash_report
for t in $TARGETS; do
	[ "${STATUS[$t]}" != ok ] && echo "$t: ${STATUS[$t]}"
	[ -n "${EXITNOTE[$t]:-}" ] && echo "$t: ${EXITNOTE[$t]}"
done
echo "raw results: $csv; logs: $logs"
exit 0

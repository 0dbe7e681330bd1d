# shellcheck shell=bash
# What the benchmarks of bench/ share: sourced, not run, by bench/proxy/run.sh
# and bench/dialog/run.sh.
#
#   processes   started here and stopped by PID on exit (started, stop_pid)
#   /proc       CPU of a process tree, of the machine, others' load
#   UDP         is a port bound, datagrams a socket dropped
#   SIPp        a UAC run through a running proxy and UAS (sipp_run), its
#               statistics (csv_field, creation_rate)
#   proxies     start (Kamailio, imsdlgd) with their SIPp UAS and a warm-up,
#               stop, alive
#   CPU rounds  the floor, each target at each rate REPEAT times (the order
#               turning each round), retried while other programs disturb
#               it; the lowest and the median kept; the table
#
# The caller sets, before sourcing:
#   bench   its name (the output goes to BUILD_DIR/bench-NAME)
#   build   BUILD_DIR (absolute)
# and, after sourcing, per target T of TARGETS:
#   KIND[T]   floor, kamailio or imsdlgd
#   PORTS[T]  "PROXY UAS UAC" (UDP on 127.0.0.1)
#   launch_proxy T PORT   a function that starts T's proxy in the background
#                         (kamailio_launch, imsdlgd_launch help); its $! is
#                         taken as the proxy's PID
# then calls bench_init.

lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$lib/../.." && pwd)

WORKERS=${WORKERS:-2}
RATES=${RATES:-500 2000}
RUN_SECONDS=${RUN_SECONDS:-10}
REPEAT=${REPEAT:-4}
WARMUP_SECONDS=${WARMUP_SECONDS:-8}
QUIET_WAIT=${QUIET_WAIT:-20}
QUIET_MAX=${QUIET_MAX:-10}
TRIES=${TRIES:-3}
RETRY_UNTIL=${RETRY_UNTIL:-300}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
SIPP=${SIPP:-sipp}
FLOOR_SRC=$root/../shared/tools/udp-floor.c
IMSDLGD=$build/imsdlgd
UAC_XML=$lib/scenarios/uac.xml
UAS_XML=$lib/scenarios/uas.xml

CALL_PAUSE_MS=20 # between ACK and BYE in the CPU measurements
SETTLE_SECONDS=6 # > tm's wait timer (5 s): transactions are freed in the window
SKEWED=10        # others' load (% of all cores) from which a figure is flagged

hz=$(getconf CLK_TCK)
ncpu=$(nproc)

RESTARTS=${RESTARTS:-2} # a proxy that died is started again this many times

declare -A KIND PORTS PROXY UAS STATUS NPROC EXITNOTE CPU MEDIAN SAMPLES FAILED DROPS OTHERS RUNS CRASHES CRASHLOG

# bench_init: the temporary and output directories, the raw results' CSV,
# the exit trap. Sets tmp, out, csv, logs.
bench_init() {
	tmp=$(mktemp -d "/tmp/bench-$bench.XXXXXX")
	out=$build/bench-$bench
	mkdir -p "$out" 2>/dev/null || out=$tmp
	csv=$out/results.csv
	logs=$out/logs
	rm -rf "$logs"
	mkdir -p "$logs"
	echo "target,kind,rate,calls,ok,failed,retransmissions,proxy_drops,cpu_us_per_call,achieved_cps,uac_cpu_pct,uas_cpu_pct,machine_busy_pct,others_pct" >"$csv"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	# a crashing Kamailio would dump its 1 GB of shared memory
	ulimit -c 0
}

# The processes started here and still running, to stop them by PID on
# exit (a PID leaves the list once reaped: it may be reused by others).
started=""
forget() { started=$(echo " $started " | sed "s/ $1 / /"); }
cleanup() {
	local all="" p
	for p in $started $(for q in $started; do tree_pids "$q"; done); do
		all="$all $p:$(starttime "$p")"
	done
	for p in $started; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.5
	kill_same "$all"
	rm -rf "$tmp"
}

log() { echo "$*" >&2; }
fcalc() { awk "BEGIN { printf \"%s\", $* }" </dev/null; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- /proc

# utime + stime, in clock ticks, of PID and of every process whose parent
# chain leads to it. /proc/PID/stat counts all the threads of a process,
# including those that have exited.
tree_ticks() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
		{ pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
		  ppid[pid] = f[2]; t[pid] = f[12] + f[13] }
		END {
			sum = 0
			for (p in t)
				for (q = p; q != "" && q > 1; q = ppid[q])
					if (q == root) { sum += t[p]; break }
			print sum
		}'
}

# PIDs of PID's descendants.
tree_pids() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
		{ pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
		  ppid[pid] = f[2] }
		END {
			for (p in ppid)
				if (p != root)
					for (q = ppid[p]; q != "" && q > 1; q = ppid[q])
						if (q == root) { print p; break }
		}'
}

ticks() { # utime + stime of one process; "" once it is gone
	awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
		"/proc/$1/stat" 2>/dev/null
}

starttime() { # of a process, in ticks since boot: PID + this name a process
	awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[20] }' "/proc/$1/stat" 2>/dev/null
}

cpu_jiffies() { # "busy total" jiffies of the whole machine
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i
		print t - $5 - $6, t; exit }' /proc/stat
}

# Busy share of the machine over 2 s, in %: others' load skews every figure.
machine_load() {
	local b0 j0 b1 j1
	read -r b0 j0 <<<"$(cpu_jiffies)"
	sleep 2
	read -r b1 j1 <<<"$(cpu_jiffies)"
	fcalc "sprintf(\"%.0f\", ($b1 - $b0) / ($j1 - $j0) * 100)"
}

wait_quiet() { # up to QUIET_WAIT s for the machine to be <= QUIET_MAX % busy
	local waited=0 load
	while [ $waited -lt "$QUIET_WAIT" ]; do
		load=$(machine_load)
		[ "$load" -le "$QUIET_MAX" ] && return
		waited=$((waited + 2))
	done
}

# Time left for waiting and retrying (a run stays near its planned length).
time_left() { [ "$SECONDS" -lt "$RETRY_UNTIL" ]; }

# ------------------------------------------------------------ processes

# kill_same "PID:STARTTIME ...": SIGKILL to those still running (same PID,
# same start time: not a reused PID)
kill_same() {
	local e
	for e in $1; do
		[ "$(starttime "${e%%:*}")" = "${e#*:}" ] && kill -KILL "${e%%:*}" 2>/dev/null
	done
}

# Stops PID: SIGTERM, up to 5 s, then SIGKILL to it and to its descendants.
# Returns PID's exit status.
stop_pid() {
	local pid=$1 kids i=0 rc
	kids=$(for k in $(tree_pids "$pid"); do echo "$k:$(starttime "$k")"; done)
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "  $pid did not stop in 5 s after SIGTERM: killed"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	forget "$pid"
	kill_same "$kids"
	return $rc
}

# ------------------------------------------------------------------ UDP

udp_bound() { # is PORT bound on 127.0.0.1 or on any address?
	awk -v p=":$(printf %04X "$1")" 'toupper($2) == "0100007F" p || $2 == "00000000" p { f = 1 }
		END { exit !f }' /proc/net/udp
}

udp_drops() { # datagrams dropped so far by the sockets bound to 127.0.0.1:PORT
	awk -v a="0100007F:$(printf %04X "$1")" 'toupper($2) == a { d += $NF } END { print d + 0 }' /proc/net/udp
}

wait_bound() { # PORT PID SECONDS
	local i=0
	while ! udp_bound "$1"; do
		kill -0 "$2" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}

wait_free() { # PORT: up to 10 s for it to be unbound (the last UAC's, or another's)
	local i=0
	while udp_bound "$1" && [ $i -lt 20 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	! udp_bound "$1"
}

# ----------------------------------------------------------------- SIPp

# csv_field FILE NAME: NAME's value on the last line of a SIPp stat file.
csv_field() {
	awk -F';' -v name="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
		{ v = $c } END { print (c && v != "") ? v + 0 : "" }' "$1" 2>/dev/null
}

# creation_rate FILE CALLS: the rate at which SIPp created CALLS calls, from
# its stat file (a line a second), interpolating when the count was reached.
creation_rate() {
	awk -F';' -v calls="$2" '
		function epoch(f, a, n) { n = split(f, a, "\t"); return a[n] + 0 }
		NR == 1 { for (i = 1; i <= NF; i++) {
				if ($i == "StartTime") cs = i
				if ($i == "CurrentTime") cc = i
				if ($i == "OutgoingCall(C)") co = i }
			next }
		!done && co {
			t = epoch($cc) - epoch($cs); n = $co + 0
			if (n >= calls && n > np) {
				tr = tp + (calls - np) / (n - np) * (t - tp)
				done = 1
			}
			tp = t; np = n
		}
		END { printf "%.0f", (done && tr > 0) ? calls / tr : 0 }' "$1" 2>/dev/null
}

# sipp_uac TARGET UACPORT RATE CALLS PAUSE_MS STATFILE [SIPP OPTION...]:
# starts a SIPp UAC (uac.xml) through TARGET's proxy to its UAS, in the
# background, writing its statistics every second to STATFILE and its
# screens to STATFILE's name with .out; at most SIPP_LIMIT calls at once
# (default: the rate, at least 1000). Sets UAC (its PID).
sipp_uac() {
	local target=$1 uacport=$2 rate=$3 calls=$4 pause=$5 stf=$6
	shift 6
	local pport uasport limit=${SIPP_LIMIT:-$((rate > 1000 ? rate : 1000))}
	read -r pport uasport _ <<<"${PORTS[$target]}"
	# the whole run, with its pauses, twice over, and 20 s
	local gtimeout=$(((calls / rate + pause / 1000) * 2 + 20))
	# in the logs directory: SIPp writes its -trace_* files where it runs
	(cd "$logs" && exec "$SIPP" 127.0.0.1:"$pport" -key uas 127.0.0.1:"$uasport" \
		-i 127.0.0.1 -p "$uacport" -sf "$UAC_XML" -r "$rate" -m "$calls" \
		-l "$limit" -d "$pause" -buff_size 4194304 -recv_timeout 5000 \
		-timeout "${gtimeout}s" -nostdin -trace_stat -stf "$stf" -fd 1 "$@" \
		>"${stf%.csv}.out" 2>&1 </dev/null) &
	UAC=$!
	started="$started $UAC"
}

# ---------------------------------------------------------------------------
# One SIPp run through a running proxy and UAS.
#   sipp_run TARGET RATE CALLS SETTLE_SECONDS
# The proxy's CPU is read before the UAC starts and SETTLE_SECONDS after it
# has ended, so that what calls leave behind (transactions freed by a timer)
# is counted. Sets:
#   R_OK R_FAILED R_RETRANS  calls completed, calls not completed, SIPp's
#                            retransmissions
#   R_CPU_US                 proxy CPU per call
#   R_ACHIEVED               the rate at which SIPp created the calls
#   R_UAC_PCT R_UAS_PCT      SIPp's CPU in steady state, % of one core
#   R_MACHINE_PCT            busy share of all cores while the UAC ran
#   R_OTHERS_PCT             share of all cores used by processes not ours
#   R_DROPS                  datagrams the proxy's socket dropped (buffer full)
sipp_run() {
	local target=$1 rate=$2 calls=$3 settle=$4
	local pport uacport stf uac
	read -r pport _ uacport <<<"${PORTS[$target]}"
	stf=$logs/$target-$rate-$calls-$(date +%s%N).csv

	local p0 p1 a0 a1 m0 m1 m2 d0
	wait_free "$uacport"
	local proxy_pid=${PROXY[$target]} uas_pid=${UAS[$target]}
	d0=$(udp_drops "$pport")
	p0=$(tree_ticks "$proxy_pid")
	a0=$(ticks "$uas_pid")
	m0=$(cpu_jiffies)
	sipp_uac "$target" "$uacport" "$rate" "$calls" "$CALL_PAUSE_MS" "$stf"
	uac=$UAC

	# SIPp's own CPU in steady state: from 1 s after its start to the last
	# sample before it exits.
	local s_t0="" s_u0="" s_a0="" s_t s_u s_a s_tl="" s_ul="" s_al=""
	sleep 1
	while kill -0 "$uac" 2>/dev/null; do
		s_t=$(now)
		s_u=$(ticks "$uac")
		s_a=$(ticks "$uas_pid")
		[ -z "$s_u" ] && break
		if [ -z "$s_t0" ]; then
			s_t0=$s_t s_u0=$s_u s_a0=$s_a
		else
			s_tl=$s_t s_ul=$s_u s_al=$s_a
		fi
		sleep 0.2
	done
	wait "$uac" 2>/dev/null
	forget "$uac"
	m1=$(cpu_jiffies)
	sleep "$settle"
	p1=$(tree_ticks "$proxy_pid")
	a1=$(ticks "$uas_pid")
	m2=$(cpu_jiffies)
	R_DROPS=$(($(udp_drops "$pport") - d0))

	R_OK=$(csv_field "$stf" "SuccessfulCall(C)")
	R_OK=${R_OK:-0}
	R_FAILED=$((calls - R_OK))
	R_RETRANS=$(csv_field "$stf" "Retransmissions(C)")
	R_ACHIEVED=$(creation_rate "$stf" "$calls")
	R_CPU_US=$(fcalc "sprintf(\"%.1f\", ($p1 - $p0) / $hz * 1e6 / $calls)")
	R_UAC_PCT="" R_UAS_PCT=""
	if [ -n "$s_tl" ]; then
		R_UAC_PCT=$(fcalc "sprintf(\"%.0f\", ($s_ul - $s_u0) / $hz / ($s_tl - $s_t0) * 100)")
		R_UAS_PCT=$(fcalc "sprintf(\"%.0f\", ($s_al - $s_a0) / $hz / ($s_tl - $s_t0) * 100)")
	fi
	local b0 j0 b1 j1 b2 j2
	read -r b0 j0 <<<"$m0"
	read -r b1 j1 <<<"$m1"
	read -r b2 j2 <<<"$m2"
	R_MACHINE_PCT=$(fcalc "sprintf(\"%.0f\", ($b1 - $b0) / ($j1 - $j0) * 100)")
	# ours: the proxy, the UAS, the UAC (its CPU up to its last sample)
	R_OTHERS_PCT=$(fcalc "sprintf(\"%.0f\", (o = (($b2 - $b0) - ($p1 - $p0) - (${a1:-0} - ${a0:-0}) - ${s_ul:-${s_u0:-0}}) / ($j2 - $j0) * 100) > 0 ? o : 0)")
}

# -------------------------------------------------------------- proxies

# kamailio_launch TARGET CFG [kamailio option...]: Kamailio in the
# foreground with its children (-DD), listening on TARGET's port (the
# configuration's BENCH_PORT define), with its fast allocator tlsf, not
# Debian's default (q_malloc with memory debugging).
kamailio_launch() {
	local t=$1 cfg=$2
	shift 2
	mkdir -p "$tmp/$t"
	"$KAMAILIO" -f "$cfg" -DD -E -n "$WORKERS" -A "BENCH_PORT=${PORTS[$t]%% *}" \
		-x tlsf -X tlsf -m 1024 -M 16 -Y "$tmp/$t" -w "$tmp/$t" "$@" \
		>>"$logs/$t.log" 2>&1 </dev/null &
}

# imsdlgd_launch TARGET CFG: imsdlgd listening on TARGET's port only, with
# its worker ports (docs/configuration.md) at PORT + 100 ... unless
# WORKER_PORTS=0.
imsdlgd_launch() {
	local port=${PORTS[$1]%% *} wp=""
	[ "${WORKER_PORTS:-1}" = 0 ] || wp=" worker_ports $((port + 100))"
	"$IMSDLGD" -f "$2" -n "$WORKERS" -l "udp:127.0.0.1:$port$wp" \
		>>"$logs/$1.log" 2>&1 </dev/null &
}

start_proxy() { # TARGET: starts it and its UAS, and warms it up
	local t=$1 pport uasport uacport
	read -r pport uasport uacport <<<"${PORTS[$t]}"
	local p
	for p in $pport $uasport $uacport; do
		if ! wait_free "$p"; then
			STATUS[$t]="127.0.0.1:$p is in use by another program"
			return 1
		fi
	done
	launch_proxy "$t" "$pport"
	PROXY[$t]=$!
	started="$started ${PROXY[$t]}"
	if ! wait_bound "$pport" "${PROXY[$t]}" 10; then
		stop_pid "${PROXY[$t]}"
		STATUS[$t]="did not start (see $logs/$t.log)"
		return 1
	fi
	"$SIPP" -sf "$UAS_XML" -i 127.0.0.1 -p "$uasport" \
		-buff_size 4194304 -nostdin >>"$logs/$t.uas.out" 2>&1 </dev/null &
	UAS[$t]=$!
	started="$started ${UAS[$t]}"
	if ! wait_bound "$uasport" "${UAS[$t]}" 5; then
		STATUS[$t]="SIPp UAS did not start (see $logs/$t.uas.out)"
		stop_proxy "$t"
		return 1
	fi
	sleep 0.5

	# Warm-up: longer than tm's wait timer (5 s) at the highest rate, so
	# that the memory a proxy works in is allocated and touched before it
	# is measured (a fresh Kamailio takes ~5 page faults per call on its
	# first 20,000 calls at 2,000 calls/s, and twice the CPU).
	local rate=${WARMUP_RATE:-${RATES##* }} calls
	calls=$((rate * WARMUP_SECONDS))
	log "$t: started (pid ${PROXY[$t]}); warm-up, $calls calls at $rate calls/s"
	PHASE="the warm-up at $rate calls/s" sipp_run "$t" "$rate" "$calls" 2
	record "$t" "$rate" "$calls" warmup
	if ! PHASE="the warm-up at $rate calls/s" alive "$t"; then
		stop_proxy "$t"
		return 1
	fi
	if [ "$R_OK" -eq 0 ]; then
		STATUS[$t]="relays no call (warm-up: none of $calls calls completed; see $logs)"
		stop_proxy "$t"
		return 1
	fi
	STATUS[$t]=ok
	[ -z "${NPROC[$t]:-}" ] &&
		NPROC[$t]="$(($(tree_pids "${PROXY[$t]}" | wc -l) + 1)) processes, $(ls /proc/"${PROXY[$t]}"/task | wc -l) threads in the first"
	return 0
}

stop_proxy() { # TARGET
	local rc=0
	[ -n "${UAS[$1]:-}" ] && stop_pid "${UAS[$1]}"
	if [ -n "${PROXY[$1]:-}" ]; then
		stop_pid "${PROXY[$1]}"
		rc=$?
	fi
	if [ "${KIND[$1]}" = imsdlgd ] && [ "${STATUS[$1]}" = ok ] && [ $rc -ne 0 ]; then
		EXITNOTE[$1]="exit status $rc on SIGTERM (expected 0)"
	fi
	PROXY[$1]="" UAS[$1]=""
}

alive() { # TARGET: is its proxy still running? If not, says so.
	if [ -n "${PROXY[$1]:-}" ] && kill -0 "${PROXY[$1]}" 2>/dev/null; then
		return 0
	fi
	if [ "${STATUS[$1]}" = ok ]; then
		# it has just died: what it was doing, and what its log says
		local why rc
		wait "${PROXY[$1]}" 2>/dev/null
		rc=$?
		# the last complaint before the end, and how the process ended
		why=$({
			grep -aE 'CRITICAL|BUG|assert' "$logs/$1.log" | tail -1
			grep -aE 'exited by a signal|Segmentation|Aborted' "$logs/$1.log" | tail -1
		} 2>/dev/null | cut -c 1-200 | tr '\n' ' ')
		[ $rc -gt 128 ] && why="killed by signal $((rc - 128)); $why"
		CRASHES[$1]=$((${CRASHES[$1]:-0} + 1))
		CRASHLOG[$1]="${CRASHLOG[$1]:-}
  died during ${PHASE:-the run}: ${why:-exit status $rc}"
		forget "${PROXY[$1]}"
		log "  $1 died during ${PHASE:-the run}: ${why:-exit status $rc}"
	fi
	STATUS[$1]="died during the run (see $logs/$1.log)"
	return 1
}

# revive TARGET: a proxy that died is started again, up to RESTARTS times
# in all, warmed up at the lowest of RATES (a proxy that crashes under load
# may still be measured at a lower rate); its crashes are reported.
revive() {
	case ${STATUS[$1]} in "died during"*) ;; *) return 1 ;; esac
	[ "${CRASHES[$1]:-0}" -le "$RESTARTS" ] || return 1
	log "$1: started again after its crash number ${CRASHES[$1]}"
	[ -n "${UAS[$1]:-}" ] && stop_pid "${UAS[$1]}"
	PROXY[$1]="" UAS[$1]=""
	STATUS[$1]=ok
	WARMUP_RATE=${RATES%% *} start_proxy "$1"
}

# check_targets: STATUS[T] for each target of TARGETS: ok, or why it is
# skipped (the floor tool compiled into $tmp).
check_targets() {
	local t
	for t in $TARGETS; do
		case ${KIND[$t]:-} in
		floor)
			if [ ! -f "$FLOOR_SRC" ]; then
				STATUS[$t]="not found ($FLOOR_SRC)"
			elif ! cc -O2 -o "$tmp/udp-floor" "$FLOOR_SRC" 2>"$logs/floor.cc.log"; then
				STATUS[$t]="does not compile (see $logs/floor.cc.log)"
			else
				STATUS[$t]=ok
			fi
			;;
		kamailio)
			[ -x "$KAMAILIO" ] && STATUS[$t]=ok || STATUS[$t]="not installed ($KAMAILIO; scripts/install-deps.sh --bench installs it)"
			;;
		imsdlgd)
			[ -x "$IMSDLGD" ] && STATUS[$t]=ok || STATUS[$t]="not built ($IMSDLGD missing)"
			;;
		*)
			echo "unknown target $t" >&2
			exit 2
			;;
		esac
		# said now, not only in the table at the end
		[ "${STATUS[$t]}" = ok ] || log "$t: ${STATUS[$t]}: left out"
	done
}

start_proxies() { # every proxy of TARGETS that can run, side by side
	local t
	for t in $TARGETS; do
		[ "${KIND[$t]}" != floor ] && [ "${STATUS[$t]}" = ok ] && start_proxy "$t"
	done
	sleep "$SETTLE_SECONDS"
}

stop_proxies() {
	local t
	for t in $TARGETS; do
		[ -n "${PROXY[$t]:-}" ] && stop_proxy "$t"
	done
}

# ------------------------------------------------------------ CPU rounds

record() { # TARGET RATE CALLS KIND: a line of the raw results
	echo "$1,$4,$2,$3,$R_OK,$R_FAILED,$R_RETRANS,$R_DROPS,$R_CPU_US,$R_ACHIEVED,$R_UAC_PCT,$R_UAS_PCT,$R_MACHINE_PCT,$R_OTHERS_PCT" >>"$csv"
}

# keep TARGET RATE: takes in the run just made, as a word CPU/OTHERS% of
# SAMPLES. Runs that other programs disturbed (others' load above SKEWED)
# count only if no run was clean. Failed calls and drops add up.
keep() {
	local k=$1,$2 c=clean
	[ "${R_OTHERS_PCT:-0}" -gt "$SKEWED" ] && c=skewed
	SAMPLES[$c,$k]="${SAMPLES[$c,$k]:-} $R_CPU_US/${R_OTHERS_PCT:-0}"
	FAILED[$c,$k]=$((${FAILED[$c,$k]:-0} + R_FAILED))
	DROPS[$c,$k]=$((${DROPS[$c,$k]:-0} + ${R_DROPS:-0}))
}

measure_floor() { # RATE
	local rate=$1 calls=$(($1 * RUN_SECONDS)) line us m0 m1 b0 j0 b1 j1 own
	log "floor: $rate calls/s for $RUN_SECONDS s"
	m0=$(cpu_jiffies)
	# `times` in the subshell: the CPU of udp-floor and of its children
	line=$(
		"$tmp/udp-floor" "$rate" "$RUN_SECONDS" 2>&1
		times
	)
	m1=$(cpu_jiffies)
	echo "$line" >"$logs/floor-$rate-$(date +%s%N).out"
	us=$(echo "$line" | sed -n 's/.* \([0-9.]*\) us per call.*/\1/p')
	if [ -z "$us" ]; then
		log "  udp-floor failed: $line"
		return
	fi
	own=$(echo "$line" | tail -1 | awk '{ s = 0; for (i = 1; i <= NF; i++) {
		split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }')
	read -r b0 j0 <<<"$m0"
	read -r b1 j1 <<<"$m1"
	R_CPU_US=$us R_OK="" R_FAILED=0 R_RETRANS="" R_DROPS="" R_ACHIEVED="" R_UAC_PCT="" R_UAS_PCT=""
	R_MACHINE_PCT=$(fcalc "sprintf(\"%.0f\", ($b1 - $b0) / ($j1 - $j0) * 100)")
	R_OTHERS_PCT=$(fcalc "sprintf(\"%.0f\", (o = (($b1 - $b0) / $hz - $own) / (($j1 - $j0) / $hz) * 100) > 0 ? o : 0)")
	record floor "$rate" "$calls" cpu
	keep floor "$rate"
	log "  $us us/call (others' load ${R_OTHERS_PCT}%)"
}

measure_proxy() { # TARGET RATE
	local t=$1 rate=$2 calls=$(($2 * RUN_SECONDS))
	alive "$t" || return
	time_left && wait_quiet
	log "$t: $rate calls/s, $calls calls"
	sipp_run "$t" "$rate" "$calls" "$SETTLE_SECONDS"
	record "$t" "$rate" "$calls" cpu
	if ! PHASE="a run at $rate calls/s ($R_OK of $calls calls completed)" alive "$t"; then
		FAILED[died,$t,$rate]=$((${FAILED[died,$t,$rate]:-0} + R_FAILED))
		return
	fi
	keep "$t" "$rate"
	log "  $R_CPU_US us/call, $R_FAILED failed, $R_RETRANS retransmissions, $R_DROPS datagrams dropped by the proxy's socket; SIPp UAC ${R_UAC_PCT}%, UAS ${R_UAS_PCT}% of a core; others' load ${R_OTHERS_PCT}%"
}

# summarize SAMPLE...: "LOWEST OTHERS MEDIAN COUNT" of CPU/OTHERS% words:
# the lowest CPU (of the first run that gave it) with its run's others'
# load, the median (the mean of the middle two for an even count).
summarize() {
	printf '%s\n' "$@" | sort -s -t/ -g -k1,1 | awk -F/ '{ c[NR] = $1; o[NR] = $2 } END {
		printf "%s %s %.1f %d", c[1], o[1],
			NR % 2 ? c[(NR + 1) / 2] : (c[NR / 2] + c[NR / 2 + 1]) / 2, NR }'
}

# round_order I: TARGETS turned by I - 1 places, so that over the rounds
# each target runs early and late (after the others' runs have warmed or
# disturbed the machine) as often as the others.
round_order() {
	local -a ts
	read -r -a ts <<<"$TARGETS"
	local n=${#ts[@]} j
	for ((j = 0; j < n; j++)); do
		printf '%s ' "${ts[(j + $1 - 1) % n]}"
	done
}

# measure_rounds: for each rate of RATES, REPEAT rounds in which the targets
# take turns (so that a change in others' load weighs on all of them alike);
# a run other programs disturbed is taken again, up to TRIES times. Then
# CPU[T,RATE] (the lowest), MEDIAN, FAILED, DROPS, OTHERS, RUNS hold what is
# reported: the clean runs, or the disturbed ones when there was no clean
# run.
measure_rounds() {
	local rate i t try
	for rate in $RATES; do
		for i in $(seq "$REPEAT"); do
			for t in $(round_order "$i"); do
				[ "${STATUS[$t]}" = ok ] || revive "$t" || continue
				for try in $(seq "$TRIES"); do
					if [ "${KIND[$t]}" = floor ]; then
						time_left && wait_quiet
						measure_floor "$rate"
					else
						measure_proxy "$t" "$rate"
					fi
					[ "${STATUS[$t]}" = ok ] || break
					[ "${R_OTHERS_PCT:-0}" -le "$SKEWED" ] && break
					time_left || break
					[ "$try" -lt "$TRIES" ] && log "  others' load ${R_OTHERS_PCT}%: once more"
				done
			done
		done
	done
	local k c
	for t in $TARGETS; do
		for rate in $RATES; do
			k=$t,$rate c=clean
			[ -z "${SAMPLES[clean,$k]:-}" ] && c=skewed
			[ -n "${SAMPLES[$c,$k]:-}" ] || continue
			# shellcheck disable=SC2086 # the samples, one word each
			read -r "CPU[$k]" "OTHERS[$k]" "MEDIAN[$k]" "RUNS[$k]" \
				<<<"$(summarize ${SAMPLES[$c,$k]})"
			FAILED[$k]=${FAILED[$c,$k]:-} DROPS[$k]=${DROPS[$c,$k]:-}
			[ "${KIND[$t]}" = floor ] && FAILED[$k]=- DROPS[$k]=-
		done
	done
}

# --------------------------------------------------------------- output

ratio() { # A B: A / B with 2 decimals, or -
	if [ -n "$1" ] && [ -n "$2" ] && [ "$(fcalc "($2 > 0) ? 1 : 0")" = 1 ]; then
		fcalc "sprintf(\"%.2f\", $1 / $2)"
	else
		echo -
	fi
}

# median_ratio T RATE REF: T's median CPU over REF's at RATE, or -
median_ratio() {
	ratio "${MEDIAN[$1,$2]:-}" "${MEDIAN[$3,$2]:-}"
}

# ratios T RATE REF: T's figure over REF's, of the lowest and of the
# medians: "0.55 (0.58)"; "-" when the lowest is missing.
ratios() {
	local lo
	lo=$(ratio "${CPU[$1,$2]:-}" "${CPU[$3,$2]:-}")
	[ "$lo" = - ] && echo - && return
	echo "$lo ($(median_ratio "$@"))"
}

# cpu_table REF...: the CPU figures of every target at every rate, with
# their ratio to each REF target's (vs_REF; "-" for the floor against a
# proxy). Flags figures other programs skewed.
cpu_table() {
	local rate t r hdr="" row skewed=no
	local fmt='%-13s %6s %7s %5s %7s %6s %12s %8s'
	for r in "$@"; do
		hdr="$hdr $(printf '%14s' "vs_$r")"
	done
	printf "$fmt%s %8s\n" target rate calls runs failed drops cpu_us/call median "$hdr" others%
	for rate in $RATES; do
		for t in $TARGETS; do
			[ -n "${CPU[$t,$rate]:-}" ] || continue
			row=""
			for r in "$@"; do
				v=-
				[ "${KIND[$t]}" != floor ] || [ "${KIND[$r]:-}" = floor ] &&
					v=$(ratios "$t" "$rate" "$r")
				row="$row $(printf '%14s' "$v")"
			done
			printf "$fmt%s %8s\n" "$t" "$rate" $((rate * RUN_SECONDS)) "${RUNS[$t,$rate]}" \
				"${FAILED[$t,$rate]}" "${DROPS[$t,$rate]}" "${CPU[$t,$rate]}" "${MEDIAN[$t,$rate]:-}" "$row" "${OTHERS[$t,$rate]}"
			[ "${OTHERS[$t,$rate]:-0}" -gt "$SKEWED" ] && skewed=yes
		done
	done
	[ "$skewed" = yes ] &&
		echo "(others% above $SKEWED: other programs shared the CPU; such figures are skewed, take them again on a quiet machine)"
	return 0
}

crash_report() { # the proxies that died, and how
	local t
	for t in $TARGETS; do
		[ "${CRASHES[$t]:-0}" -gt 0 ] || continue
		echo "$t died ${CRASHES[$t]} time(s) (started again up to $RESTARTS times):${CRASHLOG[$t]}"
	done
}

cpu_legend() { # what the columns of cpu_table mean
	echo "calls: per run; runs: the runs counted (those other programs did not disturb, if any; else all);"
	echo "cpu_us/call: utime + stime of all the proxy's processes and threads / calls, lowest of the runs; median: of the runs;"
	echo "vs_REF: cpu_us/call over REF's (in brackets: median over median);"
	echo "failed: calls not completed, all runs counted; drops: datagrams the proxy's socket dropped (receive buffer full);"
	echo "others%: CPU used by other programs during the run kept, % of the machine"
}

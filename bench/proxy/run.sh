#!/usr/bin/env bash
# Proxy benchmark: SIPp UAC -> proxy -> SIPp UAS on 127.0.0.1, for imsdlgd
# and Debian's Kamailio 5.6 in the same run, next to the UDP floor (the CPU
# of a process that only receives and re-sends the datagrams of a call).
#
#   bench/proxy/run.sh [BUILD_DIR]        (BUILD_DIR defaults to build/)
#
# For each rate and target it prints the proxy's CPU per call (utime + stime
# from /proc of all its processes and threads, over a fixed number of calls)
# and the number of failed calls; then, per proxy, the highest rate with no
# failed call. See README.md. A report, not a test: it exits 0 whether the
# targets are met or not (2 on a usage error). Builds nothing but the floor
# tool (into a temporary directory); imsdlgd is skipped when BUILD_DIR has
# none. Everything runs on 127.0.0.1; every process is stopped by its PID.
#
# Settings (environment):
#   WORKERS=2            proxy workers: kamailio -n, imsdlgd -n
#   RATES="500 2000"     calls/s of the CPU measurements
#   RUN_SECONDS=10       length of one CPU measurement (calls = rate x this)
#   WARMUP_SECONDS=8     warm-up of each proxy, at the highest of RATES
#   REPEAT=2             CPU measurements per rate and target; the table
#                        keeps the lowest CPU (the least disturbed run)
#   PEAK_RATES="..."     rates tried, in order, by the peak search
#   PEAK_SECONDS=5       length of one peak step
#   QUIET_WAIT=20        before each CPU measurement, wait up to this many
#   QUIET_MAX=10         seconds for the machine to be at most QUIET_MAX %
#                        busy (other programs' load skews the figures)
#   TRIES=3              a measurement other programs disturbed (their load
#                        above 10% of the machine) is taken again, up to
#                        TRIES times in all, ...
#   RETRY_UNTIL=300      ... and waits and retries stop this many seconds
#                        into the run, to keep it near 10 minutes
#   TARGETS="floor kamailio imsdlgd"   add kamailio_lua for Kamailio running
#                        imsdlg.cfg + imsdlg.lua (its app_lua, same script)
#   KAMAILIO=/usr/sbin/kamailio  SIPP=sipp
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -gt 1 ]; then
	echo "usage: $0 [BUILD_DIR]" >&2
	exit 2
fi
build=${1:-$root/build}
case $build in /*) ;; *) build=$PWD/$build ;; esac

WORKERS=${WORKERS:-2}
RATES=${RATES:-500 2000}
RUN_SECONDS=${RUN_SECONDS:-10}
REPEAT=${REPEAT:-2}
PEAK_RATES=${PEAK_RATES:-1000 1500 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000 12000 15000}
PEAK_SECONDS=${PEAK_SECONDS:-5}
QUIET_WAIT=${QUIET_WAIT:-20}
QUIET_MAX=${QUIET_MAX:-10}
TRIES=${TRIES:-3}
RETRY_UNTIL=${RETRY_UNTIL:-300}
TARGETS=${TARGETS:-floor kamailio imsdlgd}
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
SIPP=${SIPP:-sipp}
FLOOR_SRC=$root/../shared/tools/udp-floor.c
IMSDLGD=$build/imsdlgd

# Ports (proxy, UAS, UAC), distinct per target.
kamailio_ports="15060 15070 15080"
imsdlgd_ports="16060 16070 16080"
kamailio_lua_ports="17060 17070 17080"

TARGET_VS_KAMAILIO=0.6
TARGET_VS_FLOOR=1.5
WARMUP_SECONDS=${WARMUP_SECONDS:-8}
SETTLE_SECONDS=6 # > tm's wait timer (5 s): transactions are freed in the window
SIPP_BUSY=90     # % of one core from which SIPp is taken as the limit
MACHINE_BUSY=90  # % of all cores from which the machine is taken as the limit
SKEWED=10        # others' load (% of all cores) from which a figure is flagged
PEAK_SKEWED=25   # ... from which it may have stopped a peak search
skewed=no

hz=$(getconf CLK_TCK)
ncpu=$(nproc)
tmp=$(mktemp -d /tmp/bench-proxy.XXXXXX)
out=$build/bench-proxy
mkdir -p "$out" 2>/dev/null || out=$tmp
csv=$out/results.csv
logs=$out/logs
rm -rf "$logs"
mkdir -p "$logs"

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
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "$*" >&2; }
fcalc() { awk "BEGIN { printf \"%s\", $* }" </dev/null; }
now() { date +%s.%N; }

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

starttime() { # of a process, in ticks since boot: PID + this name a process
	awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[20] }' "/proc/$1/stat" 2>/dev/null
}

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

ports() { eval echo "\$${1}_ports"; }

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
	local pport uasport uacport tag stf uac
	read -r pport uasport uacport <<<"$(ports "$target")"
	tag=$target-$rate-$calls-$(date +%s%N)
	stf=$logs/$tag.csv
	local limit=$((rate > 1000 ? rate : 1000))
	local gtimeout=$((calls / rate * 2 + 20))

	local p0 p1 a0 a1 m0 m1 m2 d0 i=0
	while udp_bound "$uacport" && [ $i -lt 20 ]; do # the last UAC's, or another's
		sleep 0.5
		i=$((i + 1))
	done
	local proxy_pid=${PROXY[$target]} uas_pid=${UAS[$target]}
	d0=$(udp_drops "$pport")
	p0=$(tree_ticks "$proxy_pid")
	a0=$(ticks "$uas_pid")
	m0=$(cpu_jiffies)
	"$SIPP" 127.0.0.1:"$uasport" -rsa 127.0.0.1:"$pport" -i 127.0.0.1 -p "$uacport" \
		-sf "$here/scenarios/uac.xml" -r "$rate" -m "$calls" -l "$limit" \
		-buff_size 4194304 -recv_timeout 5000 -timeout "${gtimeout}s" \
		-nostdin -trace_stat -stf "$stf" -fd 1 \
		>"$logs/$tag.uac.out" 2>&1 </dev/null &
	uac=$!
	started="$started $uac"

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

# ---------------------------------------------------------------------------
start_proxy() { # TARGET: starts it and its UAS, and warms it up
	local t=$1 pport uasport uacport
	read -r pport uasport uacport <<<"$(ports "$t")"
	local p i
	for p in $pport $uasport $uacport; do
		i=0
		while udp_bound "$p"; do
			i=$((i + 1))
			if [ $i -gt 20 ]; then
				STATUS[$t]="127.0.0.1:$p is in use by another program"
				return 1
			fi
			sleep 0.5
		done
	done
	case $t in
	kamailio)
		mkdir -p "$tmp/kamailio"
		# -DD: in the foreground, with its children. tlsf, not Debian's
		# default allocator (q_malloc with memory debugging).
		"$KAMAILIO" -f "$here/kamailio.cfg" -DD -E -n "$WORKERS" \
			-x tlsf -X tlsf -m 1024 -M 16 -Y "$tmp/kamailio" -w "$tmp/kamailio" \
			>>"$logs/kamailio.log" 2>&1 </dev/null &
		;;
	kamailio_lua)
		# imsdlg.cfg with its port and an absolute path to imsdlg.lua
		mkdir -p "$tmp/kamailio_lua"
		sed -e "s#\"imsdlg.lua\"#\"$here/imsdlg.lua\"#" -e "s/:${imsdlgd_ports%% *}/:$pport/" \
			"$here/imsdlg.cfg" >"$tmp/kamailio_lua/imsdlg.cfg"
		"$KAMAILIO" -f "$tmp/kamailio_lua/imsdlg.cfg" -DD -E -n "$WORKERS" \
			-x tlsf -X tlsf -m 1024 -M 16 -Y "$tmp/kamailio_lua" -w "$tmp/kamailio_lua" \
			>>"$logs/kamailio_lua.log" 2>&1 </dev/null &
		;;
	imsdlgd)
		"$IMSDLGD" -f "$here/imsdlg.cfg" -n "$WORKERS" \
			>>"$logs/imsdlgd.log" 2>&1 </dev/null &
		;;
	esac
	PROXY[$t]=$!
	started="$started ${PROXY[$t]}"
	if ! wait_bound "$pport" "${PROXY[$t]}" 10; then
		STATUS[$t]="did not start (see $logs/$t.log)"
		stop_pid "${PROXY[$t]}"
		return 1
	fi
	"$SIPP" -sf "$here/scenarios/uas.xml" -i 127.0.0.1 -p "$uasport" \
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
	local rate=${RATES##* } calls
	calls=$((rate * WARMUP_SECONDS))
	log "$t: started (pid ${PROXY[$t]}); warm-up, $calls calls at $rate calls/s"
	sipp_run "$t" "$rate" "$calls" 2
	record "$t" "$rate" "$calls" warmup
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
	local rc
	stop_pid "${UAS[$1]}"
	stop_pid "${PROXY[$1]}"
	rc=$?
	if [ "$1" = imsdlgd ] && [ $rc -ne 0 ]; then
		EXITNOTE[$1]="exit status $rc on SIGTERM (expected 0)"
	fi
	PROXY[$1]="" UAS[$1]=""
}

alive() { # TARGET: is its proxy still running? If not, says so.
	if [ -n "${PROXY[$1]:-}" ] && kill -0 "${PROXY[$1]}" 2>/dev/null; then
		return 0
	fi
	STATUS[$1]="died during the run (see $logs/$1.log)"
	return 1
}

record() { # TARGET RATE CALLS KIND: a line of the raw results
	echo "$1,$4,$2,$3,$R_OK,$R_FAILED,$R_RETRANS,$R_DROPS,$R_CPU_US,$R_ACHIEVED,$R_UAC_PCT,$R_UAS_PCT,$R_MACHINE_PCT,$R_OTHERS_PCT" >>"$csv"
}

# keep TARGET RATE: takes in the run just made. Runs that other programs
# disturbed (others' load above SKEWED) count only if no run was clean.
# The lowest CPU is kept; failed calls and drops add up.
keep() {
	local k=$1,$2 c=clean
	[ "${R_OTHERS_PCT:-0}" -gt "$SKEWED" ] && c=skewed
	if [ -z "${CPU[$c,$k]:-}" ] || [ "$(fcalc "($R_CPU_US < ${CPU[$c,$k]}) ? 1 : 0")" = 1 ]; then
		CPU[$c,$k]=$R_CPU_US
		OTHERS[$c,$k]=$R_OTHERS_PCT
	fi
	FAILED[$c,$k]=$((${FAILED[$c,$k]:-0} + R_FAILED))
	DROPS[$c,$k]=$((${DROPS[$c,$k]:-0} + ${R_DROPS:-0}))
	RUNS[$c,$k]=$((${RUNS[$c,$k]:-0} + 1))
}

# result TARGET RATE: sets CPU_, FAILED_, DROPS_, OTHERS_, RUNS_ from the
# clean runs, or from the disturbed ones when there was no clean run.
result() {
	local k=$1,$2 c=clean
	[ -z "${CPU[clean,$k]:-}" ] && c=skewed
	CPU_=${CPU[$c,$k]:-} FAILED_=${FAILED[$c,$k]:-} DROPS_=${DROPS[$c,$k]:-}
	OTHERS_=${OTHERS[$c,$k]:-} RUNS_=${RUNS[$c,$k]:-0}
	[ "$1" = floor ] && FAILED_=- DROPS_=-
}

# Time left for waiting and retrying (the whole run stays near 10 min).
time_left() { [ "$SECONDS" -lt "$RETRY_UNTIL" ]; }

# ---------------------------------------------------------------------------
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
	keep "$t" "$rate"
	log "  $R_CPU_US us/call, $R_FAILED failed, $R_RETRANS retransmissions, $R_DROPS datagrams dropped by the proxy's socket; SIPp UAC ${R_UAC_PCT}%, UAS ${R_UAS_PCT}% of a core; others' load ${R_OTHERS_PCT}%"
}

# The highest rate of PEAK_RATES with no failed call, or where SIPp or the
# machine runs out of CPU first.
peak_search() { # TARGET
	local t=$1 rate calls best=0 why="every rate of PEAK_RATES passed" capped slow retried=no
	STOP[$t]=exhausted
	alive "$t" || return
	set -- $PEAK_RATES
	while [ $# -gt 0 ]; do
		rate=$1
		calls=$((rate * PEAK_SECONDS))
		log "$t: peak step $rate calls/s, $calls calls"
		sipp_run "$t" "$rate" "$calls" 1
		record "$t" "$rate" "$calls" peak
		log "  $R_FAILED failed, $R_DROPS dropped by the proxy's socket, SIPp reached $R_ACHIEVED calls/s; SIPp UAC ${R_UAC_PCT}%, UAS ${R_UAS_PCT}% of a core; machine ${R_MACHINE_PCT}% busy, others' load ${R_OTHERS_PCT}%"
		# Is the load generator the limit? SIPp at a full core, the machine
		# (nearly) full, or SIPp not creating the calls as fast as asked.
		# (When calls fail, SIPp's slower creation is their consequence: it
		# stops creating calls at its limit of calls in progress.)
		capped=""
		slow=$(fcalc "($R_ACHIEVED < 0.9 * $rate) ? 1 : 0")
		if [ -n "$R_UAC_PCT" ] && [ "$(fcalc "($R_UAC_PCT >= $SIPP_BUSY || $R_UAS_PCT >= $SIPP_BUSY) ? 1 : 0")" = 1 ]; then
			capped="SIPp (UAC ${R_UAC_PCT}%, UAS ${R_UAS_PCT}% of a core)"
		elif [ "$(fcalc "($R_MACHINE_PCT >= $MACHINE_BUSY) ? 1 : 0")" = 1 ]; then
			capped="the $ncpu cores (${R_MACHINE_PCT}% busy: SIPp UAC ${R_UAC_PCT:-?}% + UAS ${R_UAS_PCT:-?}% of a core, others' load ${R_OTHERS_PCT}% of the machine)"
		elif [ "$slow" = 1 ] && [ "$R_FAILED" -eq 0 ]; then
			capped="SIPp (it created only $R_ACHIEVED calls/s; UAC ${R_UAC_PCT:-?}%, UAS ${R_UAS_PCT:-?}% of a core; machine ${R_MACHINE_PCT}% busy)"
		fi
		if { [ "$R_FAILED" -gt 0 ] || [ -n "$capped" ]; } && [ "$R_OTHERS_PCT" -gt "$SKEWED" ] &&
			[ $retried = no ] && [ "$SECONDS" -lt $((RETRY_UNTIL + 150)) ]; then
			# once per proxy: a fresh one, on a quieter machine
			log "  others' load ${R_OTHERS_PCT}%: this step once more"
			retried=yes
			stop_proxy "$t"
			wait_quiet
			start_proxy "$t" || return
			sleep 2
			continue
		fi
		if [ "$R_FAILED" -gt 0 ]; then
			why="at $rate calls/s $R_FAILED calls failed ($R_DROPS datagrams dropped by the proxy's socket)"
			STOP[$t]=failed
			if [ -n "$capped" ]; then
				# the proxy may have been starved rather than slow
				why="$why, while the limit was $capped"
				CAPPED[$t]=yes
				STOP[$t]=capped
			fi
			break
		fi
		if [ "$slow" = 1 ]; then
			why="at $rate calls/s no call failed, but the limit was $capped"
			CAPPED[$t]=yes
			STOP[$t]=capped
			break
		fi
		best=$rate
		if [ -n "$capped" ]; then
			why="at $rate calls/s no call failed, but the limit was $capped"
			CAPPED[$t]=yes
			STOP[$t]=capped
			break
		fi
		shift
		alive "$t" || return
		sleep 2
	done
	PEAK[$t]=$best
	PEAKWHY[$t]=$why
	# others' load on the last step: above SKEWED, it may have stopped the search
	PEAKOTHERS[$t]=${R_OTHERS_PCT:-0}
	[ "${STOP[$t]}" = exhausted ] && PEAKOTHERS[$t]=0
}

# ---------------------------------------------------------------------------
command -v "$SIPP" >/dev/null || {
	echo "$SIPP not found" >&2
	exit 2
}
declare -A PROXY UAS CPU FAILED DROPS OTHERS RUNS STOP PEAK PEAKWHY PEAKOTHERS CAPPED STATUS NPROC EXITNOTE
echo "target,kind,rate,calls,ok,failed,retransmissions,proxy_drops,cpu_us_per_call,achieved_cps,uac_cpu_pct,uas_cpu_pct,machine_busy_pct,others_pct" >"$csv"

for t in $TARGETS; do
	case $t in
	floor)
		if [ ! -f "$FLOOR_SRC" ]; then
			STATUS[floor]="not found ($FLOOR_SRC)"
		elif ! cc -O2 -o "$tmp/udp-floor" "$FLOOR_SRC" 2>"$logs/floor.cc.log"; then
			STATUS[floor]="does not compile (see $logs/floor.cc.log)"
		else
			STATUS[floor]=ok
		fi
		;;
	kamailio | kamailio_lua)
		[ -x "$KAMAILIO" ] && STATUS[$t]=ok || STATUS[$t]="not installed ($KAMAILIO)"
		;;
	imsdlgd)
		[ -x "$IMSDLGD" ] && STATUS[imsdlgd]=ok || STATUS[imsdlgd]="not built ($IMSDLGD missing)"
		;;
	*)
		echo "unknown target $t" >&2
		exit 2
		;;
	esac
done

load_before=$(machine_load)
log "bench/proxy: $ncpu cores, $WORKERS proxy workers, rates $RATES, $RUN_SECONDS s x $REPEAT each; machine ${load_before}% busy before; logs in $logs"
# The proxies run side by side (each idle while another is measured: they
# cost nothing then) and stay up, warm, until the end.
for t in $TARGETS; do
	[ "$t" != floor ] && [ "${STATUS[$t]}" = ok ] && start_proxy "$t"
done
sleep "$SETTLE_SECONDS"
# Targets take turns at each rate, so that a change in others' load
# weighs on all of them alike.
for rate in $RATES; do
	for i in $(seq "$REPEAT"); do
		for t in $TARGETS; do
			[ "${STATUS[$t]}" = ok ] || continue
			# again (up to TRIES times) while others' load disturbs it
			for try in $(seq "$TRIES"); do
				if [ "$t" = floor ]; then
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
for t in $TARGETS; do
	[ "$t" != floor ] && [ "${STATUS[$t]}" = ok ] && peak_search "$t"
done
for t in $TARGETS; do
	[ -n "${PROXY[$t]:-}" ] && stop_proxy "$t"
done
load_after=$(machine_load)

for t in $TARGETS; do
	for rate in $RATES; do
		result "$t" "$rate"
		[ -n "$CPU_" ] || continue
		CPU[$t,$rate]=$CPU_ FAILED[$t,$rate]=$FAILED_ DROPS[$t,$rate]=$DROPS_
		OTHERS[$t,$rate]=$OTHERS_ RUNS[$t,$rate]=$RUNS_
	done
done

# ---------------------------------------------------------------------------
ratio() { # A B: A / B with 2 decimals, or -
	if [ -n "$1" ] && [ -n "$2" ] && [ "$(fcalc "($2 > 0) ? 1 : 0")" = 1 ]; then
		fcalc "sprintf(\"%.2f\", $1 / $2)"
	else
		echo -
	fi
}

echo
echo "proxy benchmark: SIPp UAC -> proxy -> SIPp UAS on 127.0.0.1; $ncpu cores; $WORKERS proxy workers"
echo "calls: per run; runs: the runs counted (those other programs did not disturb, if any; else all);"
echo "cpu_us/call: utime + stime of all the proxy's processes and threads / calls, lowest of the runs;"
echo "failed: calls not completed, all runs counted; drops: datagrams the proxy's socket dropped (receive buffer full);"
echo "others%: CPU used by other programs during the run kept, % of the machine"
echo "(machine busy before the benchmark: ${load_before}%, after: ${load_after}%)"
for t in $TARGETS; do
	[ -n "${NPROC[$t]:-}" ] && echo "$t: ${NPROC[$t]}"
done
echo
printf '%-12s %6s %7s %5s %7s %6s %12s %12s %9s %8s\n' target rate calls runs failed drops cpu_us/call vs_kamailio vs_floor others%
for rate in $RATES; do
	for t in $TARGETS; do
		[ -n "${CPU[$t,$rate]:-}" ] || continue
		vk=-
		[ "$t" != floor ] && vk=$(ratio "${CPU[$t,$rate]}" "${CPU[kamailio,$rate]:-}")
		printf '%-12s %6s %7s %5s %7s %6s %12s %12s %9s %8s\n' "$t" "$rate" $((rate * RUN_SECONDS)) \
			"${RUNS[$t,$rate]}" "${FAILED[$t,$rate]}" "${DROPS[$t,$rate]}" "${CPU[$t,$rate]}" "$vk" \
			"$(ratio "${CPU[$t,$rate]}" "${CPU[floor,$rate]:-}")" "${OTHERS[$t,$rate]}"
		[ "${OTHERS[$t,$rate]:-0}" -gt "$SKEWED" ] && skewed=yes
	done
done
[ "$skewed" = yes ] &&
	echo "(others% above $SKEWED: other programs shared the CPU; such figures are skewed, take them again on a quiet machine)"
echo
for t in $TARGETS; do
	[ -n "${PEAK[$t]:-}" ] || continue
	p="${PEAK[$t]} calls/s"
	[ "${PEAK[$t]}" = 0 ] && p="below ${PEAK_RATES%% *} calls/s"
	echo "peak (zero failures): $t $p (capped by SIPp/the machine: ${CAPPED[$t]:-no}); ${PEAKWHY[$t]}"
done
echo

# Verdicts
for t in $TARGETS; do
	if [ "${STATUS[$t]}" != ok ]; then
		echo "$t: ${STATUS[$t]}"
		continue
	fi
	case $t in
	floor)
		line="floor:"
		for rate in $RATES; do
			line="$line ${CPU[floor,$rate]:-?} us per call at $rate calls/s;"
		done
		echo "${line%;}"
		;;
	kamailio | kamailio_lua)
		line="$t (reference, not judged):"
		for rate in $RATES; do
			line="$line $(ratio "${CPU[$t,$rate]:-}" "${CPU[floor,$rate]:-}")x the floor and ${FAILED[$t,$rate]:-?} failed at $rate calls/s;"
		done
		echo "${line%;}"
		;;
	imsdlgd)
		pass=yes
		for rate in $RATES; do
			vk=$(ratio "${CPU[imsdlgd,$rate]:-}" "${CPU[kamailio,$rate]:-}")
			vf=$(ratio "${CPU[imsdlgd,$rate]:-}" "${CPU[floor,$rate]:-}")
			ok_k=unchecked ok_f=unchecked
			[ "$vk" != - ] && ok_k=$(fcalc "($vk <= $TARGET_VS_KAMAILIO) ? \"met\" : \"MISSED\"")
			[ "$vf" != - ] && ok_f=$(fcalc "($vf <= $TARGET_VS_FLOOR) ? \"met\" : \"MISSED\"")
			f=${FAILED[imsdlgd,$rate]:-?}
			[ "$ok_k" = met ] && [ "$ok_f" = met ] && [ "$f" = 0 ] || pass=no
			echo "imsdlgd at $rate calls/s: ${vk}x kamailio (target <= $TARGET_VS_KAMAILIO: $ok_k), ${vf}x the floor (target <= $TARGET_VS_FLOOR: $ok_f), $f failed (target 0)"
		done
		pi=${PEAK[imsdlgd]:-} pk=${PEAK[kamailio]:-}
		if [ -z "$pi" ] || [ -z "$pk" ]; then
			echo "imsdlgd peak: unchecked (no peak for both)"
			pass=no
		elif [ "$pi" -gt "$pk" ] && [ "${PEAKOTHERS[kamailio]}" -le "$PEAK_SKEWED" ]; then
			echo "imsdlgd peak: $pi > kamailio's $pk calls/s: met"
			[ "$pk" = 0 ] && echo "  (0: kamailio failed at the first step, ${PEAK_RATES%% *} calls/s)"
		elif [ "$pi" -gt "$pk" ] || [ "${PEAKOTHERS[imsdlgd]}" -gt "$PEAK_SKEWED" ]; then
			echo "imsdlgd peak: $pi calls/s, kamailio's $pk, but other programs' load stopped a search (${PEAKOTHERS[imsdlgd]}% and ${PEAKOTHERS[kamailio]}% of the machine): undecided here"
			pass=no
		elif [ "$pi" = "$pk" ] && [ "${STOP[imsdlgd]}" != failed ] && [ "${STOP[kamailio]}" != failed ]; then
			echo "imsdlgd peak: $pi calls/s as kamailio's, neither failing a call (SIPp, the machine or PEAK_RATES stopped them): undecided here"
			pass=no
		else
			echo "imsdlgd peak: $pi <= kamailio's $pk calls/s: MISSED"
			pass=no
		fi
		[ -n "${EXITNOTE[imsdlgd]:-}" ] && echo "imsdlgd: ${EXITNOTE[imsdlgd]}" && pass=no
		echo "imsdlgd: all targets met: $pass"
		;;
	esac
done
echo
echo "raw results: $csv; logs: $logs"
exit 0

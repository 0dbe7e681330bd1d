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
#   REPEAT=4             CPU measurements per rate and target; the table
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
#   RESTARTS=2           a proxy that dies is started again this many times
#   KAMAILIO=/usr/sbin/kamailio  SIPP=sipp
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -gt 1 ]; then
	echo "usage: $0 [BUILD_DIR]" >&2
	exit 2
fi
build=${1:-$here/../../build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
bench=proxy
# shellcheck source=../lib/bench.sh
. "$here/../lib/bench.sh"

PEAK_RATES=${PEAK_RATES:-1000 1500 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000 12000 15000}
PEAK_SECONDS=${PEAK_SECONDS:-5}
TARGETS=${TARGETS:-floor kamailio imsdlgd}

# Ports (proxy, UAS, UAC), distinct per target.
KIND[floor]=floor
KIND[kamailio]=kamailio PORTS[kamailio]="15060 15070 15080"
KIND[imsdlgd]=imsdlgd PORTS[imsdlgd]="16060 16070 16080"
KIND[kamailio_lua]=kamailio PORTS[kamailio_lua]="17060 17070 17080"

TARGET_VS_KAMAILIO=0.6
TARGET_VS_FLOOR=1.5
SIPP_BUSY=90    # % of one core from which SIPp is taken as the limit
MACHINE_BUSY=90 # % of all cores from which the machine is taken as the limit
PEAK_SKEWED=25  # others' load from which it may have stopped a peak search

launch_proxy() { # TARGET PORT
	case $1 in
	kamailio)
		kamailio_launch "$1" "$here/kamailio.cfg"
		;;
	kamailio_lua)
		# imsdlg.cfg with its port and an absolute path to imsdlg.lua
		mkdir -p "$tmp/$1"
		sed -e "s#\"imsdlg.lua\"#\"$here/imsdlg.lua\"#" -e "s/:${PORTS[imsdlgd]%% *}/:$2/" \
			"$here/imsdlg.cfg" >"$tmp/$1/imsdlg.cfg"
		kamailio_launch "$1" "$tmp/$1/imsdlg.cfg"
		;;
	imsdlgd)
		imsdlgd_launch "$1" "$here/imsdlg.cfg"
		;;
	esac
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
declare -A STOP PEAK PEAKWHY PEAKOTHERS CAPPED
bench_init
check_targets

load_before=$(machine_load)
log "bench/proxy: $ncpu cores, $WORKERS proxy workers, rates $RATES, $RUN_SECONDS s x $REPEAT each; machine ${load_before}% busy before; logs in $logs"
# The proxies run side by side (each idle while another is measured: they
# cost nothing then) and stay up, warm, until the end.
start_proxies
measure_rounds
for t in $TARGETS; do
	[ "$t" != floor ] && [ "${STATUS[$t]}" = ok ] && peak_search "$t"
done
stop_proxies
load_after=$(machine_load)

# ---------------------------------------------------------------------------
echo
echo "proxy benchmark: SIPp UAC -> proxy -> SIPp UAS on 127.0.0.1; $ncpu cores; $WORKERS proxy workers"
cpu_legend
echo "(machine busy before the benchmark: ${load_before}%, after: ${load_after}%)"
for t in $TARGETS; do
	[ -n "${NPROC[$t]:-}" ] && echo "$t: ${NPROC[$t]}"
done
echo
cpu_table kamailio floor
echo
for t in $TARGETS; do
	[ -n "${PEAK[$t]:-}" ] || continue
	p="${PEAK[$t]} calls/s"
	[ "${PEAK[$t]}" = 0 ] && p="below ${PEAK_RATES%% *} calls/s"
	echo "peak (zero failures): $t $p (capped by SIPp/the machine: ${CAPPED[$t]:-no}); ${PEAKWHY[$t]}"
done
echo

crash_report

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
			echo "imsdlgd at $rate calls/s: ${vk}x kamailio (target <= $TARGET_VS_KAMAILIO: $ok_k), ${vf}x the floor (target <= $TARGET_VS_FLOOR: $ok_f), $f failed (target 0); of the medians: $(median_ratio imsdlgd "$rate" kamailio)x kamailio, $(median_ratio imsdlgd "$rate" floor)x the floor"
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

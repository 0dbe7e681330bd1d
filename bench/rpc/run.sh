#!/usr/bin/env bash
# dlg.list benchmark: bench/dialog/run.sh's rpc part alone (see README.md).
# 100,000 calls held up through imsdlgd (with dialogs) and through Kamailio's
# dialog module; dlg.list timed over imsdlgd's UNIX socket and HTTP (and
# Kamailio's jsonrpcs FIFO), and the set-up latency of a steady call flow
# with and without dlg.list running. Settings: those of bench/dialog/run.sh.
#
#   bench/rpc/run.sh [BUILD_DIR]        (BUILD_DIR defaults to build/)
here=$(cd "$(dirname "$0")" && pwd)
PARTS=${PARTS:-rpc} HOLD_TARGETS=${HOLD_TARGETS:-imsdlgd_dlg kamailio_dlg} \
	exec "$here/../dialog/run.sh" "$@"

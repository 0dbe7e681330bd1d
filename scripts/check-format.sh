#!/bin/sh
# Fails (exit 1) and lists the files that clang-format would change.
set -eu
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files -co --exclude-standard 'src/*.[ch]' 'include/*.h' \
	'tests/*.[ch]' 'bench/*.[ch]'); do
	[ -f "$f" ] || continue
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (run: clang-format -i $f)"
		bad=1
	fi
done
exit $bad

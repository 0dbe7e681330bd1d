# Sourced by the benchmarks (POSIX sh): figures from a build that is not
# there, or that carries sanitizers (they multiply the cost several
# times), mean nothing.
#
#   require_optimised_build BUILD_DIR PROGRAM HOW_TO_BUILD
#
# exits 2 with a message when PROGRAM (a path under BUILD_DIR) is missing
# or BUILD_DIR is a sanitizer build.
require_optimised_build() {
	if [ ! -x "$2" ]; then
		echo "$2 not found: build $1 first ($3)" >&2
		exit 2
	fi
	if grep -q '^IMSDLG_SANITIZE:BOOL=ON' "$1/CMakeCache.txt" 2>/dev/null; then
		echo "$1 is a sanitizer build: give an optimised one (build/)" >&2
		exit 2
	fi
}

# Sourced by tests/cli/*.t: TAP output, a private temporary directory, and
# the built tools first on PATH. CHOM_BUILD names the build directory
# (the plain build when unset).
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${CHOM_BUILD:-$TOP}
for _d in "$BUILD"/chom-*/; do PATH=${_d%/}:$PATH; done
export PATH
# Sanitizer reports end the run with an error rather than a log line.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=99}
# No /etc/chom/chom.conf of the machine leaks into a test.
export CHOM_CONFIG=/dev/null
unset CHOM_BASE GITHUB_STEP_SUMMARY

T=$(mktemp -d "${TMPDIR:-/tmp}/chom-test.XXXXXX")
_tap_n=0
_tap_fail=0
_cleanups=()

# at_exit CMD...: run at the end, last registered first.
at_exit() { _cleanups+=("$*"); }
_t_exit() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[$i]}" || true; done
	rm -rf "$T"
}
trap _t_exit EXIT

_tap() { # ok|not-ok description
	_tap_n=$((_tap_n + 1))
	if [ "$1" = ok ]; then
		echo "ok $_tap_n - $2"
	else
		_tap_fail=$((_tap_fail + 1))
		echo "not ok $_tap_n - $2"
	fi
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

# run CMD...: runs it, keeping RC, OUT (stdout) and ERR (stderr).
run() {
	"$@" >"$T/.out" 2>"$T/.err"
	RC=$?
	OUT=$(cat "$T/.out")
	ERR=$(cat "$T/.err")
	return 0
}

# ok DESC CMD...: passes when CMD succeeds.
ok() {
	local d=$1
	shift
	if "$@"; then _tap ok "$d"; else
		_tap not-ok "$d"
		diag "command failed: $*"
	fi
}
# is GOT WANT DESC
is() {
	if [ "$1" = "$2" ]; then _tap ok "$3"; else
		_tap not-ok "$3"
		diag "got:  '$1'" "want: '$2'"
	fi
}
# like GOT ERE DESC
like() {
	if printf '%s' "$1" | grep -qE -- "$2"; then _tap ok "$3"; else
		_tap not-ok "$3"
		diag "got:  '$1'" "want match: /$2/"
	fi
}
unlike() {
	if printf '%s' "$1" | grep -qE -- "$2"; then
		_tap not-ok "$3"
		diag "got:  '$1'" "want no match: /$2/"
	else _tap ok "$3"; fi
}
# exits CODE DESC: checks RC of the last run, showing its stderr otherwise.
exits() {
	if [ "$RC" = "$1" ]; then _tap ok "$2"; else
		_tap not-ok "$2"
		diag "exit status $RC, want $1" "stderr: $ERR"
	fi
}
skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
done_testing() { echo "1..$_tap_n"; [ "$_tap_fail" -eq 0 ]; }

# wait_for SECONDS CMD...: polls CMD every 20 ms until it succeeds, for
# at most SECONDS (a whole number); false if it never did.
wait_for() {
	local n=$(($1 * 50))
	shift
	while ((n-- > 0)); do
		"$@" && return 0
		sleep 0.02
	done
	return 1
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# usage_err DESC [ERE]: the last run was a usage error of the documented
# form (SPEC section 2) of the tool $TOOL names, its message matching ERE
# when given.
usage_err() {
	exits 2 "$1: exit 2"
	like "$(printf '%s\n' "$ERR" | tail -n 1)" "^Try '$TOOL --help'\.$" "$1: Try line"
	like "$(printf '%s\n' "$ERR" | head -n 1)" "^$TOOL: " "$1: message prefixed"
	is "$(printf '%s\n' "$ERR" | wc -l)" 2 "$1: one line and the Try line"
	is "$OUT" "" "$1: nothing on stdout"
	[ -n "${2:-}" ] && like "$(printf '%s\n' "$ERR" | head -n 1)" "$2" "$1: says why"
	return 0
}
# mf FILE PYEXPR: PYEXPR evaluated with m = the JSON of FILE; strings
# printed as is, other values as JSON.
mf() {
	python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
try:
    v = eval(sys.argv[2])
except Exception as e:
    print("?%s" % e); sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}

# Sourced by bench/*.sh: the helpers every benchmark uses. $work must name
# the bench's scratch directory before timed is called.

die() { echo "bench: $*" >&2; exit 1; }
# us2s MICROSECONDS: seconds with 3 decimals.
us2s() { printf '%d.%03d' $(($1 / 1000000)) $(($1 % 1000000 / 1000)); }
# median N...: the median of integers (the mean of the middle two for an
# even count).
median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# ratio A B: A / B with 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# timed CMD...: runs CMD with its output in $work/out and $work/err; sets
# $us to the wall-clock time in microseconds. A failure ends the bench.
timed() {
	local t0 t1 rc=0
	t0=$EPOCHREALTIME
	"$@" >"$work/out" 2>"$work/err" || rc=$?
	t1=$EPOCHREALTIME
	us=$((${t1/./} - ${t0/./}))
	if [ $rc -ne 0 ]; then
		echo "bench: failed (exit $rc): $*" >&2
		sed 's/^/  /' "$work/err" "$work/out" | head -20 >&2
		exit 1
	fi
}

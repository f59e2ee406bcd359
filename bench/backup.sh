#!/usr/bin/env bash
# bench/backup.sh TOPDIR: times chom-backup --db, encrypting to an age
# recipient, on a generated mysqldump-like SQL dump of about 1 GB fed through
# --db-cmd 'cat FILE' into a local file:// target: with --compress gzip
# against `pigz -6 | age -r KEY > FILE`, and with --compress zstd against
# `restic backup --stdin` into a new local repository. Also each one's peak
# RSS, and chom-backup's again on an input four times larger
# (--db-cmd 'cat FILE FILE FILE FILE', not stored). Run by `make bench`
# after `make`.
#
# BENCH_DIR   work directory; the generated dump is cached there
#             (default /var/tmp/chom-bench). Every output is written on its
#             filesystem, and removed (outside the timing) after each run.
# BENCH_RUNS  timed runs of each kind, rotating which goes first (default 3)
# BENCH_MB    size of the generated dump in MiB (default 1024)
set -euo pipefail
export LC_ALL=C
# No machine configuration, no environment leaks into the measurement.
export CHOM_CONFIG=/dev/null
unset CHOM_BASE GITHUB_STEP_SUMMARY
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE \
    RESTIC_PASSWORD_COMMAND RESTIC_CACHE_DIR RESTIC_COMPRESSION \
    RESTIC_PACK_SIZE GOMAXPROCS GOGC
export RESTIC_PASSWORD=chom-bench

MAX_RSS_MIB=64   # chom-backup's peak RSS, any mode, any input size
MAX_GROWTH=10    # percent: peak RSS on the 4x input against the 1x one
MIN_GZIP=1.0     # chom-backup gzip's throughput against pigz | age
MIN_ZSTD=1.5     # chom-backup zstd's throughput against restic
MAX_GZIP_SIZE=2  # percent: chom-backup gzip's output larger than pigz -6's
LARGE=4          # the larger input is the dump this many times over

. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: bench/backup.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
backup=$top/chom-backup/chom-backup
[ -x "$backup" ] || die "$backup is missing: run make first"
bench_need pigz age restic python3 gunzip zstd cmp
# Room: the dump when it is not there yet, and the largest output, that of
# the 4x input (about 4/3 of the dump), with some to spare.
bench_dump_setup backup 2

work=$(mktemp -d "$dir/backup.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat "$sql" >/dev/null # into the page cache: every kind reads it from there
q=$(printf '%q' "$sql")
dbcmd="cat $q"
dbcmd_large="cat"
for ((i = 0; i < LARGE; i++)); do dbcmd_large+=" $q"; done

# A copy: the binary measured is the same from the first run to the last,
# whatever `make` does meanwhile.
cp "$backup" "$work/chom-backup"
backup=$work/chom-backup
load=$(cut -d' ' -f1 /proc/loadavg)

timed "$backup" --keygen "$work/key.txt"
rcpt=$(grep -o 'age1[0-9a-z]*' "$work/out" | head -1)
[ -n "$rcpt" ] || die "chom-backup --keygen printed no recipient"

echo "chom backup bench: $(nproc) CPUs, $(uname -sr), $(stat -f -c %T "$work") filesystem at $dir"
echo "  $("$backup" --version | head -1); pigz $(pigz --version 2>&1 | awk '{ print $2 }')," \
    "age $(age --version), restic $(restic version | awk '{ print $2 }')"
echo "  load average at the start: $load$(awk -v l="$load" -v n="$(nproc)" 'BEGIN { if (l > n / 2) print " (other work is running: the timings will be noisy)" }')"
echo "dump: $sql"
echo "  $(cat "$info"); $(mb "$bytes") MB"
echo
echo "  (a) chom-backup --to file://DIR --db --db-cmd 'cat DUMP' -r AGE1... --compress gzip"
echo "  (b) chom-backup ... --compress zstd"
echo "      (chom-backup's default --level and --threads ($(nproc)) otherwise; it fsyncs its output)"
echo "  (c) pigz -6 < DUMP | age -r AGE1... > OUT              (no fsync)"
echo "  (d) restic -r REPO --no-cache backup --stdin --stdin-filename db.sql < DUMP"
echo "      (a new repository each run, made outside the timing: nothing to deduplicate against)"
echo "  wall clock by EPOCHREALTIME; CPU (user + system) and peak RSS by /usr/bin/time -v,"
echo "  of the process for (a), (b), (d) (chom-backup's includes its threads; its dump"
echo "  command, sh and cat, is smaller), of pigz and age each for (c): its CPU is their"
echo "  sum, its RSS the sum of their peaks"
echo "  $runs timed runs of each, rotating which goes first; outputs removed and synced after"
echo "  each run, outside the timing:"

declare -A us_of rss_of out_of cpu_of
for k in a b c d; do us_of[$k]='' rss_of[$k]='' out_of[$k]='' cpu_of[$k]=''; done
rss_pigz=() rss_age=()

# The part chom-backup wrote into target $1, after it printed the point id.
part_of() {
	local point
	point=$(tail -1 "$work/out")
	[[ $point =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || die "chom-backup printed '$point', not a point id"
	[ -s "$1/bench/$point/manifest.json" ] || die "no manifest in $1/bench/$point"
	echo "$1/bench/$point/db.sql.$2.age"
}
run_chom() { # KIND COMPRESS(gzip|zstd) EXT RUN
	local t=$work/target part
	timed /usr/bin/time -v -o "$work/time" "$backup" --to "file://$t" --host bench \
	    --db --db-cmd "$dbcmd" -r "$rcpt" --compress "$2"
	part=$(part_of "$t" "$3")
	[ -s "$part" ] || die "chom-backup wrote no $part"
	us_of[$1]+=" $us" rss_of[$1]+=" $(maxrss "$work/time")" out_of[$1]+=" $(stat -c %s "$part")"
	cpu_of[$1]+=" $(cpums "$work/time")"
	# Once, outside the timing: the part is the dump again.
	if [ "$4" -eq 1 ]; then
		if [ "$2" = gzip ]; then
			age -d -i "$work/key.txt" "$part" | gunzip | cmp - "$sql" ||
				die "age -d | gunzip of chom-backup's $part is not the dump"
		else
			age -d -i "$work/key.txt" "$part" | zstd -dcq | cmp - "$sql" ||
				die "age -d | zstd -d of chom-backup's $part is not the dump"
		fi
		verified+="${verified:+ and }$2"
	fi
	rm -rf "$t"
	sync
}
pigz_age() {
	/usr/bin/time -v -o "$work/time" pigz -6 <"$sql" |
		/usr/bin/time -v -o "$work/time2" age -r "$rcpt" >"$work/out.gz.age"
}
run_pigz() {
	timed pigz_age
	local p a
	p=$(maxrss "$work/time") a=$(maxrss "$work/time2")
	rss_pigz+=("$p") rss_age+=("$a")
	us_of[c]+=" $us" rss_of[c]+=" $((p + a))" out_of[c]+=" $(stat -c %s "$work/out.gz.age")"
	cpu_of[c]+=" $(($(cpums "$work/time") + $(cpums "$work/time2")))"
	rm -f "$work/out.gz.age"
	sync
}
restic_backup() {
	/usr/bin/time -v -o "$work/time" restic -r "$work/repo" --no-cache backup -q \
	    --host bench --stdin --stdin-filename db.sql <"$sql"
}
run_restic() {
	timed restic -r "$work/repo" --no-cache init
	sync
	timed restic_backup
	us_of[d]+=" $us" rss_of[d]+=" $(maxrss "$work/time")" out_of[d]+=" $(du -sb "$work/repo" | cut -f1)"
	cpu_of[d]+=" $(cpums "$work/time")"
	rm -rf "$work/repo"
	sync
}
declare -A name_of=([a]="chom-backup gzip" [b]="chom-backup zstd" [c]="pigz -6 | age" [d]="restic")
# report KIND: the run just done.
report() {
	local u r o c
	u=${us_of[$1]##* } r=${rss_of[$1]##* } o=${out_of[$1]##* } c=${cpu_of[$1]##* }
	printf '    (%s) %-17s %8s s %6s MB/s  cpu %7s s  peak RSS %5s MiB%s  output %s MB (%sx)\n' \
	    "$1" "${name_of[$1]}" "$(us2s "$u")" "$(mbs "$bytes" "$u")" "$(us2s $((c * 1000)))" "$(mib "$r")" \
	    "$([ "$1" = c ] && printf ' (pigz %s + age %s)' "$(mib "${rss_pigz[-1]}")" "$(mib "${rss_age[-1]}")")" \
	    "$(mb "$o")" "$(ratio "$bytes" "$o")"
}
one() {
	case $1 in
	a) run_chom a gzip gz "$2" ;;
	b) run_chom b zstd zst "$2" ;;
	c) run_pigz ;;
	d) run_restic ;;
	esac
	report "$1"
}

verified=
order=(a c b d)
t_start=$EPOCHREALTIME
for ((r = 1; r <= runs; r++)); do
	echo "  run $r/$runs:"
	for ((j = 0; j < 4; j++)); do
		one "${order[(r - 1 + j) % 4]}" "$r"
	done
done

# The medians, by kind.
declare -A mus mrss mout mcpu
for k in a b c d; do
	# shellcheck disable=SC2086 # the lists are words
	mus[$k]=$(median ${us_of[$k]}) mrss[$k]=$(median ${rss_of[$k]}) mout[$k]=$(median ${out_of[$k]})
	# shellcheck disable=SC2086
	mcpu[$k]=$(median ${cpu_of[$k]})
done
echo
echo "medians of $runs runs, input $(mb "$bytes") MB:"
for k in a b c d; do
	printf '  (%s) %-17s %8s s %6s MB/s  cpu %7s s  peak RSS %5s MiB  output %s MB (%sx)\n' \
	    "$k" "${name_of[$k]}" "$(us2s "${mus[$k]}")" "$(mbs "$bytes" "${mus[$k]}")" "$(us2s $((mcpu[$k] * 1000)))" \
	    "$(mib "${mrss[$k]}")" "$(mb "${mout[$k]}")" "$(ratio "$bytes" "${mout[$k]}")"
done
echo "  (pigz -6 | age: pigz alone $(mib "$(median "${rss_pigz[@]}")") MiB, age alone $(mib "$(median "${rss_age[@]}")") MiB)"
echo "  checked once, outside the timing: age -d -i KEY PART | gunzip (zstd -d) | cmp - DUMP"
echo "  on the first run's $verified parts: identical"
echo

# The 4x input, once in each mode: only its peak RSS is judged.
echo "larger input: --db-cmd 'cat DUMP DUMP DUMP DUMP' ($(mb $((bytes * LARGE))) MB, not stored), once in each mode:"
declare -A lrss
for k in a b; do
	c=gzip e=gz
	[ $k = b ] && c=zstd e=zst
	t=$work/target
	timed /usr/bin/time -v -o "$work/time" "$backup" --to "file://$t" --host bench \
	    --db --db-cmd "$dbcmd_large" -r "$rcpt" --compress "$c"
	part=$(part_of "$t" "$e")
	lrss[$k]=$(maxrss "$work/time")
	printf '  (%s) %-17s %8s s %6s MB/s  cpu %7s s  peak RSS %5s MiB (1x median %s MiB, %+.1f%%)  output %s MB\n' \
	    "$k" "${name_of[$k]}" "$(us2s "$us")" "$(mbs $((bytes * LARGE)) "$us")" "$(us2s $(($(cpums "$work/time") * 1000)))" \
	    "$(mib "${lrss[$k]}")" "$(mib "${mrss[$k]}")" \
	    "$(awk -v l="${lrss[$k]}" -v m="${mrss[$k]}" 'BEGIN { print (l - m) * 100 / m }')" \
	    "$(mb "$(stat -c %s "$part")")"
	rm -rf "$t"
	sync
done
echo

# The verdicts: throughput ratios are those of the median times.
ga=$(ratio "${mus[c]}" "${mus[a]}")
zb=$(ratio "${mus[d]}" "${mus[b]}")
peak=0
# shellcheck disable=SC2086
for v in ${rss_of[a]} ${rss_of[b]} "${lrss[a]}" "${lrss[b]}"; do
	[ "$v" -gt "$peak" ] && peak=$v
done
echo "targets:"
printf '  chom-backup gzip / pigz -6 | age throughput:  %sx (target >= %sx %s; by CPU time %sx)\n' \
    "$ga" "$MIN_GZIP" "$(met "${mus[c]} >= $MIN_GZIP * ${mus[a]}")" "$(ratio "${mcpu[c]}" "${mcpu[a]}")"
printf '  chom-backup gzip output / pigz -6 | age:      %sx (target within %d%% %s; level 6 searches less than zlib'"'"'s)\n' \
    "$(ratio "${mout[a]}" "${mout[c]}")" "$MAX_GZIP_SIZE" "$(met "${mout[a]} <= ${mout[c]} * (100 + $MAX_GZIP_SIZE) / 100")"
printf '  chom-backup zstd / restic throughput:         %sx (target >= %sx %s; by CPU time %sx)\n' \
    "$zb" "$MIN_ZSTD" "$(met "${mus[d]} >= $MIN_ZSTD * ${mus[b]}")" "$(ratio "${mcpu[d]}" "${mcpu[b]}")"
printf '  chom-backup peak RSS, any run:                %s MiB (gzip median %s, zstd median %s; target <= %s MiB %s)\n' \
    "$(mib "$peak")" "$(mib "${mrss[a]}")" "$(mib "${mrss[b]}")" "$MAX_RSS_MIB" \
    "$(met "$peak <= $MAX_RSS_MIB * 1024")"
for k in a b; do
	printf '  chom-backup %s peak RSS, %dx input / 1x:     %sx (target within %d%% %s)\n' \
	    "${name_of[$k]#chom-backup }" "$LARGE" "$(ratio "${lrss[$k]}" "${mrss[$k]}")" "$MAX_GROWTH" \
	    "$(met "${lrss[$k]} <= ${mrss[$k]} * (100 + $MAX_GROWTH) / 100 && ${lrss[$k]} >= ${mrss[$k]} * (100 - $MAX_GROWTH) / 100")"
done
t_end=$EPOCHREALTIME
printf '(timed part of the bench: %s s)\n' "$(us2s $((${t_end/./} - ${t_start/./})))"

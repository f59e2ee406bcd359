#!/usr/bin/env bash
# bench/restore.sh TOPDIR: times chom-restore --db, in its default mode (the
# whole part verified into a spool before the database command starts; no
# --spool-dir: the spool is memory when the dump and 64 MiB are at most a
# quarter of MemAvailable, else a file in /var/tmp), on the mysqldump-like
# dump of about 1 GB bench/backup.sh reads (generated and cached the same
# way, by bench_dump of bench/lib.sh), restored to /dev/null: from a gzip
# and a zstd point against `age -d | gzip -d` and `age -d | zstd -d`, and
# against `restic dump` from a local repository. Also, for information,
# the spool on disk (--spool-dir), --stream, --no-spool and --verify. Run
# by `make bench` after `make`.
#
# BENCH_DIR   work directory; the generated dump is cached there, shared
#             with bench/backup.sh (default /var/tmp/chom-bench). The
#             points, the restic repository and the --spool-dir spool are
#             written on its filesystem, and removed at the end; the dump
#             is kept.
# BENCH_RUNS  timed runs of each kind, rotating which goes first (default 3)
# BENCH_MB    size of the dump in MiB, as for bench/backup.sh (default 1024)
set -euo pipefail
export LC_ALL=C
# No machine configuration, no environment leaks into the measurement.
export CHOM_CONFIG=/dev/null
unset CHOM_BASE GITHUB_STEP_SUMMARY TMPDIR
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE \
    RESTIC_PASSWORD_COMMAND RESTIC_CACHE_DIR RESTIC_COMPRESSION \
    RESTIC_PACK_SIZE GOMAXPROCS GOGC
export RESTIC_PASSWORD=chom-bench

MIN_AGE=1.0 # chom-restore's throughput against age -d | gzip -d (zstd -d)

. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: bench/restore.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
backup=$top/chom-backup/chom-backup
restore=$top/chom-restore/chom-restore
for b in "$backup" "$restore"; do
	[ -x "$b" ] || die "$b is missing: run make first"
done
bench_need age gzip zstd restic cmp
# Room: the dump when it is not there yet, the two points and the restic
# repository (about a third of the dump each), the --spool-dir spool (the
# dump and 64 MiB), with some to spare.
bench_dump_setup restore 2

# default_spool: sets $spool to where chom-restore --db puts the spool of
# the dump without --spool-dir, found as it does (spool_for in
# lib/restore.c): "memory" when the plaintext and 64 MiB are at most a
# quarter of MemAvailable, else $TMPDIR (unset here) or /var/tmp; and
# $mem_kib to MemAvailable in KiB.
default_spool() {
	mem_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
	[[ $mem_kib =~ ^[0-9]+$ ]] || mem_kib=0
	spool=/var/tmp
	[ $((bytes + 67108864)) -le $((mem_kib * 1024 / 4)) ] && spool=memory
	return 0
}

work=$(mktemp -d "$dir/restore.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Copies: the binaries measured are the same from the first run to the
# last, whatever `make` does meanwhile.
cp "$backup" "$work/chom-backup"
cp "$restore" "$work/chom-restore"
backup=$work/chom-backup
restore=$work/chom-restore
load=$(cut -d' ' -f1 /proc/loadavg)

timed "$backup" --keygen "$work/key.txt"
key=$work/key.txt
chmod 600 "$key"
rcpt=$(grep -o 'age1[0-9a-z]*' "$work/out" | head -1)
[ -n "$rcpt" ] || die "chom-backup --keygen printed no recipient"

# The points and the repository, outside the timing. Each point has a host
# of its own: two backups in the same second would have the same id.
q=$(printf '%q' "$sql")
pts=$work/points
declare -A point_of part_of
for c in gzip zstd; do
	timed "$backup" --to "file://$pts" --host "bench-$c" --db --db-cmd "cat $q" \
	    -r "$rcpt" --compress "$c"
	point_of[$c]=$(tail -1 "$work/out")
	[[ ${point_of[$c]} =~ ^[0-9]{8}T[0-9]{6}Z$ ]] ||
		die "chom-backup printed '${point_of[$c]}', not a point id"
	e=gz
	[ $c = zstd ] && e=zst
	part_of[$c]=$pts/bench-$c/${point_of[$c]}/db.sql.$e.age
	[ -s "${part_of[$c]}" ] || die "chom-backup wrote no ${part_of[$c]}"
done
repo=$work/repo
timed restic -r "$repo" --no-cache init
timed restic -r "$repo" --no-cache backup -q --host bench --stdin --stdin-filename db.sql <"$sql"
sync
# Into the page cache: every kind reads its input from there.
cat "${part_of[gzip]}" "${part_of[zstd]}" >/dev/null
find "$repo" -type f -exec cat {} + >/dev/null

# Once, outside the timing: what chom-restore hands over is the dump, in
# the default mode of both points and with --spool-dir once, and it spools
# (no "no room" message with -v).
default_spool
checked_spool=$spool
for c in gzip zstd gzip-disk; do
	spool_dir=()
	[ $c = gzip-disk ] && c=gzip spool_dir=(--spool-dir "$work")
	timed "$restore" -v --db "${point_of[$c]}" --from "file://$pts" --host "bench-$c" \
	    -i "$key" "${spool_dir[@]}" --db-cmd "cmp - $q"
	if grep -q 'no room' "$work/err"; then
		die "chom-restore did not spool: $(cat "$work/err")"
	fi
done

echo "chom restore bench: $(nproc) CPUs, $(uname -sr), $(stat -f -c %T "$work") filesystem at $dir"
echo "  $("$restore" --version | head -1); age $(age --version), $(gzip --version | head -1)," \
    "zstd $(zstd -V | grep -o 'v[0-9.]*'), restic $(restic version | awk '{ print $2 }')"
echo "  load average at the start: $load$(awk -v l="$load" -v n="$(nproc)" 'BEGIN { if (l > n / 2) print " (other work is running: the timings will be noisy)" }')"
echo "dump: $sql"
echo "  $(cat "$info"); $(mb "$bytes") MB"
echo "points, made outside the timing by chom-backup --db --db-cmd 'cat DUMP' -r AGE1...:"
for c in gzip zstd; do
	echo "  --compress $c: ${part_of[$c]#"$work/"} $(mb "$(stat -c %s "${part_of[$c]}")") MB"
done
echo "restic repository, made outside the timing by restic backup --stdin --stdin-filename db.sql < DUMP:"
echo "  $(mb "$(du -sb "$repo" | cut -f1)") MB"
echo
default_spool
start_spool=$spool
spool_is="memory (memfd), as the dump and" than="at most"
[ "$spool" = memory ] || spool_is="a file in $spool (\$TMPDIR unset), as the dump and" than="more than"
echo "  (a) chom-restore --db POINT --from file://DIR -i KEY --db-cmd 'cat >/dev/null'"
echo "      of the gzip point: the default mode, the whole part verified into a spool first;"
echo "      no --spool-dir: the spool on this machine is $spool_is"
echo "      64 MiB ($(mib $((bytes / 1024 + 65536))) MiB) are $than a quarter of MemAvailable ($(mib "$mem_kib") MiB at"
echo "      the start; each run of (a), (b) shows the spool found the same way just before it)"
echo "  (b) the same, of the zstd point"
echo "  (c) age -d -i KEY PART | gzip -d | cat > /dev/null"
echo "  (d) age -d -i KEY PART | zstd -dq | cat > /dev/null"
echo "  (e) restic -r REPO --no-cache dump latest db.sql | cat > /dev/null"
echo "      (the | cat: chom-restore too hands the dump to another process, its --db-cmd: through"
echo "      a pipe with --stream and --no-spool; in the default mode the spool is the command's stdin)"
echo "  for information:"
echo "  (l) (a) with --spool-dir WORK, a directory in $dir: the spool on disk, on its"
echo "      $(stat -f -c %T "$work") filesystem   (m) the same, zstd"
echo "  (f) (a) with --stream: fed while verifying   (g) the same, of the zstd point"
echo "  (h) (a) with --no-spool: verified, then read again and fed   (i) the same, zstd"
echo "  (j) chom-restore --verify POINT, the gzip point   (k) the same, the zstd point"
echo "  (every chom-restore with -v; its -i KEY the identity chom-backup --keygen wrote, mode 0600)"
echo "  wall clock by EPOCHREALTIME; CPU (user + system) and peak RSS by /usr/bin/time -v,"
echo "  of chom-restore with its --db-cmd (sh, cat) for (a), (b), (f)-(m): CPU the sum, RSS the"
echo "  largest peak; of each command of the pipelines (c), (d), (e): CPU the sum, RSS the"
echo "  sum of their peaks; MB/s of the $(mb "$bytes") MB of the dump"
echo "  $runs timed runs of each, rotating which goes first; synced after each run, outside the timing:"

kinds=(a c b d e l f h j m g i k)
declare -A us_of rss_of cpu_of parts_of
for k in "${kinds[@]}"; do us_of[$k]='' rss_of[$k]='' cpu_of[$k]='' parts_of[$k]=''; done
declare -A name_of=(
	[a]="chom-restore gzip" [b]="chom-restore zstd"
	[l]="chom gzip disk spool" [m]="chom zstd disk spool"
	[c]="age | gzip -d | cat" [d]="age | zstd -d | cat" [e]="restic dump | cat"
	[f]="chom gzip --stream" [g]="chom zstd --stream"
	[h]="chom gzip --no-spool" [i]="chom zstd --no-spool"
	[j]="chom gzip --verify" [k]="chom zstd --verify"
)

run_chom() { # KIND COMPRESS(gzip|zstd) [OPTION...]
	local k=$1 c=$2 action=--db
	shift 2
	[ "${1-}" = --verify ] && { action=--verify; shift; }
	if [ $action = --db ]; then
		# The default mode: where the spool goes, as chom-restore finds it.
		[ $# -eq 0 ] && { default_spool; parts_of[$k]="spool: $spool"; }
		timed /usr/bin/time -v -o "$work/time" "$restore" -v --db "${point_of[$c]}" "$@" \
		    --from "file://$pts" --host "bench-$c" -i "$key" --db-cmd 'cat >/dev/null'
		[ "$(tail -1 "$work/out")" = "${point_of[$c]}" ] ||
			die "chom-restore printed '$(tail -1 "$work/out")', not ${point_of[$c]}"
		# With a spool (not --stream, --no-spool): it spooled.
		if [[ " $* " != *" --stream "* && " $* " != *" --no-spool "* ]] &&
		    grep -q 'no room' "$work/err"; then
			die "chom-restore did not spool: $(cat "$work/err")"
		fi
	else
		timed /usr/bin/time -v -o "$work/time" "$restore" -v --verify "${point_of[$c]}" \
		    --from "file://$pts" --host "bench-$c" -i "$key"
		grep -q "^${point_of[$c]} db\.sql\.[a-z]*\.age ok " "$work/out" ||
			die "chom-restore --verify printed: $(cat "$work/out")"
	fi
	us_of[$k]+=" $us" rss_of[$k]+=" $(maxrss "$work/time")" cpu_of[$k]+=" $(cpums "$work/time")"
}
age_gzip() {
	/usr/bin/time -v -o "$work/time1" age -d -i "$key" "${part_of[gzip]}" |
		/usr/bin/time -v -o "$work/time2" gzip -d |
		/usr/bin/time -v -o "$work/time3" cat >/dev/null
}
age_zstd() {
	/usr/bin/time -v -o "$work/time1" age -d -i "$key" "${part_of[zstd]}" |
		/usr/bin/time -v -o "$work/time2" zstd -dq |
		/usr/bin/time -v -o "$work/time3" cat >/dev/null
}
restic_dump() {
	/usr/bin/time -v -o "$work/time1" restic -r "$repo" --no-cache dump latest db.sql |
		/usr/bin/time -v -o "$work/time3" cat >/dev/null
}
run_pipe() { # KIND FUNCTION NAMES...: NAMES of the commands timed in time1, [time2,] time3
	local k=$1 f=$2 n r rss=0 cpu=0 parts=''
	shift 2
	timed "$f"
	local files=("$work/time1" "$work/time3")
	[ $# -eq 3 ] && files=("$work/time1" "$work/time2" "$work/time3")
	for n in "${files[@]}"; do
		r=$(maxrss "$n")
		rss=$((rss + r)) cpu=$((cpu + $(cpums "$n")))
		parts+="${parts:+ + }$1 $(mib "$r")"
		shift
	done
	us_of[$k]+=" $us" rss_of[$k]+=" $rss" cpu_of[$k]+=" $cpu" parts_of[$k]=$parts
}
# report KIND: the run just done.
report() {
	local u r c
	u=${us_of[$1]##* } r=${rss_of[$1]##* } c=${cpu_of[$1]##* }
	printf '    (%s) %-20s %8s s %6s MB/s  cpu %7s s  peak RSS %6s MiB%s\n' \
	    "$1" "${name_of[$1]}" "$(us2s "$u")" "$(mbs "$bytes" "$u")" "$(us2s $((c * 1000)))" \
	    "$(mib "$r")" "${parts_of[$1]:+ (${parts_of[$1]})}"
}
one() {
	local k=$1
	case $k in
	a) run_chom a gzip ;;
	b) run_chom b zstd ;;
	l) run_chom l gzip --spool-dir "$work" ;;
	m) run_chom m zstd --spool-dir "$work" ;;
	c) run_pipe c age_gzip age gzip cat ;;
	d) run_pipe d age_zstd age zstd cat ;;
	e) run_pipe e restic_dump restic cat ;;
	f) run_chom f gzip --stream ;;
	g) run_chom g zstd --stream ;;
	h) run_chom h gzip --no-spool ;;
	i) run_chom i zstd --no-spool ;;
	j) run_chom j gzip --verify ;;
	k) run_chom k zstd --verify ;;
	esac
	sync
	report "$k"
}

t_start=$EPOCHREALTIME
n=${#kinds[@]}
for ((r = 1; r <= runs; r++)); do
	echo "  run $r/$runs:"
	for ((j = 0; j < n; j++)); do
		one "${kinds[(r - 1 + j) % n]}"
	done
done
t_end=$EPOCHREALTIME

# The medians, by kind.
declare -A mus mrss mcpu
for k in "${kinds[@]}"; do
	# shellcheck disable=SC2086 # the lists are words
	mus[$k]=$(median ${us_of[$k]}) mrss[$k]=$(median ${rss_of[$k]}) mcpu[$k]=$(median ${cpu_of[$k]})
done
echo
echo "medians of $runs runs, dump $(mb "$bytes") MB:"
for k in a b c d e l m f g h i j k; do
	printf '  (%s) %-20s %8s s %6s MB/s  cpu %7s s  peak RSS %6s MiB\n' \
	    "$k" "${name_of[$k]}" "$(us2s "${mus[$k]}")" "$(mbs "$bytes" "${mus[$k]}")" \
	    "$(us2s $((mcpu[$k] * 1000)))" "$(mib "${mrss[$k]}")"
done
echo "  checked once, outside the timing: chom-restore --db POINT --db-cmd 'cmp - DUMP'"
echo "  of both points in the default mode (spool: $checked_spool), and of the gzip point with"
echo "  --spool-dir WORK: identical, and spooled"
echo

# The verdicts: throughput ratios are those of the median times.
ga=$(ratio "${mus[c]}" "${mus[a]}")
zb=$(ratio "${mus[d]}" "${mus[b]}")
ge=$(ratio "${mus[e]}" "${mus[a]}")
ze=$(ratio "${mus[e]}" "${mus[b]}")
echo "ratios (throughput, of the median times; by CPU time in parentheses):"
printf '  chom-restore gzip / age | gzip -d | cat:   %sx (CPU %sx)\n' "$ga" "$(ratio "${mcpu[c]}" "${mcpu[a]}")"
printf '  chom-restore zstd / age | zstd -d | cat:   %sx (CPU %sx)\n' "$zb" "$(ratio "${mcpu[d]}" "${mcpu[b]}")"
printf '  chom-restore gzip / restic dump | cat:     %sx (CPU %sx)\n' "$ge" "$(ratio "${mcpu[e]}" "${mcpu[a]}")"
printf '  chom-restore zstd / restic dump | cat:     %sx (CPU %sx)\n' "$ze" "$(ratio "${mcpu[e]}" "${mcpu[b]}")"
printf '  for information: the disk spool (--spool-dir) gzip %sx, zstd %sx (of the age pipeline)\n' \
    "$(ratio "${mus[c]}" "${mus[l]}")" "$(ratio "${mus[d]}" "${mus[m]}")"
printf '  for information: --stream gzip %sx, zstd %sx; --no-spool gzip %sx, zstd %sx (of the age pipeline)\n' \
    "$(ratio "${mus[c]}" "${mus[f]}")" "$(ratio "${mus[d]}" "${mus[g]}")" \
    "$(ratio "${mus[c]}" "${mus[h]}")" "$(ratio "${mus[d]}" "${mus[i]}")"
printf 'target >= %sx the age pipeline in both compressions, verify-first (the default spool, %s): %s\n' \
    "$MIN_AGE" "$start_spool" "$(met "${mus[c]} >= $MIN_AGE * ${mus[a]} && ${mus[d]} >= $MIN_AGE * ${mus[b]}")"
printf '(timed part of the bench: %s s; load average at the end: %s)\n' \
    "$(us2s $((${t_end/./} - ${t_start/./})))" "$(cut -d' ' -f1 /proc/loadavg)"

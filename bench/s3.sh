#!/usr/bin/env bash
# bench/s3.sh TOPDIR: times chom-backup --db, encrypting to an age
# recipient, uploading to an s3:// target on a local S3 server (s3rver
# behind the SigV4 checker of tests/lib/s3.sh, on 127.0.0.1), on the
# mysqldump-like dump of about 1 GB bench/backup.sh reads (generated and
# cached the same way, by bench_dump of bench/lib.sh), fed through
# --db-cmd 'cat FILE', against `pigz -6 < FILE | age -r KEY |
# aws s3 cp - s3://BUCKET/KEY` (awscli, through the same checker). Also
# each one's peak RSS and CPU time (issue 6). Run by `make bench` after
# `make`.
#
# BENCH_DIR   work directory; the generated dump is cached there, shared
#             with bench/backup.sh (default /var/tmp/chom-bench). The S3
#             server keeps its objects on its filesystem (TMPDIR is set to
#             it); they are deleted (outside the timing) after each run.
# BENCH_RUNS  timed runs of each kind, rotating which goes first (default 3)
# BENCH_MB    size of the dump in MiB, as for bench/backup.sh (default 1024)
set -euo pipefail
export LC_ALL=C
# No machine configuration, no environment leaks into the measurement
# (s3_start clears the AWS_* settings of the machine).
export CHOM_CONFIG=/dev/null
unset CHOM_BASE GITHUB_STEP_SUMMARY

MAX_RSS_MIB=64 # chom-backup's peak RSS without its S3 upload parts
PARALLEL=4     # --s3-parallel: upload parts in flight (chom-backup's default)
PART_MIB=8     # the upload part size of a part of a point up to 7.8 GiB
# The upload's memory, as lib/s3.h and chom-backup(1) put it: PARALLEL
# parts in flight and the one being filled, PARALLEL + 1 parts in all.
MIN_RATIO=1.0  # chom-backup's throughput against pigz | age | aws s3 cp
BUCKET=bench

. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: bench/s3.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
backup=$top/chom-backup/chom-backup
[ -x "$backup" ] || die "$backup is missing: run make first"
bench_need pigz age python3 gunzip cmp node curl
# Room: the dump when it is not there yet, and what the S3 server holds at
# most, one object (about a third of the dump) with its upload parts
# until they are assembled, with some to spare.
bench_dump_setup s3 1

# The S3 server of the tests. harness.sh makes $T in $TMPDIR (here, on the
# bench's filesystem), removes it at exit after the at_exit commands (the
# servers stopped), and puts the built tools first on PATH; it prints
# nothing by itself (no TAP plan: done_testing is never called).
export TMPDIR=$dir
export CHOM_BUILD=$top
. "$(dirname "$0")/../tests/lib/harness.sh"
. "$(dirname "$0")/../tests/lib/s3.sh"
set -euo pipefail
trap 'exit 130' INT
trap 'exit 143' TERM
work=$T/bench
mkdir "$work"

if s3_missing 2>"$work/missing"; then
	die "$(cat "$work/missing")"
fi
s3_start "$BUCKET" || die "the S3 server did not start"
# chom-backup's endpoint; awscli is given --endpoint-url by s3_aws.
export AWS_ENDPOINT_URL=$S3_ENDPOINT

cat "$sql" >/dev/null # into the page cache: both kinds read it from there
dbcmd="cat $(printf '%q' "$sql")"

# A copy: the binary measured is the same from the first run to the last,
# whatever `make` does meanwhile.
cp "$backup" "$work/chom-backup"
backup=$work/chom-backup
load=$(cut -d' ' -f1 /proc/loadavg)

timed "$backup" --keygen "$work/key.txt"
chmod 600 "$work/key.txt"
rcpt=$(grep -o 'age1[0-9a-z]*' "$work/out" | head -1)
[ -n "$rcpt" ] || die "chom-backup --keygen printed no recipient"

echo "chom S3 bench: $(nproc) CPUs, $(uname -sr), $(stat -f -c %T "$S3_DIR/data") filesystem at $dir"
echo "  $("$backup" --version | head -1); pigz $(pigz --version 2>&1 | awk '{ print $2 }')," \
    "age $(age --version), $("$S3_AWS" --version 2>&1 | awk '{ print $1 }') ($S3_AWS)"
echo "  S3 server: s3rver $(node -p 'require(process.argv[1]).version' "$S3_NODE_DIR/node_modules/s3rver/package.json")" \
    "behind the SigV4 checker (tests/lib/s3.sh), node $(node --version), at $S3_ENDPOINT;"
echo "  its data in $S3_DIR/data: $(mib "$(df -Pk "$S3_DIR/data" | awk 'NR == 2 { print $4 }')") MiB free there at the start," \
    "about $(mib $((need - dump_kib))) MiB needed"
echo "  load average at the start: $load$(awk -v l="$load" -v n="$(nproc)" 'BEGIN { if (l > n / 2) print " (other work is running: the timings will be noisy)" }')"
echo "dump: $sql"
echo "  $(cat "$info"); $(mb "$bytes") MB"
echo
echo "  (a) chom-backup --to s3://$BUCKET/chom --host bench --db --db-cmd 'cat DUMP' -r AGE1..."
echo "      --compress gzip --s3-parallel $PARALLEL (the defaults; --threads $(nproc)), AWS_ENDPOINT_URL=$S3_ENDPOINT"
echo "  (b) pigz -6 < DUMP | age -r AGE1... | aws --endpoint-url $S3_ENDPOINT s3 cp - s3://$BUCKET/pipe/db.sql.gz.age"
echo "      (awscli's defaults: parts of 8 MiB, 10 requests at a time; path-style addressing)"
echo "  wall clock by EPOCHREALTIME; CPU (user + system) and peak RSS by /usr/bin/time -v,"
echo "  of chom-backup for (a) (its threads included; its dump command, sh and cat, is smaller),"
echo "  of pigz, age and aws each for (b): its CPU is their sum, its RSS the sum of their peaks;"
echo "  the S3 server's (node) are in neither"
echo "  $runs timed runs of each, rotating which goes first; the objects deleted and synced after"
echo "  each run, outside the timing:"

declare -A us_of rss_of out_of cpu_of
for k in a b; do us_of[$k]='' rss_of[$k]='' out_of[$k]='' cpu_of[$k]=''; done
rss_pigz=() rss_age=() rss_aws=()

# rm_objects: every object of the bucket deleted, synced.
rm_objects() {
	s3_aws s3 rm --quiet --recursive "s3://$BUCKET/" >"$work/rm.out" 2>&1 ||
		die "aws s3 rm failed: $(cat "$work/rm.out")"
	sync
}
run_chom() { # RUN
	local point part size
	timed /usr/bin/time -v -o "$work/time" "$backup" --to "s3://$BUCKET/chom" --host bench \
	    --db --db-cmd "$dbcmd" -r "$rcpt" --compress gzip --s3-parallel "$PARALLEL"
	point=$(tail -1 "$work/out")
	[[ $point =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || die "chom-backup printed '$point', not a point id"
	part=chom/bench/$point/db.sql.gz.age
	s3_aws s3 ls --recursive "s3://$BUCKET/chom/bench/$point/" >"$work/ls" ||
		die "aws s3 ls s3://$BUCKET/chom/bench/$point/ failed"
	grep -q " chom/bench/$point/manifest\.json\$" "$work/ls" ||
		die "no manifest.json in s3://$BUCKET/chom/bench/$point/: $(cat "$work/ls")"
	size=$(awk -v k="$part" '$4 == k { print $3 }' "$work/ls")
	[[ $size =~ ^[1-9][0-9]*$ ]] || die "no $part in s3://$BUCKET: $(cat "$work/ls")"
	us_of[a]+=" $us" rss_of[a]+=" $(maxrss "$work/time")" out_of[a]+=" $size"
	cpu_of[a]+=" $(cpums "$work/time")"
	# Once, outside the timing: the object is the dump again.
	if [ "$1" -eq 1 ]; then
		s3_aws s3 cp --quiet "s3://$BUCKET/$part" - | age -d -i "$work/key.txt" | gunzip |
			cmp - "$sql" ||
			die "aws s3 cp | age -d | gunzip of chom-backup's s3://$BUCKET/$part is not the dump"
		verified=s3://$BUCKET/$part
	fi
	rm_objects
}
pigz_age_aws() {
	/usr/bin/time -v -o "$work/time" pigz -6 <"$sql" |
		/usr/bin/time -v -o "$work/time2" age -r "$rcpt" |
		/usr/bin/time -v -o "$work/time3" "$S3_AWS" --endpoint-url "$S3_ENDPOINT" \
		    s3 cp - "s3://$BUCKET/pipe/db.sql.gz.age"
}
run_pipe() {
	local p a w size
	timed pigz_age_aws
	p=$(maxrss "$work/time") a=$(maxrss "$work/time2") w=$(maxrss "$work/time3")
	rss_pigz+=("$p") rss_age+=("$a") rss_aws+=("$w")
	s3_aws s3 ls "s3://$BUCKET/pipe/db.sql.gz.age" >"$work/ls" ||
		die "aws s3 ls s3://$BUCKET/pipe/db.sql.gz.age failed"
	size=$(awk '$4 == "db.sql.gz.age" { print $3 }' "$work/ls")
	[[ $size =~ ^[1-9][0-9]*$ ]] || die "no pipe/db.sql.gz.age in s3://$BUCKET: $(cat "$work/ls")"
	us_of[b]+=" $us" rss_of[b]+=" $((p + a + w))" out_of[b]+=" $size"
	cpu_of[b]+=" $(($(cpums "$work/time") + $(cpums "$work/time2") + $(cpums "$work/time3")))"
	rm_objects
}
declare -A name_of=([a]="chom-backup" [b]="pigz | age | aws")
# report KIND: the run just done.
report() {
	local u r o c
	u=${us_of[$1]##* } r=${rss_of[$1]##* } o=${out_of[$1]##* } c=${cpu_of[$1]##* }
	printf '    (%s) %-16s %8s s %6s MB/s  cpu %7s s  peak RSS %6s MiB%s  object %s MB (%sx)\n' \
	    "$1" "${name_of[$1]}" "$(us2s "$u")" "$(mbs "$bytes" "$u")" "$(us2s $((c * 1000)))" "$(mib "$r")" \
	    "$([ "$1" = b ] && printf ' (pigz %s + age %s + aws %s)' "$(mib "${rss_pigz[-1]}")" \
	        "$(mib "${rss_age[-1]}")" "$(mib "${rss_aws[-1]}")")" \
	    "$(mb "$o")" "$(ratio "$bytes" "$o")"
}
one() {
	case $1 in
	a) run_chom "$2" ;;
	b) run_pipe ;;
	esac
	report "$1"
}

verified=
order=(a b)
t_start=$EPOCHREALTIME
for ((r = 1; r <= runs; r++)); do
	echo "  run $r/$runs:"
	for ((j = 0; j < 2; j++)); do
		one "${order[(r - 1 + j) % 2]}" "$r"
	done
done
t_end=$EPOCHREALTIME

# The medians, by kind.
declare -A mus mrss mout mcpu
for k in a b; do
	# shellcheck disable=SC2086 # the lists are words
	mus[$k]=$(median ${us_of[$k]}) mrss[$k]=$(median ${rss_of[$k]}) mout[$k]=$(median ${out_of[$k]})
	# shellcheck disable=SC2086
	mcpu[$k]=$(median ${cpu_of[$k]})
done
echo
echo "medians of $runs runs, input $(mb "$bytes") MB:"
for k in a b; do
	printf '  (%s) %-16s %8s s %6s MB/s  cpu %7s s  peak RSS %6s MiB  object %s MB (%sx)\n' \
	    "$k" "${name_of[$k]}" "$(us2s "${mus[$k]}")" "$(mbs "$bytes" "${mus[$k]}")" "$(us2s $((mcpu[$k] * 1000)))" \
	    "$(mib "${mrss[$k]}")" "$(mb "${mout[$k]}")" "$(ratio "$bytes" "${mout[$k]}")"
done
echo "  (pigz | age | aws: pigz alone $(mib "$(median "${rss_pigz[@]}")") MiB, age alone" \
    "$(mib "$(median "${rss_age[@]}")") MiB, aws alone $(mib "$(median "${rss_aws[@]}")") MiB)"
echo "  checked once, outside the timing: aws s3 cp $verified - | age -d -i KEY | gunzip | cmp - DUMP"
echo "  (the first run's object of chom-backup): identical"
# The checker's counters: every request verified, none refused.
s3_stats >"$work/stats" 2>&1 || die "the S3 checker's counters: $(cat "$work/stats")"
echo "  the S3 checker: $(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
e = s.get("errors") or {}
print("%d requests, %d verified (SigV4), %d passed on to s3rver; refused: %s" % (
    s["requests"], s["verified"], s["forwarded"],
    ", ".join("%s %d" % kv for kv in sorted(e.items())) or "none"))
' "$work/stats")"
echo

# The verdicts: the throughput ratio is that of the median times.
ab=$(ratio "${mus[b]}" "${mus[a]}")
peak=0
# shellcheck disable=SC2086
for v in ${rss_of[a]}; do
	[ "$v" -gt "$peak" ] && peak=$v
done
max_rss=$((MAX_RSS_MIB + (PARALLEL + 1) * PART_MIB))
echo "targets:"
printf '  chom-backup / pigz | age | aws s3 cp throughput:  %sx (target >= %sx %s; by CPU time %sx)\n' \
    "$ab" "$MIN_RATIO" "$(met "${mus[b]} >= $MIN_RATIO * ${mus[a]}")" "$(ratio "${mcpu[b]}" "${mcpu[a]}")"
printf '  chom-backup peak RSS, any run:                    %s MiB (median %s; target <= %s + (%d + 1) x %d = %d MiB %s)\n' \
    "$(mib "$peak")" "$(mib "${mrss[a]}")" "$MAX_RSS_MIB" "$PARALLEL" "$PART_MIB" "$max_rss" \
    "$(met "$peak <= $max_rss * 1024")"
printf '(timed part of the bench: %s s; load average at the end: %s)\n' \
    "$(us2s $((${t_end/./} - ${t_start/./})))" "$(cut -d' ' -f1 /proc/loadavg)"

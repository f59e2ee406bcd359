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
LARGE=4          # the larger input is the dump this many times over

. "$(dirname "$0")/lib.sh"
# mbs BYTES MICROSECONDS: throughput in MB/s (10^6 bytes).
mbs() { awk -v b="$1" -v u="$2" 'BEGIN { printf "%.1f", b / u }'; }
# mib KIB: MiB with 1 decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# mb BYTES: MB (10^6) with 1 decimal.
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
# met COND: "met" or "NOT met", COND an awk expression.
met() { awk "BEGIN { print ($1) ? \"met\" : \"NOT met\" }"; }
# maxrss FILE: the "Maximum resident set size" in KiB from /usr/bin/time -v.
maxrss() {
	local k
	k=$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$1")
	[[ $k =~ ^[0-9]+$ ]] || die "no peak RSS in $1"
	echo "$k"
}
# cpums FILE: user + system CPU time in ms from /usr/bin/time -v.
cpums() {
	awk -F': *' '/User time|System time/ { t += $2 } END { printf "%d\n", t * 1000 }' "$1"
}

[ $# -eq 1 ] || { echo "usage: bench/backup.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
backup=$top/chom-backup/chom-backup
[ -x "$backup" ] || die "$backup is missing: run make first"
for t in pigz age restic python3 gunzip zstd cmp; do
	command -v "$t" >/dev/null || die "$t is missing: run scripts/install-deps"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: run scripts/install-deps"
runs=${BENCH_RUNS:-3}
size_mb=${BENCH_MB:-1024}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ $size_mb =~ ^[1-9][0-9]*$ ]] || die "BENCH_MB must be a positive integer"
dir=${BENCH_DIR:-/var/tmp/chom-bench}
mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)

# Bump the name when the generator changes, so a stale cache is not reused.
sql=$dir/mysqldump-like-v1-${size_mb}M.sql
info=$sql.info

# Room: the dump when it is not there yet, and the largest output, that of
# the 4x input (about 4/3 of the dump), with some to spare.
avail=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
need=$((size_mb * 1024 * 2 + 524288))
[ -s "$sql" ] && [ -s "$info" ] || need=$((need + size_mb * 1024 * 11 / 10))
if [ "$avail" -lt "$need" ]; then
	echo "bench: backup: skipped: $((avail / 1024)) MiB free on $dir, about $((need / 1024)) MiB needed"
	exit 0
fi

# Writes a reproducible dump in mysqldump's format (a MariaDB 10.11 head,
# DROP TABLE / CREATE TABLE / LOCK TABLES, extended INSERTs of about 1 MiB a
# line) of four tables of a shop: users, orders, sessions with a hex BLOB
# payload and a hex token, and an activity log with JSON context. Rows are
# drawn at random from pools of 120,000 per table (tens of MB, so no
# compressor's window sees a row twice) and numbered; the random hex keeps
# the ratio of gzip -6 about 3x.
generate() {
	python3 - "$1" "$2" <<'PY'
import random, sys

out, target = sys.argv[1], int(sys.argv[2])
rng = random.Random(20260104)
first = ("james mary john patricia robert jennifer michael linda william elizabeth david "
         "barbara richard susan joseph jessica thomas sarah charles karen christopher "
         "nancy daniel lisa matthew betty anthony margaret mark sandra donald ashley").split()
last = ("smith johnson williams brown jones garcia miller davis rodriguez martinez "
        "hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin "
        "lee perez thompson white harris sanchez clark ramirez lewis robinson").split()
words = ("order item cart product shipping payment invoice customer account status "
         "pending paid refunded cancelled delivered warehouse stock price discount "
         "coupon review rating comment session token cache queue job failed retry "
         "email notification subscription plan monthly yearly trial active").split()
domains = "gmail.com yahoo.com outlook.com example.org mail.de proton.me company.co.uk web.fr".split()
agents = ("X11; Linux x86_64", "Windows NT 10.0; Win64; x64",
          "Macintosh; Intel Mac OS X 14_2", "iPhone; CPU iPhone OS 17_1")

def date():
    return "%04d-%02d-%02d %02d:%02d:%02d" % (
        rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28),
        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))

def text(n):
    return " ".join(rng.choice(words) for _ in range(n))

# Each makes a row's values after the id.
def users():
    f, l = rng.choice(first), rng.choice(last)
    return "'%s','%s','%s.%s%d@%s','$2y$10$%s',%d,'%s','%s'" % (
        f.capitalize(), l.capitalize(), f, l, rng.randint(1, 999), rng.choice(domains),
        rng.randbytes(11).hex(), rng.randint(0, 1), date(), date())

def orders():
    return "%d,'%s',%d.%02d,%d,'%s','%s',%s" % (
        rng.randint(1, 2000000),
        rng.choice(("pending", "paid", "shipped", "delivered", "refunded", "cancelled")),
        rng.randint(1, 2500), rng.randint(0, 99), rng.randint(1, 12),
        text(rng.randint(2, 8)), date(), "NULL" if rng.random() < 0.3 else "'%s'" % date())

def sessions():
    return "'%s',%d,'%d.%d.%d.%d','Mozilla/5.0 (%s) %s',0x%s,%d" % (
        rng.randbytes(20).hex(), rng.randint(1, 2000000), rng.randint(1, 254),
        rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254),
        rng.choice(agents), text(3), rng.randbytes(rng.randint(16, 96)).hex(),
        rng.randint(1600000000, 1760000000))

def logs():
    return "'%s','%s','%s',%d,'%s'" % (
        rng.choice(("info", "warning", "error", "debug")), text(rng.randint(5, 20)),
        '{\\"user\\":%d,\\"ip\\":\\"10.0.%d.%d\\",\\"route\\":\\"/%s/%s\\"}' % (
            rng.randint(1, 99999), rng.randint(0, 255), rng.randint(0, 255),
            rng.choice(words), rng.choice(words)),
        rng.randint(100, 999999), date())

ID = "  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,\n"
AT = "  `created_at` timestamp NULL DEFAULT NULL,\n"
tables = [  # name, row maker, columns after the id, share of the bytes
    ("users", users,
     "  `first_name` varchar(64) NOT NULL,\n  `last_name` varchar(64) NOT NULL,\n"
     "  `email` varchar(191) NOT NULL,\n  `password` varchar(255) NOT NULL,\n"
     "  `is_admin` tinyint(1) NOT NULL DEFAULT 0,\n" + AT +
     "  `updated_at` timestamp NULL DEFAULT NULL,\n  PRIMARY KEY (`id`),\n"
     "  UNIQUE KEY `users_email_unique` (`email`)\n", 0.15),
    ("orders", orders,
     "  `user_id` bigint(20) unsigned NOT NULL,\n  `status` varchar(32) NOT NULL,\n"
     "  `total` decimal(10,2) NOT NULL,\n  `items` int(11) NOT NULL,\n"
     "  `note` text DEFAULT NULL,\n" + AT +
     "  `shipped_at` timestamp NULL DEFAULT NULL,\n  PRIMARY KEY (`id`),\n"
     "  KEY `orders_user_id_index` (`user_id`)\n", 0.30),
    ("sessions", sessions,
     "  `token` char(40) NOT NULL,\n  `user_id` bigint(20) unsigned DEFAULT NULL,\n"
     "  `ip_address` varchar(45) DEFAULT NULL,\n  `user_agent` text DEFAULT NULL,\n"
     "  `payload` blob NOT NULL,\n  `last_activity` int(11) NOT NULL,\n"
     "  PRIMARY KEY (`id`)\n", 0.20),
    ("activity_log", logs,
     "  `level` varchar(16) NOT NULL,\n  `message` text NOT NULL,\n"
     "  `context` longtext DEFAULT NULL,\n  `duration_us` int(11) NOT NULL,\n" + AT +
     "  PRIMARY KEY (`id`)\n", 0.35),
]
POOL, LINE = 120000, 1024 * 1024

f = open(out, "wb", buffering=4 * LINE)
f.write(b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
        b"-- Host: localhost    Database: shop\n"
        b"-- ------------------------------------------------------\n"
        b"-- Server version\t10.11.6-MariaDB-0+deb12u1\n\n"
        b"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
        b"/*!40101 SET NAMES utf8mb4 */;\n"
        b"/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n"
        b"/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n"
        b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n\n")
nrows = 0
for name, make, cols, share in tables:
    pool = [make() for _ in range(POOL)]
    f.write(("--\n-- Table structure for table `%s`\n--\n\n"
             "DROP TABLE IF EXISTS `%s`;\n"
             "/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
             "/*!40101 SET character_set_client = utf8 */;\n"
             "CREATE TABLE `%s` (\n%s%s"
             ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;\n"
             "/*!40101 SET character_set_client = @saved_cs_client */;\n\n"
             "--\n-- Dumping data for table `%s`\n--\n\n"
             "LOCK TABLES `%s` WRITE;\n/*!40000 ALTER TABLE `%s` DISABLE KEYS */;\n"
             % (name, name, name, ID, cols, name, name, name)).encode())
    head = "INSERT INTO `%s` VALUES " % name
    per = int(LINE / (sum(len(r) for r in pool[:1000]) / 1000 + 10))
    want, written, rid = int(target * share), 0, 1
    while written < want:
        rows = rng.choices(pool, k=per)
        b = (head + ",".join("(%d,%s)" % (rid + i, r) for i, r in enumerate(rows))
             + ";\n").encode()
        f.write(b)
        written += len(b)
        rid += per
    nrows += rid - 1
    f.write(("/*!40000 ALTER TABLE `%s` ENABLE KEYS */;\nUNLOCK TABLES;\n\n" % name).encode())
f.write(b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n"
        b"/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
        b"/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n"
        b"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n"
        b"-- Dump completed on 2026-01-04  2:00:01\n")
f.close()
print("%d tables, %d rows in extended INSERTs of about 1 MiB a line" % (len(tables), nrows))
PY
}

if [ ! -s "$sql" ] || [ ! -s "$info" ]; then
	echo "bench: generating $sql (once; cached)"
	trap 'rm -f "$sql.tmp.$$" "$info.tmp.$$"' EXIT
	t0=$EPOCHREALTIME
	generate "$sql.tmp.$$" $((size_mb * 1048576)) >"$info.tmp.$$" ||
		die "generating the dump failed"
	mv -f "$info.tmp.$$" "$info"
	mv -f "$sql.tmp.$$" "$sql"
	t1=$EPOCHREALTIME
	printf 'bench: generated in %s s\n' "$(us2s $((${t1/./} - ${t0/./})))"
fi
bytes=$(stat -c %s "$sql")

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
    "$ga" "$MIN_GZIP" "$(met "$ga >= $MIN_GZIP")" "$(ratio "${mcpu[c]}" "${mcpu[a]}")"
printf '  chom-backup zstd / restic throughput:         %sx (target >= %sx %s; by CPU time %sx)\n' \
    "$zb" "$MIN_ZSTD" "$(met "$zb >= $MIN_ZSTD")" "$(ratio "${mcpu[d]}" "${mcpu[b]}")"
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

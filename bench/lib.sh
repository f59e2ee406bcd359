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
# ratio A B: A / B with 3 decimals (verdicts compare the numbers
# themselves, not this rounding of them).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
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

# bench_dump [-n] DIR SIZE_MB: the dump bench/backup.sh and bench/restore.sh
# read, of about SIZE_MB MiB, cached in DIR: generated there when it is not,
# unless -n. Sets $sql to its name, $info to that of the file of its
# one-line description, and $dump_kib to the KiB generating it takes on
# DIR's file system (0 when it was cached). It uses the EXIT trap while it
# generates: call it before setting one.
#
# The dump is reproducible, in mysqldump's format (a MariaDB 10.11 head,
# DROP TABLE / CREATE TABLE / LOCK TABLES, extended INSERTs of about 1 MiB a
# line): four tables of a shop: users, orders, sessions with a hex BLOB
# payload and a hex token, and an activity log with JSON context. Rows are
# drawn at random from pools of 120,000 per table (tens of MB, so no
# compressor's window sees a row twice) and numbered; the random hex keeps
# the ratio of gzip -6 about 3x.
bench_dump() {
	local gen=true t0 t1
	[ "$1" = -n ] && { gen=false; shift; }
	# Bump the name when the generator changes, so a stale cache is not reused.
	sql=$1/mysqldump-like-v1-${2}M.sql
	info=$sql.info
	dump_kib=0
	[ -s "$sql" ] && [ -s "$info" ] && return 0
	dump_kib=$(($2 * 1024 * 11 / 10))
	$gen || return 0
	command -v python3 >/dev/null || die "python3 is missing: run scripts/install-deps"
	echo "bench: generating $sql (once; cached)"
	trap 'rm -f "$sql.tmp.$$" "$info.tmp.$$"' EXIT
	t0=$EPOCHREALTIME
	python3 - "$sql.tmp.$$" $(($2 * 1048576)) <<'PY' >"$info.tmp.$$" || die "generating the dump failed"
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
	mv -f "$info.tmp.$$" "$info"
	mv -f "$sql.tmp.$$" "$sql"
	t1=$EPOCHREALTIME
	trap - EXIT
	printf 'bench: generated in %s s\n' "$(us2s $((${t1/./} - ${t0/./})))"
}

# mbs BYTES MICROSECONDS: throughput in MB/s (10^6 bytes).
# bench_need TOOL...: dies naming the first of the commands, or
# /usr/bin/time, that is not installed.
bench_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || die "$t is missing: run scripts/install-deps"
	done
	[ -x /usr/bin/time ] || die "/usr/bin/time is missing: run scripts/install-deps"
}

# bench_dump_setup NAME FACTOR: for the benches of the generated dump.
# Sets $runs (BENCH_RUNS, default 3), $size_mb (BENCH_MB, default 1024)
# and $dir (BENCH_DIR, default /var/tmp/chom-bench, made if missing); then
# exits 0 with a "skipped" line unless $dir has room for the dump when it is
# not there yet, FACTOR times its size for what the bench writes, and
# 512 MiB to spare;
# then makes the dump (bench_dump: call this before setting an EXIT trap)
# and sets $bytes to its size.
bench_dump_setup() {
	local name=$1 factor=$2 avail need
	runs=${BENCH_RUNS:-3}
	size_mb=${BENCH_MB:-1024}
	[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
	[[ $size_mb =~ ^[1-9][0-9]*$ ]] || die "BENCH_MB must be a positive integer"
	dir=${BENCH_DIR:-/var/tmp/chom-bench}
	mkdir -p "$dir" || die "cannot create $dir"
	dir=$(cd "$dir" && pwd)
	bench_dump -n "$dir" "$size_mb"
	avail=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
	need=$((size_mb * 1024 * factor + 524288 + dump_kib))
	if [ "$avail" -lt "$need" ]; then
		echo "bench: $name: skipped: $((avail / 1024)) MiB free on $dir, about $((need / 1024)) MiB needed"
		exit 0
	fi
	bench_dump "$dir" "$size_mb"
	bytes=$(stat -c %s "$sql")
}

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

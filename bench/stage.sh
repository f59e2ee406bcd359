#!/usr/bin/env bash
# bench/stage.sh TOPDIR: times chom-stage against `sha256sum -c` + `tar -xzf`
# on a Laravel-sized artifact, and chom-switch (switch, rollback) against the
# shell's `ln -sfn` + `mv -T`. Run by `make bench` after `make`.
#
# BENCH_DIR   work directory; the generated artifact is cached there
#             (default /var/tmp/chom-bench). Everything is timed on its
#             filesystem.
# BENCH_RUNS  timed stage runs of each kind, alternating (default 5)
# BENCH_SWITCHES  timed switches, and rollbacks (default 51)
set -euo pipefail
export LC_ALL=C
# No machine configuration, no environment leaks into the measurement.
export CHOM_CONFIG=/dev/null
unset CHOM_BASE GITHUB_STEP_SUMMARY

. "$(dirname "$0")/lib.sh"
# us2ms MICROSECONDS: milliseconds with 2 decimals.
us2ms() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }

[ $# -eq 1 ] || { echo "usage: bench/stage.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
stage=$top/chom-stage/chom-stage
switch=$top/chom-switch/chom-switch
for b in "$stage" "$switch"; do
	[ -x "$b" ] || die "$b is missing: run make first"
done
runs=${BENCH_RUNS:-5}
nsw=${BENCH_SWITCHES:-51}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
[[ $nsw =~ ^[1-9][0-9]*$ ]] || die "BENCH_SWITCHES must be a positive integer"
dir=${BENCH_DIR:-/var/tmp/chom-bench}
mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)

# Bump the name when the generator changes, so a stale cache is not reused.
art=$dir/laravel-like-v1.tar.gz
info=$art.info

# Writes a reproducible Laravel-like artifact (about 20,000 files, 150 MB):
# vendor/<vendor>/<package>/src/... PHP classes of lognormal sizes, the app's
# own code, views, migrations, built JS/CSS with source maps, and images and
# fonts that are already compressed (random bytes). gzip at its default level.
generate() {
	python3 - "$1" <<'PY'
import io, random, subprocess, sys, tarfile

out, seed = sys.argv[1], 20260101
rng = random.Random(seed)
TARGET_FILES, TARGET_BYTES = 20000, 150 * 1024 * 1024

words = ("request response user model query builder cache config event listener "
         "route middleware session token guard provider container binding resolver "
         "factory repository collection item value key attribute relation pivot "
         "schema table column index migration seeder job queue worker payload "
         "message mail notification channel broadcast stream buffer reader writer "
         "parser lexer node visitor token filter validator rule error exception "
         "handler logger record context driver connection pool statement result "
         "path file directory storage disk url host port header cookie body status "
         "code locale translator view component slot template compiler engine "
         "finder loader manager registry instance options default name type id").split()

def ident(cap=True):
    n = rng.randint(1, 3)
    ws = rng.sample(words, n)
    s = "".join(w.capitalize() for w in ws)
    return s if cap else s[0].lower() + s[1:]

templates = [
    "        $%(v)s = $this->%(v2)s->%(m)s($%(v3)s);",
    "        if ($%(v)s === null) {",
    "            throw new %(C)sException('%(w)s %(w2)s is not %(w3)s.');",
    "        }",
    "        return $this->%(m)s($%(v)s, %(n)d);",
    "        foreach ($%(v)s as $%(v2)s => $%(v3)s) {",
    "            $this->%(v)s[$%(v2)s] = $%(v3)s;",
    "        $%(v)s = new %(C)s($%(v2)s, $this->%(v3)s);",
    "        // %(w)s the %(w2)s before the %(w3)s is %(w4)s",
    "    }",
    "",
    "    /**",
    "     * %(W)s the %(w)s %(w2)s.",
    "     *",
    "     * @param  \\%(NS)s\\%(C)s  $%(v)s",
    "     * @param  array<string, mixed>  $%(v2)s",
    "     * @return %(C2)s|null",
    "     */",
    "    public function %(m)s(%(C)s $%(v)s, array $%(v2)s = []): ?%(C2)s",
    "    protected function %(m)s($%(v)s)",
    "    {",
    "        return array_map(fn ($%(v)s) => $%(v)s->%(m)s(), $%(v2)s);",
    "        $%(v)s = sprintf('%%s:%%s', $%(v2)s, $%(v3)s);",
    "        return isset($this->%(v)s[$%(v2)s]) ? $this->%(v)s[$%(v2)s] : %(n)d;",
    "        $this->%(v)s = $%(v)s ?? static::%(K)s;",
    "    protected $%(v)s = [];",
    "    public const %(K)s = '%(w)s.%(w2)s';",
]

def line():
    t = rng.choice(templates)
    return t % {
        "v": ident(False), "v2": ident(False), "v3": ident(False), "m": ident(False),
        "C": ident(), "C2": ident(), "K": "_".join(rng.sample(words, 2)).upper(),
        "NS": ident() + "\\" + ident(), "n": rng.randint(0, 4096),
        "w": rng.choice(words), "w2": rng.choice(words), "w3": rng.choice(words),
        "w4": rng.choice(words), "W": rng.choice(words).capitalize(),
    }

pool = [line() + "\n" for _ in range(40000)]
pool_b = [s.encode() for s in pool]

def php(ns, cls, size):
    head = ("<?php\n\ndeclare(strict_types=1);\n\nnamespace %s;\n\n" % ns).encode()
    head += b"".join(("use %s\\%s;\n" % (ns.split("\\")[0], ident())).encode()
                     for _ in range(rng.randint(1, 8)))
    head += ("\nclass %s\n{\n" % cls).encode()
    k = max(1, (size - len(head)) // 52)
    body = b"".join(rng.choices(pool_b, k=k))
    return head + body + b"}\n"

def text(size):
    k = max(1, size // 52)
    return b"".join(rng.choices(pool_b, k=k))[:size]

def sizes(n, mu, sigma, lo, hi):
    return [min(hi, max(lo, int(rng.lognormvariate(mu, sigma)))) for _ in range(n)]

entries = []  # (path, bytes-or-callable, mode)

names = set()

def add(path, data, mode=0o644):
    if path in names:
        raise KeyError(path)
    names.add(path)
    entries.append((path, data, mode))

def unique(pathfn):
    while True:
        path = pathfn()
        if path not in names:
            return path

# The application itself.
add("artisan", b"#!/usr/bin/env php\n<?php\n" + text(1500), 0o755)
add("public/index.php", b"<?php\n\nuse Illuminate\\Http\\Request;\n\ndefine('LARAVEL_START', microtime(true));\n"
    b"require __DIR__.'/../vendor/autoload.php';\n$app = require_once __DIR__.'/../bootstrap/app.php';\n"
    b"$app->handleRequest(Request::capture());\n")
add("public/.htaccess", text(600))
add("public/robots.txt", b"User-agent: *\nDisallow:\n")
add("public/favicon.ico", rng.randbytes(15086))
add(".env.example", text(1100))
add("composer.json", text(2300))
add("composer.lock", text(420000))
add("package.json", text(700))
add("bootstrap/app.php", php("Bootstrap", "App", 900))
add("bootstrap/cache/.gitignore", b"*\n!.gitignore\n")
for d in ("storage/app/public", "storage/framework/cache/data", "storage/framework/sessions",
          "storage/framework/views", "storage/logs"):
    add(d + "/.gitignore", b"*\n!.gitignore\n")
for sub, n in (("Http/Controllers", 60), ("Models", 40), ("Http/Middleware", 15), ("Jobs", 20),
               ("Providers", 8), ("Console/Commands", 25), ("Events", 15), ("Listeners", 15),
               ("Policies", 12), ("Services", 30)):
    for s in sizes(n, 8.0, 0.7, 300, 40000):
        c = unique(lambda: "app/%s/%s.php" % (sub, ident()))
        add(c, php("App\\" + sub.replace("/", "\\"), c.rsplit("/", 1)[1][:-4], s))
for s in sizes(30, 7.8, 0.6, 300, 20000):
    add(unique(lambda: "config/%s.php" % ident(False)), php("Config", "Cfg", s))
for i, s in enumerate(sizes(120, 7.2, 0.5, 300, 8000)):
    add("database/migrations/2024_%02d_%02d_%06d_create_%s_table.php" % (i % 12 + 1, i % 28 + 1, i, rng.choice(words)),
        php("Database\\Migrations", "M%d" % i, s))
for s in sizes(180, 7.5, 0.8, 200, 30000):
    add(unique(lambda: "resources/views/%s/%s.blade.php" % (rng.choice(words), ident(False))), text(s))
for s in sizes(40, 8.0, 0.8, 300, 30000):
    add(unique(lambda: "lang/%s/%s.php" % (rng.choice(("en", "fr", "de", "es")), rng.choice(words))), text(s))
add("routes/web.php", php("Routes", "Web", 6000))
add("routes/api.php", php("Routes", "Api", 9000))
add("routes/console.php", php("Routes", "Console", 800))

# Built front-end assets: minified text, source maps, and already-compressed binaries.
for name, s in (("app", 2400000), ("vendor", 3800000), ("admin", 1500000)):
    h = "%08x" % rng.getrandbits(32)
    add("public/build/assets/%s-%s.js" % (name, h), text(s))
    add("public/build/assets/%s-%s.js.map" % (name, h), text(s * 2))
for name, s in (("app", 600000), ("admin", 300000)):
    add("public/build/assets/%s-%08x.css" % (name, rng.getrandbits(32)), text(s))
add("public/build/manifest.json", text(4000))
for s in sizes(120, 10.5, 1.0, 2000, 900000):
    add(unique(lambda: "public/images/%s.%s" % (ident(False), rng.choice(("png", "jpg", "webp")))), rng.randbytes(s))
for s in sizes(24, 10.8, 0.4, 20000, 200000):
    add(unique(lambda: "public/fonts/%s.woff2" % ident(False)), rng.randbytes(s))

# vendor/: many packages of many small PHP files.
fixed = sum(len(d) for _, d, _ in entries)
nvendor = TARGET_FILES - len(entries) - 4
vsizes = sizes(nvendor, 8.3, 1.0, 120, 400000)
scale = (TARGET_BYTES - fixed) / sum(vsizes)
vsizes = [max(120, int(s * scale)) for s in vsizes]
vendors = sorted({ident(False).lower() for _ in range(70)})
pkgs = []
while len(pkgs) < 260:
    p = (rng.choice(vendors), "-".join(rng.sample(words, rng.randint(1, 2))))
    if p not in pkgs:
        pkgs.append(p)
weights = [rng.paretovariate(1.2) for _ in pkgs]
subdirs = ["", "Contracts", "Support", "Exceptions", "Events", "Concerns", "Console",
           "Http", "Database/Eloquent", "Database/Query", "Routing", "Validation/Rules"]
seen = []
for s in vsizes:
    v, p = rng.choices(pkgs, weights=weights)[0]
    top = rng.choices(("src", "tests", "resources"), weights=(85, 12, 3))[0]
    sd = rng.choice(subdirs)
    path = unique(lambda: "vendor/%s/%s/%s/%s%s.php" % (v, p, top, sd + "/" if sd else "", ident()))
    c = path.rsplit("/", 1)[1][:-4]
    seen.append(path)
    ns = "%s\\%s" % (v.capitalize(), "".join(w.capitalize() for w in p.split("-")))
    add(path, php(ns + ("\\" + sd.replace("/", "\\") if sd else ""), c, s))
add("vendor/autoload.php", b"<?php\n\nrequire_once __DIR__ . '/composer/autoload_real.php';\n\n"
    b"return ComposerAutoloaderInit::getLoader();\n")
add("vendor/composer/autoload_real.php", php("Composer", "AutoloaderInit", 3000))
add("vendor/composer/installed.json", text(600000))
add("vendor/composer/autoload_classmap.php",
    b"<?php\n\nreturn array(\n" + b"".join(
        ("    '%s' => $vendorDir . '/%s',\n" % (p[7:-4].replace("/", "\\"), p[7:])).encode()
        for p in sorted(seen)) + b");\n")

# Each directory just before its contents, as tar writes them; a fixed mtime
# and gzip -n, so the artifact is reproducible.
mtime = 1767225600
items = {}
for path, data, mode in entries:
    parts = path.split("/")
    for i in range(1, len(parts)):
        items.setdefault(tuple(parts[:i]), None)
    items[tuple(parts)] = (data, mode)
gz = subprocess.Popen(["gzip", "-6", "-n"], stdin=subprocess.PIPE, stdout=open(out, "wb"))
total = 0
with tarfile.open(fileobj=gz.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tf:
    for key in sorted(items):
        ti = tarfile.TarInfo("/".join(key))
        ti.mtime, ti.uname, ti.gname = mtime, "deploy", "deploy"
        if items[key] is None:
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        else:
            data, ti.mode = items[key]
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
            total += len(data)
gz.stdin.close()
if gz.wait() != 0:
    sys.exit("gzip failed")
print("%d files, %d directories, %.1f MB" % (len(entries), len(items) - len(entries), total / 1048576))
PY
}

if [ ! -s "$art" ] || [ ! -s "$info" ]; then
	echo "bench: generating $art (once; cached)"
	trap 'rm -f "$art.tmp.$$" "$info.tmp.$$"' EXIT
	t0=$EPOCHREALTIME
	generate "$art.tmp.$$" >"$info.tmp.$$" || die "generating the artifact failed"
	mv -f "$info.tmp.$$" "$info"
	mv -f "$art.tmp.$$" "$art"
	t1=$EPOCHREALTIME
	printf 'bench: generated in %s s\n' "$(us2s $((${t1/./} - ${t0/./})))"
fi

# On ext4 without a journal, creating a file shortly after many were deleted
# is slow: each new inode skips, one by one, the inodes freed in the last
# minute (6 minutes while their inode table block is not yet written back).
# So the runs' outputs are removed only at the end, and the time of that
# cleanup is noted to explain slow runs of a bench that follows closely.
settle=$dir/last-cleanup
since=
[ -s "$settle" ] && since=$(($(date +%s) - $(cat "$settle")))
work=$(mktemp -d "$dir/run.XXXXXX")
cleanup() {
	rm -rf "$work"
	sync
	date +%s >"$settle"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

baseline() { sha256sum -c "$sums" && tar -xzf "$art" -C "$1"; }

hex=$(sha256sum "$art") # also brings the artifact into the page cache
hex=${hex%% *}
sums=$work/SHA256SUMS
printf '%s  %s\n' "$hex" "$art" >"$sums"

echo "chom bench: $(nproc) CPUs, $(uname -sr), $(stat -f -c %T "$work") filesystem at $dir"
if [ -n "$since" ] && [ "$since" -ge 0 ] && [ "$since" -lt 360 ]; then
	echo "note: the previous bench removed its files ${since}s ago: on some filesystems"
	echo "      (ext4 without a journal) that slows file creation for a few minutes"
fi
echo "artifact: $art"
echo "  $(cat "$info"); $(($(stat -c %s "$art") / 1048576)) MB as tar.gz (gzip -6)"
echo
echo "stage: chom-stage -d BASE --sha256 HEX -r runN ARTIFACT"
echo "       vs sha256sum -c SUMFILE && tar -xzf ARTIFACT -C DIR"

# One untimed run of each first: it checks that chom-stage writes what tar
# writes, and it pays the first-run costs (page cache, dentries) for both.
mkdir "$work/warm-chom" "$work/warm-tar"
timed "$stage" -d "$work/warm-chom" --sha256 "$hex" -r warm "$art"
[ "$(cat "$work/out")" = "$work/warm-chom/releases/warm" ] ||
	die "chom-stage printed '$(cat "$work/out")', expected $work/warm-chom/releases/warm"
timed baseline "$work/warm-tar"
diff -rq --no-dereference "$work/warm-chom/releases/warm" "$work/warm-tar" >"$work/diff" 2>&1 || {
	head -20 "$work/diff" >&2
	die "chom-stage's release differs from tar's extraction"
}
sync

# Every run's output stays until the end when there is room for it (see
# above): otherwise whichever tool ran first after a deletion would pay for it.
kb=$(du -sk "$work/warm-tar" | cut -f1)
avail=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
keep=1
if [ $((2 * runs * kb * 12 / 10 + 1048576)) -gt "$avail" ]; then
	keep=0
	echo "  (not enough room to keep every run's output: removing it between runs, so the timings may be noisier)"
fi
echo "  $runs timed runs of each, alternating which goes first:"

run_chom() {
	mkdir "$work/base-$1"
	timed "$stage" -d "$work/base-$1" --sha256 "$hex" -r "run$1" "$art"
	chom_us+=("$us")
	[ "$(cat "$work/out")" = "$work/base-$1/releases/run$1" ] ||
		die "chom-stage printed '$(cat "$work/out")', expected $work/base-$1/releases/run$1"
	sync # what the run left dirty is written back before the next one
}
run_tar() {
	mkdir "$work/tar-$1"
	timed baseline "$work/tar-$1"
	base_us+=("$us")
	sync
}
chom_us=() base_us=()
for ((i = 1; i <= runs; i++)); do
	if ((i % 2)); then
		run_chom "$i"
		run_tar "$i"
	else
		run_tar "$i"
		run_chom "$i"
	fi
	printf '  run %d/%d: chom %s s, sha256sum+tar %s s\n' "$i" "$runs" \
	    "$(us2s "${chom_us[-1]}")" "$(us2s "${base_us[-1]}")"
	if [ "$keep" -eq 0 ]; then
		rm -rf "$work/base-$i" "$work/tar-$i"
		sync
	fi
done
cm=$(median "${chom_us[@]}")
bm=$(median "${base_us[@]}")
ratio=$(ratio "$cm" "$bm")
verdict=$(awk -v c="$cm" -v b="$bm" 'BEGIN { print (c <= b) ? "target <= 1.0x met" : "target <= 1.0x NOT met" }')
printf 'stage: chom median %s s, sha256sum+tar median %s s, ratio %sx (%s)\n' \
    "$(us2s "$cm")" "$(us2s "$bm")" "$ratio" "$verdict"
echo

# Two small releases: a switch's cost does not depend on the release's size.
for id in a b; do
	mkdir -p "$work/src-$id/public"
	echo "<?php echo '$id';" >"$work/src-$id/public/index.php"
	tar -czf "$work/$id.tar.gz" -C "$work/src-$id" .
done
sw=$work/switch
mkdir "$sw"
for id in a b; do
	timed "$stage" -d "$sw" -r "$id" "$work/$id.tar.gz"
done
timed "$switch" -d "$sw" a
cur=a
other() { if [ "$1" = a ]; then echo b; else echo a; fi; }
live() { local l; l=$(readlink "$sw/current") || die "no current link"; echo "${l##*/}"; }
# verdict MICROSECONDS: the median in ms against the 5 ms target.
verdict() {
	printf 'median %s ms' "$(us2ms "$1")"
	if [ "$1" -lt 5000 ]; then echo " (target < 5 ms met)"; else echo " (target < 5 ms NOT met)"; fi
}

echo "switch and rollback: $nsw timed runs of each, in a BASE with two releases;"
echo "each time includes starting the process"

sw_us=()
for ((i = 1; i <= nsw; i++)); do
	cur=$(other "$cur")
	timed "$switch" -d "$sw" "$cur"
	sw_us+=("$us")
done
[ "$(live)" = "$cur" ] || die "current is $(live) after the switches, expected $cur"
echo "  chom-switch -d BASE ID (alternating):             $(verdict "$(median "${sw_us[@]}")")"

# A rollback needs a switch before it: only the rollback is timed.
rb_us=()
for ((i = 1; i <= nsw; i++)); do
	timed "$switch" -d "$sw" "$(other "$cur")"
	timed "$switch" -d "$sw" --rollback
	rb_us+=("$us")
	[ "$(live)" = "$cur" ] || die "current is $(live) after --rollback, expected $cur"
done
echo "  chom-switch -d BASE --rollback (after a switch):  $(verdict "$(median "${rb_us[@]}")")"

# The shell's atomic switch, for comparison (no lock, no history, no fsync).
sh_dir=$work/shell
mkdir -p "$sh_dir/releases/a" "$sh_dir/releases/b"
ln -s releases/a "$sh_dir/current"
shell_switch() {
	ln -sfn "releases/$1" "$sh_dir/current.tmp" &&
		mv -T "$sh_dir/current.tmp" "$sh_dir/current"
}
sh_us=()
cur=a
for ((i = 1; i <= nsw; i++)); do
	cur=$(other "$cur")
	timed shell_switch "$cur"
	sh_us+=("$us")
done
echo "  ln -sfn releases/ID current.tmp && mv -T ...:     median $(us2ms "$(median "${sh_us[@]}")") ms"

# What starting the process alone costs, for reading the numbers above.
st_us=()
for ((i = 1; i <= nsw; i++)); do
	timed "$switch" --version
	st_us+=("$us")
done
echo "  chom-switch --version (process start only):       median $(us2ms "$(median "${st_us[@]}")") ms"

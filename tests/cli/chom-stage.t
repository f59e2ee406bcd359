#!/usr/bin/env bash
# chom-stage: options, staging from files and stdin in every format, checksums,
# the hostile-artifact corpus, limits, --link, the deploy lock, kill -9 and
# SIGTERM in the middle, and a full disk (SPEC.md section 3).
source "$(dirname "$0")/../lib/harness.sh"

# --- helpers -------------------------------------------------------------

# st ARGS...: chom-stage, bounded.
st() { run timeout 120 chom-stage "$@"; }

# newbase NAME: a fresh work directory W holding an empty BASE B.
newbase() {
	W=$T/w/$1
	B=$W/base
	rm -rf "$W"
	mkdir -p "$B"
}

# What is in releases/ (IDs and .tmp-* alike), on one line.
left() { ls -A "$B/releases" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
tmps() { ls -d "$B"/releases/.tmp-* 2>/dev/null; }
nolink() { [ ! -e "$1" ] && [ ! -L "$1" ]; }

# Everything under W that an untouched layout does not explain, one per line,
# plus any damage to the victims of the hard-link cases.
strays() {
	(cd "$W" && find . -mindepth 1 ! -path ./base ! -path ./base/releases \
		! -path ./base/shared ! -path ./base/.chom ! -path './base/.chom/*' \
		! -path ./base/victim -print)
	(cd "$ABS" && find . -mindepth 1 ! -path ./victim -print | sed "s|^\.|$ABS|")
	if [ -e "$B/victim" ]; then
		[ "$(cat "$B/victim")" = victim ] || echo "base/victim changed: $(cat "$B/victim")"
		[ "$(stat -c %h "$B/victim")" = 1 ] || echo "base/victim has $(stat -c %h "$B/victim") links"
	fi
	[ "$(cat "$ABS/victim")" = victim ] || echo "$ABS/victim changed: $(cat "$ABS/victim")"
	[ "$(stat -c %h "$ABS/victim")" = 1 ] || echo "$ABS/victim has $(stat -c %h "$ABS/victim") links"
	return 0
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
valid_utf8() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; }
lines() { printf '%s' "$1" | grep -c ''; }

# alive PID: running (a zombie, ended but not yet waited for, is not).
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
# reap PID: waits up to 10 s for it to end, then kills it; RC is its status.
reap() {
	local pid=$1 n=500
	while ((n-- > 0)) && alive "$pid"; do sleep 0.02; done
	if alive "$pid"; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		RC=timeout
		return 1
	fi
	wait "$pid"
	RC=$?
}
# midway PID N: polls until a releases/.tmp-* holds N files (0), or PID has
# ended or 60 s have passed (1).
midway() {
	local i=3000
	while ((i-- > 0)); do
		tmp_has_files "$2" && return 0
		alive "$1" || return 1
		sleep 0.02
	done
	return 1
}
tmp_has_files() { # at least $1 files in some releases/.tmp-*
	local d
	for d in $(tmps); do
		[ "$(find "$d" -type f | wc -l)" -ge "$1" ] && return 0
	done
	return 1
}

# --- the corpus and the good artifacts -----------------------------------

CORPUS=$T/corpus
ABS=$T/abs # the absolute paths of the hostile cases live here
mkdir -p "$ABS"
echo victim >"$ABS/victim"
python3 "$TOP/tests/lib/corpus.py" "$CORPUS" "$ABS" || {
	echo "Bail out! tests/lib/corpus.py failed"
	exit 1
}

# A Laravel-like tree, archived by the real tools (GNU tar writes ./ names).
SRC=$T/src
mkdir -p "$SRC"/public/css "$SRC"/storage/app/public "$SRC"/storage/logs \
	"$SRC"/bootstrap/cache "$SRC"/config
echo '<h1>v1.1</h1>' >"$SRC/public/index.html"
echo 'body{}' >"$SRC/public/css/app.css"
printf '#!/usr/bin/env php\n<?php\n' >"$SRC/artisan"
chmod 755 "$SRC/artisan"
echo '<?php return [];' >"$SRC/config/app.php"
echo 'avatar' >"$SRC/storage/app/public/avatar.png"
ln -s ../storage/app/public "$SRC/public/storage"
ln "$SRC/public/index.html" "$SRC/public/index-hard.html"
ART=$T/art
mkdir -p "$ART"
tar -C "$SRC" -czf "$ART/app-v1.1.tar.gz" .
tar -C "$SRC" -cf "$ART/f-tar.tar" .
tar -C "$SRC" -czf "$ART/f-gz.tar.gz" .
tar -C "$SRC" -czf "$ART/f-tgz.tgz" .
tar -C "$SRC" -cf - . | zstd -q -o "$ART/f-zst.tar.zst"
tar -C "$SRC" -cf - . | zstd -q -o "$ART/f-tzst.tzst"
tar -C "$SRC" -cJf "$ART/f-xz.tar.xz" .
tar -C "$SRC" -cJf "$ART/f-txz.txz" .
tar -C "$SRC" -cjf "$ART/f-bz2.tar.bz2" .
tar -C "$SRC" -cjf "$ART/f-tbz2.tbz2" .
(cd "$SRC" && zip -qry "$ART/f-zip.zip" .)
GOOD=$ART/app-v1.1.tar.gz

# same_tree A B: same names, types, contents and symlink targets.
same_tree() { diff -r --no-dereference "$1" "$2" >"$T/.diff" 2>&1 || {
	diag "$(head -20 "$T/.diff")"
	return 1
}; }

# --- --help, --version, usage errors -------------------------------------

run chom-stage --help
exits 0 "--help exits 0"
like "$OUT" 'chom-stage' "--help prints usage on stdout"
is "$ERR" "" "--help writes nothing on stderr"

run chom-stage --version
exits 0 "--version exits 0"
like "$OUT" '^chom-stage \(chom\) [0-9]+\.[0-9]+\.[0-9]+$' "--version format"

newbase usage
usage_case() { # DESC ARGS...
	local d=$1
	shift
	run timeout 30 chom-stage -d "$B" "$@"
	exits 2 "usage: $d: exit 2"
	like "$ERR" "^chom-stage: " "usage: $d: message prefixed"
	is "$(printf '%s\n' "$ERR" | tail -n 1)" "Try 'chom-stage --help'." \
		"usage: $d: Try 'chom-stage --help'."
	is "$(lines "$ERR")" 2 "usage: $d: one line and the hint"
	is "$OUT" "" "usage: $d: nothing on stdout"
	is "$(ls -A "$B")" "" "usage: $d: nothing created"
}
usage_case "unknown option" --bogus "$GOOD"
like "$ERR" '^chom-stage: .*bogus' "usage: unknown option: the message names it"
usage_case "no artifact"
usage_case "two artifacts" "$GOOD" "$GOOD"
usage_case "-r with a slash" -r ../x "$GOOD"
usage_case "-r with a space" -r 'a b' "$GOOD"
usage_case "-r starting with a dot" -r .hidden "$GOOD"
usage_case "-r of 65 characters" -r "$(printf 'a%.0s' $(seq 65))" "$GOOD"
usage_case "-r empty" -r '' "$GOOD"
usage_case "--require-checksum without a checksum" --require-checksum "$GOOD"
usage_case "--sha256 not hex" --sha256 xyz "$GOOD"
usage_case "--max-bytes not a size" --max-bytes 1X "$GOOD"
usage_case "--max-files not a number" --max-files lots "$GOOD"
usage_case "--wait not a duration" --wait soon "$GOOD"
usage_case "--link with .." --link ../etc "$GOOD"
usage_case "--link absolute" --link /etc "$GOOD"
cp "$GOOD" "$T/.hidden.tar.gz"
usage_case "artifact name giving an ID starting with ." "$T/.hidden.tar.gz"
cp "$GOOD" "$T/my app.tar.gz"
usage_case "artifact name giving an ID with a space" "$T/my app.tar.gz"

run chom-stage -d "$B" "$T/no-such.tar.gz"
ok "missing artifact: fails" test "$RC" -ne 0
like "$ERR" 'no-such\.tar\.gz' "missing artifact: the message names it"

# --- staging a good artifact ----------------------------------------------

newbase good
st -d "$B" "$GOOD"
exits 0 "good tar.gz: staged"
is "$OUT" "$B/releases/app-v1.1" "stdout: the release's absolute path (ID from the name)"
is "$(lines "$OUT")" 1 "stdout: one line"
is "$ERR" "" "quiet when all is well and not on a terminal"
ok "release directory exists" test -d "$B/releases/app-v1.1"
ok "release holds the artifact's tree" same_tree "$SRC" "$B/releases/app-v1.1"
ok "executable bit kept" test -x "$B/releases/app-v1.1/artisan"
is "$(readlink "$B/releases/app-v1.1/public/storage")" "../storage/app/public" \
	"an inside symlink is kept as it is"
is "$(stat -c %i "$B/releases/app-v1.1/public/index.html")" \
	"$(stat -c %i "$B/releases/app-v1.1/public/index-hard.html")" \
	"a hard link to an earlier entry is kept"
ok "next is a symlink" test -L "$B/next"
is "$(readlink "$B/next")" "releases/app-v1.1" "next -> releases/ID (relative)"
is "$(readlink -f "$B/next")" "$(readlink -f "$B/releases/app-v1.1")" "next resolves to the release"
is "$(tmps)" "" "no .tmp-* left"
ok "current is not created by staging" nolink "$B/current"
ok "history has a stage line for the release (TIME stage FROM TO USER)" \
	awk -F'\t' 'NF == 5 && $2 == "stage" && $4 == "app-v1.1" { f = 1 } END { exit !f }' \
	"$B/.chom/history"

# a second release: next moves, current stays
ln -s releases/app-v1.1 "$B/current"
st -d "$B" -r v2 "$CORPUS/good.tar"
exits 0 "-r ID: staged"
is "$OUT" "$B/releases/v2" "-r ID: the path"
is "$(readlink "$B/next")" "releases/v2" "next moves to the newer release"
is "$(readlink "$B/current")" "releases/app-v1.1" "current untouched"
ok "good.tar from the corpus: its hard link" test -f "$B/releases/v2/public/index2.html"

# an existing ID is refused and left alone
echo marker >"$B/releases/v2/marker"
st -d "$B" -r v2 "$GOOD"
exits 1 "existing ID: refused"
like "$ERR" 'v2' "existing ID: the message names it"
like "$ERR" '[Ee]xist' "existing ID: the message says it exists"
is "$(cat "$B/releases/v2/marker" 2>/dev/null)" marker "existing ID: the release untouched"
ok "existing ID: its content unchanged" test -f "$B/releases/v2/public/index2.html" -a ! -e "$B/releases/v2/config"
is "$(readlink "$B/next")" "releases/v2" "existing ID: next unchanged"
is "$(tmps)" "" "existing ID: no .tmp-* left"

# --json, -q, -v
st -d "$B" -r j1 --json "$GOOD"
exits 0 "--json: staged"
is "$(lines "$OUT")" 1 "--json: one line"
ok "--json: id, path, sha256, entries, bytes, seconds" python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert o["id"] == "j1", o
assert o["path"] == sys.argv[2], o
assert o["sha256"] == sys.argv[3], o
assert isinstance(o["entries"], int) and o["entries"] >= 10, o
assert isinstance(o["bytes"], int) and o["bytes"] > 0, o
assert isinstance(o["seconds"], (int, float)) and o["seconds"] >= 0, o
' "$OUT" "$B/releases/j1" "$(sha "$GOOD")"
st -d "$B" -r q1 -q "$GOOD"
exits 0 "-q: staged"
is "$OUT" "$B/releases/q1" "-q: stdout still the path"
st -d "$B" -r v1 -v "$GOOD"
exits 0 "-v: staged"
is "$OUT" "$B/releases/v1" "-v: stdout only the path"

# --- every format ----------------------------------------------------------

newbase formats
for f in f-tar.tar f-gz.tar.gz f-tgz.tgz f-zst.tar.zst f-tzst.tzst f-xz.tar.xz \
	f-txz.txz f-bz2.tar.bz2 f-tbz2.tbz2 f-zip.zip; do
	id=${f%%.*}
	st -d "$B" "$ART/$f"
	exits 0 "$f: staged"
	is "$OUT" "$B/releases/$id" "$f: ID $id"
	ok "$f: the tree" same_tree "$SRC" "$B/releases/$id"
done
st -d "$B" "$CORPUS/good.zip"
exits 0 "zip written by python: staged"
ok "zip: executable bit from the Unix attributes" test -x "$B/releases/good/artisan"

# --- stdin -----------------------------------------------------------------

newbase stdin
before=$(date -u +%Y%m%dT%H%M%SZ)
run timeout 60 sh -c 'cat "$1" | chom-stage -d "$2" -' sh "$GOOD" "$B"
after=$(date -u +%Y%m%dT%H%M%SZ)
exits 0 "stdin (a pipe): staged"
like "$OUT" "^$B/releases/[0-9]{8}T[0-9]{6}Z\$" "stdin: ID is a UTC time YYYYMMDDTHHMMSSZ"
id=${OUT##*/}
ok "stdin: the ID is the time of the run ($before <= $id <= $after)" \
	test ! "$id" \< "$before" -a ! "$id" \> "$after"
ok "stdin: the tree" same_tree "$SRC" "$OUT"
run timeout 60 sh -c 'chom-stage -d "$2" -r in2 - <"$1"' sh "$ART/f-zst.tar.zst" "$B"
exits 0 "stdin with -r, tar.zst: staged"
is "$OUT" "$B/releases/in2" "stdin with -r: the path"

# --- checksums ------------------------------------------------------------

newbase sums
st -d "$B" -r s1 --sha256 "$(sha "$GOOD")" "$GOOD"
exits 0 "--sha256 right: staged"
zero=$(printf '0%.0s' $(seq 64))
st -d "$B" -r s2 --sha256 "$zero" "$GOOD"
exits 1 "--sha256 wrong: exit 1"
like "$ERR" '[Cc]hecksum|sha256|SHA-256|mismatch' "--sha256 wrong: says so"
ok "--sha256 wrong: no release" nolink "$B/releases/s2"
is "$(tmps)" "" "--sha256 wrong: no .tmp-* left"
is "$(readlink "$B/next")" "releases/s1" "--sha256 wrong: next unchanged"
run timeout 60 sh -c 'cat "$1" | chom-stage -d "$2" -r s3 --sha256 "$3" -' sh "$GOOD" "$B" "$zero"
exits 1 "--sha256 wrong on stdin: exit 1"
ok "--sha256 wrong on stdin: no release" nolink "$B/releases/s3"
is "$(tmps)" "" "--sha256 wrong on stdin: no .tmp-* left"

mkdir -p "$T/sums"
cp "$GOOD" "$T/sums/app-v2.tar.gz"
{
	echo "$zero  other.tar.gz"
	echo "$(sha "$GOOD") *app-v2.tar.gz"
	echo "$zero  app-v2.tar.gz.sig"
} >"$T/sums/SHA256SUMS"
st -d "$B" --checksums "$T/sums/SHA256SUMS" "$T/sums/app-v2.tar.gz"
exits 0 "--checksums: entry matched by name (binary-mode '*' marker too)"
is "$OUT" "$B/releases/app-v2" "--checksums: the path"
echo "$zero  app-v3.tar.gz" >"$T/sums/BAD"
cp "$GOOD" "$T/sums/app-v3.tar.gz"
st -d "$B" --checksums "$T/sums/BAD" "$T/sums/app-v3.tar.gz"
exits 1 "--checksums wrong digest: exit 1"
ok "--checksums wrong digest: no release" nolink "$B/releases/app-v3"
is "$(tmps)" "" "--checksums wrong digest: no .tmp-* left"
cp "$GOOD" "$T/sums/app-v4.tar.gz"
st -d "$B" --checksums "$T/sums/SHA256SUMS" "$T/sums/app-v4.tar.gz"
exits 1 "--checksums without an entry for the artifact: exit 1"
like "$ERR" 'app-v4' "--checksums without an entry: names the artifact"
ok "--checksums without an entry: no release" nolink "$B/releases/app-v4"
echo "$(sha "$GOOD")  whatever.tar.gz" >"$T/sums/ONE"
run timeout 60 sh -c 'chom-stage -d "$2" -r s5 --checksums "$3" - <"$1"' sh "$GOOD" "$B" "$T/sums/ONE"
exits 0 "--checksums on stdin, one entry: staged"
run timeout 60 sh -c 'chom-stage -d "$2" -r s6 --checksums "$3" - <"$1"' sh "$GOOD" "$B" "$T/sums/SHA256SUMS"
ok "--checksums on stdin, several entries: refused" test "$RC" -ne 0
ok "--checksums on stdin, several entries: no release" nolink "$B/releases/s6"
st -d "$B" -r s7 --require-checksum --sha256 "$(sha "$GOOD")" "$GOOD"
exits 0 "--require-checksum with --sha256: staged"

# --- the hostile corpus ----------------------------------------------------

# hostile CASE ERE: refused, the message matching ERE (the entry's name),
# nothing left and nothing written outside.
hostile() {
	local c=$1 re=$2
	newbase "h-$c"
	echo victim >"$B/victim"
	# a fresh $ABS too, so that one case's damage is not charged to the next
	find "$ABS" -mindepth 1 -delete
	echo victim >"$ABS/victim"
	st -d "$B" -r hostile "$CORPUS/$c"
	exits 1 "$c: refused"
	like "$ERR" "$re" "$c: the message names the entry"
	is "$OUT" "" "$c: nothing on stdout"
	is "$(left)" "" "$c: nothing left in releases/"
	ok "$c: no next link" nolink "$B/next"
	is "$(strays)" "" "$c: nothing written outside"
}
hostile dotdot.tar.gz '\.\./evil'
hostile dotdot-middle.tar 'evil-mid'
hostile dotdot-dir.tar 'evil-dir'
hostile absolute.tar 'chom-evil-abs'
hostile pax-dotdot.tar 'evil-pax'
hostile longname-dotdot.tar 'evil-long'
hostile symlink-escape.tar 'link-escape'
hostile symlink-escape-deep.tar 'link-deep'
hostile symlink-absolute.tar 'link-abs'
hostile symlink-chain.tar 'chain'
hostile pax-symlink.tar 'link-pax'
hostile symlink-then-dir.tar 'sd-link'
hostile through-symlink.tar 'x-through'
hostile through-symlink-dot.tar 'x-dot'
hostile through-symlink-esc.tar 'esc'
hostile duplicate-symlink.tar 'sl-dup'
hostile hardlink-outside.tar 'hl-out'
hostile hardlink-absolute.tar 'hl-abs'
hostile hardlink-dotdot-target.tar 'hl-dd'
hostile hardlink-unknown.tar 'hl-unknown'
hostile hardlink-forward.tar 'hl-fwd'
hostile hardlink-dir.tar 'hl-dir'
hostile device.tar 'dev-null'
hostile device-block.tar 'dev-block'
hostile fifo.tar 'a-fifo'
hostile socket.zip 'a-socket'
hostile duplicate.tar 'dup\.txt'
hostile zip-dotdot.zip 'evil-zip'
hostile zip-absolute.zip 'chom-evil-zip'
hostile zip-symlink.zip 'link-zip'
hostile zip-backslash.zip 'evil-bs'
hostile newline.tar 'evil-nl'
unlike "$ERR" '^INJECTED' "newline.tar: the newline is escaped in the message"
hostile ctrl.tar 'evil-esc'
unlike "$ERR" $'\x1b' "ctrl.tar: the escape character is escaped in the message"
hostile badutf8.tar 'evil-utf8'
ok "badutf8.tar: the message is valid UTF-8 (bytes escaped)" valid_utf8 "$ERR"
hostile truncated.tar.gz '.'
hostile garbage.tar '.'
hostile longpath.tar '.'

# the same refusals when the artifact streams in on stdin
hostile_stdin() {
	local c=$1 re=$2
	newbase "hs-$c"
	echo victim >"$B/victim"
	find "$ABS" -mindepth 1 -delete
	echo victim >"$ABS/victim"
	run timeout 60 sh -c 'cat "$1" | chom-stage -d "$2" -r hostile -' sh "$CORPUS/$c" "$B"
	exits 1 "$c on stdin: refused"
	like "$ERR" "$re" "$c on stdin: the message names the entry"
	is "$(left)" "" "$c on stdin: nothing left in releases/"
	is "$(strays)" "" "$c on stdin: nothing written outside"
}
hostile_stdin dotdot.tar.gz '\.\./evil'
hostile_stdin absolute.tar 'chom-evil-abs'
hostile_stdin through-symlink-esc.tar 'esc'
hostile_stdin hardlink-outside.tar 'hl-out'
hostile_stdin device.tar 'dev-null'

# A zip's directory is at its end: from a pipe it is spooled and then read
# with its modes and link types, never streamed without them.
newbase zip-stdin
run timeout 60 sh -c 'cat "$1" | chom-stage -d "$2" -r z -' sh "$ART/f-zip.zip" "$B"
exits 0 "zip on stdin: staged"
ok "zip on stdin: staged with its symlinks and modes" same_tree "$SRC" "$B/releases/z"
is "$(left)" "z" "zip on stdin: only the release in releases/"
newbase zip-stdin-socket
run timeout 60 sh -c 'cat "$1" | chom-stage -d "$2" -r z -' sh "$CORPUS/socket.zip" "$B"
exits 1 "socket.zip on stdin: refused"
is "$(left)" "" "socket.zip on stdin: nothing left in releases/"

# setuid/setgid: allowed, stripped; owners not restored
newbase setuid
st -d "$B" -r s "$CORPUS/setuid.tar"
exits 0 "setuid.tar: staged"
is "$(stat -c %a "$B/releases/s/bin/suid" 2>&1)" 755 "setuid bit stripped"
is "$(stat -c %a "$B/releases/s/bin/sgid" 2>&1)" 755 "setgid bit stripped"
is "$(stat -c %a "$B/releases/s/bin/both" 2>&1)" 755 "setuid+setgid bits stripped"
is "$(stat -c %u:%g "$B/releases/s/bin/suid" 2>&1)" "$(id -u):$(id -g)" "owner not restored"

# --- limits -----------------------------------------------------------------

newbase limits
start=$SECONDS
st -d "$B" -r bomb --max-bytes 1M "$CORPUS/bomb.tar.gz"
exits 1 "bomb beyond --max-bytes 1M: refused"
like "$ERR" 'max-bytes' "bomb: the message names --max-bytes"
is "$(left)" "" "bomb: nothing left in releases/"
ok "bomb: stopped early (< 30 s)" test $((SECONDS - start)) -lt 30
run timeout 60 sh -c 'chom-stage -d "$2" -r bomb2 --max-bytes 1M - <"$1"' sh "$CORPUS/bomb.tar.gz" "$B"
exits 1 "bomb on stdin: refused"
is "$(left)" "" "bomb on stdin: nothing left in releases/"
st -d "$B" -r under --max-bytes 1M "$GOOD"
exits 0 "an artifact under --max-bytes: staged"
st -d "$B" -r many --max-files 100 "$CORPUS/many-files.tar"
exits 1 "201 entries beyond --max-files 100: refused"
like "$ERR" 'max-files' "--max-files: the message names it"
ok "--max-files: no release" nolink "$B/releases/many"
is "$(tmps)" "" "--max-files: no .tmp-* left"
st -d "$B" -r many --max-files 1000 "$CORPUS/many-files.tar"
exits 0 "201 entries under --max-files 1000: staged"
is "$(find "$B/releases/many" -type f | wc -l)" 200 "--max-files: every file there"

# --- configuration ---------------------------------------------------------

newbase config
printf '[global]\nbase = %s\n[stage]\nmax_files = 100\n[switch]\nkeep = 3\n' "$B" >"$T/c1.conf"
run timeout 60 chom-stage -c "$T/c1.conf" -r many "$CORPUS/many-files.tar"
exits 1 "config: [stage] max_files applies"
run timeout 60 chom-stage -c "$T/c1.conf" -r c1 "$GOOD"
exits 0 "config: [global] base applies (other tools' sections ignored)"
is "$OUT" "$B/releases/c1" "config: staged under the configured base"
mkdir -p "$W/envbase" "$W/optbase"
run env CHOM_BASE="$W/envbase" timeout 60 chom-stage -c "$T/c1.conf" -r c2 "$GOOD"
is "$OUT" "$W/envbase/releases/c2" "CHOM_BASE overrides the config file"
run env CHOM_BASE="$W/envbase" timeout 60 chom-stage -c "$T/c1.conf" -d "$W/optbase" -r c3 "$GOOD"
is "$OUT" "$W/optbase/releases/c3" "-d overrides CHOM_BASE"
run env CHOM_CONFIG="$T/c1.conf" timeout 60 chom-stage -r c4 "$GOOD"
is "$OUT" "$B/releases/c4" "CHOM_CONFIG names the config file"
printf '[stage]\nmax_filez = 100\n' >"$T/c2.conf"
run timeout 60 chom-stage -c "$T/c2.conf" -d "$B" -r c5 "$GOOD"
exits 2 "config: unknown key in [stage]: exit 2"
like "$ERR" 'c2\.conf:2' "config: unknown key: names file:line"
ok "config: unknown key: nothing staged" nolink "$B/releases/c5"
run timeout 60 chom-stage -c "$T/no-such.conf" -d "$B" -r c6 "$GOOD"
exits 2 "config: unreadable file: exit 2"
printf '[stage]\nrequire_checksum = yes\n' >"$T/c3.conf"
run timeout 60 chom-stage -c "$T/c3.conf" -d "$B" -r c7 "$GOOD"
exits 2 "config: require_checksum = yes without a checksum: exit 2"
run timeout 60 chom-stage -c "$T/c3.conf" -d "$B" -r c7 --sha256 "$(sha "$GOOD")" "$GOOD"
exits 0 "config: require_checksum = yes with --sha256: staged"

# --- stale temporary directories -------------------------------------------

newbase stale
mkdir -p "$B/releases/.tmp-old-4194304/public"
echo half >"$B/releases/.tmp-old-4194304/public/x"
st -d "$B" -r fresh "$GOOD"
exits 0 "a run with a stale .tmp-* present: staged"
ok "the stale .tmp-* of a dead run is removed" nolink "$B/releases/.tmp-old-4194304"

# --- --link ------------------------------------------------------------------

mklink_art() { # NAME FILE1-CONTENT [with-env]
	local d=$T/l-$1
	rm -rf "$d"
	mkdir -p "$d/public" "$d/storage/app" "$d/storage/logs"
	echo "$1" >"$d/public/index.html"
	echo "$2" >"$d/storage/app/file1"
	echo "new in $1" >"$d/storage/app/new-$1"
	[ $# -ge 3 ] && echo "ENV=from-$1" >"$d/.env"
	tar -C "$d" -czf "$ART/$1.tar.gz" .
}
mklink_art l1 from-artifact-1
mklink_art l2 from-artifact-2
mklink_art l3 from-artifact-3 env

newbase link
st -d "$B" --link storage "$ART/l1.tar.gz"
exits 0 "--link storage, first deploy: staged"
ok "first deploy: shared/storage seeded as a directory" test -d "$B/shared/storage" -a ! -L "$B/shared/storage"
is "$(cat "$B/shared/storage/app/file1" 2>&1)" from-artifact-1 "first deploy: seeded from the artifact"
ok "release's storage is a symlink" test -L "$B/releases/l1/storage"
is "$(readlink "$B/releases/l1/storage")" "../../shared/storage" "release's storage -> ../../shared/storage"
is "$(cat "$B/releases/l1/storage/app/file1" 2>&1)" from-artifact-1 "readable through the link"
echo runtime >"$B/shared/storage/app/runtime"
st -d "$B" --link storage "$ART/l2.tar.gz"
exits 0 "--link storage, second deploy: staged"
is "$(cat "$B/shared/storage/app/runtime" 2>&1)" runtime "second deploy: shared content kept"
is "$(cat "$B/shared/storage/app/file1" 2>&1)" from-artifact-1 "second deploy: shared not overwritten by the artifact"
ok "second deploy: the artifact's copy not merged into shared" nolink "$B/shared/storage/app/new-l2"
is "$(readlink "$B/releases/l2/storage")" "../../shared/storage" "second deploy: the link"
is "$(ls -A "$B/releases/l2" | tr '\n' ' ')" "public storage " "second deploy: the release copy removed, nothing else left"
echo 'APP_KEY=base64:k' >"$B/shared/.env"
st -d "$B" --link storage --link .env "$ART/l3.tar.gz"
exits 0 "--link storage --link .env: staged"
is "$(readlink "$B/releases/l3/.env")" "../../shared/.env" ".env -> ../../shared/.env"
is "$(cat "$B/releases/l3/.env" 2>&1)" 'APP_KEY=base64:k' ".env: the shared one wins over the artifact's"
is "$(cat "$B/shared/.env")" 'APP_KEY=base64:k' ".env: shared/.env unchanged"
st -d "$B" -r l1b --link .env "$ART/l1.tar.gz"
exits 0 "--link .env with shared/.env and none in the artifact: staged"
is "$(readlink "$B/releases/l1b/.env")" "../../shared/.env" ".env linked although the artifact has none"
st -d "$B" -r l5 --link nothere "$ART/l1.tar.gz"
exits 1 "--link PATH in neither the artifact nor shared/: exit 1"
like "$ERR" 'nothere' "--link missing: the message names the path"
ok "--link missing: no release" nolink "$B/releases/l5"
is "$(tmps)" "" "--link missing: no .tmp-* left"
printf '[stage]\nlink = storage\nlink = .env\n' >"$T/link.conf"
run timeout 60 chom-stage -c "$T/link.conf" -d "$B" -r l6 "$ART/l3.tar.gz"
exits 0 "config link = lines: staged"
ok "config link = lines: both links" test -L "$B/releases/l6/storage" -a -L "$B/releases/l6/.env"

newbase link-seed-file
st -d "$B" --link .env "$ART/l3.tar.gz"
exits 0 "--link .env, first deploy: staged"
is "$(cat "$B/shared/.env" 2>&1)" ENV=from-l3 "first deploy: shared/.env seeded from the artifact's file"
is "$(readlink "$B/releases/l3/.env")" "../../shared/.env" "first deploy: .env linked"

newbase link-nested
st -d "$B" --link storage/app "$ART/l1.tar.gz"
exits 0 "--link storage/app: staged"
l=$(readlink "$B/releases/l1/storage/app")
like "$l" '^[^/]' "nested link is relative ($l)"
is "$(readlink -f "$B/releases/l1/storage/app")" "$(readlink -f "$B/shared/storage/app")" \
	"nested link resolves to shared/storage/app"

# --- the deploy lock ------------------------------------------------------

newbase lock
mkdir -p "$B/.chom"
lockheld() { ! flock -n "$B/.chom/lock" true; }
hold_lock() { # SECONDS: holds the lock from a background flock(1)
	flock -o "$B/.chom/lock" sleep "$1" &
	HOLDER=$!
	at_exit "kill $HOLDER 2>/dev/null"
	wait_for 10 lockheld
}
release_lock() {
	local c
	c=$(pgrep -P "$HOLDER")
	kill "$HOLDER" $c 2>/dev/null
	wait "$HOLDER" 2>/dev/null
}
if hold_lock 120; then
	st -d "$B" -r locked --wait 0 "$GOOD"
	exits 3 "lock held, --wait 0: exit 3"
	like "$ERR" '[Ll]ock|held' "lock held: the message says so"
	ok "lock held: no release" nolink "$B/releases/locked"
	is "$(tmps)" "" "lock held: no .tmp-* left"
	ok "lock held: no next" nolink "$B/next"
	start=$SECONDS
	st -d "$B" -r locked --wait 1 "$GOOD"
	exits 3 "lock held, --wait 1: exit 3"
	ok "--wait 1: gave up within 20 s" test $((SECONDS - start)) -lt 20
	release_lock
	hold_lock 3
	st -d "$B" -r waited --wait 30 "$GOOD"
	exits 0 "lock released while waiting (--wait 30): staged"
	release_lock
	st -d "$B" -r free --wait 0 "$GOOD"
	exits 0 "lock free: staged"
	# held by another chom run (chom-switch running its --exec; --wait, as
	# the probe below takes the lock for an instant): the
	# message names the holder
	if command -v chom-switch >/dev/null; then
		chom-switch -d "$B" --wait 10 --exec 'sleep 5' free >/dev/null 2>"$T/switch.err" &
		swpid=$!
		if wait_for 10 lockheld; then
			st -d "$B" -r busy --wait 0 "$GOOD"
			exits 3 "lock held by chom-switch: exit 3"
			like "$ERR" "held by pid $swpid on $(hostname) since [0-9]{4}-[0-9]{2}-[0-9]{2}T" \
				"lock held by chom-switch: the message names pid, host and time"
		else
			skip "lock held by chom-switch" "chom-switch --exec did not hold the lock: $(cat "$T/switch.err")"
		fi
		reap "$swpid"
	else
		skip "lock held by chom-switch" "no chom-switch"
	fi
else
	skip "lock tests" "could not take the lock with flock(1)"
fi

# --- kill -9 in the middle --------------------------------------------------

BIG=$T/big.tar # 3000 files, 200 MiB of incompressible data
python3 - "$BIG" <<'EOF'
import io, os, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    for d in range(30):
        ti = tarfile.TarInfo("d%02d" % d)
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        t.addfile(ti)
        for i in range(100):
            data = os.urandom(70 * 1024)
            ti = tarfile.TarInfo("d%02d/f%03d" % (d, i))
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
EOF

newbase crash
chom-stage -d "$B" -r crash "$BIG" >/dev/null 2>"$T/crash.err" &
pid=$!
if midway "$pid" 50 && kill -9 "$pid" 2>/dev/null; then
	wait "$pid" 2>/dev/null
	ok "kill -9 mid-extraction: no releases/crash" nolink "$B/releases/crash"
	ok "kill -9: the .tmp-* is left behind (killed mid-way)" test -n "$(tmps)"
	ok "kill -9: no next" nolink "$B/next"
	st -d "$B" -r crash "$BIG"
	exits 0 "after kill -9: the same stage again succeeds"
	is "$(find "$B/releases/crash" -type f | wc -l)" 3000 "after kill -9: the release is complete"
	is "$(tmps)" "" "after kill -9: the stale .tmp-* is gone"
else
	wait "$pid" 2>/dev/null
	skip "kill -9 mid-extraction" "extraction ended before it could be killed"
fi

# Through a pipe that stalls: deterministic, and a second run meanwhile must
# leave the live run's .tmp-* alone.
newbase crash-pipe
mkfifo "$T/fifo"
chom-stage -d "$B" -r slow - <"$T/fifo" >/dev/null 2>"$T/slow.err" &
pid=$!
exec 7>"$T/fifo"
timeout 60 head -c 20M "$BIG" >&7
if midway "$pid" 50; then
	live=$(tmps)
	st -d "$B" -r other "$GOOD"
	exits 0 "a stage while another one is mid-way: staged"
	ok "the live run's .tmp-* is left alone" test -d "$live"
	kill -9 "$pid"
	exec 7>&-
	wait "$pid" 2>/dev/null
	ok "kill -9 on a pipe: no releases/slow" nolink "$B/releases/slow"
	is "$(readlink "$B/next")" releases/other "kill -9 on a pipe: next unchanged"
	st -d "$B" -r after "$GOOD"
	exits 0 "after kill -9 on a pipe: staged"
	ok "after kill -9 on a pipe: the dead run's .tmp-* is gone" nolink "$live"
else
	kill -9 "$pid" 2>/dev/null
	exec 7>&-
	wait "$pid" 2>/dev/null
	_tap not-ok "a stalled stdin stage shows a .tmp-* with files"
	diag "$(cat "$T/slow.err")"
fi
rm -f "$T/fifo"

# --- SIGTERM and SIGINT in the middle ------------------------------------------

# signal_case SIG CODE: stage from a stalled pipe, signal it, expect CODE.
signal_case() {
	local sig=$1 code=$2
	newbase "sig-$sig"
	mkfifo "$T/fifo"
	env --default-signal=INT chom-stage -d "$B" -r sig - <"$T/fifo" >/dev/null 2>"$T/sig.err" &
	pid=$!
	exec 7>"$T/fifo"
	timeout 60 head -c 20M "$BIG" >&7
	if midway "$pid" 50; then
		kill -"$sig" "$pid"
		# stdin stays open and silent: the run must stop on its own
		reap "$pid"
		exec 7>&-
		ERR=$(cat "$T/sig.err")
		exits "$code" "SIG$sig mid-extraction (stdin stalled): exit $code"
		is "$(left)" "" "SIG$sig: the .tmp-* removed, no release"
		ok "SIG$sig: no next" nolink "$B/next"
	else
		kill -9 "$pid" 2>/dev/null
		exec 7>&-
		wait "$pid" 2>/dev/null
		_tap not-ok "SIG$sig: a stalled stdin stage shows a .tmp-* with files"
	fi
	rm -f "$T/fifo"
}
signal_case TERM 143
signal_case INT 130

newbase sig-file
chom-stage -d "$B" -r sig "$BIG" >/dev/null 2>"$T/sig.err" &
pid=$!
if midway "$pid" 50 && kill -TERM "$pid" 2>/dev/null; then
	reap "$pid"
	ERR=$(cat "$T/sig.err")
	if [ "$RC" = 0 ]; then
		skip "SIGTERM mid-extraction of a file" "extraction ended before the signal"
	else
		exits 143 "SIGTERM mid-extraction of a file: exit 143"
		is "$(left)" "" "SIGTERM (file): the .tmp-* removed, no release"
	fi
else
	wait "$pid" 2>/dev/null
	skip "SIGTERM mid-extraction of a file" "extraction ended before the signal"
fi

# --- a full disk ------------------------------------------------------------

# 8 MiB of one letter (a few KiB compressed; not zeros, which an extractor
# may write as holes), 3 MiB of random bytes (uncompressed)
python3 - "$T/fill8m.tar.gz" "$T/random3m.tar" <<'EOF'
import io, os, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.GNU_FORMAT) as t:
    ti = tarfile.TarInfo("fill.bin"); ti.size = 8 << 20
    t.addfile(ti, io.BytesIO(b"x" * ti.size))
with tarfile.open(sys.argv[2], "w", format=tarfile.GNU_FORMAT) as t:
    ti = tarfile.TarInfo("random.bin"); ti.size = 3 << 20
    t.addfile(ti, io.BytesIO(os.urandom(ti.size)))
EOF
FS=$T/tmpfs
mkdir -p "$FS"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=2m,mode=755 tmpfs "$FS" 2>/dev/null; then
	at_exit "umount -l '$FS'"
	W=$FS B=$FS/base
	# each case on an emptied filesystem, so that one failure does not
	# cause the next
	fresh() { rm -rf "$B" && mkdir -p "$B"; }
	fresh
	st -d "$B" -r full "$T/fill8m.tar.gz"
	exits 1 "ENOSPC mid-way (8 MiB into 2 MiB): exit 1"
	like "$ERR" '[Ss]pace|ENOSPC|full' "ENOSPC: a clear message"
	is "$(left)" "" "ENOSPC: nothing left in releases/"
	ok "ENOSPC: no next" nolink "$B/next"
	fresh
	run timeout 60 sh -c 'chom-stage -d "$2" -r full2 - <"$1"' sh "$T/fill8m.tar.gz" "$B"
	exits 1 "ENOSPC mid-way from stdin: exit 1"
	is "$(left)" "" "ENOSPC from stdin: nothing left in releases/"
	fresh
	st -d "$B" -r big "$T/random3m.tar"
	exits 1 "artifact larger than the free space: refused"
	like "$ERR" '[Ss]pace' "free-space check: the message says so"
	is "$(left)" "" "free-space check: nothing left in releases/"
	st -d "$B" -r small "$GOOD"
	exits 0 "after a refused artifact the filesystem is usable: staged"
	if umount "$FS" && mount -t tmpfs -o size=8m,nr_inodes=64,mode=755 tmpfs "$FS" 2>/dev/null; then
		mkdir -p "$B"
		st -d "$B" -r inodes "$CORPUS/many-files.tar"
		exits 1 "out of inodes (201 entries, 64 inodes): exit 1"
		is "$(left)" "" "out of inodes: nothing left in releases/"
	else
		skip "out of inodes" "cannot mount a tmpfs with nr_inodes"
	fi
else
	skip "disk full" "cannot mount a tmpfs (needs root)"
fi

done_testing

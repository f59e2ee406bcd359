#!/usr/bin/env bash
# chom-restore (SPEC.md section 4, issue 5): usage errors; --list (the
# table, newest first, labels, incomplete points with --all, --json);
# round trips of db, files, config and sysinfo parts made by chom-backup
# with gzip, zstd and none, --no-encrypt and --passphrase-file, judged by
# cmp and by the modes, symlinks and mtimes of the originals; POINT,
# latest and --at; --verify; tampered parts (a flipped byte, a truncated
# part, no manifest, a part of another point, the wrong identity, a part
# whose manifest was made to match it) refused with the part named and
# nothing written; a real MariaDB restored through the tool, judged by
# CHECKSUM TABLE (gzip, zstd, --no-spool, --stream, a spool with no room);
# --db-cmd commands that fail; SIGTERM during --db and --files. Also: a
# host with only incomplete points; a target below a missing directory,
# removed again on failure; --files with no manifest, a swapped part, the
# wrong identity; hostile files parts (.., absolute paths, a symlink to
# outside, a hard link) made by hand and encrypted by the real age; a
# decompression error of a --no-encrypt point (gzip, zstd) whose manifest
# matches; tampering with the memory spool (the default); several -i;
# progress on a pseudo-terminal.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/servers.sh"

TOOL=chom-restore
# jl PYEXPR: PYEXPR of each JSON line of $OUT (o = the object), one a line.
jl() {
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
for line in sys.stdin:
    if not line.strip():
        continue
    try:
        o = json.loads(line)
        v = eval(sys.argv[1])
    except Exception as e:
        print("?%s" % e); continue
    print(v if isinstance(v, str) else json.dumps(v))
' "$1"
}
# names DIR: the names in DIR, sorted, on one line, dot files included.
names() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'; }
# tree_sig DIR: every entry below DIR (DIR too) with its type, mode, mtime,
# size and link target; the SHA-256 of every file.
tree_sig() {
	(
		cd "$1" || exit 1
		find . -type d -printf '%P|d|%m|%Ts|%u\n'
		find . ! -type d -printf '%P|%y|%m|%Ts|%s|%l|%u\n'
		find . -type f -print0 | xargs -0 -r sha256sum
	) 2>&1 | LC_ALL=C sort
}
# flip FILE OFFSET: the byte at OFFSET xor 0xff.
flip() {
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))
' "$1" "$2"
}
# fix_manifest POINTDIR PART: the manifest made to list PART's size and
# SHA-256 as they are now.
fix_manifest() {
	python3 -c '
import hashlib, json, os, sys
d, name = sys.argv[1], sys.argv[2]
path = os.path.join(d, "manifest.json")
m = json.load(open(path))
data = open(os.path.join(d, name), "rb").read()
for p in m["parts"]:
    if p["name"] == name:
        p["size"] = len(data)
        p["sha256"] = hashlib.sha256(data).hexdigest()
json.dump(m, open(path, "w"))
' "$1" "$2"
}
# gone PATTERN: true once no process matches PATTERN (within 3 s).
gone() {
	for _ in $(seq 1 30); do
		pgrep -f "^$1$" >/dev/null || return 0
		sleep 0.1
	done
	return 1
}
# reap PATTERN: ends the processes of PATTERN a case left behind, by pid.
reap() {
	local p
	for p in $(pgrep -f "^$1$"); do kill -KILL "$p" 2>/dev/null; done
	return 0
}
# running PATTERN: a process whose whole command line is PATTERN (the
# command itself, not the chom-restore or sh whose arguments name it).
running() { pgrep -f "^$1$" >/dev/null; }
# extracting DIR: DIR holds a .chom-restore-* directory.
extracting() { compgen -G "$1/.chom-restore-*" >/dev/null; }
num_ok() {
	if awk "BEGIN { exit !($2) }"; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}
ID_RE='^[0-9]{8}T[0-9]{6}Z$'
T0=$(date +%s)

# --- --help, --version ----------------------------------------------------
run chom-restore --help
exits 0 "--help exits 0"
like "$OUT" '^Usage: chom-restore' "--help prints usage on stdout"
is "$ERR" "" "--help: nothing on stderr"
for o in --list --verify --db --files --config --sysinfo --from --host --at \
	--identity --passphrase-file --db-cmd --db-defaults --target \
	--spool-dir --no-spool --stream --all --json; do
	like "$OUT" "$o" "--help mentions $o"
done
run chom-restore --version
exits 0 "--version exits 0"
like "$OUT" '^chom-restore \(chom\) [0-9]+\.[0-9]+\.[0-9]+$' "--version format"

# --- keys and data ---------------------------------------------------------
KEY=$T/key.txt
R=$(chom-backup --keygen "$KEY")
like "$R" '^age1' "an identity for the backups"
KEY2=$T/key2.txt
R2=$(chom-backup --keygen "$KEY2")
like "$R2" '^age1' "a second identity"
# A SQL dump of about 3 MB (more than the 1 MiB of a pipe): UTF-8, quotes,
# backslashes.
SQL=$T/dump.sql
python3 - "$SQL" <<'EOF'
import random, sys
r = random.Random(4)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("-- chom test dump\nCREATE TABLE t (id INT PRIMARY KEY, name TEXT, v DOUBLE);\n")
    for i in range(40000):
        name = "".join(r.choice("abcdefghijklmnopqrstuvwxyzé'\\\"ß€") for _ in range(r.randint(5, 60)))
        name = name.replace("\\", "\\\\").replace("'", "\\'")
        f.write("INSERT INTO t VALUES (%d, '%s', %r);\n" % (i, name, r.random()))
EOF
ok "a dump of more than 1 MiB" test "$(stat -c %s "$SQL")" -gt 2000000
FILES=$T/files
mkdir -p "$FILES/sub/deeper" "$FILES/empty"
printf 'alpha\n' >"$FILES/a.txt"
head -c 300000 /dev/urandom >"$FILES/sub/blob.bin"
printf 'deep\n' >"$FILES/sub/deeper/c.txt"
printf '#!/bin/sh\necho hi\n' >"$FILES/run.sh"
printf 'spaces\n' >"$FILES/name with spaces é.txt"
: >"$FILES/sub/zero-length"
ln -s a.txt "$FILES/link-to-a"
ln -s sub/deeper "$FILES/link-to-dir"
chmod 640 "$FILES/a.txt"
chmod 755 "$FILES/run.sh"
chmod 600 "$FILES/sub/zero-length"
chmod 700 "$FILES/empty"
chmod 750 "$FILES/sub"
touch -d '2021-03-04 05:06:07' "$FILES/a.txt"
touch -h -d '2019-01-02 03:04:05' "$FILES/link-to-a"
touch -d '2020-05-06 07:08:09' "$FILES/sub/deeper" "$FILES/empty"
touch -d '2020-05-06 07:08:10' "$FILES/sub"
touch -d '2020-05-06 07:08:11' "$FILES"
CONF=$T/etc-app
mkdir -p "$CONF/conf.d"
printf 'APP_KEY=base64:xyz\nDB_HOST=127.0.0.1\n' >"$CONF/.env"
printf 'server { listen 80; }\n' >"$CONF/conf.d/site.conf"
chmod 600 "$CONF/.env"
touch -d '2022-01-01 00:00:01' "$CONF/.env" "$CONF/conf.d"
S=$T/store
U=file://$S

# --- round trips: gzip, zstd, none ---------------------------------------------
# For each: a point with all four kinds; --db into `cat > FILE` (cmp with
# the dump), --files and --config into new targets (contents, modes,
# symlinks, mtimes against the originals), --sysinfo on stdout (cmp with
# what the real age decrypts).
for c in gzip zstd none; do
	run chom-backup --to "$U" --host "rt-$c" -r "$R" --compress "$c" --label "round trip $c" \
		--db --db-cmd "cat '$SQL'" --files "$FILES" --config "$CONF" --sysinfo
	exits 0 "$c: chom-backup makes a point"
	like "$OUT" "$ID_RE" "$c: chom-backup prints the point id"
	P=$OUT
	PD=$S/rt-$c/$P
	case $c in
	gzip) ext=.gz dec="gunzip -c" ;;
	zstd) ext=.zst dec="zstd -dc" ;;
	none) ext='' dec=cat ;;
	esac
	ok "$c: the point holds db.sql$ext.age" test -f "$PD/db.sql$ext.age"
	ok "$c: age -d | $dec of the part is the dump (the real decoders)" \
		cmp -s "$SQL" <(age -d -i "$KEY" "$PD/db.sql$ext.age" | $dec)
	run chom-restore --from "$U" --host "rt-$c" -i "$KEY" --db --db-cmd "cat > '$T/db-$c.sql'"
	exits 0 "$c: --db: exit 0"
	is "$OUT" "$P" "$c: --db prints the point restored"
	is "$ERR" "" "$c: --db: silent on stderr"
	ok "$c: --db gives the dump back byte for byte (cmp)" cmp -s "$SQL" "$T/db-$c.sql"
	run chom-restore --from "$U" --host "rt-$c" -i "$KEY" --files --target "$T/rf-$c"
	exits 0 "$c: --files into a new directory: exit 0"
	is "$OUT" "$P" "$c: --files prints the point restored"
	is "$(names "$T/rf-$c")" "$(printf '%s' "${FILES#/}" | cut -d/ -f1)" \
		"$c: --files: the tree under TARGET/<path without the leading />"
	is "$(tree_sig "$T/rf-$c/${FILES#/}")" "$(tree_sig "$FILES")" \
		"$c: --files: contents, types, modes, mtimes and symlinks as the originals"
	is "$(readlink "$T/rf-$c/${FILES#/}/link-to-a")" a.txt "$c: --files: the symlink restored as a symlink"
	is "$(find "$T/rf-$c" -name '.chom-restore-*' | wc -l)" 0 "$c: --files: no .chom-restore-* left"
	mkdir "$T/rc-$c"
	run chom-restore --from "$U" --host "rt-$c" -i "$KEY" --config "$P" --target "$T/rc-$c"
	exits 0 "$c: --config POINT into an empty directory: exit 0"
	is "$(tree_sig "$T/rc-$c/${CONF#/}")" "$(tree_sig "$CONF")" "$c: --config: the tree as the original"
	run chom-restore --from "$U" --host "rt-$c" -i "$KEY" --sysinfo latest
	exits 0 "$c: --sysinfo latest: exit 0"
	printf '%s\n' "$OUT" >"$T/sys-$c.txt"
	ok "$c: --sysinfo prints what age -d decrypts" \
		cmp -s "$T/sys-$c.txt" <(age -d -i "$KEY" "$PD/sysinfo.txt.age")
	like "$OUT" "$(uname -r)" "$c: --sysinfo: the kernel's release"
done
GZ=$(ls "$S/rt-gzip")
GZD=$S/rt-gzip/$GZ

# --db --json: one object for the part.
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd 'cat >/dev/null' --json
exits 0 "--db --json: exit 0"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "--db --json: one line"
is "$(jl '[o["point"], o["part"], o["kind"], o["action"], o["ok"], o["plain_size"]]')" \
	"[\"$GZ\", \"db.sql.gz.age\", \"db\", \"db\", true, $(stat -c %s "$SQL")]" \
	"--db --json: point, part, kind, action, ok, plain_size"

# --- --no-encrypt, --passphrase-file, a config file ---------------------------
run chom-backup --to "$U" --host plain --no-encrypt --db --db-cmd "cat '$SQL'" --files "$FILES"
exits 0 "--no-encrypt: a point"
PLAIN=$OUT
is "$(names "$S/plain/$PLAIN")" "db.sql.gz files.tar.gz manifest.json" "--no-encrypt: parts without .age"
run chom-restore --from "$U" --host plain --db --db-cmd "cat > '$T/db-plain.sql'"
exits 0 "--no-encrypt: --db without -i: exit 0"
ok "--no-encrypt: the dump back (cmp)" cmp -s "$SQL" "$T/db-plain.sql"
run chom-restore --from "$U" --host plain --files --target "$T/rf-plain"
exits 0 "--no-encrypt: --files without -i: exit 0"
is "$(tree_sig "$T/rf-plain/${FILES#/}")" "$(tree_sig "$FILES")" "--no-encrypt: --files: the tree as the original"
run chom-restore --from "$U" --host plain -i "$KEY" --verify
exits 0 "--no-encrypt: --verify with an -i that is not needed: exit 0"

PW=$T/passphrase
printf 'correct horse battery staple\n' >"$PW"
chmod 600 "$PW"
run chom-backup --to "$U" --host pass --passphrase-file "$PW" --db --db-cmd "cat '$SQL'" --files "$FILES"
exits 0 "--passphrase-file: a point"
run chom-restore --from "$U" --host pass --passphrase-file "$PW" --db --db-cmd "cat > '$T/db-pass.sql'"
exits 0 "--passphrase-file: --db: exit 0"
ok "--passphrase-file: the dump back (cmp)" cmp -s "$SQL" "$T/db-pass.sql"
run chom-restore --from "$U" --host pass --passphrase-file "$PW" --files --target "$T/rf-pass"
exits 0 "--passphrase-file: --files: exit 0"
is "$(tree_sig "$T/rf-pass/${FILES#/}")" "$(tree_sig "$FILES")" "--passphrase-file: --files: the tree as the original"
printf 'not the passphrase\n' >"$T/pw-wrong"
chmod 600 "$T/pw-wrong"
run chom-restore --from "$U" --host pass --passphrase-file "$T/pw-wrong" --db --db-cmd "cat > '$T/db-pass-wrong.sql'"
exits 1 "--passphrase-file, the wrong passphrase: exit 1"
like "$ERR" 'db\.sql\.gz\.age' "the wrong passphrase: the part named"
ok "the wrong passphrase: the command never started" test ! -e "$T/db-pass-wrong.sql"
run chom-restore --from "$U" --host pass -i "$KEY" --db --db-cmd "cat > '$T/db-pass-key.sql'"
exits 1 "a passphrase point and an identity file: exit 1"
like "$ERR" 'no identity given matches' "a passphrase point and an identity file: no identity matches"
ok "a passphrase point and an identity file: the command never started" test ! -e "$T/db-pass-key.sql"
chmod 644 "$PW"
run chom-restore --from "$U" --host pass --passphrase-file "$PW" --db --db-cmd "cat > '$T/db-pass-644.sql'"
usage_err "a passphrase file others may read" 'chmod 600|mode'
ok "a passphrase file of mode 0644: nothing restored" test ! -e "$T/db-pass-644.sql"
chmod 600 "$PW"

# The [restore] section of a config file: from, host, identity, db_cmd.
CF=$T/chom.conf
printf '[restore]\nfrom = %s\nhost = rt-zstd\nidentity = %s\ndb_cmd = cat > %s\n' \
	"$U" "$KEY" "$T/db-conf.sql" >"$CF"
run chom-restore -c "$CF" --db
exits 0 "-c FILE: from, host, identity and db_cmd of [restore]: exit 0"
is "$OUT" "$(ls "$S/rt-zstd")" "-c FILE: the point of host rt-zstd"
ok "-c FILE: the dump back through db_cmd (cmp)" cmp -s "$SQL" "$T/db-conf.sql"

# --- POINT, latest, --at ---------------------------------------------------------
printf 'SELECT 1;\n' >"$T/one.sql"
printf 'SELECT 2;\n' >"$T/two.sql"
run chom-backup --to "$U" --host at -r "$R" --label "first point" --db --db-cmd "cat '$T/one.sql'" --sysinfo
exits 0 "--at: a first point"
A1=$OUT
sleep 1
run chom-backup --to "$U" --host at -r "$R" --label "second point" --db --db-cmd "cat '$T/two.sql'"
exits 0 "--at: a second point a second later"
A2=$OUT
ok "the two points differ" test "$A1" \< "$A2"
# An incomplete point newer than both (a part, no manifest) and an older
# one (a copy of the first without its manifest).
AI=20991231T235959Z
AO=20000101T000000Z
mkdir -p "$S/at/$AI"
cp "$S/at/$A2/db.sql.gz.age" "$S/at/$AI/"
cp -a "$S/at/$A1" "$S/at/$AO"
rm "$S/at/$AO/manifest.json"
# at_db DESC EXPECTED ARG...: --db ARG... restores the dump of EXPECTED.
at_db() {
	local d=$1 want=$2
	shift 2
	rm -f "$T/at.sql"
	run chom-restore --from "$U" --host at -i "$KEY" --db --db-cmd "cat > '$T/at.sql'" "$@"
	exits 0 "$d: exit 0"
	is "$OUT" "$want" "$d: prints the point"
	is "$(cat "$T/at.sql" 2>&1)" "$(if [ "$want" = "$A1" ]; then echo 'SELECT 1;'; else echo 'SELECT 2;'; fi)" \
		"$d: the dump of that point"
}
at_db "no POINT: the newest complete point" "$A2"
at_db "latest" "$A2" latest
at_db "POINT by id" "$A1" "$A1"
at_db "--at the first point's id" "$A1" --at "$A1"
at_db "--at the second point's id" "$A2" --at "$A2"
E1=$(date -u -d "${A1:0:4}-${A1:4:2}-${A1:6:2} ${A1:9:2}:${A1:11:2}:${A1:13:2}" +%s)
at_db "--at @EPOCH of the first" "$A1" --at "@$E1"
E2=$(date -u -d "${A2:0:4}-${A2:4:2}-${A2:6:2} ${A2:9:2}:${A2:11:2}:${A2:13:2}" +%s)
at_db "--at @EPOCH of the second" "$A2" --at "@$E2"
at_db "--at @EPOCH a second before the second" "$A1" --at "@$((E2 - 1))"
at_db "--at 'YYYY-MM-DD HH:MM:SS' of the first" "$A1" \
	--at "${A1:0:4}-${A1:4:2}-${A1:6:2} ${A1:9:2}:${A1:11:2}:${A1:13:2}"
at_db "--at YYYY-MM-DDTHH:MM:SSZ of the first" "$A1" \
	--at "${A1:0:4}-${A1:4:2}-${A1:6:2}T${A1:9:2}:${A1:11:2}:${A1:13:2}Z"
at_db "--at YYYY-MM-DD: the whole of that day" "$A2" --at "${A2:0:4}-${A2:4:2}-${A2:6:2}"
run chom-restore --from "$U" --host at -i "$KEY" --db --db-cmd "cat > '$T/at-none.sql'" --at 2000-01-01
exits 1 "--at 2000-01-01 (only an incomplete point then): exit 1"
like "$ERR" '^chom-restore: no complete point of host at( with a db part)? at or before 2000-01-01' "--at 2000-01-01: says so"
is "$OUT" "" "--at 2000-01-01: nothing on stdout"
ok "--at 2000-01-01: the command never started" test ! -e "$T/at-none.sql"
run chom-restore --from "$U" --host at -i "$KEY" --db --db-cmd "cat > '$T/at-inc.sql'" "$AI"
exits 1 "an incomplete point asked for by id: exit 1"
like "$ERR" "point $AI: no readable manifest" "an incomplete point by id: no readable manifest"
ok "an incomplete point by id: the command never started" test ! -e "$T/at-inc.sql"
run chom-restore --from "$U" --host at -i "$KEY" --files "$A2" --target "$T/at-files"
exits 1 "--files of a point with no files part: exit 1"
like "$ERR" "point $A2 has no files part \(it has: db\)" "no files part: says which parts it has"
ok "no files part: the target not made" test ! -e "$T/at-files"

# --- --list ------------------------------------------------------------------------
# hms ID: the TIME column of point ID.
hms() { echo "${1:0:4}-${1:4:2}-${1:6:2} ${1:9:2}:${1:11:2}:${1:13:2}"; }
run chom-restore --from "$U" --host at --list
exits 0 "--list: exit 0"
is "$(printf '%s\n' "$OUT" | head -n 1)" \
	"POINT             TIME (UTC)           KINDS                             SIZE  LABEL" "--list: the header"
is "$(printf '%s\n' "$OUT" | wc -l)" 3 "--list: the header and the two complete points"
is "$(printf '%s\n' "$OUT" | sed -n '2,$p' | cut -c1-17 | tr -d ' ' | tr '\n' ' ')" "$A2 $A1 " \
	"--list: newest first, incomplete points left out"
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^$A2  $(hms "$A2")  db +[0-9.]+ (B|kB)  second point$" \
	"--list: the row of the second point (time, kinds, size, label)"
like "$(printf '%s\n' "$OUT" | sed -n 3p)" "^$A1  $(hms "$A1")  db,sysinfo +[0-9.]+ (B|kB|MB)  first point$" \
	"--list: the row of the first point"
run chom-restore --from "$U" --host at --list --all
exits 0 "--list --all: exit 0"
is "$(printf '%s\n' "$OUT" | sed -n '2,$p' | cut -c1-17 | tr -d ' ' | tr '\n' ' ')" "$AI $A2 $A1 $AO " \
	"--list --all: the incomplete points too, newest first"
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^$AI  $(hms "$AI")  incomplete " "--list --all: KINDS incomplete"
like "$(printf '%s\n' "$OUT" | sed -n 5p)" "^$AO  $(hms "$AO")  incomplete " "--list --all: the copy without a manifest is incomplete"
run chom-restore --from "$U" --host at --list --json
exits 0 "--list --json: exit 0"
is "$(jl 'o["point"] if o["complete"] else ""' | grep . | tr '\n' ' ')" "$A2 $A1 " "--list --json: one object per complete point, newest first"
OUT=$(printf '%s\n' "$OUT" | grep "\"$A1\"")
is "$(jl '[o["host"], o["complete"], o["kinds"], o["label"]]')" \
	'["at", true, ["db", "sysinfo"], "first point"]' "--list --json: host, complete, kinds, label"
like "$(jl 'o["time"]')" "^${A1:0:4}-${A1:4:2}-${A1:6:2}[T ]${A1:9:2}:${A1:11:2}:${A1:13:2}Z?$" "--list --json: the time of the point"
is "$(jl '[o["size"], o["plain_size"]]')" \
	"$(mf "$S/at/$A1/manifest.json" '[sum(p["size"] for p in m["parts"]), sum(p["plain_size"] for p in m["parts"])]')" \
	"--list --json: size and plain_size, the sums over the manifest's parts"
run chom-restore --from "$U" --host at --list --all --json
exits 0 "--list --all --json: exit 0"
is "$(jl '[o["point"], o["complete"]] + ([o["state"]] if not o["complete"] else [])' | tr '\n' ' ')" \
	"[\"$AI\", false, \"incomplete\"] [\"$A2\", true] [\"$A1\", true] [\"$AO\", false, \"incomplete\"] " \
	"--list --all --json: incomplete points with complete false and their state"
run chom-restore --from "$U" --host nosuchhost --list
exits 1 "--list of a host with no point: exit 1"
like "$ERR" "^chom-restore: no backup point of host nosuchhost in $U \(it has: .*\bat\b.*; use --host\)" \
	"--list of a host with no point: names the hosts present"
like "$ERR" "it has: .*\brt-gzip\b" "--list of a host with no point: every host"
run chom-restore --from "$U" --host nosuchhost -i "$KEY" --db --db-cmd 'cat >/dev/null'
exits 1 "--db of a host with no point: exit 1"
like "$ERR" 'no backup point of host nosuchhost .*it has: ' "--db of a host with no point: names the hosts present"
# A host with only incomplete points (parts, no manifest): said so, with
# how many and the newest, not sent to --host with its own name.
mkdir -p "$S/inc/20990101T000000Z" "$S/inc/20980101T000000Z"
cp "$S/at/$A2/db.sql.gz.age" "$S/inc/20990101T000000Z/"
INC_RE="^chom-restore: no complete backup point of host inc in $U: only 2 incomplete ones \(no manifest\), the newest 20990101T000000Z; see --list --all\$"
run chom-restore --from "$U" --host inc -i "$KEY" --db --db-cmd "cat > '$T/inc.sql'"
exits 1 "--db of a host with only incomplete points: exit 1"
like "$ERR" "$INC_RE" "--db of a host with only incomplete points: how many, the newest"
unlike "$ERR" 'use --host|it has:' "--db of a host with only incomplete points: no --host advice"
ok "--db of a host with only incomplete points: the command never started" test ! -e "$T/inc.sql"
run chom-restore --from "$U" --host inc --list
exits 1 "--list of a host with only incomplete points: exit 1"
like "$ERR" "$INC_RE" "--list of a host with only incomplete points: says so"
is "$OUT" "" "--list of a host with only incomplete points: no empty table"
run chom-restore --from "$U" --host inc --list --all
exits 0 "--list --all of a host with only incomplete points: exit 0"
is "$(printf '%s\n' "$OUT" | sed -n '2,$p' | cut -c1-17 | tr -d ' ' | tr '\n' ' ')" "20990101T000000Z 20980101T000000Z " \
	"--list --all of a host with only incomplete points: both, newest first"
run chom-restore --from "$U" --host nosuchhost --list
unlike "$ERR" 'it has: (.*, )?nosuchhost\b' "--list of a host with no point: not itself among the hosts present"
rm -rf "$S/inc"

# --- usage errors: exit 2, one line, the Try line -----------------------------------
run chom-restore --from "$U" --host at
usage_err "no action" 'no action'
run chom-restore --from "$U" --host at --list --verify
usage_err "two actions" 'one action'
run chom-restore --from "$U" --host at -i "$KEY" --db --sysinfo
usage_err "--db and --sysinfo" 'one action'
run chom-restore --from "$U" --host at -i "$KEY" --db --target "$T/tt"
usage_err "--target without --files or --config" 'target'
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --files
usage_err "--files without --target" 'target'
run chom-restore --from "$U" --host at -i "$KEY" --db "$A1" --at "$A2"
usage_err "POINT and --at" 'POINT|--at'
run chom-restore --from "$U" --host at -i "$KEY" --db 2024-13-99
usage_err "a bad POINT" 'not a point id'
run chom-restore --from "$U" --host at -i "$KEY" --db --at yesterday
usage_err "a bad --at" "--at"
run chom-restore --from "$U" --host at -i "$KEY" --db --at 2026-02-30T25:00Z
usage_err "an --at that is no time" "--at"
mkdir -p "$T/full"
printf 'keep me\n' >"$T/full/keep"
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --files --target "$T/full"
usage_err "--target not empty" 'not empty'
is "$(names "$T/full")" keep "--target not empty: left as it was"
run chom-restore --from "$U" --host rt-gzip --db --db-cmd "cat > '$T/noid.sql'"
usage_err "an encrypted point and no -i" 'encrypted'
ok "no -i: the command never started" test ! -e "$T/noid.sql"
run chom-restore --from "$U" --host rt-gzip --files --target "$T/noid-files"
usage_err "--files of an encrypted point and no -i" 'encrypted'
ok "--files, no -i: the target not made" test ! -e "$T/noid-files"
run chom-restore --from "$U" --host rt-gzip --verify
usage_err "--verify of an encrypted point and no -i" 'encrypted'
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --stream --no-spool
usage_err "--stream and --no-spool" 'stream'
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --verify --db-cmd cat
usage_err "--db-cmd with --verify" 'db-cmd'
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --files --target "$T/tt" --stream
usage_err "--stream with --files" 'stream'
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd cat --db-defaults "$T/my.cnf"
usage_err "--db-cmd and --db-defaults" 'db-defaults'
run chom-restore --host rt-gzip -i "$KEY" --verify
usage_err "no --from" 'from'
run chom-restore --from s3://bucket/x --host rt-gzip -i "$KEY" --verify
usage_err "an s3:// --from"
run chom-restore --from "$U" --host at --list "$A1"
usage_err "--list and a POINT" 'list'
run chom-restore --from "$U" --host at --verify --all
usage_err "--all without --list" 'all'
run chom-restore --from "$U" --host 'a/b' --list
usage_err "a --host with a slash" 'host'
run chom-restore --from "$U" --host at --list --bogus
usage_err "an unknown option" 'bogus'
run chom-restore --from "$U" --host at -i "$KEY" --db "$A1" "$A2"
usage_err "two POINTs" 'unexpected'
ok "usage errors made no target" test ! -e "$T/tt"

# --- --verify ----------------------------------------------------------------------
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --verify
exits 0 "--verify: exit 0"
is "$(printf '%s\n' "$OUT" | wc -l)" 4 "--verify: one line per part"
for n in db.sql.gz.age files.tar.gz.age config.tar.gz.age sysinfo.txt.age; do
	like "$(printf '%s\n' "$OUT" | grep -F " $n ")" "^$GZ ${n//./\\.} ok \([0-9.]+ (B|kB|MB)\)$" "--verify: $n ok"
done
is "$ERR" "" "--verify: silent on stderr"
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --verify --json
exits 0 "--verify --json: exit 0"
is "$(jl '[o["part"], o["action"], o["ok"]]' | LC_ALL=C sort | tr '\n' ' ')" \
	'["config.tar.gz.age", "verify", true] ["db.sql.gz.age", "verify", true] ["files.tar.gz.age", "verify", true] ["sysinfo.txt.age", "verify", true] ' \
	"--verify --json: one object per part, all ok"
# A copy of the point with one byte of its files part flipped.
V=$T/vstore
mkdir -p "$V/rt-gzip"
cp -a "$GZD" "$V/rt-gzip/"
flip "$V/rt-gzip/$GZ/files.tar.gz.age" $(($(stat -c %s "$V/rt-gzip/$GZ/files.tar.gz.age") / 2))
run chom-restore --from "file://$V" --host rt-gzip -i "$KEY" --verify
exits 1 "--verify, a flipped byte in the files part: exit 1"
is "$(printf '%s\n' "$OUT" | wc -l)" 4 "--verify, a flipped byte: still one line per part (all checked)"
like "$OUT" "$GZ files\.tar\.gz\.age FAILED" "--verify, a flipped byte: the files part FAILED"
is "$(printf '%s\n' "$OUT" | grep -c ' ok (')" 3 "--verify, a flipped byte: the three others ok"
like "$ERR" '^chom-restore: files\.tar\.gz\.age: ' "--verify, a flipped byte: the error names the part"
run chom-restore --from "file://$V" --host rt-gzip -i "$KEY" --verify --json
exits 1 "--verify --json, a flipped byte: exit 1"
is "$(jl 'o["part"] if not o["ok"] else None' | grep -v null)" files.tar.gz.age "--verify --json: the failed part"
like "$(jl 'o.get("error") or ""' | grep .)" 'files\.tar\.gz\.age' "--verify --json: its error"

# --- --files with a tampered part: the target left as it was -------------------------
# files_case DESC MUTATOR TAG: --files of a copy of the gzip point, its
# files part changed by MUTATOR FILE, fails and leaves the target as it
# was (a missing one missing, an empty one empty).
files_case() {
	local d=$1 m=$2 st=$T/fstore-$3 f
	mkdir -p "$st/rt-gzip"
	cp -a "$GZD" "$st/rt-gzip/"
	f=$st/rt-gzip/$GZ/files.tar.gz.age
	"$m" "$f"
	run chom-restore --from "file://$st" --host rt-gzip -i "$KEY" --files --target "$T/ft-$3"
	exits 1 "--files, $d: exit 1"
	like "$ERR" '^chom-restore: files\.tar\.gz\.age: ' "--files, $d: the part named"
	is "$OUT" "" "--files, $d: nothing on stdout"
	ok "--files, $d: a missing target stays missing" test ! -e "$T/ft-$3"
	mkdir "$T/fe-$3"
	run chom-restore --from "file://$st" --host rt-gzip -i "$KEY" --files --target "$T/fe-$3"
	exits 1 "--files, $d, an empty target: exit 1"
	is "$(names "$T/fe-$3")" "" "--files, $d: an empty target stays empty"
}
mid_flip() { flip "$1" $(($(stat -c %s "$1") / 2)); }
half() { truncate -s $(($(stat -c %s "$1") / 2)) "$1"; }
last_flip() { flip "$1" $(($(stat -c %s "$1") - 1)); }
# A flipped byte, and the manifest's size and SHA-256 made to match: age's
# authentication of the chunk is what is left to catch it.
fixed_flip() { mid_flip "$1" && fix_manifest "$(dirname "$1")" "$(basename "$1")"; }
files_case "a flipped byte in the middle" mid_flip flip
files_case "a truncated part" half half
files_case "the last byte flipped (the final MAC)" last_flip last
files_case "a flipped byte and the manifest made to match" fixed_flip fixed
like "$ERR" 'files\.tar\.gz\.age: .*chunk [0-9]+ failed authentication' \
	"--files, the manifest made to match: age's authentication fails"

# --- --files: a target below a directory that does not exist ------------------------
# Two levels below a missing directory, and a tampered part: every
# directory the run made is removed again; a parent that was there before
# stays, with what it held.
run chom-restore --from "file://$T/fstore-flip" --host rt-gzip -i "$KEY" --files --target "$T/nx/a/b"
exits 1 "--files, a flipped byte, a target two levels below a missing directory: exit 1"
like "$ERR" '^chom-restore: files\.tar\.gz\.age: ' "--files, a target below a missing directory: the part named"
ok "--files, a target below a missing directory: every directory made is removed again" test ! -e "$T/nx"
ok "--files, a target below a missing directory: the directory above kept" test -d "$T/fstore-flip"
mkdir -p "$T/nx2"
printf 'keep\n' >"$T/nx2/keep"
run chom-restore --from "file://$T/fstore-flip" --host rt-gzip -i "$KEY" --files --target "$T/nx2/a/b/"
exits 1 "--files, a flipped byte, a target below an existing directory: exit 1"
is "$(names "$T/nx2")" keep "--files, a target below an existing directory: only what was there before is left"
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --files --target "$T/nx3/a/b"
exits 0 "--files into a target two levels below a missing directory: exit 0"
is "$(tree_sig "$T/nx3/a/b/${FILES#/}")" "$(tree_sig "$FILES")" "--files into a new nested target: the tree as the original"

# --- --files: a missing manifest, a swapped part, the wrong identity ------------------
# fcase DESC TAG ERE ARG...: --files of the store $ST into a new target
# and into an empty one: exit 1, ERE on stderr, both left as they were.
fcase() {
	local d=$1 tag=$2 ere=$3
	shift 3
	run chom-restore --from "file://$ST" --host rt-gzip --files --target "$T/fx-$tag" "$@"
	exits 1 "--files, $d: exit 1"
	like "$ERR" "$ere" "--files, $d: says why"
	is "$OUT" "" "--files, $d: nothing on stdout"
	ok "--files, $d: the target not made" test ! -e "$T/fx-$tag"
	mkdir "$T/fy-$tag"
	run chom-restore --from "file://$ST" --host rt-gzip --files --target "$T/fy-$tag" "$@"
	exits 1 "--files, $d, an empty target: exit 1"
	is "$(names "$T/fy-$tag")" "" "--files, $d: an empty target stays empty"
}
ST=$T/fstore-nomf
mkdir -p "$ST/rt-gzip"
cp -a "$GZD" "$ST/rt-gzip/"
rm "$ST/rt-gzip/$GZ/manifest.json"
fcase "no manifest, by id" nomf-id "^chom-restore: point $GZ: no readable manifest" -i "$KEY" "$GZ"
fcase "no manifest, latest" nomf-latest \
	"^chom-restore: no complete backup point of host rt-gzip in file://$ST: only 1 incomplete one \(no manifest\), the newest $GZ" -i "$KEY"
run chom-backup --to "$U" --host swapsrc -r "$R" --files "$CONF"
exits 0 "a point whose files part is swapped into another"
ST=$T/fstore-swap
mkdir -p "$ST/rt-gzip"
cp -a "$GZD" "$ST/rt-gzip/"
cp "$S/swapsrc/$OUT/files.tar.gz.age" "$ST/rt-gzip/$GZ/"
fcase "the part of another point swapped in" swap \
	'^chom-restore: files\.tar\.gz\.age: ([0-9]+ bytes where the manifest lists [0-9]+ \(truncated\)|more than the [0-9]+ bytes the manifest lists|SHA-256 does not match)' -i "$KEY"
ST=$S
fcase "the wrong identity" wrongkey "no identity given matches: its parts are encrypted to $R; given: $R2" -i "$KEY2"
# The manifest without its recipients: age itself must refuse the key.
ST=$T/fstore-norecip
mkdir -p "$ST/rt-gzip"
cp -a "$GZD" "$ST/rt-gzip/"
python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
for p in m["parts"]:
    p.pop("recipients", None)
json.dump(m, open(sys.argv[1], "w"))
' "$ST/rt-gzip/$GZ/manifest.json"
fcase "the wrong identity, no recipients in the manifest" norecip '^chom-restore: files\.tar\.gz\.age: no identity matches any recipient' -i "$KEY2"

# --- --files: a hostile part ----------------------------------------------------------
# A tar.gz made by hand with an entry that would write outside the target,
# encrypted by the real age to the point's recipient and put in a copy of
# a real point, the manifest made to list it (size, SHA-256, plaintext
# size): refused, nothing written outside, the target left as it was.
OUTSIDE=$T/outside
mkdir -p "$OUTSIDE"
hostile() { # DESC TAG KIND
	local d=$1 tag=$2 kind=$3 pd
	ST=$T/hstore-$tag
	pd=$ST/rt-gzip/$GZ
	mkdir -p "$ST/rt-gzip"
	cp -a "$GZD" "$ST/rt-gzip/"
	python3 - "$T/hostile-$tag.tar.gz" "$kind" "$OUTSIDE" <<'EOF'
import io, sys, tarfile
out, kind, outside = sys.argv[1:4]
def reg(t, name, data=b"pwned\n"):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), 0o644
    t.addfile(ti, io.BytesIO(data))
def link(t, name, target, type=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = type, target
    t.addfile(ti)
with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
    reg(t, "first.txt", b"harmless\n")
    if kind == "dotdot":
        reg(t, "../escape")
        reg(t, "sub/../../escape2")
    elif kind == "absolute":
        reg(t, outside + "/absolute")
    elif kind == "symlink":
        link(t, "link", outside)
        reg(t, "link/file")
    elif kind == "symlink-dir":
        link(t, "d", outside)
        ti = tarfile.TarInfo("d")
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        t.addfile(ti)
        reg(t, "d/file")
    elif kind == "hardlink":
        link(t, "hl", outside + "/target", tarfile.LNKTYPE)
    reg(t, "last.txt", b"harmless\n")
EOF
	age -r "$R" -o "$pd/files.tar.gz.age" "$T/hostile-$tag.tar.gz"
	python3 -c '
import gzip, hashlib, json, sys
d, tgz = sys.argv[1], sys.argv[2]
m = json.load(open(d + "/manifest.json"))
data = open(d + "/files.tar.gz.age", "rb").read()
for p in m["parts"]:
    if p["name"] == "files.tar.gz.age":
        p["size"] = len(data)
        p["sha256"] = hashlib.sha256(data).hexdigest()
        p["plain_size"] = len(gzip.open(tgz).read())
json.dump(m, open(d + "/manifest.json", "w"))
' "$pd" "$T/hostile-$tag.tar.gz"
	run chom-restore --from "file://$ST" --host rt-gzip -i "$KEY" --verify
	exits 0 "a hostile part, $d: a valid part as far as its checks go (--verify)"
	mkdir -p "$T/hx-$tag"
	run chom-restore --from "file://$ST" --host rt-gzip -i "$KEY" --files --target "$T/hx-$tag/t"
	exits 1 "a hostile part, $d: --files exits 1"
	like "$ERR" "^chom-restore: files\.tar\.gz\.age: refused entry '[^']+': " "a hostile part, $d: the entry named and refused"
	is "$OUT" "" "a hostile part, $d: nothing on stdout"
	is "$(names "$T/hx-$tag")" "" "a hostile part, $d: the target not made"
	mkdir "$T/hx-$tag/t"
	run chom-restore --from "file://$ST" --host rt-gzip -i "$KEY" --files --target "$T/hx-$tag/t"
	exits 1 "a hostile part, $d, an empty target: exit 1"
	is "$(names "$T/hx-$tag/t")" "" "a hostile part, $d: an empty target stays empty"
	is "$(names "$OUTSIDE")" "" "a hostile part, $d: nothing written outside the target"
	ok "a hostile part, $d: nothing beside the target" test ! -e "$T/hx-$tag/escape" -a ! -e "$T/escape" -a ! -e "$T/escape2"
}
hostile "an entry ../escape" dotdot dotdot
like "$ERR" "refused entry '\.\./escape': '\.\.' in path" "a hostile part, ../escape: says '..'"
hostile "an absolute path" abs absolute
like "$ERR" "refused entry '$OUTSIDE/absolute': absolute path" "a hostile part, an absolute path: says so"
hostile "a file through a symlink to outside" symlink symlink
like "$ERR" "refused entry 'link/file': path passes through a symlink" "a hostile part, link/file: passes through a symlink"
hostile "a directory over a symlink to outside" symlink-dir symlink-dir
hostile "a hard link to outside" hardlink hardlink
like "$ERR" "refused entry 'hl': hard link" "a hostile part, a hard link to outside: refused"

# --- a decompression error ---------------------------------------------------------
# --no-encrypt points, a byte of the compressed part flipped and the
# manifest's size and SHA-256 made to match: only the decompressor can
# tell. Nothing reaches the command or the target.
for c in gzip zstd; do
	run chom-backup --to "$U" --host "dc-$c" --no-encrypt --compress "$c" --db --db-cmd "cat '$SQL'" --files "$FILES"
	exits 0 "$c, --no-encrypt: a point to damage"
	DP=$S/dc-$c/$OUT
	x=gz
	[ "$c" = zstd ] && x=zst
	fixed_flip "$DP/db.sql.$x"
	fixed_flip "$DP/files.tar.$x"
	run chom-restore --from "$U" --host "dc-$c" --db --db-cmd "touch '$T/dc-started-$c'; cat > '$T/dc-$c.sql'"
	exits 1 "$c, a flipped byte the manifest matches: --db exits 1"
	like "$ERR" "^chom-restore: db\.sql\.$x: decompression error: $c: " "$c, a flipped byte: --db names the part and says decompression error"
	is "$OUT" "" "$c, a flipped byte: --db prints nothing on stdout"
	ok "$c, a flipped byte: the command never started" test ! -e "$T/dc-started-$c"
	run chom-restore --from "$U" --host "dc-$c" --db --db-cmd "touch '$T/dc-started-$c'; cat > '$T/dc-$c.sql'" --no-spool
	exits 1 "$c, a flipped byte, --no-spool: exit 1"
	like "$ERR" "^chom-restore: db\.sql\.$x: decompression error: $c: " "$c, a flipped byte, --no-spool: decompression error"
	ok "$c, a flipped byte, --no-spool: the command never started" test ! -e "$T/dc-started-$c"
	run chom-restore --from "$U" --host "dc-$c" --files --target "$T/dc-files-$c"
	exits 1 "$c, a flipped byte: --files exits 1"
	like "$ERR" "^chom-restore: files\.tar\.$x: decompression error: $c: " "$c, a flipped byte: --files says decompression error"
	ok "$c, a flipped byte: --files made no target" test ! -e "$T/dc-files-$c"
	run chom-restore --from "$U" --host "dc-$c" --verify
	exits 1 "$c, a flipped byte: --verify exits 1"
	is "$(printf '%s\n' "$OUT" | grep -c FAILED)" 2 "$c, a flipped byte: --verify fails both parts"
done

# --- several -i ----------------------------------------------------------------------
run chom-restore --from "$U" --host rt-gzip -i "$KEY2" -i "$KEY" --db --db-cmd "cat > '$T/db-two-keys.sql'"
exits 0 "-i of the wrong identity, then -i of the right one: exit 0"
ok "-i wrong, -i right: the dump back (cmp)" cmp -s "$SQL" "$T/db-two-keys.sql"
run chom-restore --from "$U" --host rt-gzip -i "$KEY" -i "$KEY2" --files --target "$T/rf-two-keys"
exits 0 "-i right, -i wrong, --files: exit 0"
KEY3=$T/key3.txt
R3=$(chom-backup --keygen "$KEY3")
run chom-restore --from "$U" --host rt-gzip -i "$KEY2" -i "$KEY3" --db --db-cmd "touch '$T/started-2wrong'; cat >/dev/null"
exits 1 "two -i, both wrong: exit 1"
like "$ERR" "^chom-restore: point $GZ: no identity given matches: its parts are encrypted to $R; given: $R2, $R3$" \
	"two -i, both wrong: names the recipients and the identities given"
ok "two -i, both wrong: the command never started" test ! -e "$T/started-2wrong"
run chom-restore --from "file://$T/fstore-norecip" --host rt-gzip -i "$KEY2" -i "$KEY3" --db --db-cmd "touch '$T/started-2wrong'; cat >/dev/null"
exits 1 "two -i, both wrong, no recipients in the manifest: exit 1"
like "$ERR" '^chom-restore: db\.sql\.gz\.age: no identity matches any recipient' "two -i, both wrong, no recipients: age refuses, the part named"
ok "two -i, both wrong, no recipients: the command never started" test ! -e "$T/started-2wrong"

# --- progress on a terminal ------------------------------------------------------------
# Under a pseudo-terminal (script(1)) --db shows the bytes, the rate and
# what is left; without one, stderr stays empty.
run script -qec "chom-restore --from '$U' --host rt-gzip -i '$KEY' --db --db-cmd 'cat > $T/db-tty.sql'" /dev/null
exits 0 "--db on a terminal: exit 0"
like "$OUT" 'db\.sql\.gz\.age: [0-9.]+ of [0-9.]+ MiB \([0-9]+%\), [0-9.]+ MiB/s, [0-9]+s, about [0-9]+s left' \
	"--db on a terminal: progress with bytes, rate and time left"
like "$OUT" "$GZ" "--db on a terminal: the point printed"
ok "--db on a terminal: the dump back (cmp)" cmp -s "$SQL" "$T/db-tty.sql"
run script -qec "chom-restore -q --from '$U' --host rt-gzip -i '$KEY' --db --db-cmd 'cat > /dev/null'" /dev/null
unlike "$OUT" 'MiB' "--db -q on a terminal: no progress"
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd "cat > /dev/null"
exits 0 "--db not on a terminal: exit 0"
is "$ERR" "" "--db not on a terminal: stderr empty"

# --- --db-cmd that fails -------------------------------------------------------------
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd 'exit 3'
exits 1 "--db-cmd 'exit 3': exit 1"
like "$ERR" '--db-cmd: exited with status 3$' "--db-cmd 'exit 3': exited with status 3"
is "$OUT" "" "--db-cmd 'exit 3': nothing on stdout"
# A command that reads the terminal (mysql -p at an operator's shell) fails
# at once, for the same reason as chom-backup's dump (chom-backup.t).
# -q: the command writes its message in pieces, and a progress line drawn
# between two of them would split it.
if command -v script >/dev/null; then
	for m in "" --no-spool --stream; do
		run timeout 30 script -qec "chom-restore -q --from '$U' --host rt-gzip -i '$KEY' --db --db-cmd 'cat /dev/tty >/dev/null' $m" /dev/null
		exits 1 "--db-cmd reading the terminal ${m:-(spool)}: exit 1, not stopped"
		like "$OUT" 'cat: /dev/tty: No such device' "--db-cmd reading the terminal ${m:-(spool)}: its error shown"
	done
else
	skip "--db-cmd reading the terminal" "no script(1)"
fi
# A command that reads all its input and then fails (mysql after an SQL
# error): its own status, not 127 of a second wait.
for m in "" --no-spool --stream; do
	run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd 'cat >/dev/null; exit 3' $m
	exits 1 "--db-cmd 'cat; exit 3' ${m:-(spool)}: exit 1"
	like "$ERR" '--db-cmd: exited with status 3$' "--db-cmd 'cat; exit 3' ${m:-(spool)}: exited with status 3"
done
run chom-restore --from "$U" --host at -i "$KEY" --db "$A1" --db-cmd 'exit 3'
exits 1 "--db-cmd 'exit 3', a 10-byte dump: exit 1"
like "$ERR" '--db-cmd: exited with status 3$' "--db-cmd 'exit 3', a 10-byte dump: exited with status 3"
for m in "" --no-spool --stream; do
	run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd 'head -c 10 >/dev/null' $m
	exits 1 "--db-cmd 'head -c 10' ${m:-(spool)}, a 3 MB dump: exit 1"
	like "$ERR" 'before reading all input' "--db-cmd 'head -c 10' ${m:-(spool)}: before reading all input"
	is "$OUT" "" "--db-cmd 'head -c 10' ${m:-(spool)}: nothing on stdout"
done
like "$ERR" '--stream: the database may hold part of the dump' "--stream that failed: the warning"
# With the spool as its stdin, a command that stops early is seen by its
# offset, however small the dump. Through a pipe (--no-spool, --stream) it
# is seen only when a write finds the pipe closed: a dump that fits in the
# pipe is not (documented in chom-restore(1)), so the 10-byte case is the
# spool's alone.
for m in ""; do
	run chom-restore --from "$U" --host at -i "$KEY" --db "$A1" --db-cmd 'head -c 3 >/dev/null' $m
	exits 1 "--db-cmd 'head -c 3' ${m:-(spool)}, a 10-byte dump: exit 1"
	like "$ERR" 'before reading all input' "--db-cmd 'head -c 3' ${m:-(spool)}, a 10-byte dump: before reading all input"
	is "$OUT" "" "--db-cmd 'head -c 3' ${m:-(spool)}, a 10-byte dump: nothing on stdout"
done
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd 'cat >/dev/null; kill -9 $$'
exits 1 "--db-cmd killed by a signal: exit 1"
like "$ERR" 'db-cmd.*(signal 9|killed)' "--db-cmd killed: says so"

# --- a spool in a directory with no room ---------------------------------------------
SP=$T/spool
mkdir -p "$SP"
run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd "cat > '$T/db-spool.sql'" --spool-dir "$SP" -v
exits 0 "--spool-dir: exit 0"
ok "--spool-dir: the dump back (cmp)" cmp -s "$SQL" "$T/db-spool.sql"
is "$(names "$SP")" "" "--spool-dir: nothing left in the spool directory"
unlike "$ERR" 'no room' "--spool-dir with room: no note"
TINY=$T/tiny
mkdir -p "$TINY"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=2m tmpfs "$TINY" 2>/dev/null; then
	at_exit "umount '$TINY'"
	run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd "cat > '$T/db-tiny.sql'" --spool-dir "$TINY" -v
	exits 0 "a spool with no room: exit 0"
	like "$ERR" "$TINY has no room for the $(stat -c %s "$SQL") bytes of db\.sql\.gz\.age: verifying it in a first read instead" \
		"a spool with no room: -v says it reads twice"
	ok "a spool with no room: the dump back (cmp)" cmp -s "$SQL" "$T/db-tiny.sql"
	run chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd "cat > '$T/db-tiny-q.sql'" --spool-dir "$TINY"
	exits 0 "a spool with no room, without -v: exit 0"
	unlike "$ERR" 'no room' "a spool with no room, without -v and not on a tty: no note"
else
	TINY=
	skip "a spool with no room" "mount -t tmpfs needs root"
fi

# --- a real MariaDB ------------------------------------------------------------------
# One server. State A is backed up twice: gzip by the default mysqldump
# command (--db-defaults, all databases), zstd by mariadb-dump --databases
# shop over the socket; state B once (the point another part is taken
# from); then the server is changed to state C. Every damaged restore into
# the live server must fail with the part named and leave C as it was,
# proven by CHECKSUM TABLE; every good one must give back A exactly.
if mariadb_start; then
	SOCK=$MARIADB_DIR/sock
	# sqlm ARG...: the mariadb client as root over the socket, bounded.
	sqlm() {
		timeout 60 mariadb --no-defaults --default-character-set=utf8mb4 \
			--socket="$SOCK" -u root "$@"
	}
	sqlm 2>"$T/m.err" <<'EOF'
CREATE DATABASE shop;
USE shop;
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2),
	data BLOB) ENGINE=InnoDB;
CREATE TABLE customers (id INT PRIMARY KEY,
	name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
	email VARCHAR(100) NOT NULL, since DATE) ENGINE=InnoDB;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY,
	customer_id INT NOT NULL, total DECIMAL(12,2) NOT NULL, note TEXT,
	CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id)
		REFERENCES customers (id)) ENGINE=InnoDB;
CREATE TABLE blobs (id INT PRIMARY KEY, payload LONGBLOB) ENGINE=InnoDB;
INSERT INTO customers
	SELECT seq, CONCAT('customer ', seq, ' é'), CONCAT('c', seq, '@example.test'),
		'2024-01-01' + INTERVAL (seq % 365) DAY
	FROM seq_1_to_1000;
INSERT INTO orders (customer_id, total, note)
	SELECT 1 + (seq * 7919) % 1000, ((seq * 104729) % 100000) / 100,
		IF(seq % 10 = 0, NULL, CONCAT('order ', seq, ' \t \'q\' \\ "d"'))
	FROM seq_1_to_5000;
EOF
	ok "MariaDB: schema and rows created" test $? -eq 0
	python3 -c '
import random
r = random.Random(7)
print("INSERT INTO shop.items VALUES")
print(",\n".join("(%d, %s, %.2f, 0x%s)" % (i, "\x27item %d\x27" % i, r.random() * 1000,
    bytes(r.randrange(256) for _ in range(64)).hex()) for i in range(3000)) + ";")
blobs = {1: bytes(range(256)) * 4, 2: b"\x00\x27\x5c\xff\x22\n\r\x1a\t%_" * 500,
         3: r.randbytes(300000), 4: b"", 5: None, 6: b"ends with a backslash \x5c"}
for i, b in blobs.items():
    print("INSERT INTO shop.blobs VALUES (%d, %s);" % (i, "NULL" if b is None else "X\x27%s\x27" % b.hex()))
' | sqlm 2>>"$T/m.err"
	ok "MariaDB: items and BLOBs inserted" test $? -eq 0
	[ -s "$T/m.err" ] && diag "$(head -5 "$T/m.err")"
	# mdb_sums: CHECKSUM TABLE of every table of shop (an error when the
	# database is not there).
	mdb_sums() {
		sqlm -N -e "CHECKSUM TABLE shop.blobs, shop.customers, shop.items, shop.orders" 2>&1
	}
	mdb_counts() {
		sqlm -N -e "SELECT CONCAT_WS(' ', (SELECT COUNT(*) FROM shop.blobs),
			(SELECT COUNT(*) FROM shop.customers), (SELECT COUNT(*) FROM shop.items),
			(SELECT COUNT(*) FROM shop.orders))" 2>&1
	}
	is "$(mdb_counts)" "6 1000 3000 5000" "MariaDB: 6 BLOBs, 1000 customers, 3000 items, 5000 orders"
	DEF=$T/my.cnf
	printf '[client]\nuser=root\nsocket=%s\n' "$SOCK" >"$DEF"
	chmod 600 "$DEF"
	MS=$T/mdb
	run chom-backup --to "file://$MS" --host mdb -r "$R" --db --db-defaults "$DEF"
	exits 0 "MariaDB: chom-backup --db --db-defaults (mysqldump, gzip)"
	MA=$OUT
	run chom-backup --to "file://$MS" --host mdbz -r "$R" --compress zstd --db \
		--db-cmd "mariadb-dump --no-defaults --socket='$SOCK' -u root --single-transaction --routines --triggers --databases shop"
	exits 0 "MariaDB: chom-backup --db --db-cmd mariadb-dump --compress zstd"
	ok "MariaDB: the zstd point's part is db.sql.zst.age" test -f "$MS/mdbz/$OUT/db.sql.zst.age"
	SUMS_A=$(mdb_sums)
	is "$(printf '%s\n' "$SUMS_A" | grep -cE '^shop\.[a-z]+[[:space:]]+[0-9]+$')" 4 \
		"MariaDB: CHECKSUM TABLE of the four tables (state A)"
	sqlm -e "UPDATE shop.items SET price = price + 1 WHERE id < 500;
		DELETE FROM shop.orders WHERE id > 4500;" 2>>"$T/m.err"
	run chom-backup --to "file://$MS" --host mdbb -r "$R" --db --db-defaults "$DEF"
	exits 0 "MariaDB: a point of state B"
	MB=$OUT
	SUMS_B=$(mdb_sums)
	sqlm -e "UPDATE shop.customers SET email = CONCAT('x', email) WHERE id % 3 = 0;
		INSERT INTO shop.items VALUES (99999, 'after the backups', 1.00, NULL);
		DELETE FROM shop.blobs WHERE id = 3;" 2>>"$T/m.err"
	SUMS_C=$(mdb_sums)
	ok "MariaDB: states A, B and C differ" test "$SUMS_A" != "$SUMS_B" -a "$SUMS_A" != "$SUMS_C" -a "$SUMS_B" != "$SUMS_C"
	is "$(mdb_counts)" "5 1000 3001 4500" "MariaDB: state C"
	ok "MariaDB: the gzip point's part is db.sql.gz.age" test -f "$MS/mdb/$MA/db.sql.gz.age"
	# The restore command: the client over the socket, leaving a mark when
	# it starts.
	RCMD="mariadb --no-defaults --socket='$SOCK' -u root"

	# db_case DESC TAG ERE MUTATOR [ARG...]: --db of a copy of the gzip
	# point of state A, its part changed by MUTATOR FILE, into the live
	# server in state C: exit 1, ERE on stderr, the command never started,
	# CHECKSUM TABLE still C.
	db_case() {
		local d=$1 tag=$2 ere=$3 mut=$4 st=$T/dstore-$2
		shift 4
		mkdir -p "$st/mdb"
		cp -a "$MS/mdb/$MA" "$st/mdb/"
		"$mut" "$st/mdb/$MA/db.sql.gz.age"
		local spool=(--spool-dir "$SP") key=$KEY
		# --memory: the default spool (memory), no --spool-dir; --key
		# FILE: that identity instead of the right one.
		while [ $# -gt 0 ]; do
			case $1 in
			--memory) spool=() ;;
			--key) key=$2 && shift ;;
			*) break ;;
			esac
			shift
		done
		run chom-restore --from "file://$st" --host mdb -i "$key" --db \
			--db-cmd "touch '$T/started-$tag'; exec $RCMD" "${spool[@]}" "$@"
		exits 1 "MariaDB, $d: exit 1"
		like "$ERR" "$ere" "MariaDB, $d: says why, naming the part"
		is "$OUT" "" "MariaDB, $d: nothing on stdout"
		ok "MariaDB, $d: the command never started" test ! -e "$T/started-$tag"
		is "$(mdb_sums)" "$SUMS_C" "MariaDB, $d: the database untouched (CHECKSUM TABLE)"
	}
	swap() { cp "$MS/mdbb/$MB/db.sql.gz.age" "$1"; }
	db_case "a flipped byte in the middle" flip '^chom-restore: db\.sql\.gz\.age: ' mid_flip
	db_case "a flipped byte in the middle, --no-spool" flip2 '^chom-restore: db\.sql\.gz\.age: ' mid_flip --no-spool
	db_case "a truncated part" half \
		'^chom-restore: db\.sql\.gz\.age: [0-9]+ bytes where the manifest lists [0-9]+ \(truncated\)' half
	db_case "a truncated part, --no-spool" half2 '^chom-restore: db\.sql\.gz\.age: .*truncated' half --no-spool
	db_case "a flipped byte, the manifest made to match" fixed \
		'^chom-restore: db\.sql\.gz\.age: .*chunk [0-9]+ failed authentication' fixed_flip
	db_case "a flipped byte, the manifest made to match, --no-spool" fixed2 \
		'^chom-restore: db\.sql\.gz\.age: .*failed authentication' fixed_flip --no-spool
	db_case "the last byte flipped" last '^chom-restore: db\.sql\.gz\.age: ' last_flip
	db_case "the part of another point swapped in" swap \
		'^chom-restore: db\.sql\.gz\.age: (SHA-256 does not match|[0-9]+ bytes where the manifest lists|more than the [0-9]+ bytes the manifest lists)' swap
	# The default mode: the spool in memory, no --spool-dir.
	db_case "a flipped byte, the memory spool" mflip '^chom-restore: db\.sql\.gz\.age: ' mid_flip --memory
	db_case "a flipped byte, the manifest made to match, the memory spool" mfixed \
		'^chom-restore: db\.sql\.gz\.age: .*chunk [0-9]+ failed authentication' fixed_flip --memory
	db_case "a truncated part, the memory spool" mhalf \
		'^chom-restore: db\.sql\.gz\.age: [0-9]+ bytes where the manifest lists [0-9]+ \(truncated\)' half --memory
	db_case "the part of another point, the memory spool" mswap \
		'^chom-restore: db\.sql\.gz\.age: (SHA-256 does not match|[0-9]+ bytes where the manifest lists|more than the [0-9]+ bytes the manifest lists)' swap --memory
	# The wrong identity where the manifest does not say the recipients:
	# age refuses it, in the default mode too.
	nore() {
		python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
for p in m["parts"]:
    p.pop("recipients", None)
json.dump(m, open(sys.argv[1], "w"))
' "$(dirname "$1")/manifest.json"
	}
	db_case "no recipients in the manifest, the wrong identity, the memory spool" mnore \
		'^chom-restore: db\.sql\.gz\.age: no identity matches any recipient' nore --memory --key "$KEY2"
	ok "the swapped-in part is a good part of its own point" cmp -s "$MS/mdbb/$MB/db.sql.gz.age" "$T/dstore-swap/mdb/$MA/db.sql.gz.age"
	# The wrong identity (a second key of chom-backup --keygen's).
	run chom-restore --from "file://$MS" --host mdb -i "$KEY2" --db --db-cmd "touch '$T/started-k2'; exec $RCMD"
	exits 1 "MariaDB, the wrong identity: exit 1"
	like "$ERR" "no identity given matches: its parts are encrypted to $R" "MariaDB, the wrong identity: says which recipient"
	ok "MariaDB, the wrong identity: the command never started" test ! -e "$T/started-k2"
	is "$(mdb_sums)" "$SUMS_C" "MariaDB, the wrong identity: the database untouched"
	# No manifest: by id, and as latest (then no complete point at all).
	st=$T/dstore-nomf
	mkdir -p "$st/mdb"
	cp -a "$MS/mdb/$MA" "$st/mdb/"
	rm "$st/mdb/$MA/manifest.json"
	run chom-restore --from "file://$st" --host mdb -i "$KEY" --db --db-cmd "touch '$T/started-nomf'; exec $RCMD" "$MA"
	exits 1 "MariaDB, no manifest, by id: exit 1"
	like "$ERR" "^chom-restore: point $MA: no readable manifest" "MariaDB, no manifest: no readable manifest"
	run chom-restore --from "file://$st" --host mdb -i "$KEY" --db --db-cmd "touch '$T/started-nomf'; exec $RCMD"
	exits 1 "MariaDB, no manifest, latest: exit 1"
	like "$ERR" "^chom-restore: no complete backup point of host mdb in file://$st: only 1 incomplete one \(no manifest\), the newest $MA; see --list --all\$" \
		"MariaDB, no manifest, latest: the host has only an incomplete point"
	unlike "$ERR" 'use --host' "MariaDB, no manifest, latest: not sent to --host mdb"
	ok "MariaDB, no manifest: the command never started" test ! -e "$T/started-nomf"
	is "$(mdb_sums)" "$SUMS_C" "MariaDB, no manifest: the database untouched"

	# Good restores. Over the changed database, by the default command
	# with --db-defaults:
	run chom-restore --from "file://$MS" --host mdb -i "$KEY" --db --db-defaults "$DEF"
	exits 0 "MariaDB, gzip, the default mysql command with --db-defaults: exit 0"
	is "$OUT" "$MA" "MariaDB, gzip: prints the point"
	is "$(mdb_sums)" "$SUMS_A" "MariaDB, gzip, over the changed database: CHECKSUM TABLE as at the backup"
	is "$(mdb_counts)" "6 1000 3000 5000" "MariaDB, gzip: the rows as at the backup"
	run chom-restore --from "file://$MS" --host mdbb -i "$KEY" --db --db-defaults "$DEF"
	exits 0 "MariaDB, the point of state B: exit 0"
	is "$(mdb_sums)" "$SUMS_B" "MariaDB, the point of state B: CHECKSUM TABLE of B"
	# fresh_db DESC HOST ARG...: shop dropped, then --db of HOST's point
	# gives back A.
	fresh_db() {
		local d=$1 h=$2
		shift 2
		sqlm -e 'DROP DATABASE shop' 2>>"$T/m.err"
		unlike "$(mdb_sums)" '^shop\.blobs[[:space:]]+[0-9]' "MariaDB, $d: shop dropped first"
		run chom-restore --from "file://$MS" --host "$h" -i "$KEY" --db --db-cmd "$RCMD" "$@"
		exits 0 "MariaDB, $d: exit 0"
		is "$(mdb_sums)" "$SUMS_A" "MariaDB, $d: into a fresh database, CHECKSUM TABLE as at the backup"
	}
	fresh_db "zstd (mariadb-dump --databases)" mdbz
	fresh_db "gzip (mysqldump --all-databases)" mdb
	fresh_db "gzip, --no-spool" mdb --no-spool
	fresh_db "gzip, --stream" mdb --stream
	fresh_db "zstd, --stream" mdbz --stream
	if [ -n "$TINY" ]; then
		fresh_db "gzip, a spool with no room" mdb --spool-dir "$TINY" -v
		like "$ERR" "$TINY has no room for the [0-9]+ bytes of db\.sql\.gz\.age: verifying it in a first read instead" \
			"MariaDB, a spool with no room: -v says so"
		fresh_db "zstd, a spool with no room" mdbz --spool-dir "$TINY" -v
		like "$ERR" "$TINY has no room for the [0-9]+ bytes of db\.sql\.zst\.age" "MariaDB, zstd, a spool with no room: -v says so"
	else
		skip "MariaDB, a spool with no room" "no small tmpfs"
	fi
	# --stream and a part that fails late: the database has had part of
	# the dump, and the tool says so.
	db_stream=$T/dstore-stream
	mkdir -p "$db_stream/mdb"
	cp -a "$MS/mdb/$MA" "$db_stream/mdb/"
	fixed_flip "$db_stream/mdb/$MA/db.sql.gz.age"
	run chom-restore --from "file://$db_stream" --host mdb -i "$KEY" --db --db-cmd "$RCMD" --stream
	exits 1 "MariaDB, --stream, a damaged part: exit 1"
	like "$ERR" 'db\.sql\.gz\.age: .*failed authentication' "MariaDB, --stream, a damaged part: the part named"
	like "$ERR" '--stream: the database may hold part of the dump' "MariaDB, --stream, a damaged part: the warning"
	# The same command after all: a good restore of the intact point.
	fresh_db "gzip, after all" mdb
else
	ok "mariadbd starts" false
fi

# --- SIGTERM during --db and --files ------------------------------------------------
# term_db DESC TAG HOST MODE...: --db into `sleep 3.TAG` (which reads
# nothing), TERM once the command runs and the tool has had the time to
# fill its stdin: exit 143 within 1.5 s, no child left.
term_db() {
	local d=$1 tag=$2 host=$3 pid t1 rc
	shift 3
	chom-restore --from "$U" --host "$host" -i "$KEY" --db --db-cmd "sleep 3.$tag" \
		--spool-dir "$SP" "$@" >"$T/term.out" 2>"$T/term.err" &
	pid=$!
	for _ in $(seq 1 100); do
		running "sleep 3\.$tag" && break
		sleep 0.05
	done
	ok "$d: the command runs" running "sleep 3\.$tag"
	if [ "$*" = "" ]; then
		# The spool: an unnamed file of mode 0600 in the spool dir.
		is "$(find "/proc/$pid/fd" -lname "$SP/*" -exec stat -L -c %a {} \; 2>/dev/null | sort -u)" 600 \
			"$d: the spool is a file of mode 0600"
		is "$(names "$SP")" "" "$d: the spool has no name"
	fi
	# Blocked writing into a full pipe, or waiting for the command.
	sleep 0.3
	t1=$(date +%s%N)
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	is "$rc" 143 "$d: TERM: exit 143"
	num_ok "$d: TERM: it ends at once" "$(($(date +%s%N) - t1)) < 1500000000"
	ok "$d: TERM: no child left" gone "sleep 3\.$tag"
	reap "sleep 3\.$tag"
	is "$(cat "$T/term.out")" "" "$d: TERM: nothing on stdout"
}
term_db "--db, the spool fed to a command that reads nothing" 01 rt-gzip
term_db "--db, a 10-byte dump" 02 at
term_db "--db --no-spool" 03 rt-gzip --no-spool
term_db "--db --stream" 04 rt-gzip --stream

# Without --spool-dir the spool of a small dump is memory: a memfd, never
# a file on a disk.
chom-restore --from "$U" --host rt-gzip -i "$KEY" --db --db-cmd "sleep 3.07" >/dev/null 2>&1 &
mpid=$!
for _ in $(seq 1 100); do
	running "sleep 3\.07" && break
	sleep 0.05
done
like "$(ls -l "/proc/$mpid/fd" 2>/dev/null)" 'memfd:chom-restore-spool' \
	"the default spool of a small dump is memory (a memfd)"
kill -TERM "$mpid" 2>/dev/null
wait "$mpid"
is "$?" 143 "the memory spool, TERM: exit 143"
reap "sleep 3\.07"
term_db "--db --no-spool, a 10-byte dump" 05 at --no-spool

# --files: a part of 120 MB, stopped (SIGSTOP) as soon as its
# .chom-restore-PID directory appears, then TERM and CONT.
mkdir -p "$T/big"
head -c 120000000 /dev/zero >"$T/big/zero"
run chom-backup --to "$U" --host bigf --no-encrypt --compress none --files "$T/big"
exits 0 "a point with a 120 MB files part"
rm -rf "$T/big"
# term_files DESC DIR: TERM during --files into DIR leaves it as it was.
term_files() {
	local d=$1 dir=$2 pid before rc
	before=$(names "$dir" 2>&1)
	chom-restore --from "$U" --host bigf --files --target "$dir" >"$T/term.out" 2>"$T/term.err" &
	pid=$!
	for _ in $(seq 1 1000); do
		extracting "$dir" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	kill -STOP "$pid" 2>/dev/null
	ok "$d: caught while extracting" extracting "$dir"
	kill -TERM "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	is "$rc" 143 "$d: TERM: exit 143"
	like "$(cat "$T/term.err")" 'interrupted' "$d: TERM: says interrupted"
	is "$(names "$dir" 2>&1)" "$before" "$d: TERM: the target as it was (no .chom-restore-* left)"
}
term_files "--files into a new directory" "$T/tf-new"
ok "--files into a new directory, TERM: the directory removed again" test ! -e "$T/tf-new"
mkdir "$T/tf-empty"
term_files "--files into an empty directory" "$T/tf-empty"
run chom-restore --from "$U" --host bigf --files --target "$T/tf-empty"
exits 0 "--files of the 120 MB part after all: exit 0"
is "$(stat -c %s "$T/tf-empty/${T#/}/big/zero" 2>&1)" 120000000 "--files of the 120 MB part: the file whole"
rm -rf "$T/tf-empty" "$S/bigf"

diag "chom-restore.t ran in $(($(date +%s) - T0)) s"
done_testing

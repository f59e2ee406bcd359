#!/usr/bin/env bash
# chom-backup (SPEC.md section 4, issue 4): usage errors; --keygen; a full
# backup (--db through --db-cmd, --files, --config, --sysinfo, --label) to
# a file:// target, judged by the real `age`, `gunzip`, `zstd`, `tar`,
# `sha256sum` and python3's json, files and configuration compared entry by
# entry after `age -d | tar -x`; --json's parts; zstd, none, --no-encrypt,
# --passphrase-file; two targets in one pass; dump commands that fail, are
# killed or print nothing; --metrics-dir (series per kind and target, merged
# across runs, judged by promtool; 8 long targets); --db-defaults quoted for
# sh; the lock; --prune on points made by hand; a real MariaDB dumped with
# the default mysqldump command (and mariadb-dump when PATH has no
# mysqldump) and restored into fresh servers (gzip and zstd); --all; the
# progress on a terminal (a pty) and silence without one.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/servers.sh"

TOOL=chom-backup
# names DIR: the names in DIR, sorted, on one line, dot files included.
names() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'; }
# no_point_left DESC STORE HOST: HOST holds no point directory and the
# store no file but the lock (no manifest, no part, no temporary file).
no_point_left() {
	is "$(find "$2/$3" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)" 0 "$1: no point directory"
	is "$(find "$2" -type f ! -name .lock 2>/dev/null | wc -l)" 0 "$1: no manifest, part or temporary file"
}
num_ok() {
	if awk "BEGIN { exit !($2) }"; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}
ID_RE='^[0-9]{8}T[0-9]{6}Z$'
T0=$(date +%s)

# --- --help, --version ----------------------------------------------------
run chom-backup --help
exits 0 "--help exits 0"
like "$OUT" '^Usage: chom-backup' "--help prints usage on stdout"
is "$ERR" "" "--help: nothing on stderr"
for o in --to --host --db --db-cmd --db-defaults --files --config --sysinfo \
	--all --recipient --passphrase-file --no-encrypt --keygen --compress \
	--level --threads --label --metrics-dir --prune --keep-last \
	--keep-within --keep-daily --keep-weekly --keep-monthly --json; do
	like "$OUT" "$o" "--help mentions $o"
done
run chom-backup --version
exits 0 "--version exits 0"
like "$OUT" '^chom-backup \(chom\) [0-9]+\.[0-9]+\.[0-9]+$' "--version format"

# --- usage errors: exit 2, one line, the Try line, nothing written --------
S=$T/store
U=file://$S
printf 'SELECT 1;\n' >"$T/small.sql"
run chom-backup --db --db-cmd "cat $T/small.sql" --no-encrypt
usage_err "no target" 'target|--to'
run chom-backup --to "$U" --no-encrypt
usage_err "no kind" 'nothing to back up|--db'
run chom-backup --to "$U" --db --db-cmd "cat $T/small.sql"
usage_err "no recipient without --no-encrypt" 'recipient'
run chom-backup --to "$U" --db --db-cmd "cat $T/small.sql" --no-encrypt --compress lzma
usage_err "bad --compress" 'compress'
run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE \
	-u AWS_SHARED_CREDENTIALS_FILE HOME="$T" \
	chom-backup --to s3://bucket/prefix --db --db-cmd "cat $T/small.sql" --no-encrypt
usage_err "s3:// target without credentials" 'no credentials'
run chom-backup --to "$U" --prune
usage_err "--prune without a --keep rule" 'keep'
run chom-backup --to "$U" --prune --keep-last 0
usage_err "--keep-last 0" 'keep-last'
run chom-backup --to "$U" --prune --keep-within soon
usage_err "bad --keep-within" 'keep-within'
run chom-backup --to "$U" --db --db-cmd "cat $T/small.sql" --bogus
usage_err "unknown option" 'bogus'
run chom-backup --to "$U" --db --db-cmd "cat $T/small.sql" -r not-an-age-key
usage_err "malformed recipient"
printf 'pass phrase\n' >"$T/pw-open"
chmod 644 "$T/pw-open"
run chom-backup --to "$U" --db --db-cmd "cat $T/small.sql" --passphrase-file "$T/pw-open"
usage_err "a passphrase file others may read"
ok "usage errors wrote nothing into the target" test ! -e "$S"

# --- --keygen -------------------------------------------------------------
KEY=$T/key.txt
run bash -c "umask 000 && exec chom-backup --keygen '$KEY'"
exits 0 "--keygen: exit 0"
like "$OUT" '^age1[02-9ac-hj-np-z]{58}$' "--keygen prints an age1 recipient"
is "$ERR" "" "--keygen: nothing on stderr"
R=$OUT
is "$(stat -c %a "$KEY")" 600 "--keygen: the identity has mode 0600 (even under umask 000)"
ok "--keygen: the file holds an AGE-SECRET-KEY-1 line" grep -qE '^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$' "$KEY"
is "$(age-keygen -y "$KEY" 2>&1)" "$R" "age-keygen -y derives the printed recipient from the file"
sum_before=$(sha256sum "$KEY")
run chom-backup --keygen "$KEY"
exits 1 "--keygen over an existing file: exit 1"
like "$ERR" "^chom-backup: .*key\.txt" "--keygen over an existing file: says which"
is "$OUT" "" "--keygen over an existing file: nothing on stdout"
is "$(sha256sum "$KEY")" "$sum_before" "--keygen over an existing file: the old key is untouched"
KEY2=$T/key2.txt
R2=$(chom-backup --keygen "$KEY2")
like "$R2" '^age1' "a second identity"
ok "two --keygen runs make different keys" test "$R2" != "$R"

# --- the data --------------------------------------------------------------
# A SQL dump of about 3 MB: more than one compression block and many age
# chunks, with UTF-8, quotes and backslashes.
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
FILES=$T/files
mkdir -p "$FILES/sub/deeper"
printf 'alpha\n' >"$FILES/a.txt"
head -c 300000 /dev/urandom >"$FILES/sub/blob.bin"
printf 'deep\n' >"$FILES/sub/deeper/c.txt"
chmod 640 "$FILES/a.txt"
ln -s a.txt "$FILES/link-to-a"
CONF=$T/etc-app
mkdir -p "$CONF/conf.d" "$CONF/empty"
printf 'APP_KEY=base64:xyz\nDB_HOST=127.0.0.1\n' >"$CONF/.env"
printf 'server { listen 80; }\n' >"$CONF/conf.d/site.conf"
ln -s conf.d/site.conf "$CONF/site-link"
ln -s /nowhere/at/all "$CONF/dangling"
chmod 600 "$CONF/.env"
chmod 750 "$CONF/conf.d"
chmod 1777 "$CONF/empty"
touch -d '2021-03-04 05:06:07' "$CONF/.env"
# Directories' modes and mtimes too, set last: an entry made in a
# directory changes its mtime.
chmod 710 "$FILES/sub"
touch -d '2020-01-02 03:04:05' "$FILES/sub/deeper" "$FILES/sub" "$CONF/conf.d" "$CONF/empty" "$CONF"
# tree DIR: every entry under DIR and DIR itself, one a line: its path,
# type, mode and mtime (a symlink: its target), and a file's SHA-256.
tree() {
	python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
def show(p):
    st = os.lstat(p)
    rel = os.path.relpath(p, root)
    if stat.S_ISLNK(st.st_mode):
        print(rel, "link", os.readlink(p))
    elif stat.S_ISDIR(st.st_mode):
        print(rel, "dir", oct(st.st_mode & 0o7777), int(st.st_mtime))
    else:
        with open(p, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()
        print(rel, "file", oct(st.st_mode & 0o7777), int(st.st_mtime), st.st_size, h)
show(root)
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        show(os.path.join(d, n))
PY
}

# --- a full backup -----------------------------------------------------------
LABEL='nightly "test" é'
t_before=$(date -u +%Y%m%dT%H%M%SZ)
run chom-backup --to "$U" --host web1 -r "$R" --label "$LABEL" \
	--db --db-cmd "cat $SQL" --files "$FILES" --config "$CONF" --sysinfo
t_after=$(date -u +%Y%m%dT%H%M%SZ)
exits 0 "full backup: exit 0"
like "$OUT" "$ID_RE" "full backup: prints the point id"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "full backup: one line on stdout"
is "$ERR" "" "full backup: silent on stderr when not on a terminal"
P=$OUT
is "$(printf '%s\n' "$t_before" "$P" "$t_after" | LC_ALL=C sort | tr '\n' ' ')" "$t_before $P $t_after " \
	"the point id is the UTC time of the run"
PD=$S/web1/$P
is "$(names "$PD")" "config.tar.gz.age db.sql.gz.age files.tar.gz.age manifest.json sysinfo.txt.age" \
	"HOST/POINT holds the four parts and manifest.json, nothing else"
M=$PD/manifest.json

age -d -i "$KEY" "$PD/db.sql.gz.age" >"$T/db.gz" 2>"$T/age.err"
ok "age -d decrypts db.sql.gz.age" test $? -eq 0
ok "gzip -t: db.sql.gz is valid gzip" gzip -t "$T/db.gz"
ok "age -d | gunzip gives back the exact dump (cmp)" cmp -s "$SQL" <(gunzip -c "$T/db.gz")
ok "age -d with another identity fails" bash -c "! age -d -i '$KEY2' '$PD/db.sql.gz.age' >/dev/null 2>&1"
ok "the encrypted part is no plain gzip" bash -c "! gzip -t '$PD/db.sql.gz.age' 2>/dev/null"

list=$(age -d -i "$KEY" "$PD/files.tar.gz.age" | tar -tzf - 2>&1)
rel=${FILES#/}
for f in "$rel/a.txt" "$rel/sub/blob.bin" "$rel/sub/deeper/c.txt" "$rel/link-to-a"; do
	ok "files.tar lists $f" grep -qxF "$f" <<<"$list"
done
unlike "$list" '^/' "files.tar: no name with a leading /"
X=$T/x-files
mkdir -p "$X"
# GNU tar sets a directory's mtime when it meets an entry outside it, and
# libarchive's walk (lib/tarball.c) puts a directory's files after its
# siblings: without --delay-directory-restore, a directory that holds files
# gets the time of the extraction.
age -d -i "$KEY" "$PD/files.tar.gz.age" | tar -xpzf - --delay-directory-restore -C "$X"
ok "files round trip: a.txt" cmp -s "$FILES/a.txt" "$X/$rel/a.txt"
ok "files round trip: sub/blob.bin" cmp -s "$FILES/sub/blob.bin" "$X/$rel/sub/blob.bin"
ok "files round trip: sub/deeper/c.txt" cmp -s "$FILES/sub/deeper/c.txt" "$X/$rel/sub/deeper/c.txt"
is "$(readlink "$X/$rel/link-to-a" 2>&1)" "a.txt" "files round trip: the symlink is a symlink to a.txt"
is "$(stat -c %a "$X/$rel/a.txt")" 640 "files round trip: the mode"
is "$(stat -c %Y "$X/$rel/a.txt")" "$(stat -c %Y "$FILES/a.txt")" "files round trip: the mtime"
is "$(stat -c %a.%Y "$X/$rel/sub")" "710.$(stat -c %Y "$FILES/sub")" "files round trip: a directory's mode and mtime"
is "$(tree "$X/$rel")" "$(tree "$FILES")" \
	"files round trip: every entry's type, mode, mtime, link target and content"
clist=$(age -d -i "$KEY" "$PD/config.tar.gz.age" | tar -tzf - 2>&1)
ok "config.tar lists .env" grep -qxF "${CONF#/}/.env" <<<"$clist"
ok "config.tar lists conf.d/site.conf" grep -qxF "${CONF#/}/conf.d/site.conf" <<<"$clist"
XC=$T/x-config
mkdir -p "$XC"
age -d -i "$KEY" "$PD/config.tar.gz.age" | tar -xpzf - --delay-directory-restore -C "$XC"
crel=${CONF#/}
ok "config round trip: .env" cmp -s "$CONF/.env" "$XC/$crel/.env"
is "$(stat -c %a.%Y "$XC/$crel/.env")" "600.$(stat -c %Y "$CONF/.env")" "config round trip: .env's mode 600 and mtime"
is "$(readlink "$XC/$crel/site-link" 2>&1)" conf.d/site.conf "config round trip: a symlink stays a symlink"
is "$(readlink "$XC/$crel/dangling" 2>&1)" /nowhere/at/all "config round trip: a dangling symlink too"
is "$(stat -c %a.%Y "$XC/$crel/conf.d")" "750.$(stat -c %Y "$CONF/conf.d")" "config round trip: a directory's mode and mtime"
is "$(stat -c %a "$XC/$crel/empty")" 1777 "config round trip: the sticky bit of an empty directory"
is "$(tree "$XC/$crel")" "$(tree "$CONF")" \
	"config round trip: every entry's type, mode, mtime, link target and content"
age -d -i "$KEY" "$PD/sysinfo.txt.age" >"$T/sysinfo.txt" 2>/dev/null
ok "sysinfo.txt decrypts to text with the kernel" grep -q "$(uname -r)" "$T/sysinfo.txt"

# The manifest, judged by python3's json and by sha256sum and stat.
ok "manifest.json is JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$M"
is "$(mf "$M" 'm["host"]')" web1 "manifest: host"
is "$(mf "$M" 'm["point"]')" "$P" "manifest: point"
is "$(mf "$M" 'm["label"]')" "$LABEL" "manifest: label"
like "$(mf "$M" 'm["tool"]')" '^chom-backup 0\.1\.0' "manifest: tool and version"
like "$(mf "$M" 'm["start"]')" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "manifest: start"
like "$(mf "$M" 'm["end"]')" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "manifest: end"
is "$(mf "$M" 'm["start"] <= m["end"]')" true "manifest: start <= end"
is "$(mf "$M" 'sorted(p["name"] for p in m["parts"])')" \
	'["config.tar.gz.age", "db.sql.gz.age", "files.tar.gz.age", "sysinfo.txt.age"]' "manifest: one entry per part"
is "$(mf "$M" 'sorted(p["kind"] for p in m["parts"])')" '["config", "db", "files", "sysinfo"]' "manifest: the kinds"
for n in db.sql.gz.age files.tar.gz.age config.tar.gz.age sysinfo.txt.age; do
	q="[p for p in m['parts'] if p['name'] == '$n'][0]"
	is "$(mf "$M" "${q}['size']")" "$(stat -c %s "$PD/$n")" "manifest: $n size matches the file"
	is "$(mf "$M" "${q}['sha256']")" "$(sha256sum "$PD/$n" | cut -d' ' -f1)" "manifest: $n sha256 matches sha256sum"
	is "$(mf "$M" "${q}['recipients']")" "[\"$R\"]" "manifest: $n recipients (the public key)"
	is "$(mf "$M" "${q}['encryption']")" age "manifest: $n encryption"
done
# pf KIND FIELD: FIELD of the part of KIND in $M.
pf() { mf "$M" "[p for p in m['parts'] if p['kind'] == '$1'][0]['$2']"; }
is "$(pf db plain_size)" "$(stat -c %s "$SQL")" "manifest: db plain size = the dump's size"
is "$(pf db compression)" gzip "manifest: db compression gzip"
is "$(pf files plain_size)" "$(age -d -i "$KEY" "$PD/files.tar.gz.age" | gunzip | wc -c)" \
	"manifest: files plain size = the tar's size"
is "$(pf config compression)" gzip "manifest: config compression gzip"
is "$(pf sysinfo plain_size)" "$(stat -c %s "$T/sysinfo.txt")" "manifest: sysinfo plain size"
is "$(mf "$M" "[c['status'] for c in m['commands'] if c['part'] == 'db']")" '[0]' "manifest: the dump command's status"
is "$(mf "$M" "[c['command'] for c in m['commands'] if c['part'] == 'db']")" "[\"cat $SQL\"]" "manifest: the dump command"
is "$(mf "$M" "[c['status'] for c in m['commands'] if c['part'] == 'sysinfo']")" '[0]' "manifest: the sysinfo status"
unlike "$(cat "$M")" 'AGE-SECRET-KEY' "manifest: no secret key"
ok "no temporary file left in the target" test -z "$(find "$S" -name '*tmp*')"

# --json: one JSON object with the point and its parts.
run chom-backup --to "$U" --host web1j -r "$R" --label json --db --db-cmd "cat $T/small.sql" \
	--files "$FILES" --sysinfo --json
exits 0 "--json: exit 0"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "--json: one line"
printf '%s\n' "$OUT" >"$T/summary.json"
# js EXPR: EXPR of the summary, as m.
js() { mf "$T/summary.json" "$1"; }
is "$(js 'm["point"]')" "$(ls "$S/web1j")" "--json: the point of the directory written"
JD=$S/web1j/$(js 'm["point"]')
is "$(js 'm["host"]') $(js 'm["label"]')" "web1j json" "--json: host and label"
num_ok "--json: seconds ($(js 'm["seconds"]'))" "$(js 'm["seconds"]') >= 0"
is "$(js '" ".join(p["name"] for p in m["parts"])')" "db.sql.gz.age files.tar.gz.age sysinfo.txt.age" \
	"--json: one part per file of the point, in order"
is "$(js '" ".join(p["kind"] for p in m["parts"])')" "db files sysinfo" "--json: the parts' kinds"
for n in db.sql.gz.age files.tar.gz.age sysinfo.txt.age; do
	q="[p for p in m['parts'] if p['name'] == '$n'][0]"
	is "$(js "${q}['size']")" "$(stat -c %s "$JD/$n")" "--json: $n size = the file's"
	is "$(js "${q}['sha256']")" "$(sha256sum "$JD/$n" | cut -d' ' -f1)" "--json: $n sha256 = sha256sum of the file"
	is "$(js "${q}['plain_size']")" "$(mf "$JD/manifest.json" "${q}['plain_size']")" "--json: $n plain size = the manifest's"
done
is "$(js '[p["plain_size"] for p in m["parts"] if p["kind"] == "db"][0]')" "$(stat -c %s "$T/small.sql")" \
	"--json: the dump's plain size = the dump's size"

# The default HOST: the short host name.
run chom-backup --to "file://$T/store-host" -r "$R" --db --db-cmd "cat $T/small.sql"
exits 0 "no --host: exit 0"
ok "no --host: HOST is the short host name" test -f "$T/store-host/$(hostname | cut -d. -f1)/$OUT/manifest.json"

# --- --compress zstd, none; --no-encrypt ------------------------------------
run chom-backup --to "$U" --host zstd -r "$R" --compress zstd --db --db-cmd "cat $SQL" --files "$FILES"
exits 0 "--compress zstd: exit 0"
ZD=$S/zstd/$OUT
is "$(names "$ZD")" "db.sql.zst.age files.tar.zst.age manifest.json" "--compress zstd: .zst.age parts"
ok "--compress zstd: age -d | zstd -d gives back the dump" \
	cmp -s "$SQL" <(age -d -i "$KEY" "$ZD/db.sql.zst.age" | zstd -dc)
ok "--compress zstd: the tar reads through zstd -d" \
	grep -qxF "$rel/sub/blob.bin" <(age -d -i "$KEY" "$ZD/files.tar.zst.age" | zstd -dc | tar -tf -)
is "$(mf "$ZD/manifest.json" "[p['compression'] for p in m['parts']]")" '["zstd", "zstd"]' "--compress zstd: the manifest says zstd"

run chom-backup --to "$U" --host none -r "$R" --compress none --db --db-cmd "cat $SQL"
exits 0 "--compress none: exit 0"
ND=$S/none/$OUT
is "$(names "$ND")" "db.sql.age manifest.json" "--compress none: db.sql.age"
ok "--compress none: age -d gives back the dump" cmp -s "$SQL" <(age -d -i "$KEY" "$ND/db.sql.age")
is "$(mf "$ND/manifest.json" 'm["parts"][0]["compression"]')" none "--compress none: the manifest says none"

run chom-backup --to "$U" --host plain --no-encrypt --db --db-cmd "cat $SQL"
exits 0 "--no-encrypt: exit 0"
PL=$S/plain/$OUT
is "$(names "$PL")" "db.sql.gz manifest.json" "--no-encrypt: db.sql.gz"
ok "--no-encrypt: gunzip gives back the dump" cmp -s "$SQL" <(gunzip -c "$PL/db.sql.gz")
is "$(mf "$PL/manifest.json" 'm["parts"][0]["encryption"]')" none "--no-encrypt: the manifest says none"
is "$(mf "$PL/manifest.json" 'm["parts"][0]["sha256"]')" "$(sha256sum "$PL/db.sql.gz" | cut -d' ' -f1)" "--no-encrypt: sha256"

# --- --passphrase-file (scrypt) ---------------------------------------------
PW=$T/passphrase
printf 'correct horse battery staple\n' >"$PW"
chmod 600 "$PW"
run chom-backup --to "$U" --host pass --passphrase-file "$PW" --db --db-cmd "cat $SQL"
exits 0 "--passphrase-file: exit 0"
PP=$S/pass/$OUT
is "$(names "$PP")" "db.sql.gz.age manifest.json" "--passphrase-file: db.sql.gz.age"
is "$(head -n 1 "$PP/db.sql.gz.age")" "age-encryption.org/v1" "--passphrase-file: an age v1 file"
stanzas=$(head -c 400 "$PP/db.sql.gz.age" | grep -a '^-> ')
like "$stanzas" '^-> scrypt [A-Za-z0-9+/]{22} [0-9]+$' "--passphrase-file: one scrypt stanza (salt, work factor)"
is "$(printf '%s\n' "$stanzas" | wc -l)" 1 "--passphrase-file: scrypt is the only stanza, as age requires"
ok "--passphrase-file: age -d -i key fails on it" bash -c "! age -d -i '$KEY' '$PP/db.sql.gz.age' >/dev/null 2>&1"
unlike "$(cat "$PP/manifest.json")" 'correct horse' "--passphrase-file: the passphrase is not in the manifest"
is "$(mf "$PP/manifest.json" 'm["parts"][0]["encryption"]')" age "--passphrase-file: the manifest says age"
is "$(mf "$PP/manifest.json" 'm["parts"][0]["sha256"]')" "$(sha256sum "$PP/db.sql.gz.age" | cut -d' ' -f1)" \
	"--passphrase-file: sha256"
# age reads a passphrase from a terminal only: script(1) gives it one.
if command -v script >/dev/null 2>&1; then
	printf 'correct horse battery staple\n' |
		timeout 60 script -qec "age -d -o '$T/pass.gz' '$PP/db.sql.gz.age'" /dev/null >/dev/null 2>&1
	ok "--passphrase-file: the real age decrypts it with the passphrase (on a pty)" \
		cmp -s "$SQL" <(gunzip -c "$T/pass.gz" 2>/dev/null)
else
	skip "--passphrase-file: the real age decrypts it" "script(1) not installed: no terminal for age's passphrase prompt"
fi

# --- two targets in one pass --------------------------------------------------
run chom-backup --to "file://$T/t1" --to "file://$T/t2" --host web1 -r "$R" \
	--db --db-cmd "cat $SQL" --files "$FILES" --sysinfo
exits 0 "two --to targets: exit 0"
P2=$OUT
is "$(names "$T/t1/web1/$P2")" "$(names "$T/t2/web1/$P2")" "two targets: the same names under the same point"
for n in db.sql.gz.age files.tar.gz.age sysinfo.txt.age manifest.json; do
	ok "two targets: identical $n (cmp)" cmp -s "$T/t1/web1/$P2/$n" "$T/t2/web1/$P2/$n"
done
ok "two targets: the dump decrypts from the second" cmp -s "$SQL" <(age -d -i "$KEY" "$T/t2/web1/$P2/db.sql.gz.age" | gunzip)

# --- dump commands that fail --------------------------------------------------
MET=$T/metrics
mkdir -p "$MET"
run chom-backup --to "file://$T/ok" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql" --metrics-dir "$MET"
exits 0 "--metrics-dir: a good backup"
t_ok=$(date +%s)
OKP=$T/ok/web1/$OUT
PROM=$MET/chom_backup.prom
ok "--metrics-dir: chom_backup.prom written" test -f "$PROM"
is "$(names "$MET")" chom_backup.prom "--metrics-dir: no temporary file left"
succ=$(grep -E '^chom_backup_last_success_timestamp_seconds\{[^}]*\} [0-9.e+]+$' "$PROM")
is "${succ% *}" "chom_backup_last_success_timestamp_seconds{kind=\"db\",target=\"file://$T/ok\"}" \
	"--metrics-dir: last success for the kind and the target"
v=$(awk '{ print $2 }' <<<"$succ")
num_ok "--metrics-dir: the last success is now ($v)" "$v >= $T0 && $v <= $t_ok"
is "$(grep '^chom_backup_last_status' "$PROM")" \
	"chom_backup_last_status{kind=\"db\",target=\"file://$T/ok\"} 0" "--metrics-dir: last status 0"
is "$(grep '^chom_backup_size_bytes' "$PROM")" \
	"chom_backup_size_bytes{kind=\"db\",target=\"file://$T/ok\"} $(stat -c %s "$OKP/db.sql.gz.age")" \
	"--metrics-dir: the size is the stored part's"
ok "--metrics-dir: a duration metric" grep -qE '^chom_backup_duration_seconds\{kind="db",target=".*"\} [0-9.]+$' "$PROM"
ok_lines=$(grep -F "target=\"file://$T/ok\"" "$PROM")
# prom_check DESC FILE: the file passes promtool (Prometheus' own parser and
# linter), or python's prometheus_client parser, or at least our checks.
prom_check() {
	local out
	if command -v promtool >/dev/null 2>&1; then
		out=$(promtool check metrics <"$2" 2>&1)
		ok "$1: promtool check metrics passes" test $? -eq 0
		[ -n "$out" ] && diag "$out"
	elif python3 -c 'import prometheus_client' 2>/dev/null; then
		ok "$1: prometheus_client parses it" python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families as p
list(p(open(sys.argv[1]).read()))' "$2"
	else
		skip "$1: a Prometheus parser" "neither promtool nor prometheus_client installed"
	fi
	is "$(grep -c '^# HELP' "$2") $(grep -c '^# TYPE' "$2")" \
		"$(grep -v '^#' "$2" | sed 's/[{ ].*//' | sort -u | wc -l) $(grep -v '^#' "$2" | sed 's/[{ ].*//' | sort -u | wc -l)" \
		"$1: one HELP and one TYPE per metric"
	is "$(grep -v '^#' "$2" | sed 's/ [^ ]*$//' | sort | uniq -d)" "" "$1: no series twice"
	is "$(grep -v '^#' "$2" | grep -vc 'kind="[a-z]*",target=')" 0 "$1: every series has a kind and a target"
}
prom_check "--metrics-dir" "$PROM"

F=$T/fail
# fail_case DESC CMD STDERR_ERE: the dump CMD fails the backup.
fail_case() {
	local d=$1 cmd=$2 ere=$3
	run chom-backup --to "file://$F" --host web1 -r "$R" --db --db-cmd "$cmd" \
		--files "$FILES" --sysinfo --metrics-dir "$MET"
	exits 1 "$d: exit 1"
	is "$OUT" "" "$d: nothing on stdout"
	[ -n "$ere" ] && like "$ERR" "$ere" "$d: says why"
	no_point_left "$d" "$F" web1
	is "$(grep -E '^chom_backup_last_success_timestamp_seconds' "$PROM")" "$succ" \
		"$d: the metrics keep the last success"
	is "$(grep -F "target=\"file://$F\"" "$PROM" | sed 's/ [1-9][0-9]*$/ FAILED/')" \
		"$(printf 'chom_backup_last_status{kind="%s",target="file://%s"} FAILED\n' db "$F" files "$F" sysinfo "$F")" \
		"$d: the metrics' last status of each kind is not 0, and no size or duration"
	is "$(grep -F "target=\"file://$T/ok\"" "$PROM")" "$ok_lines" "$d: the other target's series are kept"
	is "$(grep -v '^#' "$PROM" | sed 's/ [^ ]*$//' | sort | uniq -d)" "" "$d: no series twice in the metrics"
}
fail_case "dump exits 1 after writing" \
	"head -c 3000000 /dev/urandom; echo 'mysqldump: Got error: 2013: Lost connection' >&2; exit 1" \
	'exit'
like "$ERR" '^chom-backup: mysqldump: Got error: 2013: Lost connection' \
	"dump exits 1: its stderr is relayed with the chom-backup: prefix"
fail_case "dump killed by a signal" "head -c 1000000 /dev/urandom; sh -c 'kill -9 \$\$'; kill -9 \$\$" \
	'signal|killed'
fail_case "dump killed by a signal (sh -c 'kill -9 \$\$' as the command)" "sh -c 'kill -9 \$\$'" ''
fail_case "dump prints nothing" "true" 'nothing|no output|empty'
fail_case "dump prints nothing and exits 0 after stderr" "echo 'warning only' >&2" 'nothing|no output|empty'
like "$ERR" 'chom-backup: warning only' "a dump's stderr is relayed even when it succeeds"
# A dump that reads the terminal (mysqldump -p at an operator's shell)
# fails at once: it runs without a controlling terminal, where a process
# group in the background of ours would be stopped by SIGTTIN and the run
# would wait for ever. script(1) gives the run a terminal.
if command -v script >/dev/null; then
	run timeout 30 script -qec "chom-backup --to 'file://$F' --host tty -r '$R' --db --db-cmd 'cat /dev/tty'" /dev/null
	exits 1 "dump reading the terminal: exit 1, not stopped"
	like "$OUT" 'cat: /dev/tty: No such device' "dump reading the terminal: its error relayed"
	no_point_left "dump reading the terminal" "$F" tty
	# Its standard input is /dev/null, not the terminal: a prompt that
	# falls back to it (getpass(3) without a terminal) reads an end of file.
	# (What is typed at the terminal would otherwise be the dump.)
	printf 'typed at the terminal\n' >"$T/typed"
	run timeout 30 script -qec "chom-backup --to 'file://$F' --host tty -r '$R' --db --db-cmd cat" /dev/null <"$T/typed"
	exits 1 "dump reading its standard input: exit 1, an empty dump"
	like "$OUT" 'printed nothing|no output|nothing' "dump reading its standard input: nothing read"
	no_point_left "dump reading its standard input" "$F" tty
	# Not a terminal, it is chom-backup's: a dump piped in.
	run sh -c "printf 'piped in\n' | chom-backup --to 'file://$T/piped' --host piped --no-encrypt --compress none --db --db-cmd cat"
	exits 0 "a dump piped into --db-cmd cat: exit 0"
	is "$(cat "$T"/piped/piped/*/db.sql 2>/dev/null)" "piped in" "a dump piped into --db-cmd cat: the point holds it"
else
	skip "dump reading the terminal" "no script(1)"
fi
# A files path that does not exist is no backup of it: a path asked for and
# missing is a mistake (man/chom-backup.1, DESCRIPTION).
run chom-backup --to "file://$F" --host web1 -r "$R" --files "$T/no-such-dir"
exits 1 "--files of a missing path: exit 1"
like "$ERR" 'no-such-dir' "--files of a missing path: says which"
no_point_left "--files of a missing path" "$F" web1

# --- --metrics-dir: series per kind and target, merged across runs -----------
# A 6-hourly --db run and a daily --files run share the file: each keeps the
# other's series, and a failed run keeps its kinds' last success.
M2=$T/metrics2
mkdir -p "$M2"
PF=$M2/chom_backup.prom
MT=file://$T/mt
# kind_series KIND: the names of the four series of KIND to $MT.
kind_series() {
	printf '%s{kind="%s",target="%s"}\n' chom_backup_last_success_timestamp_seconds "$1" "$MT" \
		chom_backup_last_status "$1" "$MT" chom_backup_duration_seconds "$1" "$MT" \
		chom_backup_size_bytes "$1" "$MT"
}
# An older chom's series, without a kind, and lines of no metric of ours.
printf '%s\n' '# HELP chom_backup_last_status Old.' '# TYPE chom_backup_last_status gauge' \
	"chom_backup_last_status{target=\"$MT\"} 0" 'something_else 1' >"$PF"
run chom-backup --to "$MT" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql" --metrics-dir "$M2"
exits 0 "metrics, a --db run: exit 0"
db1=$(grep -F 'kind="db"' "$PF")
is "$(sed 's/ [^ ]*$//' <<<"$db1")" "$(kind_series db)" "metrics, a --db run: the four series of db"
is "$(grep -v '^#' "$PF" | grep -vF 'kind="db"')" "" "metrics, a --db run: an older chom's series without a kind are dropped"
is "$(grep -F chom_backup_size_bytes <<<"$db1" | awk '{ print $2 }')" "$(stat -c %s "$T/mt/web1/$OUT/db.sql.gz.age")" \
	"metrics, a --db run: db's size is the stored part's"
prom_check "metrics, a --db run" "$PF"
run chom-backup --to "$MT" --host web1 -r "$R" --files "$FILES" --metrics-dir "$M2"
exits 0 "metrics, then a --files run: exit 0"
files1=$(grep -F 'kind="files"' "$PF")
is "$(grep -F 'kind="db"' "$PF")" "$db1" "metrics, then a --files run: db's series are kept as they were"
is "$(sed 's/ [^ ]*$//' <<<"$files1")" "$(kind_series files)" "metrics, then a --files run: the four series of files"
is "$(grep -F chom_backup_size_bytes <<<"$files1" | awk '{ print $2 }')" "$(stat -c %s "$T/mt/web1/$OUT/files.tar.gz.age")" \
	"metrics, then a --files run: files' size is the stored part's"
prom_check "metrics, --db then --files" "$PF"
sleep 1 # a last success written again would be a second later
run chom-backup --to "$MT" --host web1 -r "$R" --db --db-cmd false --metrics-dir "$M2"
exits 1 "metrics, then a failing --db run: exit 1"
is "$(grep -F 'kind="db"' "$PF")" "$(sed 's/^\(chom_backup_last_status{.*}\) 0$/\1 1/' <<<"$db1")" \
	"metrics, then a failing --db run: db's status 1, its last success, duration and size as they were"
is "$(grep -F 'kind="files"' "$PF")" "$files1" "metrics, then a failing --db run: files' series unchanged"
prom_check "metrics, after a failed run" "$PF"
run chom-backup --to "$MT" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql" --metrics-dir "$M2"
exits 0 "metrics, then a good --db run: exit 0"
is "$(grep -F 'chom_backup_last_status{kind="db"' "$PF" | awk '{ print $2 }')" 0 "metrics, then a good --db run: db's status back to 0"
v1=$(grep -F 'chom_backup_last_success_timestamp_seconds{kind="db"' <<<"$db1" | awk '{ print $2 }')
v2=$(grep -F 'chom_backup_last_success_timestamp_seconds{kind="db"' "$PF" | awk '{ print $2 }')
num_ok "metrics, then a good --db run: a newer last success ($v1 < $v2)" "$v1 < $v2"
is "$(grep -F 'kind="files"' "$PF")" "$files1" "metrics, then a good --db run: files' series unchanged"
# Runs take turns on the file by a lock on the directory itself.
(exec 9<"$M2" && flock 9 && exec sleep 2) &
LP2=$!
for _ in $(seq 1 50); do
	flock -n "$M2" true 2>/dev/null || break
	sleep 0.1
done
t1=$(date +%s%N)
run chom-backup --to "$MT" --host web1 -r "$R" --sysinfo --metrics-dir "$M2"
t2=$(date +%s%N)
wait "$LP2"
exits 0 "metrics, the directory locked by another run: exit 0"
is "$ERR" "" "metrics, the directory locked by another run: nothing on stderr"
num_ok "metrics, the directory locked by another run: waits for it ($(((t2 - t1) / 1000000)) ms)" "$(((t2 - t1) / 1000000)) >= 1000"
is "$(grep -F 'kind="sysinfo"' "$PF" | sed 's/ [^ ]*$//')" "$(kind_series sysinfo)" \
	"metrics, the directory locked by another run: then writes its series"
is "$(names "$M2")" chom_backup.prom "metrics: no lock or temporary file left in the directory"

# As many targets as allowed, with long paths and a quote and a backslash
# in one: every series written (once in an 8 KiB buffer, which overflowed).
long=$(printf '%0100d' 0)
MANY=()
for i in 1 2 3 4 5 6 7; do
	MANY+=(--to "file://$T/many/t$i-$long/$long/$long")
done
QT="file://$T/many/q\"uote\\back-$long/$long/$long"
MANY+=(--to "$QT")
M3=$T/metrics3
mkdir -p "$M3"
run chom-backup "${MANY[@]}" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql" \
	--files "$FILES" --config "$CONF" --sysinfo --metrics-dir "$M3"
exits 0 "metrics, 8 targets of ${#QT} characters: exit 0"
is "$ERR" "" "metrics, 8 long targets: nothing on stderr"
is "$(grep -vc '^#' "$M3/chom_backup.prom")" 128 "metrics, 8 long targets: 4 metrics x 4 kinds x 8 targets"
esc=$(printf '%s' "$QT" | sed 's/\\/\\\\/g; s/"/\\"/g')
is "$(grep -cF "target=\"$esc\"}" "$M3/chom_backup.prom")" 16 \
	"metrics, 8 long targets: the quote and the backslash escaped in the label"
prom_check "metrics, 8 long targets" "$M3/chom_backup.prom"
run chom-backup "${MANY[@]}" --host web1 -r "$R" --db --db-cmd false \
	--files "$FILES" --config "$CONF" --sysinfo --metrics-dir "$M3"
exits 1 "metrics, 8 long targets, a failed run: exit 1"
is "$(grep -c '^chom_backup_last_status{.*} 1$' "$M3/chom_backup.prom") $(grep -vc '^#' "$M3/chom_backup.prom")" "32 128" \
	"metrics, 8 long targets, a failed run: 32 statuses of 1, every series kept"
prom_check "metrics, 8 long targets, a failed run" "$M3/chom_backup.prom"
python3 - "$M3/chom_backup.prom" "$QT" >"$T/prom-parse.out" 2>&1 <<'PY'
import re, sys
# The text format's label values, unescaped as Prometheus reads them.
pat = re.compile(r'^(\w+)\{kind="(\w+)",target="((?:[^"\\]|\\.)*)"\} (\S+)$')
seen = set()
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("#"):
        continue
    m = pat.match(line.rstrip("\n"))
    assert m, line
    t = re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)), m.group(3))
    seen.add(t)
assert sys.argv[2] in seen, seen
print(len(seen))
PY
is "$(cat "$T/prom-parse.out")" 8 "metrics, 8 long targets: the label values read back as the 8 URLs"

# --- --db-defaults: the path is quoted for sh ---------------------------------
run chom-backup --to "file://$T/inj" --host web1 -r "$R" --db \
	--db-defaults "$T/x'; touch '$T/pwned'; : '"
exits 1 "--db-defaults of a missing path with quotes: exit 1"
ok "--db-defaults of a missing path with quotes: it names the file" grep -qF "x'; touch '$T/pwned'; : '" "$T/.err"
ok "--db-defaults of a path with quotes: runs no command of it" test ! -e "$T/pwned"
no_point_left "--db-defaults of a missing path" "$T/inj" web1

# --- the lock -----------------------------------------------------------------
LOCK=$S/web1/.lock
# One process holds it: a subshell that takes it with flock(1) on its fd 9
# and becomes sleep, so killing that pid lets go.
(exec 9>>"$LOCK" && flock 9 && exec sleep 60) &
LP=$!
at_exit "kill $LP 2>/dev/null"
for _ in $(seq 1 50); do
	flock -n "$LOCK" true 2>/dev/null || break
	sleep 0.1
done
ok "the lock is held by the test" bash -c "! flock -n '$LOCK' true"
before=$(names "$S/web1")
run chom-backup --to "$U" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql"
exits 3 "a second backup while the lock is held: exit 3"
like "$ERR" '^chom-backup: ' "busy: says so"
is "$OUT" "" "busy: nothing on stdout"
is "$(names "$S/web1")" "$before" "busy: no point begun"
run chom-backup --to "$U" --host web1 --prune --keep-last 1
exits 3 "--prune while the lock is held: exit 3"
is "$(names "$S/web1")" "$before" "busy prune: nothing removed"
kill "$LP" 2>/dev/null
wait "$LP" 2>/dev/null
run chom-backup --to "$U" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql"
exits 0 "once the lock is let go, a backup runs"

# --- --prune on points made by hand ---------------------------------------------
# mkpoint STORE HOST ID [incomplete]
mkpoint() {
	mkdir -p "$1/$2/$3"
	printf 'part\n' >"$1/$2/$3/db.sql.gz.age"
	[ "${4:-}" = incomplete ] || printf '{"point": "%s"}\n' "$3" >"$1/$2/$3/manifest.json"
}
PR=$T/prune
OLD_INC=$(date -u -d '2 days ago' +%Y%m%dT%H%M%SZ)
NEW_INC=$(date -u -d '1 hour ago' +%Y%m%dT%H%M%SZ)
for id in 20240101T000000Z 20240215T120000Z 20240301T080000Z 20240301T200000Z; do
	mkpoint "$PR" web1 "$id"
done
mkpoint "$PR" web1 "$OLD_INC" incomplete
mkpoint "$PR" web1 "$NEW_INC" incomplete
mkpoint "$PR" other 20200101T000000Z
run chom-backup --to "file://$PR" --host web1 --prune --keep-last 2
exits 0 "--prune --keep-last 2: exit 0"
is "$(names "$PR/web1" | sed 's/\.lock *//')" "20240301T080000Z 20240301T200000Z $NEW_INC" \
	"--keep-last 2: the two newest complete and the fresh incomplete point stay"
is "$(printf '%s\n' "$OUT" | LC_ALL=C sort)" "$(printf 'file://%s %s\n' "$PR" 20240101T000000Z "$PR" 20240215T120000Z "$PR" "$OLD_INC" | LC_ALL=C sort)" \
	"--keep-last 2: prints each point removed"
ok "--prune leaves other hosts alone" test -f "$PR/other/20200101T000000Z/manifest.json"
run chom-backup --to "file://$PR" --host web1 --prune --keep-last 1 --json
exits 0 "--prune --keep-last 1 --json: exit 0"
is "$(names "$PR/web1" | sed 's/\.lock *//')" "20240301T200000Z $NEW_INC" "--keep-last 1: the newest complete point stays"
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); print(o["point"], o["complete"])' 2>&1)" \
	"20240301T080000Z True" "--prune --json: one object per point removed"

# keep-within is counted from the newest point: years-old points are not
# all removed.
PR2=$T/prune2
for id in 20240612T230000Z 20240612T100000Z 20240611T120000Z 20240610T120000Z 20240520T000000Z 20240415T000000Z; do
	mkpoint "$PR2" web1 "$id"
done
cp -a "$PR2" "$T/prune3"
run chom-backup --to "file://$PR2" --host web1 --prune --keep-within 36h
exits 0 "--keep-within 36h: exit 0"
is "$(names "$PR2/web1" | sed 's/\.lock *//')" "20240611T120000Z 20240612T100000Z 20240612T230000Z" \
	"--keep-within 36h: the points within 36 h of the newest"
run chom-backup --to "file://$T/prune3" --host web1 --prune --keep-daily 2 --keep-monthly 2
exits 0 "--keep-daily 2 --keep-monthly 2: exit 0"
is "$(names "$T/prune3/web1" | sed 's/\.lock *//')" "20240520T000000Z 20240611T120000Z 20240612T230000Z" \
	"--keep-daily 2 --keep-monthly 2: the newest of each of 2 days and 2 months"

# A backup and a prune in one run: the new point is the newest.
PR4=$T/prune4
mkpoint "$PR4" web1 20240101T000000Z
run chom-backup --to "file://$PR4" --host web1 -r "$R" --db --db-cmd "cat $T/small.sql" --prune --keep-last 1
exits 0 "backup then --prune --keep-last 1: exit 0"
new=$(printf '%s\n' "$OUT" | head -n 1)
like "$new" "$ID_RE" "backup then prune: the point id first"
is "$(names "$PR4/web1" | sed 's/\.lock *//')" "$new" "backup then prune: only the new point is left"

# --- a real MariaDB, the default mysqldump command ------------------------------
# The schema: five tables (orders -> customers by a foreign key), BLOBs
# holding every byte value (0x00, the quote 0x27, the backslash 0x5c, 0xff,
# ...), an AFTER INSERT trigger writing an audit row, a stored function and
# a stored procedure, thousands of rows. Dumped by chom-backup --db with
# gzip, then with zstd; restored with `age -d | gunzip | mariadb` and
# `age -d | zstd -d | mariadb` into fresh servers; compared table by table
# with CHECKSUM TABLE, and the trigger and the routines made to work there.
if mariadb_start; then
	M1=$MARIADB_PORT
	# sqlp PORT ARG...: the mariadb client as root on PORT, bounded.
	sqlp() {
		timeout 60 mariadb --no-defaults --default-character-set=utf8mb4 \
			-h 127.0.0.1 -P "$1" -u root "${@:2}"
	}
	sql1() { sqlp "$M1" "$@"; }
	sql1 -e "
		CREATE DATABASE shop;
		CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64),
			price DECIMAL(10,2), data BLOB);
		CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY 'S3cret-pw';
		CREATE USER 'backup'@'localhost' IDENTIFIED BY 'S3cret-pw';
		GRANT ALL ON *.* TO 'backup'@'127.0.0.1';
		GRANT ALL ON *.* TO 'backup'@'localhost';" 2>"$T/m1.err"
	ok "MariaDB: schema and user created" test $? -eq 0
	python3 -c '
import random
r = random.Random(7)
print("INSERT INTO shop.items VALUES")
print(",\n".join("(%d, %s, %.2f, 0x%s)" % (i, "\x27item %d\x27" % i, r.random() * 1000,
    bytes(r.randrange(256) for _ in range(64)).hex()) for i in range(3000)) + ";")
' | sql1 2>>"$T/m1.err"
	is "$(sql1 -N -e 'SELECT COUNT(*) FROM shop.items' 2>&1)" 3000 "MariaDB: 3000 rows"
	# customers (1000 rows), orders (5000, each customer 5 times, by the
	# Sequence engine) with a foreign key to customers; the trigger writes
	# one audit row per order, so 5000 of them.
	sql1 2>>"$T/m1.err" <<'EOF'
USE shop;
CREATE TABLE customers (id INT PRIMARY KEY,
	name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
	email VARCHAR(100) NOT NULL, since DATE) ENGINE=InnoDB;
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY,
	customer_id INT NOT NULL, total DECIMAL(12,2) NOT NULL, note TEXT,
	CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id)
		REFERENCES customers (id)) ENGINE=InnoDB;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY,
	order_id INT NOT NULL, action VARCHAR(64) NOT NULL) ENGINE=InnoDB;
CREATE TABLE blobs (id INT PRIMARY KEY, payload LONGBLOB) ENGINE=InnoDB;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
	INSERT INTO audit (order_id, action)
	VALUES (NEW.id, CONCAT('insert ', NEW.customer_id, ' ', NEW.total));
DELIMITER //
CREATE FUNCTION customer_total(cid INT) RETURNS DECIMAL(14,2)
	READS SQL DATA
BEGIN
	DECLARE t DECIMAL(14,2);
	SELECT COALESCE(SUM(total), 0) INTO t FROM orders WHERE customer_id = cid;
	RETURN t;
END//
CREATE PROCEDURE add_order(IN cid INT, IN amount DECIMAL(12,2), OUT new_id INT)
	MODIFIES SQL DATA
BEGIN
	INSERT INTO orders (customer_id, total, note)
		VALUES (cid, amount, 'by add_order; it''s a \\ test');
	SET new_id = LAST_INSERT_ID();
END//
DELIMITER ;
INSERT INTO customers
	SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.test'),
		'2024-01-01' + INTERVAL (seq % 365) DAY
	FROM seq_1_to_1000;
INSERT INTO orders (customer_id, total, note)
	SELECT 1 + (seq * 7919) % 1000, ((seq * 104729) % 100000) / 100,
		IF(seq % 10 = 0, NULL, CONCAT('order ', seq, ' \t \'q\' \\ "d"'))
	FROM seq_1_to_5000;
EOF
	ok "MariaDB: tables, foreign key, trigger, function, procedure and rows created" test $? -eq 0
	# A name with a quote, a backslash, a tab and characters beyond latin1,
	# sent by its bytes (the judge below compares bytes).
	NAME7=$'O\'Brien \\ "quoted"\tünïcødé 😀'
	NAME7_HEX=$(printf '%s' "$NAME7" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
	sql1 -e "UPDATE shop.customers SET name = CONVERT(X'$NAME7_HEX' USING utf8mb4) WHERE id = 7" 2>>"$T/m1.err"
	# The BLOBs: all 256 byte values, the bytes mysqldump escapes, 300 KB
	# of random bytes, an empty value, NULL, a trailing backslash; the
	# expected length and SHA-256 of each in blobs.want.
	python3 -c '
import hashlib, random, sys
r = random.Random(11)
rows = {1: bytes(range(256)) * 4,
        2: b"\x00\x27\x5c\xff\x22\n\r\x1a\t%_" * 500,
        3: r.randbytes(300000),
        4: b"",
        5: None,
        6: b"ends with a backslash \x5c",
        7: b"\x5c",
        8: b"\x27",
        9: b"\x00"}
with open(sys.argv[1], "w") as w:
    for i, b in rows.items():
        print("INSERT INTO shop.blobs VALUES (%d, %s);" % (i, "NULL" if b is None else "X\x27%s\x27" % b.hex()))
        w.write("%d\tNULL\tNULL\n" % i if b is None else "%d\t%d\t%s\n" % (i, len(b), hashlib.sha256(b).hexdigest()))
' "$T/blobs.want" | sql1 2>>"$T/m1.err"
	ok "MariaDB: BLOBs inserted" test $? -eq 0
	[ -s "$T/m1.err" ] && diag "$(head -5 "$T/m1.err")"
	# mdb_counts PORT: the rows of audit, blobs, customers, items, orders.
	mdb_counts() {
		sqlp "$1" -N -e "SELECT CONCAT_WS(' ',
			(SELECT COUNT(*) FROM shop.audit), (SELECT COUNT(*) FROM shop.blobs),
			(SELECT COUNT(*) FROM shop.customers), (SELECT COUNT(*) FROM shop.items),
			(SELECT COUNT(*) FROM shop.orders))" 2>&1
	}
	# mdb_sums PORT: CHECKSUM TABLE of every table of shop.
	mdb_sums() {
		sqlp "$1" -N -e "CHECKSUM TABLE shop.audit, shop.blobs,
			shop.customers, shop.items, shop.orders" 2>&1
	}
	# mdb_meta PORT: the tables, foreign keys, triggers and routines of shop.
	mdb_meta() {
		sqlp "$1" -N -e "
			SELECT table_name, engine FROM information_schema.TABLES
				WHERE table_schema = 'shop' ORDER BY 1;
			SELECT constraint_name, table_name, referenced_table_name,
				update_rule, delete_rule
				FROM information_schema.REFERENTIAL_CONSTRAINTS
				WHERE constraint_schema = 'shop' ORDER BY 1;
			SELECT trigger_name, event_manipulation, event_object_table,
				action_timing, action_statement, definer
				FROM information_schema.TRIGGERS
				WHERE trigger_schema = 'shop' ORDER BY 1;
			SELECT routine_name, routine_type, data_type, sql_data_access,
				routine_definition, definer
				FROM information_schema.ROUTINES
				WHERE routine_schema = 'shop' ORDER BY 1;" 2>&1
	}
	mdb_totals() {
		sqlp "$1" -N -e "SELECT shop.customer_total(1), shop.customer_total(7),
			shop.customer_total(42), shop.customer_total(1000)" 2>&1
	}
	is "$(mdb_meta "$M1" | cut -f1 | tr '\n' ' ')" \
		"audit blobs customers items orders fk_orders_customer orders_audit add_order customer_total " \
		"MariaDB: the tables, the foreign key, the trigger and the routines are there"
	is "$(mdb_counts "$M1")" "5000 9 1000 3000 5000" \
		"MariaDB: 5000 orders, 5000 audit rows by the trigger, 1000 customers, 3000 items, 9 BLOBs"
	is "$(sql1 -N -e 'SELECT id, LENGTH(payload), SHA2(payload, 256) FROM shop.blobs ORDER BY id' 2>&1)" \
		"$(cat "$T/blobs.want")" "MariaDB: the BLOBs stored byte for byte"
	is "$(sql1 -N -e 'SELECT HEX(name) FROM shop.customers WHERE id = 7' 2>&1)" "$NAME7_HEX" \
		"MariaDB: the UTF-8 name stored byte for byte"

	# mdb_check DESC PORT: the server on PORT, restored from a dump of the
	# first, holds the same tables, rows, trigger and routines.
	mdb_check() {
		local d=$1 p=$2 s1 s2 t1
		s1=$(mdb_sums "$M1")
		s2=$(mdb_sums "$p")
		is "$(printf '%s\n' "$s1" | grep -cE '^shop\.[a-z]+[[:space:]]+[0-9]+$')" 5 \
			"$d: CHECKSUM TABLE of the five tables on the first server"
		is "$s2" "$s1" "$d: CHECKSUM TABLE equal for every table"
		is "$(mdb_counts "$p")" "$(mdb_counts "$M1")" "$d: the same row counts"
		is "$(mdb_meta "$p")" "$(mdb_meta "$M1")" "$d: the same tables, foreign key, trigger and routines"
		is "$(sqlp "$p" -N -e 'SELECT id, LENGTH(payload), SHA2(payload, 256) FROM shop.blobs ORDER BY id' 2>&1)" \
			"$(cat "$T/blobs.want")" "$d: every BLOB byte for byte (0x00, quote, backslash, 0xff, empty, NULL)"
		is "$(sqlp "$p" -N -e 'SELECT HEX(name) FROM shop.customers WHERE id = 7' 2>&1)" "$NAME7_HEX" \
			"$d: the UTF-8 name byte for byte"
		like "$(sqlp "$p" -N -e 'SHOW TRIGGERS FROM shop' 2>&1)" \
			'^orders_audit[[:space:]]+INSERT[[:space:]]+orders[[:space:]].*AFTER' "$d: SHOW TRIGGERS lists the trigger"
		like "$(sqlp "$p" -N -e "SHOW FUNCTION STATUS WHERE Db = 'shop'" 2>&1)" \
			'^shop[[:space:]]+customer_total[[:space:]]+FUNCTION' "$d: SHOW FUNCTION STATUS lists the function"
		like "$(sqlp "$p" -N -e "SHOW PROCEDURE STATUS WHERE Db = 'shop'" 2>&1)" \
			'^shop[[:space:]]+add_order[[:space:]]+PROCEDURE' "$d: SHOW PROCEDURE STATUS lists the procedure"
		t1=$(mdb_totals "$M1")
		like "$t1" '^[0-9]+\.[0-9]{2}([[:space:]]+[0-9]+\.[0-9]{2}){3}$' "$d: the function answers on the first server"
		is "$(mdb_totals "$p")" "$t1" "$d: the function returns the same"
	}
	# mdb_fire DESC PORT: an INSERT fires the trigger; the procedure
	# inserts through it; the foreign key refuses an unknown customer.
	mdb_fire() {
		local d=$1 p=$2 n0
		n0=$(sqlp "$p" -N -e 'SELECT COUNT(*) FROM shop.audit' 2>&1)
		like "$(sqlp "$p" -N -e "
			INSERT INTO shop.orders (customer_id, total, note) VALUES (42, 12.34, 'after the restore');
			SELECT CONCAT(order_id = LAST_INSERT_ID(), ' ', action) FROM shop.audit ORDER BY id DESC LIMIT 1" 2>&1)" \
			'^1 insert 42 12\.34$' "$d: an INSERT fires the trigger, which writes its audit row"
		like "$(sqlp "$p" -N -e "
			CALL shop.add_order(43, 5, @id);
			SELECT CONCAT(@id = (SELECT MAX(id) FROM shop.orders), ' ',
				(SELECT CONCAT(order_id = @id, ' ', action) FROM shop.audit ORDER BY id DESC LIMIT 1))" 2>&1)" \
			'^1 1 insert 43 5\.00$' "$d: CALL add_order inserts, returns the id, and the trigger fires"
		is "$(sqlp "$p" -N -e 'SELECT COUNT(*) FROM shop.audit' 2>&1)" "$((n0 + 2))" "$d: two audit rows more"
		run sqlp "$p" -e "INSERT INTO shop.orders (customer_id, total) VALUES (999999, 1)"
		exits 1 "$d: the foreign key refuses an order of no customer"
		like "$ERR" '1452|foreign key constraint fails' "$d: error 1452"
	}

	# The option file: root over the server's socket (and its port).
	DEF=$T/my.cnf
	printf '[client]\nuser=root\nsocket=%s\nport=%s\n' "$MARIADB_DIR/sock" "$M1" >"$DEF"
	chmod 600 "$DEF"
	run chom-backup --to "file://$T/mstore" --host db1 -r "$R" --db --db-defaults "$DEF"
	exits 0 "--db --db-defaults: exit 0"
	like "$OUT" "$ID_RE" "--db --db-defaults: prints the point id"
	MP=$T/mstore/db1/$OUT
	is "$(names "$MP")" "db.sql.gz.age manifest.json" "--db --db-defaults: db.sql.gz.age and the manifest"
	is "$(mf "$MP/manifest.json" "[c['status'] for c in m['commands'] if c['part'] == 'db']")" '[0]' \
		"MariaDB: mysqldump's status in the manifest"
	like "$(mf "$MP/manifest.json" 'm["database_server_version"]')" '10\.[0-9]+\.[0-9]+.*MariaDB' \
		"MariaDB: the server version in the manifest"
	like "$(mf "$MP/manifest.json" "[c['command'] for c in m['commands'] if c['part'] == 'db'][0]")" \
		'^mysqldump --defaults-extra-file=.*my\.cnf.* --single-transaction .*--routines .*--events .*--triggers .*--all-databases' \
		"MariaDB: the default mysqldump command, credentials by option file"
	# A user with a password: it goes through the option file only.
	printf '[client]\nuser=backup\npassword=S3cret-pw\nhost=127.0.0.1\nport=%s\n' "$M1" >"$T/pw.cnf"
	chmod 600 "$T/pw.cnf"
	run chom-backup --to "file://$T/mstore-pw" --host db1 -r "$R" --db --db-defaults "$T/pw.cnf"
	exits 0 "--db-defaults with a password: exit 0"
	# shellcheck disable=SC2016 # backquotes of SQL, not of the shell
	ok "--db-defaults with a password: the dump decrypts" \
		grep -q 'INSERT INTO `items`' <(age -d -i "$KEY" "$T/mstore-pw/db1/$OUT/db.sql.gz.age" | gunzip)
	unlike "$(cat "$T/mstore-pw/db1/$OUT/manifest.json")" 'S3cret-pw' "MariaDB: the password is not in the manifest"
	unlike "$ERR" 'S3cret-pw' "MariaDB: the password is not printed"
	# An option file whose name holds quotes, a dollar and a backslash.
	QDEF="$T/it's \"my\" \$HOME \\ o'clock.cnf"
	cp "$DEF" "$QDEF"
	chmod 600 "$QDEF"
	run chom-backup --to "file://$T/mstore-q" --host db1 -r "$R" --db --db-defaults "$QDEF"
	exits 0 "--db-defaults of a path with quotes, \$ and \\: exit 0"
	# shellcheck disable=SC2016
	ok "--db-defaults of a path with quotes: the dump decrypts" \
		grep -q 'CREATE TABLE `items`' <(age -d -i "$KEY" "$T/mstore-q/db1/$OUT/db.sql.gz.age" | gunzip)
	c=$(mf "$T/mstore-q/db1/$OUT/manifest.json" "[c['command'] for c in m['commands'] if c['part'] == 'db'][0]")
	is "$(bash -c 'eval "set -- $1"; printf "%s|%s" "$1" "$2"' _ "$c")" "mysqldump|--defaults-extra-file=$QDEF" \
		"--db-defaults of a path with quotes: sh reads the path back from the command"
	# No mysqldump on PATH: mariadb-dump, with the same options.
	MDB=$T/path-mariadb-dump
	mkdir -p "$MDB" "$T/path-empty"
	ln -s "$(command -v mariadb-dump)" "$MDB/mariadb-dump"
	CB=$(command -v chom-backup)
	run env PATH="$MDB" "$CB" --to "file://$T/mstore-mdb" --host db1 -r "$R" --db --db-defaults "$DEF"
	exits 0 "no mysqldump on PATH, mariadb-dump: exit 0"
	MDP=$T/mstore-mdb/db1/$OUT
	like "$(mf "$MDP/manifest.json" "[c['command'] for c in m['commands'] if c['part'] == 'db'][0]")" \
		'^mariadb-dump --defaults-extra-file=.*my\.cnf.* --single-transaction --quick --routines --events --triggers --all-databases$' \
		"no mysqldump on PATH: the default command is mariadb-dump with the same options"
	age -d -i "$KEY" "$MDP/db.sql.gz.age" | gunzip >"$T/mdb-dump.sql"
	# shellcheck disable=SC2016
	ok "no mysqldump on PATH: the mariadb-dump dump holds the tables" grep -q 'CREATE TABLE `items`' "$T/mdb-dump.sql"
	# shellcheck disable=SC2016
	ok "no mysqldump on PATH: the mariadb-dump dump holds the trigger" grep -qE 'CREATE.*TRIGGER `?orders_audit`?' "$T/mdb-dump.sql"
	CAT="$(command -v cat) $T/small.sql"
	run env PATH="$MDB" "$CB" --to "file://$T/mstore-mdb2" --host db1 -r "$R" --db --db-cmd "$CAT"
	exits 0 "no mysqldump on PATH, a --db-cmd: exit 0"
	is "$(mf "$T/mstore-mdb2/db1/$OUT/manifest.json" "[c['command'] for c in m['commands'] if c['part'] == 'db'][0]")" \
		"$CAT" "no mysqldump on PATH: a --db-cmd is run as given"
	run env PATH="$T/path-empty" "$CB" --to "file://$T/mstore-none" --host db1 -r "$R" --db --db-defaults "$DEF"
	exits 1 "neither mysqldump nor mariadb-dump on PATH: exit 1"
	like "$ERR" 'mysqldump' "neither on PATH: the error names mysqldump"
	no_point_left "neither on PATH" "$T/mstore-none" db1
	age -d -i "$KEY" "$MP/db.sql.gz.age" | gunzip >"$T/mdump.sql"
	# shellcheck disable=SC2016
	ok "MariaDB: the dump decrypts and gunzips" grep -q 'CREATE TABLE `items`' "$T/mdump.sql"
	# shellcheck disable=SC2016
	ok "MariaDB: the dump holds the trigger" grep -qE 'CREATE.*TRIGGER `?orders_audit`?' "$T/mdump.sql"
	# shellcheck disable=SC2016
	ok "MariaDB: the dump holds the function" grep -qE 'CREATE.*FUNCTION `?customer_total`?' "$T/mdump.sql"
	# shellcheck disable=SC2016
	ok "MariaDB: the dump holds the procedure" grep -qE 'CREATE.*PROCEDURE `?add_order`?' "$T/mdump.sql"
	MARIADB_DIR=$T/mariadb2
	if mariadb_start; then
		M2=$MARIADB_PORT
		timeout 120 age -d -i "$KEY" "$MP/db.sql.gz.age" | timeout 120 gunzip |
			sqlp "$M2" 2>"$T/m2.err"
		st="${PIPESTATUS[*]}"
		is "$st" "0 0 0" "MariaDB: age -d | gunzip | mariadb restores the dump into a fresh server"
		[ "$st" = "0 0 0" ] || diag "$(head -5 "$T/m2.err")"
		c1=$(sql1 -N -e 'CHECKSUM TABLE shop.items' 2>&1)
		c2=$(sqlp "$M2" -N -e 'CHECKSUM TABLE shop.items' 2>&1)
		like "$c1" '^shop\.items[[:space:]]+[0-9]+$' "MariaDB: CHECKSUM TABLE on the first server"
		is "$c2" "$c1" "MariaDB: CHECKSUM TABLE equal after the restore"
		is "$(sqlp "$M2" -N -e 'SELECT COUNT(*) FROM shop.items' 2>&1)" \
			3000 "MariaDB: 3000 rows restored"
		mdb_check "MariaDB, gzip" "$M2"
		# The same statements on both servers leave them equal.
		mdb_fire "MariaDB, gzip, restored" "$M2"
		mdb_fire "MariaDB, the first server" "$M1"
		is "$(mdb_sums "$M2")" "$(mdb_sums "$M1")" \
			"MariaDB, gzip: CHECKSUM TABLE still equal after the same statements on both"
	else
		ok "a second mariadbd starts" false
	fi
	# The same with zstd, restored into a third fresh server.
	run timeout 120 chom-backup --to "file://$T/mstore-zstd" --host db1 -r "$R" --db --db-defaults "$DEF" --compress zstd
	exits 0 "--db --compress zstd: exit 0"
	like "$OUT" "$ID_RE" "--db --compress zstd: prints the point id"
	MZ=$T/mstore-zstd/db1/$OUT
	is "$(names "$MZ")" "db.sql.zst.age manifest.json" "--db --compress zstd: db.sql.zst.age and the manifest"
	MARIADB_DIR=$T/mariadb3
	if mariadb_start; then
		M3=$MARIADB_PORT
		timeout 120 age -d -i "$KEY" "$MZ/db.sql.zst.age" | timeout 120 zstd -dc |
			sqlp "$M3" 2>"$T/m3.err"
		st="${PIPESTATUS[*]}"
		is "$st" "0 0 0" "MariaDB: age -d | zstd -d | mariadb restores the dump into a fresh server"
		[ "$st" = "0 0 0" ] || diag "$(head -5 "$T/m3.err")"
		mdb_check "MariaDB, zstd" "$M3"
		mdb_fire "MariaDB, zstd, restored" "$M3"
		mdb_fire "MariaDB, the first server again" "$M1"
		is "$(mdb_sums "$M3")" "$(mdb_sums "$M1")" \
			"MariaDB, zstd: CHECKSUM TABLE still equal after the same statements on both"
	else
		ok "a third mariadbd starts" false
	fi
	MARIADB_DIR=$T/mariadb
	# A wrong password: mysqldump fails, the backup fails, nothing left.
	printf '[client]\nuser=backup\npassword=wrong\nhost=127.0.0.1\nport=%s\n' "$M1" >"$T/bad.cnf"
	chmod 600 "$T/bad.cnf"
	run chom-backup --to "file://$T/mstore2" --host db1 -r "$R" --db --db-defaults "$T/bad.cnf"
	exits 1 "MariaDB, wrong password: exit 1"
	like "$ERR" 'chom-backup: .*(Access denied|1045)' "MariaDB, wrong password: mysqldump's error relayed"
	unlike "$ERR" 'wrong' "MariaDB, wrong password: the password is not printed"
	no_point_left "MariaDB, wrong password" "$T/mstore2" db1
else
	ok "mariadbd starts" false
fi

# --- --all ----------------------------------------------------------------------
# BASE/shared from CHOM_BASE, else [global] base of the configuration; the
# configuration: those of /etc/nginx, /etc/php, /etc/chom, /etc/mysql and
# /etc/redis that exist on this machine.
AB=$T/allbase
mkdir -p "$AB/shared/storage/app"
printf 'APP_ENV=production\n' >"$AB/shared/.env"
printf 'upload\n' >"$AB/shared/storage/app/u.txt"
want_etc=$(for d in /etc/nginx /etc/php /etc/chom /etc/mysql /etc/redis; do
	[ -e "$d" ] && printf '%s\n' "${d#/}"
done | LC_ALL=C sort)
run env CHOM_BASE="$AB" chom-backup --all --to "file://$T/allstore" --host web1 -r "$R" --db-cmd "cat $T/small.sql"
exits 0 "--all: exit 0"
AP=$T/allstore/web1/$OUT
if [ -n "$want_etc" ]; then
	is "$(names "$AP")" "config.tar.gz.age db.sql.gz.age files.tar.gz.age manifest.json sysinfo.txt.age" \
		"--all: a part of every kind"
	is "$(mf "$AP/manifest.json" 'sorted(p["kind"] for p in m["parts"])')" '["config", "db", "files", "sysinfo"]' \
		"--all: the manifest lists every kind"
	is "$(age -d -i "$KEY" "$AP/config.tar.gz.age" | tar -tzf - | cut -d/ -f1-2 | LC_ALL=C sort -u)" "$want_etc" \
		"--all: the configuration of each of /etc/{nginx,php,chom,mysql,redis} that exists"
else
	is "$(names "$AP")" "db.sql.gz.age files.tar.gz.age manifest.json sysinfo.txt.age" \
		"--all: db, files and sysinfo (no /etc/nginx, /etc/php ... on this machine)"
fi
ok "--all: the dump is the --db-cmd's" cmp -s "$T/small.sql" <(age -d -i "$KEY" "$AP/db.sql.gz.age" | gunzip)
alist=$(age -d -i "$KEY" "$AP/files.tar.gz.age" | tar -tzf - 2>&1)
ok "--all: the files are CHOM_BASE/shared (.env)" grep -qxF "${AB#/}/shared/.env" <<<"$alist"
ok "--all: the files are CHOM_BASE/shared (storage)" grep -qxF "${AB#/}/shared/storage/app/u.txt" <<<"$alist"
is "$(grep -v "^${AB#/}/shared" <<<"$alist")" "" "--all: nothing but CHOM_BASE/shared in the files"
age -d -i "$KEY" "$AP/sysinfo.txt.age" 2>/dev/null | grep -q "$(uname -r)"
ok "--all: the system facts" test $? -eq 0
printf '[global]\nbase = %s\n' "$AB" >"$T/all.conf"
run chom-backup -c "$T/all.conf" --all --config "$CONF" --to "file://$T/allstore2" --host web1 -r "$R" \
	--db-cmd "cat $T/small.sql"
exits 0 "--all, base from [global] of the configuration: exit 0"
ok "--all: the files are [global] base/shared without CHOM_BASE" \
	grep -qxF "${AB#/}/shared/.env" <(age -d -i "$KEY" "$T/allstore2/web1/$OUT/files.tar.gz.age" | tar -tzf -)
is "$(age -d -i "$KEY" "$T/allstore2/web1/$OUT/config.tar.gz.age" | tar -tzf - | grep -vc "^${CONF#/}")" 0 \
	"--all --config PATH: the configuration is PATH only"
run env CHOM_BASE="$T/no-base" chom-backup -c "$T/all.conf" --all --to "file://$T/allstore3" --host web1 -r "$R" \
	--db-cmd "cat $T/small.sql"
exits 1 "--all: CHOM_BASE wins over [global] base (its shared is missing): exit 1"
like "$ERR" "no-base/shared" "--all: CHOM_BASE wins: says which path is missing"

# --- progress on a terminal ---------------------------------------------------
# pty CMD...: CMD on a new pseudo-terminal (its stdin, stdout and stderr);
# prints what CMD wrote there, and exits with its status (killed after
# 120 s, by the hang-up of its terminal).
pty() {
	python3 - "$@" <<'PY'
import os, pty, signal, sys
signal.alarm(120)
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(st))
PY
}
BIG="head -c 30000000 /dev/zero"
run pty chom-backup --to "file://$T/ptystore" --host web1 -r "$R" --db --db-cmd "$BIG"
exits 0 "on a terminal: exit 0"
like "$OUT" 'chom-backup: db: [0-9]+\.[0-9] MiB, [0-9]+\.[0-9] MiB/s, [0-9]+s' \
	"on a terminal: progress, with bytes, rate and time elapsed"
last=$(printf '%s' "$OUT" | grep -aoE 'db: [0-9.]+ MiB' | tail -n 1 | grep -oE '[0-9.]+')
num_ok "on a terminal: the progress reaches the end of the 28.6 MiB dump (${last:-none} MiB)" "${last:-0} >= 24 && ${last:-0} <= 28.7"
like "$OUT" $'\r\e\\[K[0-9]{8}T[0-9]{6}Z' "on a terminal: the progress line is cleared before the point id"
run pty chom-backup -q --to "file://$T/ptystore" --host web1 -r "$R" --db --db-cmd "$BIG"
exits 0 "on a terminal, -q: exit 0"
unlike "$OUT" 'MiB' "on a terminal, -q: no progress"
like "$OUT" '^[0-9]{8}T[0-9]{6}Z' "on a terminal, -q: the point id still"
run chom-backup --to "file://$T/ptystore" --host web1 -r "$R" --db --db-cmd "$BIG"
exits 0 "no terminal (as under cron): exit 0"
is "$ERR" "" "no terminal (as under cron): nothing on stderr"

# Three backups in a row, each done within its second: the lock serialises
# them, and a run that would take the second of the one before takes the
# next second instead of failing on an existing point.
mkdir -p "$T/quick"
echo quick >"$T/quick/f"
rcs=
for i in 1 2 3; do
	run chom-backup -q --no-encrypt --files "$T/quick" --to "file://$T/qstore" --host q
	rcs="$rcs$RC"
done
is "$rcs" 000 "three backups in a row: all succeed"
is "$(ls "$T/qstore/q" | sort -u | wc -l)" 3 "three backups in a row: three points, one per second"
diag "chom-backup.t ran in $(($(date +%s) - T0)) s"
done_testing

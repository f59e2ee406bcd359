#!/usr/bin/env bash
# A disaster-recovery drill (issue 5). A real MariaDB holds a Laravel-like
# database (users, orders with a foreign key, an audit table written by a
# trigger, attachments with binary BLOBs, a stored procedure, a view, an
# event, an application user, thousands of rows) and BASE/shared holds the
# application's files (.env, binary uploads, nested directories, symlinks,
# modes, an empty directory, odd names). chom-backup --all makes a nightly
# point, as cron would (CHOM_BASE and a configuration file);
# then the disaster: the server is stopped, its data directory and
# BASE/shared are deleted. The recovery, timed, is what an operator would
# type: a fresh server, chom-restore --list, --verify, --db, --files. The
# judge is independent of the tools: CHECKSUM TABLE and SHOW CREATE taken
# before the disaster, the trigger made to fire, the application user made
# to log in, and a manifest of the tree (type, mode, owner, size, SHA-256,
# symlink target, mtime in seconds: what tar keeps).
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/servers.sh"

num_ok() {
	if awk "BEGIN { exit !($2) }"; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}
# same_file DESC GOT WANT: two files equal, else the start of the diff.
same_file() {
	if cmp -s "$2" "$3"; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "$(diff -u "$3" "$2" | head -n 30)"
	fi
}
ID_RE='^[0-9]{8}T[0-9]{6}Z$'
T0=$(date +%s)
HOST=drill
STORE=$T/backups
URL=file://$STORE
KEY=$T/key.txt
APP_PW=app-S3cret

# --- 1. The application: a database ---------------------------------------
MARIADB_DIR=$T/db1
if ! mariadb_start; then
	ok "the first mariadbd starts" false
	done_testing
	exit
fi
SOCK1=$MARIADB_DIR/sock
# sqls SOCKET ARG...: the mariadb client as root over SOCKET, bounded.
sqls() {
	timeout 60 mariadb --no-defaults --default-character-set=utf8mb4 \
		--socket="$1" -u root "${@:2}"
}
sqls "$SOCK1" 2>"$T/fill.err" <<EOF
CREATE DATABASE laravel CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'laravel'@'localhost' IDENTIFIED BY '$APP_PW';
GRANT ALL ON laravel.* TO 'laravel'@'localhost';
USE laravel;
CREATE TABLE migrations (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
	migration VARCHAR(255) NOT NULL, batch INT NOT NULL);
CREATE TABLE users (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
	name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
	email_verified_at TIMESTAMP NULL, password VARCHAR(255) NOT NULL,
	remember_token VARCHAR(100) NULL,
	orders_count INT UNSIGNED NOT NULL DEFAULT 0,
	created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL,
	UNIQUE KEY users_email_unique (email));
CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
	user_id BIGINT UNSIGNED NOT NULL,
	status ENUM('pending', 'paid', 'shipped', 'refunded') NOT NULL DEFAULT 'pending',
	total DECIMAL(10,2) NOT NULL, meta JSON NULL,
	created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL,
	KEY orders_user_id_index (user_id),
	CONSTRAINT orders_user_id_foreign FOREIGN KEY (user_id)
		REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE order_events (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
	order_id BIGINT UNSIGNED NOT NULL, event VARCHAR(100) NOT NULL,
	CONSTRAINT order_events_order_id_foreign FOREIGN KEY (order_id)
		REFERENCES orders (id) ON DELETE CASCADE);
CREATE TABLE attachments (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
	order_id BIGINT UNSIGNED NULL, filename VARCHAR(255) NOT NULL,
	content MEDIUMBLOB NULL, sha256 CHAR(64) NULL,
	CONSTRAINT attachments_order_id_foreign FOREIGN KEY (order_id)
		REFERENCES orders (id) ON DELETE SET NULL);
CREATE TABLE settings (\`key\` VARCHAR(191) PRIMARY KEY, value TEXT NOT NULL);
CREATE VIEW user_totals AS
	SELECT u.id AS user_id, COUNT(o.id) AS orders, COALESCE(SUM(o.total), 0) AS total
	FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id;
CREATE EVENT prune_order_events ON SCHEDULE EVERY 1 DAY
	STARTS '2030-01-01 03:00:00' DISABLE
	DO DELETE FROM order_events WHERE id < 0;
DELIMITER //
CREATE TRIGGER orders_after_insert AFTER INSERT ON orders FOR EACH ROW
BEGIN
	INSERT INTO order_events (order_id, event)
		VALUES (NEW.id, CONCAT('created ', NEW.status, ' ', NEW.total));
	UPDATE users SET orders_count = orders_count + 1 WHERE id = NEW.user_id;
END//
CREATE PROCEDURE place_order(IN uid BIGINT UNSIGNED, IN amount DECIMAL(10,2),
	OUT oid BIGINT UNSIGNED)
	MODIFIES SQL DATA
BEGIN
	INSERT INTO orders (user_id, status, total, meta, created_at)
		VALUES (uid, 'paid', amount, '{"via": "place_order"}', NOW());
	SET oid = LAST_INSERT_ID();
END//
DELIMITER ;
INSERT INTO migrations (migration, batch) VALUES
	('2014_10_12_000000_create_users_table', 1),
	('2024_01_01_000000_create_orders_table', 1),
	('2024_02_01_000000_create_attachments_table', 2);
-- 3000 users by a recursive CTE.
SET SESSION max_recursive_iterations = 10000;
INSERT INTO users (name, email, email_verified_at, password, remember_token,
	created_at, updated_at)
	SELECT CONCAT('User ', n, IF(n % 7 = 0, ' Ünïcødé 😀', '')),
		CONCAT('user', n, '@example.test'),
		IF(n % 3 = 0, NULL, '2024-01-01 00:00:00' + INTERVAL n MINUTE),
		CONCAT('\$2y\$12\$', SHA2(n, 256)),
		IF(n % 5 = 0, NULL, LEFT(MD5(n), 60)),
		'2024-01-01 00:00:00' + INTERVAL n MINUTE,
		'2024-06-01 00:00:00' + INTERVAL n SECOND
	FROM (WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 3000)
		SELECT n FROM s) AS seq;
-- 8000 orders by the Sequence engine, each firing the trigger.
INSERT INTO orders (user_id, status, total, meta, created_at, updated_at)
	SELECT 1 + (seq * 7919) % 3000,
		ELT(1 + seq % 4, 'pending', 'paid', 'shipped', 'refunded'),
		((seq * 104729) % 100000) / 100,
		IF(seq % 4 = 0, NULL, JSON_OBJECT('n', seq, 'note', CONCAT('it''s \\\\ "q" ', seq))),
		'2024-03-01 00:00:00' + INTERVAL seq MINUTE,
		'2024-03-02 00:00:00' + INTERVAL seq MINUTE
	FROM seq_1_to_8000;
-- 600 attachments of random bytes (NUL and 0xFF among them).
INSERT INTO attachments (order_id, filename, content)
	SELECT seq, CONCAT('scan-', seq, '.bin'), RANDOM_BYTES(1 + seq % 1024)
	FROM seq_1_to_600;
INSERT INTO settings VALUES ('site.name', 'Drill Shop ☕'),
	('mail.footer', 'Line 1\nLine 2\tTabbed \\\\ backslash');
EOF
ok "the database: tables, foreign keys, trigger, procedure, view, event, rows" test $? -eq 0
[ -s "$T/fill.err" ] && diag "$(head -n 5 "$T/fill.err")"
# BLOBs the dump must escape: every byte value, NUL and 0xFF runs, the quote
# and the backslash, 300 KB of random bytes, empty and a lone NUL.
python3 -c '
import random
r = random.Random(11)
rows = [bytes(range(256)) * 4,
        b"\x00" * 1000 + b"\xff" * 1000 + b"\x00\xff" * 500,
        b"\x00\x27\x5c\xff\x22\n\r\x1a\t%_" * 500,
        r.randbytes(300000),
        b"",
        b"\x00",
        b"ends with a backslash \x5c"]
for i, b in enumerate(rows):
    print("INSERT INTO laravel.attachments (order_id, filename, content) "
          "VALUES (%d, \x27special-%d.bin\x27, X\x27%s\x27);" % (7000 + i, i, b.hex()))
print("UPDATE laravel.attachments SET sha256 = SHA2(content, 256);")
' | sqls "$SOCK1" 2>>"$T/fill.err"
ok "the database: special BLOBs inserted" test $? -eq 0

# tables SOCKET: the base tables of laravel, one per line.
tables() {
	sqls "$1" -N -e "SELECT table_name FROM information_schema.TABLES
		WHERE table_schema = 'laravel' AND table_type = 'BASE TABLE'" 2>&1 | LC_ALL=C sort
}
# sums SOCKET: CHECKSUM TABLE of every base table (the list of the first
# server, so a table missing on the second shows as an error).
sums() {
	local t q=
	for t in "${TABLES[@]}"; do q+="${q:+, }laravel.$t"; done
	sqls "$1" -N -e "CHECKSUM TABLE $q" 2>&1
}
# counts SOCKET: the rows of every base table.
counts() {
	local t q=
	for t in "${TABLES[@]}"; do q+="${q:+ UNION ALL }SELECT '$t', COUNT(*) FROM laravel.\`$t\`"; done
	sqls "$1" -N -e "$q" 2>&1
}
# schema SOCKET: SHOW CREATE of every table, the view, the trigger (without
# its Created time, which a dump does not carry), the procedure and the
# event; then the foreign keys and the application user's grants.
schema() {
	local t
	for t in "${TABLES[@]}"; do sqls "$1" -N -e "SHOW CREATE TABLE laravel.\`$t\`" 2>&1; done
	sqls "$1" -N -e "SHOW CREATE VIEW laravel.user_totals" 2>&1
	trigger "$1"
	procedure "$1"
	sqls "$1" -N -e "SHOW CREATE EVENT laravel.prune_order_events" 2>&1
	sqls "$1" -N -e "SELECT constraint_name, table_name, referenced_table_name,
			update_rule, delete_rule FROM information_schema.REFERENTIAL_CONSTRAINTS
			WHERE constraint_schema = 'laravel' ORDER BY 1;
		SHOW GRANTS FOR 'laravel'@'localhost'" 2>&1
}
trigger() { sqls "$1" -N -e "SHOW CREATE TRIGGER laravel.orders_after_insert" 2>&1 | cut -f 1-6; }
procedure() { sqls "$1" -N -e "SHOW CREATE PROCEDURE laravel.place_order" 2>&1; }
blobs() {
	sqls "$1" -N -e "SELECT id, LENGTH(content), SHA2(content, 256), sha256 = SHA2(content, 256)
		FROM laravel.attachments ORDER BY id" 2>&1
}

mapfile -t TABLES < <(tables "$SOCK1")
is "${TABLES[*]}" "attachments migrations order_events orders settings users" \
	"the database: six base tables"
counts "$SOCK1" >"$T/counts.before"
is "$(tr '\t\n' '= ' <"$T/counts.before")" \
	"attachments=607 migrations=3 order_events=8000 orders=8000 settings=2 users=3000 " \
	"the database: 3000 users, 8000 orders, 8000 trigger rows, 607 attachments"
is "$(sqls "$SOCK1" -N -e 'SELECT SUM(orders_count) FROM laravel.users' 2>&1)" 8000 \
	"the database: the trigger counted every order on its user"
is "$(sqls "$SOCK1" -N -e "SELECT COUNT(*) FROM laravel.attachments
	WHERE LOCATE(X'00', content) > 0 AND LOCATE(X'FF', content) > 0" 2>&1 | awk '{ print ($1 > 100) }')" 1 \
	"the database: BLOBs holding both NUL and 0xFF bytes"

# --- 1. The application: BASE/shared ----------------------------------------
BASE=$T/srv/www/shop
SHARED=$BASE/shared
mkdir -p "$BASE/releases"
python3 -c '
import hashlib, os, random, sys
top = sys.argv[1]
r = random.Random(5)
def w(rel, data, mode=0o644):
    p = os.path.join(top, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
w(".env", b"APP_NAME=Shop\nAPP_ENV=production\nAPP_KEY=base64:" +
  hashlib.sha256(b"k").hexdigest().encode() + b"\nDB_PASSWORD=" +
  sys.argv[2].encode() + b"\n", 0o600)
w("storage/app/.gitignore", b"*\n!public/\n!.gitignore\n")
w("storage/app/.gitkeep", b"")
w("storage/app/public/avatars/u1.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 +
  b"\x00" * 4096 + b"\xff" * 4096 + r.randbytes(400000))
for i in range(2, 40):
    w("storage/app/public/avatars/u%d.png" % i, b"\x89PNG\r\n\x1a\n" + r.randbytes(r.randrange(1, 20000)))
w("storage/app/public/Relevé de compte été 2024.pdf", b"%PDF-1.7\n" + r.randbytes(30000))
w("storage/app/private/oauth-private.key", b"-----BEGIN PRIVATE KEY-----\n" +
  r.randbytes(64).hex().encode() + b"\n-----END PRIVATE KEY-----\n", 0o600)
w("storage/app/private/oauth-public.key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n", 0o640)
w("storage/app/private/invoices/2024/03/inv-000123.pdf", b"%PDF-1.4\n" + r.randbytes(50000))
w("storage/app/private/invoices/2024/04/inv-000124.pdf", b"%PDF-1.4\n" + r.randbytes(20000))
w("storage/logs/laravel.log", b"".join(b"[2024-03-01 00:00:%02d] production.INFO: order %d\n"
  % (i % 60, i) for i in range(5000)), 0o664)
w("bin/queue-worker.sh", b"#!/bin/sh\nexec php artisan queue:work\n", 0o755)
for i in range(300):
    h = hashlib.sha1(b"%d" % i).hexdigest()
    w("storage/framework/cache/data/%s/%s/%s" % (h[:2], h[2:4], h),
      b"1767225600a:1:{s:1:\"n\";i:%d;}" % i)
os.makedirs(os.path.join(top, "storage/framework/sessions"))
os.makedirs(os.path.join(top, "storage/framework/views"))
os.symlink("avatars/u1.png", os.path.join(top, "storage/app/public/latest.png"))
os.symlink("storage/app/public", os.path.join(top, "public-storage"))
os.symlink("../../.env", os.path.join(top, "storage/app/env-link"))
os.chmod(os.path.join(top, "storage/app/private"), 0o700)
os.chmod(os.path.join(top, "storage/logs"), 0o775)
# Every entry gets its own time in 2024 (with nanoseconds, of which tar
# keeps the seconds), set once the tree is complete.
paths = [top]
for d, dirs, files in os.walk(top):
    paths += [os.path.join(d, n) for n in dirs + files]
for p in sorted(paths, key=lambda p: (-p.count("/"), p)):
    t = 1704067200 + r.randrange(31536000)
    os.utime(p, ns=(t * 10**9 + r.randrange(10**9),) * 2, follow_symlinks=False)
' "$SHARED" "$APP_PW"
ok "BASE/shared created" test -f "$SHARED/.env"

# manifest DIR: one line per entry of DIR, itself included: path, type,
# mode, owner, size, SHA-256 or symlink target, mtime in seconds.
manifest() {
	python3 -c '
import hashlib, os, stat, sys
top = sys.argv[1]
out = []
def entry(p):
    st = os.lstat(p)
    m = st.st_mode
    rel = os.path.relpath(p, top)
    if stat.S_ISDIR(m):
        kind, what = "d", "-"
    elif stat.S_ISLNK(m):
        kind, what = "l", os.readlink(p)
    elif stat.S_ISREG(m):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for b in iter(lambda: f.read(1 << 16), b""):
                h.update(b)
        kind, what = "f", h.hexdigest()
    else:
        kind, what = "?", "-"
    out.append("%s\t%s\t%04o\t%d:%d\t%s\t%s\t%d" % (rel, kind, stat.S_IMODE(m),
        st.st_uid, st.st_gid, st.st_size if kind == "f" else "-", what,
        st.st_mtime_ns // 10**9))
entry(top)
for d, dirs, files in os.walk(top):
    for n in dirs + files:
        entry(os.path.join(d, n))
print("\n".join(sorted(out)))
' "$1"
}

# --- 2. What must come back -------------------------------------------------
sums "$SOCK1" >"$T/sums.before"
schema "$SOCK1" >"$T/schema.before"
trigger "$SOCK1" >"$T/trigger.before"
procedure "$SOCK1" >"$T/procedure.before"
blobs "$SOCK1" >"$T/blobs.before"
manifest "$SHARED" >"$T/tree.before"
is "$(grep -cE '^laravel\.[a-z_]+[[:space:]]+[0-9]+$' "$T/sums.before")" "${#TABLES[@]}" \
	"before: CHECKSUM TABLE of every table"
like "$(cat "$T/trigger.before")" '^orders_after_insert[[:space:]].*CREATE.*TRIGGER.*orders_after_insert.*AFTER INSERT ON' \
	"before: SHOW CREATE TRIGGER"
like "$(cat "$T/procedure.before")" '^place_order[[:space:]].*CREATE.*PROCEDURE.*place_order' \
	"before: SHOW CREATE PROCEDURE"
like "$(cat "$T/schema.before")" 'prune_order_events.*CREATE.*EVENT' "before: SHOW CREATE EVENT"
like "$(cat "$T/schema.before")" "GRANT ALL PRIVILEGES ON .laravel.\\.\\* TO .laravel.@.localhost." \
	"before: the application user's grants"
is "$(grep -c . "$T/blobs.before")" 607 "before: the length and SHA-256 of every BLOB"
is "$(cut -f 4 "$T/blobs.before" | sort -u)" 1 "before: every BLOB matches its sha256 column"
is "$(cut -f 2 "$T/tree.before" | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')" \
	"d=500 f=349 l=3 " "before: the tree's directories, files and symlinks"
is "$(grep -P '^\.env\t' "$T/tree.before" | cut -f 3)" 0600 "before: .env has mode 0600"

# --- 3. The nightly backup -------------------------------------------------
run chom-backup --keygen "$KEY"
exits 0 "--keygen"
R=$OUT
# What cron runs: chom-backup --all, which finds BASE/shared by CHOM_BASE
# and the rest in the configuration file (CHOM_CONFIG): the target, the
# recipient, the host, the dump command. The usual flags, and
# --flush-privileges: the users of an --all-databases dump are rows of
# mysql.global_priv, which a fresh server reads only at FLUSH PRIVILEGES or
# a restart; without it the application could not log in after the
# restore. --all also takes those of /etc/nginx, /etc/php, /etc/chom,
# /etc/mysql and /etc/redis that exist, as the config part.
DUMP="mariadb-dump --no-defaults --socket=$SOCK1 -u root --single-transaction --quick"
DUMP+=" --routines --events --triggers --flush-privileges --all-databases"
CONF=$T/chom.conf
printf '[backup]\nto = %s\nrecipient = %s\nhost = %s\ndb_cmd = %s\n' \
	"$URL" "$R" "$HOST" "$DUMP" >"$CONF"
ETC=()
for d in /etc/nginx /etc/php /etc/chom /etc/mysql /etc/redis; do
	[ -e "$d" ] && ETC+=("$d")
done
PARTS="db.sql.gz.age files.tar.gz.age manifest.json sysinfo.txt.age "
[ ${#ETC[@]} -gt 0 ] && PARTS="config.tar.gz.age $PARTS"
run env CHOM_BASE="$BASE" CHOM_CONFIG="$CONF" timeout 120 chom-backup --all --label nightly
exits 0 "chom-backup --all (CHOM_BASE, CHOM_CONFIG): exit 0"
like "$OUT" "$ID_RE" "chom-backup prints the point id"
P=$OUT
is "$(find "$STORE/$HOST/$P" -mindepth 1 -printf '%f\n' 2>/dev/null | LC_ALL=C sort | tr '\n' ' ')" \
	"$PARTS" "the point holds the parts of --all (${ETC[*]:-no /etc directory}) and the manifest"
DB_BYTES=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
parts = m["parts"] if isinstance(m["parts"], list) else list(m["parts"].values())
print([p for p in parts if p.get("kind") == "db" or str(p.get("name", "")).startswith("db.")][0]["plain_size"])
' "$STORE/$HOST/$P/manifest.json" 2>&1)
like "$DB_BYTES" '^[0-9]+$' "the manifest gives the dump's size"

# --- 4. The disaster ------------------------------------------------------
_pid_stop "$(cat "$MARIADB_DIR/mariadbd.pid")" 20
run mariadb-admin --no-defaults --socket="$SOCK1" --connect-timeout=2 ping
ok "disaster: the server is down" test "$RC" -ne 0
rm -rf "$MARIADB_DIR" "$SHARED"
ok "disaster: its data directory is gone" test ! -e "$MARIADB_DIR"
ok "disaster: BASE/shared is gone" test ! -e "$SHARED"

# --- 5. The recovery, timed -------------------------------------------------
# Each step's status, stdout and stderr are kept and judged after the clock
# stops.
declare -A S_RC S_OUT S_ERR
step() { # NAME CMD...
	local n=$1
	shift
	run "$@"
	S_RC[$n]=$RC S_OUT[$n]=$OUT S_ERR[$n]=$ERR
}
# judged NAME: RC, OUT and ERR of step NAME, for exits and the rest.
judged() { RC=${S_RC[$1]} OUT=${S_OUT[$1]} ERR=${S_ERR[$1]}; }
RESTORE=(chom-restore --from "$URL" --host "$HOST")
t_start=$EPOCHREALTIME
MARIADB_DIR=$T/db2
mariadb_start
up=$?
SOCK2=$MARIADB_DIR/sock
step list "${RESTORE[@]}" --list
step verify timeout 120 "${RESTORE[@]}" --verify latest -i "$KEY"
step db timeout 120 "${RESTORE[@]}" --db latest -i "$KEY" \
	--db-cmd "mariadb --no-defaults --socket=$SOCK2 -u root"
step files timeout 120 "${RESTORE[@]}" --files latest -i "$KEY" --target "$T/restore"
mv "$T/restore/${SHARED#/}" "$SHARED"
moved=$?
t_end=$EPOCHREALTIME
took=$(LC_ALL=C awk -v a="${t_start/,/.}" -v b="${t_end/,/.}" 'BEGIN { printf "%.3f", b - a }')

ok "recovery: a fresh mariadbd starts" test "$up" -eq 0
judged list
exits 0 "recovery: --list exits 0"
is "$(printf '%s\n' "$OUT" | head -n 1)" \
	"POINT             TIME (UTC)           KINDS                             SIZE  LABEL" \
	"recovery: --list header"
is "$(printf '%s\n' "$OUT" | wc -l)" 2 "recovery: --list shows the one point"
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^${P}[[:space:]].*db.*files.*sysinfo.*[[:space:]]nightly\$" \
	"recovery: --list shows the point's kinds and label"
judged verify
exits 0 "recovery: --verify exits 0"
is "$(printf '%s\n' "$OUT" | sed -E 's/ \([^)]*\)$//' | LC_ALL=C sort | tr '\n' ' ')" \
	"$(for n in $PARTS; do [ "$n" = manifest.json ] || printf '%s %s ok ' "$P" "$n"; done)" \
	"recovery: --verify finds every part ok"
judged db
exits 0 "recovery: --db exits 0"
is "$OUT" "$P" "recovery: --db prints the point restored"
is "$ERR" "" "recovery: --db says nothing on stderr"
judged files
exits 0 "recovery: --files exits 0"
is "$OUT" "$P" "recovery: --files prints the point restored"
is "$ERR" "" "recovery: --files says nothing on stderr"
ok "recovery: the restored tree moved back to BASE/shared" test "$moved" -eq 0
# Left under the target: the directories above BASE/shared, nothing else
# (no temporary directory).
is "$(find "$T/restore" -mindepth 1 | wc -l)" "$(printf '%s' "${BASE#/}" | tr '/' '\n' | grep -c .)" \
	"recovery: nothing left under the target but the directories above BASE/shared"

# --- 6. The judge -----------------------------------------------------------
is "$(tables "$SOCK2" | tr '\n' ' ')" "${TABLES[*]} " "after: the same base tables"
sums "$SOCK2" >"$T/sums.after"
for t in "${TABLES[@]}"; do
	is "$(grep -P "^laravel\\.$t\\t" "$T/sums.after")" "$(grep -P "^laravel\\.$t\\t" "$T/sums.before")" \
		"after: CHECKSUM TABLE $t identical"
done
counts "$SOCK2" >"$T/counts.after"
same_file "after: the same row counts" "$T/counts.after" "$T/counts.before"
blobs "$SOCK2" >"$T/blobs.after"
same_file "after: every BLOB byte for byte (length and SHA-256)" "$T/blobs.after" "$T/blobs.before"
trigger "$SOCK2" >"$T/trigger.after"
same_file "after: SHOW CREATE TRIGGER identical" "$T/trigger.after" "$T/trigger.before"
procedure "$SOCK2" >"$T/procedure.after"
same_file "after: SHOW CREATE PROCEDURE identical" "$T/procedure.after" "$T/procedure.before"
schema "$SOCK2" >"$T/schema.after"
same_file "after: SHOW CREATE of tables, view, trigger, procedure, event; foreign keys; grants" \
	"$T/schema.after" "$T/schema.before"
# The trigger fires: a new order writes its event and counts on its user.
n0=$(sqls "$SOCK2" -N -e 'SELECT orders_count FROM laravel.users WHERE id = 42' 2>&1)
like "$(sqls "$SOCK2" -N -e "
	INSERT INTO laravel.orders (user_id, total, created_at) VALUES (42, 12.34, NOW());
	SELECT CONCAT(order_id = LAST_INSERT_ID(), ' ', event) FROM laravel.order_events
		ORDER BY id DESC LIMIT 1" 2>&1)" '^1 created pending 12\.34$' \
	"after: an INSERT fires the trigger, which writes the order's event"
is "$(sqls "$SOCK2" -N -e 'SELECT orders_count FROM laravel.users WHERE id = 42' 2>&1)" "$((n0 + 1))" \
	"after: the trigger counted the order on its user"
like "$(sqls "$SOCK2" -N -e "
	CALL laravel.place_order(43, 5, @oid);
	SELECT CONCAT(@oid = (SELECT MAX(id) FROM laravel.orders), ' ', event)
		FROM laravel.order_events ORDER BY id DESC LIMIT 1" 2>&1)" '^1 created paid 5\.00$' \
	"after: CALL place_order inserts, and the trigger fires"
run sqls "$SOCK2" -e "INSERT INTO laravel.orders (user_id, total) VALUES (999999, 1)"
exits 1 "after: the foreign key still refuses an order of no user"
like "$ERR" '1452|foreign key constraint fails' "after: error 1452"
# The application logs in with its own user, as Laravel would.
run timeout 60 mariadb --no-defaults --socket="$SOCK2" -u laravel -p"$APP_PW" -N \
	-e 'SELECT COUNT(*) FROM laravel.users'
exits 0 "after: the application user logs in"
is "$OUT" 3000 "after: the application user reads its tables"

manifest "$SHARED" >"$T/tree.after"
same_file "after: the tree's manifest identical (types, modes, owners, sizes, SHA-256, symlinks, mtimes)" \
	"$T/tree.after" "$T/tree.before"
is "$(stat -c %a "$SHARED/.env" 2>&1)" 600 "after: .env has mode 0600"
is "$(readlink "$SHARED/storage/app/public/latest.png")" avatars/u1.png "after: the symlink's target"
ok "after: the empty directory is back" test -d "$SHARED/storage/framework/sessions"
# The configuration the old machine had, into a directory of its own, as
# it was but for the owners and the setuid and setgid bits (stripped, as
# chom-restore(1) says: /etc/redis is setgid on Debian).
if [ ${#ETC[@]} -gt 0 ]; then
	run "${RESTORE[@]}" --config latest -i "$KEY" --target "$T/restore-config"
	exits 0 "after: --config exits 0"
	for d in "${ETC[@]}"; do
		manifest "$d" | cut -f 1-3,5-7 | python3 -c '
import sys
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    f[2] = "%04o" % (int(f[2], 8) & 0o1777)
    print("\t".join(f))
' >"$T/etc.before"
		manifest "$T/restore-config$d" | cut -f 1-3,5-7 >"$T/etc.after"
		same_file "after: --config gives $d back (types, modes, sizes, SHA-256, symlinks, mtimes)" \
			"$T/etc.after" "$T/etc.before"
	done
else
	skip "after: --config" "no /etc directory of --all on this machine"
fi
# What the old machine ran, for rebuilding it.
run "${RESTORE[@]}" --sysinfo latest -i "$KEY"
exits 0 "after: --sysinfo exits 0"
like "$OUT" "$(uname -r)" "after: the sysinfo part names the kernel the backup ran on"

# --- 7. How long it took ----------------------------------------------------
ENTRIES=$(grep -c . "$T/tree.before")
diag "recovery took $took s (db $(awk -v b="$DB_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB, files $ENTRIES entries)"
num_ok "the recovery time is positive" "$took > 0"
diag "dr-drill.t ran in $(($(date +%s) - T0)) s"
done_testing

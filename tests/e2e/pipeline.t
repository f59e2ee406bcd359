#!/usr/bin/env bash
# The whole pipeline end to end, on this machine: MariaDB, PHP-FPM,
# nginx and the S3 server started by the test on 127.0.0.1, and a tiny PHP
# application (tests/e2e/app) whose /health reads the database.
#
#   v1  deployed by tests/e2e/deploy.sh: stage, pre-deploy backup,
#       migrations, health of the staged release, switch --next --exec
#       (PHP-FPM reload), smoke checks
#   v2  deployed with a migration (a column) while a load runs through
#       nginx: no request fails
#   v3  whose /health answers 500: live for the smoke checks, then rolled
#       back by deploy.sh (exit 1), current back on v2, no request failed
#   v4  a canary (tests/e2e/canary.sh, chom-canary between two PHP-FPM
#       pools behind nginx, judged from the access log) under load:
#       promoted, no request failed
#   v5  a canary answering 500 to 30% of requests: rolled back, the errors
#       all the canary's, stable serving everything after
#   the 6-hourly and the daily backups, run by the cron lines (of
#       examples/cron.d/chom, else the README's "Backups from cron"), to a
#       file:// and an s3:// target; the prune lines too
#   the database dropped, and restored from S3 with chom-restore as
#       chom(7)'s runbook says; CHECKSUM TABLE identical; the site healthy
#
# Judges independent of the tools: curl and a load generator of the test's
# own (tests/e2e/load.py) for what the site answers, the mariadb client for
# the data, nginx's access log, age and gunzip for a backup part, awscli for
# the S3 objects.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/servers.sh"
. "$(dirname "$0")/../lib/s3.sh"

E2E=$TOP/tests/e2e
T0=$SECONDS
ID_RE='^[0-9]{8}T[0-9]{6}Z$'
PHP_FPM=${PHP_FPM:-$(command -v php-fpm8.2 || echo /usr/sbin/php-fpm8.2)}

# --- what it needs ---------------------------------------------------------
missing=
[ -x "$PHP_FPM" ] || missing="$missing php8.2-fpm"
command -v php >/dev/null 2>&1 || missing="$missing php8.2-cli"
php -r 'exit(extension_loaded("pdo_mysql") ? 0 : 1);' 2>/dev/null || missing="$missing php8.2-mysql"
for c in mariadbd nginx age jq curl; do
	command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || missing="$missing $c"
done
if [ -n "$missing" ] || s3_missing; then
	skip "the pipeline" "missing:$missing (scripts/install-deps installs them)"
	done_testing
	exit
fi

# num_ok DESC EXPR: an awk comparison.
num_ok() {
	if awk "BEGIN { exit !($2) }" 2>/dev/null; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}
# get URL: the body, then a tab and the status.
get() { curl -s -m 10 -w '\t%{http_code}' "$1" 2>&1 | tr -d '\n'; }
# sql ARG...: the mariadb client as root, bounded.
sql() { timeout 60 mariadb --no-defaults --socket="$MARIADB_DIR/sock" -u root -N "$@"; }
# link NAME: where BASE/NAME points.
link() { readlink "$BASE/$1" 2>/dev/null || echo none; }
# show FILE...: the files' last lines as diagnostics.
show() { local f; for f; do [ -s "$f" ] && diag "$f:" "$(tail -n 15 "$f")"; done; return 0; }

# --- the servers -----------------------------------------------------------
BASE=$T/srv/www/chom
ETC=$T/etc/chom
WS=$T/workstation
LOCAL=$T/var/backups/chom
BUCKET=offsite
FPM_DIR=$T/fpm
NGX_DIR=$T/web
UPSTREAM_FILE=$NGX_DIR/app-upstream.conf
CANARY_LOG=$NGX_DIR/canary.log
mkdir -p "$BASE/shared/storage/logs" "$ETC" "$WS" "$FPM_DIR" "$T/art" "$T/state"

MARIADB_DIR=$T/mariadb
if ! mariadb_start; then
	ok "mariadbd starts" false
	done_testing
	exit
fi
APP_PW=app-pw-$RANDOM$RANDOM
sql -e "CREATE DATABASE app CHARACTER SET utf8mb4;
	CREATE USER 'app'@'localhost' IDENTIFIED BY '$APP_PW';
	GRANT ALL ON app.* TO 'app'@'localhost';"
ok "mariadbd: the database app and its user" test $? -eq 0

if ! s3_start "$BUCKET"; then
	ok "the S3 server starts" false
	done_testing
	exit
fi
export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT CHOM_LOCK_DIR=$T/lock
mkdir -p "$CHOM_LOCK_DIR"

# PHP-FPM: one master, three pools on unix sockets in $FPM_DIR: www serves
# the blue-green site (BASE/current and BASE/next), blue and green the two
# pools of the canary. process_control_timeout lets a reload (SIGUSR2) wait
# for the requests in progress, as a production pool should: without it,
# the workers are killed mid-request.
fpm_conf() {
	local p
	cat <<EOF
[global]
pid = $FPM_DIR/php-fpm.pid
error_log = $FPM_DIR/error.log
daemonize = no
process_control_timeout = 10s
EOF
	for p in www blue green; do
		echo "[$p]"
		# As root, the workers would otherwise refuse to start; they must
		# read $T, which is root's alone.
		[ "$(id -u)" -eq 0 ] && printf 'user = root\ngroup = root\n'
		cat <<EOF
listen = $FPM_DIR/$p.sock
pm = static
pm.max_children = 4
catch_workers_output = yes
php_admin_flag[log_errors] = on
php_admin_value[error_log] = $FPM_DIR/$p-php.log
EOF
	done
}
fpm_conf >"$FPM_DIR/php-fpm.conf"
fpm_args=(-F -y "$FPM_DIR/php-fpm.conf")
[ "$(id -u)" -eq 0 ] && fpm_args+=(-R)
"$PHP_FPM" "${fpm_args[@]}" >"$FPM_DIR/out" 2>&1 &
FPM_PID=$!
at_exit "_pid_stop $FPM_PID 15"
fpm_up() { [ -S "$FPM_DIR/www.sock" ] && [ -S "$FPM_DIR/blue.sock" ] && [ -S "$FPM_DIR/green.sock" ]; }
if ! wait_for 15 fpm_up; then
	ok "php-fpm starts" false
	show "$FPM_DIR/out" "$FPM_DIR/error.log"
	done_testing
	exit
fi
_tap ok "php-fpm starts: pools www, blue and green"
RELOAD="kill -USR2 \$(cat '$FPM_DIR/php-fpm.pid')"

# nginx, one instance, five servers (chom(7) NGINX AND PHP-FPM;
# chom-canary(1) NGINX CONFIGURATION):
#   LIVE   BASE/current/public, pool www: the blue-green site
#   NEXT   BASE/next/public, pool www: the staged release, for checks
#   FRONT  the canary site: every request to the upstream "app" of
#          UPSTREAM_FILE, which chom-canary owns; logged to CANARY_LOG
#   BLUE   BASE/blue/public, pool blue
#   GREEN  BASE/green/public, pool green
php_server() { # PORT ROOT POOL
	cat <<EOF
	server {
		listen 127.0.0.1:$1;
		root $2;
		index index.php;
		location / {
			try_files \$uri /index.php?\$query_string;
		}
		location ~ \.php\$ {
			try_files \$fastcgi_script_name =404;
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME \$realpath_root\$fastcgi_script_name;
			fastcgi_param DOCUMENT_ROOT \$realpath_root;
			fastcgi_pass unix:$FPM_DIR/$3.sock;
		}
	}
EOF
}
web_servers() {
	# The upstream file a person writes once before the first canary:
	# blue alone.
	printf '# written by hand before the first canary\nupstream app {\n\tserver 127.0.0.1:%s;\n}\n' \
		"${NGX_PORTS[3]}" >"$UPSTREAM_FILE"
	cat <<EOF
	log_format chom_canary '\$remote_addr [\$time_local] "\$request" st=\$status '
	                       'ua="\$upstream_addr" urt="\$upstream_response_time"';
	include $UPSTREAM_FILE;
	server {
		listen 127.0.0.1:${NGX_PORTS[2]};
		access_log $CANARY_LOG chom_canary;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_next_upstream off;
		}
	}
EOF
	php_server "${NGX_PORTS[0]}" "$BASE/current/public" www
	php_server "${NGX_PORTS[1]}" "$BASE/next/public" www
	php_server "${NGX_PORTS[3]}" "$BASE/blue/public" blue
	php_server "${NGX_PORTS[4]}" "$BASE/green/public" green
}
if ! nginx_custom_start web 5 web_servers; then
	ok "nginx starts" false
	done_testing
	exit
fi
_tap ok "nginx starts: live, next, front, blue and green servers"
# Its errors from now on (a start retried on another port logged some).
NGX_ERR0=$(wc -l <"$NGX_DIR/error.log")
LIVE=http://127.0.0.1:${NGX_PORTS[0]}
NEXT=http://127.0.0.1:${NGX_PORTS[1]}
FRONT=http://127.0.0.1:${NGX_PORTS[2]}
BLUE_ADDR=127.0.0.1:${NGX_PORTS[3]}
GREEN_ADDR=127.0.0.1:${NGX_PORTS[4]}
NGX="/usr/sbin/nginx -p $NGX_DIR/ -e $NGX_DIR/error.log -c $NGX_DIR/nginx.conf"

# --- the server's configuration --------------------------------------------
# The age identity stays on the workstation; the server has the recipient.
run chom-backup --keygen "$WS/backup.key"
exits 0 "chom-backup --keygen on the workstation"
RECIPIENT=$OUT
install -m 600 /dev/null "$ETC/backup.cnf"
printf '[client]\nuser = root\nsocket = %s\n' "$MARIADB_DIR/sock" >"$ETC/backup.cnf"
install -m 600 /dev/null "$ETC/restore.cnf"
cat "$ETC/backup.cnf" >"$ETC/restore.cnf"
cat >"$ETC/chom.conf" <<EOF
[global]
base = $BASE

[backup]
to = file://$LOCAL
to = s3://$BUCKET/chom
recipient = $RECIPIENT
db_defaults = $ETC/backup.cnf
host = web1

[restore]
from = file://$LOCAL
host = web1
identity = $ETC/backup.key

[canary]
upstream_file = $UPSTREAM_FILE
upstream = app

test_cmd = $NGX -t -q
reload_cmd = $NGX -s reload
access_log = $CANARY_LOG
steps = 25,100
interval = 3s
sample = 1s
min_requests = 20
max_error_rate = 0.02
max_p95 = 1s
state_dir = $T/state
EOF
export CHOM_CONFIG=$ETC/chom.conf CHOM_BASE=$BASE
# The application's settings, in BASE/shared (chom-stage --link .env).
cat >"$BASE/shared/.env" <<EOF
APP_NAME=e2e
DB_SOCKET=$MARIADB_DIR/sock
DB_DATABASE=app
DB_USERNAME=app
DB_PASSWORD=$APP_PW
EOF
chmod 600 "$BASE/shared/.env"
export DEPLOY_NEXT_URL=$NEXT DEPLOY_LIVE_URL=$LIVE DEPLOY_RELOAD=$RELOAD \
	DEPLOY_SMOKE_DEADLINE=5 CANARY_BLUE=$BLUE_ADDR CANARY_GREEN=$GREEN_ADDR

# --- the artifacts ---------------------------------------------------------
# app-vN.tar.gz: the application, its VERSION, and the migrations of
# versions 1 to N (migrations/000K_*.sql belongs to vK); with a
# sha256sum file beside it, as CI makes them.
for n in 1 2 3 4 5; do
	src=$T/build/v$n
	mkdir -p "$src/migrations"
	cp -a "$E2E/app/public" "$E2E/app/storage" "$E2E/app/bootstrap.php" \
		"$E2E/app/migrate.php" "$src/"
	for m in "$E2E"/app/migrations/*.sql; do
		k=$(basename "$m" | sed -E 's/^0*([0-9]+)_.*/\1/')
		[ "$k" -le "$n" ] && cp "$m" "$src/migrations/"
	done
	echo "v$n" >"$src/VERSION"
	tar -C "$src" -czf "$T/art/app-v$n.tar.gz" . &&
		(cd "$T/art" && sha256sum "app-v$n.tar.gz" >"app-v$n.tar.gz.sha256")
done
ok "artifacts app-v1..5.tar.gz and their checksums" test -s "$T/art/app-v5.tar.gz.sha256"

# deploy SCRIPT VERSION: runs tests/e2e/SCRIPT on app-VERSION.tar.gz, as CI
# would (with a job summary), bounded. Not in the second the last one ended:
# a point id is the second a backup starts, and a second backup in the same
# second fails (chom-backup(1), Layout), and the deploy with it.
LAST_END=0
deploy() {
	while [ "$(date +%s)" -le "$LAST_END" ]; do sleep 0.05; done
	run env GITHUB_STEP_SUMMARY="$T/summary.md" timeout 180 \
		sh "$E2E/$1" "$T/art/app-$2.tar.gz"
	LAST_END=$(date +%s)
	[ "$RC" = 0 ] || diag "$1 $2: exit $RC" "$(printf '%s\n' "$ERR" | tail -n 15)"
}

# load_begin NAME URL: tests/e2e/load.py on URL, 100 requests a second over 4
# connections, until load_end (90 s at most).
load_begin() {
	rm -f "$T/load-$1.stop" "$T/load-$1.json"
	python3 "$E2E/load.py" --url "$2" --conns 4 --rate 100 --seconds 90 \
		--stop "$T/load-$1.stop" --out "$T/load-$1.json" 2>"$T/load-$1.err" &
	LOAD_PID=$!
	at_exit "touch '$T/load-$1.stop'; _pid_stop $LOAD_PID 5"
	sleep 0.5
}
# load_end NAME: stops it and waits for its tally.
load_end() {
	touch "$T/load-$1.stop"
	wait_for 20 test -s "$T/load-$1.json" || _pid_stop "$LOAD_PID" 5
	wait "$LOAD_PID" 2>/dev/null
	[ -s "$T/load-$1.json" ] || diag "load $1: no tally" "$(cat "$T/load-$1.err")"
}
# lj NAME PYEXPR: PYEXPR over the tally of load NAME (m).
lj() { mf "$T/load-$1.json" "$2"; }
# load_clean NAME DESC: the load had requests, and none failed.
load_clean() {
	local n f
	n=$(lj "$1" 'm["requests"]') f=$(lj "$1" 'm["failed"]')
	num_ok "$2: the load made requests ($n)" "${n:-0} > 50"
	is "$f" 0 "$2: no request failed (of $n: $(lj "$1" 'm["status"]') $(lj "$1" 'm["errors"]'))"
	[ "$f" = 0 ] || diag "$(lj "$1" '"\n".join(m["first_failures"])')"
}
# migrations: the migrations recorded in app.migrations, in order.
migrations() { sql -e 'SELECT GROUP_CONCAT(migration ORDER BY id) FROM app.migrations' 2>&1; }
points() { # LABEL: the points of the file target with that label
	local d
	for d in "$LOCAL"/web1/*/manifest.json; do
		[ -e "$d" ] || continue
		[ "$(mf "$d" 'm["label"]')" = "$1" ] && basename "$(dirname "$d")"
	done
}

# --- v1 --------------------------------------------------------------------
deploy deploy.sh v1
exits 0 "v1: deploy.sh exits 0"
is "$(link current)" releases/app-v1 "v1: current is app-v1"
is "$(link next)" none "v1: next is gone once live"
is "$(readlink "$BASE/releases/app-v1/.env")" ../../shared/.env "v1: .env linked into BASE/shared"
is "$(get "$LIVE/")" $'app v1: 3 items\t200' "v1: the live site shows v1's page"
is "$(get "$LIVE/health")" $'ok v1\t200' "v1: /health reads the database"
is "$(migrations)" 0001_create_items "v1: its migration ran"
is "$(points pre-deploy | wc -l)" 1 "v1: a pre-deploy point in the file target"
run sh -c "cd '$BASE/current' && php migrate.php"
is "$OUT" "Nothing to migrate." "v1: php migrate.php again does nothing"

# --- v2, with a migration, under load ----------------------------------------
load_begin v2 "$LIVE/"
deploy deploy.sh v2
sleep 0.5
load_end v2
exits 0 "v2: deploy.sh exits 0"
is "$(link current)" releases/app-v2 "v2: current is app-v2"
is "$(migrations)" 0001_create_items,0002_add_items_note "v2: its migration ran after v1's"
is "$(sql -e "SELECT COUNT(*) FROM information_schema.COLUMNS
	WHERE table_schema = 'app' AND table_name = 'items' AND column_name = 'note'")" 1 \
	"v2: the column items.note exists"
is "$(get "$LIVE/")" $'app v2: 3 items, 3 notes\t200' "v2: the live site shows v2's page"
load_clean v2 "v2"
num_ok "v2: the load saw v1 and then v2 ($(lj v2 'm["versions"]'))" \
	"$(lj v2 'm["versions"].get("v1", 0)') > 0 && $(lj v2 'm["versions"].get("v2", 0)') > 0"

# --- v3, whose /health fails: rolled back, under load -----------------------
load_begin v3 "$LIVE/"
deploy deploy.sh v3
sleep 0.5
load_end v3
exits 1 "v3: deploy.sh exits 1"
like "$ERR" 'smoke check of v3 failed; rolling back' "v3: deploy.sh says it rolls back"
like "$ERR" "FAIL +$LIVE/health +500 " "v3: chom-health names /health and its 500"
is "$(link current)" releases/app-v2 "v3: current is back on app-v2"
is "$(tail -n 2 "$BASE/.chom/history" | cut -f 2-4 | tr '\t\n' ' /')" \
	"switch app-v2 app-v3/rollback app-v3 app-v2/" "v3: the history shows the switch and the rollback"
is "$(get "$LIVE/health")" $'ok v2\t200' "v3: /health answers ok v2 again"
load_clean v3 "v3"
num_ok "v3: the load saw v3 live for a while, then v2 ($(lj v3 'm["versions"]'))" \
	"$(lj v3 'm["versions"].get("v3", 0)') > 0 && $(lj v3 'm["versions"].get("v2", 0)') > 0"
run chom-switch --list
like "$OUT" 'app-v2 +[0-9TZ:-]+ +current' "v3: chom-switch --list marks app-v2 current"

# --- v4, a canary promoted ---------------------------------------------------
# The canary site: blue serves the live release, as a person sets it up
# before the first canary.
ln -s releases/app-v2 "$BASE/blue"
is "$(get "$FRONT/")" $'app v2: 3 items, 3 notes\t200' "canary site: the front serves v2 through blue"
canary_lines() { [ -f "$CANARY_LOG" ] && wc -l <"$CANARY_LOG" || echo 0; }
load_begin v4 "$FRONT/"
L0=$(canary_lines)
deploy canary.sh v4
sleep 0.5
load_end v4
exits 0 "v4: canary.sh exits 0 (promoted)"
is "$OUT" "promoted $GREEN_ADDR" "v4: chom-canary says green is promoted"
is "$(link green)" releases/app-v4 "v4: green serves app-v4"
is "$(sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([^[:space:];]*\).*/\1/p' "$UPSTREAM_FILE")" \
	"$GREEN_ADDR" "v4: the upstream file holds green alone"
# shellcheck disable=SC2086 # NGX is a command line
ok "v4: nginx -t accepts it" $NGX -t -q
is "$(link current)" releases/app-v4 "v4: chom-switch --next made app-v4 current"
is "$(migrations)" 0001_create_items,0002_add_items_note,0004_create_tags "v4: its migration ran"
is "$(chom-canary --status --json | jq -r '.status + " " + .canary')" "promoted $GREEN_ADDR" \
	"v4: chom-canary --status: promoted"
load_clean v4 "v4"
num_ok "v4: the load saw v2 then v4 ($(lj v4 'm["versions"]'))" \
	"$(lj v4 'm["versions"].get("v2", 0)') > 0 && $(lj v4 'm["versions"].get("v4", 0)') > 0"
tail -n +$((L0 + 1)) "$CANARY_LOG" >"$T/canary-v4.log"
num_ok "v4: the access log has requests of both pools" \
	"$(grep -c "ua=\"$BLUE_ADDR\"" "$T/canary-v4.log") > 0 && $(grep -c "ua=\"$GREEN_ADDR\"" "$T/canary-v4.log") > 0"
is "$(grep -c ' st=5' "$T/canary-v4.log")" 0 "v4: no 5xx in the access log"
is "$(get "$FRONT/")" $'app v4: 3 items, 3 notes, 3 tags\t200' "v4: the front serves v4"

# --- v5, a canary rolled back -------------------------------------------------
load_begin v5 "$FRONT/"
L0=$(canary_lines)
deploy canary.sh v5
load_end v5
exits 1 "v5: canary.sh exits 1 (rolled back)"
like "$OUT" '^rolled back: step 1/2 \(25%\): error rate [0-9.]+% is over 2\.00% and worse than stable' \
	"v5: chom-canary says why it rolled back"
is "$(link blue)" releases/app-v5 "v5: blue was the canary, on app-v5"
is "$(sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([^[:space:];]*\).*/\1/p' "$UPSTREAM_FILE")" \
	"$GREEN_ADDR" "v5: the upstream file holds green alone again"
is "$(link current)" releases/app-v4 "v5: current is still app-v4"
is "$(chom-canary --status --json | jq -r '.status + " " + .stable')" "rolled-back $GREEN_ADDR" \
	"v5: chom-canary --status: rolled back"
tail -n +$((L0 + 1)) "$CANARY_LOG" >"$T/canary-v5.log"
n5=$(grep -c ' st=5' "$T/canary-v5.log")
num_ok "v5: the canary's 500s are in the access log ($n5)" "$n5 > 0"
is "$(grep ' st=5' "$T/canary-v5.log" | grep -vc "ua=\"$BLUE_ADDR\"")" 0 \
	"v5: every 5xx came from the canary"
is "$(lj v5 'sorted(m["status"])')" '["200", "500"]' "v5: the load got 200s and 500s, nothing else"
is "$(lj v5 'm["errors"]')" '{}' "v5: no connection error"
is "$(lj v5 'sorted(m["versions"])')" '["v4", "v5"]' "v5: 200s from v4 and v5 only"
after=$(for _ in $(seq 1 20); do get "$FRONT/"; echo; done | sort | uniq -c | sed 's/^ *//')
is "$after" $'20 app v4: 3 items, 3 notes, 3 tags\t200' "v5: after the rollback, v4 answers everything"
is "$(grep '^### chom-canary' "$T/summary.md" 2>/dev/null | tr '\n' /)" \
	"### chom-canary: promoted/### chom-canary: rolled-back/" "the job summary has both canaries"
is "$(grep -c '^### chom-switch' "$T/summary.md" 2>/dev/null)" 5 \
	"the job summary has every switch and rollback (v1, v2, v3 and its rollback, v4)"

# --- the backups, by the cron lines -----------------------------------------
# From examples/cron.d/chom when it exists, else the README's (or from the
# file CHOM_E2E_CRON names): the commands as cron runs them (cron.d format:
# five time fields, the user), with this machine's paths for the server's.
CRON_SRC=${CHOM_E2E_CRON:-$TOP/examples/cron.d/chom}
[ -f "$CRON_SRC" ] || CRON_SRC=$TOP/README
sed -nE 's/^[[:space:]]*([0-9*\/,-]+)[[:space:]]+([0-9*\/,-]+)([[:space:]]+[0-9*\/,-]+){3}[[:space:]]+[a-z_][a-z0-9_-]*[[:space:]]+(.*chom-backup.*)$/\1 \2\t\4/p' \
	"$CRON_SRC" | sed -E "s#[^[:space:]]*/chom-backup #chom-backup #; s#file://[^[:space:]]*#file://$LOCAL#g;
		s#s3://[^[:space:]]*#s3://$BUCKET/chom#g; s#/etc/chom/#$ETC/#g;
		s#[[:space:]]*>[[:space:]]*/dev/null[[:space:]]*\$##" >"$T/cron.lines"
diag "cron lines of ${CRON_SRC#"$TOP"/}:" "$(cat "$T/cron.lines")"
SIXH=$(awk -F '\t' '$1 ~ / \*\/6$/ && $2 ~ /--db/ && $2 !~ /--prune/ { print $2; exit }' "$T/cron.lines")
DAILY=$(awk -F '\t' '$1 == "0 2" && $2 ~ /--all/ { print $2; exit }' "$T/cron.lines")
mapfile -t PRUNES < <(awk -F '\t' '$2 ~ /--prune/ { print $2 }' "$T/cron.lines")
ok "a 6-hourly line: $SIXH" test -n "$SIXH"
ok "a daily line: $DAILY" test -n "$DAILY"
ok "prune lines: ${#PRUNES[@]}" test "${#PRUNES[@]}" -ge 1

# The file's environment lines too (the S3 credentials file and profile),
# with this machine's paths, and the test S3 server's region and endpoint
# in place of the provider's. The credentials file holds the test server's
# key, under the profile the lines name.
sed -nE 's/^([A-Z_][A-Z0-9_]*)=(.*)$/\1=\2/p' "$CRON_SRC" |
	grep -vE '^(MAILTO|SHELL|PATH|CRON_TZ|HOME|AWS_ENDPOINT_URL[A-Z0-9_]*|AWS_(DEFAULT_)?REGION)=' |
	sed "s#/etc/chom/#$ETC/#g" >"$T/cron.env"
echo AWS_REGION=us-east-1 >>"$T/cron.env"
diag "cron environment:" "$(cat "$T/cron.env")"
install -m 600 /dev/null "$ETC/aws-credentials"
for p in $(printf 'default\n%s\n' "$(sed -n 's/^AWS_PROFILE=//p' "$T/cron.env")" | sort -u); do
	printf '[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
		"$p" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
done >"$ETC/aws-credentials"
mkdir -p "$T/home"
# cron CMD: runs it as cron would: from /, in the file's environment alone
# (no AWS key in the environment: the credentials file of the cron lines,
# else ~/.aws/credentials), with the server's configuration.
cron() {
	local -a e
	mapfile -t e <"$T/cron.env"
	grep -q '^AWS_SHARED_CREDENTIALS_FILE=' "$T/cron.env" ||
		{ mkdir -p "$T/home/.aws" && cp "$ETC/aws-credentials" "$T/home/.aws/credentials"; }
	run env -i -C / HOME="$T/home" LOGNAME=root PATH="$PATH" CHOM_CONFIG="$CHOM_CONFIG" \
		CHOM_BASE="$CHOM_BASE" CHOM_LOCK_DIR="$CHOM_LOCK_DIR" \
		AWS_ENDPOINT_URL="$S3_ENDPOINT" AWS_EC2_METADATA_DISABLED=true \
		ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" "${e[@]}" \
		timeout 120 sh -c "$1"
}
while [ "$(date +%s)" -le "$LAST_END" ]; do sleep 0.05; done
cron "$SIXH"
exits 0 "6-hourly: exit 0"
like "$OUT" "$ID_RE" "6-hourly: prints the point id"
is "$ERR" "" "6-hourly: nothing on stderr (cron mails nothing)"
P6=$OUT
sleep 1.1 # a point a second at most (see deploy)
cron "$DAILY"
exits 0 "daily: exit 0"
like "$OUT" "$ID_RE" "daily: prints the point id"
is "$ERR" "" "daily: nothing on stderr (cron mails nothing)"
PD=$OUT
for c in "${PRUNES[@]}"; do
	cron "$c"
	exits 0 "prune: exit 0: $c"
	is "$ERR" "" "prune: nothing on stderr"
done
run chom-restore --from "s3://$BUCKET/chom" --host web1 --list
exits 0 "chom-restore --list of the S3 target"
like "$OUT" "^$P6 .* db " "S3: the 6-hourly point has the database"
like "$(printf '%s\n' "$OUT" | grep "^$PD ")" "db,files,config,sysinfo.* daily" "S3: the daily point has everything, label daily"
is "$(printf '%s\n' "$OUT" | grep -c ' pre-deploy$')" 5 "S3: the five pre-deploy points are kept"
ok "file target: the daily point's manifest" test -s "$LOCAL/web1/$PD/manifest.json"
is "$(s3_aws s3 ls --recursive "s3://$BUCKET/chom/web1/$PD/" 2>&1 | awk '{ print $4 }' |
	sed 's#.*/##' | LC_ALL=C sort | tr '\n' ' ')" \
	"config.tar.gz.age db.sql.gz.age files.tar.gz.age manifest.json sysinfo.txt.age " \
	"awscli lists the daily point's objects in S3"
like "$(age -d -i "$WS/backup.key" "$LOCAL/web1/$PD/db.sql.gz.age" 2>&1 | gunzip 2>&1 |
	grep -c 'CREATE TABLE .tags.')" '^[1-9]' "age and gunzip read the daily dump: it has the table tags"
like "$(age -d -i "$WS/backup.key" "$LOCAL/web1/$PD/files.tar.gz.age" 2>&1 | tar -tzf - 2>&1)" \
	"${BASE#/}/shared/\\.env" "age and tar read the daily files: BASE/shared/.env"

# --- the database dropped, restored from S3 ----------------------------------
TABLES="app.items, app.migrations, app.tags"
sums() { sql -e "CHECKSUM TABLE $TABLES" 2>&1; }
sums >"$T/sums.before"
is "$(grep -cE '^app\.[a-z]+[[:space:]]+[0-9]+$' "$T/sums.before")" 3 "before: CHECKSUM TABLE of the three tables"
sql -e 'DROP DATABASE app'
ok "disaster: DROP DATABASE app" test $? -eq 0
run chom-health --retries 2 --interval 0.2 "$FRONT/health"
exits 1 "disaster: the site's /health fails"
# The runbook: the identity copied in, mode 600; the point verified, then
# restored from S3.
install -m 600 "$WS/backup.key" "$ETC/backup.key"
run timeout 120 chom-restore --from "s3://$BUCKET/chom" --verify "$PD"
exits 0 "chom-restore --verify the daily point from S3"
run timeout 120 chom-restore --from "s3://$BUCKET/chom" --db "$PD" --db-defaults "$ETC/restore.cnf"
exits 0 "chom-restore --db the daily point from S3"
is "$OUT" "$PD" "chom-restore prints the point restored"
sql -e 'FLUSH PRIVILEGES'
sums >"$T/sums.after"
is "$(cat "$T/sums.after")" "$(cat "$T/sums.before")" "after: CHECKSUM TABLE identical"
run chom-health --retries 5 --interval 0.5 --expect-body '^ok v4' "$FRONT/health" "$LIVE/health"
exits 0 "after: the site's /health answers ok v4 again"
is "$(get "$FRONT/")" $'app v4: 3 items, 3 notes, 3 tags\t200' "after: the front page reads the restored database"
rm -f "$ETC/backup.key"

tail -n +$((NGX_ERR0 + 1)) "$NGX_DIR/error.log" | grep '\[\(error\|crit\|alert\|emerg\)\]' >"$T/nginx.errors"
is "$(grep -c . "$T/nginx.errors")" 0 "nginx logged no error"
show "$T/nginx.errors"
diag "pipeline.t ran in $((SECONDS - T0)) s"
done_testing

# Sourced after harness.sh; brings nginx.sh along. More real servers for the
# tests, each on 127.0.0.1 only, with everything it writes under $T,
# stopped at exit.
#
#   tls_certs DIR           a CA (DIR/ca.crt) and two server certificates
#                           signed by it for localhost, chom.test and
#                           127.0.0.1: DIR/long.{crt,key} valid 365 days
#                           (CN=chom-long.test), DIR/short.{crt,key} valid
#                           5 days (CN=chom-short.test)
#   nginx_custom_start NAME NPORTS FUNC
#                           an nginx of its own in $T/NAME on NPORTS free
#                           ports (array NGX_PORTS); FUNC prints the
#                           server { } blocks, reading NGX_PORTS; waits
#                           until the first port answers HTTP or TLS
#   slow_start SECONDS      a threaded HTTP backend (python3) answering
#                           every GET with 200 after SECONDS; sets SLOW_PORT
#   redis_start [PASSWORD]  redis-server, no persistence, requirepass when
#                           PASSWORD is given; sets REDIS_PORT
#   mariadb_start [ARG...]  mariadb-install-db into $T/mariadb (once), then
#                           mariadbd with ARGs; sets MARIADB_PORT
#   mariadb_fill PORT       opens raw connections to PORT until the server
#                           answers one with an error packet (Too many
#                           connections) and keeps the others open; sets
#                           FILL_PID (kill it to let go; also at exit)
#
# Every wait is bounded; a server that does not come up makes the function
# return 1 after printing its log to stderr.
. "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"

# _pid_stop PID [SECONDS]: TERM, wait up to SECONDS (default 10), then KILL.
_pid_stop() {
	local pid=$1 n=$((${2:-10} * 10)) i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# --- TLS ---------------------------------------------------------------
tls_certs() { # DIR
	local d=$1 name days
	mkdir -p "$d" || return 1
	cat >"$d/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = chom test CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,DNS:chom.test,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl req -x509 -config "$d/openssl.cnf" -extensions ca \
		-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 365 \
		2>>"$d/openssl.log" || { cat "$d/openssl.log" >&2; return 1; }
	for name in long:365 short:5; do
		days=${name#*:} name=${name%:*}
		openssl req -new -config "$d/openssl.cnf" \
			-subj "/CN=chom-$name.test" \
			-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$d/$name.key" -out "$d/$name.csr" \
			2>>"$d/openssl.log" &&
			openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" \
				-CAkey "$d/ca.key" -set_serial "$RANDOM$RANDOM" \
				-days "$days" -extfile "$d/openssl.cnf" \
				-extensions leaf -out "$d/$name.crt" \
				2>>"$d/openssl.log" ||
			{ cat "$d/openssl.log" >&2; return 1; }
	done
	chmod 600 "$d"/*.key
}

# --- nginx with a configuration of the test's own ------------------------
NGX_PORTS=()

_ngx_conf() { # dir func
	local user=
	[ "$(id -u)" -eq 0 ] && user="user root;"
	cat <<EOF
$user
daemon on;
master_process on;
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	server_tokens off;
	default_type text/html;
	types { application/json json; text/plain txt; text/html html; }
	sendfile off;
	open_file_cache off;
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
EOF
	"$2"
	echo "}"
}

# True once something accepts a connection on 127.0.0.1:PORT.
_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

nginx_custom_start() { # NAME NPORTS FUNC
	local dir=$T/$1 n=$2 func=$3 try i p
	mkdir -p "$dir/tmp" || return 1
	for try in 1 2 3 4 5; do
		NGX_PORTS=()
		for ((i = 0; i < n; i++)); do
			p=$(free_port) || return 1
			NGX_PORTS+=("$p")
		done
		_ngx_conf "$dir" "$func" >"$dir/nginx.conf"
		rm -f "$dir/nginx.pid"
		if /usr/sbin/nginx -p "$dir/" -e "$dir/error.log" \
			-c "$dir/nginx.conf" 2>>"$dir/start.log"; then
			at_exit "nginx_stop_dir '$dir'"
			for i in $(seq 1 100); do
				_port_open "${NGX_PORTS[0]}" && return 0
				sleep 0.1
			done
			echo "nginx $1 does not answer on port ${NGX_PORTS[0]}" >&2
			cat "$dir/error.log" >&2 2>/dev/null
			return 1
		fi
		grep -q 'Address already in use' "$dir/start.log" \
			"$dir/error.log" 2>/dev/null || break
	done
	echo "nginx $1 failed to start:" >&2
	cat "$dir/start.log" "$dir/error.log" >&2 2>/dev/null
	return 1
}

# --- a slow HTTP backend ------------------------------------------------
SLOW_PORT=
slow_start() { # SECONDS
	local dir=$T/slow pid i
	mkdir -p "$dir" || return 1
	rm -f "$dir/port"
	python3 -c '
import http.server, os, sys, time
delay = float(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(delay)
        body = ("slow " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
s = S(("127.0.0.1", 0), H)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
' "$1" "$dir/port" >"$dir/log" 2>&1 &
	pid=$!
	at_exit "_pid_stop $pid 5"
	for i in $(seq 1 100); do
		if [ -s "$dir/port" ]; then
			SLOW_PORT=$(cat "$dir/port")
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "slow backend did not start:" >&2
	cat "$dir/log" >&2
	return 1
}

# --- redis --------------------------------------------------------------
REDIS_PORT=
# True once the server answers PING at all (+PONG, or -NOAUTH with a
# password): a judge independent of the tool under test.
_redis_answers() { # port
	timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r l <&3
		case $l in [+-]*) exit 0 ;; esac
		exit 1' _ "$1" 2>/dev/null
}

redis_start() { # [PASSWORD]
	local pw=${1:-} try i pid dir
	local -a args
	for try in 1 2 3 4 5; do
		REDIS_PORT=$(free_port) || return 1
		dir=$T/redis-$REDIS_PORT
		mkdir -p "$dir" || return 1
		args=(--port "$REDIS_PORT" --bind 127.0.0.1 --save ''
			--appendonly no --daemonize no --dir "$dir"
			--logfile "$dir/redis.log")
		[ -n "$pw" ] && args+=(--requirepass "$pw")
		redis-server "${args[@]}" >"$dir/out" 2>&1 &
		pid=$!
		for i in $(seq 1 100); do
			if _redis_answers "$REDIS_PORT"; then
				at_exit "_pid_stop $pid 5"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		_pid_stop "$pid" 5
		grep -q 'Address already in use' "$dir/redis.log" 2>/dev/null ||
			break
	done
	echo "redis-server did not start:" >&2
	cat "$dir/redis.log" "$dir/out" >&2 2>/dev/null
	return 1
}

# --- MariaDB ------------------------------------------------------------
MARIADB_PORT=
MARIADB_DIR=$T/mariadb

_mariadb_user() { [ "$(id -u)" -eq 0 ] && echo --user=root; }

mariadb_start() { # [ARG...] extra mariadbd options
	local dir=$MARIADB_DIR try i pid
	mkdir -p "$dir" || return 1
	if [ ! -d "$dir/data/mysql" ]; then
		# shellcheck disable=SC2046
		mariadb-install-db --no-defaults $(_mariadb_user) \
			--datadir="$dir/data" --skip-test-db \
			--auth-root-authentication-method=normal \
			--innodb-log-file-size=4M >"$dir/install.log" 2>&1 ||
			{ cat "$dir/install.log" >&2; return 1; }
	fi
	for try in 1 2 3 4 5; do
		MARIADB_PORT=$(free_port) || return 1
		: >"$dir/error.log"
		# shellcheck disable=SC2046
		mariadbd --no-defaults $(_mariadb_user) --datadir="$dir/data" \
			--socket="$dir/sock" --pid-file="$dir/mariadbd.pid" \
			--port="$MARIADB_PORT" --bind-address=127.0.0.1 \
			--log-error="$dir/error.log" --skip-log-bin \
			--innodb-log-file-size=4M --innodb-buffer-pool-size=16M \
			"$@" >"$dir/out" 2>&1 &
		pid=$!
		for i in $(seq 1 300); do
			# ping says alive even when access is denied.
			if mariadb-admin --no-defaults -h 127.0.0.1 \
				-P "$MARIADB_PORT" --connect-timeout=2 \
				ping >/dev/null 2>&1; then
				at_exit "_pid_stop $pid 20"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		_pid_stop "$pid" 20
		grep -qi 'Address already in use\|Do you already have another' \
			"$dir/error.log" 2>/dev/null || break
	done
	echo "mariadbd did not start:" >&2
	cat "$dir/error.log" "$dir/out" >&2 2>/dev/null
	return 1
}

FILL_PID=
mariadb_fill() { # PORT
	local f=$MARIADB_DIR/fill.out i
	rm -f "$f"
	# At most 200 connections; each kept until the process is killed, or
	# 60 s at most.
	python3 -c '
import socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
held = []
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    first = s.recv(1024)
    if len(first) >= 5 and first[4] == 0xFF:
        s.close()
        msg = "full after %d: %s" % (len(held), first[7:].decode("latin-1"))
        break
    held.append(s)
else:
    msg = "never full"
with open(out + ".tmp", "w") as f:
    f.write(msg + "\n")
import os; os.rename(out + ".tmp", out)
time.sleep(60)
' "$1" "$f" 2>"$MARIADB_DIR/fill.err" &
	FILL_PID=$!
	at_exit "_pid_stop $FILL_PID 5"
	for i in $(seq 1 150); do
		if [ -s "$f" ]; then
			grep -q '^full' "$f" && return 0
			cat "$f" >&2
			return 1
		fi
		kill -0 "$FILL_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "mariadb_fill: the server did not fill up" >&2
	cat "$MARIADB_DIR/fill.err" >&2 2>/dev/null
	return 1
}

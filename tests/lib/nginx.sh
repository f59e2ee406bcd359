# Sourced after harness.sh: a private nginx on 127.0.0.1 for the tests.
#
#   nginx_start ROOT    serves the directory ROOT (for example
#                       BASE/current/public) on a free port; sets and exports
#                       NGINX_PORT, NGINX_URL and NGINX_DIR; stops at exit.
#   nginx_stop          stops it (also run at exit).
#   nginx_stop_dir DIR  stops the nginx whose pid file is DIR/nginx.pid.
#
# Everything nginx writes (pid file, error log, temporary files) stays in
# $T/nginx. Symlinks are followed and nothing is cached, so every request
# resolves BASE/current afresh: what a blue-green switch relies on.
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
NGINX_PORT=
NGINX_URL=
NGINX_DIR=$T/nginx

_nginx_conf() { # root port
	local user=
	# As root, workers would otherwise run as nobody and could not read $T.
	[ "$(id -u)" -eq 0 ] && user="user root;"
	cat <<EOF
$user
daemon on;
master_process on;
worker_processes 2;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 512; }
http {
	access_log off;
	server_tokens off;
	default_type text/html;
	sendfile off;
	open_file_cache off;
	disable_symlinks off;
	keepalive_requests 1000000;
	client_body_temp_path $NGINX_DIR/tmp/body;
	proxy_temp_path $NGINX_DIR/tmp/proxy;
	fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
	uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
	scgi_temp_path $NGINX_DIR/tmp/scgi;
	server {
		listen 127.0.0.1:$2;
		root $1;
		index index.html;
	}
}
EOF
}

# True once nginx answers HTTP at all (any status: ROOT may not exist yet).
_nginx_answers() {
	local code
	code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$NGINX_URL/" 2>/dev/null)
	[ -n "$code" ] && [ "$code" != 000 ]
}

nginx_start() { # ROOT
	local root=$1 try i
	mkdir -p "$NGINX_DIR/tmp" || return 1
	# A port found free may be taken before nginx binds it: try again.
	for try in 1 2 3 4 5; do
		NGINX_PORT=$(free_port) || return 1
		NGINX_URL=http://127.0.0.1:$NGINX_PORT
		export NGINX_PORT NGINX_URL NGINX_DIR
		_nginx_conf "$root" "$NGINX_PORT" >"$NGINX_DIR/nginx.conf"
		rm -f "$NGINX_DIR/nginx.pid"
		if "$NGINX_BIN" -p "$NGINX_DIR/" -e "$NGINX_DIR/error.log" \
			-c "$NGINX_DIR/nginx.conf" 2>>"$NGINX_DIR/start.log"; then
			at_exit nginx_stop
			for i in $(seq 1 100); do
				_nginx_answers && return 0
				sleep 0.1
			done
			echo "nginx does not answer on $NGINX_URL" >&2
			cat "$NGINX_DIR/error.log" >&2 2>/dev/null
			return 1
		fi
		grep -q 'Address already in use' "$NGINX_DIR/start.log" \
			"$NGINX_DIR/error.log" 2>/dev/null || break
	done
	echo "nginx failed to start:" >&2
	cat "$NGINX_DIR/start.log" "$NGINX_DIR/error.log" >&2 2>/dev/null
	return 1
}

# nginx_stop_dir DIR: stops the nginx whose pid file is DIR/nginx.pid.
nginx_stop_dir() {
	local pid kids i
	[ -s "$1/nginx.pid" ] || return 0
	pid=$(cat "$1/nginx.pid")
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null)
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# Still there after 5 s: the master and its workers, by their ids.
	if kill -0 "$pid" 2>/dev/null; then
		# shellcheck disable=SC2086
		kill -KILL "$pid" $kids 2>/dev/null
	fi
	rm -f "$1/nginx.pid"
}

nginx_stop() { nginx_stop_dir "$NGINX_DIR"; }

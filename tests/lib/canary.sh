# Sourced after harness.sh and servers.sh by tests/cli/chom-canary.t: the
# world a canary release runs in, on 127.0.0.1, everything under $T,
# stopped at exit.
#
#   backend_start NAME POOL   tests/canary/backend.py answering "ok POOL";
#                             sets and exports NAME_PORT (upper case, e.g.
#                             STABLE_PORT) and NAME_ADDR (127.0.0.1:PORT)
#   backend_set NAME K=V...   its behaviour: error_rate=0.3 delay_ms=500
#                             error_status=503 (any subset; restarts the
#                             error pattern)
#   backend_get NAME KEY      a field of its state: requests, errors,
#                             since_ctl, last_path, last_host, ...
#   front_start UPSTREAM STABLE_ADDR
#                             the front nginx: its http block includes
#                             UPSTREAM_FILE ($T/front/upstream-app.conf, first
#                             written by hand: STABLE_ADDR only, upstream
#                             UPSTREAM), proxy_pass http://UPSTREAM, and logs
#                             in the chom_canary format to ACCESS_LOG; sets
#                             FRONT_URL, FRONT_DIR, UPSTREAM_FILE, ACCESS_LOG,
#                             FRONT_TEST and FRONT_RELOAD (the nginx -t and
#                             nginx -s reload commands for this nginx)
#   front_reload              runs FRONT_RELOAD
#   front_reset               writes the hand-made stable-only file again
#                             and reloads; waits until only stable answers
#   front_pools N             N requests through the front nginx (one
#                             connection, curl); prints "stable=S canary=C
#                             other=O"
#   front_wait_only POOL [S]  true once 20 requests in a row through the
#                             front all reach POOL (tries for S seconds,
#                             default 5: a reload takes effect
#                             asynchronously); prints the last tally
#   upstream_servers [FILE]   the addresses of the server lines of FILE
#                             (default UPSTREAM_FILE), one per line
#   prometheus_start ADDR...  /usr/bin/prometheus scraping ADDR/metrics every
#                             second (job "app"); waits until every target
#                             is up and has samples; sets PROM_URL
#   prom_query EXPR           the value of the first series of an instant
#                             query ("NaN" as Prometheus spells it; "empty"
#                             for no series; "error" for an API error)
#   prom_wait EXPR COND [S]
#                             waits (S seconds, default 20) until the value
#                             v of EXPR satisfies COND: an awk condition
#                             such as 'v > 0.2', or NaN, empty or error for
#                             that answer; prints the last value
#   load_start NAME RATE CONNS SECONDS URL...
#                             a rate-limited load generator (RATE requests
#                             per second to each URL), stopping by itself
#                             after SECONDS
#   load_stop NAME            stops it; its tally in $T/load-NAME.json
#   log_start NAME FILE RATE SECONDS LINE...
#                             appends the LINEs, in turn, to FILE at RATE
#                             lines per second (opening FILE for each line, so
#                             that a rotated log is written anew), stopping
#                             by itself after SECONDS
#   log_stop NAME             stops it
#
# Every wait is bounded; a server that does not come up makes its function
# return 1 after printing its log to stderr.

CANARY_PY=${CANARY_PY:-/usr/bin/python3}
[ -x "$CANARY_PY" ] || CANARY_PY=python3
BACKEND_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../canary" && pwd)/backend.py

# --- controllable backends ------------------------------------------------
backend_start() { # NAME POOL
	local name=$1 pool=$2 dir=$T/backend-$1 pid i port var
	mkdir -p "$dir" || return 1
	rm -f "$dir/port"
	"$CANARY_PY" "$BACKEND_PY" --port 0 --pool "$pool" \
		--ready "$dir/port" >"$dir/log" 2>&1 &
	pid=$!
	at_exit "_pid_stop $pid 5"
	for i in $(seq 1 100); do
		if [ -s "$dir/port" ]; then
			port=$(cat "$dir/port")
			var=$(printf '%s' "$name" | tr '[:lower:]-' '[:upper:]_')
			printf -v "${var}_PORT" %s "$port"
			printf -v "${var}_ADDR" %s "127.0.0.1:$port"
			export "${var}_PORT" "${var}_ADDR"
			echo "$port" >"$dir/port.txt"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "backend $name did not start:" >&2
	cat "$dir/log" >&2
	return 1
}

_backend_port() { cat "$T/backend-$1/port.txt"; }

backend_set() { # NAME K=V...
	local port q
	port=$(_backend_port "$1") || return 1
	shift
	q=$(IFS='&' && echo "$*")
	curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$port/__ctl?$q"
}

backend_get() { # NAME KEY
	local port
	port=$(_backend_port "$1") || return 1
	curl -fsS -m 5 "http://127.0.0.1:$port/__ctl" | python3 -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1], "?")
print(v if isinstance(v, str) else json.dumps(v))' "$2"
}

# --- the front nginx ------------------------------------------------------
FRONT_DIR=$T/front
UPSTREAM_FILE=$FRONT_DIR/upstream-app.conf
ACCESS_LOG=$FRONT_DIR/access.log
FRONT_URL=
FRONT_UPSTREAM=app
FRONT_STABLE=
FRONT_TEST=
FRONT_RELOAD=

_front_servers() {
	cat <<EOF
	log_format chom_canary '\$remote_addr [\$time_local] "\$request" st=\$status '
	                       'ua="\$upstream_addr" urt="\$upstream_response_time"';
	include $UPSTREAM_FILE;
	server {
		listen 127.0.0.1:${NGX_PORTS[0]};
		access_log $ACCESS_LOG chom_canary;
		keepalive_requests 1000000;
		location / {
			proxy_pass http://$FRONT_UPSTREAM;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_connect_timeout 2s;
			proxy_read_timeout 10s;
		}
		# Answered by nginx itself: logged with ua="-".
		location = /nginx-only { return 204; }
	}
EOF
}

# The stable-only file a person would have written before any canary.
upstream_initial() {
	printf '# written by hand before chom-canary ran\nupstream %s {\n\tserver %s;\n}\n' \
		"$FRONT_UPSTREAM" "$FRONT_STABLE"
}

front_start() { # UPSTREAM STABLE_ADDR
	FRONT_UPSTREAM=$1 FRONT_STABLE=$2
	mkdir -p "$FRONT_DIR" || return 1
	upstream_initial >"$UPSTREAM_FILE"
	nginx_custom_start front 1 _front_servers || return 1
	FRONT_URL=http://127.0.0.1:${NGX_PORTS[0]}
	local ngx="/usr/sbin/nginx -p $FRONT_DIR/ -e $FRONT_DIR/error.log -c $FRONT_DIR/nginx.conf"
	FRONT_TEST="$ngx -t -q"
	FRONT_RELOAD="$ngx -s reload"
	export FRONT_URL FRONT_DIR UPSTREAM_FILE ACCESS_LOG FRONT_TEST FRONT_RELOAD
}

front_reload() { $FRONT_RELOAD 2>>"$FRONT_DIR/reload.log"; }

front_reset() {
	upstream_initial >"$UPSTREAM_FILE" && front_reload &&
		front_wait_only stable >/dev/null
}

front_pools() { # N
	local n=$1 i
	local -a urls=()
	for ((i = 0; i < n; i++)); do urls+=("$FRONT_URL/pool?$i"); done
	curl -s -m 20 "${urls[@]}" 2>/dev/null | awk '
		$2 == "stable" { s++; next } $2 == "canary" { c++; next } { o++ }
		END { printf "stable=%d canary=%d other=%d\n", s, c, o + 0 }'
}

front_wait_only() { # POOL [SECONDS]
	local want="$1=20" end=$((SECONDS + ${2:-5})) got
	while :; do
		got=$(front_pools 20)
		case " $got " in *" $want "*)
			echo "$got"
			return 0
			;;
		esac
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.2
	done
	echo "$got"
	return 1
}

upstream_servers() { # [FILE]
	sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([^[:space:];]*\).*/\1/p' \
		"${1:-$UPSTREAM_FILE}"
}

# --- Prometheus -----------------------------------------------------------
PROM_URL=
PROM_DIR=$T/prom

prom_query() { # EXPR
	curl -sS -m 5 -G --data-urlencode "query=$1" "$PROM_URL/api/v1/query" \
		2>/dev/null | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
    assert r["status"] == "success"
    d = r["data"]
    if d["resultType"] == "scalar":
        print(d["result"][1])
    elif not d["result"]:
        print("empty")
    else:
        print(d["result"][0]["value"][1])
except Exception:
    print("error")'
}

prom_wait() { # EXPR COND [SECONDS]
	local end=$((SECONDS + ${3:-20})) v
	while :; do
		v=$(prom_query "$1")
		case $2 in
		NaN | empty | error) [ "$v" = "$2" ] && { echo "$v"; return 0; } ;;
		*)
			case $v in
			empty | error | NaN | +Inf | -Inf) ;;
			*) awk -v v="$v" "BEGIN { exit !($2) }" &&
				{ echo "$v"; return 0; } ;;
			esac
			;;
		esac
		[ "$SECONDS" -ge "$end" ] && break
		sleep 0.5
	done
	echo "$v"
	return 1
}

prometheus_start() { # ADDR...
	local try i pid t targets=
	mkdir -p "$PROM_DIR" || return 1
	for t in "$@"; do targets="$targets${targets:+, }'$t'"; done
	cat >"$PROM_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [$targets]
EOF
	for try in 1 2 3 4 5; do
		local port
		port=$(free_port) || return 1
		PROM_URL=http://127.0.0.1:$port
		rm -rf "$PROM_DIR/data"
		/usr/bin/prometheus --config.file="$PROM_DIR/prometheus.yml" \
			--storage.tsdb.path="$PROM_DIR/data" \
			--storage.tsdb.retention.time=1h \
			--web.listen-address="127.0.0.1:$port" \
			--log.level=warn >"$PROM_DIR/log" 2>&1 &
		pid=$!
		for i in $(seq 1 300); do
			if [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' \
				"$PROM_URL/-/ready" 2>/dev/null)" = 200 ]; then
				at_exit "_pid_stop $pid 10"
				break 2
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		_pid_stop "$pid" 10
		grep -qi 'address already in use' "$PROM_DIR/log" 2>/dev/null ||
			{ try=fail; break; }
	done
	if [ "$try" = fail ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "prometheus did not start:" >&2
		cat "$PROM_DIR/log" >&2
		return 1
	fi
	export PROM_URL
	# Every target up and scraped, its samples queryable.
	prom_wait "count(up{job=\"app\"} == 1)" "v == $#" 30 >/dev/null &&
		prom_wait "count(app_requests_total{job=\"app\"})" "v == $#" 30 \
			>/dev/null && return 0
	echo "prometheus does not scrape the targets:" >&2
	curl -s -m 5 "$PROM_URL/api/v1/targets" >&2
	cat "$PROM_DIR/log" >&2
	return 1
}

# --- load ----------------------------------------------------------------
load_start() { # NAME RATE CONNS SECONDS URL...
	local name=$1 rate=$2 conns=$3 secs=$4 u pid
	shift 4
	local -a a=()
	for u in "$@"; do a+=(--load "$u"); done
	rm -f "$T/load-$name.json"
	"$CANARY_PY" "$BACKEND_PY" "${a[@]}" --rate "$rate" --conns "$conns" \
		--duration "$secs" --out "$T/load-$name.json" \
		>"$T/load-$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$T/load-$name.pid"
	at_exit "_pid_stop $pid 15"
}

load_stop() { # NAME
	local f=$T/load-$1.pid
	[ -s "$f" ] || return 0
	_pid_stop "$(cat "$f")" 15
	rm -f "$f"
}

# --- a synthetic access log ---------------------------------------------
log_start() { # NAME FILE RATE SECONDS LINE...
	local name=$1 pid
	shift
	"$CANARY_PY" -c '
import signal, sys, time
path, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
lines = sys.argv[4:]
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
t = time.monotonic()
end, nxt, i = t + secs, t, 0
while time.monotonic() < end:
    with open(path, "a") as f:
        f.write(lines[i % len(lines)] + "\n")
    i += 1
    nxt += 1 / rate
    d = nxt - time.monotonic()
    if d > 0:
        time.sleep(d)
' "$@" >"$T/log-$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$T/log-$name.pid"
	at_exit "_pid_stop $pid 5"
}

log_stop() { # NAME
	local f=$T/log-$1.pid
	[ -s "$f" ] || return 0
	_pid_stop "$(cat "$f")" 5
	rm -f "$f"
}

#!/usr/bin/env bash
# bench/health.sh TOPDIR: times one chom-health call over 50 HTTP targets that
# each answer after about 100 ms, against a sequential shell loop of curl and
# against `xargs -P8 curl`, and against the latency of one target alone.
# Run by `make bench` after `make`.
#
# The slow targets are served on 127.0.0.1 only, by a private nginx in front
# of a private PHP-FPM pool whose script sleeps 100 ms (usleep), both with
# their configuration, sockets, logs and temporary files under a mktemp
# directory; without nginx or PHP-FPM, by a python3 ThreadingHTTPServer that
# sleeps 0.1 s. Both are stopped at the end.
#
# BENCH_RUNS     timed runs of each kind, rotating which goes first (default 5)
# BENCH_BACKEND  nginx (nginx + PHP-FPM) or python; default: nginx when
#                /usr/sbin/nginx and php-fpm are installed, else python
set -euo pipefail
export LC_ALL=C
# No machine configuration, no environment leaks into the measurement.
export CHOM_CONFIG=/dev/null
unset CHOM_BASE GITHUB_STEP_SUMMARY

NTARGETS=50
DELAY_MS=100
NSINGLE=10 # requests timed one at a time for the single-target latency
MAX_RATIO=1.3

. "$(dirname "$0")/lib.sh"
# us2ms MICROSECONDS: milliseconds with 1 decimal.
us2ms() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

[ $# -eq 1 ] || { echo "usage: bench/health.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
health=$top/chom-health/chom-health
[ -x "$health" ] || die "$health is missing: run make first"
command -v curl >/dev/null || die "curl is missing"
runs=${BENCH_RUNS:-5}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"

NGINX=/usr/sbin/nginx
FPM=
for f in /usr/sbin/php-fpm8.2 /usr/sbin/php-fpm*; do
	[ -x "$f" ] && { FPM=$f; break; }
done
backend=${BENCH_BACKEND:-}
if [ -z "$backend" ]; then
	if [ -x "$NGINX" ] && [ -n "$FPM" ]; then backend=nginx; else backend=python; fi
fi
case $backend in
nginx) if [ ! -x "$NGINX" ] || [ -z "$FPM" ]; then die "BENCH_BACKEND=nginx: nginx or php-fpm is not installed"; fi ;;
python) command -v python3 >/dev/null || die "neither nginx + PHP-FPM nor python3 is installed" ;;
*) die "BENCH_BACKEND must be nginx or python" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/chom-bench-health.XXXXXX")
pids=()
cleanup() {
	local p
	# TERM: nginx and PHP-FPM shut down at once; their children go with them.
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port on 127.0.0.1 nobody listens on now. Another program may take it
# before the server does: the servers are started with a few tries.
free_port() {
	local used p i
	used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		grep -qx "$p" <<<"$used" || { echo "$p"; return; }
	done
	die "no free port found"
}

# wait_ready PID URL LOG: waits up to 10 s for URL to answer 200. Returns 1
# when the server process died (a port taken, say), and ends the bench when
# it does not answer in time.
wait_ready() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$1" 2>/dev/null || return 1
		curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	sed 's/^/  /' "$3" >&2 2>/dev/null || true
	die "the server did not answer $2 within 10 s"
}

start_nginx_fpm() {
	local sock=$work/php.sock try user_fpm='' user_nginx='' port
	mkdir -p "$work/nginx/logs" "$work/nginx/tmp" "$work/www"
	# shellcheck disable=SC2016 # PHP's $_GET, not the shell's
	printf '<?php\nusleep(%d);\nheader("Content-Type: text/plain");\necho "ok ", $_GET["i"] ?? "", "\\n";\n' \
	    $((DELAY_MS * 1000)) >"$work/www/slow.php"
	if [ "$(id -u)" -eq 0 ]; then
		user_fpm="user = root
group = root"
		user_nginx="user root;"
	fi
	# Enough children that every target's request sleeps at the same time.
	cat >"$work/php-fpm.conf" <<EOF
[global]
pid = $work/php-fpm.pid
error_log = $work/php-fpm.log
daemonize = no

[bench]
$user_fpm
listen = $sock
listen.backlog = 512
pm = static
pm.max_children = $((NTARGETS + 10))
catch_workers_output = no
EOF
	# -n: no php.ini, so nothing of the machine's PHP setup is loaded.
	"$FPM" -n -F -R -y "$work/php-fpm.conf" >>"$work/php-fpm.log" 2>&1 &
	pids+=($!)
	for ((try = 0; try < 100; try++)); do
		[ -S "$sock" ] && break
		kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/php-fpm.log" >&2; die "php-fpm did not start"; }
		sleep 0.05
	done
	[ -S "$sock" ] || die "php-fpm did not create $sock"

	for ((try = 1; try <= 5; try++)); do
		port=$(free_port)
		cat >"$work/nginx/nginx.conf" <<EOF
$user_nginx
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/nginx/tmp/body;
	proxy_temp_path $work/nginx/tmp/proxy;
	fastcgi_temp_path $work/nginx/tmp/fastcgi;
	uwsgi_temp_path $work/nginx/tmp/uwsgi;
	scgi_temp_path $work/nginx/tmp/scgi;
	server {
		listen 127.0.0.1:$port backlog=512;
		location = /slow {
			fastcgi_pass unix:$sock;
			fastcgi_param SCRIPT_FILENAME $work/www/slow.php;
			fastcgi_param QUERY_STRING \$query_string;
			fastcgi_param REQUEST_METHOD \$request_method;
			fastcgi_param SERVER_PROTOCOL \$server_protocol;
		}
	}
}
EOF
		"$NGINX" -p "$work/nginx" -e "$work/nginx/logs/error.log" \
		    -c "$work/nginx/nginx.conf" 2>>"$work/nginx/logs/error.log" &
		pids+=($!)
		if wait_ready "${pids[-1]}" "http://127.0.0.1:$port/slow?i=0" "$work/nginx/logs/error.log"; then
			PORT=$port
			SERVER="nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') + PHP-FPM $("$FPM" -n -v | awk 'NR == 1 { print $2 }') (pm static, $((NTARGETS + 10)) children), usleep($((DELAY_MS * 1000)))"
			return
		fi
		wait "${pids[-1]}" 2>/dev/null || true
		unset 'pids[-1]'
	done
	sed 's/^/  /' "$work/nginx/logs/error.log" >&2
	die "nginx did not start"
}

start_python() {
	local try port
	cat >"$work/slow.py" <<'PY'
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Slow(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(float(sys.argv[2]) / 1000)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    request_queue_size = 512  # 50 connections at once, none kept waiting
    daemon_threads = True

Server(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
PY
	for ((try = 1; try <= 5; try++)); do
		port=$(free_port)
		python3 "$work/slow.py" "$port" "$DELAY_MS" 2>"$work/python.log" &
		pids+=($!)
		if wait_ready "${pids[-1]}" "http://127.0.0.1:$port/slow?i=0" "$work/python.log"; then
			PORT=$port
			SERVER="python3 ThreadingHTTPServer, time.sleep($(awk -v d=$DELAY_MS 'BEGIN { print d / 1000 }'))"
			return
		fi
		wait "${pids[-1]}" 2>/dev/null || true
		unset 'pids[-1]'
	done
	sed 's/^/  /' "$work/python.log" >&2
	die "the python3 server did not start"
}

PORT='' SERVER=''
if [ "$backend" = nginx ]; then start_nginx_fpm; else start_python; fi

urls=()
for ((i = 1; i <= NTARGETS; i++)); do
	urls+=("http://127.0.0.1:$PORT/slow?i=$i")
done

# The three ways of checking the 50 targets.
chom_health() {
	"$health" "${urls[@]}"
}
seq_curl() {
	local u
	for u in "${urls[@]}"; do curl -fsS -o /dev/null "$u"; done
}
xargs_curl() {
	printf '%s\n' "${urls[@]}" | xargs -P8 -n1 curl -fsS -o /dev/null
}
# run_chom: a timed chom-health call; every target must be reported ok.
# Sets $slowest to the highest latency chom-health reported, in ms.
run_chom() {
	local nok
	timed chom_health
	chom_us+=("$us")
	nok=$(grep -c '^ok ' "$work/out" || true)
	[ "$nok" -eq "$NTARGETS" ] || {
		sed 's/^/  /' "$work/out" >&2
		die "chom-health exited 0 but reported $nok of $NTARGETS targets ok"
	}
	slowest=$(awk '$1 == "ok" { if ($4 > m) m = $4 } END { print m + 0 }' "$work/out")
	chom_slowest+=("$slowest")
}
run_seq() { timed seq_curl; seq_us+=("$us"); }
run_xargs() { timed xargs_curl; xargs_us+=("$us"); }

echo "chom health bench: $(nproc) CPUs, $(uname -sr), curl $(curl -V | head -1 | cut -d' ' -f2)"
echo "server: 127.0.0.1:$PORT, $SERVER"
echo "targets: $NTARGETS URLs http://127.0.0.1:$PORT/slow?i=1..$NTARGETS, each answering after about $DELAY_MS ms"

# One untimed round first: PHP-FPM's children, the page cache and the
# dynamic loader are warm for every kind alike.
chom_us=() seq_us=() xargs_us=() chom_slowest=()
run_chom
run_xargs
chom_us=() xargs_us=() chom_slowest=()

# The latency of one target alone, one request at a time, each on a new
# connection as chom-health makes them.
single=()
for ((i = 1; i <= NSINGLE; i++)); do
	t=$(curl -fsS -o /dev/null -w '%{time_total}' "${urls[i - 1]}") || die "curl ${urls[i - 1]} failed"
	single+=("$(awk -v t="$t" 'BEGIN { printf "%d", t * 1000000 }')")
done
single_med=$(median "${single[@]}")
single_max=$(printf '%s\n' "${single[@]}" | sort -n | tail -1)
printf 'one target alone: curl -w %%{time_total}, %d requests, one to each of i=1..%d: median %s ms, slowest %s ms\n' \
    "$NSINGLE" "$NSINGLE" "$(us2ms "$single_med")" "$(us2ms "$single_max")"
echo
echo "  (a) chom-health URL1 ... URL$NTARGETS                          (must exit 0: all healthy)"
echo "  (b) for u in URLS; do curl -fsS -o /dev/null \"\$u\"; done"
printf '%s\n' "  (c) printf '%s\\n' URLS | xargs -P8 -n1 curl -fsS -o /dev/null"
echo "  $runs timed runs of each, rotating which goes first; wall clock, process starts included:"

for ((r = 1; r <= runs; r++)); do
	case $((r % 3)) in
	1) run_chom; run_seq; run_xargs ;;
	2) run_seq; run_xargs; run_chom ;;
	0) run_xargs; run_chom; run_seq ;;
	esac
	printf '  run %d/%d: (a) chom-health %s s (slowest target it reported: %s ms), (b) sequential curl %s s, (c) xargs -P8 curl %s s\n' \
	    "$r" "$runs" "$(us2s "${chom_us[-1]}")" "${chom_slowest[-1]}" \
	    "$(us2s "${seq_us[-1]}")" "$(us2s "${xargs_us[-1]}")"
done

cm=$(median "${chom_us[@]}")
sm=$(median "${seq_us[@]}")
xm=$(median "${xargs_us[@]}")
echo
printf 'medians: (a) chom-health %s s, (b) sequential curl %s s, (c) xargs -P8 curl %s s\n' \
    "$(us2s "$cm")" "$(us2s "$sm")" "$(us2s "$xm")"
printf '  chom-health / sequential curl:   %sx (%sx faster)\n' "$(ratio "$cm" "$sm")" "$(ratio "$sm" "$cm")"
printf '  chom-health / xargs -P8 curl:    %sx (%sx faster)\n' "$(ratio "$cm" "$xm")" "$(ratio "$xm" "$cm")"
r=$(ratio "$cm" "$single_med")
verdict=$(awk -v c="$cm" -v s="$single_med" -v m="$MAX_RATIO" 'BEGIN { print (c <= m * s) ? "met" : "NOT met" }')
printf '  chom-health / one target alone:  %sx (%s s for %d targets against %s ms for one; target <= %sx %s)\n' \
    "$r" "$(us2s "$cm")" "$NTARGETS" "$(us2ms "$single_med")" "$MAX_RATIO" "$verdict"

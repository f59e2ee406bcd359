#!/usr/bin/env bash
# bench/canary.sh TOPDIR: two measures of chom-canary. Run by `make bench`
# after `make`.
#
# (1) Time to rollback. A front nginx on 127.0.0.1 (its upstream file
#     included in its http block, its access log in the chom_canary format)
#     in front of two tests/canary/backend.py servers, the canary answering
#     50% 5xx; real traffic through the front (wrk, paced); chom-canary
#     --access-log --sample 1s with the real nginx -t and nginx -s reload as
#     --test-cmd and --reload-cmd. Measured: from the moment chom-canary
#     wrote the upstream file for its first step (the file's mtime) to the
#     moment the file held stable only again (its mtime), and to the
#     "result" event on chom-canary's --json stdout (stamped by the bench as
#     it reads each line: nginx checked and reloaded onto stable). Target:
#     the file back on stable within 2 samples.
# (2) CPU of --access-log analysis at 5,000 log lines a second: a python3
#     writer appends lines in the documented format to a log file at that
#     rate, in batches every 20 ms, for 20 s; chom-canary (--test-cmd and
#     --reload-cmd true, --sample 1s, a step far longer than the run,
#     thresholds it cannot cross) and `tail -F LOG | awk` counting requests,
#     errors and mean latency per pool follow it at the same time. Measured:
#     the CPU time (utime + stime of /proc/PID/stat) each used from the
#     writer's start to the moment it had counted every line, over the
#     writer's time. Target: chom-canary under 5% of one core.
#
# Every server listens on 127.0.0.1 only and lives under a mktemp directory;
# everything is stopped at exit.
#
# BENCH_RUNS  runs of each measure (default 5)
set -euo pipefail
export LC_ALL=C
# No machine configuration, no environment leaks into the measurement.
export CHOM_CONFIG=/dev/null
unset CHOM_BASE CHOM_STATE_DIR GITHUB_STEP_SUMMARY

SAMPLE=1          # --sample, in seconds
MAX_SAMPLES=2     # target: the upstream file back on stable within this many samples
BAD_RATE=0.5      # the bad canary's share of 5xx answers
MIN_REQUESTS=50   # --min-requests (chom-canary's default)
LOAD_CONNS=12     # wrk's connections through the front nginx
LOAD_DELAY_MS=8   # wrk's pause between a connection's requests: < 1,500 req/s
LOAD_SECONDS=10   # wrk's -d, a bound: a run ends long before
LOG_RATE=5000     # (2): log lines a second
LOG_SECONDS=20    # (2): for this long
PREFILL=210000    # (2): lines already in the step (about 104,000 a pool)
MAX_CPU=5         # (2): target, percent of one core

. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: bench/canary.sh TOPDIR" >&2; exit 2; }
top=$(cd "$1" && pwd) || exit 2
canary=$top/chom-canary/chom-canary
backend_py=$top/tests/canary/backend.py
[ -x "$canary" ] || die "$canary is missing: run make first"
[ -r "$backend_py" ] || die "$backend_py is missing"
NGINX=/usr/sbin/nginx
PY=/usr/bin/python3
[ -x "$NGINX" ] || die "$NGINX is missing: run scripts/install-deps"
[ -x "$PY" ] || die "$PY is missing: run scripts/install-deps"
for t in wrk curl jq tail awk; do
	command -v "$t" >/dev/null || die "$t is missing: run scripts/install-deps"
done
runs=${BENCH_RUNS:-5}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"
hz=$(getconf CLK_TCK)

work=$(mktemp -d "${TMPDIR:-/tmp}/chom-bench-canary.XXXXXX")
# Clients (chom-canary, wrk, the writer, tail, awk) stop before the servers.
# A pid is taken out of these lists once it has been waited for.
clients=() servers=()
untrack() { # PID
	local i
	for i in "${!clients[@]}"; do [ "${clients[i]}" = "$1" ] && unset 'clients[i]'; done
	for i in "${!servers[@]}"; do [ "${servers[i]}" = "$1" ] && unset 'servers[i]'; done
	return 0
}
cleanup() {
	local p
	for p in "${clients[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${clients[@]}"; do wait "$p" 2>/dev/null || true; done
	# TERM: nginx (daemon off) and the backends stop at once.
	for p in "${servers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy: the binary measured is the same from the first run to the last,
# whatever `make` does meanwhile.
cp "$canary" "$work/chom-canary"
canary=$work/chom-canary

# now_us: the wall clock in microseconds.
now_us() { echo "${EPOCHREALTIME/./}"; }
# mtime_us FILE: its modification time in microseconds.
mtime_us() { local t; t=$(stat -c %.6Y "$1") && echo "${t/./}"; }
# cpu_ticks PID: its user + system time so far, in clock ticks (all threads).
cpu_ticks() {
	local s
	read -r s <"/proc/$1/stat" || return 1
	s=${s##*) }
	# shellcheck disable=SC2086 # the fields are words
	set -- $s
	echo $((${12} + ${13}))
}
# pct CPU_TICKS WALL_US: percent of one core, times 100 (an integer).
pct() { echo $(($1 * 10000000000 / (hz * $2))); }
# pct2s PCT_X100: with 2 decimals.
pct2s() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
# stamp: copies stdin to stdout, each line prefixed with the time it was
# read (EPOCHREALTIME) and a space.
stamp() {
	local l
	while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done
}
# event_line FILE EVENT: the first stamped line of FILE with that event.
event_line() { grep -m1 "^[0-9]* {\"event\":\"$2\"" "$1" || true; }
# wait_file_grep FILE PATTERN SECONDS: waits until FILE has a line matching
# PATTERN (grep -E); false after SECONDS.
wait_file_grep() {
	local i
	for ((i = 0; i < $3 * 50; i++)); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}
# wait_exit PID SECONDS: waits for PID to end and sets $rc to its exit
# status; ends the bench when it is still running after SECONDS.
wait_exit() {
	local i
	for ((i = 0; i < $2 * 50; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.02
	done
	kill -0 "$1" 2>/dev/null && die "process $1 still runs after $2 s"
	rc=0
	wait "$1" || rc=$?
	untrack "$1"
}

# A TCP port on 127.0.0.1 nobody listens on now. Another program may take it
# before nginx does: nginx is started with a few tries.
free_port() {
	local used p i
	used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		grep -qx "$p" <<<"$used" || { echo "$p"; return; }
	done
	die "no free port found"
}

# --- the servers ----------------------------------------------------------

# backend_start NAME POOL: a tests/canary/backend.py on a port of the
# kernel's choice; sets ${NAME}_port.
stable_port='' canary_port=''
backend_start() {
	local i
	"$PY" "$backend_py" --port 0 --pool "$2" --ready "$work/$1.port" >"$work/$1.log" 2>&1 &
	servers+=($!)
	for ((i = 0; i < 200; i++)); do
		if [ -s "$work/$1.port" ]; then
			printf -v "$1_port" %s "$(cat "$work/$1.port")"
			return 0
		fi
		kill -0 "${servers[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	sed 's/^/  /' "$work/$1.log" >&2
	die "backend $1 did not start"
}
# backend_set NAME K=V...: its behaviour (and the error pattern restarted).
backend_set() {
	local port=${1}_port q
	shift
	q=$(IFS='&' && echo "$*")
	curl -fsS -m 5 -o /dev/null "http://127.0.0.1:${!port}/__ctl?$q" || die "backend_set $q failed"
}

front=$work/front
upstream=$front/upstream-app.conf
access_log=$front/access.log
ngx=("$NGINX" -p "$front/" -e "$front/error.log" -c "$front/nginx.conf")
ngx_sh=$(printf '%q ' "${ngx[@]}") # for chom-canary's sh -c
ngx_sh=${ngx_sh% }
# The stable-only file a person writes before any canary.
upstream_initial() {
	printf '# written by hand before chom-canary ran\nupstream app {\n\tserver %s;\n}\n' \
	    "127.0.0.1:$stable_port" >"$upstream"
}
front_start() {
	local try port user='' i
	mkdir -p "$front/tmp"
	# As root, workers would otherwise run as nobody and could not write
	# into the mktemp directory.
	[ "$(id -u)" -eq 0 ] && user="user root;"
	upstream_initial
	for ((try = 1; try <= 5; try++)); do
		port=$(free_port)
		cat >"$front/nginx.conf" <<EOF
$user
daemon off;
worker_processes 1;
pid $front/nginx.pid;
error_log $front/error.log warn;
events { worker_connections 1024; }
http {
	client_body_temp_path $front/tmp/body;
	proxy_temp_path $front/tmp/proxy;
	fastcgi_temp_path $front/tmp/fastcgi;
	uwsgi_temp_path $front/tmp/uwsgi;
	scgi_temp_path $front/tmp/scgi;
	log_format chom_canary '\$remote_addr [\$time_local] "\$request" st=\$status '
	                       'ua="\$upstream_addr" urt="\$upstream_response_time"';
	include $upstream;
	server {
		listen 127.0.0.1:$port backlog=512;
		access_log $access_log chom_canary;
		keepalive_requests 1000000;
		location / {
			# A new connection to the backend for each request (HTTP/1.0):
			# backend.py answers a request on a kept-alive connection
			# only after about 40 ms (Nagle's algorithm and delayed ACKs).
			proxy_pass http://app;
			proxy_connect_timeout 2s;
			proxy_read_timeout 10s;
		}
	}
}
EOF
		"${ngx[@]}" 2>>"$front/start.log" &
		servers+=($!)
		for ((i = 0; i < 200; i++)); do
			kill -0 "${servers[-1]}" 2>/dev/null || break
			if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
				front_url=http://127.0.0.1:$port
				return 0
			fi
			sleep 0.05
		done
		wait "${servers[-1]}" 2>/dev/null || true
		unset 'servers[-1]'
		grep -q 'Address already in use' "$front/start.log" "$front/error.log" 2>/dev/null || break
	done
	sed 's/^/  /' "$front/start.log" "$front/error.log" >&2 2>/dev/null || true
	die "the front nginx did not start"
}
# front_only POOL: waits (5 s at most) until 20 requests in a row through the
# front are answered by POOL: a reload takes effect asynchronously.
front_only() {
	local i got
	for ((i = 0; i < 50; i++)); do
		got=$(curl -s -m 5 "$front_url/check?[1-20]" 2>/dev/null | grep -c "^ok $1\$" || true)
		[ "$got" -eq 20 ] && return 0
		sleep 0.1
	done
	die "the front nginx does not send everything to $1 ($got of 20)"
}

# --- (1) time to rollback -------------------------------------------------

# rollback_run: one run; appends to the lists of results.
rollback_run() {
	local wrk_pid canary_pid t_file t_ss t_res t_step='' t_back='' txt i line cn ce sn el
	# Stable only, the log empty, the canary bad from its first request.
	upstream_initial
	if ! "${ngx[@]}" -t -q 2>>"$front/reload.log" || ! "${ngx[@]}" -s reload 2>>"$front/reload.log"; then
		die "nginx -t or -s reload of the front failed: $(tail -3 "$front/reload.log")"
	fi
	front_only stable
	: >"$access_log"
	backend_set stable error_rate=0 delay_ms=0
	backend_set canary error_rate=$BAD_RATE delay_ms=0
	rm -rf "$work/state"

	# Traffic first: it flows when the step starts.
	wrk -t1 -c"$LOAD_CONNS" -d"${LOAD_SECONDS}s" -s "$work/pace.lua" "$front_url/app" \
	    >"$work/wrk.out" 2>&1 &
	wrk_pid=$!
	clients+=("$wrk_pid")
	for ((i = 0; i < 250; i++)); do
		[ "$(wc -l <"$access_log")" -ge 100 ] && break
		sleep 0.02
	done
	[ "$(wc -l <"$access_log")" -ge 100 ] || die "no traffic through the front nginx: $(cat "$work/wrk.out")"

	"$canary" --upstream-file "$upstream" --upstream app \
	    --stable "127.0.0.1:$stable_port" --canary "127.0.0.1:$canary_port" \
	    --test-cmd "$ngx_sh -t -q" --reload-cmd "$ngx_sh -s reload" \
	    --access-log "$access_log" --sample "${SAMPLE}s" --interval 30s \
	    --min-requests "$MIN_REQUESTS" --state-dir "$work/state" --summary /dev/null \
	    --json 2>"$work/canary.err" > >(stamp >"$work/events") &
	canary_pid=$!
	clients+=("$canary_pid")

	# The upstream file, every 10 ms: its mtime when it first holds the
	# step's weights, and when it holds stable only again. 30 s at most.
	for ((i = 0; i < 3000; i++)); do
		IFS= read -r -d '' txt <"$upstream" || true
		if [ -z "$t_step" ] && [[ $txt == *"weight="* ]]; then
			t_step=$(mtime_us "$upstream")
		elif [ -n "$t_step" ] && [[ $txt == *"rolled back"* ]]; then
			t_back=$(mtime_us "$upstream")
			break
		fi
		kill -0 "$canary_pid" 2>/dev/null || break
		sleep 0.01
	done
	wait_exit "$canary_pid" 10
	kill -TERM "$wrk_pid" 2>/dev/null || true
	wait "$wrk_pid" 2>/dev/null || true
	untrack "$wrk_pid"
	wait_file_grep "$work/events" '"event":"result"' 5 || true
	if [ "$rc" -ne 1 ] || [ -z "$t_step" ] || [ -z "$t_back" ]; then
		sed 's/^/  /' "$work/canary.err" "$work/events" >&2
		die "chom-canary exited $rc (1, rolled back, expected)${t_step:+, the step was seen}${t_back:+, the rollback was seen}"
	fi
	line=$(event_line "$work/events" result)
	[[ $line == *'"result":"rolled-back"'* ]] || die "no rolled-back result event: $line"
	t_res=${line%% *}
	line=$(event_line "$work/events" step-start)
	[ -n "$line" ] || die "no step-start event"
	t_ss=${line%% *}
	t_file=$(upstream_servers)
	[ "$t_file" = "127.0.0.1:$stable_port" ] || die "the upstream file holds '$t_file', not stable only"
	# The failing sample: what chom-canary had seen.
	line=$(grep '"event":"sample"' "$work/events" | tail -1)
	read -r cn ce sn el < <(jq -r '"\(.canary.requests) \(.canary.errors) \(.stable.requests) \(.elapsed)"' <<<"${line#* }")
	front_only stable # traffic back on stable (outside the timing)

	back_us+=($((t_back - t_step)))
	res_us+=($((t_res - t_step)))
	ss_us+=($((t_back - t_ss)))
	reload_us+=($((t_res - t_back)))
	printf '  run %d/%d: upstream file back on stable %s s after the step'"'"'s file (%s samples);' \
	    "$r" "$runs" "$(us2s "${back_us[-1]}")" "$(ratio "${back_us[-1]}" $((SAMPLE * 1000000)))"
	printf ' result event %s s; %s s after the step-start event\n' \
	    "$(us2s "${res_us[-1]}")" "$(us2s "${ss_us[-1]}")"
	printf '      failing sample (%s of the step): canary %s requests, %s errors; stable %s requests (%s req/s); samples judged: %s\n' \
	    "$el s" "$cn" "$ce" "$sn" "$(awk -v n=$((cn + sn)) -v t="$el" 'BEGIN { printf "%d", n / t }')" \
	    "$(grep -c '"event":"sample"' "$work/events")"
}
# upstream_servers: the addresses of the server lines of the upstream file.
upstream_servers() {
	sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([^[:space:];]*\).*/\1/p' "$upstream" | paste -sd' '
}

# --- (2) CPU of --access-log analysis -------------------------------------

cat >"$work/writer.py" <<'PY'
# writer.py LOG LINES RATE STABLE CANARY SEED: appends LINES lines to LOG,
# RATE a second in batches every 20 ms (one write each), or all at once
# when RATE is 0, in the chom_canary log format: half the requests to each
# pool, 1% of them 5xx, 2% 4xx, and 1% of the lines answered by nginx
# itself (ua="-"). Prints a JSON tally.
import json, os, random, sys, time

log, total, rate, stable, canary, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
rng = random.Random(seed)
paths = ["/", "/products", "/products/%d", "/cart", "/api/v1/orders/%d", "/search?q=%d",
         "/login", "/account/orders", "/static/app.%d.js"]
tally = {"lines": total, "counted": 0, stable: [0, 0], canary: [0, 0]}
base = time.time()
stamps = {}
lines = []
for i in range(total):
    s = int(base + i / (rate or 5000))
    if s not in stamps:
        stamps[s] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(s))
    p = rng.choice(paths)
    if "%d" in p:
        p %= rng.randint(1, 99999)
    ip = "10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
    r = rng.random()
    if r < 0.01:
        lines.append('%s [%s] "GET /healthz HTTP/1.1" st=204 ua="-" urt="-"\n' % (ip, stamps[s]))
        continue
    pool = stable if i % 2 else canary
    st = rng.choice((500, 502, 503)) if r < 0.02 else 404 if r < 0.04 else 200
    urt = "%.3f" % min(rng.lognormvariate(-3.5, 0.6), 9.999)
    lines.append('%s [%s] "GET %s HTTP/1.1" st=%d ua="%s" urt="%s"\n' % (ip, stamps[s], p, st, pool, urt))
    tally["counted"] += 1
    tally[pool][0] += 1
    tally[pool][1] += st >= 500
data = [l.encode() for l in lines]

fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
t0 = time.monotonic()
done = k = 0
while done < total:
    k += 1
    d = t0 + k * 0.02 - time.monotonic()
    if rate and d > 0:
        time.sleep(d)
    due = min(total, int(rate * (time.monotonic() - t0))) if rate else total
    if due > done:
        os.write(fd, b"".join(data[done:due]))
        done = due
tally["seconds"] = time.monotonic() - t0
tally["end_us"] = int(time.time() * 1e6)
os.close(fd)
print(json.dumps(tally))
PY

# What a person would run instead: requests, errors and mean upstream time
# per pool ($upstream_addr), printed every 5,000 lines.
# shellcheck disable=SC2016 # awk's $0, not the shell's
awk_prog='{
	if (match($0, /ua="[^"]*"/)) {
		ua = substr($0, RSTART + 4, RLENGTH - 5)
		if (ua != "-") {
			st = match($0, / st=[0-9]+/) ? substr($0, RSTART + 4, RLENGTH - 4) + 0 : 0
			urt = match($0, /urt="[^"]*"/) ? substr($0, RSTART + 5, RLENGTH - 6) + 0 : 0
			n[ua]++
			if (st >= 500) e[ua]++
			s[ua] += urt
		}
	}
	if (NR % 5000 == 0) {
		for (p in n) printf "%s %d %d %.4f\n", p, n[p], e[p], s[p] / n[p]
		printf "lines %d\n", NR
		fflush()
	}
}'

# counted_by_canary EVENTS: the requests of the step chom-canary's last
# sample event counted (0 before the first).
counted_by_canary() {
	local line n
	line=$(grep '"event":"sample"' "$1" | tail -1)
	n=$(jq -r '(.canary.requests // 0) + (.stable.requests // 0)' <<<"${line#* }" 2>/dev/null || true)
	echo "${n:-0}"
}

# cpu_run: one run; appends to the lists of results.
cpu_run() {
	local d=$work/cpu log canary_pid tail_pid awk_pid i ta_c ta_t ta_a t_c t_w tc tt ta
	local wall got_a got_c=0 t_end writer_pid counted pre_counted lines
	rm -rf "$d"
	mkdir -p "$d"
	log=$d/access.log
	: >"$log"

	"$canary" --upstream-file "$d/upstream.conf" --upstream app \
	    --stable 127.0.0.1:8081 --canary 127.0.0.1:8082 --test-cmd true --reload-cmd true \
	    --steps 10,100 --access-log "$log" --sample "${SAMPLE}s" --interval 1h \
	    --min-requests 1 --max-error-rate 0.5 --max-p95 10s \
	    --state-dir "$d/state" --summary /dev/null \
	    --json 2>"$d/canary.err" > >(stamp >"$d/events") &
	canary_pid=$!
	clients+=("$canary_pid")
	mkfifo "$d/fifo"
	tail -n0 -F "$log" >"$d/fifo" 2>/dev/null &
	tail_pid=$!
	clients+=("$tail_pid")
	awk "$awk_prog" <"$d/fifo" >"$d/awk.out" &
	awk_pid=$!
	clients+=("$awk_pid")
	wait_file_grep "$d/events" '"event":"step-start"' 10 ||
		{ sed 's/^/  /' "$d/canary.err" >&2; die "chom-canary did not start its step"; }
	sleep 0.5 # tail has opened the log

	# The step's backlog, at once; both have counted it before the measure.
	"$PY" "$work/writer.py" "$log" "$PREFILL" 0 127.0.0.1:8081 127.0.0.1:8082 "$r" \
	    >"$d/prefill.json" || die "the log writer failed"
	pre_counted=$(jq -r .counted "$d/prefill.json")
	for ((i = 0; i < 1500; i++)); do
		got_c=$(counted_by_canary "$d/events")
		[ "$got_c" -eq "$pre_counted" ] && grep -qx "lines $PREFILL" "$d/awk.out" && break
		sleep 0.02
	done
	[ "$got_c" -eq "$pre_counted" ] || die "chom-canary counted $got_c of the backlog's $pre_counted requests"
	grep -qx "lines $PREFILL" "$d/awk.out" || die "awk did not count the backlog's $PREFILL lines"
	sleep 0.2

	ta_c=$(cpu_ticks "$canary_pid") ta_t=$(cpu_ticks "$tail_pid") ta_a=$(cpu_ticks "$awk_pid")
	# In the background, waited for by `wait`: a signal to the bench is
	# handled at once, not after the writer's 20 s; and the bench polls
	# nothing meanwhile. It ends by itself: so many lines at so many a
	# second.
	"$PY" "$work/writer.py" "$log" $((LOG_RATE * LOG_SECONDS)) "$LOG_RATE" 127.0.0.1:8081 127.0.0.1:8082 \
	    $((r + 1000)) >"$d/writer.json" &
	writer_pid=$!
	clients+=("$writer_pid")
	rc=0
	wait "$writer_pid" || rc=$?
	untrack "$writer_pid"
	[ "$rc" -eq 0 ] || die "the log writer failed (exit $rc)"
	counted=$((pre_counted + $(jq -r .counted "$d/writer.json")))
	lines=$((PREFILL + LOG_RATE * LOG_SECONDS))
	[ "$(wc -l <"$log")" -eq "$lines" ] || die "the log has $(wc -l <"$log") lines, not $lines"

	# Each one's CPU up to the moment it had counted every line (5 s at most),
	# over the time the writer took: the CPU a second of such a log costs.
	wall=$(jq -r '.seconds * 1000000 | floor' "$d/writer.json")
	t_end=$(jq -r .end_us "$d/writer.json")
	t_c='' t_w=''
	for ((i = 0; i < 250; i++)); do
		if [ -z "$t_c" ]; then
			got_c=$(counted_by_canary "$d/events")
			[ "$got_c" -eq "$counted" ] && { t_c=$(now_us); tc=$(cpu_ticks "$canary_pid"); }
		fi
		if [ -z "$t_w" ] && grep -qx "lines $lines" "$d/awk.out"; then
			t_w=$(now_us)
			tt=$(cpu_ticks "$tail_pid") ta=$(cpu_ticks "$awk_pid")
		fi
		[ -n "$t_c" ] && [ -n "$t_w" ] && break
		sleep 0.02
	done
	[ -n "$t_c" ] || die "chom-canary counted $got_c requests of the $counted in the log"
	[ -n "$t_w" ] || die "awk did not count the $lines lines: $(tail -1 "$d/awk.out")"

	kill -TERM "$canary_pid"
	wait_exit "$canary_pid" 10
	[ "$rc" -eq 143 ] || { sed 's/^/  /' "$d/canary.err" >&2; die "chom-canary exited $rc on SIGTERM, not 143"; }
	kill -TERM "$tail_pid" 2>/dev/null || true
	wait_exit "$tail_pid" 5
	wait_exit "$awk_pid" 5
	# Both counted the same requests.
	got_a=$(awk '$1 ~ /^127/ { n += $2 } END { print n + 0 }' <(tail -3 "$d/awk.out"))
	[ "$got_a" -eq "$counted" ] || die "awk counted $got_a requests, not $counted"

	walls+=("$wall") cpu_c+=($((tc - ta_c))) cpu_t+=($((tt - ta_t))) cpu_a+=($((ta - ta_a)))
	pct_c+=("$(pct "${cpu_c[-1]}" "$wall")")
	pct_t+=("$(pct "${cpu_t[-1]}" "$wall")")
	pct_a+=("$(pct "${cpu_a[-1]}" "$wall")")
	pct_w+=("$(pct $((cpu_t[-1] + cpu_a[-1])) "$wall")")
	printf '  run %d/%d: %d lines in %s s; (a) chom-canary cpu %s s (all counted %s s after the last line): %s%%;' \
	    "$r" "$runs" $((LOG_RATE * LOG_SECONDS)) "$(us2s "$wall")" "$(us2s $((cpu_c[-1] * 1000000 / hz)))" \
	    "$(us2s $((t_c - t_end)))" "$(pct2s "${pct_c[-1]}")"
	printf ' (b) tail | awk cpu %s s (%s s after): %s%%\n' \
	    "$(us2s $(((cpu_t[-1] + cpu_a[-1]) * 1000000 / hz)))" "$(us2s $((t_w - t_end)))" "$(pct2s "${pct_w[-1]}")"
}

# --- the bench ------------------------------------------------------------

load=$(cut -d' ' -f1 /proc/loadavg)
echo "chom canary bench: $(nproc) CPUs, $(uname -sr)"
echo "  $("$canary" --version | head -1); nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///');" \
    "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $("$PY" --version)"
echo "  load average at the start: $load$(awk -v l="$load" -v n="$(nproc)" 'BEGIN { if (l > n / 2) print " (other work is running: the timings will be noisy)" }')"

backend_start stable stable
backend_start canary canary
front_start
printf 'function delay()\n\treturn %d\nend\n' "$LOAD_DELAY_MS" >"$work/pace.lua"

echo
echo "(1) time to rollback, --sample ${SAMPLE}s"
echo "  front nginx $front_url (upstream file included in its http block, access log in the"
echo "  chom_canary format) -> stable 127.0.0.1:$stable_port, canary 127.0.0.1:$canary_port"
echo "  (tests/canary/backend.py; the canary answers $(awk -v r=$BAD_RATE 'BEGIN { print r * 100 }')% 500)"
echo "  traffic: wrk -t1 -c$LOAD_CONNS -d${LOAD_SECONDS}s through the front, each connection pausing ${LOAD_DELAY_MS} ms"
echo "  between requests (wrk's delay()); it runs before chom-canary starts"
echo "  chom-canary --access-log LOG --sample ${SAMPLE}s --interval 30s --min-requests $MIN_REQUESTS"
echo "      --test-cmd 'nginx -p ... -t -q' --reload-cmd 'nginx -p ... -s reload' (default steps)"
echo "  from the mtime of the upstream file chom-canary wrote for the first step to the mtime"
echo "  of the stable-only file it wrote back (the file read every 10 ms); and to the \"result\""
echo "  event on its --json stdout, stamped as the bench read it (after nginx -t and the"
echo "  reload onto stable); and from the \"step-start\" event (written after the step's reload)"
back_us=() res_us=() ss_us=() reload_us=()
for ((r = 1; r <= runs; r++)); do rollback_run; done
mb=$(median "${back_us[@]}")
mr=$(median "${res_us[@]}")
ms=$(median "${ss_us[@]}")
ml=$(median "${reload_us[@]}")
samples=$(ratio "$mb" $((SAMPLE * 1000000)))
echo "  medians of $runs runs:"
printf '    step'"'"'s upstream file -> stable-only file:          %s s = %s samples of %d s\n' \
    "$(us2s "$mb")" "$samples" "$SAMPLE"
printf '    step'"'"'s upstream file -> "result" (nginx reloaded): %s s = %s samples (the rollback'"'"'s test + reload: %s s)\n' \
    "$(us2s "$mr")" "$(ratio "$mr" $((SAMPLE * 1000000)))" "$(us2s "$ml")"
printf '    "step-start" event -> stable-only file:          %s s = %s samples\n' \
    "$(us2s "$ms")" "$(ratio "$ms" $((SAMPLE * 1000000)))"
echo "  (no off-the-shelf canary judge to compare with: without one, a person watches the"
echo "  error rate on a dashboard and writes the upstream file back and reloads by hand;"
echo "  the figure stands alone against its target)"

echo
echo "(2) CPU of --access-log analysis, $LOG_RATE lines/s for $LOG_SECONDS s"
echo "  a python3 writer appends $((LOG_RATE * LOG_SECONDS)) lines in the chom_canary format in batches every 20 ms"
echo "  (half to each pool, 1% 5xx, 2% 4xx, 1% ua=\"-\"), to a log whose step already had $PREFILL lines"
echo "  (written at once and counted before the measure: chom-canary's reservoirs of latencies,"
echo "  100,000 a pool, are full, and its p95 at each sample selects among that many: a long step's steady"
echo "  state); followed at the same time by:"
echo "  (a) chom-canary --access-log LOG --sample ${SAMPLE}s --steps 10,100 --interval 1h --min-requests 1"
echo "      --max-error-rate 0.5 --max-p95 10s --test-cmd true --reload-cmd true --json"
echo "      (never over the thresholds, so the comparisons with stable do not run)"
echo "  (b) tail -n0 -F LOG | $(readlink -f "$(command -v awk)" | xargs basename) '...': requests, 5xx and mean urt per ua=, printed every 5,000 lines"
echo "  CPU: utime + stime from /proc/PID/stat (${hz} Hz ticks), from the writer's start to the"
echo "  moment each had counted every line (chom-canary: its sample event's counts; awk: its"
echo "  last print), over the writer's time: percent of one core"
walls=() cpu_c=() cpu_t=() cpu_a=() pct_c=() pct_t=() pct_a=() pct_w=()
for ((r = 1; r <= runs; r++)); do cpu_run; done
mc=$(median "${pct_c[@]}")
mw=$(median "${pct_w[@]}")
echo "  medians of $runs runs:"
printf '    (a) chom-canary: %s%% of one core (cpu %s s for %s s of log)\n' "$(pct2s "$mc")" \
    "$(us2s $(($(median "${cpu_c[@]}") * 1000000 / hz)))" "$(us2s "$(median "${walls[@]}")")"
printf '    (b) tail | awk:  %s%% of one core (tail %s%%, awk %s%%)\n' "$(pct2s "$mw")" \
    "$(pct2s "$(median "${pct_t[@]}")")" "$(pct2s "$(median "${pct_a[@]}")")"
if [ "$mw" -gt 0 ]; then
	printf '    chom-canary / tail|awk CPU: %sx\n' "$(ratio "$mc" "$mw")"
fi

echo
echo "targets:"
printf '  time to rollback (upstream file back on stable), --sample %ds:  %s samples (%s s; target <= %d samples %s)\n' \
    "$SAMPLE" "$samples" "$(us2s "$mb")" "$MAX_SAMPLES" "$(met "$mb <= $MAX_SAMPLES * $SAMPLE * 1000000")"
printf '  chom-canary CPU following %d log lines/s:                       %s%% of one core (target < %d%% %s)\n' \
    "$LOG_RATE" "$(pct2s "$mc")" "$MAX_CPU" "$(met "$mc < $MAX_CPU * 100")"

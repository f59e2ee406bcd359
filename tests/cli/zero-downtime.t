#!/usr/bin/env bash
# Zero downtime: nginx serves BASE/current/public under load while
# chom-switch flips current between two releases hundreds of times. Every
# response must be a 200 carrying exactly one release's page, with no
# connection error: the rename(2) of the symlink is the only change nginx
# ever sees.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/nginx.sh"

SWITCHES=${CHOM_ZD_SWITCHES:-200} # at least this many switches
MIN_SECS=${CHOM_ZD_MIN_SECS:-3}   # and switch for at least this long
MAX_SECS=60                       # but never longer

B=$T/base
for v in v1 v2; do
	rm -rf "$T/src" && mkdir -p "$T/src/public"
	echo "release $v" >"$T/src/public/index.html"
	tar -C "$T/src" -czf "$T/$v.tar.gz" public
done
run chom-stage -d "$B" "$T/v1.tar.gz"
exits 0 "stage v1"
run chom-switch -d "$B" --next
exits 0 "v1 live"
run chom-stage -d "$B" "$T/v2.tar.gz"
exits 0 "stage v2"

if ! nginx_start "$B/current/public"; then
	_tap not-ok "nginx starts"
	done_testing
	exit
fi
_tap ok "nginx starts on 127.0.0.1:$NGINX_PORT"
is "$(curl -s -m 5 "$NGINX_URL/")" "release v1" "nginx serves v1 through current"

# The load: wrk with a Lua hook that judges every response, or, without
# wrk, four curl loops keeping their connections alive.
cat >"$T/judge.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; v1 = 0; v2 = 0; bad = 0; seen = "" end
function response(status, headers, body)
	n = n + 1
	if status == 200 and body == "release v1\n" then v1 = v1 + 1
	elseif status == 200 and body == "release v2\n" then v2 = v2 + 1
	else
		bad = bad + 1
		if #seen < 400 then
			seen = seen .. status .. ":" .. string.sub(body or "", 1, 40):gsub("\n", "\\n") .. " "
		end
	end
end
function done(summary, latency, requests)
	local n_, v1_, v2_, bad_, seen_ = 0, 0, 0, 0, ""
	for _, t in ipairs(threads) do
		n_ = n_ + t:get("n"); v1_ = v1_ + t:get("v1"); v2_ = v2_ + t:get("v2")
		bad_ = bad_ + t:get("bad"); seen_ = seen_ .. t:get("seen")
	end
	local e = summary.errors
	io.write(string.format("RESULT n=%d v1=%d v2=%d bad=%d sockerr=%d\n", n_, v1_, v2_,
		bad_, e.connect + e.read + e.write + e.timeout))
	io.write(string.format("SOCKERR connect=%d read=%d write=%d timeout=%d status=%d\n",
		e.connect, e.read, e.write, e.timeout, e.status))
	io.write("BAD " .. seen_ .. "\n")
end
EOF

curl_loop() { # N: keeps going until $T/stop exists; one line per response
	local urls=() i
	for i in $(seq 1 50); do urls+=("$NGINX_URL/"); done
	while [ ! -e "$T/stop" ]; do
		curl -s -m 10 -w '\t%{http_code}\n' "${urls[@]}" >>"$T/curl.$1" 2>/dev/null ||
			echo "curl-error $?" >>"$T/curl.$1"
	done
}

rm -f "$T/stop"
if [ "${CHOM_ZD_LOAD:-wrk}" = wrk ] && command -v wrk >/dev/null; then
	LOAD=wrk
	timeout -s INT $((MAX_SECS + 30)) wrk -t2 -c8 -d$((MAX_SECS + 20))s --timeout 10s \
		-s "$T/judge.lua" "$NGINX_URL/" >"$T/wrk.out" 2>&1 &
	LOAD_PIDS=$!
else
	LOAD=curl
	LOAD_PIDS=
	for i in 1 2 3 4; do
		curl_loop "$i" &
		LOAD_PIDS="$LOAD_PIDS $!"
	done
fi
at_exit "touch '$T/stop'; kill $LOAD_PIDS 2>/dev/null"
sleep 0.5

# The switches, alternating v2, v1, v2, ... each one must succeed.
sw=0 sw_fail=0 start=$SECONDS
while [ "$sw" -lt "$SWITCHES" ] || [ $((SECONDS - start)) -lt "$MIN_SECS" ]; do
	[ $((SECONDS - start)) -ge "$MAX_SECS" ] && break
	id=v$((sw % 2 == 0 ? 2 : 1))
	if ! chom-switch -d "$B" "$id" >/dev/null 2>>"$T/switch.err"; then
		sw_fail=$((sw_fail + 1))
	fi
	sw=$((sw + 1))
done
elapsed=$((SECONDS - start))
sleep 0.3

# Stop the load: wrk prints its summary and runs done() on SIGINT.
touch "$T/stop"
if [ "$LOAD" = wrk ]; then
	kill -INT $LOAD_PIDS 2>/dev/null
fi
for p in $LOAD_PIDS; do
	for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done

ok "made at least $SWITCHES switches ($sw in ${elapsed}s)" test "$sw" -ge "$SWITCHES"
is "$sw_fail" 0 "every switch exited 0"
[ "$sw_fail" -eq 0 ] || diag "$(head -n 5 "$T/switch.err")"
is "$(readlink "$B/current")" "releases/v$((sw % 2 == 0 ? 1 : 2))" "current is the last release switched to"

if [ "$LOAD" = wrk ]; then
	res=$(grep '^RESULT ' "$T/wrk.out")
	val() { printf '%s\n' "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	n=$(val n) v1=$(val v1) v2=$(val v2) bad=$(val bad) sockerr=$(val sockerr)
	ok "wrk reported its results" test -n "$res"
	[ -n "$res" ] || diag "$(cat "$T/wrk.out")"
	is "${sockerr:-?}" 0 "no connection error, read error or timeout"
	grep -q '^SOCKERR' "$T/wrk.out" && [ "${sockerr:-0}" != 0 ] && diag "$(grep '^SOCKERR' "$T/wrk.out")"
else
	cat "$T"/curl.* >"$T/curl.all" 2>/dev/null
	# A response is its body line "release vN" followed by a tab and the code.
	n=$(grep -c $'\t' "$T/curl.all")
	v1=$(grep -c $'^release v1\t200$' <(paste -d '' - - <"$T/curl.all"))
	v2=$(grep -c $'^release v2\t200$' <(paste -d '' - - <"$T/curl.all"))
	bad=$((n - v1 - v2))
	is "$(grep -c '^curl-error' "$T/curl.all")" 0 "no curl error (connection refused, reset, timeout)"
fi
diag "load: $LOAD, $n requests ($v1 v1, $v2 v2), $sw switches in ${elapsed}s"
ok "responses were received" test "${n:-0}" -gt 0
is "${bad:-?}" 0 "every response is a 200 with exactly one release's page"
[ "${bad:-0}" = 0 ] || diag "$(grep '^BAD' "$T/wrk.out" 2>/dev/null)"
is "$((v1 + v2))" "${n:-0}" "v1 + v2 responses add up to all responses"
ok "v1's page was served" test "${v1:-0}" -gt 0
ok "v2's page was served" test "${v2:-0}" -gt 0
is "$(grep -c '\[\(error\|crit\|alert\|emerg\)\]' "$NGINX_DIR/error.log" 2>/dev/null)" 0 \
	"nginx logged no error"
grep '\[\(error\|crit\)\]' "$NGINX_DIR/error.log" 2>/dev/null | head -n 3 | while read -r l; do diag "$l"; done
is "$(curl -s -m 5 "$NGINX_URL/")" "release $(basename "$(readlink "$B/current")")" \
	"after the load, nginx serves the live release"

done_testing

#!/usr/bin/env bash
# chom-health (SPEC.md section 3): usage errors, then every kind of target
# against real servers the test starts on 127.0.0.1: nginx (static pages,
# a location that answers 503 until a file appears, a slow upstream, TLS
# with a CA made here), redis-server, MariaDB; a closed port and a name
# that does not resolve; retries, deadline, concurrency, -f, --json, the
# step summary and -q.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/servers.sh"

TOOL=chom-health
# jf KEY [N]: field KEY of the Nth (default 1st) JSON line of $OUT, booleans
# and null spelt as in JSON; "?" when there is no such line or field.
jf() {
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
try:
    v = json.loads(sys.stdin.read().splitlines()[int(sys.argv[2]) - 1])[sys.argv[1]]
except Exception:
    print("?"); sys.exit(0)
print(json.dumps(v) if isinstance(v, bool) or v is None else v)
' "$1" "${2:-1}"
}
# json_lines N: $OUT is N lines, each a JSON object with exactly the fields
# of the output, of the right types.
json_lines() {
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
assert len(lines) == int(sys.argv[1]), "%d lines" % len(lines)
for l in lines:
    o = json.loads(l)
    assert set(o) == {"target", "ok", "status", "latency_ms", "attempts", "reason"}, sorted(o)
    assert isinstance(o["target"], str) and isinstance(o["reason"], str)
    assert isinstance(o["ok"], bool)
    assert isinstance(o["status"], int) and not isinstance(o["status"], bool)
    assert isinstance(o["latency_ms"], (int, float)) and o["latency_ms"] >= 0
    assert isinstance(o["attempts"], int) and o["attempts"] >= 1
' "$1"
}
now() { date +%s.%N; }
# since START: seconds elapsed, 3 decimals.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# num_ok DESC EXPR: an awk comparison (e.g. "1.2 < 2").
num_ok() {
	if awk "BEGIN { exit !($2) }"; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}
# timed CMD...: run, keeping the elapsed seconds in EL.
timed() {
	local t0
	t0=$(now)
	run "$@"
	EL=$(since "$t0")
}

# --- --help, --version ----------------------------------------------------
run chom-health --help
exits 0 "--help exits 0"
like "$OUT" '^Usage: chom-health' "--help prints usage on stdout"
is "$ERR" "" "--help: nothing on stderr"
for o in --file --expect-status --expect-body --expect-json --max-latency \
	--header --resolve --cacert --cert-min-days --password-file --retries \
	--interval --timeout --deadline --concurrency --json --summary --quiet; do
	like "$OUT" "$o" "--help mentions $o"
done
for s in http:// https:// tcp:// redis:// mysql://; do
	like "$OUT" "$s" "--help names $s targets"
done
run chom-health --version
exits 0 "--version exits 0"
like "$OUT" '^chom-health \(chom\) [0-9]+\.[0-9]+\.[0-9]+$' "--version format"

# --- usage errors: exit 2, one line, and the Try line --------------------
run chom-health
usage_err "no targets" 'no targets'
run chom-health --json -q
usage_err "options but no targets" 'no targets'
run chom-health --bogus http://127.0.0.1/
usage_err "unknown option" 'bogus'
run chom-health ftp://127.0.0.1/
usage_err "bad scheme" "ftp://"
run chom-health 127.0.0.1:80
usage_err "no scheme" "127\.0\.0\.1:80"
for s in abc 700 99 300-200 200- ','; do
	run chom-health --expect-status "$s" http://127.0.0.1/
	usage_err "bad --expect-status '$s'" 'expect-status'
done
run chom-health --expect-body '(unclosed' http://127.0.0.1/
usage_err "bad regex" 'expect-body'
run chom-health --expect-body 'a{2,1}' http://127.0.0.1/
usage_err "bad regex interval" 'expect-body'
for j in noequals '=ok'; do
	run chom-health --expect-json "$j" http://127.0.0.1/
	usage_err "bad --expect-json '$j'" 'expect-json'
done
run chom-health tcp://127.0.0.1
usage_err "tcp:// without port" 'port'
run chom-health tcp://127.0.0.1:
usage_err "tcp:// with an empty port" 'port'
run chom-health tcp://127.0.0.1:70000
usage_err "port out of range" 'port'
run chom-health http://:80/
usage_err "no host" 'host'
run chom-health --max-latency abc http://127.0.0.1/
usage_err "bad --max-latency" 'max-latency'
run chom-health -H 'NoColon' http://127.0.0.1/
usage_err "-H without a colon" 'Name: value'
run chom-health --resolve nocolons http://127.0.0.1/
usage_err "bad --resolve" 'resolve'
run chom-health --cert-min-days -1 https://127.0.0.1/
usage_err "bad --cert-min-days" 'cert-min-days'
run chom-health --retries x http://127.0.0.1/
usage_err "bad --retries" 'retries'
run chom-health --interval 0 http://127.0.0.1/
usage_err "bad --interval" 'interval'
run chom-health --timeout nope http://127.0.0.1/
usage_err "bad --timeout" 'timeout'
run chom-health --deadline -3 http://127.0.0.1/
usage_err "bad --deadline" 'deadline'
run chom-health --concurrency 0 http://127.0.0.1/
usage_err "bad --concurrency" 'concurrency'
run chom-health 'redis://pw@127.0.0.1:6379'
usage_err "credentials in a target" 'password-file'
run chom-health 'redis://user:pw@127.0.0.1:6379'
exits 2 "user:password in a target: exit 2"
run chom-health -f "$T/no-such-file"
usage_err "-f of a missing file" 'no-such-file'

printf '# targets\nhttp://127.0.0.1:1/\n\nhttp://127.0.0.1:1/ --expect-status nope\n' >"$T/bad-status.txt"
run chom-health -f "$T/bad-status.txt"
usage_err "-f: bad option value" "bad-status\.txt:4: .*expect-status"
printf 'http://127.0.0.1:1/ --json\n' >"$T/bad-opt.txt"
run chom-health -f "$T/bad-opt.txt"
usage_err "-f: an option not for one target" "bad-opt\.txt:1: .*--json"
printf 'http://127.0.0.1:1/\n\nhttp://127.0.0.1:1/ http://127.0.0.1:2/\n' >"$T/bad-two.txt"
run chom-health -f "$T/bad-two.txt"
usage_err "-f: two targets on a line" "bad-two\.txt:3: "
printf '# only options\n--retries 2\n' >"$T/bad-none.txt"
run chom-health -f "$T/bad-none.txt"
usage_err "-f: a line with no target" "bad-none\.txt:2: "
printf 'gopher://127.0.0.1/\n' >"$T/bad-scheme.txt"
run chom-health -f "$T/bad-scheme.txt"
usage_err "-f: bad scheme" "bad-scheme\.txt:1: .*gopher"
printf "http://127.0.0.1:1/ --expect-body 'unbalanced\n" >"$T/bad-quote.txt"
run chom-health -f "$T/bad-quote.txt"
usage_err "-f: unbalanced quote" "bad-quote\.txt:1: "

printf 'hunter2\n' >"$T/pw644"
chmod 644 "$T/pw644"
run chom-health --password-file "$T/pw644" redis://127.0.0.1:1
usage_err "password file mode 644 refused" 'pw644.*(group|others|600)'
unlike "$ERR" hunter2 "the refused password is not printed"
chmod 640 "$T/pw644"
run chom-health --password-file "$T/pw644" redis://127.0.0.1:1
usage_err "password file mode 640 refused" 'pw644'
: >"$T/pw-empty" && chmod 600 "$T/pw-empty"
run chom-health --password-file "$T/pw-empty" redis://127.0.0.1:1
usage_err "empty password file refused" 'empty'

# --- the servers ------------------------------------------------------------
WWW=$T/www
TLS=$T/tls
mkdir -p "$WWW/hdr" "$WWW/ready" "$WWW/sub"
echo '<h1>hello chom</h1>' >"$WWW/index.html"
echo 'token accepted' >"$WWW/hdr/ok.txt"
echo 'ready now' >"$WWW/ready/index.html"
cat >"$WWW/data.json" <<'EOF'
{"status": "ok", "ready": true, "down": false, "nothing": null, "count": 42,
 "ratio": 0.25, "data": {"items": [{"name": "alpha", "n": 3},
 {"name": "beta", "n": 4.5, "tags": ["x", "y"]}]}, "num_as_text": "42"}
EOF

web_conf() {
	cat <<EOF
	server {
		listen 127.0.0.1:${NGX_PORTS[0]};
		root $WWW;
		index index.html;
		location /hdr/ {
			if (\$http_x_token != "abc") { return 403; }
		}
		location /ready/ {
			if (!-f \$document_root/ready.flag) { return 503; }
		}
		location /slow/ {
			proxy_pass http://127.0.0.1:$SLOW_PORT;
			proxy_read_timeout 30s;
		}
		location = /busy { return 429; }
		location = /boom { return 500; }
		location = /moved { return 301 /; }
	}
	server {
		listen 127.0.0.1:${NGX_PORTS[1]} ssl;
		root $WWW;
		ssl_certificate $TLS/long.crt;
		ssl_certificate_key $TLS/long.key;
	}
	server {
		listen 127.0.0.1:${NGX_PORTS[2]} ssl;
		root $WWW;
		ssl_certificate $TLS/short.crt;
		ssl_certificate_key $TLS/short.key;
	}
EOF
}

up=1
tls_certs "$TLS" || up=0
slow_start 0.5 || up=0
[ "$up" = 1 ] && { nginx_custom_start web 3 web_conf || up=0; }
ok "TLS certificates, slow backend and nginx start" [ "$up" = 1 ]
if [ "$up" != 1 ]; then
	done_testing
	exit
fi
P=${NGX_PORTS[0]}
U=http://127.0.0.1:$P
TLS_PORT=${NGX_PORTS[1]}
TLS5_PORT=${NGX_PORTS[2]}
# The servers themselves, judged by curl: the tests below stand on them.
is "$(curl -s -o /dev/null -w '%{http_code}' "$U/ready/")" 503 "curl: /ready/ is 503 without the flag"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Token: abc' "$U/hdr/ok.txt")" 200 "curl: /hdr/ with the token is 200"
is "$(curl -s --cacert "$TLS/ca.crt" "https://127.0.0.1:$TLS_PORT/")" '<h1>hello chom</h1>' "curl: HTTPS with the CA"

# --- nginx static pages ---------------------------------------------------
run chom-health "$U/"
exits 0 "a static page is healthy"
like "$OUT" "^ok +$U/ +200 +[0-9]+ ms" "ok line: ok, target, 200, latency in ms"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "one line per target"
is "$ERR" "" "nothing on stderr when all is well"

run chom-health "$U/" "$U/missing" "$U/sub/"
exits 1 "one 404 among three: exit 1"
like "$OUT" "^ok +$U/ +200 " "the healthy one: ok"
like "$OUT" "^FAIL +$U/missing +404 +[0-9]+ ms +status 404" "the 404: FAIL, 404 and the reason"
like "$OUT" "^FAIL +$U/sub/ +403 " "a directory without index: FAIL 403"
is "$(printf '%s\n' "$OUT" | awk '{ print $2 }' | tr '\n' ' ')" "$U/ $U/missing $U/sub/ " "lines in the order of the targets"
# Aligned: the status column starts at the same offset on every line.
is "$(printf '%s\n' "$OUT" | awk '{ print index($0, " " $3 " ") }' | sort -u | wc -l)" 1 "columns aligned"

run chom-health "$U/moved"
exits 0 "a 301 is within the default 200-399"
like "$OUT" "^ok +$U/moved +301 " "301 reported, not followed"

run chom-health --expect-status 404 "$U/missing"
exits 0 "--expect-status 404 on a 404: healthy"
run chom-health --expect-status 200-299,418 "$U/moved"
exits 1 "--expect-status 200-299,418 on a 301: unhealthy"
like "$OUT" "^FAIL +$U/moved +301 .*status 301 not in --expect-status" "status mismatch: the reason"
run chom-health --expect-status 200,301 "$U/moved"
exits 0 "--expect-status list 200,301 on a 301"

run chom-health --expect-body 'hello [a-z]+' "$U/"
exits 0 "--expect-body match"
run chom-health --expect-body '^goodbye' "$U/"
exits 1 "--expect-body mismatch: exit 1"
like "$OUT" "^FAIL +$U/ +200 .*body does not match /\^goodbye/" "--expect-body mismatch: reason names the regex"

# --expect-json on a static JSON file.
for j in status=ok data.items.1.name=beta data.items.0.n=3 data.items.1.n=4.5 \
	count=42 count=42.0 ratio=0.25 ready=true down=false nothing=null \
	data.items.1.tags.0=x num_as_text=42; do
	run chom-health --expect-json "$j" "$U/data.json"
	exits 0 "--expect-json $j matches"
done
run chom-health --expect-json status=down "$U/data.json"
exits 1 "--expect-json string mismatch: exit 1"
like "$OUT" 'JSON status is ok, not down' "string mismatch: says what it found"
run chom-health --expect-json data.items.0.n=4 "$U/data.json"
exits 1 "--expect-json number mismatch"
like "$OUT" 'JSON data.items.0.n is 3, not 4' "number mismatch: says what it found"
run chom-health --expect-json ready=false "$U/data.json"
exits 1 "--expect-json true is not false"
like "$OUT" 'JSON ready is true, not false' "boolean mismatch: the reason"
run chom-health --expect-json ready=1 "$U/data.json"
exits 1 "--expect-json: true is not 1"
run chom-health --expect-json data.items.5.name=x "$U/data.json"
exits 1 "--expect-json: an index past the end"
like "$OUT" 'JSON has no data\.items\.5\.name' "missing path: the reason"
run chom-health --expect-json data.nope=x "$U/data.json"
exits 1 "--expect-json: a missing key"
run chom-health --expect-json data=x "$U/data.json"
exits 1 "--expect-json: an object is not a value"
run chom-health --expect-json status=ok "$U/"
exits 1 "--expect-json on HTML: exit 1"
like "$OUT" 'not JSON' "--expect-json on HTML: says the body is not JSON"
run chom-health --expect-json status=ok --expect-body '"count": 42' "$U/data.json"
exits 0 "--expect-json and --expect-body together"

# -H: a location that answers 403 unless X-Token: abc is sent.
run chom-health -H 'X-Token: abc' --expect-body 'token accepted' "$U/hdr/ok.txt"
exits 0 "-H: the header is sent"
run chom-health --header 'X-Token: abc' "$U/hdr/ok.txt"
exits 0 "--header: the long form"
run chom-health -H 'X-Other: 1' -H 'X-Token: abc' "$U/hdr/ok.txt"
exits 0 "-H repeated: both sent"
run chom-health -H 'X-Token: wrong' "$U/hdr/ok.txt"
exits 1 "-H with the wrong value: 403"
like "$OUT" "^FAIL +$U/hdr/ok\.txt +403 " "wrong header: FAIL 403"
run chom-health "$U/hdr/ok.txt"
exits 1 "no header: 403"

# 4xx is an answer: not retried; 5xx and 429 are.
run chom-health --json --retries 3 --interval 0.1 "$U/missing"
exits 1 "404 with --retries 3: exit 1"
is "$(jf attempts)" 1 "a 404 is not retried (attempts 1)"
is "$(jf status)" 404 "--json: status 404"
is "$(jf ok)" false "--json: ok false"
like "$(jf reason)" 'status 404' "--json: the reason"
run chom-health --json --retries 3 --interval 0.1 -H 'X-Token: no' "$U/hdr/ok.txt"
is "$(jf attempts)" 1 "a 403 is not retried"
run chom-health --json --retries 2 --interval 0.1 "$U/boom"
exits 1 "500 with --retries 2: exit 1"
is "$(jf attempts)" 3 "a 500 is retried: 3 attempts with --retries 2"
run chom-health --json --retries 2 --interval 0.1 "$U/busy"
is "$(jf attempts)" 3 "a 429 is retried"
run chom-health --json --retries 2 --interval 0.1 "$U/"
is "$(jf attempts)" 1 "a healthy target: one attempt"

# --json: one object per target, all the fields.
run chom-health --json "$U/" "$U/missing" "tcp://127.0.0.1:$P"
exits 1 "--json: exit 1 with a 404 among them"
ok "--json: 3 lines of JSON objects with target, ok, status, latency_ms, attempts, reason" json_lines 3
is "$(jf target 1) $(jf ok 1) $(jf status 1)" "$U/ true 200" "--json line 1"
is "$(jf target 2) $(jf ok 2) $(jf status 2)" "$U/missing false 404" "--json line 2"
is "$(jf target 3) $(jf ok 3) $(jf status 3)" "tcp://127.0.0.1:$P true 0" "--json line 3: tcp has status 0"
is "$ERR" "" "--json: nothing on stderr"

# --- waiting: 503 until a file appears -------------------------------------
run chom-health --json --retries 2 --interval 0.1 "$U/ready/"
exits 1 "503 with --retries 2: exit 1"
is "$(jf attempts)" 3 "503 is retried: 3 attempts"
like "$(jf reason)" 'status 503' "503: the reason"

timed chom-health --json --deadline 1 --interval 0.2 "$U/ready/"
exits 1 "--deadline 1 without the flag: exit 1"
like "$(jf reason)" '503' "--deadline: the reason names the 503"
num_ok "--deadline 1: gave up near 1 s (took ${EL}s)" "$EL >= 0.6 && $EL < 5"
num_ok "--deadline without --retries: kept trying ($(jf attempts) attempts)" "$(jf attempts) >= 3"

timed chom-health --deadline 1 --retries 1 --interval 0.2 "$U/ready/"
exits 1 "--deadline with --retries 1: exit 1"
num_ok "--retries 1 ends before the deadline (${EL}s)" "$EL < 0.9"

(sleep 1 && : >"$WWW/ready.flag") &
bg=$!
timed chom-health --json --retries 20 --interval 0.2 "$U/ready/"
wait "$bg"
exits 0 "--retries 20: healthy once the flag appears"
num_ok "several attempts before it was healthy ($(jf attempts))" "$(jf attempts) > 1 && $(jf attempts) <= 21"
num_ok "waited about 1 s (${EL}s)" "$EL >= 0.8 && $EL < 5"
is "$(jf status)" 200 "the last attempt's status: 200"

rm -f "$WWW/ready.flag"
(sleep 1 && : >"$WWW/ready.flag") &
bg=$!
timed chom-health --deadline 10 --interval 0.2 "$U/ready/"
wait "$bg"
exits 0 "--deadline 10: waits until healthy"
num_ok "--deadline: returned once healthy, not at the deadline (${EL}s)" "$EL < 5"
rm -f "$WWW/ready.flag"

# --- a slow upstream -----------------------------------------------------
run chom-health --max-latency 100 "$U/slow/a"
exits 1 "--max-latency 100 on a 0.5 s upstream: exit 1"
like "$OUT" "^FAIL +$U/slow/a +200 +[0-9]+ ms +latency [0-9]+ ms over --max-latency 100 ms" "latency reason"
lat=$(printf '%s\n' "$OUT" | awk '{ print $4 }')
num_ok "the latency shown is the upstream's ($lat ms)" "$lat >= 450 && $lat < 3000"
run chom-health --max-latency 2000 --expect-body 'slow /slow/a' "$U/slow/a"
exits 0 "--max-latency 2000 passes"
run chom-health --json --timeout 0.2 --retries 1 --interval 0.1 "$U/slow/b"
exits 1 "--timeout 0.2 on a 0.5 s upstream: exit 1"
like "$(jf reason)" '[Tt]imed? ?out' "--timeout: the reason says timed out"
is "$(jf attempts)" 2 "a timeout is retried"
timed chom-health --deadline 0.3 --timeout 5 "$U/slow/c"
exits 1 "--deadline 0.3 during a 0.5 s answer: exit 1"
like "$OUT" 'deadline' "the reason says deadline"
num_ok "stopped at the deadline (${EL}s)" "$EL < 1.5"

# --- concurrency ------------------------------------------------------------
targets=()
for i in 1 2 3 4 5 6 7 8 9 10; do targets+=("$U/slow/$i"); done
timed chom-health "${targets[@]}"
exits 0 "10 slow targets: healthy"
is "$(printf '%s\n' "$OUT" | grep -c '^ok ')" 10 "10 ok lines"
num_ok "10 targets of 0.5 s checked at once: ${EL}s < 2 s" "$EL < 2"
timed chom-health --concurrency 1 "${targets[@]}"
exits 0 "--concurrency 1: healthy"
num_ok "--concurrency 1 checks one at a time: ${EL}s >= 5 s" "$EL >= 5 && $EL < 15"
timed chom-health --concurrency 5 "${targets[@]}"
num_ok "--concurrency 5: two rounds (${EL}s)" "$EL >= 1 && $EL < 3"

# --- HTTPS with the CA made here -----------------------------------------
S=https://127.0.0.1:$TLS_PORT
S5=https://127.0.0.1:$TLS5_PORT
run chom-health --cacert "$TLS/ca.crt" "$S/"
exits 0 "HTTPS with --cacert: healthy"
like "$OUT" "^ok +$S/ +200 " "HTTPS ok line"
run chom-health --cacert "$TLS/ca.crt" "https://localhost:$TLS_PORT/"
exits 0 "HTTPS by the name localhost"
run chom-health --json --retries 3 --interval 0.1 "$S/"
exits 1 "HTTPS without --cacert: exit 1"
like "$(jf reason)" '[Cc]ertificate' "no CA: a certificate problem"
is "$(jf attempts)" 1 "a certificate problem is not retried"
run chom-health --json --retries 3 --interval 0.1 --cacert "$T/no-such-ca.pem" "$S/"
exits 1 "a --cacert that does not exist: exit 1"
is "$(jf attempts)" 1 "a --cacert that does not exist: not retried"

run chom-health --cacert "$TLS/ca.crt" --cert-min-days 30 "$S/"
exits 0 "--cert-min-days 30 on the 365-day certificate"
like "$OUT" 'chom-long\.test' "the reason names the certificate"
like "$OUT" 'expires in 36[45] days' "the reason says in how many days"
run chom-health --json --retries 3 --interval 0.1 --cacert "$TLS/ca.crt" --cert-min-days 30 "$S5/"
exits 1 "--cert-min-days 30 on the 5-day certificate: exit 1"
like "$(jf reason)" 'chom-short\.test' "the reason names the certificate's subject"
like "$(jf reason)" 'expires in [45] days' "the reason says expires in 4 or 5 days"
like "$(jf reason)" '30' "the reason names the minimum"
is "$(jf attempts)" 1 "an expiring certificate is not retried"
is "$(jf status)" 200 "the server answered 200 all the same"
run chom-health --cacert "$TLS/ca.crt" --cert-min-days 3 "$S5/"
exits 0 "--cert-min-days 3 on the 5-day certificate"

run chom-health --cacert "$TLS/ca.crt" --resolve "chom.test:$TLS_PORT:127.0.0.1" "https://chom.test:$TLS_PORT/"
exits 0 "--resolve: a name in the URL, the certificate's, connected to 127.0.0.1"
like "$OUT" "^ok +https://chom\.test:$TLS_PORT/ +200 " "--resolve: ok line"
run chom-health --cacert "$TLS/ca.crt" --timeout 3 "https://chom.test:$TLS_PORT/"
exits 1 "without --resolve the name does not resolve"
run chom-health --cacert "$TLS/ca.crt" --resolve "other.test:$TLS_PORT:127.0.0.1" "https://other.test:$TLS_PORT/"
exits 1 "--resolve to a name the certificate does not have: exit 1"
like "$OUT" 'other\.test' "name mismatch: the reason names the host"
run chom-health --resolve "chom.test:$P:127.0.0.1" "http://chom.test:$P/"
exits 0 "--resolve on plain HTTP"

# --- redis ------------------------------------------------------------------
if redis_start; then
	R1=$REDIS_PORT
	run chom-health "redis://127.0.0.1:$R1"
	exits 0 "redis: PING answered"
	like "$OUT" "^ok +redis://127\.0\.0\.1:$R1 +- +[0-9]+ ms +PONG" "redis: ok line with PONG"
else
	ok "redis-server starts" false
fi
if redis_start 'S3cr3t pw'; then
	R2=$REDIS_PORT
	printf 'S3cr3t pw\n' >"$T/redis.pw" && chmod 600 "$T/redis.pw"
	printf 'wrong\n' >"$T/redis.bad" && chmod 600 "$T/redis.bad"
	run chom-health --password-file "$T/redis.pw" "redis://127.0.0.1:$R2"
	exits 0 "redis AUTH with the right password"
	like "$OUT" 'PONG' "AUTH then PING: PONG"
	unlike "$OUT$ERR" 'S3cr3t' "the password is not printed"
	run chom-health --json --retries 3 --interval 0.1 --password-file "$T/redis.bad" "redis://127.0.0.1:$R2"
	exits 1 "redis with a wrong password: exit 1"
	like "$(jf reason)" 'WRONGPASS' "wrong password: WRONGPASS"
	is "$(jf attempts)" 1 "a wrong password is not retried"
	unlike "$OUT$ERR" 'wrong' "the wrong password is not printed"
	run chom-health --json --retries 3 --interval 0.1 "redis://127.0.0.1:$R2"
	exits 1 "redis without the password: exit 1"
	like "$(jf reason)" 'NOAUTH' "no password: NOAUTH"
	is "$(jf attempts)" 1 "NOAUTH is not retried"
else
	ok "redis-server with requirepass starts" false
fi
# A server that is not redis: nginx answers PING with an HTTP error.
run chom-health --timeout 2 "redis://127.0.0.1:$P"
exits 1 "redis:// on an HTTP server: exit 1"

# --- MariaDB ------------------------------------------------------------
# 10 is the smallest max_connections MariaDB takes; it accepts one more
# connection than that (for a SUPER user), so mariadb_fill holds 11.
if mariadb_start --max-connections=10 --connect-timeout=60; then
	M=$MARIADB_PORT
	ver=$(mariadb-admin --no-defaults -h 127.0.0.1 -P "$M" -u root version 2>/dev/null |
		awk '/^Server version/ { print $3 }')
	[ -n "$ver" ] || ver=$(mariadbd --version | awk '{ print $3 }')
	run chom-health "mysql://127.0.0.1:$M"
	exits 0 "MariaDB: a greeting is healthy"
	like "$OUT" "^ok +mysql://127\.0\.0\.1:$M +- +[0-9]+ ms +server " "MariaDB: ok line"
	ok "MariaDB: the reason holds the server version ($ver)" grep -qF -- "$ver" "$T/.out"
	if mariadb_fill "$M"; then
		diag "$(cat "$MARIADB_DIR/fill.out")"
		run chom-health --json "mysql://127.0.0.1:$M"
		exits 1 "MariaDB at max_connections: exit 1"
		like "$(jf reason)" 'Too many connections|1040' "the server's error: Too many connections"
		like "$(jf reason)" '1040' "the error code 1040"
		run chom-health "mysql://127.0.0.1:$M"
		like "$OUT" "^FAIL +mysql://127\.0\.0\.1:$M +- .*Too many connections" "FAIL line with the server's message"
		# Let go after about 1 s: the error is retried.
		(sleep 1 && _pid_stop "$FILL_PID" 5) &
		bg=$!
		timed chom-health --json --retries 30 --interval 0.2 "mysql://127.0.0.1:$M"
		wait "$bg"
		exits 0 "MariaDB: healthy again once connections are free"
		num_ok "Too many connections is retried ($(jf attempts) attempts)" "$(jf attempts) > 1"
		_pid_stop "$FILL_PID" 5
	else
		ok "MariaDB fills up at max_connections" false
	fi
else
	ok "mariadbd starts" false
fi
# A server that sends nothing first (nginx waits for a request).
timed chom-health --timeout 0.3 "mysql://127.0.0.1:$P"
exits 1 "mysql:// on an HTTP server: exit 1"
like "$OUT" 'timed out' "no greeting: timed out"
num_ok "no greeting: --timeout 0.3 bounds it (${EL}s)" "$EL < 2"

# --- a closed port, a name that does not resolve -------------------------
CLOSED=$(free_port)
run chom-health "tcp://127.0.0.1:$CLOSED"
exits 1 "a closed port: exit 1"
like "$OUT" "^FAIL +tcp://127\.0\.0\.1:$CLOSED +- .*[Rr]efused" "a closed port: refused"
run chom-health --json --retries 2 --interval 0.1 "tcp://127.0.0.1:$CLOSED"
is "$(jf attempts)" 3 "connection refused is retried"
run chom-health "http://127.0.0.1:$CLOSED/" "redis://127.0.0.1:$CLOSED" "mysql://127.0.0.1:$CLOSED"
exits 1 "http, redis, mysql on a closed port: exit 1"
like "$(printf '%s\n' "$OUT" | grep -E '^FAIL +redis://')" 'refused' "redis: refused"
like "$(printf '%s\n' "$OUT" | grep -E '^FAIL +mysql://')" 'refused' "mysql: refused"
# libcurl 7.88 says "Couldn't connect to server" where newer ones say refused.
like "$(printf '%s\n' "$OUT" | grep -E '^FAIL +http://')" "refused|[Cc]ouldn't connect" "http: cannot connect"
run chom-health "tcp://127.0.0.1:$P"
exits 0 "tcp:// on an open port"
like "$OUT" "^ok +tcp://127\.0\.0\.1:$P +- +[0-9]+ ms +connected" "tcp ok line"

run chom-health --timeout 3 http://nonexistent.invalid/ tcp://nonexistent.invalid:80
exits 1 "names that do not resolve: exit 1"
like "$(printf '%s\n' "$OUT" | grep -E '^FAIL +http://nonexistent')" '[Rr]esolve' "http: the reason mentions resolve"
like "$(printf '%s\n' "$OUT" | grep -E '^FAIL +tcp://nonexistent')" '[Rr]esolve' "tcp: the reason mentions resolve"

# --- -f FILE ------------------------------------------------------------
cat >"$T/targets.txt" <<EOF
# The smoke test of a release: one target per line, its options after it.

$U/ --expect-body 'hello chom'
   $U/missing --expect-status 404     # a trailing comment
$U/data.json --expect-json "data.items.1.name=beta" --max-latency 2000
$U/hdr/ok.txt -H "X-Token: abc"
tcp://127.0.0.1:$P
https://chom.test:$TLS_PORT/ --resolve chom.test:$TLS_PORT:127.0.0.1 --cacert $TLS/ca.crt --cert-min-days 30
EOF
n=6
if [ -n "${R2:-}" ]; then
	echo "redis://127.0.0.1:$R2 --password-file $T/redis.pw" >>"$T/targets.txt"
	n=$((n + 1))
fi
if [ -n "${M:-}" ]; then
	printf '%s\n' "mysql://127.0.0.1:$M   --timeout 2" >>"$T/targets.txt"
	n=$((n + 1))
fi
run chom-health -f "$T/targets.txt"
exits 0 "-f: every target healthy"
is "$(printf '%s\n' "$OUT" | grep -c '^ok ')" "$n" "-f: $n ok lines"
is "$ERR" "" "-f: nothing on stderr"
like "$OUT" "^ok +$U/missing +404 " "-f: --expect-status 404 applied to its line"
like "$OUT" "^ok +$U/ +200 " "-f: the options of one line do not leak to the next"
run chom-health -f - <"$T/targets.txt"
exits 0 "-f -: targets from stdin"
# Options on the command line are the defaults of every line.
printf '%s\n' "$U/hdr/ok.txt" "$U/data.json --expect-status 200" >"$T/defaults.txt"
run chom-health -H 'X-Token: abc' -f "$T/defaults.txt"
exits 0 "-f: a command-line -H applies to the lines"
run chom-health --expect-status 404 -f "$T/defaults.txt"
exits 1 "-f: a command-line --expect-status applies, a line's own wins"
like "$OUT" "^FAIL +$U/hdr/ok\.txt +403 " "-f: the default 404 did not match 403"
like "$OUT" "^ok +$U/data\.json +200 " "-f: the line's --expect-status 200 wins"
run chom-health "$U/" -f "$T/defaults.txt" -H 'X-Token: abc'
exits 0 "-f with targets on the command line too"
is "$(printf '%s\n' "$OUT" | wc -l)" 3 "-f and arguments: 3 targets"
printf '%s\n' "$U/ready/ --retries 1 --interval 0.1" >"$T/retry.txt"
run chom-health --json -f "$T/retry.txt"
is "$(jf attempts)" 2 "-f: --retries on a line"

# --- GITHUB_STEP_SUMMARY and --summary ------------------------------------
printf 'earlier step\n' >"$T/summary.md"
run env GITHUB_STEP_SUMMARY="$T/summary.md" chom-health "$U/" "$U/missing" "tcp://127.0.0.1:$P"
exits 1 "with GITHUB_STEP_SUMMARY: exit 1 for the 404"
sum=$(cat "$T/summary.md")
like "$(head -n 1 "$T/summary.md")" '^earlier step$' "the summary is appended to"
like "$sum" '\| *target *\| *status *\|' "a Markdown table header"
like "$sum" '\|---' "a Markdown separator row"
is "$(grep -cE "^\|.*\| $U/(missing)? \|" "$T/summary.md")" 2 "a row per HTTP target"
is "$(grep -cE '^\|.*tcp://127\.0\.0\.1' "$T/summary.md")" 1 "a row for the tcp target"
like "$(grep -E "\| $U/missing \|" "$T/summary.md")" '404' "the 404 row says 404"
like "$(grep -E "\| $U/ \|" "$T/summary.md")" '200' "the ok row says 200"
is "$(grep -c '^| ' "$T/summary.md")" 4 "header and 3 rows"
run chom-health --summary "$T/summary2.md" "$U/"
exits 0 "--summary FILE"
is "$(grep -cE "^\|.*\| $U/ \|" "$T/summary2.md")" 1 "--summary: one row"

# --- -q -------------------------------------------------------------------
run chom-health -q "$U/"
exits 0 "-q healthy: exit 0"
is "$OUT$ERR" "" "-q healthy: prints nothing"
run chom-health -q "$U/missing" "tcp://127.0.0.1:$CLOSED"
exits 1 "-q unhealthy: exit 1"
is "$OUT$ERR" "" "-q unhealthy: prints nothing"
run chom-health --quiet --json "$U/missing"
exits 1 "--quiet --json: exit 1"
is "$OUT$ERR" "" "--quiet --json: prints nothing"
run env GITHUB_STEP_SUMMARY="$T/summary-q.md" chom-health -q "$U/"
ok "-q still writes the step summary" grep -q "$U/" "$T/summary-q.md"

done_testing

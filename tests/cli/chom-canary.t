#!/usr/bin/env bash
# chom-canary (SPEC.md section 3, chom-canary(1)): usage errors; then real canary releases on 127.0.0.1 between two
# backends whose error rate and latency the test sets
# (tests/canary/backend.py), behind a front nginx whose http block includes
# the upstream file chom-canary owns (tests/lib/canary.sh): a good canary
# promoted through every step, a failing one (30% 5xx) and a slow one
# (+500 ms) rolled back, both pools failing alike not blamed on the canary,
# --abort from another process, SIGTERM, SIGINT, a crashed run rolled back
# by --abort, a failing --test-cmd or --reload-cmd restoring the file, a
# second run refused (exit 3), --status, -c, the step summary; the
# --prometheus source against a real Prometheus scraping the backends (good,
# bad, slow; empty, API error, NaN and no answer are inconclusive, never a
# pass); the --access-log source with real traffic through the front nginx,
# and with a log written here (lists of upstreams after a retry, lines
# naming no upstream, rotation). After every run the upstream file is read,
# and nginx is asked where requests go. About 90 s.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/servers.sh"
. "$(dirname "$0")/../lib/canary.sh"

TOOL=chom-canary
# Every run is bounded: chom-canary taking a bad option for a good one
# would otherwise run a canary of --interval 5m steps. Runs in the
# background (bg) are bounded by bg_wait instead.
CC_TIMEOUT=120
chom-canary() { timeout -k 5 "$CC_TIMEOUT" chom-canary "$@"; }
ISO='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})$'
T0=$SECONDS

# jx PYEXPR: PYEXPR over the JSON lines of $OUT: ev (all), starts
# (step-start), samples, steps (step), r (the last result, {} if none);
# strings printed as is, other values as JSON, "?..." on an error.
jx() {
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
ev = []
for l in sys.stdin.read().splitlines():
    if l.strip():
        try:
            ev.append(json.loads(l))
        except ValueError:
            ev.append({"unparsed": l})
starts = [e for e in ev if e.get("event") == "step-start"]
samples = [e for e in ev if e.get("event") == "sample"]
steps = [e for e in ev if e.get("event") == "step"]
res = [e for e in ev if e.get("event") == "result"]
r = res[-1] if res else {}
try:
    v = eval(sys.argv[1])
except Exception as e:
    print("?%s" % e); sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v))
' "$1"
}
# events_ok DESC [counted|values]: every line of $OUT is one of the
# documented events with its documented fields and types; pools "counted"
# (access log, probes: requests and errors are integers) or "values"
# (Prometheus: they are null).
events_ok() {
	local msg
	if msg=$(printf '%s\n' "$OUT" | python3 -c '
import json, sys
kind = sys.argv[1]
lines = sys.stdin.read().splitlines()
assert lines, "no output"
def isint(x): return isinstance(x, int) and not isinstance(x, bool)
def isnum(x): return isinstance(x, (int, float)) and not isinstance(x, bool)
def pool(p, where):
    assert isinstance(p, dict), where
    for k in ("requests", "errors", "error_rate", "p95"):
        assert k in p, "%s: no %s" % (where, k)
    for k in ("error_rate", "p95"):
        assert p[k] is None or (isnum(p[k]) and p[k] >= 0), "%s: %s=%r" % (where, k, p[k])
    for k in ("requests", "errors"):
        if kind == "counted":
            assert isint(p[k]) and p[k] >= 0, "%s: %s=%r" % (where, k, p[k])
        elif kind == "values":
            assert p[k] is None, "%s: %s=%r, want null" % (where, k, p[k])
    if kind == "counted":
        assert p["errors"] <= p["requests"], where
n_result = 0
for i, l in enumerate(lines, 1):
    e = json.loads(l)
    w = "line %d (%s)" % (i, e.get("event"))
    ev = e["event"]
    if ev in ("step-start", "sample", "step"):
        for k in ("step", "steps", "weight"):
            assert isint(e[k]), "%s: %s" % (w, k)
        assert 1 <= e["step"] <= e["steps"] and 1 <= e["weight"] <= 100, w
    if ev == "sample":
        assert isnum(e["elapsed"]) and e["elapsed"] >= 0, w
        assert e["verdict"] in ("pass", "fail", "inconclusive"), w
        assert isinstance(e["reason"], str), w
        pool(e["canary"], w + " canary"); pool(e["stable"], w + " stable")
    elif ev == "step":
        assert e["verdict"] in ("pass", "fail"), w
        assert isint(e["samples"]) and e["samples"] >= 1, w
        pool(e["canary"], w + " canary"); pool(e["stable"], w + " stable")
    elif ev == "result":
        n_result += 1
        assert e["result"] in ("promoted", "rolled-back", "rollback-failed"), w
        assert isinstance(e["reason"], str), w
        assert e["exit"] in (0, 1, 4, 130, 143), w
        assert isnum(e["seconds"]) and e["seconds"] >= 0, w
        assert i == len(lines), "result is not the last line"
    elif ev != "step-start":
        raise AssertionError("%s: unknown event" % w)
assert n_result == 1, "%d result events" % n_result
' "${2:-any}" 2>&1); then
		_tap ok "$1"
	else
		_tap not-ok "$1"
		diag "$(printf '%s\n' "$msg" | tail -n 1)" "$(printf '%s\n' "$OUT" | head -n 5)"
	fi
}
# st PYEXPR: PYEXPR with m = the state file of upstream "app".
st() { mf "$SD/canary-app.json" "$1"; }
# num_ok DESC EXPR: an awk comparison.
num_ok() {
	if awk "BEGIN { exit !($2) }" 2>/dev/null; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}
# servers: the server addresses of the upstream file, space-separated.
servers() { upstream_servers | tr '\n' ' ' | sed 's/ $//'; }
# stable_only DESC: the file names stable alone, nginx accepts it, and
# every request through the front nginx reaches stable.
stable_only() {
	is "$(servers)" "$STABLE_ADDR" "$1: the upstream file holds stable only"
	# shellcheck disable=SC2086 # a command line, split on purpose
	ok "$1: nginx -t accepts the file" $FRONT_TEST
	local got
	got=$(front_wait_only stable)
	ok "$1: requests through nginx all reach stable ($got)" test $? -eq 0
}
canary_only() {
	is "$(servers)" "$CANARY_ADDR" "$1: the upstream file holds the canary only"
	# shellcheck disable=SC2086 # a command line, split on purpose
	ok "$1: nginx -t accepts the file" $FRONT_TEST
	local got
	got=$(front_wait_only canary)
	ok "$1: requests through nginx all reach the canary ($got)" test $? -eq 0
}
# bg NAME CMD...: CMD in the background, its output in $T/NAME.{out,err};
# sets BG (its pid).
bg() {
	local name=$1
	shift
	command "$@" >"$T/$name.out" 2>"$T/$name.err" &
	BG=$!
	at_exit "_pid_stop $BG 10"
}
# bg_wait PID NAME SECONDS: waits for it (killing it after SECONDS); sets
# RC (or "timeout"), OUT and ERR as run does.
bg_wait() {
	local pid=$1 n=$(($3 * 10)) i
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		RC=timeout
	else
		wait "$pid" 2>/dev/null
		RC=$?
	fi
	OUT=$(cat "$T/$2.out")
	ERR=$(cat "$T/$2.err")
}
# running PID: the state file says PID runs the canary at step 1 (50%),
# and the upstream file holds both servers.
running() {
	[ "$(st 'm["status"]')" = running ] && [ "$(st 'm["pid"]')" = "$1" ] &&
		[ "$(st 'm["weight"]')" = 50 ] &&
		[ "$(upstream_servers | wc -l)" = 2 ]
}
timing() { diag "$1: ${2}s"; }
# only POOL: front_wait_only, quiet unless it fails.
only() {
	local got rc
	got=$(front_wait_only "$@")
	rc=$?
	[ "$rc" -eq 0 ] || diag "requests through nginx: $got"
	return "$rc"
}
# pw EXPR COND [S]: prom_wait, quiet unless it fails.
pw() {
	local v rc
	v=$(prom_wait "$@")
	rc=$?
	[ "$rc" -eq 0 ] || diag "$1: last value $v"
	return "$rc"
}

# --- --help, --version ----------------------------------------------------
run chom-canary --help
exits 0 "--help exits 0"
like "$OUT" '^Usage: chom-canary' "--help prints usage on stdout"
is "$ERR" "" "--help: nothing on stderr"
for o in --upstream-file --upstream --stable --canary --upstream-directive \
	--test-cmd --reload-cmd --steps --interval --sample --max-error-rate \
	--max-p95 --min-requests --max-inconclusive --alpha --access-log \
	--probe --probe-rate --probe-host --prometheus --error-rate-query \
	--p95-query --state-dir --status --abort --wait --summary --json; do
	like "$OUT" "$o" "--help mentions $o"
done
run chom-canary --version
exits 0 "--version exits 0"
like "$OUT" '^chom-canary \(chom\) [0-9]+\.[0-9]+\.[0-9]+$' "--version format"

# --- usage errors: exit 2, one line and the Try line, nothing written -----
CC_TIMEOUT=10
U0=$T/u0.conf
SD0=$T/sd0
base=(--upstream-file "$U0" --stable 127.0.0.1:1 --canary 127.0.0.1:2
	--state-dir "$SD0" --test-cmd true --reload-cmd true)
run chom-canary
usage_err "no arguments"
run chom-canary --upstream-file "$U0" --canary 127.0.0.1:2 --state-dir "$SD0" --probe /
usage_err "no --stable" 'stable'
run chom-canary --upstream-file "$U0" --stable 127.0.0.1:1 --state-dir "$SD0" --probe /
usage_err "no --canary" 'canary'
run chom-canary --stable 127.0.0.1:1 --canary 127.0.0.1:2 --state-dir "$SD0" --probe /
usage_err "no --upstream-file" 'upstream-file'
run chom-canary "${base[@]}"
usage_err "no source" 'access-log|probe|prometheus|source'
run chom-canary "${base[@]}" --probe / --bogus
usage_err "unknown option" 'bogus'
for s in 50,10 10,10 0,50 10,101 abc 10,,50 '' '10,' -10; do
	run chom-canary "${base[@]}" --probe / --steps "$s"
	usage_err "bad --steps '$s'" 'steps'
done
for o in "--interval abc" "--interval 0" "--interval 5parsecs" "--sample -1s" \
	"--sample x" "--max-p95 fast" "--max-p95 -2s"; do
	# shellcheck disable=SC2086
	run chom-canary "${base[@]}" --probe / $o
	usage_err "bad duration $o" "${o%% *}"
done
for o in "--max-error-rate 1.5" "--max-error-rate abc" "--max-error-rate -0.1" \
	"--min-requests abc" "--min-requests -1" "--max-inconclusive x" \
	"--alpha 1.5" "--alpha abc" "--probe-rate 0" "--probe-rate abc"; do
	# shellcheck disable=SC2086
	run chom-canary "${base[@]}" --probe / $o
	usage_err "bad value $o" "${o%% *}"
done
run chom-canary "${base[@]}" --probe health
usage_err "--probe without a leading /" 'probe'
run chom-canary --state-dir "$SD0" --status --abort
usage_err "--status with --abort"
run chom-canary -c "$T/no-such.conf" "${base[@]}" --probe /
exits 2 "-c of a missing file: exit 2"
printf '[canary]\nsteps = 0,50\n' >"$T/bad-steps.conf"
run chom-canary -c "$T/bad-steps.conf" "${base[@]}" --probe /
exits 2 "-c with a bad steps value: exit 2"
ok "usage errors wrote no upstream file" test ! -e "$U0"
ok "usage errors made no state" test ! -e "$SD0/canary-app.json"

run chom-canary --state-dir "$SD0" --upstream nosuch --status
exits 1 "--status without a state file: exit 1"
run chom-canary --state-dir "$SD0" --upstream nosuch --abort --wait 2
exits 1 "--abort with nothing to abort: exit 1"
ok "--abort with nothing to abort leaves no abort request behind" \
	test ! -e "$SD0/canary-nosuch.abort"

CC_TIMEOUT=120

# --- the servers ------------------------------------------------------------
backend_start stable stable || { diag "backend stable did not start"; exit 1; }
backend_start canary canary || { diag "backend canary did not start"; exit 1; }
front_start app "$STABLE_ADDR" || { diag "front nginx did not start"; exit 1; }
SD=$T/state
mkdir -p "$SD"
INITIAL=$T/upstream.initial
upstream_initial >"$INITIAL"
# good: both backends answer at once without errors.
good() {
	backend_set stable error_rate=0 delay_ms=0 && backend_set canary error_rate=0 delay_ms=0
}
COMMON=(--upstream-file "$UPSTREAM_FILE" --stable "$STABLE_ADDR"
	--canary "$CANARY_ADDR" --state-dir "$SD" --test-cmd "$FRONT_TEST"
	--reload-cmd "$FRONT_RELOAD")
PROBE=(--probe /health --probe-rate 20 --min-requests 5)
FAST=(--interval 1s --sample 0.5s)
ok "front nginx serves stable from the hand-written file" only stable

# --- a good canary: promoted through every (default) step -------------------
good
printf 'earlier summary\n' >"$T/summary.md"
t=$SECONDS
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" --json \
	--summary "$T/summary.md" --upstream-directive "keepalive 8" \
	--upstream-directive "keepalive_timeout 30s"
timing "good canary, 5 steps" $((SECONDS - t))
exits 0 "good canary: exit 0"
is "$ERR" "" "good canary: quiet on stderr when not on a terminal"
events_ok "good canary: --json events as documented" counted
is "$(jx '[e["weight"] for e in starts]')" "[10, 25, 50, 75, 100]" \
	"good canary: the default steps 10,25,50,75,100 were started"
is "$(jx '[(e["step"], e["steps"]) for e in starts]')" \
	"[[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]" "good canary: step i of 5"
is "$(jx '[e["verdict"] for e in steps]')" '["pass", "pass", "pass", "pass", "pass"]' \
	"good canary: every step passed"
is "$(jx '[e["weight"] for e in steps]')" "[10, 25, 50, 75, 100]" \
	"good canary: a step event per weight"
is "$(jx 'sorted(set(s["verdict"] for s in samples) - {"pass", "inconclusive"})')" "[]" \
	"good canary: no sample failed"
is "$(jx 'all(s["canary"]["requests"] > 0 and s["stable"]["requests"] > 0 for s in steps)')" \
	true "good canary: each step counted requests of both pools"
is "$(jx 'all(s["canary"]["error_rate"] == 0 for s in steps)')" true \
	"good canary: error rate 0 in every step"
is "$(jx 'all(s["canary"]["p95"] is not None and s["canary"]["p95"] < 0.3 for s in steps)')" \
	true "good canary: a small p95 in every step"
is "$(jx 'r["result"], r["exit"]')" '["promoted", 0]' "good canary: result promoted, exit 0"
num_ok "good canary: took at least 5 intervals ($(jx 'r["seconds"]') s)" \
	"$(jx 'r["seconds"]') >= 4.9"
is "$(backend_get canary last_path)" /health "good canary: probes GET --probe PATH"
is "$(backend_get canary last_host)" "$CANARY_ADDR" "good canary: probe Host is ADDR by default"
n=$(backend_get canary since_ctl)
s=$(jx 'r["seconds"]')
num_ok "good canary: probes at about --probe-rate 20/s ($n in $s s)" \
	"$n >= 20 * $s / 3 && $n <= 20 * $s * 2 + 20"
canary_only "good canary"
like "$(head -n 1 "$UPSTREAM_FILE")" 'Managed by chom-canary' "good canary: managed-by comment first"
like "$(cat "$UPSTREAM_FILE")" "# promoted: $CANARY_ADDR is the stable pool" "good canary: promoted comment"
like "$(cat "$UPSTREAM_FILE")" $'upstream app \\{' "good canary: upstream block named app"
like "$(sed -n '/^upstream/,/}/p' "$UPSTREAM_FILE")" '^[[:space:]]*keepalive 8;' \
	"good canary: --upstream-directive inside the block"
like "$(sed -n '/^upstream/,/}/p' "$UPSTREAM_FILE")" '^[[:space:]]*keepalive_timeout 30s;' \
	"good canary: a second --upstream-directive too"
is "$(st 'm["status"]')" promoted "good canary: state status promoted"
is "$(st 'm["steps"]')" "[10, 25, 50, 75, 100]" "good canary: state steps"
is "$(st '(m["upstream"], m["stable"], m["canary"], m["upstream_file"])')" \
	"[\"app\", \"$STABLE_ADDR\", \"$CANARY_ADDR\", \"$UPSTREAM_FILE\"]" \
	"good canary: state names the upstream, pools and file"
is "$(st 'len(m["history"])')" 5 "good canary: state history has the 5 steps"
is "$(st 'm["upstream_directives"]')" '["keepalive 8", "keepalive_timeout 30s"]' "good canary: state directives"
like "$(st 'm["started"]')" "$ISO" "good canary: state started is ISO 8601"
like "$(st 'm["updated"]')" "$ISO" "good canary: state updated is ISO 8601"
ok "good canary: the lock is not left held" flock -n "$SD/canary-app.lock" true
ok "good canary: no abort request lying around" test ! -e "$SD/canary-app.abort"
sum=$(cat "$T/summary.md")
like "$sum" '^earlier summary' "summary: appended, not overwritten"
num_ok "summary: a table (header, rule, 5 steps)" "$(grep -cE '^\|' "$T/summary.md") >= 7"
for w in 10 25 50 75 100; do
	like "$(grep -E '^\|' "$T/summary.md")" "(^|[^0-9])$w%" "summary: a row for $w%"
done
like "$sum" '```mermaid' "summary: a mermaid block"
like "$sum" 'xychart-beta' "summary: an xychart"
num_ok "summary: p95 series of both pools" "$(grep -cE '^[[:space:]]*(line|bar)\b' "$T/summary.md") >= 2"
like "$sum" 'x-axis' "summary: an x axis"
is "$(grep -c '^```' "$T/summary.md")" 2 "summary: the code block is closed"
run chom-canary --state-dir "$SD" --status
exits 0 "--status after promotion: exit 0"
like "$OUT" 'promoted' "--status after promotion says promoted"
run chom-canary --state-dir "$SD" --upstream app --status --json
exits 0 "--status --json: exit 0"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "--status --json: one line"
is "$(jx 'ev[0]["status"], ev[0]["pid"] > 0, ev[0]["weight"]')" '["promoted", true, 100]' \
	"--status --json: the state file's fields"

# --- a canary answering 30% 5xx: rolled back at the first step ------------
front_reset
good && backend_set canary error_rate=0.3
t=$SECONDS
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" --json
timing "bad canary" $((SECONDS - t))
exits 1 "bad canary: exit 1"
events_ok "bad canary: --json events as documented" counted
is "$(jx 'r["result"], r["exit"]')" '["rolled-back", 1]' "bad canary: result rolled-back, exit 1"
like "$(jx 'r["reason"]')" 'error' "bad canary: the reason names the error rate"
is "$(jx '[e["step"] for e in starts]')" "[1]" "bad canary: only the first step was started"
is "$(jx '[s["verdict"] for s in samples][-1]')" fail "bad canary: its last sample failed"
num_ok "bad canary: failing sample saw the canary's error rate ($(jx 'samples[-1]["canary"]["error_rate"]'))" \
	"$(jx 'samples[-1]["canary"]["error_rate"]') >= 0.2"
is "$(jx '[s["verdict"] for s in samples].count("pass")')" 0 "bad canary: no sample passed"
num_ok "bad canary: rolled back within 3 s ($(jx 'r["seconds"]'))" "$(jx 'r["seconds"]') < 3"
stable_only "bad canary"
like "$(cat "$UPSTREAM_FILE")" '# rolled back: stable 100%' "bad canary: rolled-back comment"
like "$(head -n 1 "$UPSTREAM_FILE")" 'Managed by chom-canary' "bad canary: managed-by comment"
is "$(st 'm["status"]')" rolled-back "bad canary: state status rolled-back"
run chom-canary --state-dir "$SD" --status
exits 0 "--status after rollback: exit 0"
like "$OUT" 'rolled.back' "--status after rollback says rolled back"

# --- a slow canary (+500 ms): rolled back on p95 ---------------------------
front_reset
good && backend_set canary delay_ms=500
t=$SECONDS
run chom-canary "${COMMON[@]}" --probe /health --probe-rate 20 --min-requests 3 \
	--max-inconclusive 20 "${FAST[@]}" --max-p95 300ms -v
timing "slow canary" $((SECONDS - t))
exits 1 "slow canary: exit 1"
like "$OUT" '^rolled back: .*(p95|latenc)' "slow canary: stdout says rolled back on p95"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "slow canary: one line on stdout"
like "$ERR" '^chom-canary: step 1/5 10%: canary [0-9]+ req .* \| stable [0-9]+ req .*: (pass|fail|inconclusive)' \
	"slow canary: -v prints a line per sample"
like "$ERR" 'step 1/5 10%: .*: fail' "slow canary: -v shows the failing sample"
stable_only "slow canary"
good

# --- both pools failing alike: the canary is not blamed --------------------
front_reset
backend_set stable error_rate=0.3 && backend_set canary error_rate=0.3
t=$SECONDS
GITHUB_STEP_SUMMARY=$T/gh-summary.md run chom-canary "${COMMON[@]}" "${PROBE[@]}" \
	"${FAST[@]}" --steps 50,100 --max-error-rate 5% --probe-host app.test --json
timing "both failing" $((SECONDS - t))
exits 0 "both pools at 30% errors: promoted, exit 0"
is "$(jx 'r["result"]')" promoted "both pools at 30% errors: result promoted"
is "$(jx '[s["verdict"] for s in samples].count("fail")')" 0 "both pools at 30% errors: no sample failed"
num_ok "both pools at 30% errors: the canary was over --max-error-rate" \
	"$(jx 'max(s["canary"]["error_rate"] or 0 for s in steps)') >= 0.2"
num_ok "both pools at 30% errors: and so was stable" \
	"$(jx 'max(s["stable"]["error_rate"] or 0 for s in steps)') >= 0.2"
is "$(backend_get canary last_host)" app.test "--probe-host sets the probes' Host"
canary_only "both pools failing"
ok "GITHUB_STEP_SUMMARY: written" test -s "$T/gh-summary.md"
like "$(cat "$T/gh-summary.md" 2>/dev/null)" 'xychart-beta' "GITHUB_STEP_SUMMARY: the chart"
num_ok "GITHUB_STEP_SUMMARY: a table of 2 steps" "$(grep -cE '^\|' "$T/gh-summary.md" 2>/dev/null) >= 4"
good

# --- --status, a second run (exit 3) and --abort from another process ------
front_reset
# shellcheck disable=SC2054
LONG=(--steps 50,100 --interval 60s --sample 0.5s)
bg long chom-canary "${COMMON[@]}" "${PROBE[@]}" "${LONG[@]}" --json
A=$BG
if wait_for 15 running "$A"; then _tap ok "long canary: running at step 1, 50%"; else
	_tap not-ok "long canary: running at step 1, 50%"
	diag "state: $(cat "$SD/canary-app.json" 2>/dev/null)" "file: $(cat "$UPSTREAM_FILE")" \
		"stderr: $(cat "$T/long.err")"
fi
is "$(grep -c 'weight=50' "$UPSTREAM_FILE")" 2 "long canary: weights 50 and 50"
like "$(cat "$UPSTREAM_FILE")" '# step 1/2: canary 50%, stable 50%' "long canary: step comment"
got=
for _ in $(seq 1 25); do
	got=$(front_pools 20)
	case $got in *"stable=0 "* | *"canary=0 "*) sleep 0.2 ;; *) break ;; esac
done
like "$got" '^stable=[1-9][0-9]* canary=[1-9][0-9]* other=0$' \
	"long canary: nginx sends requests to both pools ($got)"
run chom-canary --state-dir "$SD" --upstream app --status
exits 0 "--status while running: exit 0"
like "$OUT" 'running' "--status while running says running"
like "$OUT" '1/2' "--status while running: step 1/2"
like "$OUT" '50%' "--status while running: the weight"
run chom-canary --state-dir "$SD" --status --json
exits 0 "--status --json while running: exit 0"
is "$(jx 'ev[0]["status"], ev[0]["pid"], ev[0]["step"], ev[0]["weight"], ev[0]["steps"]')" \
	"[\"running\", $A, 1, 50, [50, 100]]" "--status --json while running: status, pid, step, weight, steps"
is "$(jx 'ev[0]["test_cmd"]')" "$FRONT_TEST" "--status --json: the test command"
is "$(jx 'ev[0]["reload_cmd"]')" "$FRONT_RELOAD" "--status --json: the reload command"
is "$(jx 'isinstance(ev[0]["host"], str) and len(ev[0]["host"]) > 0')" true "--status --json: host"
run env CHOM_STATE_DIR="$SD" chom-canary --status --json
is "$(jx 'ev[0]["status"], ev[0]["pid"]')" "[\"running\", $A]" "CHOM_STATE_DIR names the state directory"
cp "$UPSTREAM_FILE" "$T/upstream.before"
cp "$SD/canary-app.json" "$T/state.before"
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}"
exits 3 "a second canary of the same upstream: exit 3"
is "$OUT" "" "second canary: nothing on stdout"
like "$ERR" '^chom-canary: ' "second canary: says why on stderr"
ok "second canary: upstream file untouched" cmp -s "$T/upstream.before" "$UPSTREAM_FILE"
is "$(st 'm["pid"]')" "$A" "second canary: state still names the running one"
ok "the first canary still runs" kill -0 "$A"
t=$SECONDS
run chom-canary --state-dir "$SD" --upstream app --abort --wait 20
exits 0 "--abort: exit 0"
bg_wait "$A" long 20
timing "--abort" $((SECONDS - t))
exits 1 "--abort: the running canary exits 1"
events_ok "--abort: its --json events as documented" counted
is "$(jx 'r["result"], r["exit"]')" '["rolled-back", 1]' "--abort: result rolled-back, exit 1"
like "$(jx 'r["reason"]')" 'abort' "--abort: the reason says aborted"
stable_only "--abort"
is "$(st 'm["status"]')" rolled-back "--abort: state status rolled-back"
ok "--abort: the abort request is gone" test ! -e "$SD/canary-app.abort"
cp "$UPSTREAM_FILE" "$T/upstream.before"
run chom-canary --state-dir "$SD" --upstream app --abort --wait 5
exits 1 "--abort again: nothing to abort, exit 1"
ok "--abort again: upstream file untouched" cmp -s "$T/upstream.before" "$UPSTREAM_FILE"

# --- SIGTERM ----------------------------------------------------------------
front_reset
bg term chom-canary "${COMMON[@]}" "${PROBE[@]}" "${LONG[@]}" --json
A=$BG
wait_for 15 running "$A"
ok "SIGTERM: the canary was running at 50%" running "$A"
kill -TERM "$A"
bg_wait "$A" term 20
exits 143 "SIGTERM: exit 143"
is "$(jx 'r["result"], r["exit"]')" '["rolled-back", 143]' "SIGTERM: result rolled-back, exit 143"
stable_only "SIGTERM"
is "$(st 'm["status"]')" rolled-back "SIGTERM: state status rolled-back"
ok "SIGTERM: the lock is free" flock -n "$SD/canary-app.lock" true

# --- SIGINT (a background job ignores it unless told otherwise) ------------
front_reset
bg int env --default-signal=INT chom-canary "${COMMON[@]}" "${PROBE[@]}" "${LONG[@]}" --json
A=$BG
wait_for 15 running "$A"
ok "SIGINT: the canary was running at 50%" running "$A"
kill -INT "$A"
bg_wait "$A" int 20
exits 130 "SIGINT: exit 130"
is "$(jx 'r["result"], r["exit"]')" '["rolled-back", 130]' "SIGINT: result rolled-back, exit 130"
stable_only "SIGINT"

# --- a crashed canary (kill -9): --abort rolls its file back ---------------
front_reset
bg crash chom-canary "${COMMON[@]}" "${PROBE[@]}" "${LONG[@]}"
A=$BG
wait_for 15 running "$A"
ok "kill -9: the canary was running at 50%" running "$A"
# (bash's "Killed" notice goes to /dev/null)
{
	kill -KILL "$A"
	bg_wait "$A" crash 10
} 2>/dev/null
is "$(upstream_servers | wc -l)" 2 "kill -9: the file still holds both pools"
run chom-canary --state-dir "$SD" --upstream app --abort --wait 10
exits 0 "--abort of a crashed canary: exit 0"
stable_only "--abort of a crashed canary"
is "$(st 'm["status"]')" rolled-back "--abort of a crashed canary: state rolled-back"

# --- a failing --test-cmd: the file before is put back ---------------------
# The test fails whatever the file: nothing can be applied, the file before
# comes back byte for byte and nginx never leaves it. The rollback to stable
# alone that follows fails its test too, but nothing was reloaded and the
# file says stable alone: the safe state is in place, exit 1.
front_reset
cp "$UPSTREAM_FILE" "$T/upstream.before"
rm -f "$T/seen-by-test"
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" \
	--test-cmd "cat '$UPSTREAM_FILE' >>'$T/seen-by-test'; echo 'test says no' >&2; exit 1"
exits 1 "failing --test-cmd: exit 1, stable in place"
ok "failing --test-cmd: it was run on the new file" grep -q "$CANARY_ADDR" "$T/seen-by-test"
ok "failing --test-cmd: the file before is back, byte for byte" \
	cmp -s "$T/upstream.before" "$UPSTREAM_FILE"
ok "failing --test-cmd: nginx still serves stable" only stable
like "$ERR" 'test' "failing --test-cmd: says the test failed"

# The test fails only with the canary in the file (a bad --canary, say):
# rolled back to stable, exit 1.
front_reset
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" --json \
	--test-cmd "! grep -q '$CANARY_ADDR' '$UPSTREAM_FILE' && $FRONT_TEST"
exits 1 "--test-cmd failing with the canary: exit 1"
is "$(jx 'r["result"]')" rolled-back "--test-cmd failing with the canary: result rolled-back"
like "$(jx 'r["reason"]')" 'test' "--test-cmd failing with the canary: the reason names the test"
stable_only "--test-cmd failing with the canary"

# --- a failing --reload-cmd: the file before is put back -------------------
# The reload fails whatever the file: the file before comes back byte for
# byte, but reloading it fails too, and what a failed reload left nginx
# running is not known: exit 4, a person must look.
front_reset
cp "$UPSTREAM_FILE" "$T/upstream.before"
rm -f "$T/reload-calls"
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" \
	--reload-cmd "echo x >>'$T/reload-calls'; exit 1"
exits 4 "failing --reload-cmd: exit 4"
ok "failing --reload-cmd: it was run" test -s "$T/reload-calls"
ok "failing --reload-cmd: the file before is back, byte for byte" \
	cmp -s "$T/upstream.before" "$UPSTREAM_FILE"
ok "failing --reload-cmd: nginx still serves stable" only stable
like "$ERR" 'reload' "failing --reload-cmd: says the reload failed"

# --reload-cmd failing only at the second step (50%): back to stable.
front_reset
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" --steps 25,50,100 --json \
	--reload-cmd "if grep -q 'weight=50' '$UPSTREAM_FILE'; then exit 1; fi; $FRONT_RELOAD"
exits 1 "--reload-cmd failing at 50%: exit 1"
is "$(jx '[e["verdict"] for e in steps]')" '["pass"]' "--reload-cmd failing at 50%: step 1 had passed"
is "$(jx 'r["result"]')" rolled-back "--reload-cmd failing at 50%: result rolled-back"
like "$(jx 'r["reason"]')" 'reload' "--reload-cmd failing at 50%: the reason names the reload"
stable_only "--reload-cmd failing at 50%"

# --- -c: the [canary] section ----------------------------------------------
front_reset
cat >"$T/canary.conf" <<EOF
[canary]
upstream_file = $UPSTREAM_FILE
stable = $STABLE_ADDR
canary = $CANARY_ADDR
state_dir = $SD
test_cmd = $FRONT_TEST
reload_cmd = $FRONT_RELOAD
steps = 50,100
interval = 1s
sample = 0.5s
probe = /cfg
probe_rate = 20
min_requests = 5
EOF
run chom-canary -c "$T/canary.conf"
exits 0 "-c: exit 0"
is "$OUT" "promoted $CANARY_ADDR" "-c: stdout says promoted ADDR"
is "$(backend_get canary last_path)" /cfg "-c: probe = /cfg was used"
canary_only "-c"
is "$(st 'm["steps"]')" "[50, 100]" "-c: steps = 50,100 was used"

# --- a last step under 100: refused, promotion is judged at 100% -----------
run chom-canary "${COMMON[@]}" "${PROBE[@]}" "${FAST[@]}" --steps 20,50
usage_err "--steps 20,50" "ending at 100"

# --- --prometheus: a real Prometheus scraping both backends ---------------
front_reset
good
t=$SECONDS
if ! prometheus_start "$STABLE_ADDR" "$CANARY_ADDR"; then
	diag "Prometheus did not start"
	exit 1
fi
load_start prom-stable 20 4 150 "http://$STABLE_ADDR/"
load_start prom-canary 20 4 150 "http://$CANARY_ADDR/"
# shellcheck disable=SC2016 # $pool and $addr are chom-canary's
ERRQ='sum(rate(app_errors_total{pool="$pool"}[5s])) / sum(rate(app_requests_total{pool="$pool"}[5s]))'
P95Q='histogram_quantile(0.95, sum by (le) (rate(app_request_duration_seconds_bucket{instance="$addr"}[5s])))'
ok "Prometheus: canary error rate 0" pw "${ERRQ//\$pool/canary}" 'v == 0' 30
ok "Prometheus: stable error rate 0" pw "${ERRQ//\$pool/stable}" 'v == 0' 30
ok "Prometheus: canary p95 small" pw "${P95Q//\$addr/$CANARY_ADDR}" 'v < 0.1' 30
ok "Prometheus: stable p95 small" pw "${P95Q//\$addr/$STABLE_ADDR}" 'v < 0.1' 30
timing "Prometheus up" $((SECONDS - t))
PROM=(--prometheus "$PROM_URL" --error-rate-query "$ERRQ" --p95-query "$P95Q"
	--max-inconclusive 3)

t=$SECONDS
run chom-canary "${COMMON[@]}" "${PROM[@]}" "${FAST[@]}" --steps 50,100 --json
timing "Prometheus good" $((SECONDS - t))
exits 0 "Prometheus, good canary: exit 0"
events_ok "Prometheus: --json events, requests and errors null" values
is "$(jx 'r["result"]')" promoted "Prometheus, good canary: promoted"
is "$(jx '[e["verdict"] for e in steps]')" '["pass", "pass"]' "Prometheus, good canary: both steps passed"
is "$(jx 'all(s["canary"]["error_rate"] == 0 and s["canary"]["p95"] is not None for s in steps)')" \
	true "Prometheus, good canary: the queries' values are in the events"
canary_only "Prometheus, good canary"

front_reset
backend_set canary error_rate=0.3
ok "Prometheus sees the canary's errors" pw "${ERRQ//\$pool/canary}" 'v > 0.2' 30
t=$SECONDS
run chom-canary "${COMMON[@]}" "${PROM[@]}" "${FAST[@]}" --steps 50,100 --json
timing "Prometheus bad" $((SECONDS - t))
exits 1 "Prometheus, 30% errors: exit 1"
is "$(jx 'r["result"]')" rolled-back "Prometheus, 30% errors: rolled back"
is "$(jx '[e["step"] for e in starts]')" "[1]" "Prometheus, 30% errors: at the first step"
num_ok "Prometheus, 30% errors: the failing sample has the query's value" \
	"$(jx 'samples[-1]["canary"]["error_rate"]') > 0.2"
stable_only "Prometheus, 30% errors"

front_reset
good && backend_set canary delay_ms=500
ok "Prometheus sees the canary's latency" pw "${P95Q//\$addr/$CANARY_ADDR}" 'v > 0.4 && v < 2' 30
ok "Prometheus no longer sees canary errors" pw "${ERRQ//\$pool/canary}" 'v == 0' 30
t=$SECONDS
run chom-canary "${COMMON[@]}" "${PROM[@]}" "${FAST[@]}" --steps 50,100 --max-p95 300ms --json
timing "Prometheus slow" $((SECONDS - t))
exits 1 "Prometheus, slow canary: exit 1"
like "$(jx 'r["reason"]')" 'p95|latenc' "Prometheus, slow canary: rolled back on p95"
num_ok "Prometheus, slow canary: the failing sample's p95 ($(jx 'samples[-1]["canary"]["p95"]'))" \
	"$(jx 'samples[-1]["canary"]["p95"]') > 0.3"
stable_only "Prometheus, slow canary"
good

# inconclusive answers: never a pass, and --max-inconclusive of them fail.
inconclusive() { # DESC
	exits 1 "$1: exit 1"
	is "$(jx 'r["result"]')" rolled-back "$1: rolled back"
	is "$(jx 'sorted(set(s["verdict"] for s in samples))')" '["inconclusive"]' \
		"$1: every sample inconclusive"
	is "$(jx 'len(samples)')" 3 "$1: after --max-inconclusive 3 samples"
	like "$(jx 'r["reason"]')" 'inconclusive' "$1: the reason says inconclusive"
	stable_only "$1"
}
front_reset
run chom-canary "${COMMON[@]}" --prometheus "$PROM_URL" --max-inconclusive 3 "${FAST[@]}" \
	--error-rate-query 'sum(rate(no_such_metric_total{pool="$pool"}[5s]))' \
	--p95-query "$P95Q" --steps 50,100 --json
inconclusive "Prometheus, empty result"
front_reset
run chom-canary "${COMMON[@]}" --prometheus "$PROM_URL" --max-inconclusive 3 "${FAST[@]}" \
	--error-rate-query "$ERRQ" --p95-query 'histogram_quantile(0.95,' --steps 50,100 --json
inconclusive "Prometheus, API error (bad query)"
front_reset
load_stop prom-canary
ok "Prometheus: without traffic the canary's error rate is NaN" \
	pw "${ERRQ//\$pool/canary}" NaN 30
run chom-canary "${COMMON[@]}" "${PROM[@]}" "${FAST[@]}" --steps 50,100 --json
inconclusive "Prometheus, NaN"
front_reset
run chom-canary "${COMMON[@]}" --prometheus "http://127.0.0.1:$(free_port)" \
	--error-rate-query "$ERRQ" --p95-query "$P95Q" --max-inconclusive 3 "${FAST[@]}" \
	--steps 50,100 --json
inconclusive "Prometheus not answering"
load_stop prom-stable

# --- --access-log: real traffic through the front nginx --------------------
front_reset
good
load_start front 60 4 90 "$FRONT_URL/app"
AL=(--access-log "$ACCESS_LOG" --min-requests 5 --interval 2s --sample 0.5s)
# Traffic reaches the log before the canary starts.
ok "access log: traffic is logged" wait_for 10 test -s "$ACCESS_LOG"
# The bad canary first: its errors stay in the log, and the good run after
# must read only what is written after it starts.
backend_set canary error_rate=0.3
t=$SECONDS
run chom-canary "${COMMON[@]}" "${AL[@]}" --steps 10,50,100 --json
timing "access log bad" $((SECONDS - t))
exits 1 "access log, 30% errors: exit 1"
events_ok "access log: --json events as documented" counted
is "$(jx 'r["result"]')" rolled-back "access log, 30% errors: rolled back"
is "$(jx '[e["step"] for e in starts]')" "[1]" "access log, 30% errors: at the first step"
num_ok "access log, 30% errors: the failing sample counted canary errors" \
	"$(jx 'samples[-1]["canary"]["errors"]') >= 2"
num_ok "access log, 30% errors: and stable requests" "$(jx 'samples[-1]["stable"]["requests"]') >= 5"
stable_only "access log, 30% errors"
grep -c "ua=\"$CANARY_ADDR\" " "$ACCESS_LOG" >"$T/canary-lines"
ok "access log: the canary's requests were logged" test "$(cat "$T/canary-lines")" -gt 0

good
t=$SECONDS
run chom-canary "${COMMON[@]}" "${AL[@]}" --steps 10,50,100 --json
timing "access log good" $((SECONDS - t))
exits 0 "access log, good canary: exit 0"
is "$(jx '[e["weight"] for e in steps]')" "[10, 50, 100]" "access log, good canary: every step"
is "$(jx '[e["verdict"] for e in steps]')" '["pass", "pass", "pass"]' "access log, good canary: each passed"
is "$(jx 'all(s["canary"]["errors"] == 0 for s in samples)')" true \
	"access log, good canary: errors logged before it started are not counted"
is "$(jx 'all(s["canary"]["requests"] >= 5 for s in steps)')" true \
	"access log, good canary: canary requests counted at each step"
# A request or two may still reach stable while nginx reloads.
num_ok "access log, good canary: stable gets (almost) nothing at 100% ($(jx 'steps[-1]["stable"]["requests"]'))" \
	"$(jx 'steps[-1]["stable"]["requests"]') * 10 <= $(jx 'steps[-1]["canary"]["requests"]')"
num_ok "access log, good canary: weights shape the counts at 10% ($(jx 'steps[0]["canary"]["requests"]'):$(jx 'steps[0]["stable"]["requests"]'))" \
	"$(jx 'steps[0]["canary"]["requests"]') * 3 < $(jx 'steps[0]["stable"]["requests"]')"
canary_only "access log, good canary"
load_stop front
diag "front load: $(cat "$T/load-front.json" 2>/dev/null)"
is "$(grep -c '\[\(crit\|alert\|emerg\)\]' "$FRONT_DIR/error.log")" 0 "front nginx logged nothing critical"

# --- --access-log: the fields of the documented format, in a log written
# here: lists of upstreams ("a, b" and "a : b", after a retry) count for the
# last address and its time; ua="-" and lines without ua= are ignored.
SYN=(--upstream synth --upstream-file "$T/synth.conf" --stable "$STABLE_ADDR"
	--canary "$CANARY_ADDR" --state-dir "$SD" --test-cmd true --reload-cmd true
	--access-log "$T/synth.log" --min-requests 5 --steps 50,100 "${FAST[@]}"
	--max-p95 1s --json)
R='127.0.0.1 [27/Nov/2026:12:00:00 +0000] "GET /synth HTTP/1.1"'
ok200s="$R st=200 ua=\"$STABLE_ADDR\" urt=\"0.002\""
ok200c="$R st=200 ua=\"$CANARY_ADDR\" urt=\"0.003\""
nolog1="$R st=204 ua=\"-\" urt=\"-\""
nolog2="$R st=500 no upstream fields"
# The canary answers last, with 500, in half of its lines: 50% errors.
log_start synth1 "$T/synth.log" 100 30 "$ok200s" "$ok200s" "$ok200s" \
	"$R st=500 ua=\"$STABLE_ADDR, $CANARY_ADDR\" urt=\"0.001, 0.002\"" \
	"$ok200c" "$ok200s" "$nolog1" "$ok200s" \
	"$R st=500 ua=\"$STABLE_ADDR : $CANARY_ADDR\" urt=\"0.001 : 0.002\"" \
	"$ok200c" "$ok200s" "$nolog2"
wait_for 5 test -s "$T/synth.log"
run chom-canary "${SYN[@]}"
log_stop synth1
exits 1 "log lists: the canary answering last with 500 is rolled back"
like "$(jx 'r["reason"]')" 'error' "log lists: on its error rate"
# (A sample may end within the 12-line cycle: shares are about right.)
num_ok "log lists: the canary's share of errors is 50% ($(jx 'samples[-1]["canary"]'))" \
	"$(jx 'abs(samples[-1]["canary"]["errors"] / samples[-1]["canary"]["requests"] - 0.5)') < 0.1"
is "$(jx 'samples[-1]["stable"]["errors"]')" 0 "log lists: stable had no error"
num_ok "log lists: ua=\"-\" and lines without ua= are not counted (6 stable lines for 4 canary ones: $(jx 'samples[-1]["stable"]["requests"]'):$(jx 'samples[-1]["canary"]["requests"]'))" \
	"$(jx 'abs(samples[-1]["stable"]["requests"] / samples[-1]["canary"]["requests"] - 1.5)') < 0.25"
is "$(upstream_servers "$T/synth.conf")" "$STABLE_ADDR" "log lists: synth upstream back on stable"
like "$(cat "$T/synth.conf")" $'upstream synth \\{' "--upstream synth names the block"
is "$(mf "$SD/canary-synth.json" 'm["upstream"], m["status"]')" '["synth", "rolled-back"]' \
	"--upstream synth: its own state file"

# The other way round: stable answers last with 500, and a first try at the
# canary that took 5 s does not count as the canary's time.
rm -f "$T/synth.log"
log_start synth2 "$T/synth.log" 100 30 "$ok200s" "$ok200c" \
	"$R st=500 ua=\"$CANARY_ADDR, $STABLE_ADDR\" urt=\"0.001, 0.002\"" \
	"$R st=200 ua=\"$STABLE_ADDR, $CANARY_ADDR\" urt=\"5.000, 0.004\"" \
	"$ok200c" "$nolog1"
wait_for 5 test -s "$T/synth.log"
run chom-canary "${SYN[@]}"
log_stop synth2
exits 0 "log lists: stable's errors and a slow first try do not blame the canary"
is "$(jx 'r["result"]')" promoted "log lists: promoted"
is "$(jx 'all(s["canary"]["errors"] == 0 for s in steps)')" true "log lists: no canary error"
is "$(jx 'all(s["canary"]["p95"] is not None and s["canary"]["p95"] < 0.1 for s in steps)')" true \
	"log lists: the canary's time is its own, not the first try's"
is "$(upstream_servers "$T/synth.conf")" "$CANARY_ADDR" "log lists: synth upstream on the canary"

# A log rotated during the run (renamed, a new one written) is followed.
rm -f "$T/synth.log" "$T/synth.log.1"
log_start synth3 "$T/synth.log" 100 30 "$ok200s" "$ok200c"
wait_for 5 test -s "$T/synth.log"
bg synth3 chom-canary "${SYN[@]}"
A=$BG
sleep 0.7
mv "$T/synth.log" "$T/synth.log.1"
bg_wait "$A" synth3 30
log_stop synth3
exits 0 "rotated log: promoted"
is "$(jx '[e["verdict"] for e in steps]')" '["pass", "pass"]' "rotated log: both steps passed"
num_ok "rotated log: the second step counted the new file's lines ($(jx 'steps[-1]["canary"]["requests"]'))" \
	"$(jx 'steps[-1]["canary"]["requests"]') >= 5"

diag "total: $((SECONDS - T0))s"
done_testing

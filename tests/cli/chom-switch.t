#!/usr/bin/env bash
# chom-switch: switching, --next, --rollback, --list, --prune, --exec,
# --metrics-dir, the deploy lock, and the refusals (SPEC.md section 3).
. "$(dirname "$0")/../lib/harness.sh"

ISO='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# rel BASE ID [DAY]: a release directory made by hand, public/index.html
# saying "release ID"; DAY (1-28) sets its mtime to 2026-01-DAY 00:00 UTC,
# which --list shows when the history records no staging.
rel() {
	mkdir -p "$1/releases/$2/public"
	echo "release $2" >"$1/releases/$2/public/index.html"
	if [ -n "${3:-}" ]; then
		touch -d "$(printf '2026-01-%02d 00:00:00 UTC' "$3")" "$1/releases/$2"
	fi
}
# artifact ID: $T/art/ID.tar.gz holding public/index.html "release ID".
artifact() {
	rm -rf "$T/art/src" && mkdir -p "$T/art/src/public"
	echo "release $1" >"$T/art/src/public/index.html"
	tar -C "$T/art/src" -czf "$T/art/$1.tar.gz" public
}
# stage BASE ID: chom-stage of a fresh artifact (BASE/next -> releases/ID).
stage() {
	artifact "$2"
	chom-stage -d "$1" "$T/art/$2.tar.gz" >/dev/null
}
# deploy BASE ID: stage, then chom-switch --next.
deploy() { stage "$1" "$2" && chom-switch -d "$1" --next >/dev/null; }
cur() { readlink "$1/current"; }
hist_n() { if [ -f "$1/.chom/history" ]; then wc -l <"$1/.chom/history"; else echo 0; fi; }
# hist BASE [N]: the action, from and to of the Nth last history line.
hist() { tail -n "${2:-1}" "$1/.chom/history" | head -n 1 | cut -f2-4 | tr '\t' ' '; }
TOOL=chom-switch
# json_ok: every line of $OUT is a JSON object.
json_ok() {
	printf '%s\n' "$OUT" | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
assert lines, "no output"
for l in lines:
    assert isinstance(json.loads(l), dict), l
'
}

# --- --help, --version, usage errors --------------------------------------
run chom-switch --help
exits 0 "--help exits 0"
like "$OUT" '^Usage: chom-switch' "--help prints usage on stdout"
is "$ERR" "" "--help: nothing on stderr"
for o in --next --rollback --list --prune --exec --metrics-dir --wait --force --json; do
	like "$OUT" "$o" "--help mentions $o"
done

run chom-switch --version
exits 0 "--version exits 0"
like "$OUT" '^chom-switch \(chom\) [0-9]+\.[0-9]+\.[0-9]+$' "--version format"

NB=$T/never
run chom-switch -d "$NB"
usage_err "no action"
run chom-switch -d "$NB" --bogus
usage_err "unknown option"
run chom-switch -d "$NB" v1 v2
usage_err "two IDs"
run chom-switch -d "$NB" --next v1
usage_err "--next with an ID"
run chom-switch -d "$NB" --next --rollback
usage_err "--next with --rollback"
run chom-switch -d "$NB" --prune abc
usage_err "--prune not a number"
run chom-switch -d "$NB" --wait xyz v1
usage_err "--wait not a duration"
run chom-switch -d "$NB" --prune=-1
usage_err "--prune negative"
ok "usage errors create nothing" test ! -e "$NB"

# --- switch by ID ----------------------------------------------------------
B=$T/b1
stage "$B" v1
run chom-switch -d "$B" v1
exits 0 "switch v1: exit 0"
is "$OUT" "$B/releases/v1" "switch v1: stdout is the release's absolute path"
is "$ERR" "" "switch v1: quiet when all is well off a terminal"
ok "current is a symlink" test -L "$B/current"
is "$(cur "$B")" "releases/v1" "current -> releases/v1 (relative)"
is "$(cat "$B/current/public/index.html")" "release v1" "current serves v1"
is "$(hist "$B")" "switch - v1" "history: switch - v1"
line=$(tail -n 1 "$B/.chom/history")
like "$(printf '%s' "$line" | cut -f1)" "$ISO" "history: time in UTC ISO 8601"
like "$(printf '%s' "$line" | cut -f5)" '^[^[:space:]]+$' "history: user recorded"
is "$(printf '%s' "$line" | awk -F'\t' '{print NF}')" 5 "history: five tab-separated fields"
ok "next still points at v1 (switch by ID leaves next)" test "$(readlink "$B/next")" = releases/v1

# A relative -d still prints an absolute path.
mkdir -p "$T/rel"
rel "$T/rel/b" r1
run bash -c "cd '$T/rel' && chom-switch -d b r1"
exits 0 "relative -d: exit 0"
is "$OUT" "$T/rel/b/releases/r1" "relative -d: absolute path on stdout"
is "$(cur "$T/rel/b")" "releases/r1" "relative -d: current -> releases/r1"

# CHOM_BASE names the base; -d wins over it.
rel "$T/envb" e1
run env CHOM_BASE="$T/envb" chom-switch e1
exits 0 "CHOM_BASE: exit 0"
is "$(cur "$T/envb")" "releases/e1" "CHOM_BASE: current -> releases/e1"
rel "$T/envb2" e2
run env CHOM_BASE="$T/nowhere" chom-switch -d "$T/envb2" e2
exits 0 "-d over CHOM_BASE: exit 0"
is "$OUT" "$T/envb2/releases/e2" "-d over CHOM_BASE: -d used"

# --- --next ----------------------------------------------------------------
stage "$B" v2
is "$(readlink "$B/next")" "releases/v2" "chom-stage points next at v2"
run chom-switch -d "$B" --next
exits 0 "--next: exit 0"
is "$OUT" "$B/releases/v2" "--next: stdout is v2's path"
is "$(cur "$B")" "releases/v2" "--next: current -> releases/v2"
ok "--next: next removed" test ! -e "$B/next" -a ! -L "$B/next"
is "$(hist "$B")" "switch v1 v2" "--next: history switch v1 v2"
n=$(hist_n "$B")
run chom-switch -d "$B" --next
exits 1 "--next with nothing staged: exit 1"
like "$ERR" 'next|staged' "--next with nothing staged: says so"
is "$(cur "$B")" "releases/v2" "--next with nothing staged: current unchanged"
is "$(hist_n "$B")" "$n" "--next with nothing staged: no history line"

# --json on a switch
run chom-switch -d "$B" --json v1
exits 0 "switch --json: exit 0"
ok "switch --json: one JSON object" json_ok
is "$(printf '%s' "$OUT" | jq -c '[.action, .from, .to, .path, .changed, (.seconds|type)]' 2>&1)" \
	"[\"switch\",\"v2\",\"v1\",\"$B/releases/v1\",true,\"number\"]" "switch --json: fields"

# --- switching to the release already current ------------------------------
n=$(hist_n "$B")
run chom-switch -d "$B" v1
exits 0 "switch to current: exit 0"
is "$OUT" "$B/releases/v1" "switch to current: path on stdout"
is "$(cur "$B")" "releases/v1" "switch to current: unchanged"
is "$(hist_n "$B")" "$n" "switch to current: no history line"
run chom-switch -d "$B" --json v1
is "$(printf '%s' "$OUT" | jq -c .changed 2>&1)" false "switch to current --json: changed false"
is "$(hist_n "$B")" "$n" "switch to current --json: no history line"

# --- --rollback walks back --------------------------------------------------
R=$T/rb
deploy "$R" v1 && deploy "$R" v2 && deploy "$R" v3
is "$(cur "$R")" "releases/v3" "three deploys: v3 live"
run chom-switch -d "$R" --rollback
exits 0 "rollback 1: exit 0"
is "$OUT" "$R/releases/v2" "rollback 1: stdout v2's path"
is "$(cur "$R")" "releases/v2" "rollback 1: v2 live"
is "$(hist "$R")" "rollback v3 v2" "rollback 1: history rollback v3 v2"
run chom-switch -d "$R" --rollback --json
exits 0 "rollback 2: exit 0"
is "$(cur "$R")" "releases/v1" "rollback 2: v1 live"
is "$(printf '%s' "$OUT" | jq -c '[.action, .from, .to]' 2>&1)" '["rollback","v2","v1"]' \
	"rollback 2 --json: action rollback, v2 to v1"
n=$(hist_n "$R")
run chom-switch -d "$R" --rollback
exits 1 "rollback 3: nothing to roll back to, exit 1"
like "$ERR" 'roll ?back' "rollback 3: says nothing to roll back to"
is "$OUT" "" "rollback 3: nothing on stdout"
is "$(cur "$R")" "releases/v1" "rollback 3: v1 still live"
is "$(hist_n "$R")" "$n" "rollback 3: no history line"
# Deploying after a rollback, then rolling back, returns to what was live.
deploy "$R" v4
is "$(cur "$R")" "releases/v4" "deploy after rollback: v4 live"
run chom-switch -d "$R" --rollback
exits 0 "rollback after deploy: exit 0"
is "$(cur "$R")" "releases/v1" "rollback after deploy: back to v1"
run chom-switch -d "$R" --rollback
exits 1 "then nothing to roll back to: exit 1"
run chom-switch -d "$T/empty-never" --rollback
exits 1 "rollback on an empty base: exit 1"

# --- --list ------------------------------------------------------------------
L=$T/list
mkdir -p "$L"
run chom-switch -d "$L" --list
exits 0 "--list of an empty base: exit 0"
is "$OUT" "" "--list of an empty base: nothing"
for d in 1 2 3 4; do rel "$L" "r$d" "$d"; done
for id in r1 r2 r3; do chom-switch -d "$L" "$id" >/dev/null; done
stage "$L" r5
mkdir -p "$L/releases/.tmp-r6-1"
for id in r1 r2 r3 r4; do touch -d "2026-01-0${id#r} 00:00:00 UTC" "$L/releases/$id"; done
run chom-switch -d "$L" --list
exits 0 "--list: exit 0"
is "$(printf '%s\n' "$OUT" | awk '{print $1}' | tr '\n' ' ')" "r5 r4 r3 r2 r1 " \
	"--list: newest first, temporary directories left out"
lst() { printf '%s\n' "$OUT" | awk -v id="$1" '$1 == id {print $2 "|" $3}'; }
is "$(lst r4)" "2026-01-04T00:00:00Z|" "--list: r4 staged time from mtime, no marks"
is "$(lst r3)" "2026-01-03T00:00:00Z|current" "--list: r3 current"
is "$(lst r2)" "2026-01-02T00:00:00Z|previous" "--list: r2 previous"
is "$(lst r1)" "2026-01-01T00:00:00Z|" "--list: r1 no marks"
like "$(lst r5)" '^[0-9-]{10}T[0-9:]{8}Z\|next$' "--list: r5 next"
s5=$(lst r5 | cut -d'|' -f1)
now=$(date -u +%s)
st=$(date -u -d "$s5" +%s 2>/dev/null || echo 0)
ok "--list: r5 staged time from the history (now)" test $((now - st)) -le 60 -a $((now - st)) -ge 0

run chom-switch -d "$L" --list --json
exits 0 "--list --json: exit 0"
ok "--list --json: every line is JSON" json_ok
is "$(printf '%s\n' "$OUT" | jq -r '[.id, .staged, .current, .previous, .next] | map(tostring) | join(",")' 2>&1 | grep -v '^r5' | tr '\n' ' ')" \
	"r4,2026-01-04T00:00:00Z,false,false,false r3,2026-01-03T00:00:00Z,true,false,false r2,2026-01-02T00:00:00Z,false,true,false r1,2026-01-01T00:00:00Z,false,false,false " \
	"--list --json: fields and marks"
is "$(printf '%s\n' "$OUT" | head -n 1 | jq -c '[.id, .current, .previous, .next]' 2>&1)" '["r5",false,false,true]' \
	"--list --json: r5 first, next"

# Marks are comma-separated when one release has several.
chom-switch -d "$L" r5 >/dev/null
run chom-switch -d "$L" --list
is "$(lst r5 | cut -d'|' -f2)" "current,next" "--list: current,next on one release"
is "$(lst r3 | cut -d'|' -f2)" "previous" "--list: previous moves to r3"

# --- --prune -----------------------------------------------------------------
P=$T/prune
for d in 1 2 3 4 5 6 7; do rel "$P" "p$d" "$d"; done
chom-switch -d "$P" p2 >/dev/null
chom-switch -d "$P" p3 >/dev/null
ln -s releases/p1 "$P/next"
for d in 1 2 3 4 5 6 7; do touch -d "2026-01-0$d 00:00:00 UTC" "$P/releases/p$d"; done
run chom-switch -d "$P" --prune 2
exits 0 "--prune 2: exit 0"
is "$(printf '%s\n' "$OUT" | sort | tr '\n' ' ')" "p4 p5 " "--prune 2: prints the removed IDs"
left() { (cd "$1/releases" && ls | sort | tr '\n' ' '); }
is "$(left "$P")" "p1 p2 p3 p6 p7 " "--prune 2: keeps 2 newest + current + previous + next"
is "$(cur "$P")" "releases/p3" "--prune: current unchanged"
is "$(readlink "$P/next")" "releases/p1" "--prune: next unchanged"
is "$(grep -cP '\tprune\t(p4|p5)\t-\t' "$P/.chom/history")" 2 "--prune: history has a prune line per removal"
ok "--prune: no temporary directory left" test -z "$(find "$P/releases" -mindepth 1 -maxdepth 1 -name '.*')"
run chom-switch -d "$P" --prune 1 --json
exits 0 "--prune 1 --json: exit 0"
ok "--prune --json: every line is JSON" json_ok
pj() { printf '%s\n' "$OUT" | jq -r --arg id "$1" 'select(.id == $id) | "\(.removed) \(.reason // "")"'; }
is "$(pj p6)" "true " "--prune --json: p6 removed"
like "$(pj p7)" '^false .+' "--prune --json: p7 kept (newest) with a reason"
like "$(pj p3)" '^false .*current' "--prune --json: p3 kept, reason current"
like "$(pj p2)" '^false .*previous' "--prune --json: p2 kept, reason previous"
like "$(pj p1)" '^false .*next' "--prune --json: p1 kept, reason next"
is "$(left "$P")" "p1 p2 p3 p7 " "--prune 1: p6 gone"

# Without N, --prune keeps [switch] keep (5 unless configured); N wins.
Q=$T/keep
for d in 1 2 3 4 5 6 7 8 9; do rel "$Q" "q$d" "$d"; done
chom-switch -d "$Q" q9 >/dev/null
run chom-switch -d "$Q" --prune
exits 0 "--prune without N: exit 0"
is "$(left "$Q")" "q5 q6 q7 q8 q9 " "--prune without N: keeps the 5 newest"
printf '[switch]\nkeep = 3\n' >"$T/keep.conf"
run chom-switch -c "$T/keep.conf" -d "$Q" --prune
exits 0 "--prune with [switch] keep = 3: exit 0"
is "$(left "$Q")" "q7 q8 q9 " "[switch] keep = 3: keeps the 3 newest"
run chom-switch -c "$T/keep.conf" -d "$Q" --prune 2
exits 0 "--prune 2 over [switch] keep = 3: exit 0"
is "$(left "$Q")" "q8 q9 " "--prune 2 wins over the config"

# In use: a process with its cwd in a release, one with a file open in one.
U=$T/inuse
for d in 1 2 3 4 5; do rel "$U" "u$d" "$d"; done
for id in u3 u4 u5; do chom-switch -d "$U" "$id" >/dev/null; done
for d in 1 2 3 4 5; do touch -d "2026-01-0$d 00:00:00 UTC" "$U/releases/u$d"; done
(cd "$U/releases/u1" && exec sleep 60) &
CWD_PID=$!
# shellcheck disable=SC2217 # the open file is the point
sleep 60 <"$U/releases/u2/public/index.html" &
FD_PID=$!
at_exit "kill $CWD_PID $FD_PID 2>/dev/null"
for _ in $(seq 1 50); do
	[ "$(readlink "/proc/$CWD_PID/cwd")" = "$U/releases/u1" ] &&
		[ "$(readlink "/proc/$FD_PID/fd/0")" = "$U/releases/u2/public/index.html" ] && break
	sleep 0.1
done
run chom-switch -d "$U" --prune 1
exits 0 "--prune with releases in use: exit 0"
is "$OUT" "u3" "--prune: only the release not in use removed"
is "$(left "$U")" "u1 u2 u4 u5 " "--prune: releases in use kept (cwd, open file)"
run chom-switch -d "$U" --prune 1 --json
like "$(pj u1)" "^false .*$CWD_PID" "--prune --json: u1 kept, reason names the pid using it"
like "$(pj u2)" "^false .*$FD_PID" "--prune --json: u2 kept, reason names the pid with a file open"
run chom-switch -d "$U" --prune 1 --force
exits 0 "--prune --force: exit 0"
is "$(printf '%s\n' "$OUT" | sort | tr '\n' ' ')" "u1 u2 " "--prune --force: removes releases in use"
is "$(left "$U")" "u4 u5 " "--prune --force: u4 (previous) and u5 (current) left"
kill "$CWD_PID" "$FD_PID" 2>/dev/null
wait "$CWD_PID" "$FD_PID" 2>/dev/null

# --- --exec ------------------------------------------------------------------
X=$T/exec
rel "$X" v1 && rel "$X" v2 && rel "$X" v3
chom-switch -d "$X" v1 >/dev/null
run chom-switch -d "$X" v2 --exec true
exits 0 "--exec true: exit 0"
is "$(cur "$X")" "releases/v2" "--exec true: v2 live"
run chom-switch -d "$X" v1 --exec "readlink \"\$CHOM_BASE/current\" >'$T/exec.cur'; env | grep -E '^CHOM_(BASE|RELEASE|RELEASE_PATH|PREVIOUS)=' | sort >'$T/exec.env'"
exits 0 "--exec with environment: exit 0"
is "$(cat "$T/exec.cur" 2>/dev/null)" "releases/v1" "--exec runs after current is switched"
is "$(tr '\n' ' ' <"$T/exec.env" 2>/dev/null)" \
	"CHOM_BASE=$X CHOM_PREVIOUS=v2 CHOM_RELEASE=v1 CHOM_RELEASE_PATH=$X/releases/v1 " \
	"--exec environment: CHOM_BASE, CHOM_PREVIOUS, CHOM_RELEASE, CHOM_RELEASE_PATH"
# The command in chom-switch's process group (a sudo prompt can read the
# terminal), with SIGPIPE at its default, not ignored as chom-switch has it.
run chom-switch -d "$X" v2 --exec "ps -o pgid= -p \$\$ >'$T/exec.pg'; grep '^SigIgn:' /proc/\$\$/status >'$T/exec.ign'"
exits 0 "--exec in its group: exit 0"
is "$(tr -d ' ' <"$T/exec.pg" 2>/dev/null)" "$(ps -o pgid= -p $$ | tr -d ' ')" "--exec: the command in chom-switch's process group"
ign=$(awk '{ print $2 }' "$T/exec.ign" 2>/dev/null)
is "$([[ $ign =~ ^[0-9a-f]{16}$ ]] && echo $(((16#$ign >> 12) & 1)))" "0" "--exec: SIGPIPE not ignored in the command"
run chom-switch -d "$X" v1
exits 0 "back to v1 after the --exec group check"
n=$(hist_n "$X")
run chom-switch -d "$X" v2 --exec false
exits 1 "--exec false: exit 1"
is "$(cur "$X")" "releases/v1" "--exec false: switched back to v1"
is "$(hist "$X" 2)" "switch v1 v2" "--exec false: history switch v1 v2"
is "$(hist "$X")" "revert v2 v1" "--exec false: then revert v2 v1"
is "$(hist_n "$X")" "$((n + 2))" "--exec false: two history lines"
is "$OUT" "" "--exec false: nothing on stdout"
like "$ERR" '^chom-switch: ' "--exec false: message on stderr"
run chom-switch -d "$X" v2 --exec 'kill -9 $$'
exits 1 "--exec killed by a signal: exit 1"
is "$(cur "$X")" "releases/v1" "--exec killed: switched back to v1"
printf '[switch]\nexec = exit 3\n' >"$T/exec.conf"
run chom-switch -c "$T/exec.conf" -d "$X" v2
exits 1 "[switch] exec = failing command: exit 1"
is "$(cur "$X")" "releases/v1" "[switch] exec: switched back"
# A failed first deploy goes back to nothing live.
X0=$T/exec0
rel "$X0" v1
run chom-switch -d "$X0" v1 --exec false
exits 1 "--exec false on the first switch: exit 1"
ok "--exec false on the first switch: no current" test ! -e "$X0/current" -a ! -L "$X0/current"
# Switching back fails: the command removes the previous release.
run chom-switch -d "$X" v2 --exec "rm -rf '$X/releases/v1'; exit 1"
exits 4 "--exec fails and switching back fails: exit 4"
like "$ERR" '^chom-switch: ' "exit 4: message on stderr"
is "$(cur "$X")" "releases/v2" "exit 4: v2 stays live (v1 is gone)"
ok "exit 4: current still resolves" test -f "$X/current/public/index.html"

# --- --metrics-dir -----------------------------------------------------------
M=$T/metrics
mkdir -p "$M"
t0=$(date +%s)
run chom-switch -d "$X" v3 --metrics-dir "$M"
exits 0 "--metrics-dir: exit 0"
prom=$M/chom_switch.prom
ok "--metrics-dir: chom_switch.prom written" test -f "$prom"
is "$(grep -c '^chom_release_info{' "$prom" 2>/dev/null)" 1 "metrics: one chom_release_info sample"
ok "metrics: chom_release_info{release=\"v3\"} 1" grep -qx 'chom_release_info{release="v3"} 1' "$prom"
ts=$(awk '$1 == "chom_switch_timestamp_seconds" {print $2}' "$prom" 2>/dev/null)
like "$ts" '^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$' "metrics: chom_switch_timestamp_seconds sample"
ok "metrics: timestamp is the time of the switch" \
	python3 -c "import sys; t=float('${ts:-0}'); sys.exit(not ($t0 - 1 <= t <= $t0 + 60))"
is "$(ls -A "$M" | tr '\n' ' ')" "chom_switch.prom " "metrics: no temporary file left"
run chom-switch -d "$X" --rollback --metrics-dir "$M"
exits 0 "--metrics-dir on rollback: exit 0"
ok "metrics: updated on rollback" grep -qx "chom_release_info{release=\"$(basename "$(cur "$X")")\"} 1" "$prom"
printf '[switch]\nmetrics_dir = %s\n' "$T/metrics2" >"$T/metrics.conf"
mkdir -p "$T/metrics2"
run chom-switch -c "$T/metrics.conf" -d "$X" v3
exits 0 "[switch] metrics_dir: exit 0"
ok "[switch] metrics_dir: written" grep -qx 'chom_release_info{release="v3"} 1' "$T/metrics2/chom_switch.prom"

# --- refusals ----------------------------------------------------------------
D=$T/realdir
rel "$D" v1
mkdir -p "$D/current/public"
echo "hand-made" >"$D/current/public/index.html"
run chom-switch -d "$D" v1
exits 2 "current is a real directory: exit 2"
like "$ERR" 'current' "current is a real directory: message names it"
ok "current is a real directory: still a directory" test -d "$D/current" -a ! -L "$D/current"
is "$(cat "$D/current/public/index.html")" "hand-made" "current is a real directory: content unchanged"
is "$(hist_n "$D")" 0 "current is a real directory: no history line"
run chom-switch -d "$D" --rollback
exits 2 "current is a real directory, --rollback: exit 2"

n=$(hist_n "$B")
run chom-switch -d "$B" nosuch
exits 1 "missing release: exit 1"
like "$ERR" 'nosuch' "missing release: message names it"
is "$OUT" "" "missing release: nothing on stdout"
is "$(cur "$B")" "releases/v1" "missing release: current unchanged"
is "$(hist_n "$B")" "$n" "missing release: no history line"
long=$(printf 'a%.0s' $(seq 1 64))
run chom-switch -d "$B" "$long"
exits 1 "64-character ID is valid (missing release: exit 1)"

for bad in '../x' 'a b' 'a/b' '.hidden' '' "${long}a" 'x;y' "$(printf 'a\nb')"; do
	run chom-switch -d "$B" "$bad"
	usage_err "bad ID [${bad//$'\n'/\\n}]"
done
is "$(cur "$B")" "releases/v1" "bad IDs: current unchanged"
is "$(hist_n "$B")" "$n" "bad IDs: no history line"

printf '[switch]\nbogus = 1\n' >"$T/bad.conf"
run chom-switch -c "$T/bad.conf" -d "$B" v2
exits 2 "unknown config key: exit 2"
like "$ERR" "bad\.conf:2" "unknown config key: names file:line"
is "$(cur "$B")" "releases/v1" "unknown config key: current unchanged"
printf '[global]\nbase = %s\n' "$B" >"$T/base.conf"
run chom-switch -c "$T/base.conf" v2
exits 0 "[global] base from -c FILE: exit 0"
is "$(cur "$B")" "releases/v2" "[global] base: used"
run env CHOM_CONFIG="$T/base.conf" chom-switch v1
exits 0 "CHOM_CONFIG names the config: exit 0"
is "$(cur "$B")" "releases/v1" "CHOM_CONFIG: used"

# --- the deploy lock ---------------------------------------------------------
K=$T/lock
rel "$K" v1 && rel "$K" v2
chom-switch -d "$K" v1 >/dev/null
LOCK=$K/.chom/lock
# hold_lock SECS: flock(1) takes the lock on fd 9, then the shell becomes
# sleep, which keeps fd 9: one process, $!, holds the lock for SECS.
hold_lock() { (exec 9>>"$LOCK" && flock 9 && exec sleep "$1") & }
hold_lock 30
HOLDER=$!
at_exit "kill $HOLDER 2>/dev/null"
for _ in $(seq 1 50); do flock -n "$LOCK" true || break; sleep 0.1; done
n=$(hist_n "$K")
s=$(date +%s.%N)
run chom-switch -d "$K" v2
e=$(date +%s.%N)
exits 3 "lock held: exit 3"
like "$ERR" 'lock' "lock held: message names the lock"
like "$ERR" 'held' "lock held: message says it is held"
is "$(cur "$K")" "releases/v1" "lock held: current unchanged"
is "$(hist_n "$K")" "$n" "lock held: no history line"
ok "lock held: refused at once (default --wait 0)" python3 -c "import sys; sys.exit(not ($e - $s < 2))"
s=$(date +%s.%N)
run chom-switch -d "$K" --wait 1 v2
e=$(date +%s.%N)
exits 3 "lock held, --wait 1: exit 3"
ok "--wait 1: waited about 1 s" python3 -c "import sys; sys.exit(not (0.9 <= $e - $s < 5))"
run chom-switch -d "$K" --prune 0
exits 3 "lock held, --prune: exit 3"
is "$(left "$K")" "v1 v2 " "lock held, --prune: nothing removed"
run chom-switch -d "$K" --rollback
exits 3 "lock held, --rollback: exit 3"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null

# A holder that releases after 1 s: --wait 5 gets the lock.
hold_lock 1
HOLDER2=$!
at_exit "kill $HOLDER2 2>/dev/null"
for _ in $(seq 1 50); do flock -n "$LOCK" true || break; sleep 0.05; done
s=$(date +%s.%N)
run chom-switch -d "$K" --wait 5 v2
e=$(date +%s.%N)
exits 0 "--wait 5 while the holder releases after 1 s: exit 0"
ok "--wait 5: waited for the holder" python3 -c "import sys; sys.exit(not (0.3 <= $e - $s < 5))"
is "$(cur "$K")" "releases/v2" "--wait 5: v2 live"
wait "$HOLDER2" 2>/dev/null

# A chom-switch holding the lock (its --exec sleeps) is named: pid, host, time.
rm -f "$T/k.started"
chom-switch -d "$K" v1 --exec "touch '$T/k.started'; sleep 3" >/dev/null 2>&1 &
KPID=$!
at_exit "kill $KPID 2>/dev/null"
for _ in $(seq 1 100); do [ -e "$T/k.started" ] && break; sleep 0.05; done
run chom-switch -d "$K" v2
exits 3 "lock held by chom-switch: exit 3"
like "$ERR" "held by pid $KPID on $(hostname)" "lock held: names the holder's pid and host"
like "$ERR" "since [0-9]{4}-[0-9]{2}-[0-9]{2}T" "lock held: names the holder's start time"
wait "$KPID"
RC=$?
exits 0 "the holding chom-switch finished"
is "$(cur "$K")" "releases/v1" "the holding chom-switch switched to v1"

done_testing

# Sourced after harness.sh: an S3 server for the tests on 127.0.0.1,
# s3rver (npm) behind tests/s3/checker.js, which verifies the SigV4
# signature of every request with the official signer
# (@aws-sdk/signature-v4) before passing it on (see the top of checker.js
# for everything it checks and refuses). scripts/install-deps installs
# node, awscli and tests/s3/node_modules.
#
# Path-style addressing at $S3_ENDPOINT; virtual-hosted addressing at
# http://BUCKET.s3.localhost:$S3_PORT (libcurl resolves *.localhost to the
# loopback by itself; awscli does not).
#
#   s3_start [BUCKET...]  s3rver (data in $S3_DIR/data) and the checker,
#                         each on a free port; creates the buckets (with
#                         awscli, through the checker); stops both at exit.
#                         Sets and exports S3_PORT (the checker's: the one
#                         to use), S3_ENDPOINT=http://127.0.0.1:$S3_PORT,
#                         AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
#                         [AWS_SESSION_TOKEN], AWS_REGION and
#                         AWS_DEFAULT_REGION ($S3_REGION),
#                         AWS_EC2_METADATA_DISABLED=true, and an awscli
#                         config of its own (path-style addressing, 3
#                         attempts) in AWS_CONFIG_FILE. Also sets
#                         S3RVER_PORT and S3_CONTROL_PORT.
#   s3_stop               stops both (also run at exit)
#   s3_kill [SIGNAL]      kills s3rver alone (default KILL); the checker
#                         then closes every connection it gets without an
#                         answer, as a dead server would
#   s3_restart            starts s3rver again, same port and directory
#   s3_fail_next N [STATUS [CODE]]
#                         the next N signed requests are answered STATUS
#                         (503) with the S3 error CODE (SlowDown)
#   s3_fault NAME=VALUE...
#                         any fault of the checker's control port, e.g.
#                         s3_fault kind=cut bytes=100000 'match=^PUT /b/k\?'
#                         (kinds: fail, reset, cut, delay, lose, norange,
#                         shiftrange, huge; see checker.js)
#   s3_clear_faults       drops the faults not used yet
#   s3_stats              the checker's counters, as JSON
#   s3_stat NAME          one of them
#   s3_inflight_reset [RE]
#                         max_inflight back to 0; only the requests
#                         matching RE ("METHOD /path?query") count
#   s3_aws ARG...         awscli with --endpoint-url $S3_ENDPOINT
#   s3_log                path of the checker's log (one line a request:
#                         "... C000012 PUT /b/k 200 ok sha256=...",
#                         "... 403 SignatureDoesNotMatch ...")
#
# Knobs, read by s3_start: S3_ACCESS_KEY, S3_SECRET_KEY, S3_SESSION_TOKEN
# (when set, every request must carry it as x-amz-security-token),
# S3_MIN_PART_SIZE (smallest part but the last that CompleteMultipartUpload
# accepts, 5 MiB by default as on AWS), S3_REGION (the only region the
# checker accepts, us-east-1 by default), S3_AWS (the awscli to use; Debian's
# /usr/bin/aws when present).
#
# Every wait is bounded; a server that does not come up makes s3_start
# return 1 after printing its log to stderr.

S3_NODE_DIR=$TOP/tests/s3
S3_DIR=$T/s3
S3_PORT=
S3RVER_PORT=
S3_CONTROL_PORT=
S3_ENDPOINT=
S3RVER_PID=
S3_CHECKER_PID=
S3_ACCESS_KEY=${S3_ACCESS_KEY:-AKIDCHOMTEST}
S3_SECRET_KEY=${S3_SECRET_KEY:-chomTestSecret/wJalrXUtnFEMIK7MDENGbPxRfi}
S3_SESSION_TOKEN=${S3_SESSION_TOKEN:-}
S3_MIN_PART_SIZE=${S3_MIN_PART_SIZE:-5242880}
S3_REGION=${S3_REGION:-us-east-1}
if [ -z "${S3_AWS:-}" ]; then
	if [ -x /usr/bin/aws ]; then S3_AWS=/usr/bin/aws; else S3_AWS=$(command -v aws || echo aws); fi
fi

_s3_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# _s3_pid_stop PID [SIGNAL]: the signal (TERM), up to 5 s, then KILL.
# (stderr away throughout: bash's "Killed" notice may come at any step.)
_s3_pid_stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	{
		kill -"${2:-TERM}" "$pid" || return 0
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" || break
			sleep 0.1
		done
		kill -KILL "$pid"
		wait "$pid"
	} 2>/dev/null
	return 0
}

# Whatever s3_start needs and is missing, on stderr; false then.
s3_missing() {
	local m=
	command -v node >/dev/null 2>&1 || m="$m node"
	[ -d "$S3_NODE_DIR/node_modules/s3rver" ] &&
		[ -d "$S3_NODE_DIR/node_modules/@aws-sdk/signature-v4" ] ||
		m="$m tests/s3/node_modules"
	command -v "$S3_AWS" >/dev/null 2>&1 || m="$m awscli"
	[ -z "$m" ] && return 1
	echo "s3: missing:$m (scripts/install-deps installs them)" >&2
	return 0
}

# _s3rver_run: starts s3rver on S3RVER_PORT; 0 once it accepts
# connections, 3 when the port was taken, 1 otherwise.
_s3rver_run() {
	local i rc
	FORCE_COLOR=0 node "$S3_NODE_DIR/s3rver.js" --directory "$S3_DIR/data" \
		--tmp "$S3_DIR/tmp" --port "$S3RVER_PORT" \
		--access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
		>>"$S3_DIR/s3rver.log" 2>&1 &
	S3RVER_PID=$!
	for ((i = 0; i < 150; i++)); do
		_s3_port_open "$S3RVER_PORT" && return 0
		if ! kill -0 "$S3RVER_PID" 2>/dev/null; then
			wait "$S3RVER_PID"
			rc=$?
			S3RVER_PID=
			[ "$rc" -eq 3 ] && return 3
			return 1
		fi
		sleep 0.1
	done
	_s3_pid_stop "$S3RVER_PID"
	S3RVER_PID=
	return 1
}

_s3_checker_run() {
	local i rc ready=$S3_DIR/checker.ready
	local -a args=(--port "$S3_PORT" --upstream "$S3RVER_PORT"
		--access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY"
		--region "$S3_REGION" --store "$S3_DIR/data"
		--min-part-size "$S3_MIN_PART_SIZE" --ready "$ready")
	[ -n "$S3_SESSION_TOKEN" ] && args+=(--session-token "$S3_SESSION_TOKEN")
	rm -f "$ready"
	node "$S3_NODE_DIR/checker.js" "${args[@]}" >>"$S3_DIR/checker.log" 2>&1 &
	S3_CHECKER_PID=$!
	for ((i = 0; i < 150; i++)); do
		if [ -s "$ready" ]; then
			read -r _ S3_CONTROL_PORT <"$ready"
			return 0
		fi
		if ! kill -0 "$S3_CHECKER_PID" 2>/dev/null; then
			wait "$S3_CHECKER_PID"
			rc=$?
			S3_CHECKER_PID=
			[ "$rc" -eq 3 ] && return 3
			return 1
		fi
		sleep 0.1
	done
	_s3_pid_stop "$S3_CHECKER_PID"
	S3_CHECKER_PID=
	return 1
}

s3_start() { # [BUCKET...]
	local rc b
	s3_missing && return 1
	mkdir -p "$S3_DIR/data" "$S3_DIR/tmp" || return 1
	for _ in 1 2 3 4 5; do
		S3RVER_PORT=$(free_port) || return 1
		_s3rver_run
		rc=$?
		[ "$rc" -eq 3 ] || break
	done
	if [ "$rc" -ne 0 ]; then
		echo "s3rver did not start:" >&2
		cat "$S3_DIR/s3rver.log" >&2
		return 1
	fi
	at_exit s3_stop
	for _ in 1 2 3 4 5; do
		S3_PORT=$(free_port) || return 1
		_s3_checker_run
		rc=$?
		[ "$rc" -eq 3 ] || break
	done
	if [ "$rc" -ne 0 ]; then
		echo "the S3 checker did not start:" >&2
		cat "$S3_DIR/checker.log" >&2
		return 1
	fi
	S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	export S3_PORT S3_ENDPOINT
	export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
	export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
	if [ -n "$S3_SESSION_TOKEN" ]; then
		export AWS_SESSION_TOKEN=$S3_SESSION_TOKEN
	else
		unset AWS_SESSION_TOKEN
	fi
	export AWS_REGION=$S3_REGION AWS_DEFAULT_REGION=$S3_REGION
	export AWS_EC2_METADATA_DISABLED=true
	# Nothing of the machine's own AWS setup leaks in.
	unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 \
		AWS_CA_BUNDLE AWS_MAX_ATTEMPTS AWS_RETRY_MODE
	export AWS_SHARED_CREDENTIALS_FILE=$S3_DIR/aws-credentials
	export AWS_CONFIG_FILE=$S3_DIR/aws-config
	: >"$AWS_SHARED_CREDENTIALS_FILE"
	cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = $S3_REGION
retry_mode = standard
max_attempts = 3
s3 =
    addressing_style = path
EOF
	for b in "$@"; do
		if ! s3_aws s3 mb "s3://$b" >"$S3_DIR/mb.out" 2>&1; then
			echo "s3: could not create bucket $b:" >&2
			cat "$S3_DIR/mb.out" >&2
			tail -n 20 "$S3_DIR/checker.log" >&2
			return 1
		fi
	done
	return 0
}

s3_stop() {
	_s3_pid_stop "$S3_CHECKER_PID"
	S3_CHECKER_PID=
	_s3_pid_stop "$S3RVER_PID"
	S3RVER_PID=
}

s3_kill() { # [SIGNAL]
	_s3_pid_stop "$S3RVER_PID" "${1:-KILL}"
	S3RVER_PID=
}

s3_restart() {
	local i
	[ -n "$S3RVER_PORT" ] || { echo "s3_restart: s3_start first" >&2; return 1; }
	s3_kill TERM
	# The old listening socket may take a moment to go.
	for ((i = 0; i < 50; i++)); do
		_s3_port_open "$S3RVER_PORT" || break
		sleep 0.1
	done
	if ! _s3rver_run; then
		echo "s3rver did not restart on port $S3RVER_PORT:" >&2
		tail -n 30 "$S3_DIR/s3rver.log" >&2
		return 1
	fi
}

_s3_control() { # METHOD PATH [NAME=VALUE...]
	local m=$1 p=$2 a
	local -a q=()
	shift 2
	for a in "$@"; do q+=(--data-urlencode "$a"); done
	curl -fsS --max-time 10 -G -X "$m" "${q[@]}" "http://127.0.0.1:$S3_CONTROL_PORT$p"
}
s3_fail_next() { # N [STATUS [CODE]]
	_s3_control POST /fail "n=$1" "status=${2:-503}" "code=${3:-}" >/dev/null
}
s3_fault() { # NAME=VALUE...
	_s3_control POST /fault "$@" >/dev/null
}
s3_clear_faults() { _s3_control POST /clear >/dev/null; }
s3_stats() { _s3_control GET /stats; }
s3_stat() { # NAME
	s3_stats | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
s3_inflight_reset() { # [RE]
	_s3_control POST /inflight ${1:+"match=$1"} >/dev/null
}
s3_aws() { "$S3_AWS" --endpoint-url "$S3_ENDPOINT" "$@"; }
s3_log() { echo "$S3_DIR/checker.log"; }

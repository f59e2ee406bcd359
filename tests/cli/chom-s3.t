#!/usr/bin/env bash
# chom-backup and chom-restore on s3:// targets (SPEC.md section 5, issue
# 6), against s3rver behind the SigV4 checker (tests/lib/s3.sh), judged by
# awscli, age, gunzip and zstd: round trips (gzip and zstd; a 3-part
# multipart db part and single-PUT parts; a prefix with characters to
# encode; --files/--config trees; --list, --verify, --sysinfo); one pass to
# a file:// and an s3:// target giving the same bytes; awscli lists and
# downloads what chom wrote, and chom-restore restores a point put by hand
# with `aws s3 cp`; every request of chom's verified by the checker, and
# wrong credentials, an unknown key, a missing bucket refused with S3's
# error (its Code and its Message); 503 and 429 bursts, resets, 500s and
# CompleteMultipartUpload's 200 <Error> retried; a download cut midway
# resumed with a Range request, from a server that ignores Range (200)
# and from one whose 206 starts at another byte; a reply over 1 MiB, an
# untrusted certificate and a malformed URL failed at once; answers lost
# after the server did the work (the object deleted, a stray multipart
# upload aborted); --s3-parallel 1 and 4 (parts in flight at once); the
# cleanup after SIGTERM bounded against a server that does not answer; a
# region other than us-east-1; a host of more than one listing page
# (--list, latest, --prune); s3rver killed mid-upload and
# restarted (the backup completes), killed for good (exit 1, the upload
# aborted, nothing left); --prune (the manifest deleted first); SIGTERM;
# the local lock; --storage-class; a session token; credentials from a
# profile file and from ~/.aws/credentials.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/s3.sh"

TOOL=chom-backup
ID_RE='^[0-9]{8}T[0-9]{6}Z$'
T0=$(date +%s)

# count ERE [LOG]: lines of the checker's log matching ERE.
count() { grep -cE -- "$1" "${2:-$(s3_log)}"; }
# wait_log ERE SECONDS [LOG]: true once a line of the log matches ERE.
wait_log() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		grep -qE -- "$1" "${3:-$(s3_log)}" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# wait_pid PID SECONDS: waits for a child, KILLs it after SECONDS; its
# status in WRC (999 when it had to be killed).
wait_pid() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		WRC=999
		return 1
	fi
	wait "$1"
	WRC=$?
	return 0
}
# keys S3URL: the keys awscli lists below S3URL, sorted, one a line (and
# awscli's errors: `aws s3 ls` of nothing exits 1 too).
keys() {
	s3_aws s3 ls --recursive "$1" 2>&1 | sed -E 's/^[0-9-]+ [0-9:]+ +[0-9]+ //' | LC_ALL=C sort
}
# uploads [PREFIX]: the keys of the open multipart uploads (awscli).
uploads() {
	s3_aws s3api list-multipart-uploads --bucket bkt --prefix "${1:-}" \
		--query 'Uploads[].Key' --output text 2>&1
}
# sput KEY FILE: an object put with curl's own SigV4 signer.
sput() {
	curl -sS --max-time 20 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: $(sha256sum <"$2" | cut -d' ' -f1)" \
		-T "$2" "$S3_ENDPOINT/bkt/$1"
}
# tree_sig DIR: every entry below DIR with its type, mode, mtime, size and
# link target; the SHA-256 of every file.
tree_sig() {
	(
		cd "$1" || exit 1
		find . -type d -printf '%P|d|%m|%Ts\n'
		find . ! -type d -printf '%P|%y|%m|%Ts|%s|%l\n'
		find . -type f -print0 | xargs -0 -r sha256sum
	) 2>&1 | LC_ALL=C sort
}
# sums DIR: "NAME SHA256" of each file in DIR, sorted.
sums() { (cd "$1" && sha256sum -- * | awk '{print $2, $1}' | LC_ALL=C sort); }
# msums MANIFEST: "NAME SHA256" of each part the manifest lists, sorted.
msums() {
	python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["parts"]:
    print(p["name"], p["sha256"])
' "$1" | LC_ALL=C sort
}
num_ok() {
	if awk "BEGIN { exit !($2) }"; then _tap ok "$1"; else
		_tap not-ok "$1"
		diag "false: $2"
	fi
}

if s3_missing; then
	skip "chom on S3" "no S3 server (node, tests/s3/node_modules, awscli)"
	done_testing
	exit 0
fi
if ! ok "s3_start: s3rver and the checker up, bucket bkt made" s3_start bkt; then
	done_testing
	exit 1
fi
export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT
export CHOM_LOCK_DIR=$T/lock
mkdir -p "$CHOM_LOCK_DIR"

# --- data ---------------------------------------------------------------------
KEY=$T/key.txt
R=$(chom-backup --keygen "$KEY")
like "$R" '^age1' "an identity for the backups"
# 20 MB that no compressor shrinks: a db part of 3 multipart parts (8 MiB,
# 8 MiB and the rest).
BIG=$T/big.sql
head -c 20000000 /dev/urandom >"$BIG"
# 9 MB: a multipart upload of 2 parts, for the faults.
MID=$T/mid.sql
head -c 9000000 /dev/urandom >"$MID"
SMALL=$T/small.sql
printf -- "-- chom s3 test\nCREATE TABLE t (id INT, s TEXT);\nINSERT INTO t VALUES (1, 'a''b\\\\c é');\n" >"$SMALL"
FILES=$T/app/shared
mkdir -p "$FILES/storage/logs" "$FILES/empty"
printf 'alpha\n' >"$FILES/a.txt"
head -c 200000 /dev/urandom >"$FILES/storage/blob.bin"
printf 'log\n' >"$FILES/storage/logs/laravel.log"
printf 'spaces\n' >"$FILES/name with spaces é.txt"
ln -s a.txt "$FILES/link-to-a"
chmod 640 "$FILES/a.txt"
chmod 700 "$FILES/empty"
touch -d '2021-03-04 05:06:07' "$FILES/a.txt"
touch -h -d '2019-01-02 03:04:05' "$FILES/link-to-a"
touch -d '2020-05-06 07:08:09' "$FILES/storage/logs" "$FILES/empty" "$FILES/storage" "$FILES"
CONF=$T/etc-app
mkdir -p "$CONF/conf.d"
printf 'APP_KEY=base64:xyz\n' >"$CONF/.env"
printf 'server { listen 80; }\n' >"$CONF/conf.d/site.conf"
chmod 600 "$CONF/.env"
touch -d '2022-01-01 00:00:01' "$CONF/.env" "$CONF/conf.d" "$CONF"

# --- s3rver killed for good, in the background --------------------------------
# A second S3 server of its own (this case waits out 8 attempts with
# backoff, 26 s on average and up to 52 s: there is no knob for fewer), run
# alongside the rest; its results are checked near the end. A delay on
# part 2 of the db part; s3rver killed as that part waits; the backup must
# give up, abort the upload (the checker answers AbortMultipartUpload
# itself) and leave nothing.
# bg_s3 DIR: in a case run in the background, an S3 server of its own
# (DIR/s3, stopped when the case ends), its pids in DIR/pids for bg_end;
# false, and DIR/status says so, when it does not start.
bg_s3() {
	trap "s3_stop; rm -f '$1/pids'" EXIT
	S3_DIR=$1/s3
	if ! s3_start bkt >"$1/start.log" 2>&1; then
		echo "s3_start failed" >"$1/status"
		return 1
	fi
	echo "$S3RVER_PID $S3_CHECKER_PID" >"$1/pids"
	export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT CHOM_LOCK_DIR=$1
}
# bg_end PID DIR: should the test end early, the background case PID, its
# servers and its backup are killed.
bg_end() {
	at_exit "kill $1 2>/dev/null; for p in \$(cat '$2/pids' 2>/dev/null); do kill -KILL \$p 2>/dev/null; done"
}
# bg_wait PID DIR SECONDS: waits for the background case PID to write
# "done" to DIR/status (or to end), SECONDS at most, then reaps it.
bg_wait() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q done "$2/status" 2>/dev/null && break
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	wait_pid "$1" 10
}
# seconds_since T0: seconds (one decimal) since T0, a date +%s.%N.
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }'; }

DEAD=$T/dead
mkdir -p "$DEAD"
dead_case() {
	bg_s3 "$DEAD" || return
	s3_fault kind=delay ms=1000 'match=^PUT /bkt/dead/h/.*db\.sql\.gz\.age\?partNumber=2&'
	local t0 pid
	t0=$(date +%s.%N)
	chom-backup --to s3://bkt/dead --host h -r "$R" --db --db-cmd "cat '$BIG'" \
		>"$DEAD/out" 2>"$DEAD/err" &
	pid=$!
	echo "$pid" >>"$DEAD/pids"
	if ! wait_log 'partNumber=2&.* fault delay' 20 "$(s3_log)"; then
		echo "part 2 never came" >"$DEAD/status"
	fi
	s3_kill
	# 8 attempts: at most 51.5 s of backoff; an ASan build is slower.
	wait_pid "$pid" 90
	seconds_since "$t0" >"$DEAD/seconds"
	echo "$WRC" >"$DEAD/rc"
	s3_restart >>"$DEAD/start.log" 2>&1
	echo "$S3RVER_PID $S3_CHECKER_PID" >"$DEAD/pids"
	uploads dead/ >"$DEAD/uploads"
	keys s3://bkt/dead/ >"$DEAD/keys"
	cp "$(s3_log)" "$DEAD/checker.log"
	echo done >>"$DEAD/status"
}
dead_case &
DEAD_PID=$!
bg_end "$DEAD_PID" "$DEAD"

# --- the cleanup after SIGTERM bounded, in the background ---------------------
# A server of its own that takes the abort and DeleteObjects and never
# answers (each delayed 120 s): the cleanup gives up after its 30 s, not
# after 3 attempts of 120 s each.
SLOW=$T/slow
mkdir -p "$SLOW/files"
head -c 12000000 /dev/urandom >"$SLOW/files/blob"
slow_case() {
	bg_s3 "$SLOW" || return
	s3_fault kind=delay ms=5000 'match=^PUT /bkt/slow/h/.*files\.tar\.gz\.age\?partNumber=2&'
	s3_fault kind=delay ms=120000 n=10 'match=^DELETE /bkt/slow/h/.*\?uploadId='
	s3_fault kind=delay ms=120000 n=10 'match=^POST /bkt/?\?delete'
	local t0 pid
	chom-backup --to s3://bkt/slow --host h -r "$R" --db --db-cmd "cat '$SMALL'" \
		--files "$SLOW/files" >"$SLOW/out" 2>"$SLOW/err" &
	pid=$!
	echo "$pid" >>"$SLOW/pids"
	if ! wait_log 'partNumber=2&.* fault delay' 30 "$(s3_log)"; then
		echo "part 2 never came" >"$SLOW/status"
	fi
	t0=$(date +%s.%N)
	kill -TERM "$pid"
	wait_pid "$pid" 150
	seconds_since "$t0" >"$SLOW/seconds"
	echo "$WRC" >"$SLOW/rc"
	cp "$(s3_log)" "$SLOW/checker.log"
	echo done >>"$SLOW/status"
}
slow_case &
SLOW_PID=$!
bg_end "$SLOW_PID" "$SLOW"

# --- round trips: gzip and zstd --------------------------------------------------
# gzip under a plain prefix, zstd under one with characters to encode (as
# the checker receives them: %20 %2B %3D).
PFX=backups/prod
PFX_ENC=backups%2Fprod
U=s3://bkt/$PFX
declare -A URL LP PT
URL[gzip]=$U LP[gzip]=$PFX
URL[zstd]="s3://bkt/odd prefix/a+b=c" LP[zstd]='odd%20prefix/a%2Bb%3Dc'
for c in gzip zstd; do
	case $c in
	gzip) ext=.gz ;;
	zstd) ext=.zst ;;
	esac
	run chom-backup --to "${URL[$c]}" --host "big-$c" -r "$R" --compress "$c" --label "s3 $c" \
		--db --db-cmd "cat '$BIG'" --files "$FILES" --config "$CONF" --sysinfo
	exits 0 "$c: chom-backup to ${URL[$c]}: exit 0"
	like "$OUT" "$ID_RE" "$c: prints the point id"
	P=$OUT
	PT[$c]=$P
	K="/bkt/${LP[$c]}/big-$c/$P"
	is "$(count "^[^ ]+ C[0-9]+ POST $K/db\.sql$ext\.age\?uploads 200 ok")" 1 \
		"$c: the db part: one multipart upload begun"
	is "$(count "^[^ ]+ C[0-9]+ PUT $K/db\.sql$ext\.age\?partNumber=[123]&uploadId=[0-9a-f]+ 200 ok .*sums=sha256$")" 3 \
		"$c: the db part: 3 parts, each with its x-amz-checksum-sha256, each verified"
	is "$(count "PUT $K/db\.sql$ext\.age\?partNumber=[4-9]")" 0 "$c: the db part: no part 4"
	is "$(count "^[^ ]+ C[0-9]+ POST $K/db\.sql$ext\.age\?uploadId=[0-9a-f]+ 200 ok")" 1 \
		"$c: the db part: the upload completed"
	for part in "files.tar$ext.age" "config.tar$ext.age" sysinfo.txt.age; do
		is "$(count "^[^ ]+ C[0-9]+ PUT $K/${part//./\\.} 200 ok .*sums=sha256$")" 1 \
			"$c: $part: a single PUT with its checksum"
	done
	is "$(count "$K/(files|config|sysinfo)[^ ]*\?uploads")" 0 "$c: no multipart upload for the small parts"
	like "$(grep -E " $K/" "$(s3_log)" | tail -n 1)" "PUT $K/manifest\.json 200 ok .*sums=sha256$" \
		"$c: the manifest is put last"
	is "$(grep -E " $K/" "$(s3_log)" | grep -cvE ' 20[04] ok')" 0 "$c: every request of the backup answered 2xx"

	run chom-backup --to "${URL[$c]}" --host "small-$c" -r "$R" --compress "$c" --db --db-cmd "cat '$SMALL'"
	exits 0 "$c: a small db part: exit 0"
	SP=$OUT
	is "$(count "/bkt/${LP[$c]}/small-$c/$SP/db\.sql$ext\.age\?")" 0 "$c: a part under 8 MiB: no multipart upload"
	is "$(count "PUT /bkt/${LP[$c]}/small-$c/$SP/db\.sql$ext\.age 200 ok .*sums=sha256$")" 1 "$c: ... one PUT"

	run chom-restore --from "${URL[$c]}" --host "big-$c" --list
	exits 0 "$c: --list: exit 0"
	like "$OUT" "^POINT +TIME \(UTC\) +KINDS +SIZE +LABEL" "$c: --list: the header"
	like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^$P  [0-9-]{10} [0-9:]{8}  db,files,config,sysinfo +[0-9.]+ MB  s3 $c$" \
		"$c: --list: the point, its kinds, size and label"
	is "$(printf '%s\n' "$OUT" | wc -l)" 2 "$c: --list: one point"
	run chom-restore --from "${URL[$c]}" --host "big-$c" --list --json
	like "$OUT" "\"point\": *\"$P\".*\"complete\": *true" "$c: --list --json: the point, complete"
	run chom-restore --from "${URL[$c]}" --host "big-$c" -i "$KEY" --verify
	exits 0 "$c: --verify: exit 0"
	is "$(printf '%s\n' "$OUT" | sed -E 's/ \([^)]*\)$//' | LC_ALL=C sort | tr '\n' ' ')" \
		"$P config.tar$ext.age ok $P db.sql$ext.age ok $P files.tar$ext.age ok $P sysinfo.txt.age ok " \
		"$c: --verify: every part ok"
	run chom-restore --from "${URL[$c]}" --host "big-$c" -i "$KEY" --db --db-cmd "cat > '$T/db-$c.sql'"
	exits 0 "$c: --db: exit 0"
	is "$OUT" "$P" "$c: --db prints the point"
	ok "$c: --db: the 20 MB dump back byte for byte (cmp)" cmp -s "$BIG" "$T/db-$c.sql"
	rm -f "$T/db-$c.sql"
	run chom-restore --from "${URL[$c]}" --host "small-$c" -i "$KEY" --db --db-cmd "cat > '$T/dbs-$c.sql'"
	exits 0 "$c: --db of the small point: exit 0"
	ok "$c: --db: the small dump back (cmp)" cmp -s "$SMALL" "$T/dbs-$c.sql"
	run chom-restore --from "${URL[$c]}" --host "big-$c" -i "$KEY" --files --target "$T/rf-$c"
	exits 0 "$c: --files: exit 0"
	is "$(tree_sig "$T/rf-$c/${FILES#/}")" "$(tree_sig "$FILES")" \
		"$c: --files: the tree as the original (contents, modes, mtimes, symlink)"
	run chom-restore --from "${URL[$c]}" --host "big-$c" -i "$KEY" --config "$P" --target "$T/rc-$c"
	exits 0 "$c: --config POINT: exit 0"
	is "$(tree_sig "$T/rc-$c/${CONF#/}")" "$(tree_sig "$CONF")" "$c: --config: the tree as the original"
	run chom-restore --from "${URL[$c]}" --host "big-$c" -i "$KEY" --sysinfo
	exits 0 "$c: --sysinfo: exit 0"
	printf '%s\n' "$OUT" >"$T/sys-$c.txt"
	like "$OUT" "$(uname -r)" "$c: --sysinfo: the kernel's release"
done
is "$(find "$CHOM_LOCK_DIR" -name 'chom-s3-*.lock' | wc -l)" 4 \
	"the lock of an S3 target is a file in CHOM_LOCK_DIR, one per target and host"
# The default host is not there: the hosts that are, named.
run chom-restore --from "${URL[zstd]}" --list
exits 1 "--list of a host with no point: exit 1"
like "$ERR" "no backup point of host .* in s3://bkt/odd prefix/a\+b=c" "... says so"
# s3rver (3.7) lists no CommonPrefixes for keys more than one level below
# them (HOST/POINT/PART under PREFIX/): the hint needs a real S3.
if s3_aws s3api list-objects-v2 --bucket bkt --prefix 'odd prefix/a+b=c/' --delimiter / \
	--query 'CommonPrefixes[].Prefix' --output text 2>/dev/null | grep -q 'big-zstd/'; then
	like "$ERR" "it has: .*big-zstd" "... naming the hosts that are there"
else
	skip "... naming the hosts that are there" "s3rver's ListObjectsV2 lists no CommonPrefixes two levels deep"
fi

# --- two targets in one pass -----------------------------------------------------
FS=$T/store
run chom-backup --to "file://$FS" --to "$U" --host two -r "$R" \
	--db --db-cmd "cat '$BIG'" --files "$FILES" --sysinfo
exits 0 "--to file:// --to s3://: exit 0"
TWO=$OUT
like "$TWO" "$ID_RE" "two targets: one point id"
ok "two targets: the file:// point" test -f "$FS/two/$TWO/manifest.json"

# --- awscli: lists, downloads; age, gunzip, zstd decode ---------------------------
run s3_aws s3 ls --recursive s3://bkt/
exits 0 "aws s3 ls --recursive: exit 0"
LS=$OUT
for c in gzip zstd; do
	case $c in
	gzip) ext=.gz pre=$PFX ;;
	zstd) ext=.zst pre="odd prefix/a+b=c" ;;
	esac
	P=${PT[$c]}
	is "$(printf '%s\n' "$LS" | grep -F " $pre/big-$c/$P/" | sed -E 's|.*/||' | LC_ALL=C sort | tr '\n' ' ')" \
		"config.tar$ext.age db.sql$ext.age files.tar$ext.age manifest.json sysinfo.txt.age " \
		"$c: awscli lists the 4 parts and the manifest"
	run s3_aws s3 cp --quiet --recursive "s3://bkt/$pre/big-$c/$P/" "$T/dl-$c/"
	exits 0 "$c: aws s3 cp --recursive downloads the point"
	is "$(ls "$T/dl-$c" | tr '\n' ' ')" "config.tar$ext.age db.sql$ext.age files.tar$ext.age manifest.json sysinfo.txt.age " \
		"$c: the parts and the manifest"
	is "$(sums "$T/dl-$c" | grep -v '^manifest.json ')" "$(msums "$T/dl-$c/manifest.json")" \
		"$c: each downloaded part has the SHA-256 the manifest lists"
	is "$(printf '%s\n' "$LS" | grep -F " $pre/big-$c/$P/db.sql$ext.age" | awk '{print $3}')" \
		"$(mf "$T/dl-$c/manifest.json" '[p["size"] for p in m["parts"] if p["kind"] == "db"][0]')" \
		"$c: the size awscli lists is the manifest's"
	is "$(mf "$T/dl-$c/manifest.json" '[m["host"], m["point"], m["label"]]')" "[\"big-$c\", \"$P\", \"s3 $c\"]" \
		"$c: the manifest: host, point, label"
	case $c in
	gzip) dec="gunzip -c" ;;
	zstd) dec="zstd -dc" ;;
	esac
	ok "$c: age -d -i KEY | $dec of the db part is the dump" \
		cmp -s "$BIG" <(age -d -i "$KEY" "$T/dl-$c/db.sql$ext.age" | $dec)
	is "$(age -d -i "$KEY" "$T/dl-$c/files.tar$ext.age" | $dec | tar -tf - 2>&1 | grep -c "^${FILES#/}/a\.txt$")" 1 \
		"$c: age -d | $dec | tar -t of the files part lists the files"
	ok "$c: age -d of the sysinfo part is what --sysinfo printed" \
		cmp -s "$T/sys-$c.txt" <(age -d -i "$KEY" "$T/dl-$c/sysinfo.txt.age")
done
# The two targets of one pass: the same bytes.
run s3_aws s3 cp --quiet --recursive "$U/two/$TWO/" "$T/dl-two/"
exits 0 "two targets: aws s3 cp downloads the s3:// point"
is "$(sums "$T/dl-two")" "$(sums "$FS/two/$TWO")" "two targets: every part (and the manifest) the same SHA-256"
is "$(sums "$FS/two/$TWO" | grep -v '^manifest.json ')" "$(msums "$FS/two/$TWO/manifest.json")" \
	"two targets: ... the manifest's"

# A point put by hand with awscli: the file:// point of host two, as host
# hand and another point id, its manifest edited to match.
HP=20200102T030405Z
mkdir "$T/hand"
cp "$FS/two/$TWO"/* "$T/hand/"
python3 -c '
import json, sys
path = sys.argv[1] + "/manifest.json"
m = json.load(open(path))
m["host"], m["point"] = "hand", sys.argv[2]
json.dump(m, open(path, "w"), indent=2)
' "$T/hand" "$HP"
run s3_aws s3 cp --quiet --recursive "$T/hand/" "$U/hand/$HP/"
exits 0 "aws s3 cp puts a point by hand"
run chom-restore --from "$U" --host hand --list
exits 0 "the hand-made point: --list: exit 0"
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^$HP  2020-01-02 03:04:05  db,files,sysinfo " "... listed, at its time"
run chom-restore --from "$U" --host hand -i "$KEY" --verify
exits 0 "the hand-made point: --verify: exit 0"
is "$(printf '%s\n' "$OUT" | grep -c " ok ")" 3 "... every part ok"
run chom-restore --from "$U" --host hand -i "$KEY" --db --db-cmd "cat > '$T/db-hand.sql'"
exits 0 "the hand-made point: --db: exit 0"
is "$OUT" "$HP" "... the point"
ok "the hand-made point: the dump back (cmp)" cmp -s "$BIG" "$T/db-hand.sql"
rm -f "$T/db-hand.sql"
run chom-restore --from "$U" --host hand -i "$KEY" --files --target "$T/rf-hand"
exits 0 "the hand-made point: --files: exit 0"
is "$(tree_sig "$T/rf-hand/${FILES#/}")" "$(tree_sig "$FILES")" "the hand-made point: --files: the tree"
# Only AWS_ENDPOINT_URL (not _S3) names the endpoint; with both, _S3 wins.
run env -u AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL="$S3_ENDPOINT" chom-restore --from "$U" --host hand --list
exits 0 "AWS_ENDPOINT_URL alone: --list works"
like "$OUT" "$HP" "... and lists the point"
run env AWS_ENDPOINT_URL="http://127.0.0.1:$(free_port)" chom-restore --from "$U" --host hand --list
exits 0 "AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL"

# --- the checker saw every request signed right -------------------------------------
is "$(count 'SignatureDoesNotMatch')" 0 "no request of chom's had a signature the checker refused"
is "$(count ' C[0-9]+ [A-Z]+ [^ ]+ (4[0-9][0-9]|5[0-9][0-9]|0) ')" 0 "no request of chom's refused at all"
is "$(s3_stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["requests"] == s["verified"], s["requests"] > 40)')" \
	"True True" "the checker verified every request it got"

n0=$(count '403 SignatureDoesNotMatch')
run env AWS_SECRET_ACCESS_KEY=wrong chom-backup --to "$U" --host wrong -r "$R" --db --db-cmd "cat '$SMALL'"
exits 1 "a wrong secret: exit 1"
like "$ERR" 'SignatureDoesNotMatch' "a wrong secret: the message names SignatureDoesNotMatch"
is "$OUT" "" "a wrong secret: no point id"
is "$(($(count '403 SignatureDoesNotMatch') - n0))" 1 "a wrong secret: one request, refused, not retried"
ok "a wrong secret: no point (nothing stored under the host)" test ! -e "$S3_DIR/data/bkt/$PFX/wrong"
run env AWS_SECRET_ACCESS_KEY=wrong chom-restore --from "$U" --host big-gzip --list
exits 1 "a wrong secret: chom-restore --list: exit 1"
like "$ERR" 'SignatureDoesNotMatch' "... naming SignatureDoesNotMatch"
run env AWS_ACCESS_KEY_ID=AKIDUNKNOWN chom-backup --to "$U" --host wrong -r "$R" --db --db-cmd "cat '$SMALL'"
exits 1 "an unknown access key: exit 1"
like "$ERR" 'InvalidAccessKeyId' "an unknown access key: InvalidAccessKeyId"
ok "an unknown access key: no point" test ! -e "$S3_DIR/data/bkt/$PFX/wrong"
run chom-backup --to s3://nosuchbucket/x --host nb -r "$R" --db --db-cmd "cat '$SMALL'"
exits 1 "a bucket that does not exist: exit 1"
like "$ERR" 'NoSuchBucket' "... naming NoSuchBucket"
is "$OUT" "" "... no point id"
run chom-restore --from s3://nosuchbucket/x --host nb --list
exits 1 "chom-restore from a bucket that does not exist: exit 1"
like "$ERR" 'NoSuchBucket' "... naming NoSuchBucket"

# --- usage: --s3-parallel, --storage-class ------------------------------------------
run chom-backup --to "$U" --s3-parallel 0 --db --db-cmd "cat '$SMALL'" -r "$R"
usage_err "--s3-parallel 0" 's3-parallel'
run chom-backup --to "$U" --s3-parallel 65 --db --db-cmd "cat '$SMALL'" -r "$R"
usage_err "--s3-parallel 65" 's3-parallel'
# Part 1 held 1.5 s: with --s3-parallel 1, part 2 waits for it.
s3_fault kind=delay ms=1500 "match=^PUT /bkt/$PFX/sc/.*partNumber=1&"
s3_inflight_reset "^PUT /bkt/$PFX/sc/.*partNumber="
run chom-backup --to "$U" --host sc --s3-parallel 1 --storage-class STANDARD_IA -r "$R" \
	--db --db-cmd "cat '$BIG'" --sysinfo
exits 0 "--s3-parallel 1 --storage-class STANDARD_IA: exit 0"
SC=$OUT
is "$(s3_stat max_inflight)" 1 "--s3-parallel 1: never more than one part in flight"
# With 4, part 2 goes while part 1 is held (4 s: a loaded sanitizer build
# once took longer than 1.5 s to send part 2).
s3_fault kind=delay ms=4000 "match=^PUT /bkt/$PFX/par4/.*partNumber=1&"
run chom-backup --to "$U" --host par4 --s3-parallel 4 -r "$R" --db --db-cmd "cat '$MID'"
exits 0 "--s3-parallel 4: exit 0"
# Judged by the order of the answers, not by what the checker saw in flight
# at one instant: part 2 may reach the checker, and be answered, before part
# 1's connection is up (CI saw that). With one part at a time, part 2 cannot
# be answered before the held part 1 is.
p1=$(grep -nE "^.* PUT /bkt/$PFX/par4/.*partNumber=1&.* 200 ok" "$(s3_log)" | cut -d: -f1)
p2=$(grep -nE "^.* PUT /bkt/$PFX/par4/.*partNumber=2&.* 200 ok" "$(s3_log)" | cut -d: -f1)
num_ok "--s3-parallel 4: part 2 answered while part 1 was held" "${p2:-0} > 0 && ${p2:-0} < ${p1:-0}"
[ "${p2:-0}" -gt 0 ] && [ "${p2:-0}" -lt "${p1:-0}" ] || grep "/par4/" "$(s3_log)" | sed 's/^/# /'
s3_inflight_reset
like "$(s3_aws s3api head-object --bucket bkt --key "$PFX/sc/$SC/db.sql.gz.age" --query StorageClass --output text 2>&1)" \
	'^STANDARD_IA$' "--storage-class: the multipart part has it"
like "$(s3_aws s3api head-object --bucket bkt --key "$PFX/sc/$SC/sysinfo.txt.age" --query StorageClass --output text 2>&1)" \
	'^STANDARD_IA$' "--storage-class: the single-PUT part has it"
like "$(s3_aws s3api head-object --bucket bkt --key "$PFX/sc/$SC/manifest.json" --query StorageClass --output text 2>&1)" \
	'^(None|STANDARD)$' "--storage-class: not the manifest (the default class, readable at once)"

# --- faults: 503 bursts, a reset, a 500 --------------------------------------------------
ok "s3_fail_next 3" s3_fail_next 3
n0=$(count ' 503 SlowDown \(fault\)')
run chom-backup --to "$U" --host burst -r "$R" --db --db-cmd "cat '$BIG'"
exits 0 "a burst of 3 x 503 SlowDown: the backup succeeds"
BP=$OUT
is "$(($(count ' 503 SlowDown \(fault\)') - n0))" 3 "... three requests answered 503 SlowDown"
# On the multipart upload itself: 503 twice on part 2, part 3 reset, 500
# on CompleteMultipartUpload.
s3_fault kind=fail n=2 status=503 "match=^PUT /bkt/$PFX/burst2/.*partNumber=2&"
s3_fault kind=reset n=1 "match=^PUT /bkt/$PFX/burst2/.*partNumber=3&"
s3_fault kind=fail n=1 status=500 "match=^POST /bkt/$PFX/burst2/.*\?uploadId="
s3_fault kind=fail n=1 status=400 "match=^PUT /bkt/$PFX/burst2/.*partNumber=1&"
run chom-backup --to "$U" --host burst2 -r "$R" --db --db-cmd "cat '$BIG'"
exits 0 "503 x 2 on part 2, a reset on part 3, 400 RequestTimeout on part 1, 500 on complete: the backup succeeds"
B2=$OUT
is "$(count "PUT /bkt/$PFX/burst2/.*partNumber=2&.* 503 SlowDown")" 2 "... part 2 refused twice"
is "$(count "PUT /bkt/$PFX/burst2/.*partNumber=2&.* 200 ok")" 1 "... then stored"
is "$(count "PUT /bkt/$PFX/burst2/.*partNumber=3&.* 0 fault reset")" 1 "... part 3 reset once"
is "$(count "PUT /bkt/$PFX/burst2/.*partNumber=1&.* 400 RequestTimeout")" 1 "... part 1 timed out once"
is "$(count "POST /bkt/$PFX/burst2/.*\?uploadId=.* 500 InternalError")" 1 "... complete answered 500 once"
is "$(count "POST /bkt/$PFX/burst2/.*\?uploadId=.* 200 ok")" 1 "... then completed"
is "$(s3_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["rules"])')" 0 "every fault was used"
s3_fail_next 2
run chom-restore --from "$U" --host burst2 -i "$KEY" --db --db-cmd "cat > '$T/db-b2.sql'"
exits 0 "2 x 503 during a restore: exit 0"
ok "... the dump back (cmp)" cmp -s "$BIG" "$T/db-b2.sql"
rm -f "$T/db-b2.sql"
s3_fault kind=reset n=1 "match=^GET /bkt/$PFX/burst/$BP/db\.sql\.gz\.age"
run chom-restore --from "$U" --host burst -i "$KEY" --verify
exits 0 "a GET reset during --verify: retried, exit 0"
is "$(count "GET /bkt/$PFX/burst/$BP/db\.sql\.gz\.age 0 fault reset")" 1 "... the GET was reset once"
# A download cut after 5,000,000 bytes of its answer: resumed from there.
n0=$(count "GET /bkt/$PFX/burst2/$B2/db\.sql\.gz\.age [0-9]+ ")
s3_fault kind=cut bytes=5000000 n=1 "match=^GET /bkt/$PFX/burst2/$B2/db\.sql\.gz\.age"
run chom-restore --from "$U" --host burst2 -i "$KEY" --db --db-cmd "cat > '$T/db-b2.sql'"
exits 0 "a GET cut after 5,000,000 bytes of a 20 MB part: exit 0"
ok "... the dump back (cmp)" cmp -s "$BIG" "$T/db-b2.sql"
rm -f "$T/db-b2.sql"
is "$(count "GET /bkt/$PFX/burst2/$B2/db\.sql\.gz\.age 200 fault cut after 5000000 bytes of the answer")" 1 \
	"... the GET was cut once"
is "$(count "GET /bkt/$PFX/burst2/$B2/db\.sql\.gz\.age 206 ok .* range=bytes=5000000-$")" 1 \
	"... and resumed with Range: bytes=5000000-, answered 206"
is "$(($(count "GET /bkt/$PFX/burst2/$B2/db\.sql\.gz\.age [0-9]+ ") - n0))" 2 "... two GETs of the part, no more"
# The same cut, then a server that ignores Range: 200 and the whole part,
# whose first 5,000,000 bytes chom skips.
G2="GET /bkt/$PFX/burst2/$B2/db\.sql\.gz\.age"
n0=$(count "$G2 [0-9]+ ")
s3_fault kind=cut bytes=5000000 n=1 "match=^$G2"
s3_fault kind=norange n=1 "match=^$G2"
run chom-restore --from "$U" --host burst2 -i "$KEY" --db --db-cmd "cat > '$T/db-b2.sql'"
exits 0 "a cut GET resumed from a server that ignores Range: exit 0"
ok "... the dump back (cmp)" cmp -s "$BIG" "$T/db-b2.sql"
rm -f "$T/db-b2.sql"
is "$(count "$G2 200 ok .* range=bytes=5000000-$")" 1 "... asked from byte 5,000,000, answered 200 (the whole part)"
is "$(($(count "$G2 [0-9]+ ") - n0))" 2 "... two GETs, no more"
# A 206 from another byte than asked: that attempt fails, the next is right.
n0=$(count "$G2 [0-9]+ ")
s3_fault kind=cut bytes=5000000 n=1 "match=^$G2"
s3_fault kind=shiftrange bytes=100 n=1 "match=^$G2"
run chom-restore --from "$U" --host burst2 -i "$KEY" --db --db-cmd "cat > '$T/db-b2.sql'"
exits 0 "a 206 from byte 5,000,100 to a Range from 5,000,000: refused, retried, exit 0"
ok "... the dump back (cmp)" cmp -s "$BIG" "$T/db-b2.sql"
rm -f "$T/db-b2.sql"
is "$(count "$G2 fault shiftrange")" 1 "... the Range shifted once"
is "$(($(count "$G2 [0-9]+ ") - n0))" 3 "... three GETs: cut, shifted, resumed"

# 429 SlowDown, three times: retried.
n0=$(count ' 429 SlowDown \(fault\)')
s3_fault kind=fail n=3 status=429 code=SlowDown "match=^PUT /bkt/$PFX/slowdown/"
run chom-backup --to "$U" --host slowdown -r "$R" --db --db-cmd "cat '$SMALL'"
exits 0 "a burst of 3 x 429 SlowDown: the backup succeeds"
is "$(($(count ' 429 SlowDown \(fault\)') - n0))" 3 "... three requests answered 429"
# CompleteMultipartUpload answered 200 with an <Error> body, as S3 may.
s3_fault kind=fail n=1 status=200 code=InternalError "match=^POST /bkt/$PFX/c200/.*\?uploadId="
run chom-backup --to "$U" --host c200 -r "$R" --db --db-cmd "cat '$MID'"
exits 0 "CompleteMultipartUpload answered 200 <Error>: retried, exit 0"
is "$(count "POST /bkt/$PFX/c200/.*\?uploadId=.* 200 InternalError \(fault\)")" 1 "... the 200 <Error> once"
is "$(count "POST /bkt/$PFX/c200/.*\?uploadId=.* 200 ok")" 1 "... then completed"
run chom-restore --from "$U" --host c200 -i "$KEY" --db --db-cmd "cmp - '$MID'"
exits 0 "... the dump back (cmp)"
# The server's message, not only its code.
s3_fault kind=fail n=1 status=403 code=AccessDenied 'message=chom test: the bucket policy says no' \
	"match=^PUT /bkt/$PFX/msg/"
run chom-backup --to "$U" --host msg -r "$R" --db --db-cmd "cat '$SMALL'"
exits 1 "403 AccessDenied: exit 1"
like "$ERR" 's3: PUT bkt/backups/prod/msg/[0-9TZ]+/db\.sql\.gz\.age: 403 AccessDenied: chom test: the bucket policy says no$' \
	"... the method, the key, the status, the server's Code and Message"
# A reply over 1 MiB: refused as such, not retried.
s3_fault kind=huge n=1 "match=^GET /bkt/?\?list-type=2&prefix=[^&]*%2Fburst%2F"
run chom-restore --from "$U" --host burst --list
exits 1 "a listing of 1.5 MiB: exit 1"
like "$ERR" 'reply over 1 MiB' "... says the reply is over 1 MiB"
is "$(count ' 200 fault huge')" 1 "... not retried"

# A multipart upload completed, its answer lost; the retry: NoSuchUpload
# (as S3 answers). The object is there, of the size uploaded: done.
s3_fault kind=lose n=1 "match=^POST /bkt/$PFX/lost/.*\?uploadId="
run chom-backup --to "$U" --host lost -r "$R" --db --db-cmd "cat '$MID'"
exits 0 "CompleteMultipartUpload done, its answer lost, the retry finds no upload: exit 0"
LOSTP=$OUT
is "$(count "POST /bkt/$PFX/lost/.*\?uploadId=.* 0 fault lose: s3rver answered 200")" 1 \
	"... s3rver completed the upload"
is "$(count "POST /bkt/$PFX/lost/.*\?uploadId=.* 404 NoSuchUpload")" 1 "... the retry was refused"
is "$(uploads "$PFX/lost/")" "None" "... no open multipart upload"
run chom-restore --from "$U" --host lost -i "$KEY" --db "$LOSTP" --db-cmd "cmp - '$MID'"
exits 0 "... the point restores to the dump (chom-restore --db into cmp)"
# NoSuchUpload to the first CompleteMultipartUpload (the upload gone,
# nothing completed), and to a retry when the first never reached the
# server (a reset: no object there either): both fail, nothing left.
for h in gone gone2; do
	d="NoSuchUpload to the first CompleteMultipartUpload"
	if [ $h = gone2 ]; then
		d="a reset, then NoSuchUpload, with no object made"
		s3_fault kind=reset n=1 "match=^POST /bkt/$PFX/$h/.*\?uploadId="
	fi
	s3_fault kind=fail n=1 status=404 code=NoSuchUpload "match=^POST /bkt/$PFX/$h/.*\?uploadId="
	run chom-backup --to "$U" --host $h -r "$R" --db --db-cmd "cat '$MID'"
	exits 1 "$d: exit 1"
	like "$ERR" '404 NoSuchUpload' "$d: naming NoSuchUpload"
	is "$(keys "$U/$h/")" "" "$d: nothing stored (aws s3 ls)"
	is "$(uploads "$PFX/$h/")" "None" "$d: no open multipart upload"
done
# Answers lost after the server did the work; the retry refused (as S3
# does): whatever the server made is deleted.
# A single PUT and the manifest, likewise.
for what in 'db\.sql\.gz\.age' 'manifest\.json'; do
	s3_fault kind=lose n=1 "match=^PUT /bkt/$PFX/lost1/[0-9TZ]+/$what\$"
	s3_fault kind=fail n=1 status=403 code=AccessDenied "match=^PUT /bkt/$PFX/lost1/[0-9TZ]+/$what\$"
	run chom-backup --to "$U" --host lost1 -r "$R" --db --db-cmd "cat '$SMALL'"
	exits 1 "$what: a PUT done, its answer lost, the retry refused: exit 1"
	is "$(count "PUT /bkt/$PFX/lost1/[0-9TZ]+/$what 0 fault lose: s3rver answered 200")" 1 "... s3rver stored it"
	is "$(keys "$U/lost1/")" "" "... and it is deleted, with the rest of the point (aws s3 ls)"
done
# CreateMultipartUpload done, its answer lost: the retry makes a second
# upload; the first is found and aborted.
s3_fault kind=lose n=1 "match=^POST /bkt/$PFX/strays/.*\?uploads\$"
run chom-backup --to "$U" --host strays -r "$R" --db --db-cmd "cat '$MID'"
exits 0 "CreateMultipartUpload's answer lost: retried, exit 0"
is "$(count "POST /bkt/$PFX/strays/.*\?uploads (0 fault lose|200 ok)")" 2 "... two uploads made"
is "$(count "GET /bkt/?\?prefix=$PFX_ENC%2Fstrays%2F.*&uploads 200 ok \(list uploads\)")" 1 "... the key's uploads listed"
is "$(count "DELETE /bkt/$PFX/strays/.*\?uploadId=.* 204 ok \(abort\)")" 1 "... the stray one aborted"
is "$(uploads "$PFX/strays/")" "None" "... no open multipart upload left (awscli)"
run chom-restore --from "$U" --host strays -i "$KEY" --db --db-cmd "cmp - '$MID'"
exits 0 "... the dump back (cmp)"

# Failures no retry mends: a certificate not trusted, a malformed URL.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" -days 1 \
	-subj /CN=localhost >/dev/null 2>&1
TLS_PORT=$(free_port)
openssl s_server -quiet -accept "$TLS_PORT" -cert "$T/tls.crt" -key "$T/tls.key" -www \
	>/dev/null 2>&1 </dev/null &
TLS_PID=$!
at_exit "kill $TLS_PID 2>/dev/null"
for ((i = 0; i < 100; i++)); do
	(exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null && break
	sleep 0.05
done
t0=$(date +%s.%N)
run env AWS_ENDPOINT_URL_S3="https://127.0.0.1:$TLS_PORT" chom-restore --from "$U" --host x --list
exits 1 "a self-signed certificate: exit 1"
like "$ERR" 'certificate.*\(not retried\)$' "... the certificate named, not retried"
num_ok "... at once" "$(date +%s.%N) - $t0 < 5"
kill "$TLS_PID" 2>/dev/null
t0=$(date +%s.%N)
run env AWS_ENDPOINT_URL_S3="http://bad host:1" chom-restore --from "$U" --host x --list
exits 1 "a malformed endpoint URL: exit 1"
like "$ERR" '\(not retried\)$' "... not retried"
num_ok "... at once" "$(date +%s.%N) - $t0 < 5"

# --- s3rver killed mid-upload, restarted within the retry window ------------------
s3_fault kind=delay ms=500 "match=^PUT /bkt/$PFX/revive/.*partNumber=2&"
chom-backup --to "$U" --host revive -r "$R" --db --db-cmd "cat '$BIG'" >"$T/revive.out" 2>"$T/revive.err" &
RV=$!
ok "revive: part 2 of the db part reached the checker" wait_log "PUT /bkt/$PFX/revive/.*partNumber=2&.* fault delay" 20
ok "revive: s3rver killed while part 2 waits" s3_kill
sleep 0.7
ok "revive: s3rver restarted" s3_restart
wait_pid "$RV" 60
is "$WRC" 0 "revive: the backup completes (exit 0)"
RVP=$(cat "$T/revive.out")
like "$RVP" "$ID_RE" "revive: prints the point id"
num_ok "revive: part 2 was retried after the connection was lost" \
	"$(count "PUT /bkt/$PFX/revive/.*partNumber=2&.* 0 upstream")" -ge 1
is "$(count "PUT /bkt/$PFX/revive/.*partNumber=2&.* 200 ok")" 1 "revive: ... and stored"
run chom-restore --from "$U" --host revive -i "$KEY" --db --db-cmd "cat > '$T/db-rv.sql'"
exits 0 "revive: --db: exit 0"
ok "revive: the dump back (cmp)" cmp -s "$BIG" "$T/db-rv.sql"
rm -f "$T/db-rv.sql"

# --- SIGTERM during an S3 backup; the lock ----------------------------------------------
# The db part (small) is stored; the files part (12 MB: 2 parts) waits on
# part 2; a second backup finds the lock; SIGTERM.
BF=$T/bigfiles
mkdir -p "$BF"
head -c 12000000 /dev/urandom >"$BF/blob"
s3_fault kind=delay ms=5000 "match=^PUT /bkt/$PFX/term/.*files\.tar\.gz\.age\?partNumber=2&"
chom-backup --to "$U" --host term -r "$R" --db --db-cmd "cat '$SMALL'" --files "$BF" \
	>"$T/term.out" 2>"$T/term.err" &
TP=$!
ok "SIGTERM: part 2 of the files part reached the checker" \
	wait_log "PUT /bkt/$PFX/term/.*files\.tar\.gz\.age\?partNumber=2&.* fault delay" 20
run chom-backup --to "$U" --host term -r "$R" --db --db-cmd "cat '$SMALL'"
exits 3 "a second backup of the host to the target meanwhile: exit 3"
like "$ERR" "another backup of term to $U is running" "... says so"
is "$OUT" "" "... no point id"
run chom-backup --to "$U//" --host term -r "$R" --db --db-cmd "cat '$SMALL'"
exits 3 "... the same target written s3://bkt/PREFIX//: exit 3 too"
is "$(count "PUT /bkt/$PFX/term/[0-9TZ]+/db\.sql\.gz\.age 200 ok")" 1 "SIGTERM: the db part was stored before the signal"
TS=$(date +%s.%N)
kill -TERM "$TP"
wait_pid "$TP" 30
is "$WRC" 143 "SIGTERM: exit 143"
num_ok "SIGTERM: done within 10 s" "$(date +%s.%N) - $TS < 10"
is "$(cat "$T/term.out")" "" "SIGTERM: no point id"
TK=$(keys "$U/term/")
unlike "$TK" 'manifest\.json' "SIGTERM: no manifest"
is "$(uploads "$PFX/term/")" "None" "SIGTERM: no open multipart upload"
like "$(grep " /bkt/$PFX/term/" "$(s3_log)" | grep 'files\.tar\.gz\.age?uploadId=' | tail -n 1)" \
	"DELETE .* 204 ok \(abort\)" "SIGTERM: the upload was aborted"
is "$TK" "" "SIGTERM: no part object left"
run chom-restore --from "$U" --host term --list --all
exits 1 "SIGTERM: chom-restore --list --all: exit 1"
like "$ERR" "no backup point of host term" "SIGTERM: ... no point at all, not even an incomplete one"

# --- a host of more than one listing page ---------------------------------------
# 520 points of two objects each, put with awscli (1,040 keys: S3 lists
# 1,000 a page), then one backed up by chom, the newest: it is on the second
# page, so --list, latest and --prune are right only if chom follows the
# continuation token.
mkdir -p "$T/pg-src" "$T/many"
run chom-backup --to "file://$T/pg-src" --host pg -r "$R" --db --db-cmd "cat '$SMALL'"
exits 0 "pages: a point to copy (file://)"
PG0=$OUT
python3 - "$T/pg-src/pg/$PG0" "$T/many" <<'PY'
import datetime, json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(src, "manifest.json")))
t0 = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
for i in range(520):
    pid = (t0 + datetime.timedelta(hours=i)).strftime("%Y%m%dT%H%M%SZ")
    os.mkdir(os.path.join(dst, pid))
    shutil.copy(os.path.join(src, "db.sql.gz.age"), os.path.join(dst, pid))
    m["point"] = pid
    json.dump(m, open(os.path.join(dst, pid, "manifest.json"), "w"), indent=2)
PY
run s3_aws s3 cp --quiet --recursive "$T/many/" "$U/pg/"
exits 0 "pages: awscli puts 520 points (1,040 objects)"
printf -- '-- the newest point of pg\n' >"$T/pg.sql"
run chom-backup --to "$U" --host pg -r "$R" --db --db-cmd "cat '$T/pg.sql'"
exits 0 "pages: chom-backup adds the newest point, the 1,041st and 1,042nd keys"
PGN=$OUT
n0=$(count "GET /bkt/?\?list-type=2&prefix=[^&]*%2Fpg%2F&continuation-token=.* 200 ok")
run chom-restore --from "$U" --host pg --list
exits 0 "pages: --list: exit 0"
is "$(printf '%s\n' "$OUT" | sed 1d | wc -l)" 521 "pages: --list shows all 521 points"
like "$(printf '%s\n' "$OUT" | sed -n 2p)" "^$PGN " "pages: ... the newest first (from the second page)"
like "$(printf '%s\n' "$OUT" | tail -n 1)" "^20200101T000000Z  2020-01-01 00:00:00  db " "pages: ... the oldest last"
ok "pages: chom asked for the second page with the continuation token" \
	test "$(count "GET /bkt/?\?list-type=2&prefix=[^&]*%2Fpg%2F&continuation-token=.* 200 ok")" -gt "$n0"
run chom-restore --from "$U" --host pg -i "$KEY" --db latest --db-cmd "cat > '$T/pg.back'"
exits 0 "pages: --db latest: exit 0"
is "$OUT" "$PGN" "pages: ... latest is the point on the second page"
ok "pages: ... its dump back (cmp)" cmp -s "$T/pg.sql" "$T/pg.back"
# Were the second page not read, the 500 points of the first would all be
# kept, and nothing removed.
run chom-backup --to "$U" --host pg --prune --keep-last 515
exits 0 "pages: --prune --keep-last 515: exit 0"
is "$(printf '%s\n' "$OUT" | awk '{print $2}' | LC_ALL=C sort | tr '\n' ' ')" \
	"20200101T000000Z 20200101T010000Z 20200101T020000Z 20200101T030000Z 20200101T040000Z 20200101T050000Z " \
	"pages: ... the six oldest points removed"
is "$(keys "$U/pg/" | wc -l)" 1030 "pages: ... 515 points of two objects left (aws s3 ls)"
rm -rf "$T/many" "$T/pg-src"

# --- --prune -----------------------------------------------------------------------------
# Three points a second apart, and by hand (curl's signer): an old complete
# point, an old incomplete one and an incomplete one an hour old.
for i in 1 2 3; do
	[ "$i" -gt 1 ] && sleep 1
	run chom-backup --to "$U" --host pr -r "$R" --db --db-cmd "cat '$SMALL'"
	exits 0 "prune: point $i"
	PR[$i]=$OUT
done
printf 'part\n' >"$T/part"
printf '{"point": "20200101T000000Z"}\n' >"$T/mf"
OLD=20200101T000000Z OLDI=20200102T000000Z NEWI=$(date -u -d '1 hour ago' +%Y%m%dT%H%M%SZ)
is "$(sput "$PFX/pr/$OLD/db.sql.gz.age" "$T/part") $(sput "$PFX/pr/$OLD/manifest.json" "$T/mf") $(sput "$PFX/pr/$OLDI/db.sql.gz.age" "$T/part") $(sput "$PFX/pr/$NEWI/db.sql.gz.age" "$T/part")" \
	"200 200 200 200" "prune: points put by hand"
# pts: the point ids below pr/, and which have a manifest.
pts() { keys "$U/pr/" | sed -E "s|^$PFX/pr/||; s|/db\.sql\.gz\.age$||; s|/manifest\.json$|+m|" | tr '\n' ' '; }
run chom-backup --to "$U" --host pr --prune --keep-last 2
exits 0 "--prune --keep-last 2: exit 0"
is "$(printf '%s\n' "$OUT" | LC_ALL=C sort)" "$(printf '%s %s\n' "$U" "$OLD" "$U" "$OLDI" "$U" "${PR[1]}" | LC_ALL=C sort)" \
	"--prune: prints each point removed"
is "$(pts)" "$NEWI ${PR[2]} ${PR[2]}+m ${PR[3]} ${PR[3]}+m " \
	"--keep-last 2 (aws s3 ls): the two newest and the fresh incomplete point, whole; the rest gone"
# The manifest goes first: with the second DeleteObjects refused, the
# point is left without its manifest (incomplete), its part still there.
s3_fault kind=fail n=1 status=403 code=AccessDenied after=1 'match=^POST /bkt/?\?delete'
run chom-backup --to "$U" --host pr --prune --keep-last 1
exits 1 "--prune, the parts' DeleteObjects refused: exit 1"
like "$ERR" 'AccessDenied' "... naming AccessDenied"
is "$(pts)" "$NEWI ${PR[2]} ${PR[3]} ${PR[3]}+m " "... the manifest was deleted first, the part left"
run chom-restore --from "$U" --host pr --list
is "$(printf '%s\n' "$OUT" | sed 1d | awk '{print $1}' | tr '\n' ' ')" "${PR[3]} " \
	"... chom-restore lists only the newest point"

# --- s3rver killed for good (the background case) --------------------------------------
bg_wait "$DEAD_PID" "$DEAD" 100
is "$(cat "$DEAD/status" 2>&1)" "done" "dead: the case ran to its end"
is "$(cat "$DEAD/rc" 2>&1)" 1 "dead: s3rver killed and not restarted: exit 1"
diag "dead: chom-backup gave up after $(cat "$DEAD/seconds" 2>&1) s: $(tail -n 1 "$DEAD/err" 2>&1)"
num_ok "dead: within 8 attempts' backoff (under 60 s)" "$(cat "$DEAD/seconds" 2>/dev/null || echo 999) < 60"
like "$(cat "$DEAD/err" 2>&1)" '^chom-backup: s3: PUT bkt/dead/h/[0-9TZ]+/db\.sql\.gz\.age: .*\(8 attempts\)$' \
	"dead: the message names the part and the attempts"
is "$(cat "$DEAD/out" 2>&1)" "" "dead: no point id"
# Parts 2 and 3 both fail against the dead server; the first to use up its
# 8 attempts fails the backup, and the other's attempts still under way
# are cancelled.
N2=$(count 'partNumber=2&[^ ]* 0 ' "$DEAD/checker.log")
N3=$(count 'partNumber=3&[^ ]* 0 ' "$DEAD/checker.log")
diag "dead: attempts left without an answer: part 2 $N2, part 3 $N3"
num_ok "dead: one part tried 8 times, the other at most 8" \
	"($N2 == 8 && $N3 <= 8) || ($N3 == 8 && $N2 <= 8)"
is "$(count 'DELETE .*db\.sql\.gz\.age\?uploadId=.* 204 ok \(abort\)' "$DEAD/checker.log")" 1 "dead: the upload aborted"
is "$(cat "$DEAD/uploads" 2>&1)" "None" "dead: after a restart, no open multipart upload (awscli)"
is "$(cat "$DEAD/keys" 2>&1)" "" "dead: after a restart, no object: no manifest, no part (awscli)"

# --- the cleanup bounded (the background case) ---------------------------------------
bg_wait "$SLOW_PID" "$SLOW" 150
is "$(cat "$SLOW/status" 2>&1)" "done" "slow cleanup: the case ran to its end"
is "$(cat "$SLOW/rc" 2>&1)" 143 "slow cleanup: SIGTERM, the abort unanswered: exit 143"
diag "slow cleanup: chom-backup exited $(cat "$SLOW/seconds" 2>&1) s after SIGTERM"
num_ok "slow cleanup: within the cleanup's 30 s (under 40 s)" "$(cat "$SLOW/seconds" 2>/dev/null || echo 999) < 40"
num_ok "slow cleanup: the abort tried, 3 times at most" \
	"$(count 'DELETE /bkt/slow/h/.*\?uploadId=.* fault delay' "$SLOW/checker.log") >= 1 && $(count 'DELETE /bkt/slow/h/.*\?uploadId=.* fault delay' "$SLOW/checker.log") <= 3"

# --- a session token; credentials from profile files ------------------------------------
s3_stop
S3_SESSION_TOKEN=chom-s3-session-token
if ok "s3_start again, a session token required" s3_start; then
	export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT
	n0=$(count 'SignatureDoesNotMatch')
	run chom-backup --to "$U" --host tok -r "$R" --db --db-cmd "cat '$SMALL'"
	exits 0 "AWS_SESSION_TOKEN given: the backup works"
	TOK=$OUT
	run chom-restore --from "$U" --host tok -i "$KEY" --db --db-cmd "cat > '$T/db-tok.sql'"
	exits 0 "AWS_SESSION_TOKEN given: the restore works"
	ok "... the dump back (cmp)" cmp -s "$SMALL" "$T/db-tok.sql"
	run env -u AWS_SESSION_TOKEN chom-backup --to "$U" --host tok2 -r "$R" --db --db-cmd "cat '$SMALL'"
	exits 1 "no AWS_SESSION_TOKEN: exit 1"
	like "$ERR" 'InvalidAccessKeyId' "... the server's InvalidAccessKeyId"
	run env AWS_SESSION_TOKEN=other chom-restore --from "$U" --host tok --list
	exits 1 "another token: exit 1"
	like "$ERR" 'InvalidToken' "... InvalidToken"

	CR=$T/aws-credentials
	printf '[default]\naws_access_key_id = %s\naws_secret_access_key = not-the-secret\naws_session_token = %s\n\n[chomtest]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n' \
		"$S3_ACCESS_KEY" "$S3_SESSION_TOKEN" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_SESSION_TOKEN" >"$CR"
	NOENV=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE="$CR")
	run "${NOENV[@]}" AWS_PROFILE=chomtest chom-backup --to "$U" --host prof -r "$R" --db --db-cmd "cat '$SMALL'"
	exits 0 "profile chomtest of AWS_SHARED_CREDENTIALS_FILE (key, secret, token): the backup works"
	PP=$OUT
	run "${NOENV[@]}" AWS_PROFILE=chomtest chom-restore --from "$U" --host prof --list
	exits 0 "profile chomtest: chom-restore --list works"
	like "$OUT" "$PP" "... and lists the point"
	run "${NOENV[@]}" chom-restore --from "$U" --host prof --list
	exits 1 "no AWS_PROFILE: the [default] profile (a wrong secret) is used: exit 1"
	like "$ERR" 'SignatureDoesNotMatch' "... SignatureDoesNotMatch"
	run "${NOENV[@]}" AWS_PROFILE=nosuch chom-restore --from "$U" --host prof --list
	ok "a profile that is not in the file: fails" test "$RC" -ne 0
	like "$ERR" "no credentials.*nosuch" "... no credentials, naming the profile"
	mkdir -p "$T/home/.aws"
	sed -n '/^\[chomtest\]/,$p' "$CR" | sed 's/^\[chomtest\]/[default]/' >"$T/home/.aws/credentials"
	run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_SHARED_CREDENTIALS_FILE \
		HOME="$T/home" chom-restore --from "$U" --host prof --list
	exits 0 "~/.aws/credentials [default]: chom-restore --list works"
	like "$OUT" "$PP" "... and lists the point"
	is "$(($(count 'SignatureDoesNotMatch') - n0))" 1 "with the token: one signature refused, the [default] profile's"
fi

# --- virtual-hosted addressing ----------------------------------------------------
# CHOM_S3_ADDRESSING=virtual: the bucket in the host name of the endpoint
# (curl resolves *.localhost itself), the checker verifying the signature
# of "Host: bkt.s3.localhost:PORT" and a path without the bucket.
run env -u AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL="http://s3.localhost:$S3_PORT" CHOM_S3_ADDRESSING=virtual \
	chom-backup --to s3://bkt/vhost --host vh -r "$R" --db --db-cmd "cat '$SMALL'"
exits 0 "CHOM_S3_ADDRESSING=virtual: the backup works"
VP=$OUT
run env -u AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL="http://s3.localhost:$S3_PORT" CHOM_S3_ADDRESSING=virtual \
	chom-restore --from s3://bkt/vhost --host vh -i "$KEY" --db --db-cmd "cmp - '$SMALL'"
exits 0 "CHOM_S3_ADDRESSING=virtual: the restore gives the dump back (cmp)"
is "$(s3_aws s3 ls "s3://bkt/vhost/vh/$VP/" | awk '{print $4}' | sort | tr '\n' ' ')" \
	"db.sql.gz.age manifest.json " "virtual-hosted: the point is where path-style sees it"
run env CHOM_S3_ADDRESSING=sideways chom-backup --to s3://bkt/vhost --host vh -r "$R" --db --db-cmd "cat '$SMALL'"
usage_err "CHOM_S3_ADDRESSING=sideways" 'path or virtual'

# --- a region other than us-east-1 ------------------------------------------------
s3_stop
S3_SESSION_TOKEN= S3_REGION=eu-west-3
if ok "s3_start again, the region eu-west-3" s3_start; then
	export AWS_ENDPOINT_URL_S3=$S3_ENDPOINT
	run chom-backup --to s3://bkt/eu --host eu -r "$R" --db --db-cmd "cat '$SMALL'"
	exits 0 "AWS_REGION=eu-west-3: the backup works"
	run chom-restore --from s3://bkt/eu --host eu -i "$KEY" --db --db-cmd "cmp - '$SMALL'"
	exits 0 "AWS_REGION=eu-west-3: the restore gives the dump back (cmp)"
	run env -u AWS_REGION AWS_DEFAULT_REGION=eu-west-3 chom-restore --from s3://bkt/eu --host eu --list
	exits 0 "AWS_DEFAULT_REGION alone: --list works"
	run env AWS_REGION=us-east-1 chom-restore --from s3://bkt/eu --host eu --list
	exits 1 "AWS_REGION=us-east-1 for an eu-west-3 server: exit 1"
	like "$ERR" "400 AuthorizationHeaderMalformed: .*expecting 'eu-west-3'" "... the server's Code and Message"
	is "$(count ' 400 AuthorizationHeaderMalformed')" 1 "... one request, not retried"
fi

diag "runtime: $(($(date +%s) - T0)) s"
done_testing

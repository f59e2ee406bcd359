#!/usr/bin/env bash
# The S3 server of the tests (tests/lib/s3.sh, issue 6): s3rver behind the
# SigV4 checker (tests/s3/checker.js), judged by awscli and by curl's own
# SigV4 signer: a round trip (mb, cp of a small and of a multipart object,
# ls, a listing one key a page, cp back, compared; virtual-hosted
# addressing); a wrong secret, an unknown key, the wrong region, no
# signature, a body that does not match its x-amz-content-sha256 /
# Content-MD5 / x-amz-checksum-crc32, an aws-chunked body, a body without
# Content-Length: all refused with S3's error and nothing stored; 503 and
# 500 bursts through awscli's own retries; the fault kinds chom's tests
# use (lose, norange, shiftrange, huge, a 200 <Error>) and the most
# requests in flight; multipart abort and listing;
# s3rver killed (mid-upload too) and restarted with its data; a session
# token.
. "$(dirname "$0")/../lib/harness.sh"
. "$(dirname "$0")/../lib/s3.sh"

# count ERE: lines of the checker's log matching ERE.
count() { grep -cE -- "$1" "$(s3_log)"; }
# signed curl, with curl's own SigV4 signer (x-amz-content-sha256 is up
# to the caller: curl 7.88 does not send it).
scurl() {
	curl -sS --max-time 20 --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

if ! ok "s3_start: s3rver and the checker up, bucket created" s3_start bkt; then
	done_testing
	exit 1
fi
like "$S3_ENDPOINT" '^http://127\.0\.0\.1:[0-9]+$' "S3_ENDPOINT"
is "$AWS_ACCESS_KEY_ID:$AWS_REGION:$AWS_EC2_METADATA_DISABLED" \
	"$S3_ACCESS_KEY:us-east-1:true" "AWS variables exported"
ok "the checker is not s3rver" test "$S3_PORT" != "$S3RVER_PORT"
like "$(grep ' PUT /bkt ' "$(s3_log)")" ' 200 ok ' "bucket made through the checker"
ok "bucket is a directory of s3rver's" test -d "$S3_DIR/data/bkt"

# --- round trip with awscli ---------------------------------------------
run s3_aws s3 mb s3://second
exits 0 "s3 mb"
ok "... made the bucket" test -d "$S3_DIR/data/second"
head -c 300000 /dev/urandom >"$T/small"
head -c $((17 * 1024 * 1024 + 12345)) /dev/urandom >"$T/big"
KEY='dir/a b+c!(d)=e*f'
run s3_aws s3 cp --quiet "$T/small" "s3://bkt/$KEY"
exits 0 "cp up, key with characters to encode"
run s3_aws s3 cp --quiet "$T/big" s3://bkt/big
exits 0 "cp up, multipart (17 MiB)"
is "$(count 'PUT /bkt/big\?.*partNumber=[0-9].* 200 ok')" 3 "three parts, each through the checker"
run s3_aws s3 ls --recursive s3://bkt
exits 0 "ls"
like "$OUT" ' 300000 dir/a b\+c!\(d\)=e\*f' "ls: the small object, its size"
like "$OUT" " $((17 * 1024 * 1024 + 12345)) big" "ls: the big object, its size"
is "$(printf '%s\n' "$OUT" | wc -l)" 2 "ls: two objects, nothing else"
run s3_aws s3api list-objects-v2 --bucket bkt --page-size 1 --output json
is "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print("|".join(o["Key"] for o in json.load(sys.stdin)["Contents"]))')" \
	"big|dir/a b+c!(d)=e*f" "list one key a page: both keys, in order"
is "$(count 'list-type=2&max-keys=1&continuation-token=.* 200 ok')" 1 "... the second page through a continuation token"
run s3_aws s3 cp --quiet "s3://bkt/$KEY" "$T/small.back"
exits 0 "cp back small"
ok "small: same bytes" cmp -s "$T/small" "$T/small.back"
run s3_aws s3 cp --quiet s3://bkt/big "$T/big.back"
exits 0 "cp back big (ranged GETs)"
ok "big: same bytes" cmp -s "$T/big" "$T/big.back"
like "$(grep ' PUT /bkt/dir/' "$(s3_log)")" "PUT /bkt/dir/a%20b%2Bc%21%28d%29%3De%2Af 200 ok sha256=[0-9a-f]{12}" \
	"awscli signed the payload hash; the checker verified it"
run scurl -w '%{http_code}' -o "$T/big.vh" -H "x-amz-content-sha256: $EMPTY_SHA" "http://bkt.s3.localhost:$S3_PORT/big"
is "$OUT" 200 "virtual-hosted addressing (bkt.s3.localhost), curl's signer"
ok "... same bytes" cmp -s "$T/big" "$T/big.vh"
is "$(count ' (4|5)[0-9][0-9] ')" 0 "no request refused so far"

# --- refused requests: nothing reaches s3rver ---------------------------
run env AWS_SECRET_ACCESS_KEY=wrong-secret "$S3_AWS" --endpoint-url "$S3_ENDPOINT" s3 ls s3://bkt
ok "wrong secret: ls fails" test "$RC" -ne 0
like "$ERR" 'SignatureDoesNotMatch' "wrong secret: awscli got SignatureDoesNotMatch"
is "$(count 'GET /bkt\?list-type=2.* 403 SignatureDoesNotMatch')" 1 "wrong secret: the checker logged it"
like "$(grep -A3 '403 SignatureDoesNotMatch' "$(s3_log)")" 'canonical request:' \
	"wrong secret: canonical request logged"
run env AWS_SECRET_ACCESS_KEY=wrong-secret "$S3_AWS" --endpoint-url "$S3_ENDPOINT" s3 cp --quiet "$T/small" s3://bkt/denied
ok "wrong secret: cp up fails" test "$RC" -ne 0
ok "wrong secret: nothing stored" test ! -e "$S3_DIR/data/bkt/denied._S3rver_object"
run curl -sS -w '\n%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "AKIDUNKNOWN:$AWS_SECRET_ACCESS_KEY" \
	-H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/big"
like "$OUT" '<Code>InvalidAccessKeyId</Code>' "unknown access key: InvalidAccessKeyId"
like "$OUT" '403$' "... with 403"
run scurl -w '\n%{http_code}' --aws-sigv4 "aws:amz:eu-west-1:s3" -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/big"
like "$OUT" "<Code>AuthorizationHeaderMalformed</Code>.*region 'eu-west-1' is wrong" "wrong region: AuthorizationHeaderMalformed"
run scurl -w '%{http_code}' -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/big?x-id=1"
is "$OUT" 200 "curl's signer, a GET with a query: passes"
run curl -sS -w '\n%{http_code}' "$S3_ENDPOINT/bkt/big"
like "$OUT" '<Code>AccessDenied</Code>' "no Authorization: AccessDenied"
like "$OUT" '403$' "no Authorization: 403"

echo "tampered" >"$T/t"
run scurl -w '\n%{http_code}' -T "$T/t" -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/t1"
like "$OUT" '<Code>XAmzContentSHA256Mismatch</Code>' "body not matching x-amz-content-sha256: refused"
like "$OUT" '400$' "... with 400"
run scurl -w '\n%{http_code}' -T "$T/t" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	-H "Content-MD5: $(printf x | openssl md5 -binary | base64)" "$S3_ENDPOINT/bkt/t2"
like "$OUT" '<Code>BadDigest</Code>' "body not matching Content-MD5: BadDigest"
run scurl -w '\n%{http_code}' -T "$T/t" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	-H "x-amz-checksum-crc32: AAAAAA==" "$S3_ENDPOINT/bkt/t3"
like "$OUT" '<Code>BadDigest</Code>.*CRC32' "body not matching x-amz-checksum-crc32: BadDigest"
run scurl -w '\n%{http_code}' -T "$T/t" -H "x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD" "$S3_ENDPOINT/bkt/t4"
like "$OUT" '<Code>NotImplemented</Code>.*aws-chunked' "aws-chunked body: refused explicitly"
run scurl -w '\n%{http_code}' -T - -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/bkt/t6" <"$T/t"
like "$OUT" '<Code>MissingContentLength</Code>' "chunked body, no Content-Length: MissingContentLength"
like "$OUT" '^411$' "... with 411"
run scurl -w '\n%{http_code}' -T "$T/t" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	-H "x-amz-checksum-crc32: $(python3 -c 'import sys,zlib,base64; print(base64.b64encode(zlib.crc32(open(sys.argv[1],"rb").read()).to_bytes(4,"big")).decode())' "$T/t")" \
	"$S3_ENDPOINT/bkt/t5"
like "$OUT" '^200$' "curl's signer, UNSIGNED-PAYLOAD, right CRC32: stored"
ok "refused bodies: nothing stored" test ! -e "$S3_DIR/data/bkt/t1._S3rver_object" -a \
	! -e "$S3_DIR/data/bkt/t2._S3rver_object" -a ! -e "$S3_DIR/data/bkt/t3._S3rver_object" -a \
	! -e "$S3_DIR/data/bkt/t4._S3rver_object" -a ! -e "$S3_DIR/data/bkt/t6._S3rver_object"
is "$(find "$S3_DIR/tmp" -type f | wc -l)" 0 "no temporary file left"

# --- 503 bursts -----------------------------------------------------------
ok "s3_fail_next 2" s3_fail_next 2
n0=$(count ' 503 SlowDown \(fault\)')
run s3_aws s3 ls s3://bkt/big
exits 0 "2 x 503 SlowDown: awscli's retries get through"
like "$OUT" ' big$' "... and list the object"
is "$(($(count ' 503 SlowDown \(fault\)') - n0))" 2 "two answered 503 SlowDown"
like "$(grep 'GET /bkt?list-type' "$(s3_log)" | grep -v ' fault ' | tail -n 3 | awk '{print $5}' | tr '\n' ' ')" '^503 503 200 $' \
	"503, 503, then 200"
s3_fail_next 3 500
run s3_aws s3 ls s3://bkt/big
ok "3 x 500 with 3 attempts: awscli gives up" test "$RC" -ne 0
like "$ERR" 'InternalError' "... with the injected InternalError"
s3_fault kind=fail n=1 status=503 'match=^PUT /bkt/up\?.*partNumber=2'
run s3_aws s3 cp --quiet "$T/big" s3://bkt/up
exits 0 "503 on part 2 only: the upload retried it"
is "$(count 'PUT /bkt/up\?.*partNumber=2.* 503 SlowDown')" 1 "part 2 failed once"
is "$(s3_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["rules"])')" 0 "no fault left"

# --- multipart abort, listing (s3rver has neither: the checker does them)
run scurl -X POST -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/mp/x?uploads="
UP=$(printf '%s' "$OUT" | sed -n 's|.*<UploadId>\([0-9a-f]*\)</UploadId>.*|\1|p')
like "$UP" '^[0-9a-f]+$' "create multipart upload"
run scurl -w '%{http_code}' -o /dev/null -T "$T/t" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	"$S3_ENDPOINT/bkt/mp/x?partNumber=1&uploadId=$UP"
is "$OUT" 200 "upload part"
run scurl -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt?uploads="
like "$OUT" "<Upload><Key>mp/x</Key><UploadId>$UP</UploadId>" "list multipart uploads: the upload"
run s3_aws s3api list-parts --bucket bkt --key mp/x --upload-id "$UP" --query 'Parts[].[PartNumber,Size]' --output text
is "$OUT" "1	$(stat -c %s "$T/t")" "awscli list-parts: part 1, its size"
run s3_aws s3api abort-multipart-upload --bucket bkt --key mp/x --upload-id "$UP"
exits 0 "awscli abort-multipart-upload"
run s3_aws s3api list-multipart-uploads --bucket bkt --query 'Uploads[].Key' --output text
is "$OUT" "None" "awscli list-multipart-uploads: no upload left"
run scurl -w '\n%{http_code}' -T "$T/t" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	"$S3_ENDPOINT/bkt/mp/x?partNumber=2&uploadId=$UP"
like "$OUT" '<Code>NoSuchUpload</Code>' "upload part after abort: NoSuchUpload"

# --- s3rver killed and restarted ------------------------------------------
ok "s3_kill" s3_kill
run scurl -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/big"
is "$RC" 52 "s3rver down: the request gets no answer (curl: empty reply)"
like "$(tail -n 1 "$(s3_log)")" ' 0 upstream ECONNREFUSED: connection closed' "... the checker closed the connection"
ok "s3_restart" s3_restart
run s3_aws s3 cp --quiet "s3://bkt/$KEY" "$T/small.again"
exits 0 "after restart: cp back"
ok "after restart: same bytes" cmp -s "$T/small" "$T/small.again"

# Mid-upload: curl sends 3 MB at 1 MB/s; s3rver is killed once it has
# started writing. The old object under that key must survive, whole.
run scurl -w '%{http_code}' -T "$T/small" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/bkt/victim"
is "$OUT" 200 "victim: first version stored"
head -c 3000000 /dev/urandom >"$T/slow"
scurl -o /dev/null -w '%{http_code}' --limit-rate 1M -T "$T/slow" \
	-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/bkt/victim" >"$T/slow.out" 2>&1 &
cpid=$!
for ((i = 0; i < 100; i++)); do
	[ -n "$(find "$S3_DIR/tmp" -type f -size +100k 2>/dev/null)" ] && break
	sleep 0.1
done
ok "s3rver was writing the upload" test "$i" -lt 100
s3_kill
for ((i = 0; i < 100; i++)); do
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.1
done
kill "$cpid" 2>/dev/null
wait "$cpid"
ok "mid-upload kill: curl failed" test $? -ne 0
ok "s3_restart after mid-upload kill" s3_restart
is "$(find "$S3_DIR/tmp" -type f | wc -l)" 0 "the cut upload's temporary file is gone"
run s3_aws s3 cp --quiet s3://bkt/victim "$T/victim.back"
exits 0 "victim readable"
ok "victim: still the first version, whole" cmp -s "$T/small" "$T/victim.back"

# --- faults for chom's tests: lose, norange, shiftrange, huge, 200 <Error>; in flight
printf '0123456789abcdefghij' >"$T/r"
s3_fault kind=lose n=1 'match=^PUT /bkt/lost$'
run scurl -w '%{http_code}' -o /dev/null -T "$T/r" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3_ENDPOINT/bkt/lost"
ok "lose: no answer (curl fails)" test "$RC" -ne 0
like "$(grep ' PUT /bkt/lost ' "$(s3_log)" | tail -n 1)" ' 0 fault lose: s3rver answered 200' "lose: logged"
run s3_aws s3 cp --quiet s3://bkt/lost "$T/lost.back"
ok "lose: ... yet the object was stored" cmp -s "$T/r" "$T/lost.back"
s3_fault kind=norange n=1 'match=^GET /bkt/lost$'
run scurl -w ' %{http_code}' -H 'Range: bytes=10-' -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/lost"
is "$OUT" "0123456789abcdefghij 200" "norange: the Range ignored, 200 and the whole object"
s3_fault kind=shiftrange bytes=5 n=1 'match=^GET /bkt/lost$'
run scurl -w ' %{http_code}' -H 'Range: bytes=10-' -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/lost"
is "$OUT" "fghij 206" "shiftrange: a 206 from 5 bytes further on"
s3_fault kind=huge n=1 bytes=2000000 'match=^GET /bkt\?'
run scurl -o "$T/huge" -w '%{http_code} %{size_download}' -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt?list-type=2"
is "$OUT" "200 2000000" "huge: 200 and a body of 2,000,000 bytes"
like "$(head -c 200 "$T/huge")" '<ListBucketResult>' "huge: ... an XML document"
s3_fault kind=fail n=1 status=200 code=InternalError 'message=we tried' 'match=^GET /bkt/lost$'
run scurl -w ' %{http_code}' -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/lost"
like "$OUT" '<Code>InternalError</Code><Message>we tried</Message>.* 200$' "fail status=200: an <Error> body answered 200"
s3_inflight_reset '^GET /bkt/lost$'
s3_fault kind=delay ms=1000 n=2 'match=^GET /bkt/lost$'
scurl -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/lost" &
g1=$!
scurl -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/lost" &
g2=$!
wait "$g1" "$g2"
run scurl -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/"
is "$(s3_stat max_inflight)" 2 "max_inflight: two matching GETs at once; the listing does not count"
s3_inflight_reset
is "$(s3_stat max_inflight)" 0 "max_inflight: reset"

# --- session token ------------------------------------------------------------
s3_stop
S3_SESSION_TOKEN=chom-session-token
if ok "s3_start with a session token" s3_start; then
	run s3_aws s3 ls s3://bkt/big
	exits 0 "awscli with AWS_SESSION_TOKEN: ls works, data kept"
	like "$OUT" ' big$' "... and lists the object"
	run scurl -w '\n%{http_code}' -H "x-amz-content-sha256: $EMPTY_SHA" "$S3_ENDPOINT/bkt/big"
	like "$OUT" '<Code>InvalidAccessKeyId</Code>.*security-token is missing' "token missing: InvalidAccessKeyId"
	run scurl -w '\n%{http_code}' -H "x-amz-content-sha256: $EMPTY_SHA" -H "x-amz-security-token: other" "$S3_ENDPOINT/bkt/big"
	like "$OUT" '<Code>InvalidToken</Code>' "wrong token: InvalidToken"
	run scurl -w '%{http_code}' -o /dev/null -H "x-amz-content-sha256: $EMPTY_SHA" \
		-H "x-amz-security-token: $S3_SESSION_TOKEN" "$S3_ENDPOINT/bkt/big"
	is "$OUT" 200 "curl's signer with the token: passes"
fi

done_testing

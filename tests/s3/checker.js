'use strict';
// The SigV4 checker in front of s3rver, for chom's tests (started by
// tests/lib/s3.sh).
//
//   node checker.js --port N --upstream N --access-key ID --secret-key KEY
//                   [--session-token TOKEN] [--region us-east-1]
//                   [--store DIR] [--min-part-size BYTES]
//                   [--control-port N] [--ready FILE]
//
// Every request on 127.0.0.1:PORT must carry a header signature
// (Authorization: AWS4-HMAC-SHA256 ...) that the official signer,
// @aws-sdk/signature-v4, computes again from the request as received;
// otherwise the answer is an S3 XML error (403 SignatureDoesNotMatch,
// InvalidAccessKeyId, AccessDenied, RequestTimeTooSkewed, ...) and s3rver
// never sees the request. A body whose x-amz-content-sha256 is a hex
// SHA-256, or that comes with Content-MD5 or x-amz-checksum-{crc32,
// crc32c,sha1,sha256}, must match it (400 XAmzContentSHA256Mismatch /
// BadDigest; s3rver's side of the request is then cut off, so it stores
// nothing). aws-chunked bodies (STREAMING-*) and presigned URLs are
// refused explicitly: s3rver cannot decode the one, and chom does not use
// the other; so is a body without Content-Length (411, as on S3). Verified requests are passed on unchanged to s3rver on
// 127.0.0.1:UPSTREAM, and its answer back.
//
// With --store (s3rver's directory) the checker also does what s3rver
// lacks for multipart uploads, reading and changing s3rver's files:
// AbortMultipartUpload, ListMultipartUploads and ListParts; UploadPart to
// an unknown upload id is 404 NoSuchUpload; CompleteMultipartUpload
// checks the list as S3 does (InvalidPart, InvalidPartOrder,
// EntityTooSmall under --min-part-size, default 5 MiB).
//
// Faults, for tests of retries, are set through the control port
// (127.0.0.1 only; 0 = any free port, written to --ready):
//   POST /fail?n=N[&status=503][&code=SlowDown][&match=RE][&after=K]
//        the next N matching verified requests are answered with STATUS
//        and an S3 error CODE (503 SlowDown by default)
//   POST /fault?kind=fail|reset|cut|delay|lose|norange|shiftrange|huge
//        &n=N[&match=RE][&after=K][&status=S&code=C&message=M][&bytes=B]
//        [&ms=MS]
//        fail: answered STATUS with an S3 error CODE and MESSAGE (STATUS
//        200 too: CompleteMultipartUpload's failure after its 200);
//        reset: the connection is closed at once, no answer;
//        cut: B bytes of the body reach s3rver, then both connections
//        are closed (an upload cut midway); on a request without a body
//        (GET), B bytes of the answer's body reach the client, then the
//        connection is closed (a download cut midway); delay: MS
//        milliseconds before the request is passed on; lose: the request
//        is passed on and done by s3rver, its answer dropped and the
//        connection closed (an answer lost: the client cannot tell);
//        norange: passed on without its Range header (a server that
//        ignores Range: 200 and the whole object), and with B, its answer
//        cut after B bytes; shiftrange: its Range made to start B bytes
//        later (a 206 from another byte than asked); huge: answered 200
//        with an XML body of B bytes (default 1.5 MiB) of nothing
//   POST /clear   drops the faults not yet used
//   GET /stats    counters as JSON, with "inflight" (requests under way:
//        from their arrival to their answer's end) and "max_inflight"
//        (the most at once since the last reset)
//   POST /inflight?[match=RE]
//        resets max_inflight; with RE only the requests that match count
// RE is matched against "METHOD /path?query" as received; the first K
// matching requests are let through first. A request uses one fault at
// most, the first rule that matches.
//
// One line per request on stdout: time, request number, method and URL,
// status (0: the connection was closed without an answer), error code or
// "ok", x-amz-content-sha256 (shortened), the other body checksums the
// request came with ("sums=md5,crc32") and its Range header
// ("range=bytes=100-"); a signature mismatch is followed
// by the canonical request and string to sign computed here, indented. A
// fault is logged when it starts ("C000012 PUT /b/k?... fault delay").

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { pipeline, Transform } = require('stream');
const { SignatureV4 } = require('@aws-sdk/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

// --- options -------------------------------------------------------------
const opt = {
	region: 'us-east-1',
	'control-port': '0',
	'min-part-size': String(5 * 1024 * 1024),
	'access-key': process.env.CHECKER_ACCESS_KEY,
	'secret-key': process.env.CHECKER_SECRET_KEY,
	'session-token': process.env.CHECKER_SESSION_TOKEN,
};
for (let i = 2; i < process.argv.length; i++) {
	const m = /^--([a-z-]+)$/.exec(process.argv[i]);
	if (!m || i + 1 >= process.argv.length) {
		console.error(`checker.js: bad argument '${process.argv[i]}'`);
		process.exit(2);
	}
	opt[m[1]] = process.argv[++i];
}
for (const k of ['port', 'upstream', 'access-key', 'secret-key'])
	if (!opt[k]) {
		console.error(`checker.js: --${k} is required`);
		process.exit(2);
	}
const REGION = opt.region;
const KEYS = new Map([[opt['access-key'], opt['secret-key']]]);
const TOKEN = opt['session-token'] || '';
const STORE = opt.store || '';
const MIN_PART = Number(opt['min-part-size']);
const SKEW_MS = 15 * 60 * 1000;

// --- small helpers -------------------------------------------------------
let reqCount = 0;
const stats = { requests: 0, verified: 0, forwarded: 0, injected: 0, errors: {},
	inflight: 0, max_inflight: 0 };
let inflightMatch = null;

function log(line) {
	process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}
function xmlEscape(s) {
	return String(s).replace(/[<>&]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]);
}

class S3Error extends Error {
	constructor(status, code, message, extra) {
		super(message);
		this.status = status;
		this.code = code;
		this.extra = extra || {};
	}
}

// Percent-decodes a URL component to bytes; a malformed escape throws.
function pctDecode(s, plusIsSpace) {
	const out = [];
	for (let i = 0; i < s.length; i++) {
		const c = s[i];
		if (c === '%') {
			const h = s.slice(i + 1, i + 3);
			if (!/^[0-9A-Fa-f]{2}$/.test(h))
				throw new S3Error(400, 'InvalidURI', "Couldn't parse the specified URI.");
			out.push(parseInt(h, 16));
			i += 2;
		} else if (c === '+' && plusIsSpace) {
			out.push(0x20);
		} else {
			for (const b of Buffer.from(c, 'utf8')) out.push(b);
		}
	}
	return Buffer.from(out);
}
// S3's canonical URI: every byte but the unreserved ones and '/' encoded,
// once, with upper-case hex.
function uriEncodePath(buf) {
	let s = '';
	for (const b of buf) {
		const c = String.fromCharCode(b);
		s += /[A-Za-z0-9\-_.~/]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
	}
	return s;
}

// --- CRC-32 and CRC-32C (node 18 has no zlib.crc32) ----------------------
function crcTable(poly) {
	const t = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
		t[n] = c >>> 0;
	}
	return t;
}
function makeCrc(poly) {
	const table = crcTable(poly);
	return () => {
		let crc = 0xffffffff;
		return {
			update(buf) {
				for (let i = 0; i < buf.length; i++)
					crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
			},
			digest() {
				const out = Buffer.alloc(4);
				out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
				return out;
			},
		};
	};
}
const HASHERS = {
	'x-amz-checksum-crc32': ['CRC32', makeCrc(0xedb88320)],
	'x-amz-checksum-crc32c': ['CRC32C', makeCrc(0x82f63b78)],
	'x-amz-checksum-sha1': ['SHA1', () => crypto.createHash('sha1')],
	'x-amz-checksum-sha256': ['SHA256', () => crypto.createHash('sha256')],
};

// --- the request as received ----------------------------------------------
function headerValues(req, name) {
	const v = [];
	for (let i = 0; i < req.rawHeaders.length; i += 2)
		if (req.rawHeaders[i].toLowerCase() === name) v.push(req.rawHeaders[i + 1]);
	return v;
}
function parseTarget(req) {
	const url = req.url;
	if (!url.startsWith('/'))
		throw new S3Error(400, 'InvalidURI', "Couldn't parse the specified URI.");
	const q = url.indexOf('?');
	const rawPath = q < 0 ? url : url.slice(0, q);
	const rawQuery = q < 0 ? '' : url.slice(q + 1);
	const pathBytes = pctDecode(rawPath, false);
	const query = {};
	for (const piece of rawQuery.split('&')) {
		if (piece === '') continue;
		const e = piece.indexOf('=');
		const k = pctDecode(e < 0 ? piece : piece.slice(0, e), true).toString('utf8');
		const v = e < 0 ? '' : pctDecode(piece.slice(e + 1), true).toString('utf8');
		if (k in query) query[k] = [].concat(query[k], v);
		else query[k] = v;
	}
	// Bucket and key: BUCKET.s3.localhost is virtual-hosted, anything
	// else path-style.
	const host = (req.headers.host || '').replace(/:\d+$/, '');
	const vh = /^(.+)\.s3\.localhost$/i.exec(host);
	const p = pathBytes.toString('utf8');
	let bucket, key;
	if (vh) {
		bucket = vh[1];
		key = p.slice(1);
	} else {
		const s = p.slice(1);
		const slash = s.indexOf('/');
		bucket = slash < 0 ? s : s.slice(0, slash);
		key = slash < 0 ? '' : s.slice(slash + 1);
	}
	return { canonicalPath: uriEncodePath(pathBytes), query, bucket, key, rawQuery };
}

function parseAuthorization(value) {
	const m = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(value);
	if (!m) {
		if (/^AWS\s/.test(value))
			throw new S3Error(400, 'InvalidArgument',
				'checker: only Signature Version 4 (AWS4-HMAC-SHA256) is accepted');
		throw new S3Error(400, 'InvalidArgument', 'Unsupported Authorization Type');
	}
	const parts = {};
	for (const comp of m[1].split(',')) {
		const t = comp.trim();
		const e = t.indexOf('=');
		if (e < 0) continue;
		parts[t.slice(0, e)] = t.slice(e + 1);
	}
	for (const k of ['Credential', 'SignedHeaders', 'Signature'])
		if (!parts[k])
			throw new S3Error(400, 'AuthorizationHeaderMalformed',
				`The authorization header is malformed; missing ${k}.`);
	const cred = parts.Credential.split('/');
	if (cred.length !== 5)
		throw new S3Error(400, 'AuthorizationHeaderMalformed',
			`The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`);
	return {
		accessKey: cred[0],
		date: cred[1],
		region: cred[2],
		service: cred[3],
		terminator: cred[4],
		signedHeaders: parts.SignedHeaders.split(';'),
		signature: parts.Signature,
	};
}

function parseAmzDate(s) {
	const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
	if (!m) return null;
	const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
	return isNaN(d) ? null : d;
}

// Checks the signature; returns the payload hash the client declared.
async function verify(req, target, diag) {
	if ('X-Amz-Signature' in target.query || 'X-Amz-Algorithm' in target.query)
		throw new S3Error(403, 'AccessDenied',
			'checker: presigned (query string) authentication is not supported here');
	const auth = headerValues(req, 'authorization');
	if (auth.length === 0)
		throw new S3Error(403, 'AccessDenied',
			'Anonymous access is refused: the request has no Authorization header');
	if (auth.length > 1)
		throw new S3Error(400, 'InvalidArgument', 'More than one Authorization header');
	const a = parseAuthorization(auth[0]);
	const secret = KEYS.get(a.accessKey);
	if (secret === undefined)
		throw new S3Error(403, 'InvalidAccessKeyId',
			'The AWS Access Key Id you provided does not exist in our records.',
			{ AWSAccessKeyId: a.accessKey });
	const tokens = headerValues(req, 'x-amz-security-token');
	if (TOKEN && tokens.length === 0)
		throw new S3Error(403, 'InvalidAccessKeyId',
			'The AWS Access Key Id you provided does not exist in our records ' +
			'(it is a temporary key: x-amz-security-token is missing).',
			{ AWSAccessKeyId: a.accessKey });
	if (tokens.length > 0 && tokens.join(',') !== TOKEN)
		throw new S3Error(403, 'InvalidToken',
			'The provided token is malformed or otherwise invalid.');
	if (a.service !== 's3' || a.terminator !== 'aws4_request')
		throw new S3Error(400, 'AuthorizationHeaderMalformed',
			`The authorization header is malformed; incorrect service "${a.service}". This endpoint belongs to "s3".`);
	if (a.region !== REGION)
		throw new S3Error(400, 'AuthorizationHeaderMalformed',
			`The authorization header is malformed; the region '${a.region}' is wrong; expecting '${REGION}'`,
			{ Region: REGION });
	const amzDate = headerValues(req, 'x-amz-date');
	const when = parseAmzDate(amzDate.length === 1 ? amzDate[0] : '');
	if (!when)
		throw new S3Error(403, 'AccessDenied',
			'AWS authentication requires a valid Date or x-amz-date header (checker: x-amz-date, as YYYYMMDDTHHMMSSZ)');
	if (a.date !== amzDate[0].slice(0, 8))
		throw new S3Error(400, 'AuthorizationHeaderMalformed',
			`The authorization header is malformed; Invalid credential date "${a.date}". This date is not the same as X-Amz-Date: "${amzDate[0].slice(0, 8)}".`);
	if (Math.abs(Date.now() - when.getTime()) > SKEW_MS)
		throw new S3Error(403, 'RequestTimeTooSkewed',
			'The difference between the request time and the current time is too large.',
			{ RequestTime: amzDate[0], ServerTime: new Date().toISOString() });
	const sha = headerValues(req, 'x-amz-content-sha256');
	if (sha.length !== 1)
		throw new S3Error(400, 'InvalidRequest',
			'Missing required header for this request: x-amz-content-sha256');
	const payloadHash = sha[0];
	if (/^STREAMING-/.test(payloadHash))
		throw new S3Error(501, 'NotImplemented',
			`checker: ${payloadHash} (aws-chunked) bodies are not supported: s3rver stores them undecoded; send UNSIGNED-PAYLOAD or the hex SHA-256`);
	if (payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payloadHash))
		throw new S3Error(400, 'InvalidArgument',
			'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.',
			{ ArgumentName: 'x-amz-content-sha256', ArgumentValue: payloadHash });

	// Every x-amz-* header must be signed, and host too.
	const signedSet = new Set(a.signedHeaders);
	const notSigned = [];
	for (let i = 0; i < req.rawHeaders.length; i += 2) {
		const n = req.rawHeaders[i].toLowerCase();
		if (n.startsWith('x-amz-') && !signedSet.has(n) && !notSigned.includes(n))
			notSigned.push(n);
	}
	if (!signedSet.has('host')) notSigned.unshift('host');
	if (notSigned.length)
		throw new S3Error(403, 'AccessDenied',
			'There were headers present in the request which were not signed',
			{ HeadersNotSigned: notSigned.join(', ') });
	if (signedSet.has('date'))
		throw new S3Error(403, 'AccessDenied',
			'checker: a signed Date header is not supported (sign x-amz-date)');

	// The request for the signer: exactly the signed headers, each with
	// its values as received, in order, joined by commas.
	const headers = {};
	for (const n of a.signedHeaders) {
		const v = headerValues(req, n);
		if (v.length === 0)
			throw new S3Error(403, 'SignatureDoesNotMatch',
				`The request signature we calculated does not match the signature you provided (checker: signed header '${n}' is not in the request).`,
				{ AWSAccessKeyId: a.accessKey, SignatureProvided: a.signature });
		headers[n] = v.map(x => x.trim()).join(',');
	}
	const signer = new SignatureV4({
		credentials: { accessKeyId: a.accessKey, secretAccessKey: secret, sessionToken: TOKEN || undefined },
		region: REGION,
		service: 's3',
		sha256: Sha256,
		// S3: the path is neither normalized nor encoded twice.
		uriEscapePath: false,
		// The payload hash is the x-amz-content-sha256 header, as signed.
		applyChecksum: false,
	});
	const toSign = {
		method: req.method,
		protocol: 'http:',
		hostname: (req.headers.host || '').replace(/:\d+$/, ''),
		path: target.canonicalPath,
		query: target.query,
		headers,
	};
	const signed = await signer.sign(toSign, {
		signingDate: when,
		signableHeaders: signedSet,
	});
	const sig = /Signature=([0-9a-f]+)/.exec(signed.headers.authorization)[1];
	if (sig !== a.signature) {
		// The canonical request and string to sign, as S3 puts them in its
		// error, for the log and the client.
		const canonicalHeaders = {};
		for (const n of Object.keys(headers).sort())
			canonicalHeaders[n] = signed.headers[n].trim().replace(/\s+/g, ' ');
		const creq = signer.createCanonicalRequest(
			{ ...toSign, headers: signed.headers }, canonicalHeaders, payloadHash);
		const sts = await signer.createStringToSign(
			amzDate[0], `${a.date}/${REGION}/s3/aws4_request`, creq);
		diag.push(...('canonical request:\n' + creq + '\nstring to sign:\n' + sts).split('\n'));
		throw new S3Error(403, 'SignatureDoesNotMatch',
			'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
			{ AWSAccessKeyId: a.accessKey, StringToSign: sts, SignatureProvided: a.signature, CanonicalRequest: creq });
	}
	return payloadHash;
}

// --- body checks ------------------------------------------------------------
// A Transform that passes the body on and, at its end, fails with an
// S3Error if it does not match what the headers declared.
function bodyChecker(req, payloadHash) {
	const checks = [];
	if (payloadHash !== 'UNSIGNED-PAYLOAD')
		checks.push({
			h: crypto.createHash('sha256'), want: payloadHash, enc: 'hex',
			err: () => new S3Error(400, 'XAmzContentSHA256Mismatch',
				"The provided 'x-amz-content-sha256' header does not match what was computed."),
		});
	const md5 = headerValues(req, 'content-md5');
	if (md5.length) {
		const b = Buffer.from(md5[0], 'base64');
		if (b.length !== 16 || b.toString('base64') !== md5[0])
			throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
		checks.push({
			h: crypto.createHash('md5'), want: md5[0], enc: 'base64',
			err: () => new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.'),
		});
	}
	for (let i = 0; i < req.rawHeaders.length; i += 2) {
		const n = req.rawHeaders[i].toLowerCase();
		if (!n.startsWith('x-amz-checksum-') || n === 'x-amz-checksum-type' ||
			n === 'x-amz-checksum-algorithm' || n === 'x-amz-checksum-mode')
			continue;
		const hz = HASHERS[n];
		if (!hz)
			throw new S3Error(501, 'NotImplemented', `checker: ${n} is not verified here`);
		const want = req.rawHeaders[i + 1].trim();
		checks.push({
			h: hz[1](), want, enc: 'base64',
			err: () => new S3Error(400, 'BadDigest', `The ${hz[0]} you specified did not match the calculated checksum.`),
		});
	}
	// The last chunk is held back until the body has been checked: with
	// all of Content-Length received, s3rver would store the object before
	// the connection to it could be cut.
	let size = 0;
	let held = null;
	return new Transform({
		transform(chunk, enc, cb) {
			size += chunk.length;
			for (const c of checks) c.h.update(chunk);
			const out = held;
			held = chunk;
			cb(null, out);
		},
		flush(cb) {
			this.bodySize = size;
			for (const c of checks) {
				const got = Buffer.from(c.h.digest()).toString(c.enc);
				if (got !== c.want) {
					const e = c.err();
					e.extra = { ...e.extra, Computed: got, Provided: c.want };
					return cb(e);
				}
			}
			cb(null, held);
		},
	});
}

// --- faults ---------------------------------------------------------------
let rules = [];
function takeFault(line) {
	for (const r of rules) {
		if (r.match && !r.match.test(line)) continue;
		if (r.after > 0) {
			r.after--;
			continue;
		}
		r.n--;
		if (r.n <= 0) rules = rules.filter(x => x !== r);
		return r;
	}
	return null;
}
const FAULT_CODES = {
	503: ['SlowDown', 'Please reduce your request rate.'],
	500: ['InternalError', 'We encountered an internal error. Please try again.'],
	429: ['SlowDown', 'Please reduce your request rate.'],
	400: ['RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period.'],
};

// --- what s3rver lacks for multipart uploads --------------------------------
function uploadsDir(bucket) {
	return path.join(STORE, bucket, '._S3rver_uploads');
}
function bucketExists(bucket) {
	try {
		return bucket !== '' && !bucket.includes('/') && !bucket.startsWith('.') &&
			fs.statSync(path.join(STORE, bucket)).isDirectory();
	} catch (e) {
		return false;
	}
}
// The upload's directory if UPLOADID is an upload of BUCKET/KEY, else
// throws NoSuchUpload (NoSuchBucket first).
function uploadOf(bucket, key, uploadId) {
	if (!bucketExists(bucket))
		throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
	const dir = path.join(uploadsDir(bucket), String(uploadId));
	let k = null;
	if (/^[0-9a-f]+$/.test(String(uploadId))) {
		try {
			k = fs.readFileSync(path.join(dir, 'key'), 'utf8');
		} catch (e) { /* none */ }
	}
	if (k !== key)
		throw new S3Error(404, 'NoSuchUpload',
			'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
			{ UploadId: uploadId });
	return dir;
}
function partsOf(dir) {
	const parts = [];
	for (const name of fs.readdirSync(dir)) {
		if (!/^[1-9][0-9]*$/.test(name)) continue;
		const st = fs.statSync(path.join(dir, name));
		parts.push({ number: Number(name), size: st.size, mtime: st.mtime, file: path.join(dir, name) });
	}
	return parts.sort((x, y) => x.number - y.number);
}
function md5File(file) {
	return new Promise((resolve, reject) => {
		const h = crypto.createHash('md5');
		fs.createReadStream(file)
			.on('error', reject)
			.on('data', d => h.update(d))
			.on('end', () => resolve(h.digest('hex')));
	});
}
function xmlDoc(root, inner) {
	return '<?xml version="1.0" encoding="UTF-8"?>\n' +
		`<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}</${root}>`;
}
const OWNER = '<ID>123456789000</ID><DisplayName>S3rver</DisplayName>';

function listUploads(t) {
	if (!bucketExists(t.bucket))
		throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: t.bucket });
	const prefix = typeof t.query.prefix === 'string' ? t.query.prefix : '';
	const ups = [];
	let names = [];
	try {
		names = fs.readdirSync(uploadsDir(t.bucket));
	} catch (e) { /* none yet */ }
	for (const id of names) {
		try {
			const kf = path.join(uploadsDir(t.bucket), id, 'key');
			const key = fs.readFileSync(kf, 'utf8');
			if (key.startsWith(prefix)) ups.push({ key, id, at: fs.statSync(kf).mtime });
		} catch (e) { /* gone meanwhile */ }
	}
	ups.sort((x, y) => Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)) || (x.at - y.at));
	let inner = `<Bucket>${xmlEscape(t.bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
		`<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>` +
		`<Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>`;
	for (const u of ups)
		inner += `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId>` +
			`<Initiator>${OWNER}</Initiator><Owner>${OWNER}</Owner>` +
			`<StorageClass>STANDARD</StorageClass><Initiated>${u.at.toISOString()}</Initiated></Upload>`;
	return xmlDoc('ListMultipartUploadsResult', inner);
}

async function listParts(t) {
	const dir = uploadOf(t.bucket, t.key, t.query.uploadId);
	let inner = `<Bucket>${xmlEscape(t.bucket)}</Bucket><Key>${xmlEscape(t.key)}</Key>` +
		`<UploadId>${xmlEscape(t.query.uploadId)}</UploadId><Initiator>${OWNER}</Initiator>` +
		`<Owner>${OWNER}</Owner><StorageClass>STANDARD</StorageClass>` +
		`<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>0</NextPartNumberMarker>` +
		`<MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>`;
	for (const p of partsOf(dir))
		inner += `<Part><PartNumber>${p.number}</PartNumber><LastModified>${p.mtime.toISOString()}</LastModified>` +
			`<ETag>"${await md5File(p.file)}"</ETag><Size>${p.size}</Size></Part>`;
	return xmlDoc('ListPartsResult', inner);
}

// Checks a CompleteMultipartUpload body against the parts on disk.
async function checkComplete(t, body) {
	const dir = uploadOf(t.bucket, t.key, t.query.uploadId);
	const xml = body.toString('utf8');
	if (!/<CompleteMultipartUpload[\s>]/.test(xml))
		throw new S3Error(400, 'MalformedXML',
			'The XML you provided was not well-formed or did not validate against our published schema.');
	const listed = [];
	const re = /<Part>([\s\S]*?)<\/Part>/g;
	let m;
	while ((m = re.exec(xml))) {
		const num = /<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1]);
		const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(m[1]);
		if (!num || !etag)
			throw new S3Error(400, 'MalformedXML',
				'The XML you provided was not well-formed or did not validate against our published schema.');
		listed.push({ number: Number(num[1]), etag: etag[1].replace(/&quot;|"/g, '').trim() });
	}
	if (listed.length === 0)
		throw new S3Error(400, 'MalformedXML',
			'The XML you provided was not well-formed or did not validate against our published schema.');
	const onDisk = new Map(partsOf(dir).map(p => [p.number, p]));
	for (let i = 0; i < listed.length; i++) {
		const l = listed[i];
		if (i > 0 && l.number <= listed[i - 1].number)
			throw new S3Error(400, 'InvalidPartOrder',
				'The list of parts was not in ascending order. Parts must be ordered by part number.',
				{ UploadId: t.query.uploadId });
		const p = onDisk.get(l.number);
		const md5 = p ? await md5File(p.file) : null;
		if (!p || md5 !== l.etag)
			throw new S3Error(400, 'InvalidPart',
				"One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
				{ UploadId: t.query.uploadId, PartNumber: l.number, ETag: l.etag });
		if (i < listed.length - 1 && p.size < MIN_PART)
			throw new S3Error(400, 'EntityTooSmall',
				'Your proposed upload is smaller than the minimum allowed object size.',
				{ ProposedSize: p.size, MinSizeAllowed: MIN_PART, PartNumber: l.number, ETag: l.etag });
	}
}

// --- answering ----------------------------------------------------------------
function sendError(req, res, e, id) {
	stats.errors[e.code] = (stats.errors[e.code] || 0) + 1;
	if (res.headersSent || res.destroyed) {
		res.destroy();
		return;
	}
	let extra = '';
	for (const [k, v] of Object.entries(e.extra || {}))
		extra += `<${k}>${xmlEscape(v)}</${k}>`;
	const body = req.method === 'HEAD' ? '' :
		'<?xml version="1.0" encoding="UTF-8"?>\n' +
		`<Error><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message>${extra}` +
		`<Resource>${xmlEscape(req.url.split('?')[0])}</Resource><RequestId>${id}</RequestId></Error>`;
	const headers = {
		'Content-Type': 'application/xml',
		'Content-Length': Buffer.byteLength(body),
		'x-amz-request-id': id,
	};
	// A body not read yet is not waited for.
	if (!req.complete) headers.Connection = 'close';
	res.writeHead(e.status, headers);
	res.end(body);
}
function sendXml(res, status, xml, id) {
	res.writeHead(status, {
		'Content-Type': 'application/xml',
		'Content-Length': Buffer.byteLength(xml),
		'x-amz-request-id': id,
	});
	res.end(xml);
}

const HOP = new Set(['connection', 'keep-alive', 'expect', 'transfer-encoding', 'te',
	'upgrade', 'proxy-connection', 'proxy-authorization', 'trailer']);

// Passes the request on to s3rver; BODY is a Buffer already read, or null
// to stream REQ through CHECKER.
function forward(req, res, id, body, checker, fault, done) {
	const headers = {};
	for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
	if (body) headers['content-length'] = String(body.length);
	// s3rver checks no signature: the header can change after ours.
	if (fault && fault.kind === 'norange') delete headers.range;
	if (fault && fault.kind === 'shiftrange' && /^bytes=\d+-/.test(headers.range || ''))
		headers.range = headers.range.replace(/^bytes=(\d+)/, (m, a) => `bytes=${Number(a) + fault.bytes}`);
	const up = http.request({
		host: '127.0.0.1',
		port: Number(opt.upstream),
		method: req.method,
		path: req.url,
		headers,
		agent: false,
	});
	let finished = false;
	const finish = (status, what) => {
		if (finished) return;
		finished = true;
		done(status, what);
	};
	// A cut of a request without a body (GET) cuts the answer instead.
	const cutAnswer = fault && ((fault.kind === 'cut' && !hasBody(req)) ||
		(fault.kind === 'norange' && fault.bytes > 0));
	up.on('response', ur => {
		if (fault && fault.kind === 'lose') {
			ur.resume();
			ur.on('end', () => {
				req.socket.destroy();
				finish(0, `fault lose: s3rver answered ${ur.statusCode}, the answer dropped`);
			});
			return;
		}
		const h = {};
		for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k)) h[k] = v;
		res.writeHead(ur.statusCode, h);
		if (cutAnswer) {
			// B bytes of the answer's body, written out, then the
			// connection closed: the client sees a short body.
			let left = fault.bytes;
			ur.on('data', chunk => {
				if (left <= 0) return;
				const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
				left -= piece.length;
				const last = left <= 0;
				res.write(piece, () => {
					if (!last) return;
					ur.destroy();
					res.socket.destroy();
					finish(ur.statusCode, `fault cut after ${fault.bytes} bytes of the answer`);
				});
			});
			ur.on('end', () => {
				if (left > 0) res.end(() => finish(ur.statusCode, 'ok, shorter than the cut'));
			});
			return;
		}
		pipeline(ur, res, err => {
			if (err) res.destroy();
			finish(ur.statusCode, err ? 'ok, answer cut: ' + err.message : 'ok');
		});
	});
	up.on('error', err => {
		if (finished) return;
		if (err instanceof S3Error) return;
		// s3rver down or killed: the client sees what it would see of a
		// dead server, a connection closed without an answer.
		req.socket.destroy();
		finish(0, `upstream ${err.code || err.message}: connection closed`);
	});
	if (body) {
		up.end(body);
		return;
	}
	if (res.expectContinue) res.writeContinue();
	const stages = [req, checker];
	if (fault && fault.kind === 'cut' && !cutAnswer) {
		let left = fault.bytes;
		stages.push(new Transform({
			transform(chunk, enc, cb) {
				if (left <= 0) return cb();
				const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
				left -= piece.length;
				cb(null, piece);
				if (left <= 0)
					setImmediate(() => {
						up.destroy();
						req.socket.destroy();
						finish(0, `fault cut after ${fault.bytes} bytes`);
					});
			},
		}));
	}
	stages.push(up);
	pipeline(...stages, err => {
		if (!err || finished) return;
		up.destroy();
		if (err instanceof S3Error) {
			sendError(req, res, err, id);
			finish(err.status, err.code);
		} else {
			req.socket.destroy();
			finish(0, `request body: ${err.code || err.message}`);
		}
	});
}

// Whether REQ comes with a body to pass on.
function hasBody(req) {
	return Number(req.headers['content-length'] || 0) > 0 || !!req.headers['transfer-encoding'];
}

function readBody(req, res, limit) {
	return new Promise((resolve, reject) => {
		if (res.expectContinue) res.writeContinue();
		const chunks = [];
		let n = 0;
		req.on('data', c => {
			n += c.length;
			if (n > limit) {
				reject(new S3Error(400, 'EntityTooLarge', 'checker: request body too large'));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on('end', () => resolve(Buffer.concat(chunks)));
		req.on('error', reject);
	});
}
function checkBuffer(req, payloadHash, body) {
	return new Promise((resolve, reject) => {
		const c = bodyChecker(req, payloadHash);
		c.on('error', reject);
		c.on('finish', resolve);
		c.resume();
		c.end(body);
	});
}

async function handle(req, res) {
	const id = `C${String(++reqCount).padStart(6, '0')}`;
	stats.requests++;
	const line = `${req.method} ${req.url}`;
	if (!inflightMatch || inflightMatch.test(line)) {
		stats.inflight++;
		if (stats.inflight > stats.max_inflight) stats.max_inflight = stats.inflight;
		let counted = true;
		const leave = () => {
			if (counted) stats.inflight--;
			counted = false;
		};
		res.on('close', leave);
		res.on('finish', leave);
	}
	const diag = [];
	const sha = (req.headers['x-amz-content-sha256'] || '-').replace(/^([0-9a-f]{12})[0-9a-f]{52}$/, '$1...');
	const sums = Object.keys(req.headers)
		.filter(h => h === 'content-md5' || (h.startsWith('x-amz-checksum-') && HASHERS[h]))
		.map(h => h.replace(/^x-amz-checksum-|^content-/, '')).join(',');
	const done = (status, what) => {
		log(`${id} ${line} ${status} ${what} sha256=${sha}${sums ? ' sums=' + sums : ''}` +
			(req.headers.range ? ` range=${req.headers.range}` : ''));
		for (const d of diag) process.stdout.write(`    ${d}\n`);
	};
	req.on('error', () => { /* handled where the body is read */ });
	try {
		const t = parseTarget(req);
		const payloadHash = await verify(req, t, diag);
		stats.verified++;
		const fault = takeFault(line);
		if (fault) {
			stats.injected++;
			log(`${id} ${line} fault ${fault.kind}` +
				(fault.kind === 'delay' ? ` ${fault.ms}ms` : fault.kind === 'cut' ? ` after ${fault.bytes} bytes` :
					fault.kind === 'shiftrange' ? ` by ${fault.bytes} bytes` : ''));
			if (fault.kind === 'delay') {
				await new Promise(r => setTimeout(r, fault.ms));
			} else if (fault.kind === 'reset') {
				req.socket.destroy();
				return done(0, 'fault reset');
			} else if (fault.kind === 'fail') {
				const [code, msg] = FAULT_CODES[fault.status] || ['InjectedFault', 'checker: injected fault'];
				const e = new S3Error(fault.status, fault.code || code, fault.message || msg);
				sendError(req, res, e, id);
				return done(e.status, `${e.code} (fault)`);
			} else if (fault.kind === 'huge') {
				const n = fault.bytes || 3 << 19;
				const head = '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>';
				const tail = '</ListBucketResult>';
				sendXml(res, 200, head + ' '.repeat(Math.max(0, n - head.length - tail.length)) + tail, id);
				return done(200, `fault huge ${n} bytes`);
			}
		}
		// S3 takes no body of unknown length (aws-chunked aside).
		if (req.headers['transfer-encoding'] && !req.headers['content-length'])
			throw new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
		const q = t.query;
		if (STORE && t.key !== '' && 'uploadId' in q) {
			if (req.method === 'DELETE') {
				const dir = uploadOf(t.bucket, t.key, q.uploadId);
				fs.rmSync(dir, { recursive: true, force: true });
				res.writeHead(204, { 'x-amz-request-id': id });
				res.end();
				return done(204, 'ok (abort)');
			}
			if (req.method === 'GET') {
				sendXml(res, 200, await listParts(t), id);
				return done(200, 'ok (list parts)');
			}
			if (req.method === 'PUT') {
				const pn = q.partNumber;
				if (typeof pn !== 'string' || !/^[0-9]+$/.test(pn) || +pn < 1 || +pn > 10000)
					throw new S3Error(400, 'InvalidArgument',
						'Part number must be an integer between 1 and 10000, inclusive',
						{ ArgumentName: 'partNumber', ArgumentValue: String(pn) });
				uploadOf(t.bucket, t.key, q.uploadId);
			}
			if (req.method === 'POST') {
				const body = await readBody(req, res, 4 << 20);
				await checkBuffer(req, payloadHash, body);
				await checkComplete(t, body);
				return forward(req, res, id, body, null, fault, done);
			}
		}
		if (STORE && t.key === '' && 'uploads' in q && req.method === 'GET') {
			sendXml(res, 200, listUploads(t), id);
			return done(200, 'ok (list uploads)');
		}
		stats.forwarded++;
		forward(req, res, id, null, bodyChecker(req, payloadHash), fault, done);
	} catch (e) {
		if (!(e instanceof S3Error)) {
			log(`${id} checker error: ${e.stack || e}`);
			e = new S3Error(500, 'InternalError', `checker: ${e.message}`);
		}
		sendError(req, res, e, id);
		done(e.status, e.code + (e.extra && e.extra.HeadersNotSigned ? ` (${e.extra.HeadersNotSigned})` : '') +
			(e.code !== 'SignatureDoesNotMatch' && e.message.startsWith('checker:') ? ` ${e.message}` : ''));
	}
}

// --- control ----------------------------------------------------------------
function control(req, res) {
	const u = new URL(req.url, 'http://127.0.0.1');
	const p = u.searchParams;
	const reply = (status, obj) => {
		const b = JSON.stringify(obj) + '\n';
		res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(b) });
		res.end(b);
	};
	req.resume();
	try {
		if (req.method === 'GET' && u.pathname === '/stats')
			return reply(200, { ...stats, rules: rules.length });
		if (req.method === 'POST' && u.pathname === '/inflight') {
			inflightMatch = p.get('match') ? new RegExp(p.get('match')) : null;
			stats.max_inflight = 0;
			return reply(200, { ok: true });
		}
		if (req.method === 'POST' && u.pathname === '/clear') {
			rules = [];
			return reply(200, { ok: true });
		}
		if (req.method === 'POST' && (u.pathname === '/fail' || u.pathname === '/fault')) {
			const kind = u.pathname === '/fail' ? 'fail' : p.get('kind') || 'fail';
			if (!['fail', 'reset', 'cut', 'delay', 'lose', 'norange', 'shiftrange', 'huge'].includes(kind))
				throw new Error(`unknown kind ${kind}`);
			const num = (name, def) => {
				const v = p.get(name);
				if (v === null || v === '') return def;
				if (!/^[0-9]+$/.test(v)) throw new Error(`${name}: not a number: ${v}`);
				return Number(v);
			};
			const r = {
				kind,
				n: num('n', 1),
				after: num('after', 0),
				status: num('status', 503),
				code: p.get('code') || '',
				message: p.get('message') || '',
				bytes: num('bytes', 0),
				ms: num('ms', 1000),
				match: p.get('match') ? new RegExp(p.get('match')) : null,
			};
			if (r.n < 1) throw new Error('n must be at least 1');
			rules.push(r);
			log(`control: ${u.pathname}${u.search}`);
			return reply(200, { ok: true, rules: rules.length });
		}
		reply(404, { error: 'unknown control request' });
	} catch (e) {
		reply(400, { error: e.message });
	}
}

// --- start --------------------------------------------------------------------
process.on('uncaughtException', err => {
	if (err.code === 'EADDRINUSE') {
		console.error(`checker.js: ${err.message}`);
		process.exit(3);
	}
	log(`checker uncaught: ${err.stack || err}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

const server = http.createServer((req, res) => handle(req, res));
server.on('checkContinue', (req, res) => {
	res.expectContinue = true;
	handle(req, res);
});
server.keepAliveTimeout = 30000;
const ctl = http.createServer(control);
server.listen(Number(opt.port), '127.0.0.1', () => {
	ctl.listen(Number(opt['control-port']), '127.0.0.1', () => {
		const ports = `${server.address().port} ${ctl.address().port}`;
		log(`checker: listening on 127.0.0.1 ports ${ports} (S3, control), s3rver on ${opt.upstream}`);
		if (opt.ready) {
			fs.writeFileSync(opt.ready + '.tmp', ports + '\n');
			fs.renameSync(opt.ready + '.tmp', opt.ready);
		}
	});
});

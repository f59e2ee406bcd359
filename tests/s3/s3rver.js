'use strict';
// s3rver for chom's tests, started by tests/lib/s3.sh behind checker.js.
//
//   node s3rver.js --directory DIR --tmp DIR --port N
//                  --access-key ID --secret-key KEY
//
// s3rver itself is unchanged; this file only sets it up and mends four
// things in which it is unlike S3, since the tests rely on them:
//  - s3rver knows only the access key S3RVER: the tests' key is added (it
//    does not check V4 signatures; the checker in front of it does);
//  - an object or a part is written in place, so an upload cut short
//    (the client gone, s3rver killed) leaves a truncated object that GET
//    serves: here it is written to a file in --tmp and renamed into place
//    only once its whole body came, and a body cut short is an error;
//  - a listing walks directories in readdir order, so keys come unsorted
//    and max-keys/continuation pages miss keys: here keys come in UTF-8
//    byte order, as S3 lists them;
//  - a listing cut by max-keys answers 500 on OpenSSL 3 (see below).
// Requests reach it only through the checker.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { pipeline, Transform } = require('stream');

function args(argv) {
	const o = {};
	for (let i = 2; i < argv.length; i++) {
		const m = /^--([a-z-]+)$/.exec(argv[i]);
		if (!m || i + 1 >= argv.length) {
			console.error(`s3rver.js: bad argument '${argv[i]}'`);
			process.exit(2);
		}
		o[m[1]] = argv[++i];
	}
	for (const k of ['directory', 'tmp', 'port', 'access-key', 'secret-key'])
		if (!o[k]) {
			console.error(`s3rver.js: --${k} is required`);
			process.exit(2);
		}
	return o;
}
const opt = args(process.argv);

// Sorted walk: patched before the store module takes its copy of walk.
const utils = require('s3rver/lib/utils');
const OBJECT_SUFFIX = '._S3rver_object';
utils.walk = function* walk(dir, recurseFilter) {
	const files = [];
	const visit = d => {
		for (const name of fs.readdirSync(d)) {
			const p = path.posix.join(d, name);
			let st;
			try {
				st = fs.statSync(p);
			} catch (e) {
				if (e.code === 'ENOENT') continue;
				throw e;
			}
			if (!st.isDirectory()) files.push(p);
			else if (!recurseFilter || recurseFilter(p)) visit(p);
		}
	};
	visit(dir);
	const sortKey = p =>
		Buffer.from(p.endsWith(OBJECT_SUFFIX) ? p.slice(0, -OBJECT_SUFFIX.length) : p);
	const keyed = files.map(p => [sortKey(p), p]);
	keyed.sort((a, b) => Buffer.compare(a[0], b[0]));
	for (const [, p] of keyed) yield p;
};

// ListObjectsV2's continuation tokens are DES-encrypted by s3rver, and
// OpenSSL 3 has no DES (ERR_OSSL_EVP_UNSUPPORTED: every truncated listing
// answered 500). The token only has to be opaque to clients and to come
// back as it went: 'des' becomes the identity here.
const realCipheriv = crypto.createCipheriv;
const realDecipheriv = crypto.createDecipheriv;
const identity = () => ({
	update: (data, enc) => (Buffer.isBuffer(data) ? data : Buffer.from(data, enc)),
	final: () => Buffer.alloc(0),
});
crypto.createCipheriv = (alg, ...rest) =>
	alg === 'des' ? identity() : realCipheriv(alg, ...rest);
crypto.createDecipheriv = (alg, ...rest) =>
	alg === 'des' ? identity() : realDecipheriv(alg, ...rest);

const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

AWSAccount.DUMMY_ACCOUNT.createKeyPair(opt['access-key'], opt['secret-key']);

fs.mkdirSync(opt.directory, { recursive: true });
fs.mkdirSync(opt.tmp, { recursive: true });
// What a killed s3rver was writing is of no use.
for (const name of fs.readdirSync(opt.tmp))
	fs.rmSync(path.join(opt.tmp, name), { force: true, recursive: true });

// Writes CONTENT (a Buffer or a stream) to DEST through a temporary file:
// DEST appears only whole. Resolves [size, md5hex].
function writeWhole(content, dest) {
	const tmp = path.join(
		opt.tmp,
		`w-${process.pid}-${crypto.randomBytes(8).toString('hex')}`,
	);
	return new Promise((resolve, reject) => {
		const md5 = crypto.createHash('md5');
		let size = 0;
		const done = err => {
			if (err) {
				fs.rm(tmp, { force: true }, () => reject(err));
				return;
			}
			fs.mkdir(path.dirname(dest), { recursive: true }, e1 => {
				if (e1) return done(e1);
				fs.rename(tmp, dest, e2 => {
					if (e2) return done(e2);
					resolve([size, md5.digest('hex')]);
				});
			});
		};
		const src = Buffer.isBuffer(content)
			? require('stream').Readable.from([content])
			: content;
		// A request body that ends before its Content-Length, or whose
		// connection drops, makes pipeline fail (premature close).
		pipeline(
			src,
			new Transform({
				transform(chunk, enc, cb) {
					md5.update(chunk);
					size += chunk.length;
					cb(null, chunk);
				},
			}),
			fs.createWriteStream(tmp),
			done,
		);
	});
}

FilesystemStore.prototype.putObject = async function putObject(object) {
	const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
	const [size, md5] = await writeWhole(object.content, objectPath);
	await this.putMetadata(object.bucket, object.key, object.metadata, md5);
	return { size, md5 };
};

FilesystemStore.prototype.putPart = async function putPart(
	bucket,
	uploadId,
	partNumber,
	content,
) {
	const partPath = path.join(
		this.getResourcePath(bucket, undefined, 'uploads'),
		uploadId,
		partNumber.toString(),
	);
	const [size, md5] = await writeWhole(content, partPath);
	await fs.promises.writeFile(`${partPath}.md5`, md5);
	return { size, md5 };
};

const server = new S3rver({
	address: '127.0.0.1',
	port: Number(opt.port),
	directory: opt.directory,
	silent: false,
	// Virtual-hosted addressing: BUCKET.s3.localhost:PORT (libcurl resolves
	// *.localhost to the loopback); path-style for 127.0.0.1 and localhost.
	serviceEndpoint: 'localhost',
	vhostBuckets: false,
});
process.on('uncaughtException', err => {
	console.error(`s3rver.js: ${err.stack || err}`);
	process.exit(err.code === 'EADDRINUSE' ? 3 : 1);
});
server.run().then(
	addr => console.log(`s3rver.js: listening on ${addr.address}:${addr.port}`),
	err => {
		console.error(`s3rver.js: ${err.stack || err}`);
		process.exit(err.code === 'EADDRINUSE' ? 3 : 1);
	},
);
for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => process.exit(0));

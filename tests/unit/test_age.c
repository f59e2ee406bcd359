/*
 * lib/age.c: every C2SP CCTV age vector, round trips, tampering, and the
 * real age command in both directions.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "age.h"
#include "exitcode.h"
#include "testutil.h"

extern char **environ;

#define MIB (1024 * 1024)

/* ---- a sink that keeps what it is given ---- */

struct mem {
	struct chom_sink sink;
	unsigned char *p;
	size_t len, cap;
	int closed, freed;
};

static int
mem_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;

	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		unsigned char *p;

		while (cap < m->len + len)
			cap *= 2;
		p = realloc(m->p, cap);
		if (!p)
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static int
mem_close(struct chom_sink *s, struct chom_err *e)
{
	((struct mem *)s)->closed = 1;
	return 0;
}

/* The test owns the struct: the chain only marks it released. */
static void
mem_free(struct chom_sink *s)
{
	((struct mem *)s)->freed = 1;
}

static void
mem_init(struct mem *m)
{
	memset(m, 0, sizeof(*m));
	m->sink.write = mem_write;
	m->sink.close = mem_close;
	m->sink.free = mem_free;
}

static void
mem_done(struct mem *m)
{
	free(m->p);
	m->p = NULL;
	m->len = m->cap = 0;
}

/* Pushes in through a new sink of the kind given, piece bytes a write. */
static int
run_sink(int encrypt, const unsigned char *in, size_t len,
	 const struct chom_age_keys *k, size_t piece, struct mem *out,
	 struct chom_err *e)
{
	struct chom_sink *s;
	size_t off;
	int rc = 0;

	mem_init(out);
	s = encrypt ? chom_age_encrypt_new(&out->sink, k, e)
		    : chom_age_decrypt_new(&out->sink, k, e);
	if (!s)
		return -1;
	for (off = 0; rc == 0 && off < len; off += piece)
		rc = chom_sink_write(s, in + off,
				     len - off < piece ? len - off : piece, e);
	if (rc == 0)
		rc = chom_sink_close(s, e);
	chom_sink_free(s);
	assert_true(out->freed);
	return rc;
}

static unsigned char *
random_bytes(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);

	assert_non_null(p);
	assert_int_equal(RAND_bytes(p, (int)n), 1);
	return p;
}

static void
sha256_hex(const unsigned char *p, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	int i;

	assert_int_equal(EVP_Digest(p, len, md, &n, EVP_sha256(), NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) &&
	    fread(p, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
		p[n] = 0;
	} else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

static void
write_file(const char *path, const void *p, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* ---- the outcome classes of the CCTV vectors ---- */

static const char *
classify(int rc, const struct chom_err *e)
{
	if (rc == 0)
		return "success";
	if (strncmp(e->msg, "malformed armor", 15) == 0)
		return "armor failure";
	if (strncmp(e->msg, "malformed header", 16) == 0)
		return "header failure";
	if (strcmp(e->msg, "header MAC mismatch") == 0)
		return "HMAC failure";
	if (strcmp(e->msg, "no identity matches any recipient stanza") == 0)
		return "no match";
	if (strncmp(e->msg, "payload chunk", 13) == 0 ||
	    strncmp(e->msg, "final payload chunk", 19) == 0 ||
	    strncmp(e->msg, "trailing data after", 19) == 0 ||
	    strcmp(e->msg, "file is truncated") == 0)
		return "payload failure";
	return "unclassified";
}

struct vec {
	char name[NAME_MAX + 64]; /* the TAP name, with a SKIP directive */
	char path[PATH_MAX + 2 * NAME_MAX];
	char expect[32];
	char payload[65];
	char *ident[8];
	int nident;
	char *pass[8];
	int npass;
	int compressed;
	const char *skip; /* the kind of key we do not implement */
};

static char cctv_dir[PATH_MAX + 64];
static const char *cctv_missing;
static struct vec *vecs;
static size_t nvecs;
static struct vec missing = { .skip = "missing" };

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static char *
header_value(char *line, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(line, key, n) != 0 || line[n] != ':' || line[n + 1] != ' ')
		return NULL;
	return line + n + 2;
}

/* Reads the key: value lines of one vector, up to its blank line. */
static void
load_vector(struct vec *v)
{
	struct chom_age_keys *k = chom_age_keys_new();
	struct chom_err e;
	unsigned char *p;
	char *line, *next, *val;
	size_t len;
	int i;

	p = read_file(v->path, &len);
	if (!p) {
		v->skip = "unreadable";
		chom_age_keys_free(k);
		return;
	}
	for (line = (char *)p; line && *line != '\n'; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if ((val = header_value(line, "expect")))
			snprintf(v->expect, sizeof(v->expect), "%s", val);
		else if ((val = header_value(line, "payload")))
			snprintf(v->payload, sizeof(v->payload), "%s", val);
		else if ((val = header_value(line, "identity")) &&
			 v->nident < 8)
			v->ident[v->nident++] = strdup(val);
		else if ((val = header_value(line, "passphrase")) &&
			 v->npass < 8)
			v->pass[v->npass++] = strdup(val);
		else if ((val = header_value(line, "compressed")))
			v->compressed = strcmp(val, "zlib") == 0;
	}
	for (i = 0; i < v->nident && !v->skip; i++)
		if (chom_age_add_identity(k, v->ident[i], &e) < 0)
			v->skip =
			    strncmp(v->ident[i], "AGE-SECRET-KEY-PQ-", 18) == 0
				? "post-quantum identity"
			    : strncmp(v->ident[i], "AGE-PLUGIN-", 11) == 0
				? "plugin identity"
				: "unsupported identity";
	if (v->skip)
		snprintf(v->name + strlen(v->name),
			 sizeof(v->name) - strlen(v->name), " # SKIP %s",
			 v->skip);
	chom_age_keys_free(k);
	free(p);
}

static void
load_vectors(void)
{
	struct dirent **ents;
	int n, i;

	tu_shared_testdata("age-cctv", cctv_dir, sizeof(cctv_dir));
	n = cctv_dir[0] ? scandir(cctv_dir, &ents, NULL, by_name) : -1;
	if (n < 0) {
		cctv_missing = cctv_dir[0] ? cctv_dir : "(no repository root)";
		return;
	}
	vecs = calloc((size_t)n, sizeof(*vecs));
	assert_non_null(vecs);
	for (i = 0; i < n; i++) {
		struct vec *v = &vecs[nvecs];

		if (ents[i]->d_name[0] != '.') {
			snprintf(v->name, sizeof(v->name), "cctv/%s",
				 ents[i]->d_name);
			snprintf(v->path, sizeof(v->path), "%s/%s", cctv_dir,
				 ents[i]->d_name);
			load_vector(v);
			nvecs++;
		}
		free(ents[i]);
	}
	free(ents);
}

/*
 * inflate from the shared object (libarchive and libcurl load it anyway),
 * so this test does not depend on zlib being among the linked libraries.
 */
static unsigned char *
inflate_all(const unsigned char *in, size_t len, size_t *outlen)
{
	static void *lib;
	int (*init)(z_streamp, const char *, int);
	int (*step)(z_streamp, int);
	int (*end)(z_streamp);
	z_stream z;
	unsigned char *out = NULL;
	size_t cap = 0;
	int r = Z_OK;

	if (!lib)
		lib = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
	assert_non_null(lib);
	*(void **)&init = dlsym(lib, "inflateInit_");
	*(void **)&step = dlsym(lib, "inflate");
	*(void **)&end = dlsym(lib, "inflateEnd");
	assert_true(init && step && end);
	memset(&z, 0, sizeof(z));
	assert_int_equal(init(&z, ZLIB_VERSION, (int)sizeof(z)), Z_OK);
	z.next_in = (unsigned char *)in;
	z.avail_in = (unsigned)len;
	while (r != Z_STREAM_END) {
		if (z.avail_out == 0) {
			size_t used = cap; /* all of it */
			unsigned char *more;

			cap = cap ? 2 * cap : MIB;
			more = realloc(out, cap);
			assert_non_null(more);
			out = more;
			z.next_out = out + used;
			z.avail_out = (unsigned)(cap - used);
		}
		r = step(&z, Z_NO_FLUSH);
		assert_true(r == Z_OK || r == Z_STREAM_END);
	}
	*outlen = z.total_out;
	end(&z);
	return out;
}

static void
test_vector(void **state)
{
	struct vec *v = *state;
	static const size_t pieces[] = { (size_t)-1, 4099, 1 };
	struct chom_age_keys *k;
	struct chom_err ke = { 0 };
	unsigned char *file, *body, *raw = NULL;
	size_t len, blen, i;
	int rc;

	if (v->skip)
		return;
	assert_true(v->expect[0]);
	file = read_file(v->path, &len);
	assert_non_null(file);
	body = memmem(file, len, "\n\n", 2);
	assert_non_null(body);
	body += 2;
	blen = len - (size_t)(body - file);
	if (v->compressed) {
		raw = inflate_all(body, blen, &blen);
		body = raw;
	}
	k = chom_age_keys_new();
	for (i = 0; i < (size_t)v->nident; i++)
		assert_int_equal(chom_age_add_identity(k, v->ident[i], &ke), 0);
	for (i = 0; i < (size_t)v->npass; i++)
		assert_int_equal(chom_age_add_passphrase(k, v->pass[i], 0, &ke),
				 0);
	/* A vector without keys fails before any key matters: any will do. */
	if (v->nident + v->npass == 0) {
		char sec[CHOM_AGE_SECRET_SIZE], rcp[CHOM_AGE_RECIPIENT_SIZE];

		assert_int_equal(
		    chom_age_keygen(sec, sizeof(sec), rcp, sizeof(rcp), &ke),
		    0);
		assert_int_equal(chom_age_add_identity(k, sec, &ke), 0);
	}
	/* Whole, in odd pieces, and byte by byte when small: one outcome. */
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct chom_err e = { 0 };
		struct mem out;
		const char *got;
		char hex[65];

		if (pieces[i] == 1 && blen > 16384)
			continue;
		rc = run_sink(0, body, blen, k, pieces[i], &out, &e);
		got = classify(rc, &e);
		sha256_hex(out.p, out.len, hex);
		if (strcmp(got, v->expect) != 0)
			TU_FAILF("%s: expected %s, got %s (%s)", v->name,
				 v->expect, got, rc ? e.msg : "no error");
		if (rc != 0 && e.code != CHOM_EXIT_FAIL)
			TU_FAILF("%s: exit code %d for \"%s\"", v->name, e.code,
				 e.msg);
		if (v->payload[0] && strcmp(hex, v->payload) != 0)
			TU_FAILF("%s: plaintext hash %s, expected %s (%zu "
				 "bytes released)",
				 v->name, hex, v->payload, out.len);
		if (!v->payload[0] && out.len != 0)
			TU_FAILF("%s: %zu bytes released on failure", v->name,
				 out.len);
		assert_int_equal(out.closed, rc == 0);
		mem_done(&out);
	}
	chom_age_keys_free(k);
	free(raw);
	free(file);
}

/* ---- keys ---- */

/* The example of the age specification. */
static const char spec_identity[] =
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EG"
    "AEX";
static const char spec_recipient[] =
    "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

static void
test_keys(void **state)
{
	char sec[CHOM_AGE_SECRET_SIZE], rcp[CHOM_AGE_RECIPIENT_SIZE];
	char rcp2[CHOM_AGE_RECIPIENT_SIZE], bad[128];
	struct chom_age_keys *k = chom_age_keys_new();
	struct chom_err e = { 0 };
	size_t i;

	assert_int_equal(
	    chom_age_recipient_of(spec_identity, rcp, sizeof(rcp), &e), 0);
	assert_string_equal(rcp, spec_recipient);
	/* Bech32 may be all lowercase too. */
	snprintf(bad, sizeof(bad), "%s", spec_identity);
	for (i = 0; bad[i]; i++)
		if (bad[i] >= 'A' && bad[i] <= 'Z')
			bad[i] = (char)(bad[i] - 'A' + 'a');
	assert_int_equal(chom_age_recipient_of(bad, rcp2, sizeof(rcp2), &e), 0);
	assert_string_equal(rcp2, spec_recipient);
	bad[0] = 'A'; /* mixed case */
	assert_int_equal(chom_age_add_identity(k, bad, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);

	assert_int_equal(
	    chom_age_keygen(sec, sizeof(sec), rcp, sizeof(rcp), &e), 0);
	assert_int_equal(strlen(sec), 74);
	assert_int_equal(strncmp(sec, "AGE-SECRET-KEY-1", 16), 0);
	assert_int_equal(strlen(rcp), 62);
	assert_int_equal(strncmp(rcp, "age1", 4), 0);
	assert_int_equal(chom_age_recipient_of(sec, rcp2, sizeof(rcp2), &e), 0);
	assert_string_equal(rcp, rcp2);
	assert_int_equal(chom_age_keygen(sec, 10, rcp, sizeof(rcp), &e), -1);

	assert_int_equal(chom_age_add_recipient(k, rcp, &e), 0);
	assert_int_equal(chom_age_add_identity(k, sec, &e), 0);
	/* A flipped checksum character, the wrong kind, junk. */
	snprintf(bad, sizeof(bad), "%s", rcp);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'q' ? 'p' : 'q';
	assert_int_equal(chom_age_add_recipient(k, bad, &e), -1);
	assert_non_null(strstr(e.msg, "checksum"));
	assert_int_equal(chom_age_add_recipient(k, sec, &e), -1);
	assert_int_equal(chom_age_add_identity(k, rcp, &e), -1);
	assert_null(strstr(e.msg, "age1")); /* never echoes a secret */
	assert_int_equal(chom_age_add_recipient(k, "age1", &e), -1);
	assert_int_equal(chom_age_add_recipient(k, "ssh-ed25519 AAAA", &e), -1);
	assert_int_equal(chom_age_add_passphrase(k, "", 0, &e), -1);
	assert_int_equal(chom_age_add_passphrase(k, "pw", 23, &e), -1);
	assert_int_equal(chom_age_add_passphrase(k, "pw", -1, &e), -1);
	chom_age_keys_free(k);
}

/* ---- round trips ---- */

static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, MIB };

static size_t
chunks_of(size_t n)
{
	return n == 0 ? 1 : (n + 65535) / 65536;
}

/* Encrypts each size to enc, decrypts with each of decs; same bytes back. */
static void
round_trips(const struct chom_age_keys *enc, struct chom_age_keys *const *decs,
	    size_t ndecs)
{
	size_t i, j;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *plain = random_bytes(sizes[i]);
		struct chom_err e = { 0 };
		struct mem ct, pt;
		unsigned char *body;
		size_t piece = i % 2 ? 1000 : (size_t)-1;

		assert_int_equal(
		    run_sink(1, plain, sizes[i], enc, piece, &ct, &e), 0);
		assert_true(ct.closed);
		/* The header, the nonce, then the chunks and their tags. */
		body = memmem(ct.p, ct.len, "\n--- ", 5);
		assert_non_null(body);
		body = memchr(body + 1, '\n', ct.len - (size_t)(body - ct.p));
		assert_non_null(body);
		assert_int_equal(ct.len - (size_t)(body + 1 - ct.p),
				 16 + sizes[i] + 16 * chunks_of(sizes[i]));
		for (j = 0; j < ndecs; j++) {
			assert_int_equal(run_sink(0, ct.p, ct.len, decs[j],
						  j % 2 ? 777 : (size_t)-1, &pt,
						  &e),
					 0);
			assert_int_equal(pt.len, sizes[i]);
			if (sizes[i])
				assert_memory_equal(pt.p, plain, sizes[i]);
			assert_true(pt.closed);
			mem_done(&pt);
		}
		mem_done(&ct);
		free(plain);
	}
}

static void
test_roundtrip_x25519(void **state)
{
	struct chom_age_keys *enc = chom_age_keys_new(), *decs[3];
	char sec[CHOM_AGE_SECRET_SIZE], rcp[CHOM_AGE_RECIPIENT_SIZE];
	struct chom_err e = { 0 };
	size_t i;

	for (i = 0; i < 3; i++) {
		decs[i] = chom_age_keys_new();
		assert_int_equal(
		    chom_age_keygen(sec, sizeof(sec), rcp, sizeof(rcp), &e), 0);
		assert_int_equal(chom_age_add_identity(decs[i], sec, &e), 0);
		assert_int_equal(chom_age_add_recipient(enc, rcp, &e), 0);
		if (i == 0)
			round_trips(enc, decs, 1);
	}
	round_trips(enc, decs, 3);
	for (i = 0; i < 3; i++)
		chom_age_keys_free(decs[i]);
	chom_age_keys_free(enc);
}

static void
test_roundtrip_scrypt(void **state)
{
	struct chom_age_keys *enc = chom_age_keys_new();
	struct chom_age_keys *dec = chom_age_keys_new();
	struct chom_age_keys *wrong = chom_age_keys_new();
	struct chom_err e = { 0 };
	struct mem ct, pt;

	assert_int_equal(chom_age_add_passphrase(enc, "correct horse", 10, &e),
			 0);
	assert_int_equal(chom_age_add_passphrase(dec, "correct horse", 0, &e),
			 0);
	round_trips(enc, &dec, 1);

	assert_int_equal(
	    run_sink(1, (const unsigned char *)"x", 1, enc, 1, &ct, &e), 0);
	assert_non_null(memmem(ct.p, ct.len, "\n-> scrypt ", 11));
	assert_non_null(memmem(ct.p, ct.len, " 10\n", 4));
	assert_int_equal(chom_age_add_passphrase(wrong, "battery", 0, &e), 0);
	assert_int_equal(run_sink(0, ct.p, ct.len, wrong, 100, &pt, &e), -1);
	assert_string_equal(e.msg, "no identity matches any recipient stanza");
	assert_int_equal(pt.len, 0);
	mem_done(&ct);
	chom_age_keys_free(enc);
	chom_age_keys_free(dec);
	chom_age_keys_free(wrong);
}

static void
test_passphrase_alone(void **state)
{
	struct chom_age_keys *k = chom_age_keys_new();
	struct chom_err e = { 0 };
	struct mem out;
	char sec[CHOM_AGE_SECRET_SIZE], rcp[CHOM_AGE_RECIPIENT_SIZE];

	mem_init(&out);
	assert_null(chom_age_encrypt_new(&out.sink, k, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_null(chom_age_decrypt_new(&out.sink, k, &e));
	assert_int_equal(
	    chom_age_keygen(sec, sizeof(sec), rcp, sizeof(rcp), &e), 0);
	assert_int_equal(chom_age_add_passphrase(k, "pw", 10, &e), 0);
	assert_int_equal(chom_age_add_recipient(k, rcp, &e), 0);
	assert_null(chom_age_encrypt_new(&out.sink, k, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "only recipient"));
	chom_age_keys_free(k);
	k = chom_age_keys_new();
	assert_int_equal(chom_age_add_passphrase(k, "pw", 10, &e), 0);
	assert_int_equal(chom_age_add_passphrase(k, "pw2", 10, &e), 0);
	assert_null(chom_age_encrypt_new(&out.sink, k, &e));
	assert_false(out.freed);
	chom_age_keys_free(k);
}

/* ---- damage ---- */

struct pair {
	struct chom_age_keys *enc, *dec;
};

static void
pair_new(struct pair *p)
{
	char sec[CHOM_AGE_SECRET_SIZE], rcp[CHOM_AGE_RECIPIENT_SIZE];
	struct chom_err e = { 0 };

	p->enc = chom_age_keys_new();
	p->dec = chom_age_keys_new();
	assert_int_equal(
	    chom_age_keygen(sec, sizeof(sec), rcp, sizeof(rcp), &e), 0);
	assert_int_equal(chom_age_add_recipient(p->enc, rcp, &e), 0);
	assert_int_equal(chom_age_add_identity(p->dec, sec, &e), 0);
}

static void
pair_free(struct pair *p)
{
	chom_age_keys_free(p->enc);
	chom_age_keys_free(p->dec);
}

/* Where the payload starts: after the MAC line and the 16-byte nonce. */
static size_t
payload_at(const struct mem *ct)
{
	unsigned char *mac = memmem(ct->p, ct->len, "\n--- ", 5);
	unsigned char *lf;

	assert_non_null(mac);
	lf = memchr(mac + 1, '\n', ct->len - (size_t)(mac + 1 - ct->p));
	assert_non_null(lf);
	return (size_t)(lf + 1 - ct->p) + 16;
}

/* Decrypting in must fail with msg, having released want bytes. */
static void
expect_failure(const struct pair *p, const unsigned char *in, size_t len,
	       const char *msg, size_t want)
{
	struct chom_err e = { 0 };
	struct mem pt;

	assert_int_equal(run_sink(0, in, len, p->dec, 5000, &pt, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (strcmp(e.msg, msg) != 0)
		TU_FAILF("expected \"%s\", got \"%s\"", msg, e.msg);
	assert_int_equal(pt.len, want);
	assert_false(pt.closed);
	mem_done(&pt);
}

static void
test_damage(void **state)
{
	size_t n = 200000, at;
	unsigned char *plain = random_bytes(n), *bad;
	struct chom_err e = { 0 };
	struct pair p, other;
	struct mem ct;
	unsigned char *mac;

	pair_new(&p);
	pair_new(&other);
	assert_int_equal(run_sink(1, plain, n, p.enc, 65536, &ct, &e), 0);
	at = payload_at(&ct);
	bad = malloc(ct.len);
	assert_non_null(bad);

	/* A character of the header MAC. */
	memcpy(bad, ct.p, ct.len);
	mac = memmem(bad, ct.len, "\n--- ", 5) + 10;
	*mac = *mac == 'A' ? 'B' : 'A';
	expect_failure(&p, bad, ct.len, "header MAC mismatch", 0);

	/* A byte of the second chunk: the first one was released. */
	memcpy(bad, ct.p, ct.len);
	bad[at + 65536 + 16 + 100] ^= 0x01;
	expect_failure(&p, bad, ct.len, "payload chunk 2 failed authentication",
		       65536);

	/* A byte of the last tag. */
	memcpy(bad, ct.p, ct.len);
	bad[ct.len - 1] ^= 0x80;
	expect_failure(&p, bad, ct.len, "payload chunk 4 failed authentication",
		       3 * 65536);

	/* Truncated at a chunk boundary, inside a chunk, and earlier. */
	expect_failure(&p, ct.p, at + 2 * (65536 + 16), "file is truncated",
		       2 * 65536);
	expect_failure(&p, ct.p, at + 65536 + 16 + 1000,
		       "payload chunk 2 failed authentication", 65536);
	expect_failure(&p, ct.p, at, "file is truncated", 0);
	expect_failure(&p, ct.p, at - 3,
		       "malformed header: the file ends before the payload "
		       "nonce (truncated)",
		       0);
	expect_failure(&p, ct.p, 30,
		       "malformed header: the file ends inside the header "
		       "(truncated)",
		       0);
	expect_failure(&p, ct.p, 0, "malformed header: the file is empty", 0);

	/* Data after the last chunk. */
	memcpy(bad, ct.p, ct.len);
	expect_failure(&p, bad, ct.len - 1,
		       "payload chunk 4 failed authentication", 3 * 65536);

	/* Somebody else's file. */
	expect_failure(&other, ct.p, ct.len,
		       "no identity matches any recipient stanza", 0);
	expect_failure(&p, (const unsigned char *)"GIF89a", 6,
		       "malformed armor: not an age file (no age header, no "
		       "armor BEGIN line)",
		       0);
	expect_failure(&p, (const unsigned char *)" \n\t\n", 4,
		       "malformed armor: no BEGIN line", 0);
	expect_failure(&p, (const unsigned char *)"age-encryption.org/v2\n", 22,
		       "malformed header: unsupported version \"age-"
		       "encryption.org/v2\"",
		       0);

	free(bad);
	mem_done(&ct);
	pair_free(&p);
	pair_free(&other);
	free(plain);
}

/* A full final chunk followed by more data: released, then refused. */
static void
test_trailing_after_full_chunk(void **state)
{
	unsigned char *plain = random_bytes(65536), *bad;
	struct chom_err e = { 0 };
	struct pair p;
	struct mem ct;

	pair_new(&p);
	assert_int_equal(run_sink(1, plain, 65536, p.enc, 65536, &ct, &e), 0);
	bad = malloc(ct.len + 1);
	assert_non_null(bad);
	memcpy(bad, ct.p, ct.len);
	bad[ct.len] = 'x';
	expect_failure(&p, bad, ct.len + 1,
		       "trailing data after the final payload chunk 1", 65536);
	free(bad);
	mem_done(&ct);
	pair_free(&p);
	free(plain);
}

/* ---- key files ---- */

struct fx {
	char dir[PATH_MAX];
	char a[PATH_MAX + 32], b[PATH_MAX + 32], c[PATH_MAX + 32];
	char log[PATH_MAX + 32];
};

static int
setup(void **state)
{
	struct fx *fx = TU_FIXTURE_NEW(struct fx, dir, "age");

	if (!fx)
		return -1;
	snprintf(fx->a, sizeof(fx->a), "%s/a", fx->dir);
	snprintf(fx->b, sizeof(fx->b), "%s/b", fx->dir);
	snprintf(fx->c, sizeof(fx->c), "%s/c", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	return tu_fixture_free(fx, fx->dir);
}

static void
test_key_files(void **state)
{
	struct fx *fx = *state;
	char s1[CHOM_AGE_SECRET_SIZE], r1[CHOM_AGE_RECIPIENT_SIZE];
	char s2[CHOM_AGE_SECRET_SIZE], r2[CHOM_AGE_RECIPIENT_SIZE];
	struct chom_age_keys *enc = chom_age_keys_new();
	struct chom_age_keys *dec = chom_age_keys_new();
	struct chom_err e = { 0 };
	char text[1024];
	struct mem ct, pt;

	assert_int_equal(chom_age_keygen(s1, sizeof(s1), r1, sizeof(r1), &e),
			 0);
	assert_int_equal(chom_age_keygen(s2, sizeof(s2), r2, sizeof(r2), &e),
			 0);
	snprintf(text, sizeof(text), "# backups\n\n  %s  \n# old\n%s\r\n", r1,
		 r2);
	tu_write(fx->a, text);
	assert_int_equal(chom_age_add_recipients_file(enc, fx->a, &e), 0);
	tu_write(fx->a, "# nothing\n\n");
	assert_int_equal(chom_age_add_recipients_file(enc, fx->a, &e), -1);
	assert_non_null(strstr(e.msg, "no recipient"));
	tu_write(fx->a, "# x\nage1bogus\n");
	assert_int_equal(chom_age_add_recipients_file(enc, fx->a, &e), -1);
	assert_non_null(strstr(e.msg, "line 2"));
	assert_int_equal(chom_age_add_recipients_file(enc, "/nonexistent", &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);

	/* age-keygen's layout, only for its owner. */
	snprintf(text, sizeof(text),
		 "# created: 2024-01-01T00:00:00Z\n# public key: %s\n%s\n", r2,
		 s2);
	write_file(fx->b, text, strlen(text), 0644);
	assert_int_equal(chom_age_add_identities_file(dec, fx->b, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "644"));
	assert_int_equal(chmod(fx->b, 0600), 0);
	assert_int_equal(chom_age_add_identities_file(dec, fx->b, &e), 0);
	write_file(fx->c, "# only a comment\n", 17, 0600);
	assert_int_equal(chom_age_add_identities_file(dec, fx->c, &e), -1);
	write_file(fx->c, "AGE-SECRET-KEY-1XYZ\n", 20, 0600);
	assert_int_equal(chom_age_add_identities_file(dec, fx->c, &e), -1);
	assert_non_null(strstr(e.msg, "line 1"));

	assert_int_equal(
	    run_sink(1, (const unsigned char *)"hello", 5, enc, 100, &ct, &e),
	    0);
	assert_int_equal(run_sink(0, ct.p, ct.len, dec, 100, &pt, &e), 0);
	assert_int_equal(pt.len, 5);
	assert_memory_equal(pt.p, "hello", 5);
	mem_done(&pt);
	mem_done(&ct);
	chom_age_keys_free(enc);
	chom_age_keys_free(dec);
}

/* ---- the age command ---- */

static int have_age;

static int
find_age(void)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX], *dir, *save = NULL, *copy;
	int found = 0;

	if (!path)
		return 0;
	copy = strdup(path);
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/age", dir);
		found = access(buf, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* Runs argv with its output in log; the exit status. */
static int
run(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log,
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
expect_run(char *const argv[], const char *log)
{
	char out[2048] = "";
	int rc = run(argv, log);

	if (rc != 0) {
		tu_read(log, out, sizeof(out));
		TU_FAILF("%s exited %d: %s", argv[0], rc, out);
	}
}

/*
 * Runs argv on a new pseudo-terminal and types pw at each passphrase
 * prompt: age reads passphrases from the terminal only.
 */
static int
run_pty(char *const argv[], const char *pw, char *log, size_t size)
{
	size_t len = 0;
	int master, st = 0, sent = 0;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	log[0] = '\0';
	for (;;) {
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		char buf[512], *s;
		ssize_t n;
		int prompts = 0;

		if (poll(&pfd, 1, 120000) <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(master, buf, sizeof(buf));
		if (n <= 0)
			break; /* EIO: the child has gone */
		if ((size_t)n > size - 1 - len)
			n = (ssize_t)(size - 1 - len);
		memcpy(log + len, buf, (size_t)n);
		len += (size_t)n;
		log[len] = '\0';
		for (s = log; (s = strstr(s, "passphrase")); s++)
			prompts++;
		for (; sent < prompts; sent++) {
			assert_int_equal(write(master, pw, strlen(pw)),
					 (ssize_t)strlen(pw));
			assert_int_equal(write(master, "\n", 1), 1);
		}
	}
	close(master);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Our decryption of path with k must give plain. */
static void
expect_we_decrypt(const char *path, const struct chom_age_keys *k,
		  const unsigned char *plain, size_t n)
{
	struct chom_err e = { 0 };
	unsigned char *ct;
	size_t len;
	struct mem pt;

	ct = read_file(path, &len);
	assert_non_null(ct);
	if (run_sink(0, ct, len, k, 10000, &pt, &e) != 0)
		TU_FAILF("decrypting %s: %s", path, e.msg);
	assert_int_equal(pt.len, n);
	assert_memory_equal(pt.p, plain, n);
	mem_done(&pt);
	free(ct);
}

static void
expect_file(const char *path, const unsigned char *plain, size_t n)
{
	size_t len = 0;
	unsigned char *p = read_file(path, &len);

	assert_non_null(p);
	assert_int_equal(len, n);
	assert_memory_equal(p, plain, n);
	free(p);
}

static void
test_age_cli_x25519(void **state)
{
	struct fx *fx = *state;
	char sec[CHOM_AGE_SECRET_SIZE], rcp[CHOM_AGE_RECIPIENT_SIZE];
	char key[PATH_MAX + 32], text[256], out[PATH_MAX + 32];
	char rcp2[CHOM_AGE_RECIPIENT_SIZE];
	size_t n = 3 * 65536 + 123;
	unsigned char *plain = random_bytes(n);
	struct chom_age_keys *enc = chom_age_keys_new();
	struct chom_age_keys *dec = chom_age_keys_new();
	struct chom_err e = { 0 };
	struct mem ct;

	if (!have_age)
		return;
	snprintf(key, sizeof(key), "%s/key.txt", fx->dir);
	snprintf(out, sizeof(out), "%s/out", fx->dir);
	assert_int_equal(
	    chom_age_keygen(sec, sizeof(sec), rcp, sizeof(rcp), &e), 0);
	snprintf(text, sizeof(text), "# public key: %s\n%s\n", rcp, sec);
	write_file(key, text, strlen(text), 0600);
	assert_int_equal(chom_age_add_recipient(enc, rcp, &e), 0);
	assert_int_equal(chom_age_add_identities_file(dec, key, &e), 0);
	write_file(fx->a, plain, n, 0600);

	/* Ours, then age -d. */
	assert_int_equal(run_sink(1, plain, n, enc, 4096, &ct, &e), 0);
	write_file(fx->b, ct.p, ct.len, 0600);
	mem_done(&ct);
	expect_run(
	    (char *const[]){ "age", "-d", "-i", key, "-o", out, fx->b, NULL },
	    fx->log);
	expect_file(out, plain, n);

	/* age -r, binary and armored, then ours. */
	expect_run(
	    (char *const[]){ "age", "-r", rcp, "-o", fx->c, fx->a, NULL },
	    fx->log);
	expect_we_decrypt(fx->c, dec, plain, n);
	expect_run(
	    (char *const[]){ "age", "-a", "-r", rcp, "-o", fx->c, fx->a, NULL },
	    fx->log);
	expect_we_decrypt(fx->c, dec, plain, n);

	/* An identity age-keygen made, read by ours. */
	unlink(key);
	expect_run((char *const[]){ "age-keygen", "-o", key, NULL }, fx->log);
	chom_age_keys_free(dec);
	dec = chom_age_keys_new();
	assert_int_equal(chom_age_add_identities_file(dec, key, &e), 0);
	unlink(out);
	expect_run((char *const[]){ "age-keygen", "-y", "-o", out, key, NULL },
		   fx->log);
	tu_read(out, rcp2, sizeof(rcp2));
	rcp2[strcspn(rcp2, "\n")] = '\0';
	expect_run(
	    (char *const[]){ "age", "-R", out, "-o", fx->c, fx->a, NULL },
	    fx->log);
	expect_we_decrypt(fx->c, dec, plain, n);

	chom_age_keys_free(enc);
	chom_age_keys_free(dec);
	free(plain);
}

static void
test_age_cli_scrypt(void **state)
{
	struct fx *fx = *state;
	const char *pw = "correct horse battery";
	char out[PATH_MAX + 32], log[8192];
	size_t n = 70000;
	unsigned char *plain = random_bytes(n);
	struct chom_age_keys *enc = chom_age_keys_new();
	struct chom_age_keys *dec = chom_age_keys_new();
	struct chom_err e = { 0 };
	struct mem ct;
	int rc;

	if (!have_age)
		return;
	snprintf(out, sizeof(out), "%s/out", fx->dir);
	assert_int_equal(chom_age_add_passphrase(enc, pw, 10, &e), 0);
	assert_int_equal(chom_age_add_passphrase(dec, pw, 0, &e), 0);
	write_file(fx->a, plain, n, 0600);

	/* Ours, then age -d typing the passphrase. */
	assert_int_equal(run_sink(1, plain, n, enc, 4096, &ct, &e), 0);
	write_file(fx->b, ct.p, ct.len, 0600);
	mem_done(&ct);
	rc = run_pty((char *const[]){ "age", "-d", "-o", out, fx->b, NULL }, pw,
		     log, sizeof(log));
	if (rc != 0)
		TU_FAILF("age -d exited %d: %s", rc, log);
	expect_file(out, plain, n);

	/* age -p (work factor 2^18), then ours. */
	rc = run_pty((char *const[]){ "age", "-p", "-o", fx->c, fx->a, NULL },
		     pw, log, sizeof(log));
	if (rc != 0)
		TU_FAILF("age -p exited %d: %s", rc, log);
	expect_we_decrypt(fx->c, dec, plain, n);

	chom_age_keys_free(enc);
	chom_age_keys_free(dec);
	free(plain);
}

#define T(f) cmocka_unit_test(f)
#define TF(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest fixed[] = {
		T(test_keys),
		T(test_roundtrip_x25519),
		T(test_roundtrip_scrypt),
		T(test_passphrase_alone),
		T(test_damage),
		T(test_trailing_after_full_chunk),
		TF(test_key_files),
		TF(test_age_cli_x25519),
		TF(test_age_cli_scrypt),
	};
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]), i, n, skipped = 0;
	struct CMUnitTest *tests;
	char pq[128] = "", other[128] = "";
	size_t npq = 0, nother = 0;
	int rc;

	load_vectors();
	have_age = find_age();
	tests = calloc(nfixed + nvecs + 1, sizeof(*tests));
	assert_non_null(tests);
	memcpy(tests, fixed, sizeof(fixed));
	n = nfixed;
	/* Without age, its tests say SKIP (cmocka's own skip says not ok). */
	for (i = 0; i < n && !have_age; i++)
		if (strncmp(tests[i].name, "test_age_cli", 12) == 0)
			tests[i].name =
			    strcmp(tests[i].name, "test_age_cli_x25519") == 0
				? "test_age_cli_x25519 # SKIP "
				  "age is not installed"
				: "test_age_cli_scrypt # SKIP "
				  "age is not installed";
	for (i = 0; i < nvecs; i++) {
		tests[n].name = vecs[i].name;
		tests[n].test_func = test_vector;
		tests[n].initial_state = &vecs[i];
		n++;
		if (vecs[i].skip) {
			skipped++;
			if (strcmp(vecs[i].skip, "post-quantum identity") == 0)
				npq++;
			else
				nother++;
		}
	}
	if (cctv_missing) {
		tests[n].name = "cctv # SKIP the age-cctv folder is missing";
		tests[n].test_func = test_vector;
		tests[n].initial_state = &missing;
		n++;
	}
	rc = _cmocka_run_group_tests("age", tests, n, NULL, NULL);
	if (cctv_missing)
		print_message("# skipped all CCTV vectors: %s not found\n",
			      cctv_missing);
	else {
		if (npq)
			snprintf(pq, sizeof(pq),
				 " %zu with a post-quantum identity"
				 " (AGE-SECRET-KEY-PQ-1)",
				 npq);
		if (nother)
			snprintf(other, sizeof(other),
				 "%s %zu with an unsupported identity",
				 npq ? "," : "", nother);
		print_message("# CCTV: %zu vectors, %zu run, %zu skipped\n",
			      nvecs, nvecs - skipped, skipped);
		if (skipped)
			print_message("# skipped %zu vectors:%s%s\n", skipped,
				      pq, other);
	}
	for (i = 0; i < nvecs; i++) {
		int j;

		for (j = 0; j < vecs[i].nident; j++)
			free(vecs[i].ident[j]);
		for (j = 0; j < vecs[i].npass; j++)
			free(vecs[i].pass[j]);
	}
	free(vecs);
	free(tests);
	return rc;
}

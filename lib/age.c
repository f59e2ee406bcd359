/*
 * The age v1 format (c2sp.org/age) on OpenSSL 3. Crypto goes through EVP
 * only; Bech32, an encoding, is written here.
 *
 * Decryption is a push parser: bytes are written in, an optional armor
 * layer decodes them line by line, the header is gathered until its MAC
 * line, then the payload is held one chunk at a time and released to the
 * next sink only once that chunk has authenticated.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "age.h"
#include "exitcode.h"
#include "secret.h"

#define CHUNK 65536
#define TAG 16
#define FILE_KEY 16
#define KEY 32
#define NONCE 16
#define COLUMNS 64
#define HEADER_MAX (1 << 20)
#define ARMOR_LINE_MAX 1100
#define ARMOR_SPACE_MAX 1024

static const char v1_line[] = "age-encryption.org/v1";
static const char intro[] = "age-encryption.org/";
static const char x25519_label[] = "age-encryption.org/v1/X25519";
static const char scrypt_label[] = "age-encryption.org/v1/scrypt";
static const char armor_begin[] = "-----BEGIN AGE ENCRYPTED FILE-----";
static const char armor_end[] = "-----END AGE ENCRYPTED FILE-----";

/* ---- base64, through OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock ---- */

static int
is_b64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Unpadded base64 of in into out (room for 4 * ceil(len / 3) + 1). */
static size_t
b64_encode(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	return (size_t)n;
}

/*
 * Strict base64 of s into out: the alphabet only, '=' padding when padded
 * (and then len a multiple of 4), none otherwise, and canonical (the
 * unused low bits zero), checked by encoding the result again.
 */
static int
b64_decode(const char *s, size_t len, int padded, unsigned char *out,
	   size_t outsize, size_t *outlen)
{
	size_t body = len, pad, i, n, sz;
	unsigned char small[3 * 80], *blk = small, *dec;
	char *enc;
	int r, ok;

	if (padded) {
		if (len % 4)
			return -1;
		while (body > 0 && len - body < 2 && s[body - 1] == '=')
			body--;
	}
	for (i = 0; i < body; i++)
		if (!is_b64((unsigned char)s[i]))
			return -1;
	if (body % 4 == 1)
		return -1;
	pad = (4 - body % 4) % 4;
	if (padded && body + pad != len)
		return -1;
	n = (body + pad) / 4 * 3;
	if (n - pad > outsize)
		return -1;
	/* The padded input, its decoding, its encoding again. */
	sz = body + pad + 1;
	if (3 * sz > sizeof(small) && !(blk = malloc(3 * sz)))
		return -1;
	dec = blk + sz;
	enc = (char *)blk + 2 * sz;
	memcpy(blk, s, body);
	memset(blk + body, '=', pad);
	r = EVP_DecodeBlock(dec, blk, (int)(body + pad));
	ok = r >= 0 && (size_t)r == n;
	if (ok) {
		n -= pad;
		ok = b64_encode(dec, n, enc) == body &&
		     memcmp(enc, s, body) == 0;
	}
	if (ok) {
		memcpy(out, dec, n);
		*outlen = n;
	}
	OPENSSL_cleanse(dec, n);
	if (blk != small)
		free(blk);
	return ok ? 0 : -1;
}

/* ---- Bech32 (BIP 173, without its length limit) ---- */

static const char b32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t
b32_polymod(uint32_t chk, int v)
{
	static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
					 0x3d4233dd, 0x2a1462b3 };
	uint32_t top = chk >> 25;
	int i;

	chk = (chk & 0x1ffffff) << 5 ^ (uint32_t)v;
	for (i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

static uint32_t
b32_hrp_chk(const char *hrp)
{
	uint32_t chk = 1;
	size_t i;

	for (i = 0; hrp[i]; i++)
		chk = b32_polymod(chk, (unsigned char)hrp[i] >> 5);
	chk = b32_polymod(chk, 0);
	for (i = 0; hrp[i]; i++)
		chk = b32_polymod(chk, (unsigned char)hrp[i] & 31);
	return chk;
}

/* hrp (lowercase) and 32 bytes as Bech32, upper-cased if upper. */
static int
bech32_encode(const char *hrp, const unsigned char key[KEY], int upper,
	      char *out, size_t size)
{
	char g[64];
	size_t ng = 0, hl = strlen(hrp), i;
	uint32_t acc = 0, chk;
	int bits = 0;

	for (i = 0; i < KEY; i++) {
		acc = acc << 8 | key[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			g[ng++] = (char)((acc >> bits) & 31);
		}
	}
	if (bits > 0)
		g[ng++] = (char)((acc << (5 - bits)) & 31);
	if (hl + 1 + ng + 6 + 1 > size)
		return -1;
	chk = b32_hrp_chk(hrp);
	for (i = 0; i < ng; i++)
		chk = b32_polymod(chk, g[i]);
	for (i = 0; i < 6; i++)
		chk = b32_polymod(chk, 0);
	chk ^= 1;
	memcpy(out, hrp, hl);
	out[hl] = '1';
	for (i = 0; i < ng; i++)
		out[hl + 1 + i] = b32_charset[(int)g[i]];
	for (i = 0; i < 6; i++)
		out[hl + 1 + ng + i] = b32_charset[(chk >> (5 * (5 - i))) & 31];
	out[hl + 1 + ng + 6] = '\0';
	if (upper)
		for (i = 0; out[i]; i++)
			if (out[i] >= 'a' && out[i] <= 'z')
				out[i] = (char)(out[i] - 'a' + 'A');
	OPENSSL_cleanse(g, sizeof(g));
	return 0;
}

/*
 * A Bech32 string whose lowercased HRP is hrp and whose data is 32 bytes
 * into key; NULL, or a reason.
 */
static const char *
bech32_decode(const char *s, const char *hrp, unsigned char key[KEY])
{
	size_t len = strlen(s), hl = strlen(hrp), i, sep, nk = 0;
	int lower = 0, upper = 0, bits = 0;
	uint32_t chk, acc = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126)
			return "invalid character";
		lower |= c >= 'a' && c <= 'z';
		upper |= c >= 'A' && c <= 'Z';
	}
	if (lower && upper)
		return "mixed case";
	sep = len;
	for (i = len; i > 0; i--)
		if (s[i - 1] == '1') {
			sep = i - 1;
			break;
		}
	if (sep == len || sep + 7 > len)
		return "not Bech32";
	if (sep != hl || strncasecmp(s, hrp, hl) != 0)
		return "wrong type";
	chk = b32_hrp_chk(hrp);
	for (i = sep + 1; i < len; i++) {
		int c = s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i];
		const char *p = strchr(b32_charset, c);
		int v;

		if (!p || !c)
			return "invalid character";
		v = (int)(p - b32_charset);
		chk = b32_polymod(chk, v);
		if (i + 6 >= len)
			continue;
		acc = (acc << 5 | (uint32_t)v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (nk == KEY)
				return "wrong length";
			key[nk++] = (unsigned char)(acc >> bits);
		}
	}
	if (chk != 1)
		return "bad checksum";
	if (nk != KEY || bits >= 5 || (acc & ((1u << bits) - 1)))
		return "wrong length";
	return NULL;
}

/* ---- primitives, through EVP ---- */

static int
hkdf(const unsigned char *ikm, size_t ikmlen, const unsigned char *salt,
     size_t saltlen, const char *info, unsigned char out[KEY])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5], *p = params;
	int ok;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)ikm, ikmlen);
	if (saltlen)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 (void *)salt, saltlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	ok = ctx && EVP_KDF_derive(ctx, out, KEY, params) > 0;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -1;
}

static int
scrypt(const char *pass, const unsigned char *salt, size_t saltlen, int log2n,
       unsigned char out[KEY])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	uint64_t n = (uint64_t)1 << log2n, maxmem = (uint64_t)1 << (log2n + 11);
	uint32_t r = 8, par = 1;
	OSSL_PARAM params[7], *p = params;
	int ok;

	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						 (void *)pass, strlen(pass));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						 (void *)salt, saltlen);
	*p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par);
	*p++ =
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*p = OSSL_PARAM_construct_end();
	ok = ctx && EVP_KDF_derive(ctx, out, KEY, params) > 0;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -1;
}

static int
hmac(const unsigned char key[KEY], const unsigned char *data, size_t len,
     unsigned char out[32])
{
	size_t n = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, KEY, data, len,
		       out, 32, &n) ||
	    n != 32)
		return -1;
	return 0;
}

static int
x25519_public(const unsigned char sk[KEY], unsigned char pk[KEY])
{
	EVP_PKEY *k =
	    EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, KEY);
	size_t n = KEY;
	int ok = k && EVP_PKEY_get_raw_public_key(k, pk, &n) > 0 && n == KEY;

	EVP_PKEY_free(k);
	return ok ? 0 : -1;
}

/* X25519(sk, peer); -1 also when the result is all zero (low order). */
static int
x25519_dh(const unsigned char sk[KEY], const unsigned char peer[KEY],
	  unsigned char out[KEY])
{
	static const unsigned char zero[KEY];
	EVP_PKEY *k =
	    EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, KEY);
	EVP_PKEY *pk =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, KEY);
	EVP_PKEY_CTX *ctx = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	size_t n = KEY;
	int ok = ctx && pk && EVP_PKEY_derive_init(ctx) > 0 &&
		 EVP_PKEY_derive_set_peer(ctx, pk) > 0 &&
		 EVP_PKEY_derive(ctx, out, &n) > 0 && n == KEY &&
		 CRYPTO_memcmp(out, zero, KEY) != 0;

	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/*
 * ChaCha20-Poly1305 of len bytes, the tag after them: seals in into out
 * (len + TAG bytes), or opens in (len + TAG bytes) into out (len bytes);
 * -1 when the tag does not verify.
 */
static int
aead(EVP_CIPHER_CTX *ctx, int seal, const unsigned char key[KEY],
     const unsigned char nonce[12], const unsigned char *in, size_t len,
     unsigned char *out)
{
	int n = 0, f = 0;

	/* The cipher is set once per context; each call sets key and nonce. */
	if (!EVP_CipherInit_ex(ctx,
			       EVP_CIPHER_CTX_get0_cipher(ctx)
				   ? NULL
				   : EVP_chacha20_poly1305(),
			       NULL, key, nonce, seal))
		return -1;
	if (!seal && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG,
					  (void *)(in + len)))
		return -1;
	if (len > 0 && !EVP_CipherUpdate(ctx, out, &n, in, (int)len))
		return -1;
	if (EVP_CipherFinal_ex(ctx, out + n, &f) <= 0)
		return -1;
	if (seal &&
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, out + len))
		return -1;
	return 0;
}

/* aead() with the zero nonce of the stanza bodies, on a context of its own. */
static int
aead_once(int seal, const unsigned char key[KEY], const unsigned char *in,
	  size_t len, unsigned char *out)
{
	static const unsigned char zero[12];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int r = ctx ? aead(ctx, seal, key, zero, in, len, out) : -1;

	EVP_CIPHER_CTX_free(ctx);
	return r;
}

static void
stream_nonce(unsigned char nonce[12], uint64_t counter, int last)
{
	int i;

	memset(nonce, 0, 12);
	for (i = 0; i < 8; i++)
		nonce[10 - i] = (unsigned char)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

/* ---- key sets ---- */

enum { K_RECIPIENT, K_IDENTITY, K_PASSPHRASE };

struct age_key {
	int kind;
	int log2n;
	unsigned char pub[KEY]; /* a recipient, or an identity's */
	unsigned char sec[KEY];
	char *pass;
};

struct chom_age_keys {
	struct age_key *v;
	size_t n, cap;
};

struct chom_age_keys *
chom_age_keys_new(void)
{
	return calloc(1, sizeof(struct chom_age_keys));
}

void
chom_age_keys_free(struct chom_age_keys *k)
{
	size_t i;

	if (!k)
		return;
	for (i = 0; i < k->n; i++)
		if (k->v[i].pass)
			chom_secret_free(k->v[i].pass);
	if (k->v)
		OPENSSL_cleanse(k->v, k->cap * sizeof(*k->v));
	free(k->v);
	free(k);
}

/* A new zeroed slot; the old array is wiped, not left to realloc. */
static struct age_key *
keys_add(struct chom_age_keys *k, int kind, struct chom_err *e)
{
	struct age_key *v;

	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 4;

		v = calloc(cap, sizeof(*v));
		if (!v) {
			chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
			return NULL;
		}
		if (k->v) {
			memcpy(v, k->v, k->n * sizeof(*v));
			OPENSSL_cleanse(k->v, k->cap * sizeof(*v));
			free(k->v);
		}
		k->v = v;
		k->cap = cap;
	}
	v = &k->v[k->n++];
	memset(v, 0, sizeof(*v));
	v->kind = kind;
	return v;
}

static struct chom_age_keys *
keys_dup(const struct chom_age_keys *k, struct chom_err *e)
{
	struct chom_age_keys *d = chom_age_keys_new();
	size_t i;

	if (!d) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	for (i = 0; i < k->n; i++) {
		struct age_key *v = keys_add(d, k->v[i].kind, e);

		if (!v)
			goto fail;
		*v = k->v[i];
		if (v->pass && !(v->pass = strdup(v->pass))) {
			chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
			goto fail;
		}
	}
	return d;
fail:
	chom_age_keys_free(d);
	return NULL;
}

size_t
chom_age_keys_describe(const struct chom_age_keys *k, size_t i, char *buf,
		       size_t size)
{
	if (i >= k->n)
		return k->n;
	if (k->v[i].kind == K_PASSPHRASE)
		snprintf(buf, size, "scrypt");
	else if (bech32_encode("age", k->v[i].pub, 0, buf, size) < 0)
		snprintf(buf, size, "?");
	return k->n;
}

int
chom_age_add_recipient(struct chom_age_keys *k, const char *age1,
		       struct chom_err *e)
{
	unsigned char pk[KEY];
	struct age_key *v;
	const char *why;
	char shown[128];

	chom_escape(age1, shown, sizeof(shown));
	if (strncmp(age1, "ssh-", 4) == 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "recipient %s: SSH keys are not supported",
				    shown);
	if (strncasecmp(age1, "age1pq1", 7) == 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "recipient %s: post-quantum recipients "
				    "are not supported",
				    shown);
	why = bech32_decode(age1, "age", pk);
	if (why)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "recipient %s: not an age X25519 "
				    "recipient (%s)",
				    shown, why);
	v = keys_add(k, K_RECIPIENT, e);
	if (!v)
		return -1;
	memcpy(v->pub, pk, KEY);
	return 0;
}

/* Trims line in place; NULL for a blank or comment line. */
static char *
key_line(char *line)
{
	char *end;

	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && (end[-1] == '\n' || end[-1] == '\r' ||
			      end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return *line && *line != '#' ? line : NULL;
}

int
chom_age_add_recipients_file(struct chom_age_keys *k, const char *path,
			     struct chom_err *e)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *s;
	size_t cap = 0, before = k->n;
	int n = 0, rc = 0;
	struct chom_err sub;

	if (!f)
		return chom_err_sys(e, CHOM_EXIT_USAGE, "recipients file %s",
				    path);
	while (getline(&line, &cap, f) >= 0) {
		n++;
		s = key_line(line);
		if (s && chom_age_add_recipient(k, s, &sub) < 0) {
			rc = chom_err_set(e, sub.code,
					  "recipients file %s, line %d: %s",
					  path, n, sub.msg);
			break;
		}
	}
	if (rc == 0 && ferror(f))
		rc = chom_err_sys(e, CHOM_EXIT_USAGE, "recipients file %s",
				  path);
	if (rc == 0 && k->n == before)
		rc = chom_err_set(e, CHOM_EXIT_USAGE,
				  "recipients file %s: no recipient", path);
	free(line);
	fclose(f);
	return rc;
}

int
chom_age_add_passphrase(struct chom_age_keys *k, const char *passphrase,
			int log2_n, struct chom_err *e)
{
	struct age_key *v;
	char *p;

	if (!passphrase || !*passphrase)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "the passphrase is empty");
	if (log2_n == 0)
		log2_n = CHOM_AGE_SCRYPT_LOG2N;
	if (log2_n < 1 || log2_n > CHOM_AGE_SCRYPT_MAX_LOG2N)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "scrypt work factor 2^%d: out of range "
				    "(2^1 to 2^%d)",
				    log2_n, CHOM_AGE_SCRYPT_MAX_LOG2N);
	p = strdup(passphrase);
	if (!p)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	v = keys_add(k, K_PASSPHRASE, e);
	if (!v) {
		chom_secret_free(p);
		return -1;
	}
	v->pass = p;
	v->log2n = log2_n;
	return 0;
}

/* The identity's secret and public keys; the reason goes to e. */
static int
parse_identity(const char *secret, unsigned char sk[KEY], unsigned char pk[KEY],
	       struct chom_err *e)
{
	const char *why;

	if (strncasecmp(secret, "AGE-SECRET-KEY-PQ-1", 19) == 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "post-quantum identities "
				    "(AGE-SECRET-KEY-PQ-1...) are not "
				    "supported");
	if (strncasecmp(secret, "AGE-PLUGIN-", 11) == 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "plugin identities are not supported");
	why = bech32_decode(secret, "age-secret-key-", sk);
	if (why) {
		OPENSSL_cleanse(sk, KEY);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "not an age X25519 identity (%s)", why);
	}
	if (x25519_public(sk, pk) < 0) {
		OPENSSL_cleanse(sk, KEY);
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "X25519 key derivation failed");
	}
	return 0;
}

int
chom_age_add_identity(struct chom_age_keys *k, const char *secret,
		      struct chom_err *e)
{
	unsigned char sk[KEY], pk[KEY];
	struct age_key *v;

	if (parse_identity(secret, sk, pk, e) < 0)
		return -1;
	v = keys_add(k, K_IDENTITY, e);
	if (v) {
		memcpy(v->sec, sk, KEY);
		memcpy(v->pub, pk, KEY);
	}
	OPENSSL_cleanse(sk, KEY);
	return v ? 0 : -1;
}

int
chom_age_add_identities_file(struct chom_age_keys *k, const char *path,
			     struct chom_err *e)
{
	char *buf, *line, *next, *s;
	size_t before = k->n;
	struct chom_err sub;
	int n = 0, rc = 0;

	if (chom_secret_read(path, &buf, e) < 0)
		return -1;
	if (strncmp(buf, intro, strlen(intro)) == 0 ||
	    strncmp(buf, armor_begin, strlen(armor_begin)) == 0) {
		chom_secret_free(buf);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "identity file %s: encrypted identity "
				    "files are not supported",
				    path);
	}
	for (line = buf; line && rc == 0; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		n++;
		s = key_line(line);
		if (s && chom_age_add_identity(k, s, &sub) < 0)
			rc = chom_err_set(e, sub.code,
					  "identity file %s, line %d: %s", path,
					  n, sub.msg);
	}
	chom_secret_free(buf);
	if (rc == 0 && k->n == before)
		rc = chom_err_set(e, CHOM_EXIT_USAGE,
				  "identity file %s: no identity", path);
	return rc;
}

int
chom_age_keygen(char *secret, size_t ssize, char *recipient, size_t rsize,
		struct chom_err *e)
{
	unsigned char sk[KEY], pk[KEY];
	int rc = 0;

	if (RAND_bytes(sk, KEY) != 1 || x25519_public(sk, pk) < 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL,
				  "X25519 key generation failed");
	else if (bech32_encode("age-secret-key-", sk, 1, secret, ssize) < 0 ||
		 bech32_encode("age", pk, 0, recipient, rsize) < 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL,
				  "key buffers are too small");
	OPENSSL_cleanse(sk, KEY);
	return rc;
}

int
chom_age_recipient_of(const char *secret, char *recipient, size_t rsize,
		      struct chom_err *e)
{
	unsigned char sk[KEY], pk[KEY];

	if (parse_identity(secret, sk, pk, e) < 0)
		return -1;
	OPENSSL_cleanse(sk, KEY);
	if (bech32_encode("age", pk, 0, recipient, rsize) < 0)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "recipient buffer is too small");
	return 0;
}

/* ---- a growing byte buffer for headers ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		unsigned char *q;

		while (cap < b->len + n)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int
buf_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* The unpadded base64 of in, then LF. */
static int
buf_b64(struct buf *b, const unsigned char *in, size_t len)
{
	char out[4 * 48 / 3 + 4];
	size_t n = b64_encode(in, len, out);

	return buf_add(b, out, n);
}

/* A stanza body: base64 wrapped at 64 columns, ending with a short line. */
static int
buf_body(struct buf *b, const unsigned char *in, size_t len)
{
	size_t off;

	for (off = 0; off + 48 <= len; off += 48)
		if (buf_b64(b, in + off, 48) < 0 || buf_str(b, "\n") < 0)
			return -1;
	if (buf_b64(b, in + off, len - off) < 0 || buf_str(b, "\n") < 0)
		return -1;
	return 0;
}

/* ---- encryption ---- */

struct age_enc {
	struct chom_sink sink;
	struct chom_sink *next;
	struct buf hdr; /* header and nonce, until sent */
	int sent, failed;
	unsigned char key[KEY];
	uint64_t counter;
	EVP_CIPHER_CTX *ctx;
	size_t ptlen;
	unsigned char pt[CHUNK];
	unsigned char ct[CHUNK + TAG];
};

static int
stanza_x25519(struct buf *h, const unsigned char rcpt[KEY],
	      const unsigned char fk[FILE_KEY], struct chom_err *e)
{
	unsigned char esk[KEY], share[KEY], shared[KEY], salt[2 * KEY];
	unsigned char wrap[KEY], body[FILE_KEY + TAG];
	int rc = 0;

	if (RAND_bytes(esk, KEY) != 1 || x25519_public(esk, share) < 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL,
				  "X25519 key generation failed");
	else if (x25519_dh(esk, rcpt, shared) < 0)
		rc = chom_err_set(e, CHOM_EXIT_USAGE,
				  "invalid X25519 recipient (low order)");
	if (rc == 0) {
		memcpy(salt, share, KEY);
		memcpy(salt + KEY, rcpt, KEY);
		if (hkdf(shared, KEY, salt, sizeof(salt), x25519_label, wrap) <
			0 ||
		    aead_once(1, wrap, fk, FILE_KEY, body) < 0)
			rc = chom_err_set(e, CHOM_EXIT_FAIL,
					  "wrapping the file key failed");
	}
	if (rc == 0 &&
	    (buf_str(h, "-> X25519 ") < 0 || buf_b64(h, share, KEY) < 0 ||
	     buf_str(h, "\n") < 0 || buf_body(h, body, sizeof(body)) < 0))
		rc = chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	OPENSSL_cleanse(esk, KEY);
	OPENSSL_cleanse(shared, KEY);
	OPENSSL_cleanse(wrap, KEY);
	return rc;
}

static int
stanza_scrypt(struct buf *h, const struct age_key *k,
	      const unsigned char fk[FILE_KEY], struct chom_err *e)
{
	unsigned char salt[sizeof(scrypt_label) - 1 + 16];
	unsigned char wrap[KEY], body[FILE_KEY + TAG];
	size_t ll = sizeof(scrypt_label) - 1;
	char wf[16];
	int rc = 0;

	memcpy(salt, scrypt_label, ll);
	if (RAND_bytes(salt + ll, 16) != 1)
		return chom_err_set(e, CHOM_EXIT_FAIL, "RAND_bytes failed");
	if (scrypt(k->pass, salt, sizeof(salt), k->log2n, wrap) < 0 ||
	    aead_once(1, wrap, fk, FILE_KEY, body) < 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL,
				  "wrapping the file key with scrypt failed");
	snprintf(wf, sizeof(wf), " %d\n", k->log2n);
	if (rc == 0 &&
	    (buf_str(h, "-> scrypt ") < 0 || buf_b64(h, salt + ll, 16) < 0 ||
	     buf_str(h, wf) < 0 || buf_body(h, body, sizeof(body)) < 0))
		rc = chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	OPENSSL_cleanse(wrap, KEY);
	return rc;
}

/* The header for keys, its MAC, and the payload nonce; the payload key. */
static int
make_header(struct age_enc *s, const struct chom_age_keys *k,
	    struct chom_err *e)
{
	unsigned char fk[FILE_KEY], mkey[KEY], mac[32], nonce[NONCE];
	size_t i, npass = 0, nother = 0;
	int rc = 0;

	for (i = 0; k && i < k->n; i++) {
		if (k->v[i].kind == K_PASSPHRASE)
			npass++;
		else
			nother++;
	}
	if (npass + nother == 0)
		return chom_err_set(e, CHOM_EXIT_USAGE, "no recipient");
	if (npass > 0 && npass + nother > 1)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "a passphrase must be the only recipient");
	if (RAND_bytes(fk, FILE_KEY) != 1 || RAND_bytes(nonce, NONCE) != 1)
		return chom_err_set(e, CHOM_EXIT_FAIL, "RAND_bytes failed");
	if (buf_str(&s->hdr, v1_line) < 0 || buf_str(&s->hdr, "\n") < 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	for (i = 0; rc == 0 && i < k->n; i++)
		rc = k->v[i].kind == K_PASSPHRASE
			 ? stanza_scrypt(&s->hdr, &k->v[i], fk, e)
			 : stanza_x25519(&s->hdr, k->v[i].pub, fk, e);
	if (rc == 0 && buf_str(&s->hdr, "---") < 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	if (rc == 0 &&
	    (hkdf(fk, FILE_KEY, NULL, 0, "header", mkey) < 0 ||
	     hmac(mkey, s->hdr.p, s->hdr.len, mac) < 0 ||
	     hkdf(fk, FILE_KEY, nonce, NONCE, "payload", s->key) < 0))
		rc = chom_err_set(e, CHOM_EXIT_FAIL, "key derivation failed");
	if (rc == 0 &&
	    (buf_str(&s->hdr, " ") < 0 ||
	     buf_b64(&s->hdr, mac, sizeof(mac)) < 0 ||
	     buf_str(&s->hdr, "\n") < 0 || buf_add(&s->hdr, nonce, NONCE) < 0))
		rc = chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	OPENSSL_cleanse(fk, FILE_KEY);
	OPENSSL_cleanse(mkey, KEY);
	return rc;
}

static int
enc_fail(struct age_enc *s)
{
	s->failed = 1;
	return -1;
}

static int
enc_send_header(struct age_enc *s, struct chom_err *e)
{
	if (s->sent)
		return 0;
	if (chom_sink_write(s->next, s->hdr.p, s->hdr.len, e) < 0)
		return enc_fail(s);
	s->sent = 1;
	free(s->hdr.p);
	s->hdr.p = NULL;
	return 0;
}

static int
enc_chunk(struct age_enc *s, int last, struct chom_err *e)
{
	unsigned char nonce[12];

	stream_nonce(nonce, s->counter, last);
	if (aead(s->ctx, 1, s->key, nonce, s->pt, s->ptlen, s->ct) < 0) {
		chom_err_set(e, CHOM_EXIT_FAIL, "ChaCha20-Poly1305 failed");
		return enc_fail(s);
	}
	if (chom_sink_write(s->next, s->ct, s->ptlen + TAG, e) < 0)
		return enc_fail(s);
	s->counter++;
	s->ptlen = 0;
	return 0;
}

static int
enc_write(struct chom_sink *sink, const void *buf, size_t len,
	  struct chom_err *e)
{
	struct age_enc *s = (struct age_enc *)sink;
	const unsigned char *p = buf;

	if (s->failed)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "age encryption already failed");
	if (enc_send_header(s, e) < 0)
		return -1;
	while (len > 0) {
		size_t n = CHUNK - s->ptlen;

		/* A full chunk waits for more data: the last one is marked. */
		if (n == 0) {
			if (enc_chunk(s, 0, e) < 0)
				return -1;
			n = CHUNK;
		}
		if (n > len)
			n = len;
		memcpy(s->pt + s->ptlen, p, n);
		s->ptlen += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int
enc_close(struct chom_sink *sink, struct chom_err *e)
{
	struct age_enc *s = (struct age_enc *)sink;

	if (s->failed)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "age encryption already failed");
	if (enc_send_header(s, e) < 0 || enc_chunk(s, 1, e) < 0)
		return -1;
	s->failed = 1; /* closed: nothing more may be written */
	return chom_sink_close(s->next, e);
}

static void
enc_free(struct chom_sink *sink)
{
	struct age_enc *s = (struct age_enc *)sink;

	chom_sink_free(s->next);
	EVP_CIPHER_CTX_free(s->ctx);
	free(s->hdr.p);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

struct chom_sink *
chom_age_encrypt_new(struct chom_sink *next,
		     const struct chom_age_keys *recipients, struct chom_err *e)
{
	struct age_enc *s = calloc(1, sizeof(*s));

	if (!s) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	s->ctx = EVP_CIPHER_CTX_new();
	if (!s->ctx) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto fail;
	}
	if (make_header(s, recipients, e) < 0)
		goto fail;
	s->sink.write = enc_write;
	s->sink.close = enc_close;
	s->sink.free = enc_free;
	s->next = next;
	return &s->sink;
fail:
	s->next = NULL;
	enc_free(&s->sink);
	return NULL;
}

/* ---- decryption ---- */

enum { M_UNKNOWN, M_BINARY, M_ARMOR };
enum { A_PRE, A_BODY, A_LAST, A_DONE };
enum { H_HEADER, H_NONCE, H_PAYLOAD, H_DONE };

struct stanza {
	char *line; /* the argument line, split at its spaces */
	char **argv;
	int argc;
	unsigned char *body;
	size_t bodylen;
};

struct age_dec {
	struct chom_sink sink;
	struct chom_sink *next;
	struct chom_age_keys *keys;
	int failed;
	struct chom_err err;
	int mode;
	/* the armor */
	int astate;
	size_t alen, aspace;
	unsigned long aline_no;
	char aline[ARMOR_LINE_MAX];
	/* the age file */
	int state;
	struct buf hdr;
	size_t line_start;
	size_t noncelen;
	unsigned char nonce[NONCE];
	unsigned char key[KEY];
	uint64_t counter;
	EVP_CIPHER_CTX *ctx;
	size_t ctlen;
	unsigned char ct[CHUNK + TAG];
	unsigned char pt[CHUNK];
};

static int dec_fail(struct age_dec *d, struct chom_err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets e and remembers it: later calls fail the same way. */
static int
dec_fail(struct age_dec *d, struct chom_err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	e->code = CHOM_EXIT_FAIL;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	d->err = *e;
	d->failed = 1;
	return -1;
}

/* A failure of the next sink: its error stands. */
static int
dec_fail_next(struct age_dec *d, struct chom_err *e)
{
	d->err = *e;
	d->failed = 1;
	return -1;
}

static void
stanzas_free(struct stanza *st, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(st[i].line);
		free(st[i].argv);
		if (st[i].body)
			OPENSSL_cleanse(st[i].body, st[i].bodylen);
		free(st[i].body);
	}
	free(st);
}

/* The next LF-terminated line at *pos of the header; its length. */
static const char *
hdr_line(struct age_dec *d, size_t *pos, size_t *len)
{
	const char *p = (const char *)d->hdr.p + *pos;
	const char *lf = memchr(p, '\n', d->hdr.len - *pos);

	if (!lf)
		return NULL;
	*len = (size_t)(lf - p);
	*pos += *len + 1;
	return p;
}

/* Splits an argument line "-> ARG..."; -1 if invalid, -2 out of memory. */
static int
stanza_args(struct stanza *st, const char *p, size_t len)
{
	size_t i;
	int argc = 1;

	if (len < 4 || memcmp(p, "-> ", 3) != 0)
		return -1;
	for (i = 3; i < len; i++) {
		if (p[i] == ' ')
			argc++;
		else if ((unsigned char)p[i] < 0x21 ||
			 (unsigned char)p[i] > 0x7e)
			return -1;
	}
	st->line = malloc(len - 2);
	st->argv = calloc((size_t)argc, sizeof(char *));
	if (!st->line || !st->argv)
		return -2;
	memcpy(st->line, p + 3, len - 3);
	st->line[len - 3] = '\0';
	st->argv[st->argc++] = st->line;
	for (i = 0; i < len - 3; i++)
		if (st->line[i] == ' ') {
			st->line[i] = '\0';
			st->argv[st->argc++] = st->line + i + 1;
		}
	for (i = 0; i < (size_t)st->argc; i++)
		if (!*st->argv[i])
			return -1;
	return 0;
}

/* The body lines of a stanza at *pos: full ones, then one short one. */
static int
stanza_body(struct age_dec *d, struct stanza *st, size_t *pos,
	    struct chom_err *e, int idx)
{
	size_t start = *pos, len, n;
	const char *p;

	for (;;) {
		p = hdr_line(d, pos, &len);
		if (!p || (len >= 2 && (memcmp(p, "->", 2) == 0 ||
					memcmp(p, "--", 2) == 0)))
			return dec_fail(d, e,
					"malformed header: stanza %d has no "
					"final short body line",
					idx);
		for (n = 0; n < len && is_b64((unsigned char)p[n]); n++)
			;
		if (n < len)
			return dec_fail(d, e,
					"malformed header: stanza %d has an "
					"invalid character in its body",
					idx);
		if (len > COLUMNS)
			return dec_fail(d, e,
					"malformed header: stanza %d has a "
					"body line longer than 64 columns",
					idx);
		if (len < COLUMNS)
			break;
	}
	/* Full lines are 64 characters, whole base64 quanta: decode each. */
	st->body = malloc((*pos - start) / 4 * 3 + 3);
	if (!st->body)
		return dec_fail(d, e, "out of memory");
	while (start < *pos) {
		p = hdr_line(d, &start, &len);
		if (b64_decode(p, len, 0, st->body + st->bodylen, 48, &n) < 0)
			return dec_fail(d, e,
					"malformed header: stanza %d body is "
					"not canonical base64",
					idx);
		st->bodylen += n;
	}
	return 0;
}

/*
 * Parses the header gathered in d->hdr, which ends with the MAC line:
 * its stanzas into *stp, its MAC into mac, the length it covers in *maclen.
 */
static int
parse_header(struct age_dec *d, struct stanza **stp, size_t *nst,
	     unsigned char mac[32], size_t *maclen, struct chom_err *e)
{
	struct stanza *st = NULL, *t;
	size_t pos = 0, len = 0, n = 0, m;
	const char *p;

	/* The version line, checked as it came in. */
	hdr_line(d, &pos, &len);
	for (;;) {
		size_t at = pos;

		p = hdr_line(d, &pos, &len);
		if (!p) {
			dec_fail(d, e, "malformed header: no MAC line");
			goto fail;
		}
		if (len >= 3 && memcmp(p, "---", 3) == 0) {
			*maclen = at + 3;
			break;
		}
		if (len < 2 || memcmp(p, "->", 2) != 0) {
			dec_fail(d, e,
				 "malformed header: unexpected line after "
				 "stanza %zu",
				 n);
			goto fail;
		}
		t = realloc(st, (n + 1) * sizeof(*st));
		if (!t) {
			dec_fail(d, e, "out of memory");
			goto fail;
		}
		st = t;
		memset(&st[n], 0, sizeof(*st));
		n++;
		switch (stanza_args(&st[n - 1], p, len)) {
		case -1:
			dec_fail(d, e,
				 "malformed header: stanza %zu has an invalid "
				 "argument line",
				 n);
			goto fail;
		case -2: dec_fail(d, e, "out of memory"); goto fail;
		}
		if (stanza_body(d, &st[n - 1], &pos, e, (int)n) < 0)
			goto fail;
	}
	if (n == 0) {
		dec_fail(d, e, "malformed header: no recipient stanza");
		goto fail;
	}
	if (len != 4 + 43 || p[3] != ' ' ||
	    b64_decode(p + 4, 43, 0, mac, 32, &m) < 0 || m != 32) {
		dec_fail(d, e, "malformed header: invalid MAC line");
		goto fail;
	}
	*stp = st;
	*nst = n;
	return 0;
fail:
	stanzas_free(st, n);
	return -1;
}

/* Returns 1 with the file key, 0 when not ours, -1 on a fatal error. */
static int
unwrap_x25519(struct age_dec *d, const struct age_key *k,
	      const struct stanza *st, int idx, unsigned char fk[FILE_KEY],
	      struct chom_err *e)
{
	unsigned char share[KEY], shared[KEY], salt[2 * KEY], wrap[KEY];
	size_t n;
	int r;

	if (st->argc != 2)
		return dec_fail(d, e,
				"malformed header: X25519 stanza %d has %d "
				"arguments, not 2",
				idx, st->argc);
	if (b64_decode(st->argv[1], strlen(st->argv[1]), 0, share, KEY, &n) <
		0 ||
	    n != KEY)
		return dec_fail(d, e,
				"malformed header: X25519 stanza %d: the "
				"share is not 32 bytes of canonical base64",
				idx);
	if (st->bodylen != FILE_KEY + TAG)
		return dec_fail(d, e,
				"malformed header: X25519 stanza %d: the "
				"body is %zu bytes, not 32",
				idx, st->bodylen);
	if (x25519_dh(k->sec, share, shared) < 0)
		return dec_fail(d, e,
				"malformed header: X25519 stanza %d: the "
				"share is a low-order point",
				idx);
	memcpy(salt, share, KEY);
	memcpy(salt + KEY, k->pub, KEY);
	if (hkdf(shared, KEY, salt, sizeof(salt), x25519_label, wrap) < 0) {
		OPENSSL_cleanse(shared, KEY);
		return dec_fail(d, e, "HKDF failed");
	}
	r = aead_once(0, wrap, st->body, FILE_KEY, fk) == 0;
	OPENSSL_cleanse(shared, KEY);
	OPENSSL_cleanse(wrap, KEY);
	return r;
}

static int
unwrap_scrypt(struct age_dec *d, const struct age_key *k,
	      const struct stanza *st, unsigned char fk[FILE_KEY],
	      struct chom_err *e)
{
	unsigned char salt[sizeof(scrypt_label) - 1 + 16], wrap[KEY];
	size_t ll = sizeof(scrypt_label) - 1, n;
	const char *wf;
	int log2n = 0, r;

	if (st->argc != 3)
		return dec_fail(d, e,
				"malformed header: scrypt stanza has %d "
				"arguments, not 3",
				st->argc);
	memcpy(salt, scrypt_label, ll);
	if (b64_decode(st->argv[1], strlen(st->argv[1]), 0, salt + ll, 16, &n) <
		0 ||
	    n != 16)
		return dec_fail(d, e,
				"malformed header: scrypt stanza: the salt is "
				"not 16 bytes of canonical base64");
	wf = st->argv[2];
	if (wf[0] < '1' || wf[0] > '9' ||
	    strspn(wf, "0123456789") != strlen(wf))
		return dec_fail(d, e,
				"malformed header: scrypt stanza: invalid "
				"work factor");
	if (strlen(wf) > 2 || (log2n = atoi(wf)) > CHOM_AGE_SCRYPT_MAX_LOG2N)
		return dec_fail(
		    d, e,
		    "malformed header: scrypt work factor 2^%.20s%s "
		    "is above the limit of 2^%d",
		    wf, strlen(wf) > 20 ? "..." : "",
		    CHOM_AGE_SCRYPT_MAX_LOG2N);
	if (st->bodylen != FILE_KEY + TAG)
		return dec_fail(d, e,
				"malformed header: scrypt stanza: the body "
				"is %zu bytes, not 32",
				st->bodylen);
	if (scrypt(k->pass, salt, sizeof(salt), log2n, wrap) < 0)
		return dec_fail(d, e, "scrypt failed (2^%d)", log2n);
	r = aead_once(0, wrap, st->body, FILE_KEY, fk) == 0;
	OPENSSL_cleanse(wrap, KEY);
	return r;
}

/* The header is complete: find the file key, check the MAC. */
static int
open_header(struct age_dec *d, struct chom_err *e)
{
	unsigned char mac[32], fk[FILE_KEY], mkey[KEY], want[32];
	struct stanza *st = NULL;
	size_t nst = 0, maclen = 0, i, j;
	int found = 0, rc = 0;

	if (parse_header(d, &st, &nst, want, &maclen, e) < 0)
		return -1;
	for (i = 0; i < nst; i++)
		if (strcmp(st[i].argv[0], "scrypt") == 0 && nst != 1) {
			stanzas_free(st, nst);
			return dec_fail(d, e,
					"malformed header: an scrypt stanza "
					"must be the only one");
		}
	for (i = 0; rc == 0 && !found && i < d->keys->n; i++) {
		const struct age_key *k = &d->keys->v[i];

		for (j = 0; rc == 0 && !found && j < nst; j++) {
			if (k->kind == K_IDENTITY &&
			    strcmp(st[j].argv[0], "X25519") == 0)
				rc = unwrap_x25519(d, k, &st[j], (int)j + 1, fk,
						   e);
			else if (k->kind == K_PASSPHRASE &&
				 strcmp(st[j].argv[0], "scrypt") == 0)
				rc = unwrap_scrypt(d, k, &st[j], fk, e);
			if (rc == 1) {
				found = 1;
				rc = 0;
			}
		}
	}
	stanzas_free(st, nst);
	if (rc < 0)
		return -1;
	if (!found)
		return dec_fail(d, e,
				"no identity matches any recipient stanza");
	rc = hkdf(fk, FILE_KEY, NULL, 0, "header", mkey) < 0 ||
	     hmac(mkey, d->hdr.p, maclen, mac) < 0;
	OPENSSL_cleanse(mkey, KEY);
	if (rc) {
		OPENSSL_cleanse(fk, FILE_KEY);
		return dec_fail(d, e, "HMAC failed");
	}
	if (CRYPTO_memcmp(mac, want, 32) != 0) {
		OPENSSL_cleanse(fk, FILE_KEY);
		return dec_fail(d, e, "header MAC mismatch");
	}
	/* The nonce comes next; the file key waits for it in d->key. */
	memcpy(d->key, fk, FILE_KEY);
	OPENSSL_cleanse(fk, FILE_KEY);
	free(d->hdr.p);
	memset(&d->hdr, 0, sizeof(d->hdr));
	d->state = H_NONCE;
	return 0;
}

/* Opens the chunk held in d->ct as last or not; its length, or -1. */
static long
open_chunk(struct age_dec *d, int last)
{
	unsigned char nonce[12];
	size_t n = d->ctlen - TAG;

	stream_nonce(nonce, d->counter, last);
	if (aead(d->ctx, 0, d->key, nonce, d->ct, n, d->pt) < 0) {
		OPENSSL_cleanse(d->pt, n);
		return -1;
	}
	return (long)n;
}

static int
emit(struct age_dec *d, long n, struct chom_err *e)
{
	int rc = 0;

	if (n > 0)
		rc = chom_sink_write(d->next, d->pt, (size_t)n, e);
	OPENSSL_cleanse(d->pt, (size_t)n);
	d->counter++;
	d->ctlen = 0;
	return rc < 0 ? dec_fail_next(d, e) : 0;
}

/* More data follows the full chunk held: it must not be the last. */
static int
full_chunk(struct age_dec *d, struct chom_err *e)
{
	unsigned long long no = (unsigned long long)d->counter + 1;
	long n = open_chunk(d, 0);

	if (n >= 0)
		return emit(d, n, e);
	n = open_chunk(d, 1);
	if (n < 0)
		return dec_fail(d, e,
				"payload chunk %llu failed authentication", no);
	if (emit(d, n, e) < 0)
		return -1;
	return dec_fail(d, e,
			"trailing data after the final payload chunk %llu", no);
}

/*
 * Takes header bytes from p, up to the end of a line: how many, or 0 on
 * failure. The MAC line ends the header.
 */
static size_t
header_feed(struct age_dec *d, const unsigned char *p, size_t len,
	    struct chom_err *e)
{
	const unsigned char *lf = memchr(p, '\n', len);
	size_t il = strlen(intro), have = d->hdr.len, n, ll;
	const unsigned char *line;

	n = lf ? (size_t)(lf - p) + 1 : len;
	if (d->hdr.len + n > HEADER_MAX) {
		dec_fail(d, e, "malformed header: longer than %d bytes",
			 HEADER_MAX);
		return 0;
	}
	if (buf_add(&d->hdr, p, n) < 0) {
		dec_fail(d, e, "out of memory");
		return 0;
	}
	/* Not an age file at all: say so at once. */
	if (have < il && memcmp(d->hdr.p + have, intro + have,
				(d->hdr.len < il ? d->hdr.len : il) - have)) {
		dec_fail(d, e, "malformed header: not an age file");
		return 0;
	}
	if (!lf)
		return n;
	line = d->hdr.p + d->line_start;
	ll = d->hdr.len - d->line_start - 1;
	if (d->line_start == 0 &&
	    (ll != strlen(v1_line) || memcmp(line, v1_line, ll) != 0)) {
		char v[48], shown[64];

		snprintf(v, sizeof(v), "%.*s", (int)(ll < 40 ? ll : 40),
			 (const char *)line);
		chom_escape(v, shown, sizeof(shown));
		dec_fail(d, e, "malformed header: unsupported version \"%s\"",
			 shown);
		return 0;
	}
	if (ll >= 3 && memcmp(line, "---", 3) == 0) {
		if (open_header(d, e) < 0)
			return 0;
	} else {
		d->line_start = d->hdr.len;
	}
	return n;
}

/* The nonce is in: the payload key replaces the file key. */
static int
start_payload(struct age_dec *d, struct chom_err *e)
{
	unsigned char fk[FILE_KEY];
	int rc;

	memcpy(fk, d->key, FILE_KEY);
	rc = hkdf(fk, FILE_KEY, d->nonce, NONCE, "payload", d->key);
	OPENSSL_cleanse(fk, FILE_KEY);
	if (rc < 0)
		return dec_fail(d, e, "HKDF failed");
	d->state = H_PAYLOAD;
	return 0;
}

/* The bytes of the age file itself, after any armor. */
static int
age_feed(struct age_dec *d, const unsigned char *p, size_t len,
	 struct chom_err *e)
{
	while (len > 0) {
		size_t n;

		switch (d->state) {
		case H_HEADER:
			n = header_feed(d, p, len, e);
			if (n == 0)
				return -1;
			p += n;
			len -= n;
			break;
		case H_NONCE:
			n = NONCE - d->noncelen;
			if (n > len)
				n = len;
			memcpy(d->nonce + d->noncelen, p, n);
			d->noncelen += n;
			p += n;
			len -= n;
			if (d->noncelen == NONCE && start_payload(d, e) < 0)
				return -1;
			break;
		case H_PAYLOAD:
			if (d->ctlen == sizeof(d->ct) && full_chunk(d, e) < 0)
				return -1;
			n = sizeof(d->ct) - d->ctlen;
			if (n > len)
				n = len;
			memcpy(d->ct + d->ctlen, p, n);
			d->ctlen += n;
			p += n;
			len -= n;
			break;
		default:
			return dec_fail(d, e,
					"trailing data after the final "
					"payload chunk");
		}
	}
	return 0;
}

/* The end of the age file: the held chunk must be a valid last one. */
static int
age_finish(struct age_dec *d, struct chom_err *e)
{
	unsigned long long no = (unsigned long long)d->counter + 1;
	long n;

	switch (d->state) {
	case H_HEADER:
		if (d->hdr.len == 0)
			return dec_fail(d, e,
					"malformed header: the file is empty");
		return dec_fail(d, e,
				"malformed header: the file ends inside the "
				"header (truncated)");
	case H_NONCE:
		return dec_fail(d, e,
				"malformed header: the file ends before the "
				"payload nonce (truncated)");
	case H_DONE: return 0;
	}
	if (d->ctlen == 0)
		return dec_fail(d, e, "file is truncated");
	if (d->ctlen < TAG)
		return dec_fail(d, e,
				"payload chunk %llu is shorter than its tag "
				"(truncated)",
				no);
	if (d->ctlen == TAG && d->counter > 0)
		return dec_fail(d, e, "final payload chunk %llu is empty", no);
	n = open_chunk(d, 1);
	if (n >= 0) {
		if (emit(d, n, e) < 0)
			return -1;
		d->state = H_DONE;
		return 0;
	}
	if (d->ctlen == sizeof(d->ct) && (n = open_chunk(d, 0)) >= 0) {
		if (emit(d, n, e) < 0)
			return -1;
		return dec_fail(d, e, "file is truncated");
	}
	return dec_fail(d, e, "payload chunk %llu failed authentication", no);
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* One line of armor, without its LF. */
static int
armor_line(struct age_dec *d, char *line, size_t len, struct chom_err *e)
{
	unsigned char out[48];
	size_t i, n;

	d->aline_no++;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	switch (d->astate) {
	case A_PRE:
		for (i = 0; i < len && is_space((unsigned char)line[i]); i++)
			;
		if (i == len) {
			d->aspace += len + 1;
			if (d->aspace > ARMOR_SPACE_MAX)
				return dec_fail(d, e,
						"malformed armor: too much "
						"leading whitespace");
			return 0;
		}
		if (strcmp(line, armor_begin) == 0) {
			d->astate = A_BODY;
			return 0;
		}
		if (strncmp(line, "-----", 5) != 0)
			return dec_fail(d, e,
					"malformed armor: not an age file "
					"(no age header, no armor BEGIN "
					"line)");
		return dec_fail(d, e,
				"malformed armor: line %lu is not the BEGIN "
				"line",
				d->aline_no);
	case A_BODY:
	case A_LAST:
		if (strcmp(line, armor_end) == 0) {
			d->astate = A_DONE;
			d->aspace = 0;
			return 0;
		}
		if (d->astate == A_LAST)
			return dec_fail(d, e,
					"malformed armor: line %lu follows a "
					"short line but is not the END line",
					d->aline_no);
		if (len == 0 || len > COLUMNS)
			return dec_fail(d, e, "malformed armor: line %lu is %s",
					d->aline_no,
					len ? "longer than 64 columns"
					    : "empty");
		if (b64_decode(line, len, 1, out, sizeof(out), &n) < 0)
			return dec_fail(d, e,
					"malformed armor: line %lu is not "
					"canonical base64",
					d->aline_no);
		if (n < sizeof(out))
			d->astate = A_LAST;
		return age_feed(d, out, n, e);
	}
	return dec_fail(d, e, "malformed armor: data after the END line");
}

static int
armor_feed(struct age_dec *d, const unsigned char *p, size_t len,
	   struct chom_err *e)
{
	while (len > 0) {
		const unsigned char *lf;
		size_t n;

		if (d->astate == A_DONE) {
			for (; len > 0; p++, len--) {
				if (!is_space(*p))
					return dec_fail(d, e,
							"malformed armor: data "
							"after the END line");
				if (++d->aspace > ARMOR_SPACE_MAX)
					return dec_fail(d, e,
							"malformed armor: too "
							"much trailing "
							"whitespace");
			}
			return 0;
		}
		lf = memchr(p, '\n', len);
		n = lf ? (size_t)(lf - p) + 1 : len;
		if (d->alen + n >= sizeof(d->aline))
			return dec_fail(d, e,
					"malformed armor: line %lu is "
					"longer than 64 columns",
					d->aline_no + 1);
		memcpy(d->aline + d->alen, p, n);
		d->alen += n;
		p += n;
		len -= n;
		if (lf) {
			size_t l = d->alen - 1;

			d->alen = 0;
			if (armor_line(d, d->aline, l, e) < 0)
				return -1;
		}
	}
	return 0;
}

static int
armor_finish(struct age_dec *d, struct chom_err *e)
{
	if (d->alen > 0) {
		size_t l = d->alen;

		d->alen = 0;
		if (armor_line(d, d->aline, l, e) < 0)
			return -1;
	}
	if (d->astate == A_PRE)
		return dec_fail(d, e, "malformed armor: no BEGIN line");
	if (d->astate != A_DONE)
		return dec_fail(d, e,
				"malformed armor: no END line (truncated)");
	return 0;
}

static int
dec_write(struct chom_sink *sink, const void *buf, size_t len,
	  struct chom_err *e)
{
	struct age_dec *d = (struct age_dec *)sink;
	const unsigned char *p = buf;

	if (d->failed) {
		*e = d->err;
		return -1;
	}
	if (len == 0)
		return 0;
	/* A binary age file starts with its version line, "age-...". */
	if (d->mode == M_UNKNOWN)
		d->mode = p[0] == 'a' ? M_BINARY : M_ARMOR;
	if (d->mode == M_ARMOR)
		return armor_feed(d, p, len, e);
	return age_feed(d, p, len, e);
}

static int
dec_close(struct chom_sink *sink, struct chom_err *e)
{
	struct age_dec *d = (struct age_dec *)sink;

	if (d->failed) {
		*e = d->err;
		return -1;
	}
	if (d->mode == M_ARMOR && armor_finish(d, e) < 0)
		return -1;
	if (age_finish(d, e) < 0)
		return -1;
	d->failed = 1; /* closed: nothing more may be written */
	d->err.code = CHOM_EXIT_FAIL;
	snprintf(d->err.msg, sizeof(d->err.msg), "age decryption is closed");
	return chom_sink_close(d->next, e);
}

static void
dec_free(struct chom_sink *sink)
{
	struct age_dec *d = (struct age_dec *)sink;

	chom_sink_free(d->next);
	chom_age_keys_free(d->keys);
	EVP_CIPHER_CTX_free(d->ctx);
	if (d->hdr.p)
		OPENSSL_cleanse(d->hdr.p, d->hdr.len);
	free(d->hdr.p);
	OPENSSL_cleanse(d, sizeof(*d));
	free(d);
}

struct chom_sink *
chom_age_decrypt_new(struct chom_sink *next,
		     const struct chom_age_keys *identities, struct chom_err *e)
{
	struct age_dec *d;
	size_t i, usable = 0;

	for (i = 0; identities && i < identities->n; i++)
		usable += identities->v[i].kind != K_RECIPIENT;
	if (!usable) {
		chom_err_set(e, CHOM_EXIT_USAGE, "no identity to decrypt with");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	d->keys = keys_dup(identities, e);
	d->ctx = EVP_CIPHER_CTX_new();
	if (!d->keys || !d->ctx) {
		if (d->keys)
			chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		dec_free(&d->sink);
		return NULL;
	}
	d->sink.write = dec_write;
	d->sink.close = dec_close;
	d->sink.free = dec_free;
	d->next = next;
	return &d->sink;
}

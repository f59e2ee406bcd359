/*
 * The age v1 file format (c2sp.org/age): X25519 and scrypt recipients,
 * the HMAC'd header, the ChaCha20-Poly1305 STREAM payload and the ASCII
 * armor, in both directions, as streaming sinks (sink.h).
 */
#ifndef CHOM_AGE_H
#define CHOM_AGE_H

#include <stddef.h>

#include "err.h"
#include "sink.h"

/* Room for "AGE-SECRET-KEY-1..." (74 characters) and "age1..." (62). */
#define CHOM_AGE_SECRET_SIZE 80
#define CHOM_AGE_RECIPIENT_SIZE 72

/* The default and the largest scrypt work factors, as base-2 logarithms. */
#define CHOM_AGE_SCRYPT_LOG2N 18
#define CHOM_AGE_SCRYPT_MAX_LOG2N 22

/*
 * A set of keys: the recipients to encrypt to, or the identities to decrypt
 * with (an identity also encrypts to its recipient). Secrets are wiped when
 * the set is freed. A key or key file that is refused gives CHOM_EXIT_USAGE.
 */
struct chom_age_keys;

struct chom_age_keys *chom_age_keys_new(void);
void chom_age_keys_free(struct chom_age_keys *k);

/*
 * Key i of the set, as the manifest records it: "age1..." for a recipient
 * or for an identity (its recipient), "scrypt" for a passphrase. Returns the
 * number of keys (nothing written when i is past them).
 */
size_t chom_age_keys_describe(const struct chom_age_keys *k, size_t i,
			      char *buf, size_t size);

/* An X25519 recipient, "age1...". */
int chom_age_add_recipient(struct chom_age_keys *k, const char *age1,
			   struct chom_err *e);
/* Recipients one a line; blank lines and lines starting with # skipped. */
int chom_age_add_recipients_file(struct chom_age_keys *k, const char *path,
				 struct chom_err *e);
/*
 * A passphrase. To encrypt, it must be the set's only key; log2_n is the
 * scrypt work factor (0: CHOM_AGE_SCRYPT_LOG2N). To decrypt, it is tried on
 * scrypt stanzas whose work factor is at most CHOM_AGE_SCRYPT_MAX_LOG2N.
 */
int chom_age_add_passphrase(struct chom_age_keys *k, const char *passphrase,
			    int log2_n, struct chom_err *e);
/* An X25519 identity, "AGE-SECRET-KEY-1...". */
int chom_age_add_identity(struct chom_age_keys *k, const char *secret,
			  struct chom_err *e);
/*
 * An identity file as age-keygen writes it: # comments, blank lines and
 * AGE-SECRET-KEY-1 lines. Read with chom_secret_read(), so a file that
 * group or others may read is refused.
 */
int chom_age_add_identities_file(struct chom_age_keys *k, const char *path,
				 struct chom_err *e);

/* A new X25519 identity and its recipient, NUL-terminated. */
int chom_age_keygen(char *secret, size_t ssize, char *recipient, size_t rsize,
		    struct chom_err *e);
/* The recipient of an identity. */
int chom_age_recipient_of(const char *secret, char *recipient, size_t rsize,
			  struct chom_err *e);

/*
 * A sink that encrypts what it is given to recipients and writes the binary
 * age file into next. NULL with e set on failure; next is then left to the
 * caller. Otherwise the new sink owns next.
 */
struct chom_sink *chom_age_encrypt_new(struct chom_sink *next,
				       const struct chom_age_keys *recipients,
				       struct chom_err *e);
/*
 * A sink that decrypts an age file with identities and writes the
 * plaintext into next, one chunk at a time and only once that chunk has
 * authenticated. close() fails on a truncated file. Input that does not
 * start with the binary format's "age-encryption.org/" must be strict
 * armor: blank lines at most, then "-----BEGIN AGE ENCRYPTED FILE-----",
 * canonical padded base64 in lines of 64 columns, the END line. Errors
 * have code CHOM_EXIT_FAIL and a message naming what failed ("malformed
 * header: ...", "malformed armor: ...", "header MAC mismatch", "no identity
 * matches any recipient stanza", "payload chunk N failed authentication",
 * "file is truncated", ...). Ownership of next as for chom_age_encrypt_new.
 */
struct chom_sink *chom_age_decrypt_new(struct chom_sink *next,
				       const struct chom_age_keys *identities,
				       struct chom_err *e);

#endif

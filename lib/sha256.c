#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcode.h"
#include "sha256.h"

struct chom_sha256 {
	EVP_MD_CTX *ctx;
};

struct chom_sha256 *
chom_sha256_new(void)
{
	struct chom_sha256 *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
		return NULL;
	}
	return h;
}

void
chom_sha256_update(struct chom_sha256 *h, const void *data, size_t len)
{
	EVP_DigestUpdate(h->ctx, data, len);
}

void
chom_sha256_final_hex(struct chom_sha256 *h, char hex[CHOM_SHA256_HEXLEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	EVP_DigestFinal_ex(h->ctx, md, &len);
	for (i = 0; i < len && i < CHOM_SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * i] = '\0';
	EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

void
chom_sha256_free(struct chom_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int
chom_sha256_parse_hex(const char *s, char out[CHOM_SHA256_HEXLEN + 1])
{
	int i;

	for (i = 0; i < CHOM_SHA256_HEXLEN; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	if (s[i] != '\0')
		return -1;
	out[i] = '\0';
	return 0;
}

int
chom_sha256_file(const char *path, char hex[CHOM_SHA256_HEXLEN + 1],
		 struct chom_err *e)
{
	struct chom_sha256 *h;
	char buf[1 << 16];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", path);
	h = chom_sha256_new();
	if (!h) {
		close(fd);
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "SHA-256: out of memory");
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			chom_err_sys(e, CHOM_EXIT_FAIL, "read %s", path);
			chom_sha256_free(h);
			close(fd);
			return -1;
		}
		chom_sha256_update(h, buf, (size_t)n);
	}
	close(fd);
	chom_sha256_final_hex(h, hex);
	chom_sha256_free(h);
	return 0;
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

int
chom_sha256_lookup(const char *sumfile, const char *name,
		   char hex[CHOM_SHA256_HEXLEN + 1], struct chom_err *e)
{
	char *line = NULL, digest[CHOM_SHA256_HEXLEN + 1];
	size_t cap = 0, lineno = 0, entries = 0;
	int found = 0;
	ssize_t len;
	FILE *f;

	f = fopen(sumfile, "r");
	if (!f)
		return chom_err_sys(e, CHOM_EXIT_USAGE, "checksums %s",
				    sumfile);
	while ((len = getline(&line, &cap, f)) > 0) {
		char *file;

		lineno++;
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (len < CHOM_SHA256_HEXLEN + 2 ||
		    line[CHOM_SHA256_HEXLEN] != ' ' ||
		    (line[CHOM_SHA256_HEXLEN + 1] != ' ' &&
		     line[CHOM_SHA256_HEXLEN + 1] != '*')) {
			fclose(f);
			free(line);
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "%s:%zu: not a sha256sum line",
					    sumfile, lineno);
		}
		line[CHOM_SHA256_HEXLEN] = '\0';
		file = line + CHOM_SHA256_HEXLEN + 2;
		if (chom_sha256_parse_hex(line, digest) < 0) {
			fclose(f);
			free(line);
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "%s:%zu: not a SHA-256 digest",
					    sumfile, lineno);
		}
		entries++;
		if (name && strcmp(base_name(file), base_name(name)) == 0 &&
		    !found) {
			memcpy(hex, digest, sizeof(digest));
			found = 1;
		} else if (!name) {
			memcpy(hex, digest, sizeof(digest));
		}
	}
	fclose(f);
	free(line);
	if (!name) {
		if (entries == 1)
			return 0;
		return chom_err_set(
		    e, CHOM_EXIT_FAIL,
		    "%s holds %zu entries; with the artifact on "
		    "stdin it must hold exactly one",
		    sumfile, entries);
	}
	if (!found)
		return chom_err_set(e, CHOM_EXIT_FAIL, "%s has no entry for %s",
				    sumfile, base_name(name));
	return 0;
}

/*
 * Compiled Hyperscan databases kept on disk between runs. Why: compiling
 * the pattern databases of a large rule set (the SigmaHQ corpus: thousands
 * of patterns per field) takes seconds to tens of seconds, and a restart or
 * a SIGHUP reload of the same rules would pay it again. A database is
 * stored under a name derived from everything that determines it (the
 * Hyperscan version, the patterns with their flags and ids in order), so a
 * changed rule set simply misses and compiles; Hyperscan itself refuses a
 * database made for another platform, which also counts as a miss.
 *
 * File: "MMHSDB01", u32 removed count, u32 removed[] (pattern indexes that
 * Hyperscan refused and that went to PCRE2), u64 size, the serialized
 * database. Written to a temporary name and renamed, so a reader never sees
 * half a file. Anything unexpected in a file is a miss, never an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fdio.h"
#include "core/log.h"
#include "detect/sigma_int.h"

#define HSC_MAGIC "MMHSDB01"
#define HSC_MAX_FILE ((uint64_t)1 << 31)

static uint64_t hsc_mix(uint64_t h, const void *p, size_t n, uint64_t k)
{
	const unsigned char *b = p;

	while (n >= 8) {
		uint64_t w;

		memcpy(&w, b, 8);
		h = (h ^ w) * k;
		h ^= h >> 31;
		b += 8;
		n -= 8;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, b, n);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	return h;
}

void sigma_hscache_key(const char *const *exprs, const unsigned *flags,
		       const unsigned *ids, uint32_t n, char out[33])
{
	static const uint64_t k1 = 0xff51afd7ed558ccdull, k2 = 0xc4ceb9fe1a85ec53ull;
	const char *ver = hs_version();
	uint64_t a = 0x6a09e667f3bcc908ull, b = 0xbb67ae8584caa73bull;

	a = hsc_mix(a, ver, strlen(ver), k1);
	b = hsc_mix(b, ver, strlen(ver), k2);
	a = hsc_mix(a, &n, sizeof(n), k1);
	b = hsc_mix(b, &n, sizeof(n), k2);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t hdr[3] = { flags[i], ids[i], (uint32_t)strlen(exprs[i]) };

		a = hsc_mix(a, hdr, sizeof(hdr), k1);
		b = hsc_mix(b, hdr, sizeof(hdr), k2);
		a = hsc_mix(a, exprs[i], hdr[2], k1);
		b = hsc_mix(b, exprs[i], hdr[2], k2);
	}
	a ^= a >> 33;
	a *= k2;
	a ^= a >> 33;
	b ^= b >> 33;
	b *= k1;
	b ^= b >> 33;
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

int sigma_hscache_load(const char *dir, const char *key, hs_database_t **db,
		       uint32_t **removed, uint32_t *n_removed)
{
	char path[4096], magic[8];
	uint32_t nr = 0, *rm = NULL;
	uint64_t size = 0;
	char *bytes = NULL;
	struct stat st;
	int fd, ok = 0;

	*db = NULL;
	*removed = NULL;
	*n_removed = 0;
	if (snprintf(path, sizeof(path), "%s/%s.hs", dir, key) >= (int)sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || fd_read_full(fd, magic, 8) < 0 ||
	    memcmp(magic, HSC_MAGIC, 8) != 0 || fd_read_full(fd, &nr, 4) < 0 ||
	    (uint64_t)nr * 4 + 20 > (uint64_t)st.st_size)
		goto out;
	rm = malloc(nr ? nr * sizeof(*rm) : 1);
	if (!rm || (nr && fd_read_full(fd, rm, nr * sizeof(*rm)) < 0) ||
	    fd_read_full(fd, &size, 8) < 0 || size == 0 || size > HSC_MAX_FILE ||
	    20 + (uint64_t)nr * 4 + size != (uint64_t)st.st_size)
		goto out;
	bytes = malloc(size);
	if (!bytes || fd_read_full(fd, bytes, size) < 0)
		goto out;
	if (hs_deserialize_database(bytes, size, db) != HS_SUCCESS) {
		*db = NULL;
		goto out;
	}
	/* Used now: pruning goes by modification time. */
	(void)futimens(fd, NULL);
	*removed = rm;
	*n_removed = nr;
	rm = NULL;
	ok = 1;
out:
	close(fd);
	free(rm);
	free(bytes);
	return ok;
}

void sigma_hscache_store(const char *dir, const char *key, const hs_database_t *db,
			 const uint32_t *removed, uint32_t n_removed)
{
	char path[4096], tmp[4096 + 16];
	char *bytes = NULL;
	size_t size = 0;
	uint64_t sz;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s.hs", dir, key) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp))
		return;
	if (hs_serialize_database(db, &bytes, &size) != HS_SUCCESS)
		return;
	(void)mkdir(dir, 0750);
	fd = mkstemp(tmp);
	if (fd < 0) {
		free(bytes);
		return;
	}
	sz = size;
	if (fd_write_full(fd, HSC_MAGIC, 8) < 0 || fd_write_full(fd, &n_removed, 4) < 0 ||
	    (n_removed && fd_write_full(fd, removed, n_removed * sizeof(*removed)) < 0) ||
	    fd_write_full(fd, &sz, 8) < 0 || fd_write_full(fd, bytes, size) < 0 ||
	    close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		log_msg(LOG_WARN, "detect", "event=hs_cache_write_failed dir=\"%s\" err=\"%s\"",
			dir, strerror(errno));
	}
	free(bytes);
}

void sigma_hscache_prune(const char *dir, int64_t max_age_s)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	time_t now = time(NULL);

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		struct stat st;
		size_t n = strlen(e->d_name);

		if (n < 4 || (strcmp(e->d_name + n - 3, ".hs") != 0 && !strstr(e->d_name, ".tmp")))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) == 0 && now - st.st_mtime > max_age_s)
			unlink(path);
	}
	closedir(d);
}

/*
 * conf_util: see conf_util.h.
 */
#include "conf_util.h"

#include "mail/mdns.h"
#include "mail/msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *conf_root(void)
{
	static char root[4096];
	if (root[0])
		return root;
	const char *env = getenv("MAMORI_CONFORMANCE_DIR");
	if (env && *env) {
		snprintf(root, sizeof(root), "%s", env);
	} else {
		const char *src = getenv("MAMORI_SOURCE_DIR");
		snprintf(root, sizeof(root), "%s/../shared", src && *src ? src : ".");
	}
	struct stat st;
	if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"\n*** CONFORMANCE DATA MISSING: %s does not exist.\n"
			"*** Set MAMORI_CONFORMANCE_DIR to the directory holding mail-suites/.\n\n",
			root);
		exit(1);
	}
	return root;
}

const char *conf_path(const char *rel)
{
	static char path[8192];
	snprintf(path, sizeof(path), "%s/%s", conf_root(), rel);
	return path;
}

char *conf_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			char *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

void conf_result(struct conf_tally *t, const char *id, int ok, const char *why)
{
	if (ok) {
		t->passed++;
		return;
	}
	t->failed++;
	printf("FAIL %s %s: %s\n", t->suite, id, why ? why : "");
}

void conf_report(const struct conf_tally *t)
{
	if (t->skipped)
		printf("%s: %u passed, %u failed, %u skipped\n", t->suite, t->passed, t->failed,
		       t->skipped);
	else
		printf("%s: %u passed, %u failed\n", t->suite, t->passed, t->failed);
	fflush(stdout);
}

struct msg *conf_mailauth_msg(const char *txt, size_t len, struct mdns *z)
{
	const char *p = txt, *end = txt + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le > p && le[-1] == '\r')
			le--;
		if (le == p) {
			p = nl ? nl + 1 : end;
			break;
		}
		const char *sp = memchr(p, ' ', (size_t)(le - p));
		if (sp) {
			char name[300];
			snprintf(name, sizeof(name), "%.*s", (int)(sp - p), p);
			mdns_zone_add_txt(z, name, sp + 1, (size_t)(le - sp - 1));
		}
		p = nl ? nl + 1 : end;
	}
	int err = 0;
	return msg_parse(p, (size_t)(end - p), &err, NULL);
}

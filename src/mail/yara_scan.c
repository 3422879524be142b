/*
 * yara_scan: load a rules directory, scan buffers. See yara_scan.h for the
 * why of skipping bad files, namespaces and reference counts.
 *
 * How bad files are skipped: a YARA compiler that saw an error cannot be
 * used again, so each file is first compiled alone in a scratch compiler;
 * the files that pass are then compiled together. If the final compile
 * still fails (two files that clash), the load fails and says why.
 */
#include "mail/yara_scan.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yara.h>

#include "core/err.h"

struct yara_rules {
	YR_RULES *rules;
	size_t nrules, nfiles;
	atomic_int refs;
};

/* libyara's global state: initialised by the first rule set, finalised
 * with the last (yr_initialize itself is not safe to race). */
static pthread_mutex_t yr_lock = PTHREAD_MUTEX_INITIALIZER;
static int yr_users;

static int yr_get(void)
{
	int rc = 0;
	pthread_mutex_lock(&yr_lock);
	if (yr_users == 0 && yr_initialize() != ERROR_SUCCESS)
		rc = M_ENOMEM;
	if (rc == 0)
		yr_users++;
	pthread_mutex_unlock(&yr_lock);
	return rc;
}

static void yr_put(void)
{
	pthread_mutex_lock(&yr_lock);
	if (yr_users > 0 && --yr_users == 0)
		yr_finalize();
	pthread_mutex_unlock(&yr_lock);
}

/* ---- errors, collected as "file:line: message" lines ---- */

struct errbuf {
	char *p;
	size_t cap, n;
	int errors;   /* errors reported for the current compile */
};

static void eb_add(struct errbuf *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void eb_add(struct errbuf *e, const char *fmt, ...)
{
	if (!e->p || e->cap == 0 || e->n + 1 >= e->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(e->p + e->n, e->cap - e->n, fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	e->n += (size_t)w < e->cap - e->n ? (size_t)w : e->cap - e->n - 1;
}

static void on_compile(int level, const char *file, int line,
		       const YR_RULE *rule, const char *msg, void *user)
{
	struct errbuf *e = user;
	(void)rule;
	if (level != YARA_ERROR_LEVEL_ERROR)
		return;
	e->errors++;
	eb_add(e, "%s:%d: %s\n", file ? file : "?", line, msg ? msg : "error");
}

static int has_rule_ext(const char *n)
{
	size_t l = strlen(n);
	return (l > 4 && strcmp(n + l - 4, ".yar") == 0) ||
	       (l > 5 && strcmp(n + l - 5, ".yara") == 0);
}

static int rule_file(const struct dirent *d)
{
	return d->d_name[0] != '.' && has_rule_ext(d->d_name);
}

/* Adds one file to compiler c under namespace ns. Returns the errors. */
static int add_file(YR_COMPILER *c, const char *path, const char *ns,
		    const char *shown)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = yr_compiler_add_file(c, f, ns, shown);
	fclose(f);
	return n;
}

int yara_rules_load_dir(const char *dir, struct yara_rules **out, char *errs,
			size_t errlen, size_t *nbad)
{
	struct dirent **list = NULL;
	struct errbuf eb = {errs, errlen, 0, 0};
	YR_COMPILER *c = NULL;
	struct yara_rules *r = NULL;
	char *ok = NULL;
	int n = -1, rc = 0, got = 0;
	size_t bad = 0;

	*out = NULL;
	if (errs && errlen)
		errs[0] = '\0';
	if (nbad)
		*nbad = 0;
	n = scandir(dir, &list, rule_file, alphasort);
	if (n < 0) {
		eb_add(&eb, "%s: cannot read the directory\n", dir);
		return M_ENOTFOUND;
	}
	if (yr_get() != 0) {
		rc = M_ENOMEM;
		goto out_nofini;
	}
	got = 1;
	ok = calloc((size_t)n + 1, 1);
	r = calloc(1, sizeof(*r));
	if (!ok || !r) {
		rc = M_ENOMEM;
		goto out;
	}
	/* pass 1: each file alone */
	for (int i = 0; i < n && i < YARA_MAX_FILES; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (st.st_size > (off_t)YARA_MAX_FILE_BYTES) {
			eb_add(&eb, "%s: larger than %u bytes, skipped\n",
			       list[i]->d_name, YARA_MAX_FILE_BYTES);
			bad++;
			continue;
		}
		YR_COMPILER *t;
		if (yr_compiler_create(&t) != ERROR_SUCCESS) {
			rc = M_ENOMEM;
			goto out;
		}
		eb.errors = 0;
		yr_compiler_set_callback(t, on_compile, &eb);
		/* the full path as the file name: YARA resolves an include
		 * relative to it */
		int e = add_file(t, path, list[i]->d_name, path);
		yr_compiler_destroy(t);
		if (e == 0) {
			ok[i] = 1;
		} else {
			if (e < 0)
				eb_add(&eb, "%s: cannot open\n", list[i]->d_name);
			bad++;
		}
	}
	if (n > YARA_MAX_FILES)
		eb_add(&eb, "%s: more than %d rule files; the rest skipped\n", dir,
		       YARA_MAX_FILES);
	/* pass 2: the good ones together */
	if (yr_compiler_create(&c) != ERROR_SUCCESS) {
		rc = M_ENOMEM;
		goto out;
	}
	eb.errors = 0;
	yr_compiler_set_callback(c, on_compile, &eb);
	for (int i = 0; i < n && i < YARA_MAX_FILES; i++) {
		if (!ok[i])
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (add_file(c, path, list[i]->d_name, path) != 0) {
			rc = M_EIO; /* changed under us, or clashes with another */
			goto out;
		}
		r->nfiles++;
	}
	if (yr_compiler_get_rules(c, &r->rules) != ERROR_SUCCESS) {
		rc = M_ENOMEM;
		goto out;
	}
	YR_RULE *rule;
	yr_rules_foreach(r->rules, rule) r->nrules++;
	atomic_init(&r->refs, 1);
	*out = r;
	r = NULL;
	got = 0; /* the rule set holds the libyara reference now */
out:
	if (c)
		yr_compiler_destroy(c);
	if (r) {
		if (r->rules)
			yr_rules_destroy(r->rules);
		free(r);
	}
	if (got)
		yr_put();
out_nofini:
	free(ok);
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	if (nbad)
		*nbad = bad;
	return rc;
}

size_t yara_rules_count(const struct yara_rules *r)
{
	return r ? r->nrules : 0;
}

size_t yara_rules_files(const struct yara_rules *r)
{
	return r ? r->nfiles : 0;
}

struct yara_rules *yara_rules_ref(struct yara_rules *r)
{
	if (r)
		atomic_fetch_add(&r->refs, 1);
	return r;
}

void yara_rules_free(struct yara_rules *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	yr_rules_destroy(r->rules);
	free(r);
	yr_put();
}

/* ---- scanning ---- */

static void cut(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static int on_scan(YR_SCAN_CONTEXT *ctx, int message, void *data, void *user)
{
	struct yara_result *res = user;
	(void)ctx;
	if (message != CALLBACK_MSG_RULE_MATCHING)
		return CALLBACK_CONTINUE;
	if (res->n >= YARA_MAX_MATCHES) {
		res->limited = 1;
		return CALLBACK_ABORT;
	}
	const YR_RULE *rule = data;
	struct yara_match *m = &res->m[res->n++];
	cut(m->rule, sizeof(m->rule), rule->identifier);
	cut(m->ns, sizeof(m->ns), rule->ns ? rule->ns->name : "");
	m->tags[0] = '\0';
	const char *tag;
	size_t tl = 0;
	yr_rule_tags_foreach(rule, tag)
	{
		size_t l = strlen(tag);
		if (tl + l + 2 > sizeof(m->tags))
			break;
		if (tl)
			m->tags[tl++] = ' ';
		memcpy(m->tags + tl, tag, l);
		tl += l;
		m->tags[tl] = '\0';
	}
	return CALLBACK_CONTINUE;
}

int yara_scan_mem(const struct yara_rules *r, const void *data, size_t len,
		  int timeout_s, struct yara_result *res)
{
	YR_SCANNER *s;

	memset(res, 0, sizeof(*res));
	if (!r || !r->rules)
		return M_EINVAL;
	if (yr_scanner_create(r->rules, &s) != ERROR_SUCCESS)
		return M_ENOMEM;
	yr_scanner_set_callback(s, on_scan, res);
	yr_scanner_set_timeout(s, timeout_s > 0 ? timeout_s : 10);
	yr_scanner_set_flags(s, SCAN_FLAGS_REPORT_RULES_MATCHING);
	int e = yr_scanner_scan_mem(s, data ? data : (const void *)"", len);
	yr_scanner_destroy(s);
	if (e == ERROR_SUCCESS || e == ERROR_CALLBACK_ERROR)
		return 0;
	if (e == ERROR_SCAN_TIMEOUT) {
		res->timed_out = 1;
		return M_EAGAIN;
	}
	return e == ERROR_INSUFFICIENT_MEMORY ? M_ENOMEM : M_EIO;
}

/*
 * dmarc_report: see dmarc_report.h.
 *
 * A row's key is its reported fields joined by '\n' in one allocation (the
 * fields are domain names, an address and small enums; control characters
 * are replaced so '\n' cannot appear inside one), found through an
 * open-addressing index sized for the row bound. The XML follows the
 * RFC 7489 Appendix C schema, element order included.
 */
#include "mail/dmarc_report.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <zlib.h>

#include "core/err.h"
#include "mail/spf.h"

enum {
	F_DOMAIN, F_IP, F_DISP, F_DKIM_EVAL, F_SPF_EVAL, F_FROM, F_DKIM_DOM, F_DKIM_RES,
	F_SPF_DOM, F_SPF_RES, F_COUNT
};

struct row {
	char *key; /* begin '\n' fields..., NUL-terminated */
	size_t keylen;
	unsigned hash;
	unsigned long long count;
	int p, sp, np, adkim, aspf;
	unsigned pct;
	char fo[16];
};

struct dmarc_report {
	pthread_mutex_t mu;
	unsigned period;
	size_t max_rows, nrows, idx_cap;
	struct row *rows;
	long *idx; /* -1 empty, else index into rows */
};

struct dmarc_report *dmarc_report_new(unsigned period, size_t max_rows)
{
	struct dmarc_report *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->period = period ? period : 86400;
	r->max_rows = max_rows ? max_rows : DMARC_REPORT_MAX_ROWS;
	r->idx_cap = 16;
	while (r->idx_cap < 2 * r->max_rows)
		r->idx_cap *= 2;
	r->rows = calloc(r->max_rows, sizeof(*r->rows));
	r->idx = malloc(r->idx_cap * sizeof(*r->idx));
	if (!r->rows || !r->idx || pthread_mutex_init(&r->mu, NULL) != 0) {
		free(r->rows);
		free(r->idx);
		free(r);
		return NULL;
	}
	for (size_t i = 0; i < r->idx_cap; i++)
		r->idx[i] = -1;
	return r;
}

static void clear_rows(struct dmarc_report *r)
{
	for (size_t i = 0; i < r->nrows; i++)
		free(r->rows[i].key);
	r->nrows = 0;
	for (size_t i = 0; i < r->idx_cap; i++)
		r->idx[i] = -1;
}

void dmarc_report_free(struct dmarc_report *r)
{
	if (!r)
		return;
	clear_rows(r);
	pthread_mutex_destroy(&r->mu);
	free(r->rows);
	free(r->idx);
	free(r);
}

size_t dmarc_report_rows(struct dmarc_report *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->nrows;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Append a field, lower-cased for names, control characters replaced. */
static void key_put(struct buf *b, const char *s, int lower)
{
	buf_putc(b, '\n');
	for (size_t i = 0; s && s[i] && i < 253; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			c = '?';
		else if (lower && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		buf_putc(b, (char)c);
	}
}

static unsigned key_hash(const char *k, size_t n)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

/* The DKIM signature to report: the first aligned pass, else the first
 * pass, else the first. */
static const struct dmarc_dkim *pick_dkim(const struct dmarc_auth *in)
{
	const struct dmarc_dkim *first_pass = NULL;
	if (!in->dkim || in->ndkim == 0)
		return NULL;
	for (size_t i = 0; i < in->ndkim; i++) {
		if (!in->dkim[i].pass || !in->dkim[i].d)
			continue;
		if (!first_pass)
			first_pass = &in->dkim[i];
		if (in->from_domain && strcasecmp(in->dkim[i].d, in->from_domain) == 0)
			return &in->dkim[i];
	}
	return first_pass ? first_pass : &in->dkim[0];
}

int dmarc_report_add(struct dmarc_report *r, time_t now, int af, const uint8_t *ip,
		     const struct dmarc_auth *in, const struct dmarc_outcome *o)
{
	if (!r || !in || !o || !ip ||
	    (o->result != DMARC_RESULT_PASS && o->result != DMARC_RESULT_FAIL))
		return M_EINVAL;
	char ipt[INET6_ADDRSTRLEN];
	if (!inet_ntop(af == AF_INET6 ? AF_INET6 : AF_INET, ip, ipt, sizeof(ipt)))
		return M_EINVAL;
	long long begin = (long long)now - (long long)now % (long long)r->period;
	const struct dmarc_dkim *dk = pick_dkim(in);
	struct buf k;
	buf_init(&k, 4096);
	buf_printf(&k, "%lld", begin);
	key_put(&k, o->record_domain, 1);
	key_put(&k, ipt, 1);
	key_put(&k, dmarc_policy_str(o->disposition), 0);
	key_put(&k, o->dkim_aligned ? "pass" : "fail", 0);
	key_put(&k, o->spf_aligned ? "pass" : "fail", 0);
	key_put(&k, in->from_domain, 1);
	key_put(&k, dk ? dk->d : "", 1);
	key_put(&k, dk ? (dk->pass ? "pass" : "fail") : "", 0);
	key_put(&k, in->spf_domain, 1);
	key_put(&k, spf_result_str((enum spf_result)in->spf_result), 0);
	if (buf_cstr(&k) < 0) {
		buf_fini(&k);
		return M_ENOMEM;
	}
	unsigned h = key_hash(k.p, k.len);
	int rc = 0;
	pthread_mutex_lock(&r->mu);
	size_t slot = h & (r->idx_cap - 1);
	while (r->idx[slot] >= 0) {
		struct row *w = &r->rows[r->idx[slot]];
		if (w->hash == h && w->keylen == k.len && memcmp(w->key, k.p, k.len) == 0)
			break;
		slot = (slot + 1) & (r->idx_cap - 1);
	}
	struct row *w;
	if (r->idx[slot] >= 0) {
		w = &r->rows[r->idx[slot]];
	} else if (r->nrows == r->max_rows) {
		rc = M_ELIMIT;
		goto out;
	} else {
		w = &r->rows[r->nrows];
		memset(w, 0, sizeof(*w));
		w->key = k.p; /* the row takes the buffer */
		k.p = NULL;
		w->keylen = k.len;
		w->hash = h;
		r->idx[slot] = (long)r->nrows++;
	}
	w->count++;
	w->p = o->rec.p;
	w->sp = o->rec.sp;
	w->np = o->rec.np;
	w->adkim = o->rec.adkim;
	w->aspf = o->rec.aspf;
	w->pct = o->rec.pct;
	snprintf(w->fo, sizeof(w->fo), "%s", o->rec.fo);
out:
	pthread_mutex_unlock(&r->mu);
	if (k.p)
		buf_fini(&k);
	return rc;
}

/* ---- SQLite ---- */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS dmarc_agg("
	" begin INTEGER NOT NULL, domain TEXT NOT NULL, source_ip TEXT NOT NULL,"
	" disposition TEXT NOT NULL, dkim_eval TEXT NOT NULL, spf_eval TEXT NOT NULL,"
	" header_from TEXT NOT NULL, dkim_domain TEXT NOT NULL, dkim_result TEXT NOT NULL,"
	" spf_domain TEXT NOT NULL, spf_result TEXT NOT NULL, count INTEGER NOT NULL,"
	" PRIMARY KEY(begin, domain, source_ip, disposition, dkim_eval, spf_eval,"
	"  header_from, dkim_domain, dkim_result, spf_domain, spf_result));"
	"CREATE TABLE IF NOT EXISTS dmarc_agg_policy("
	" begin INTEGER NOT NULL, domain TEXT NOT NULL, p INTEGER, sp INTEGER, np INTEGER,"
	" adkim INTEGER, aspf INTEGER, pct INTEGER, fo TEXT,"
	" PRIMARY KEY(begin, domain));";

int dmarc_report_schema(struct sqlite3 *db)
{
	return sqlite3_exec(db, schema_sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : M_EIO;
}

static const char row_sql[] =
	"INSERT INTO dmarc_agg VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"
	" ON CONFLICT DO UPDATE SET count = count + excluded.count";
static const char policy_sql[] =
	"INSERT INTO dmarc_agg_policy VALUES(?,?,?,?,?,?,?,?,?)"
	" ON CONFLICT DO UPDATE SET p = excluded.p, sp = excluded.sp, np = excluded.np,"
	" adkim = excluded.adkim, aspf = excluded.aspf, pct = excluded.pct, fo = excluded.fo";

static int flush_row(sqlite3_stmt *rs, sqlite3_stmt *ps, const struct row *w)
{
	const char *f[F_COUNT];
	size_t fl[F_COUNT];
	const char *p = strchr(w->key, '\n');
	long long begin = strtoll(w->key, NULL, 10);
	for (int i = 0; i < F_COUNT; i++) {
		if (!p)
			return M_EINVAL;
		f[i] = p + 1;
		p = strchr(f[i], '\n');
		fl[i] = p ? (size_t)(p - f[i]) : strlen(f[i]);
	}
	sqlite3_reset(rs);
	sqlite3_bind_int64(rs, 1, begin);
	for (int i = 0; i < F_COUNT; i++)
		sqlite3_bind_text(rs, i + 2, f[i], (int)fl[i], SQLITE_TRANSIENT);
	sqlite3_bind_int64(rs, 12, (sqlite3_int64)w->count);
	if (sqlite3_step(rs) != SQLITE_DONE)
		return M_EIO;
	sqlite3_reset(ps);
	sqlite3_bind_int64(ps, 1, begin);
	sqlite3_bind_text(ps, 2, f[F_DOMAIN], (int)fl[F_DOMAIN], SQLITE_TRANSIENT);
	sqlite3_bind_int(ps, 3, w->p);
	sqlite3_bind_int(ps, 4, w->sp);
	sqlite3_bind_int(ps, 5, w->np);
	sqlite3_bind_int(ps, 6, w->adkim);
	sqlite3_bind_int(ps, 7, w->aspf);
	sqlite3_bind_int(ps, 8, (int)w->pct);
	sqlite3_bind_text(ps, 9, w->fo, -1, SQLITE_TRANSIENT);
	return sqlite3_step(ps) == SQLITE_DONE ? 0 : M_EIO;
}

int dmarc_report_flush(struct dmarc_report *r, struct sqlite3 *db)
{
	sqlite3_stmt *rs = NULL, *ps = NULL;
	int rc = M_EIO;
	pthread_mutex_lock(&r->mu);
	if (r->nrows == 0) {
		rc = 0;
		goto out;
	}
	if (sqlite3_prepare_v2(db, row_sql, -1, &rs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, policy_sql, -1, &ps, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	rc = 0;
	for (size_t i = 0; i < r->nrows && rc == 0; i++)
		rc = flush_row(rs, ps, &r->rows[i]);
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = M_EIO;
	if (rc != 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	else
		clear_rows(r);
out:
	pthread_mutex_unlock(&r->mu);
	sqlite3_finalize(rs);
	sqlite3_finalize(ps);
	return rc;
}

/* ---- XML ---- */

static void xml_text(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': buf_puts(b, "&amp;"); break;
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		case '\'': buf_puts(b, "&apos;"); break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\t')
				buf_putc(b, *s);
			break;
		}
	}
}

static void xml_elem(struct buf *b, const char *indent, const char *name, const char *text)
{
	buf_printf(b, "%s<%s>", indent, name);
	xml_text(b, text);
	buf_printf(b, "</%s>\n", name);
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? (const char *)t : "";
}

static void render_policy(sqlite3 *db, const char *domain, long long begin, struct buf *b)
{
	sqlite3_stmt *st = NULL;
	int p = DMARC_POLICY_NONE, sp = DMARC_POLICY_NONE, np = DMARC_POLICY_NONE, adkim = 0,
	    aspf = 0, pct = 100;
	char fo[16] = "0";
	if (sqlite3_prepare_v2(db,
			       "SELECT p, sp, np, adkim, aspf, pct, fo FROM dmarc_agg_policy"
			       " WHERE begin = ? AND domain = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, begin);
		sqlite3_bind_text(st, 2, domain, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			p = sqlite3_column_int(st, 0);
			sp = sqlite3_column_int(st, 1);
			np = sqlite3_column_int(st, 2);
			adkim = sqlite3_column_int(st, 3);
			aspf = sqlite3_column_int(st, 4);
			pct = sqlite3_column_int(st, 5);
			snprintf(fo, sizeof(fo), "%s", col(st, 6));
		}
	}
	sqlite3_finalize(st);
	buf_puts(b, "  <policy_published>\n");
	xml_elem(b, "    ", "domain", domain);
	xml_elem(b, "    ", "adkim", adkim == DMARC_ALIGN_STRICT ? "s" : "r");
	xml_elem(b, "    ", "aspf", aspf == DMARC_ALIGN_STRICT ? "s" : "r");
	xml_elem(b, "    ", "p", dmarc_policy_str(p));
	xml_elem(b, "    ", "sp", dmarc_policy_str(sp));
	if (np != sp)
		xml_elem(b, "    ", "np", dmarc_policy_str(np));
	buf_printf(b, "    <pct>%d</pct>\n", pct);
	xml_elem(b, "    ", "fo", fo);
	buf_puts(b, "  </policy_published>\n");
}

int dmarc_report_render(struct sqlite3 *db, const struct dmarc_report_meta *m,
			const char *domain, time_t begin, unsigned period, struct buf *b)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT source_ip, count, disposition, dkim_eval, spf_eval,"
			       " header_from, dkim_domain, dkim_result, spf_domain, spf_result"
			       " FROM dmarc_agg WHERE begin = ? AND domain = ?"
			       " ORDER BY source_ip, header_from",
			       -1, &st, NULL) != SQLITE_OK)
		return M_EIO;
	sqlite3_bind_int64(st, 1, (long long)begin);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_TRANSIENT);
	int step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		sqlite3_finalize(st);
		return step == SQLITE_DONE ? M_ENOTFOUND : M_EIO;
	}
	buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
	buf_puts(b, "  <report_metadata>\n");
	xml_elem(b, "    ", "org_name", m && m->org_name ? m->org_name : "");
	xml_elem(b, "    ", "email", m && m->email ? m->email : "");
	if (m && m->extra_contact)
		xml_elem(b, "    ", "extra_contact_info", m->extra_contact);
	xml_elem(b, "    ", "report_id", m && m->report_id ? m->report_id : "");
	buf_printf(b, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
		      "    </date_range>\n",
		   (long long)begin, (long long)begin + (period ? period : 86400) - 1);
	buf_puts(b, "  </report_metadata>\n");
	render_policy(db, domain, (long long)begin, b);
	for (; step == SQLITE_ROW; step = sqlite3_step(st)) {
		buf_puts(b, "  <record>\n    <row>\n");
		xml_elem(b, "      ", "source_ip", col(st, 0));
		buf_printf(b, "      <count>%lld</count>\n", (long long)sqlite3_column_int64(st, 1));
		buf_puts(b, "      <policy_evaluated>\n");
		xml_elem(b, "        ", "disposition", col(st, 2));
		xml_elem(b, "        ", "dkim", col(st, 3));
		xml_elem(b, "        ", "spf", col(st, 4));
		buf_puts(b, "      </policy_evaluated>\n    </row>\n");
		buf_puts(b, "    <identifiers>\n");
		xml_elem(b, "      ", "header_from", col(st, 5));
		buf_puts(b, "    </identifiers>\n    <auth_results>\n");
		if (col(st, 6)[0]) {
			buf_puts(b, "      <dkim>\n");
			xml_elem(b, "        ", "domain", col(st, 6));
			xml_elem(b, "        ", "result", col(st, 7));
			buf_puts(b, "      </dkim>\n");
		}
		buf_puts(b, "      <spf>\n");
		xml_elem(b, "        ", "domain", col(st, 8));
		xml_elem(b, "        ", "result", col(st, 9));
		buf_puts(b, "      </spf>\n    </auth_results>\n  </record>\n");
	}
	buf_puts(b, "</feedback>\n");
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return M_EIO;
	return buf_cstr(b) < 0 ? M_ELIMIT : 0;
}

int dmarc_report_gzip(const void *p, size_t n, unsigned char **out, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	*out = NULL;
	*outlen = 0;
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return M_ENOMEM;
	uLong cap = deflateBound(&z, (uLong)n) + 32;
	unsigned char *o = malloc(cap);
	if (!o) {
		deflateEnd(&z);
		return M_ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	z.next_out = o;
	z.avail_out = (uInt)cap;
	int zr = deflate(&z, Z_FINISH);
	size_t len = cap - z.avail_out;
	deflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(o);
		return M_EIO;
	}
	*out = o;
	*outlen = len;
	return 0;
}

/*
 * msg: header fields kept raw with CRLF ends, body with CRLF ends. See msg.h
 * for why.
 */
#include "mail/msg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct msg *msg_new(void)
{
	return calloc(1, sizeof(struct msg));
}

void msg_free(struct msg *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nhdr; i++)
		free(m->hdr[i].raw);
	free(m->hdr);
	free(m->body);
	free(m);
}

/* Copy src into a new buffer turning bare LF (and bare CR) into CRLF; adds a
 * final CRLF when add_crlf and the text does not end in one. */
static char *to_crlf(const char *src, size_t len, size_t *out_len, int add_crlf)
{
	char *o = malloc(len * 2 + 3);
	if (!o)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '\r') {
			o[n++] = '\r';
			o[n++] = '\n';
			if (i + 1 < len && src[i + 1] == '\n')
				i++;
		} else if (c == '\n') {
			o[n++] = '\r';
			o[n++] = '\n';
		} else {
			o[n++] = c;
		}
	}
	if (add_crlf && (n < 2 || o[n - 2] != '\r' || o[n - 1] != '\n')) {
		o[n++] = '\r';
		o[n++] = '\n';
	}
	o[n] = '\0';
	*out_len = n;
	return o;
}

static int hdr_insert(struct msg *m, size_t at, char *raw, size_t len, size_t name_len)
{
	if (m->nhdr >= MSG_MAX_HEADERS || m->hdr_bytes + len > MSG_MAX_HEADER_BYTES) {
		free(raw);
		return MSG_E_LIMIT;
	}
	if (m->nhdr == m->hdr_cap) {
		size_t cap = m->hdr_cap ? m->hdr_cap * 2 : 16;
		struct msg_hdr *h = realloc(m->hdr, cap * sizeof(*h));
		if (!h) {
			free(raw);
			return MSG_E_NOMEM;
		}
		m->hdr = h;
		m->hdr_cap = cap;
	}
	memmove(&m->hdr[at + 1], &m->hdr[at], (m->nhdr - at) * sizeof(*m->hdr));
	m->hdr[at] = (struct msg_hdr){raw, len, name_len};
	m->nhdr++;
	m->hdr_bytes += len;
	return MSG_OK;
}

static int build_header(struct msg *m, size_t at, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (nl == 0 || memchr(name, ':', nl))
		return MSG_E_SYNTAX;
	if (nl + vl > MSG_MAX_HEADER_BYTES)
		return MSG_E_LIMIT;
	char *tmp = malloc(nl + 1 + vl + 1);
	if (!tmp)
		return MSG_E_NOMEM;
	memcpy(tmp, name, nl);
	tmp[nl] = ':';
	memcpy(tmp + nl + 1, value, vl);
	size_t len;
	char *raw = to_crlf(tmp, nl + 1 + vl, &len, 1);
	free(tmp);
	if (!raw)
		return MSG_E_NOMEM;
	return hdr_insert(m, at, raw, len, nl);
}

int msg_add_header(struct msg *m, const char *name, const char *value)
{
	return build_header(m, m->nhdr, name, value);
}

int msg_prepend_header(struct msg *m, const char *name, const char *value)
{
	return build_header(m, 0, name, value);
}

void msg_remove_header(struct msg *m, size_t i)
{
	if (i >= m->nhdr)
		return;
	m->hdr_bytes -= m->hdr[i].len;
	free(m->hdr[i].raw);
	memmove(&m->hdr[i], &m->hdr[i + 1], (m->nhdr - i - 1) * sizeof(*m->hdr));
	m->nhdr--;
}

static int body_reserve(struct msg *m, size_t more)
{
	if (m->body_len + more + 1 > MSG_MAX_BODY_BYTES)
		return MSG_E_LIMIT;
	if (m->body_len + more + 1 <= m->body_cap)
		return MSG_OK;
	size_t cap = m->body_cap ? m->body_cap : 4096;
	while (cap < m->body_len + more + 1)
		cap *= 2;
	char *b = realloc(m->body, cap);
	if (!b)
		return MSG_E_NOMEM;
	m->body = b;
	m->body_cap = cap;
	return MSG_OK;
}

int msg_add_body(struct msg *m, const char *data, size_t len)
{
	int rc = body_reserve(m, len * 2 + 2);
	if (rc != MSG_OK)
		return rc;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		/* A CR as the last byte always waits for its LF: complete lines
		 * end in LF. */
		int pending_cr = m->body_len > 0 && m->body[m->body_len - 1] == '\r';
		if (c == '\n') {
			if (!pending_cr)
				m->body[m->body_len++] = '\r';
			m->body[m->body_len++] = '\n';
			continue;
		}
		if (pending_cr)
			m->body[m->body_len++] = '\n';
		m->body[m->body_len++] = c;
	}
	m->body[m->body_len] = '\0';
	return MSG_OK;
}

struct msg *msg_parse(const char *text, size_t len, int *err, size_t *err_line)
{
	int e = MSG_OK;
	size_t line_no = 0;
	struct msg *m = msg_new();
	if (!m) {
		e = MSG_E_NOMEM;
		goto fail;
	}
	size_t i = 0;
	while (i < len) {
		/* One field: a line and its continuation lines. */
		size_t start = i;
		line_no++;
		size_t eol = i;
		while (eol < len && text[eol] != '\n')
			eol++;
		size_t content_end = eol > i && text[eol - 1] == '\r' ? eol - 1 : eol;
		if (content_end == i) { /* the empty line: the body follows */
			i = eol < len ? eol + 1 : len;
			break;
		}
		if (text[i] == ' ' || text[i] == '\t') {
			/* A continuation with no field before it. */
			e = MSG_E_SYNTAX;
			goto fail;
		}
		i = eol < len ? eol + 1 : len;
		while (i < len && (text[i] == ' ' || text[i] == '\t')) {
			line_no++;
			while (i < len && text[i] != '\n')
				i++;
			if (i < len)
				i++;
		}
		const char *colon = memchr(text + start, ':', content_end - start);
		if (!colon || colon == text + start) {
			e = MSG_E_SYNTAX;
			goto fail;
		}
		size_t name_len = (size_t)(colon - (text + start));
		size_t rl;
		char *raw = to_crlf(text + start, i - start, &rl, 1);
		if (!raw) {
			e = MSG_E_NOMEM;
			goto fail;
		}
		e = hdr_insert(m, m->nhdr, raw, rl, name_len);
		if (e != MSG_OK)
			goto fail;
	}
	if (i < len) {
		size_t bl;
		char *body = to_crlf(text + i, len - i, &bl, 0);
		if (!body) {
			e = MSG_E_NOMEM;
			goto fail;
		}
		if (bl > MSG_MAX_BODY_BYTES) {
			free(body);
			e = MSG_E_LIMIT;
			goto fail;
		}
		m->body = body;
		m->body_len = bl;
		m->body_cap = len * 2 + 3;
	}
	return m;
fail:
	msg_free(m);
	if (err)
		*err = e;
	if (err_line)
		*err_line = line_no;
	return NULL;
}

int msg_hdr_is(const struct msg *m, size_t i, const char *name)
{
	if (i >= m->nhdr)
		return 0;
	size_t nl = strlen(name);
	const struct msg_hdr *h = &m->hdr[i];
	/* A name may carry trailing blanks before the colon ("From :"). */
	size_t hl = h->name_len;
	while (hl > 0 && (h->raw[hl - 1] == ' ' || h->raw[hl - 1] == '\t'))
		hl--;
	return hl == nl && strncasecmp(h->raw, name, nl) == 0;
}

const char *msg_hdr_value(const struct msg *m, size_t i, size_t *len)
{
	const struct msg_hdr *h = &m->hdr[i];
	*len = h->len - h->name_len - 1 - 2;
	return h->raw + h->name_len + 1;
}

long msg_find(const struct msg *m, const char *name, size_t start)
{
	for (size_t i = start; i < m->nhdr; i++)
		if (msg_hdr_is(m, i, name))
			return (long)i;
	return -1;
}

size_t msg_count(const struct msg *m, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nhdr; i++)
		n += (size_t)msg_hdr_is(m, i, name);
	return n;
}

char *msg_hdr_unfolded(const struct msg *m, size_t i)
{
	size_t vl;
	const char *v = msg_hdr_value(m, i, &vl);
	char *o = malloc(vl + 1);
	if (!o)
		return NULL;
	size_t n = 0;
	for (size_t k = 0; k < vl; k++) {
		if (v[k] == '\r' && k + 1 < vl && v[k + 1] == '\n') {
			k++;
			continue;
		}
		o[n++] = v[k];
	}
	o[n] = '\0';
	size_t s = 0;
	while (s < n && isspace((unsigned char)o[s]))
		s++;
	while (n > s && isspace((unsigned char)o[n - 1]))
		n--;
	memmove(o, o + s, n - s);
	o[n - s] = '\0';
	return o;
}

char *msg_render(const struct msg *m, size_t *len)
{
	size_t total = m->hdr_bytes + 2 + m->body_len;
	char *o = malloc(total + 1);
	if (!o)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < m->nhdr; i++) {
		memcpy(o + n, m->hdr[i].raw, m->hdr[i].len);
		n += m->hdr[i].len;
	}
	o[n++] = '\r';
	o[n++] = '\n';
	if (m->body_len) {
		memcpy(o + n, m->body, m->body_len);
		n += m->body_len;
	}
	o[n] = '\0';
	*len = n;
	return o;
}

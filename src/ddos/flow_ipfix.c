/*
 * IPFIX (RFC 7011): a 16-byte message header whose length bounds the
 * message, then Sets: 2 holds templates, 3 options templates, 256 and up
 * data records, scoped to (exporter, observation domain). What IPFIX adds
 * over v9 is handled here: field specifiers with an enterprise number
 * (skipped by length, never mapped), variable-length fields (length 65535
 * in the template, one or three length bytes in the record), and template
 * withdrawal (a record with field count 0; template id 2 in set 2 and 3 in
 * set 3 withdraw every template or options template of the domain).
 */
#include <stdlib.h>

#include "core/err.h"
#include "ddos/flow_int.h"

#define IPFIX_HDR 16

/* Walks the nfields field specifiers at p (n bytes left) and returns the
 * bytes they take, or 0 when they run past n. */
static size_t ipfix_spec_len(const uint8_t *p, size_t n, uint16_t nfields)
{
	size_t off = 0;

	for (uint16_t i = 0; i < nfields; i++) {
		size_t need = (n - off >= 2 && (p[off] & 0x80)) ? 8 : 4;

		if (n - off < need)
			return 0;
		off += need;
	}
	return off;
}

static int ipfix_build(struct flow_msg *m, uint16_t id, const uint8_t *f,
		       uint16_t nfields, uint16_t nscope, int options)
{
	struct flow_decoder *d = m->d;
	struct flow_tmpl *t;
	size_t off = 0;

	if (nfields > d->cfg.max_fields) {
		d->st.templates_refused++;
		return M_ELIMIT;
	}
	if (!m->src && !flow_source_get(m, 1)) {
		d->st.templates_refused++;
		return M_ELIMIT;
	}
	t = flow_tmpl_new(id, nfields, nscope, options);
	if (!t) {
		d->st.templates_refused++;
		return M_ENOMEM;
	}
	for (uint16_t i = 0; i < nfields; i++) {
		uint16_t ie = rd16(f + off), len = rd16(f + off + 2);
		int ent = (ie & 0x8000) != 0;

		flow_tmpl_field(t, 0, i, (uint16_t)(ie & 0x7fff), len, ent);
		off += ent ? 8 : 4;
	}
	if (flow_tmpl_seal(t) != 0) {
		free(t);
		d->st.templates_bad++;
		return M_EPARSE;
	}
	return flow_tmpl_put(m, t);
}

/* A template set (options when set id is 3). */
static int ipfix_templates(struct flow_msg *m, const uint8_t *p, size_t n,
			   int options)
{
	struct flow_decoder *d = m->d;
	size_t off = 0;
	int rc = 0;

	while (n - off >= 4) {
		uint16_t id = rd16(p + off), cnt = rd16(p + off + 2);
		uint16_t nscope = 0;
		size_t hdr = options ? 6 : 4, spec;

		if (cnt == 0) {
			/* A withdrawal: 4 bytes, for options templates too. */
			if (id == (options ? 3 : 2)) {
				flow_tmpl_withdraw_all(m, options);
			} else if (id >= 256) {
				flow_tmpl_withdraw(m, id, options);
			} else if (id == 0 && flow_all_zero(p + off, n - off)) {
				break;   /* padding */
			} else {
				d->st.templates_bad++;
				rc = flow_rc_merge(rc, M_EPARSE);
			}
			off += 4;
			continue;
		}
		if (n - off < hdr) {
			d->st.truncated++;
			d->st.templates_bad++;
			return M_EPARSE;
		}
		if (options)
			nscope = rd16(p + off + 4);
		spec = ipfix_spec_len(p + off + hdr, n - off - hdr, cnt);
		if (!spec) {
			d->st.truncated++;
			d->st.templates_bad++;
			return M_EPARSE;
		}
		if (id < 256 || (options && (nscope == 0 || nscope > cnt))) {
			d->st.templates_bad++;
			rc = flow_rc_merge(rc, M_EPARSE);
		} else {
			rc = flow_rc_merge(rc, ipfix_build(m, id, p + off + hdr, cnt,
							   nscope, options));
		}
		off += hdr + spec;
	}
	return rc;
}

int flow_ipfix_decode(struct flow_msg *m, const uint8_t *p, size_t n)
{
	struct flow_decoder *d = m->d;
	size_t off = IPFIX_HDR, len;
	int rc = 0;

	if (n < IPFIX_HDR) {
		d->st.truncated++;
		return M_EPARSE;
	}
	len = rd16(p + 2);
	if (len < IPFIX_HDR || len > n) {
		d->st.truncated++;
		return M_EPARSE;
	}
	n = len;   /* bytes after the message are not part of it */
	flow_anchor(m, (int64_t)rd32(p + 4) * 1000);
	m->domain = rd32(p + 12);
	flow_source_get(m, 0);

	while (n - off >= 4) {
		uint16_t id = rd16(p + off), slen = rd16(p + off + 2);
		const uint8_t *body = p + off + 4;
		struct flow_tmpl *t;

		if (slen < 4 || slen > n - off) {
			d->st.bad_sets++;
			flow_seq_note(m, rd32(p + 8), m->nrecs, 0, 0, 0);
			return M_EPARSE;
		}
		if (id == 2 || id == 3) {
			rc = flow_rc_merge(rc, ipfix_templates(m, body, slen - 4u, id == 3));
		} else if (id < 256) {
			d->st.reserved_sets++;
		} else if ((t = flow_tmpl_live(m, id)) != NULL) {
			rc = flow_rc_merge(rc, flow_data_set(m, t, body, slen - 4u));
		} else {
			d->st.no_template_sets++;
			d->st.no_template_bytes += slen - 4u;
			m->recs_unknown = 1;
		}
		off += slen;
	}
	if (off != n) {
		/* A message ends on a set boundary (RFC 7011 3.1). */
		d->st.bad_sets++;
		rc = flow_rc_merge(rc, M_EPARSE);
	}
	/* The sequence counts data records (options records too) sent before
	 * this message; records of a set without its template cannot be
	 * counted, and then the next message sets the count again. */
	flow_seq_note(m, rd32(p + 8), m->nrecs, rc != M_EPARSE && !m->recs_unknown, 0, 0);
	return rc;
}

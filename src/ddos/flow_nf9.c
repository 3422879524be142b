/*
 * NetFlow v9 (RFC 3954): a 20-byte header, then FlowSets. FlowSet 0 holds
 * templates, 1 options templates, 256 and up data records of the template
 * with that id, scoped to (exporter, source id). The header's count is not
 * trusted (exporters disagree on what it counts); the FlowSet lengths
 * drive the walk, and a length under 4 or past the datagram ends it. Data
 * that arrives before its template, or after it expired (not sent again
 * within the template timeout), is counted (no_template_sets) and
 * dropped: routers resend templates every few seconds or packets.
 */
#include <stdlib.h>

#include "core/err.h"
#include "ddos/flow_int.h"

#define NF9_HDR 20

/* Builds one template from the nfields (type, length) pairs at f, the
 * first nscope of them options scope fields, and stores it. */
static int nf9_template(struct flow_msg *m, uint16_t id, const uint8_t *f,
			uint16_t nfields, uint16_t nscope, int options)
{
	struct flow_decoder *d = m->d;
	struct flow_tmpl *t;

	if (id < 256 || nfields == 0) {
		d->st.templates_bad++;
		return M_EPARSE;
	}
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
		uint16_t len = rd16(f + 4 * i + 2);

		if (len == FLOW_VARLEN) {
			/* v9 has no variable-length fields; 65535 bytes cannot fit. */
			free(t);
			d->st.templates_bad++;
			return M_EPARSE;
		}
		flow_tmpl_field(t, 1, i, rd16(f + 4 * i), len, 0);
	}
	if (flow_tmpl_seal(t) != 0) {
		free(t);
		d->st.templates_bad++;
		return M_EPARSE;
	}
	return flow_tmpl_put(m, t);
}

static int nf9_templates(struct flow_msg *m, const uint8_t *p, size_t n)
{
	size_t off = 0;
	int rc = 0;

	while (n - off >= 4) {
		uint16_t id = rd16(p + off), cnt = rd16(p + off + 2);
		size_t need = 4 + (size_t)cnt * 4;

		if (id == 0 && flow_all_zero(p + off, n - off))
			break;   /* padding */
		if (need > n - off) {
			m->d->st.truncated++;
			m->d->st.templates_bad++;
			return M_EPARSE;
		}
		rc = flow_rc_merge(rc, nf9_template(m, id, p + off + 4, cnt, 0, 0));
		off += need;
	}
	return rc;
}

static int nf9_options_templates(struct flow_msg *m, const uint8_t *p, size_t n)
{
	size_t off = 0;
	int rc = 0;

	while (n - off >= 6) {
		uint16_t id = rd16(p + off);
		uint16_t slen = rd16(p + off + 2), olen = rd16(p + off + 4);
		size_t need = 6 + (size_t)slen + olen;

		if (id == 0 && flow_all_zero(p + off, n - off))
			break;
		if (slen % 4 || olen % 4 || need > n - off) {
			m->d->st.truncated++;
			m->d->st.templates_bad++;
			return M_EPARSE;
		}
		rc = flow_rc_merge(rc, nf9_template(m, id, p + off + 6,
					       (uint16_t)((slen + olen) / 4),
					       (uint16_t)(slen / 4), 1));
		off += need;
	}
	return rc;
}

int flow_nf9_decode(struct flow_msg *m, const uint8_t *p, size_t n)
{
	struct flow_decoder *d = m->d;
	size_t off = NF9_HDR;
	int rc = 0;

	if (n < NF9_HDR) {
		d->st.truncated++;
		return M_EPARSE;
	}
	m->uptime_ms = rd32(p + 4);
	flow_anchor(m, (int64_t)rd32(p + 8) * 1000);
	m->domain = rd32(p + 16);
	flow_source_get(m, 0);
	/* The sequence counts export packets of the source id. */
	flow_seq_note(m, rd32(p + 12), 1, 1, 1, m->uptime_ms);

	while (n - off >= 4) {
		uint16_t id = rd16(p + off), len = rd16(p + off + 2);
		const uint8_t *body = p + off + 4;
		struct flow_tmpl *t;

		if (len < 4 || len > n - off) {
			d->st.bad_sets++;
			return M_EPARSE;
		}
		if (id == 0) {
			rc = flow_rc_merge(rc, nf9_templates(m, body, len - 4u));
		} else if (id == 1) {
			rc = flow_rc_merge(rc, nf9_options_templates(m, body, len - 4u));
		} else if (id < 256) {
			d->st.reserved_sets++;
		} else if ((t = flow_tmpl_live(m, id)) != NULL) {
			rc = flow_rc_merge(rc, flow_data_set(m, t, body, len - 4u));
		} else {
			d->st.no_template_sets++;
			d->st.no_template_bytes += len - 4u;
		}
		off += len;
	}
	return rc;
}

/*
 * The ExaBGP back-end: API commands written to a FIFO that an ExaBGP
 * `process` copies to ExaBGP (`run /bin/sh -c "while true; do cat PIPE;
 * done"; encoder text;`), e.g.
 *
 *   announce route 10.1.9.9/32 next-hop 192.0.2.1 community [65535:666]
 *   announce flow route { match { destination 10.1.9.9/32; protocol =17;
 *     source-port =11211; } then { discard; } }
 *
 * The pipe is one-way: ExaBGP cannot be asked what it announces, and it
 * forgets everything when it restarts. So the manager records what it sent
 * (the sent table) and reconciliation re-announces every desired route and
 * withdraws what the record holds and the desired state does not.
 * Re-announcing a route ExaBGP already has changes nothing at the peer.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core/err.h"
#include "ddos/mitig_int.h"

int mitig_exabgp_line(const struct mitig_config *cfg, const struct mitig_route *r,
		      int withdraw, struct buf *out)
{
	const struct mitig_rule *u = &r->rule;
	int v6 = u->dst.af == 6, rc;
	char pfx[64], nh[INET6_ADDRSTRLEN];

	mitig_prefix_str(&u->dst, pfx, sizeof(pfx));
	if (u->action == MITIG_BLACKHOLE) {
		const struct mitig_prefix *n = v6 ? &cfg->nh6 : &cfg->nh4;
		if (!n->af)
			return M_EINVAL;
		inet_ntop(v6 ? AF_INET6 : AF_INET, n->a, nh, sizeof(nh));
		rc = buf_printf(out, "%s route %s next-hop %s", withdraw ? "withdraw" : "announce", pfx, nh);
		if (rc == 0 && !withdraw && cfg->ncomm) {
			rc = buf_puts(out, " community [");
			for (size_t i = 0; rc == 0 && i < cfg->ncomm; i++) {
				char c[16];
				mitig_comm_str(cfg->comm[i], c, sizeof(c));
				rc = buf_printf(out, "%s%s", i ? " " : "", c);
			}
			if (rc == 0)
				rc = buf_putc(out, ']');
		}
		return rc ? rc : buf_putc(out, '\n');
	}
	rc = buf_printf(out, "%s flow route { match { destination %s%s;",
			withdraw ? "withdraw" : "announce", pfx, v6 ? "/0" : "");
	if (rc == 0 && u->proto)
		rc = buf_printf(out, " %s =%u;", v6 ? "next-header" : "protocol", u->proto);
	if (rc == 0 && u->nsport == 1)
		rc = buf_printf(out, " source-port =%u;", u->sport[0]);
	if (rc == 0 && u->nsport > 1) {
		rc = buf_puts(out, " source-port [");
		for (size_t i = 0; rc == 0 && i < u->nsport; i++)
			rc = buf_printf(out, " =%u", u->sport[i]);
		if (rc == 0)
			rc = buf_puts(out, " ];");
	}
	if (rc == 0 && u->len_max) {
		if (u->len_min == u->len_max)
			rc = buf_printf(out, " packet-length =%u;", u->len_min);
		else
			rc = buf_printf(out, " packet-length [ >=%u&<=%u ];", u->len_min, u->len_max);
	}
	if (rc == 0)
		rc = buf_puts(out, " }");
	if (rc == 0 && !withdraw) {
		if (u->action == MITIG_DISCARD)
			rc = buf_puts(out, " then { discard; }");
		else
			rc = buf_printf(out, " then { rate-limit %llu; }", (unsigned long long)u->rate);
	}
	if (rc == 0)
		rc = buf_puts(out, " }\n");
	return rc;
}

static int exabgp_send(struct mitig *m, const struct mitig_route *r, int withdraw, struct buf *err)
{
	struct buf line;
	int rc;

	buf_init(&line, 4096);
	rc = mitig_exabgp_line(&m->cfg, r, withdraw, &line);
	if (rc < 0) {
		buf_printf(err, "cannot write the ExaBGP command for %s (next hop missing?)", r->key);
		buf_cstr(err);
	} else {
		rc = mitig_fifo_write(m->cfg.exabgp_pipe, line.p, line.len, mitig_timeout_ms(m), err);
	}
	buf_fini(&line);
	return rc;
}

static int exabgp_announce(struct mitig *m, const struct mitig_route *r, struct buf *err)
{
	return exabgp_send(m, r, 0, err);
}

static int exabgp_withdraw(struct mitig *m, const struct mitig_route *r, struct buf *err)
{
	return exabgp_send(m, r, 1, err);
}

const struct mitig_backend mitig_be_exabgp = {
	.name = "exabgp",
	.full_state = 0,
	.announce = exabgp_announce,
	.withdraw = exabgp_withdraw,
	.sync = NULL,
	.list = NULL,
};

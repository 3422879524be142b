/*
 * The nftables back-end, for a single host that protects itself: one table
 * (inet family) that mamori owns, rewritten whole in one transaction at
 * every change, so what the kernel holds is always exactly the desired
 * state and a restart or a crash cannot leave a stray rule:
 *
 *   table inet mamori
 *   delete table inet mamori
 *   table inet mamori {
 *     chain mitigate {
 *       type filter hook prerouting priority -300; policy accept;
 *       ip daddr 10.1.9.9/32 udp sport 11211 drop comment "filter 10.1.9.9/32 proto 17 sport 11211"
 *     }
 *   }
 *
 * (The first line makes the delete succeed when the table is absent.) The
 * chain sits before connection tracking (priority raw, -300), so attack
 * traffic costs no conntrack entries. libnftables runs the script when
 * mamori is built with it (MAMORI_HAVE_LIBNFTABLES), `nft -f -` otherwise.
 * Either needs CAP_NET_ADMIN.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "ddos/mitig_int.h"

#ifdef MAMORI_HAVE_LIBNFTABLES
/* libnftables.h defines _GNU_SOURCE itself, which the build already does. */
#undef _GNU_SOURCE
#include <nftables/libnftables.h>
#endif

static const char *l4_name(uint8_t proto)
{
	switch (proto) {
	case 6: return "tcp";
	case 17: return "udp";
	case 132: return "sctp";
	}
	return NULL;
}

static int nft_rule(const struct mitig_route *r, struct buf *out)
{
	const struct mitig_rule *u = &r->rule;
	char pfx[64];
	int rc;

	mitig_prefix_str(&u->dst, pfx, sizeof(pfx));
	rc = buf_printf(out, "\t\t%s daddr %s", u->dst.af == 4 ? "ip" : "ip6", pfx);
	if (rc == 0 && u->proto && u->nsport && l4_name(u->proto)) {
		rc = buf_printf(out, " %s sport ", l4_name(u->proto));
		if (rc == 0 && u->nsport == 1) {
			rc = buf_printf(out, "%u", u->sport[0]);
		} else {
			for (size_t i = 0; rc == 0 && i < u->nsport; i++)
				rc = buf_printf(out, "%s%u", i ? ", " : "{ ", u->sport[i]);
			if (rc == 0)
				rc = buf_puts(out, " }");
		}
	} else if (rc == 0 && u->proto) {
		rc = buf_printf(out, " meta l4proto %u", u->proto);
	}
	if (rc == 0 && u->len_max) {
		if (u->len_min == u->len_max)
			rc = buf_printf(out, " meta length %u", u->len_min);
		else
			rc = buf_printf(out, " meta length %u-%u", u->len_min, u->len_max);
	}
	if (rc == 0 && u->action == MITIG_RATELIMIT)
		rc = buf_printf(out, " limit rate over %llu bytes/second",
				(unsigned long long)u->rate);
	if (rc == 0)
		rc = buf_printf(out, " drop comment \"%s\"\n", r->key);
	return rc;
}

int mitig_nft_render(const struct mitig_config *cfg, const struct mitig_route *r,
		     size_t n, struct buf *out)
{
	const char *t = cfg->nft_table && cfg->nft_table[0] ? cfg->nft_table : "mamori";
	int rc;

	rc = buf_printf(out, "table inet %s\ndelete table inet %s\ntable inet %s {\n"
			"\tchain mitigate {\n"
			"\t\ttype filter hook prerouting priority -300; policy accept;\n", t, t, t);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = nft_rule(&r[i], out);
	if (rc == 0)
		rc = buf_puts(out, "\t}\n}\n");
	return rc;
}

static int nft_run(struct mitig *m, const char *script, size_t len, struct buf *err)
{
#ifdef MAMORI_HAVE_LIBNFTABLES
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc = M_OK;

	(void)m;
	(void)len;
	if (!ctx)
		return M_ENOMEM;
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, script) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		buf_printf(err, "nftables: %s", e && *e ? e : "the script was refused");
		buf_cstr(err);
		rc = M_EIO;
	}
	nft_ctx_free(ctx);
	return rc;
#else
	char *argv[] = { m->cfg.nft_cmd, "-f", "-", NULL };
	return mitig_exec(argv, script, len, mitig_timeout_ms(m), NULL, err);
#endif
}

static int nft_sync(struct mitig *m, const struct mitig_route *r, size_t n, struct buf *err)
{
	struct buf script;
	int rc;

	buf_init(&script, 64 << 20);
	rc = mitig_nft_render(&m->cfg, r, n, &script);
	if (rc == 0)
		rc = buf_cstr(&script);
	if (rc == 0)
		rc = nft_run(m, script.p, script.len, err);
	buf_fini(&script);
	return rc;
}

const struct mitig_backend mitig_be_nft = {
	.name = "nftables",
	.full_state = 1,
	.announce = NULL,
	.withdraw = NULL,
	.sync = nft_sync,
	.list = NULL,
};

/*
 * The `mitigation:` section: one keyword table, then the checks the generic
 * setters cannot make (a back-end's required settings, communities, next
 * hops, the allow list as prefixes, names that end up inside a script).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddos/mitig_int.h"

#define MC(f) offsetof(struct mitig_config, f)

const struct conf_keyword mitig_keywords[] = {
	{ "backend", CONF_STR, MC(backend), 0, 0, "none", 0,
	  "none, gobgp, exabgp, bird or nftables (docs/ddos-mitigation.md)" },
	{ "dry_run", CONF_BOOL, MC(dry_run), 0, 0, "false", 1,
	  "decide, record and log every mitigation, send nothing" },
	{ "hold_time", CONF_DURATION, MC(hold_time), 0, 7 * 86400, "300s", 1,
	  "keep a mitigation this long after its attack ends; a restart meanwhile keeps it" },
	{ "max_blackholes", CONF_INT, MC(max_blackholes), 0, 100000, "100", 1,
	  "simultaneous blackholes; beyond, new ones are refused (0 = never blackhole)" },
	{ "max_mitigations", CONF_INT, MC(max_mitigations), 1, 100000, "10000", 1,
	  "mitigations of every kind together" },
	{ "blackhole_min_length_v4", CONF_INT, MC(blackhole_min_len4), 0, 32, "24", 1,
	  "widest IPv4 blackhole: a prefix shorter than this is refused" },
	{ "blackhole_min_length_v6", CONF_INT, MC(blackhole_min_len6), 0, 128, "48", 1,
	  "widest IPv6 blackhole: a prefix shorter than this is refused" },
	{ "communities", CONF_STRLIST, MC(communities), 0, 0, "65535:666", 1,
	  "communities of a blackhole route, \"ASN:VALUE\" (RFC 7999 BLACKHOLE is 65535:666)" },
	{ "next_hop_v4", CONF_STR, MC(next_hop4), 0, 0, "192.0.2.1", 1,
	  "next hop of an IPv4 blackhole; routers route it to a discard interface" },
	{ "next_hop_v6", CONF_STR, MC(next_hop6), 0, 0, "100::1", 1,
	  "next hop of an IPv6 blackhole (100::/64 is the RFC 6666 discard prefix)" },
	{ "allow", CONF_STRLIST, MC(allow), 0, 0, "", 1,
	  "prefixes never mitigated; a blackhole that merely overlaps one is refused" },
	{ "command_timeout", CONF_DURATION, MC(command_timeout), 1, 120, "5s", 0,
	  "longest run of one gobgp, birdc or nft command, or one write to ExaBGP's pipe" },
	{ "reconcile_interval", CONF_DURATION, MC(reconcile_interval), 5, 86400, "60s", 0,
	  "compare the speaker with the desired state this often (and at start)" },
	{ "gobgp_api", CONF_ADDR, MC(gobgp_api), 0, 0, "127.0.0.1:50051", 0,
	  "gobgpd's gRPC API (its --api-hosts), host:port" },
	{ "gobgp_command", CONF_STR, MC(gobgp_cmd), 0, 0, "gobgp", 0,
	  "the gobgp CLI (searched in PATH)" },
	{ "exabgp_pipe", CONF_STR, MC(exabgp_pipe), 0, 0, "", 0,
	  "FIFO that an ExaBGP process reads its API commands from" },
	{ "bird_include", CONF_STR, MC(bird_include), 0, 0, "", 0,
	  "file mamori rewrites with its static routes; BIRD's configuration includes it" },
	{ "bird_socket", CONF_STR, MC(bird_socket), 0, 0, "/run/bird/bird.ctl", 0,
	  "BIRD's control socket, for `birdc -s SOCKET configure`" },
	{ "birdc_command", CONF_STR, MC(birdc_cmd), 0, 0, "birdc", 0,
	  "the birdc client (searched in PATH)" },
	{ "nft_table", CONF_STR, MC(nft_table), 0, 0, "mamori", 0,
	  "nftables table (family inet) that mamori owns and rewrites whole" },
	{ "nft_command", CONF_STR, MC(nft_cmd), 0, 0, "nft", 0,
	  "the nft command, used when mamori is built without libnftables" },
	CONF_END
};

static int cfg_err(struct buf *err, const char *file, const char *key, const char *msg,
		   const char *arg)
{
	buf_printf(err, "%s: mitigation.%s: ", file ? file : "(config)", key);
	buf_printf(err, msg, arg ? arg : "");
	buf_cstr(err);
	return M_EINVAL;
}

static int parse_comm(const char *s, uint32_t *out)
{
	const char *colon = strchr(s, ':');
	unsigned long hi, lo;
	char *end;

	if (!colon || colon == s || s[0] < '0' || s[0] > '9' || colon[1] < '0' || colon[1] > '9')
		return M_EINVAL;
	errno = 0;
	hi = strtoul(s, &end, 10);
	if (errno || end != colon || hi > 65535)
		return M_EINVAL;
	lo = strtoul(colon + 1, &end, 10);
	if (errno || *end || lo > 65535)
		return M_EINVAL;
	*out = (uint32_t)(hi << 16 | lo);
	return M_OK;
}

static int name_ok(const char *s)
{
	if (!s[0] || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

int mitig_config_resolve(struct mitig_config *c, const char *file, struct buf *err)
{
	static const struct { const char *name; enum mitig_backend_kind k; } kinds[] = {
		{ "none", MITIG_BE_NONE }, { "gobgp", MITIG_BE_GOBGP }, { "exabgp", MITIG_BE_EXABGP },
		{ "bird", MITIG_BE_BIRD }, { "nftables", MITIG_BE_NFTABLES },
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (c->backend && strcmp(c->backend, kinds[i].name) == 0)
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		return cfg_err(err, file, "backend", "'%s': expected none, gobgp, exabgp, bird or nftables",
			       c->backend ? c->backend : "");
	c->kind = kinds[i].k;

	if (c->communities.n > MITIG_MAX_COMMUNITIES)
		return cfg_err(err, file, "communities", "at most 8%s", "");
	c->ncomm = 0;
	for (i = 0; i < c->communities.n; i++) {
		if (parse_comm(c->communities.v[i], &c->comm[c->ncomm]) < 0)
			return cfg_err(err, file, "communities", "'%s': expected ASN:VALUE, each 0..65535",
				       c->communities.v[i]);
		c->ncomm++;
	}
	if ((c->kind == MITIG_BE_GOBGP || c->kind == MITIG_BE_EXABGP || c->kind == MITIG_BE_BIRD) &&
	    c->ncomm == 0)
		return cfg_err(err, file, "communities", "a BGP back-end needs at least one blackhole community%s", "");

	memset(&c->nh4, 0, sizeof(c->nh4));
	memset(&c->nh6, 0, sizeof(c->nh6));
	if (c->next_hop4 && c->next_hop4[0] &&
	    (inet_pton(AF_INET, c->next_hop4, c->nh4.a) != 1 || !(c->nh4.af = 4) || !(c->nh4.len = 32)))
		return cfg_err(err, file, "next_hop_v4", "'%s': expected an IPv4 address", c->next_hop4);
	if (c->next_hop6 && c->next_hop6[0] &&
	    (inet_pton(AF_INET6, c->next_hop6, c->nh6.a) != 1 || !(c->nh6.af = 6) || !(c->nh6.len = 128)))
		return cfg_err(err, file, "next_hop_v6", "'%s': expected an IPv6 address", c->next_hop6);

	free(c->allow_p);
	c->allow_p = NULL;
	c->nallow = 0;
	if (c->allow.n > MITIG_MAX_ALLOW)
		return cfg_err(err, file, "allow", "at most 1024 prefixes%s", "");
	if (c->allow.n) {
		c->allow_p = calloc(c->allow.n, sizeof(*c->allow_p));
		if (!c->allow_p)
			return M_ENOMEM;
		for (i = 0; i < c->allow.n; i++) {
			if (mitig_prefix_parse(c->allow.v[i], &c->allow_p[i]) < 0)
				return cfg_err(err, file, "allow",
					       "'%s': expected an address or a prefix without host bits",
					       c->allow.v[i]);
			c->nallow++;
		}
	}

	switch (c->kind) {
	case MITIG_BE_GOBGP:
		if (!c->gobgp_api || !c->gobgp_api[0])
			return cfg_err(err, file, "gobgp_api", "the gobgp back-end needs gobgpd's API address%s", "");
		if (!c->gobgp_cmd || !c->gobgp_cmd[0])
			return cfg_err(err, file, "gobgp_command", "must not be empty%s", "");
		break;
	case MITIG_BE_EXABGP:
		if (!c->exabgp_pipe || !c->exabgp_pipe[0])
			return cfg_err(err, file, "exabgp_pipe", "the exabgp back-end needs the pipe ExaBGP reads%s", "");
		break;
	case MITIG_BE_BIRD:
		if (!c->bird_include || !c->bird_include[0])
			return cfg_err(err, file, "bird_include", "the bird back-end needs the file BIRD includes%s", "");
		if (!c->bird_socket || !c->bird_socket[0] || !c->birdc_cmd || !c->birdc_cmd[0])
			return cfg_err(err, file, "bird_socket", "the bird back-end needs BIRD's control socket and birdc%s", "");
		break;
	case MITIG_BE_NFTABLES:
		if (!c->nft_table || !name_ok(c->nft_table))
			return cfg_err(err, file, "nft_table", "'%s': letters, digits, '_' and '-' (at most 64)",
				       c->nft_table ? c->nft_table : "");
		break;
	case MITIG_BE_NONE:
		break;
	}
	return M_OK;
}

int mitig_config_load(const struct conf_doc *doc, struct mitig_config *cfg, struct buf *err)
{
	const struct conf_node *sec = NULL;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	if (doc && doc->root)
		sec = conf_map_get(doc->root, "mitigation");
	if ((r = conf_apply_map(doc, sec, "mitigation", mitig_keywords, NULL, cfg, err)) < 0)
		return r;
	return mitig_config_resolve(cfg, doc && doc->file ? doc->file : "(defaults)", err);
}

void mitig_config_free(struct mitig_config *cfg)
{
	conf_free(mitig_keywords, cfg);
	free(cfg->allow_p);
	cfg->allow_p = NULL;
	cfg->nallow = 0;
}

int mitig_config_describe(struct buf *out)
{
	return conf_describe("mitigation", mitig_keywords, out);
}

/* A deep copy: the manager owns its settings, so the caller may free its
 * configuration (or reload it) right after mitig_new(). */
int mitig_config_copy(struct mitig_config *d, const struct mitig_config *s)
{
	/* Scalars and resolved values by copy; then nothing of s is shared
	 * before the strings are duplicated, so a failure frees only d's. */
	memcpy(d, s, sizeof(*d));
	for (const struct conf_keyword *k = mitig_keywords; k->name; k++) {
		char *dst = (char *)d + k->offset;
		if (k->type == CONF_STR || k->type == CONF_ADDR)
			*(char **)dst = NULL;
		else if (k->type == CONF_STRLIST)
			memset(dst, 0, sizeof(struct conf_list));
	}
	d->allow_p = NULL;
	d->nallow = 0;
	for (const struct conf_keyword *k = mitig_keywords; k->name; k++) {
		char *dst = (char *)d + k->offset;
		const char *src = (const char *)s + k->offset;
		if (k->type == CONF_STR || k->type == CONF_ADDR) {
			const char *v = *(char *const *)src;
			if (v && !(*(char **)dst = strdup(v)))
				goto fail;
		} else if (k->type == CONF_STRLIST) {
			const struct conf_list *l = (const struct conf_list *)src;
			for (size_t i = 0; i < l->n; i++)
				if (conf_list_push((struct conf_list *)dst, l->v[i]) < 0)
					goto fail;
		}
	}
	if (s->nallow) {
		d->allow_p = malloc(s->nallow * sizeof(*d->allow_p));
		if (!d->allow_p)
			goto fail;
		memcpy(d->allow_p, s->allow_p, s->nallow * sizeof(*d->allow_p));
		d->nallow = s->nallow;
	}
	return M_OK;
fail:
	mitig_config_free(d);
	return M_ENOMEM;
}

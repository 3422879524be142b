/*
 * The GoBGP back-end: gobgpd (Debian's gobgpd) driven through its gobgp CLI
 * against the gRPC API (-u host -p port). One command per route:
 *
 *   gobgp -u H -p P global rib add -a ipv4 10.1.9.9/32 nexthop 192.0.2.1 community 65535:666
 *   gobgp -u H -p P global rib -a ipv4-flowspec add match destination 10.1.9.9/32
 *         protocol ==17 source-port '==11211' then discard
 *
 * GoBGP keeps one local path per NLRI, so an add replaces an earlier one
 * and a del of an absent route succeeds: both are idempotent, which is
 * what reconciliation needs. What it announces is read back with
 * `global rib -a FAMILY -j` and parsed here (jansson).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ddos/mitig_int.h"

#define GOBGP_MAX_ROUTES 100000

/* Appends one argument (copied into a->store). */
static int arg(struct mitig_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int arg(struct mitig_argv *a, const char *fmt, ...)
{
	size_t used = 0;
	va_list ap;
	int n;

	if (a->n >= MITIG_ARGV_MAX)
		return M_ELIMIT;
	if (a->n)
		used = (size_t)(a->v[a->n - 1] - a->store) + strlen(a->v[a->n - 1]) + 1;
	va_start(ap, fmt);
	n = vsnprintf(a->store + used, sizeof(a->store) - used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(a->store) - used)
		return M_ELIMIT;
	a->v[a->n++] = a->store + used;
	a->v[a->n] = NULL;
	return M_OK;
}

int mitig_gobgp_argv(const struct mitig_config *cfg, const struct mitig_route *r,
		     int withdraw, struct mitig_argv *a)
{
	const struct mitig_rule *u = &r->rule;
	char host[256], pfx[64], tmp[256];
	int port, rc = 0;
	int v6 = u->dst.af == 6;

	memset(a, 0, sizeof(*a));
	if (!cfg->gobgp_api || conf_split_addr(cfg->gobgp_api, host, sizeof(host), &port) < 0)
		return M_EINVAL;
	mitig_prefix_str(&u->dst, pfx, sizeof(pfx));
	rc |= arg(a, "%s", cfg->gobgp_cmd ? cfg->gobgp_cmd : "gobgp");
	rc |= arg(a, "-u");
	rc |= arg(a, "%s", host);
	rc |= arg(a, "-p");
	rc |= arg(a, "%d", port);
	rc |= arg(a, "global");
	rc |= arg(a, "rib");
	if (u->action == MITIG_BLACKHOLE) {
		const struct mitig_prefix *nh = v6 ? &cfg->nh6 : &cfg->nh4;
		rc |= arg(a, "%s", withdraw ? "del" : "add");
		rc |= arg(a, "-a");
		rc |= arg(a, "%s", v6 ? "ipv6" : "ipv4");
		rc |= arg(a, "%s", pfx);
		if (!withdraw) {
			size_t used = 0;
			if (!nh->af)
				return M_EINVAL;
			inet_ntop(v6 ? AF_INET6 : AF_INET, nh->a, tmp, sizeof(tmp));
			rc |= arg(a, "nexthop");
			rc |= arg(a, "%s", tmp);
			for (size_t i = 0; i < cfg->ncomm; i++) {
				char c[16];
				mitig_comm_str(cfg->comm[i], c, sizeof(c));
				used += (size_t)snprintf(tmp + used, sizeof(tmp) - used, "%s%s", i ? "," : "", c);
				if (used >= sizeof(tmp))
					return M_ELIMIT;
			}
			if (cfg->ncomm) {
				rc |= arg(a, "community");
				rc |= arg(a, "%s", tmp);
			}
		}
		return rc ? M_ELIMIT : M_OK;
	}
	rc |= arg(a, "-a");
	rc |= arg(a, "%s", v6 ? "ipv6-flowspec" : "ipv4-flowspec");
	rc |= arg(a, "%s", withdraw ? "del" : "add");
	rc |= arg(a, "match");
	rc |= arg(a, "destination");
	rc |= arg(a, "%s", pfx);
	if (u->proto) {
		rc |= arg(a, "protocol");
		rc |= arg(a, "==%u", u->proto);
	}
	if (u->nsport) {
		size_t used = 0;
		for (size_t i = 0; i < u->nsport; i++)
			used += (size_t)snprintf(tmp + used, sizeof(tmp) - used, "%s==%u", i ? " " : "",
						 u->sport[i]);
		if (used >= sizeof(tmp))
			return M_ELIMIT;
		rc |= arg(a, "source-port");
		rc |= arg(a, "%s", tmp);
	}
	if (u->len_max) {
		rc |= arg(a, "packet-length");
		if (u->len_min == u->len_max)
			rc |= arg(a, "==%u", u->len_min);
		else
			rc |= arg(a, ">=%u&<=%u", u->len_min, u->len_max);
	}
	if (!withdraw) {
		rc |= arg(a, "then");
		if (u->action == MITIG_DISCARD) {
			rc |= arg(a, "discard");
		} else {
			rc |= arg(a, "rate-limit");
			rc |= arg(a, "%llu", (unsigned long long)u->rate);
		}
	}
	return rc ? M_ELIMIT : M_OK;
}

int mitig_argv_join(const struct mitig_argv *a, struct buf *out)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < a->n; i++) {
		int quote = strpbrk(a->v[i], " &<>|") != NULL;
		rc = buf_printf(out, "%s%s%s%s", i ? " " : "", quote ? "'" : "", a->v[i],
				quote ? "'" : "");
	}
	if (rc == 0)
		rc = buf_cstr(out);
	return rc;
}

/* ---- reading the RIB back ---- */

static int local_path(json_t *path)
{
	/* Paths learned from a peer name it; mamori's are local. */
	json_t *nb = json_object_get(path, "neighbor-ip");
	const char *s = json_string_value(nb);

	return !s || !*s || strcmp(s, "<nil>") == 0 || strcmp(s, "0.0.0.0") == 0 ||
	       strcmp(s, "::") == 0;
}

static int parse_nh(const char *s, struct mitig_prefix *nh)
{
	memset(nh, 0, sizeof(*nh));
	if (!s)
		return M_EPARSE;
	if (inet_pton(AF_INET, s, nh->a) == 1) {
		nh->af = 4;
		nh->len = 32;
	} else if (inet_pton(AF_INET6, s, nh->a) == 1) {
		nh->af = 6;
		nh->len = 128;
	} else {
		return M_EPARSE;
	}
	return M_OK;
}

/* A unicast path: ours when it carries the first blackhole community. */
static int unicast_route(const struct mitig_config *cfg, json_t *path, struct mitig_route *out)
{
	json_t *attrs = json_object_get(path, "attrs"), *at;
	const char *pfx = json_string_value(json_object_get(json_object_get(path, "nlri"), "prefix"));
	uint32_t comm[MITIG_MAX_COMMUNITIES];
	size_t ncomm = 0, i;
	int ours = 0;
	struct mitig_rule r;
	struct mitig_prefix nh;
	const char *nhs = NULL;

	memset(&r, 0, sizeof(r));
	if (!pfx || mitig_prefix_parse(pfx, &r.dst) < 0 || cfg->ncomm == 0)
		return M_EPARSE;
	r.action = MITIG_BLACKHOLE;
	json_array_foreach(attrs, i, at) {
		json_int_t type = json_integer_value(json_object_get(at, "type"));
		if (type == 8) {
			size_t j;
			json_t *c;
			json_array_foreach(json_object_get(at, "communities"), j, c) {
				uint32_t v = (uint32_t)json_integer_value(c);
				if (v == cfg->comm[0])
					ours = 1;
				if (ncomm < MITIG_MAX_COMMUNITIES)
					comm[ncomm++] = v;
			}
		} else if ((type == 3 || type == 14) && json_string_value(json_object_get(at, "nexthop"))) {
			nhs = json_string_value(json_object_get(at, "nexthop"));
		}
	}
	if (!ours)
		return M_ENOTFOUND;
	if (parse_nh(nhs, &nh) < 0)
		memset(&nh, 0, sizeof(nh));
	return mitig_route_from_speaker(&r, nh.af ? &nh : NULL, comm, ncomm, out);
}

/* FlowSpec operator byte (RFC 8955 4.2.1.1): end 0x80, and 0x40, length
 * 0x30, lt 0x04, gt 0x02, eq 0x01. */
#define FS_AND 0x40
#define FS_CMP 0x07
#define FS_EQ 0x01
#define FS_GE 0x03
#define FS_LE 0x05

/* A FlowSpec path: ours when every component is one mamori writes
 * (destination, protocol ==, source ports ==, one length range) and it
 * carries a traffic-rate action. */
static int flowspec_route(json_t *path, struct mitig_route *out)
{
	json_t *comps = json_object_get(json_object_get(path, "nlri"), "value"), *c, *attrs, *at;
	struct mitig_rule r;
	int have_action = 0;
	size_t i;

	memset(&r, 0, sizeof(r));
	if (!json_is_array(comps))
		return M_EPARSE;
	json_array_foreach(comps, i, c) {
		json_int_t type = json_integer_value(json_object_get(c, "type"));
		json_t *val = json_object_get(c, "value"), *item;
		size_t j;
		if (type == 1) {
			const char *p = json_string_value(json_object_get(val, "prefix"));
			json_int_t off = json_integer_value(json_object_get(c, "offset"));
			if (!p || off != 0 || mitig_prefix_parse(p, &r.dst) < 0)
				return M_ENOTFOUND;
			continue;
		}
		if (!json_is_array(val) || json_array_size(val) == 0)
			return M_ENOTFOUND;
		if (type == 3) {
			item = json_array_get(val, 0);
			if (json_array_size(val) != 1 ||
			    (json_integer_value(json_object_get(item, "op")) & FS_CMP) != FS_EQ)
				return M_ENOTFOUND;
			r.proto = (uint8_t)json_integer_value(json_object_get(item, "value"));
		} else if (type == 6) {
			json_array_foreach(val, j, item) {
				json_int_t op = json_integer_value(json_object_get(item, "op"));
				json_int_t v = json_integer_value(json_object_get(item, "value"));
				if ((op & (FS_AND | FS_CMP)) != FS_EQ || v < 0 || v > 65535 ||
				    r.nsport >= MITIG_MAX_PORTS)
					return M_ENOTFOUND;
				r.sport[r.nsport++] = (uint16_t)v;
			}
		} else if (type == 10) {
			json_t *a = json_array_get(val, 0), *b = json_array_get(val, 1);
			json_int_t oa = json_integer_value(json_object_get(a, "op"));
			json_int_t va = json_integer_value(json_object_get(a, "value"));
			if (va < 0 || va > 65535)
				return M_ENOTFOUND;
			if (json_array_size(val) == 1 && (oa & FS_CMP) == FS_EQ) {
				r.len_min = r.len_max = (uint16_t)va;
			} else if (json_array_size(val) == 2 && (oa & FS_CMP) == FS_GE) {
				json_int_t ob = json_integer_value(json_object_get(b, "op"));
				json_int_t vb = json_integer_value(json_object_get(b, "value"));
				if ((ob & (FS_AND | FS_CMP)) != (FS_AND | FS_LE) || vb < va || vb > 65535)
					return M_ENOTFOUND;
				r.len_min = (uint16_t)va;
				r.len_max = (uint16_t)vb;
			} else {
				return M_ENOTFOUND;
			}
		} else {
			return M_ENOTFOUND;
		}
	}
	if (!r.dst.af)
		return M_ENOTFOUND;
	attrs = json_object_get(path, "attrs");
	json_array_foreach(attrs, i, at) {
		size_t j;
		json_t *x;
		if (json_integer_value(json_object_get(at, "type")) != 16)
			continue;
		json_array_foreach(json_object_get(at, "value"), j, x) {
			if (json_integer_value(json_object_get(x, "subtype")) != 6 ||
			    json_integer_value(json_object_get(x, "type")) != 128)
				continue;
			double rate = json_number_value(json_object_get(x, "rate"));
			have_action = 1;
			if (rate <= 0) {
				r.action = MITIG_DISCARD;
			} else {
				r.action = MITIG_RATELIMIT;
				r.rate = (uint64_t)(rate + 0.5);
			}
		}
	}
	if (!have_action || mitig_rule_check(&r, NULL, 0) < 0)
		return M_ENOTFOUND;
	return mitig_route_from_speaker(&r, NULL, NULL, 0, out);
}

int mitig_gobgp_parse_rib(const struct mitig_config *cfg, const char *json, size_t len,
			  int flowspec, struct mitig_route **out, size_t *n, size_t *foreign)
{
	json_error_t jerr;
	json_t *root;
	const char *k;
	json_t *paths;
	int rc = M_OK;

	*foreign = 0;
	/* No route at all: gobgp prints nothing, "null" or "{}". */
	while (len && (json[len - 1] == '\n' || json[len - 1] == ' '))
		len--;
	if (len == 0)
		return M_OK;
	root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
	if (!root)
		return M_EPARSE;
	if (json_is_null(root)) {
		json_decref(root);
		return M_OK;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return M_EPARSE;
	}
	json_object_foreach(root, k, paths) {
		size_t i;
		json_t *p;
		json_array_foreach(paths, i, p) {
			struct mitig_route r;
			int x;
			if (!local_path(p))
				continue;
			x = flowspec ? flowspec_route(p, &r) : unicast_route(cfg, p, &r);
			if (x < 0) {
				(*foreign)++;
				continue;
			}
			if ((rc = mitig_routes_push(out, n, GOBGP_MAX_ROUTES, &r)) < 0)
				goto done;
		}
	}
done:
	json_decref(root);
	return rc;
}

/* ---- the back-end ---- */

static int run(struct mitig *m, const struct mitig_argv *a, struct buf *out, struct buf *err)
{
	return mitig_exec(a->v, NULL, 0, mitig_timeout_ms(m), out, err);
}

static int gobgp_send(struct mitig *m, const struct mitig_route *r, int withdraw, struct buf *err)
{
	struct mitig_argv a;
	int rc;

	if ((rc = mitig_gobgp_argv(&m->cfg, r, withdraw, &a)) < 0) {
		buf_printf(err, "cannot build the gobgp command for %s (next hop or API address missing?)",
			   r->key);
		buf_cstr(err);
		return rc;
	}
	return run(m, &a, NULL, err);
}

static int gobgp_announce(struct mitig *m, const struct mitig_route *r, struct buf *err)
{
	return gobgp_send(m, r, 0, err);
}

static int gobgp_withdraw(struct mitig *m, const struct mitig_route *r, struct buf *err)
{
	return gobgp_send(m, r, 1, err);
}

static int gobgp_list(struct mitig *m, struct mitig_route **out, size_t *n, struct buf *err)
{
	static const char *const families[] = { "ipv4", "ipv6", "ipv4-flowspec", "ipv6-flowspec" };
	char host[256];
	int port, rc = M_OK;

	*out = NULL;
	*n = 0;
	if (conf_split_addr(m->cfg.gobgp_api, host, sizeof(host), &port) < 0)
		return M_EINVAL;
	for (size_t f = 0; f < 4 && rc == 0; f++) {
		struct mitig_argv a;
		struct buf o;
		size_t foreign = 0;
		memset(&a, 0, sizeof(a));
		rc = arg(&a, "%s", m->cfg.gobgp_cmd);
		rc |= arg(&a, "-u");
		rc |= arg(&a, "%s", host);
		rc |= arg(&a, "-p");
		rc |= arg(&a, "%d", port);
		rc |= arg(&a, "global");
		rc |= arg(&a, "rib");
		rc |= arg(&a, "-a");
		rc |= arg(&a, "%s", families[f]);
		rc |= arg(&a, "-j");
		if (rc)
			return M_ELIMIT;
		buf_init(&o, 1 << 20);
		rc = run(m, &a, &o, err);
		if (rc == 0) {
			rc = mitig_gobgp_parse_rib(&m->cfg, o.p ? o.p : "", o.len, f >= 2, out, n, &foreign);
			if (rc == M_EPARSE) {
				buf_printf(err, "gobgp global rib -a %s -j: unexpected output", families[f]);
				buf_cstr(err);
			}
		}
		buf_fini(&o);
	}
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

const struct mitig_backend mitig_be_gobgp = {
	.name = "gobgp",
	.full_state = 0,
	.announce = gobgp_announce,
	.withdraw = gobgp_withdraw,
	.sync = NULL,
	.list = gobgp_list,
};

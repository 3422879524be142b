/*
 * The BIRD 2 back-end: mamori owns one file that the operator's BIRD
 * configuration includes. It holds four static protocols (mamori_rtbh4,
 * mamori_rtbh6, mamori_flow4, mamori_flow6), always all four, so a route
 * that leaves the file leaves BIRD at the next `birdc configure`:
 *
 *   protocol static mamori_rtbh4 {
 *     ipv4;
 *     route 10.1.9.9/32 blackhole { bgp_community.add((65535,666)); bgp_next_hop = 192.0.2.1; };
 *   }
 *   protocol static mamori_flow4 {
 *     flow4 { table flowtab4; };
 *     route flow4 { dst 10.1.9.9/32; proto = 17; sport 11211; } {
 *       bgp_ext_community.add((generic, 0x80060000, 0x0)); };
 *   }
 *
 * The FlowSpec action is the traffic-rate extended community (RFC 8955:
 * type 0x8006, the rate as an IEEE float, 0 = discard). The file is written
 * aside and renamed, then BIRD is told to reconfigure; when BIRD refuses
 * it, the previous file is put back so BIRD's next reload still works.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "ddos/mitig_int.h"

#define BIRD_MAX_FILE (64 << 20)

static int bird_static(const struct mitig_config *cfg, const struct mitig_route *r, size_t n,
		       int af, int flow, struct buf *out)
{
	int rc;

	rc = buf_printf(out, "protocol static mamori_%s%d {\n\t%s;\n", flow ? "flow" : "rtbh",
			af == 4 ? 4 : 6,
			flow ? (af == 4 ? "flow4 { table flowtab4; }" : "flow6 { table flowtab6; }")
			     : (af == 4 ? "ipv4" : "ipv6"));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct mitig_rule *u = &r[i].rule;
		char pfx[64];
		if (u->dst.af != af || (u->action == MITIG_BLACKHOLE) == flow)
			continue;
		mitig_prefix_str(&u->dst, pfx, sizeof(pfx));
		if (!flow) {
			const struct mitig_prefix *nh = af == 4 ? &cfg->nh4 : &cfg->nh6;
			char a[INET6_ADDRSTRLEN];
			if (!nh->af)
				return M_EINVAL;
			inet_ntop(af == 4 ? AF_INET : AF_INET6, nh->a, a, sizeof(a));
			rc = buf_printf(out, "\troute %s blackhole {", pfx);
			for (size_t c = 0; rc == 0 && c < cfg->ncomm; c++)
				rc = buf_printf(out, " bgp_community.add((%u,%u));", cfg->comm[c] >> 16,
						cfg->comm[c] & 0xffff);
			if (rc == 0)
				rc = buf_printf(out, " bgp_next_hop = %s; };\n", a);
			continue;
		}
		rc = buf_printf(out, "\troute flow%d { dst %s;", af, pfx);
		if (rc == 0 && u->proto)
			rc = buf_printf(out, " %s = %u;", af == 4 ? "proto" : "next header", u->proto);
		for (size_t p = 0; rc == 0 && p < u->nsport; p++)
			rc = buf_printf(out, "%s%u", p ? ", " : " sport ", u->sport[p]);
		if (rc == 0 && u->nsport)
			rc = buf_putc(out, ';');
		if (rc == 0 && u->len_max)
			rc = buf_printf(out, " length %u..%u;", u->len_min, u->len_max);
		if (rc == 0)
			rc = buf_printf(out, " } { bgp_ext_community.add((generic, 0x80060000, 0x%x)); };\n",
					mitig_rate_bits(u));
	}
	return rc ? rc : buf_puts(out, "}\n");
}

int mitig_bird_render(const struct mitig_config *cfg, const struct mitig_route *r,
		      size_t n, struct buf *out)
{
	int rc;

	rc = buf_printf(out, "# Written by mamori (DDoS mitigation, backend bird): %zu route(s).\n"
			"# Rewritten whole at every change; edits here are lost.\n", n);
	if (rc == 0)
		rc = bird_static(cfg, r, n, 4, 0, out);
	if (rc == 0)
		rc = bird_static(cfg, r, n, 6, 0, out);
	if (rc == 0)
		rc = bird_static(cfg, r, n, 4, 1, out);
	if (rc == 0)
		rc = bird_static(cfg, r, n, 6, 1, out);
	return rc;
}

static int read_file(const char *path, struct buf *out, int *exists)
{
	char chunk[8192];
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*exists = fd >= 0;
	if (fd < 0)
		return errno == ENOENT ? M_OK : M_EIO;
	while ((k = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(out, chunk, (size_t)k) < 0)
			break;
	close(fd);
	return k < 0 ? M_EIO : M_OK;
}

/* Writes path through path.tmp and rename, so BIRD never reads half a file. */
static int write_file(const char *path, const char *data, size_t len, struct buf *err)
{
	char tmp[4096];
	size_t done = 0;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return M_EINVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		buf_printf(err, "%s: %s", tmp, strerror(errno));
		buf_cstr(err);
		return M_EIO;
	}
	while (done < len) {
		ssize_t k = write(fd, data + done, len - done);
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			buf_printf(err, "%s: write: %s", tmp, k < 0 ? strerror(errno) : "short");
			buf_cstr(err);
			close(fd);
			unlink(tmp);
			return M_EIO;
		}
		done += (size_t)k;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		buf_printf(err, "%s: %s", path, strerror(errno));
		buf_cstr(err);
		unlink(tmp);
		return M_EIO;
	}
	return M_OK;
}

static int birdc_configure(struct mitig *m, struct buf *err)
{
	char *argv[] = { m->cfg.birdc_cmd, "-s", m->cfg.bird_socket, "configure", NULL };
	struct buf out;
	int rc;

	buf_init(&out, 1 << 20);
	rc = mitig_exec(argv, NULL, 0, mitig_timeout_ms(m), &out, err);
	/* birdc exits 0 on some refusals; BIRD's answer says. */
	if (rc == 0 && out.p && !strstr(out.p, "Reconfigured") &&
	    !strstr(out.p, "Reconfiguration in progress") && !strstr(out.p, "already in progress")) {
		buf_printf(err, "birdc configure: %.*s", (int)(out.len < 512 ? out.len : 512), out.p);
		buf_cstr(err);
		rc = M_EIO;
	}
	buf_fini(&out);
	return rc;
}

static int bird_sync(struct mitig *m, const struct mitig_route *r, size_t n, struct buf *err)
{
	struct buf text, old;
	int rc, existed = 0;

	buf_init(&text, BIRD_MAX_FILE);
	buf_init(&old, BIRD_MAX_FILE);
	rc = mitig_bird_render(&m->cfg, r, n, &text);
	if (rc < 0) {
		buf_printf(err, "cannot write the BIRD include (next hop missing?)");
		buf_cstr(err);
		goto out;
	}
	if ((rc = read_file(m->cfg.bird_include, &old, &existed)) < 0) {
		buf_printf(err, "%s: cannot read: %s", m->cfg.bird_include, strerror(errno));
		buf_cstr(err);
		goto out;
	}
	if ((rc = write_file(m->cfg.bird_include, text.p, text.len, err)) < 0)
		goto out;
	rc = birdc_configure(m, err);
	if (rc < 0 && err->p && strstr(err->p, "Unable to connect")) {
		/* BIRD is down: the new file is what it must load when it starts. */
	} else if (rc < 0) {
		/* Put the file BIRD accepted last back, so its next reload works. */
		struct buf ignore;
		buf_init(&ignore, 4096);
		if (existed)
			write_file(m->cfg.bird_include, old.p ? old.p : "", old.len, &ignore);
		else
			unlink(m->cfg.bird_include);
		buf_fini(&ignore);
	}
out:
	buf_fini(&text);
	buf_fini(&old);
	return rc;
}

const struct mitig_backend mitig_be_bird = {
	.name = "bird",
	.full_state = 1,
	.announce = NULL,
	.withdraw = NULL,
	.sync = bird_sync,
	.list = NULL,
};

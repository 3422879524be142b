/*
 * Privilege drop for `mamori serve` (see privs.h). The order matters:
 * ownership of the data directory first (so the store can create its files
 * afterwards), then groups, gid, uid; capabilities are kept across setuid()
 * only when a low port must still be bound, and then reduced to
 * CAP_NET_BIND_SERVICE alone. Finally we check that root cannot be regained.
 */
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/privs.h"
#include "cli/settings.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0) {
		log_msg(LOG_ERROR, "serve", "event=chown_failed path=%s err=\"%s\"", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* True when addr ("host:port") names a port below 1024. */
static int low_port(const char *addr)
{
	char host[256];
	int port;

	return addr && addr[0] && conf_split_addr(addr, host, sizeof(host), &port) == 0 &&
	       port > 0 && port < 1024;
}

/* Keeps CAP_NET_BIND_SERVICE only (effective and permitted). */
static int keep_bind_capability(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	return (int)syscall(SYS_capset, &hdr, data);
}

int privs_drop(const struct settings *s)
{
	const char *user = s->g.user;
	struct passwd *pw;
	int low;

	if (getuid() != 0 && geteuid() != 0)
		return M_OK;
	if (!user || !user[0]) {
		log_msg(LOG_WARN, "serve", "event=running_as_root hint=\"set 'user:' (e.g. nobody) "
			"so the parts that read network input run unprivileged\"");
		return M_OK;
	}
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		log_msg(LOG_ERROR, "serve", "event=unknown_user user=%s", user);
		return M_EINVAL;
	}
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	if (nftw(s->g.data_dir, chown_one, 16, FTW_PHYS) != 0)
		return M_EIO;
	low = low_port(s->ingest.syslog_udp) || low_port(s->ingest.syslog_tcp) ||
	      low_port(s->ingest.syslog_tls) || low_port(s->ingest.json_tcp) ||
	      low_port(s->api.listen);
	if (low && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		goto fail;
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		goto fail;
	if (low) {
		if (keep_bind_capability() < 0)
			goto fail;
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	}
	if (setuid(0) == 0) {
		log_msg(LOG_ERROR, "serve", "event=privilege_drop_failed reason=\"root could be regained\"");
		return M_EIO;
	}
	log_msg(LOG_INFO, "serve", "event=privileges_dropped user=%s uid=%u gid=%u bind_low_ports=%s",
		user, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, low ? "yes" : "no");
	return M_OK;
fail:
	log_msg(LOG_ERROR, "serve", "event=privilege_drop_failed user=%s err=\"%s\"", user,
		strerror(errno));
	return M_EIO;
}

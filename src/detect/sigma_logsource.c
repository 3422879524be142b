/*
 * Which Sigma logsource an event belongs to: product, categories and
 * services, derived from what the parsers set (the Windows channel and
 * event id, the Sysmon event id, event.module / event.dataset, the syslog
 * program), and the generic `network` category (service dns or
 * connection) over those. Why: a rule may only meet events of its
 * logsource — a process_creation rule never sees a DNS query — which is
 * both the Sigma semantics (backends add these conditions) and what keeps
 * matching cheap.
 */
#include <string.h>
#include <strings.h>

#include "core/schema.h"
#include "detect/sigma_int.h"

struct chan_map {
	const char *channel;   /* exact, or a prefix when it ends with '*' */
	const char *service;
	uint32_t len;          /* of channel */
};

#define CH(c, s) { c, s, sizeof(c) - 1 }

/* Windows channels and the Sigma services that name them. */
static const struct chan_map channels[] = {
	CH("Security", "security"),
	CH("System", "system"),
	CH("Application", "application"),
	CH("Microsoft-Windows-Sysmon/Operational", "sysmon"),
	CH("Microsoft-Windows-PowerShell/Operational", "powershell"),
	CH("PowerShellCore/Operational", "powershell"),
	CH("Windows PowerShell", "powershell-classic"),
	CH("Microsoft-Windows-TaskScheduler/Operational", "taskscheduler"),
	CH("Microsoft-Windows-WMI-Activity/Operational", "wmi"),
	CH("DNS Server", "dns-server"),
	CH("Microsoft-Windows-DNS-Server/Analytical", "dns-server-analytic"),
	CH("Microsoft-Windows-DNS Client Events/Operational", "dns-client"),
	CH("Microsoft-Windows-DNS-Client/Operational", "dns-client"),
	CH("Microsoft-Windows-DriverFrameworks-UserMode/Operational", "driver-framework"),
	CH("Microsoft-Windows-NTLM/Operational", "ntlm"),
	CH("Microsoft-Windows-Windows Defender/Operational", "windefend"),
	CH("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall", "firewall-as"),
	CH("Microsoft-Windows-Bits-Client/Operational", "bits-client"),
	CH("Microsoft-Windows-CodeIntegrity/Operational", "codeintegrity-operational"),
	CH("Microsoft-Windows-AppXDeploymentServer/Operational", "appxdeployment-server"),
	CH("Microsoft-Windows-AppxPackaging/Operational", "appxpackaging-om"),
	CH("Microsoft-Windows-AppModel-Runtime/Admin", "appmodel-runtime"),
	CH("MSExchange Management", "msexchange-management"),
	CH("Microsoft-Windows-Security-Mitigations*", "security-mitigations"),
	CH("Microsoft-IIS-Configuration/Operational", "iis-configuration"),
	CH("Microsoft-Windows-AppLocker*", "applocker"),
	CH("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
	  "terminalservices-localsessionmanager"),
	CH("Microsoft-Windows-SmbClient/Security", "smbclient-security"),
	CH("Microsoft-Windows-SmbClient/Connectivity", "smbclient-connectivity"),
	CH("Microsoft-Windows-SMBServer/Connectivity", "smbserver-connectivity"),
	CH("Microsoft-Windows-Shell-Core/Operational", "shell-core"),
	CH("Microsoft-Windows-PrintService/Operational", "printservice-operational"),
	CH("Microsoft-Windows-PrintService/Admin", "printservice-admin"),
	CH("OpenSSH/Operational", "openssh"),
	CH("Microsoft-ServiceBus-Client", "microsoft-servicebus-client"),
	CH("Microsoft-Windows-LSA/Operational", "lsa-server"),
	CH("Microsoft-Windows-LDAP-Client/Debug", "ldap"),
	CH("Microsoft-Windows-Diagnosis-Scripted/Operational", "diagnosis-scripted"),
	CH("Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational",
	  "certificateservicesclient-lifecycle-system"),
	CH("Microsoft-Windows-CAPI2/Operational", "capi2"),
};

static int chan_eq_n(struct str ch, const char *pat, size_t n)
{
	if (n && pat[n - 1] == '*')
		return ch.n >= n - 1 && strncasecmp(ch.p, pat, n - 1) == 0;
	return ch.n == n && strncasecmp(ch.p, pat, n) == 0;
}

static int chan_eq(struct str ch, const char *pat)
{
	return chan_eq_n(ch, pat, strlen(pat));
}

static void add_cat(struct sigma_logsource *ls, const char *c)
{
	if (ls->n_category < 4)
		ls->category[ls->n_category++] = str_cstr(c);
}

static void add_svc(struct sigma_logsource *ls, struct str s)
{
	if (ls->n_service < 3 && s.n)
		ls->service[ls->n_service++] = s;
}

static void sysmon_category(struct sigma_logsource *ls, int64_t id,
			    struct str etype)
{
	static const char *const cat[] = {
		[1] = "process_creation", [2] = "file_change",
		[3] = "network_connection", [4] = "sysmon_status",
		[5] = "process_termination", [6] = "driver_load",
		[7] = "image_load", [8] = "create_remote_thread",
		[9] = "raw_access_thread", [10] = "process_access",
		[11] = "file_event", [15] = "create_stream_hash",
		[16] = "sysmon_status", [17] = "pipe_created",
		[18] = "pipe_created", [19] = "wmi_event", [20] = "wmi_event",
		[21] = "wmi_event", [22] = "dns_query", [23] = "file_delete",
		[24] = "clipboard_capture", [25] = "process_tampering",
		[26] = "file_delete_detected", [27] = "file_block_executable",
		[28] = "file_block_shredding", [29] = "file_executable_detected",
		[255] = "sysmon_error",
	};

	if (id >= 12 && id <= 14) {
		add_cat(ls, "registry_event");
		if (id == 13)
			add_cat(ls, "registry_set");
		if (id == 14)
			add_cat(ls, "registry_rename");
		if (id == 12 && str_eq_cstr(etype, "CreateKey"))
			add_cat(ls, "registry_add");
		if (id == 12 && (str_eq_cstr(etype, "DeleteKey") ||
				 str_eq_cstr(etype, "DeleteValue")))
			add_cat(ls, "registry_delete");
		return;
	}
	if (id == 23 || id == 26)
		add_cat(ls, "file_delete");
	if (id > 0 && id < (int64_t)(sizeof(cat) / sizeof(cat[0])) && cat[id] &&
	    !(id == 26))
		add_cat(ls, cat[id]);
	if (id == 26)
		add_cat(ls, "file_delete_detected");
}

static void windows(const struct event *ev, struct sigma_logsource *ls, struct str ch)
{
	struct str code = event_get(ev, F_EVENT_CODE);
	struct str prov = event_get(ev, F_EVENT_PROVIDER);
	int64_t id = -1;

	ls->product = STR_LIT("windows");
	str_to_i64(code, &id);
	for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++)
		if (ch.n && chan_eq_n(ch, channels[i].channel, channels[i].len)) {
			add_svc(ls, str_cstr(channels[i].service));
			break;
		}
	if (str_eq_cstr(prov, "Microsoft-Windows-Sysmon")) {
		sysmon_category(ls, id, event_get_xid(ev, XN_WINLOG_EVENT_DATA_EVENTTYPE));
		return;
	}
	if (chan_eq(ch, "Security")) {
		if (id == 4688)
			add_cat(ls, "process_creation");
		return;
	}
	if (chan_eq(ch, "Microsoft-Windows-PowerShell/Operational") ||
	    chan_eq(ch, "PowerShellCore/Operational")) {
		if (id == 4104)
			add_cat(ls, "ps_script");
		else if (id == 4103)
			add_cat(ls, "ps_module");
		return;
	}
	if (chan_eq(ch, "Windows PowerShell")) {
		if (id == 400)
			add_cat(ls, "ps_classic_start");
		else if (id == 600)
			add_cat(ls, "ps_classic_provider_start");
		else if (id == 800)
			add_cat(ls, "ps_classic_script");
		return;
	}
	if (str_eq_cstr(prov, "Microsoft-Windows-Kernel-File"))
		add_cat(ls, "file_access");
}

struct module_map {
	const char *module;
	const char *product;
	const char *category;
	const char *service;
};

/* event.module (or the syslog program) to a logsource. */
static const struct module_map modules[] = {
	{ "sshd", "linux", NULL, "sshd" },
	{ "sudo", "linux", NULL, "sudo" },
	{ "su", "linux", NULL, "auth" },
	{ "auditd", "linux", NULL, "auditd" },
	{ "audit", "linux", NULL, "auditd" },
	{ "cron", "linux", NULL, "cron" },
	{ "CRON", "linux", NULL, "cron" },
	{ "vsftpd", "linux", NULL, "vsftpd" },
	{ "clamd", "linux", NULL, "clamav" },
	{ "squid", NULL, "proxy", "squid" },
	{ "proxy", NULL, "proxy", NULL },
	{ "apache", NULL, "webserver", "apache" },
	{ "nginx", NULL, "webserver", "nginx" },
	{ "iis", NULL, "webserver", "iis" },
	{ "firewall", NULL, "firewall", NULL },
	{ "iptables", "linux", "firewall", NULL },
	{ "nftables", "linux", "firewall", NULL },
	{ "kernel", "linux", NULL, "syslog" },
	{ "named", NULL, "dns", "named" },
	{ "unbound", NULL, "dns", "unbound" },
	{ "dns", NULL, "dns", NULL },
	{ "zeek", "zeek", NULL, NULL },
	{ "cisco", "cisco", NULL, NULL },
	{ "fortigate", "fortigate", NULL, "event" },
	{ "mamori", "mamori", NULL, NULL },
	{ "ddos", "mamori", NULL, "ddos" },
	{ "mail", "mamori", NULL, "mail" },
};

static void apply_module(struct sigma_logsource *ls, struct str name)
{
	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
		const struct module_map *m = &modules[i];

		/* The first byte first: strlen per entry was most of this. */
		if (!name.n || name.p[0] != m->module[0] || !str_eq_cstr(name, m->module))
			continue;
		if (m->product && !ls->product.n)
			ls->product = str_cstr(m->product);
		if (m->category)
			add_cat(ls, m->category);
		if (m->service)
			add_svc(ls, str_cstr(m->service));
		return;
	}
}

static int has(const struct str *v, uint32_t n, const char *x)
{
	for (uint32_t i = 0; i < n; i++)
		if (str_eq_cstr(v[i], x))
			return 1;
	return 0;
}

/* The generic network category of the Sigma taxonomy (2.1): DNS queries
 * and connections in general, whatever product saw them, named with ECS
 * fields. */
static void network_category(struct sigma_logsource *ls)
{
	const char *svc = NULL;

	if (has(ls->category, ls->n_category, "dns") ||
	    (str_eq_cstr(ls->product, "zeek") && has(ls->service, ls->n_service, "dns")))
		svc = "dns";
	else if (has(ls->category, ls->n_category, "firewall") ||
		 (str_eq_cstr(ls->product, "zeek") && has(ls->service, ls->n_service, "conn")))
		svc = "connection";
	if (!svc)
		return;
	if (!has(ls->category, ls->n_category, "network"))
		add_cat(ls, "network");
	if (!has(ls->service, ls->n_service, svc))
		add_svc(ls, str_cstr(svc));
}

static void event_logsource(const struct event *ev, struct sigma_logsource *ls);

void sigma_event_logsource(const struct event *ev, struct sigma_logsource *ls)
{
	event_logsource(ev, ls);
	network_category(ls);
}

static void event_logsource(const struct event *ev, struct sigma_logsource *ls)
{
	struct str module = event_get(ev, F_EVENT_MODULE);
	struct str dataset = event_get(ev, F_EVENT_DATASET);
	struct str app = event_get(ev, F_LOG_SYSLOG_APPNAME);
	struct str ch = event_get_xid(ev, XN_WINLOG_CHANNEL);

	memset(ls, 0, sizeof(*ls));
	if (ch.p || str_eq_cstr(module, "sysmon") || str_eq_cstr(module, "security")) {
		windows(ev, ls, ch);
		return;
	}
	if (str_eq_cstr(module, "suricata")) {
		struct str t = event_get(ev, F_SURICATA_EVE_EVENT_TYPE);

		ls->product = STR_LIT("suricata");
		if (str_eq_cstr(t, "dns"))
			add_cat(ls, "dns");
		else if (str_eq_cstr(t, "http"))
			add_cat(ls, "proxy");
		else if (str_eq_cstr(t, "flow") || str_eq_cstr(t, "netflow"))
			add_cat(ls, "firewall");
		add_svc(ls, t);
		return;
	}
	/* "zeek.dns" style datasets: product.service. */
	if (dataset.n) {
		const char *dot = memchr(dataset.p, '.', dataset.n);

		if (dot && str_eq(str_make(dataset.p, (size_t)(dot - dataset.p)), STR_LIT("zeek"))) {
			ls->product = STR_LIT("zeek");
			add_svc(ls, str_make(dot + 1, dataset.n - (size_t)(dot - dataset.p) - 1));
			return;
		}
	}
	if (module.n)
		apply_module(ls, module);
	if (app.n) {
		apply_module(ls, app);
		if (!ls->product.n)
			ls->product = STR_LIT("linux");
		add_svc(ls, STR_LIT("syslog"));
	}
}

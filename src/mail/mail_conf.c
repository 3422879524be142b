/*
 * mail_conf: the mail: keyword table and the checks of its enumerations.
 */
#include "mail/mail_conf.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define MC(f) offsetof(struct mail_config, f)

const struct conf_keyword mail_keywords[] = {
	{ "milter", CONF_ADDR, MC(milter), 0, 0, "127.0.0.1:8891", 0,
	  "where the MTA's milter connects (Postfix smtpd_milters = inet:HOST:PORT); \"\" disables" },
	{ "max_connections", CONF_INT, MC(max_conns), 1, 65536, "256", 0,
	  "simultaneous MTA connections (one thread each)" },
	{ "max_message_size", CONF_SIZE, MC(max_message), 1024, (int64_t)1 << 30, "50M", 0,
	  "larger messages are not scanned and get the oversize policy (tempfail)" },
	{ "timeout", CONF_DURATION, MC(timeout), 1, 3600, "300s", 0,
	  "idle time before an MTA connection is closed" },
	{ "authserv_id", CONF_STR, MC(authserv_id), 0, 0, "", 0,
	  "name in our Authentication-Results headers; \"\" = this host's name" },
	{ "dns", CONF_STR, MC(dns), 0, 0, "", 0,
	  "resolver for SPF/DKIM/DMARC lookups, ip or ip@port; \"\" = /etc/resolv.conf" },
	{ "dns_timeout", CONF_DURATION, MC(dns_timeout), 1, 60, "5s", 0,
	  "bound on one DNS lookup; a timeout is a temperror, never a pass or a fail" },
	{ "local_domains", CONF_STRLIST, MC(local_domains), 0, 0, NULL, 0,
	  "our domains: mail from them is outbound, lookalikes of them are flagged" },
	{ "internal_networks", CONF_STRLIST, MC(internal_networks), 0, 0, NULL, 0,
	  "client networks (CIDR) whose mail is outbound, besides SMTP-authenticated senders" },
	{ "dmarc_enforce", CONF_BOOL, MC(dmarc_enforce), 0, 0, "true", 0,
	  "apply the sender domain's DMARC policy (reject with 5.7.1, quarantine); false = report only" },
	{ "dmarc_overrides", CONF_STRLIST, MC(dmarc_overrides), 0, 0, NULL, 0,
	  "local policy per sender domain, \"domain=none|quarantine|reject\"" },
	{ "arc_trusted", CONF_STRLIST, MC(arc_trusted), 0, 0, NULL, 0,
	  "ARC sealers (d= of the ARC-Seal) whose valid chain overrides a DMARC fail (forwarders)" },
	{ "multiple_from", CONF_STR, MC(multiple_from), 0, 0, "reject", 0,
	  "several From fields or addresses: reject, quarantine or tag" },
	{ "dns_failure", CONF_STR, MC(dns_failure), 0, 0, "tempfail", 0,
	  "a DNS temperror that decides the verdict: tempfail (4.7.x, the sender retries) or accept" },
	{ "clamd", CONF_STR, MC(clamd), 0, 0, "", 0,
	  "clamd socket: a unix path or host:port; \"\" = no malware scan" },
	{ "clamd_failure", CONF_STR, MC(clamd_failure), 0, 0, "tempfail", 0,
	  "clamd unreachable or erring: tempfail or accept" },
	{ "yara_rules", CONF_STR, MC(yara_rules), 0, 0, "", 0,
	  "directory of YARA rules (.yar, .yara) run over every part" },
	{ "malware", CONF_STR, MC(malware_action), 0, 0, "reject", 0,
	  "clamd or YARA match: reject, quarantine or tag" },
	{ "attach_executable", CONF_STR, MC(attach_executable), 0, 0, "reject", 0,
	  "PE, ELF, Mach-O attachments (by content): none, tag, quarantine or reject" },
	{ "attach_script", CONF_STR, MC(attach_script), 0, 0, "quarantine", 0,
	  "scripts (js, vbs, ps1, hta, wsf, bat...)" },
	{ "attach_shortcut", CONF_STR, MC(attach_shortcut), 0, 0, "quarantine", 0, "lnk and url shortcuts" },
	{ "attach_disk_image", CONF_STR, MC(attach_disk_image), 0, 0, "quarantine", 0,
	  "iso, img, vhd(x) disk images" },
	{ "attach_macro", CONF_STR, MC(attach_macro), 0, 0, "quarantine", 0,
	  "Office documents with VBA macros" },
	{ "attach_encrypted", CONF_STR, MC(attach_encrypted), 0, 0, "tag", 0,
	  "encrypted archives (cannot be scanned)" },
	{ "attach_double_extension", CONF_STR, MC(attach_double_ext), 0, 0, "reject", 0,
	  "names such as invoice.pdf.exe" },
	{ "attach_bomb", CONF_STR, MC(attach_bomb), 0, 0, "reject", 0,
	  "archives past the depth, size or ratio limits (zip bombs)" },
	{ "quarantine_dir", CONF_STR, MC(quarantine_dir), 0, 0, "", 0,
	  "held messages; \"\" = <data_dir>/quarantine" },
	{ "quarantine_retention", CONF_DURATION, MC(quarantine_retention), 3600,
	  (int64_t)10 * 365 * 86400, "30d", 0, "held inbound mail is deleted after this" },
	{ "release_to", CONF_ADDR, MC(release_to), 0, 0, "127.0.0.1:10025", 0,
	  "SMTP listener of the MTA that takes released mail without the milter" },
	{ "score_quarantine", CONF_INT, MC(score_quarantine), 1, 1000, "50", 0,
	  "BEC/content score from which a message is quarantined" },
	{ "score_reject", CONF_INT, MC(score_reject), 1, 1000, "100", 0,
	  "score from which a message is rejected" },
	{ "protected_names", CONF_STRLIST, MC(protected_names), 0, 0, NULL, 0,
	  "display names of people whose names outsiders must not use, \"Name <address>\"" },
	{ "finance_addresses", CONF_STRLIST, MC(finance_addresses), 0, 0, NULL, 0,
	  "addresses where a first-time external sender raises the score" },
	{ "outbound_hold", CONF_DURATION, MC(outbound_hold), 0, 7 * 86400, "0", 0,
	  "hold outbound mail this long with a cancel / send-now link to the sender; 0 = off" },
	{ "outbound_hold_expiry", CONF_STR, MC(outbound_hold_expiry), 0, 0, "send", 0,
	  "what a held outbound message does when its hold ends and nobody acted: send or delete" },
	{ "outbound_max_external", CONF_INT, MC(outbound_max_external), 0, 100000, "0", 0,
	  "outbound mail to more external recipients than this gets outbound_external_action; 0 = off" },
	{ "outbound_external_action", CONF_STR, MC(outbound_external_action), 0, 0, "bcc", 0,
	  "bcc (To and Cc become undisclosed-recipients, nobody sees the others) or quarantine" },
	{ "dlp", CONF_STR, MC(dlp_action), 0, 0, "quarantine", 0,
	  "outbound mail with card numbers, My Numbers or keywords: none, tag, quarantine (hold) or reject" },
	{ "dlp_keywords", CONF_STRLIST, MC(dlp_keywords), 0, 0, NULL, 0,
	  "extra DLP keywords (社外秘, 極秘, Confidential are built in)" },
	{ "dlp_patterns", CONF_STRLIST, MC(dlp_patterns), 0, 0, NULL, 0,
	  "extra DLP patterns, \"name=regex\" (PCRE2), e.g. \"employee_id=EMP-[0-9]{6}\"" },
	{ "dkim_domain", CONF_STR, MC(dkim_domain), 0, 0, "", 0,
	  "sign outbound mail of this domain (d=); \"\" = no signing" },
	{ "dkim_selector", CONF_STR, MC(dkim_selector), 0, 0, "", 0, "selector (s=) of the signing key" },
	{ "dkim_key", CONF_STR, MC(dkim_key), 0, 0, "", 0,
	  "PEM private key file (RSA >= 1024 bits or Ed25519)" },
	{ "dkim_keys", CONF_STRLIST, MC(dkim_keys), 0, 0, NULL, 0,
	  "more signing keys, one per domain: \"domain:selector:/path/key.pem\"" },
	{ "arc_seal", CONF_BOOL, MC(arc_seal), 0, 0, "false", 0,
	  "add an ARC set (with the DKIM key) to mail we relay" },
	{ "dmarc_reports", CONF_BOOL, MC(dmarc_reports), 0, 0, "true", 0,
	  "count DMARC results and mail daily aggregate reports (gzipped XML) to each domain's rua=" },
	{ "dmarc_report_org", CONF_STR, MC(dmarc_report_org), 0, 0, "", 0,
	  "org_name in our aggregate reports; \"\" = authserv_id" },
	{ "dmarc_report_from", CONF_STR, MC(dmarc_report_from), 0, 0, "", 0,
	  "From: of our aggregate reports; \"\" = dmarc-noreply@<authserv_id>" },
	{ "public_url", CONF_STR, MC(public_url), 0, 0, "", 0,
	  "base URL of the API as senders reach it, for hold links; \"\" = http://<api.listen>" },
	CONF_END
};

const char *mail_action_name(enum mail_action a)
{
	switch (a) {
	case MAIL_ACT_TAG:
		return "tag";
	case MAIL_ACT_QUARANTINE:
		return "quarantine";
	case MAIL_ACT_REJECT:
		return "reject";
	default:
		return "none";
	}
}

static int parse_action(const char *key, const char *v, enum mail_action *out, struct buf *err)
{
	static const char *const names[] = {"none", "tag", "quarantine", "reject"};
	for (int i = 0; i < 4; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = (enum mail_action)i;
			return 0;
		}
	buf_printf(err, "mail.%s: \"%s\" is not one of none, tag, quarantine, reject", key, v);
	return M_EINVAL;
}

static int parse_failure(const char *key, const char *v, int *accept, struct buf *err)
{
	if (strcmp(v, "tempfail") == 0 || strcmp(v, "accept") == 0) {
		*accept = v[0] == 'a';
		return 0;
	}
	buf_printf(err, "mail.%s: \"%s\" is not tempfail or accept", key, v);
	return M_EINVAL;
}

int mail_config_load(const struct conf_doc *doc, struct mail_config *cfg, struct buf *err)
{
	memset(cfg, 0, sizeof(*cfg));
	int r = conf_apply(doc, "mail", mail_keywords, cfg, err);
	if (r < 0)
		return r;
	struct {
		const char *key;
		const char *v;
		enum mail_action *out;
	} acts[] = {
		{"attach_executable", cfg->attach_executable, &cfg->act_executable},
		{"attach_script", cfg->attach_script, &cfg->act_script},
		{"attach_shortcut", cfg->attach_shortcut, &cfg->act_shortcut},
		{"attach_disk_image", cfg->attach_disk_image, &cfg->act_disk_image},
		{"attach_macro", cfg->attach_macro, &cfg->act_macro},
		{"attach_encrypted", cfg->attach_encrypted, &cfg->act_encrypted},
		{"attach_double_extension", cfg->attach_double_ext, &cfg->act_double_ext},
		{"attach_bomb", cfg->attach_bomb, &cfg->act_bomb},
		{"malware", cfg->malware_action, &cfg->act_malware},
		{"multiple_from", cfg->multiple_from, &cfg->act_multiple_from},
		{"dlp", cfg->dlp_action, &cfg->act_dlp},
	};
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if ((r = parse_action(acts[i].key, acts[i].v, acts[i].out, err)) < 0)
			return r;
	if ((r = parse_failure("dns_failure", cfg->dns_failure, &cfg->dns_failure_accept, err)) < 0 ||
	    (r = parse_failure("clamd_failure", cfg->clamd_failure, &cfg->clamd_failure_accept, err)) < 0)
		return r;
	if (strcmp(cfg->outbound_hold_expiry, "delete") == 0) {
		cfg->hold_expiry_delete = 1;
	} else if (strcmp(cfg->outbound_hold_expiry, "send") != 0) {
		buf_printf(err, "mail.outbound_hold_expiry: \"%s\" is not send or delete",
			   cfg->outbound_hold_expiry);
		return M_EINVAL;
	}
	if (strcmp(cfg->outbound_external_action, "bcc") == 0) {
		cfg->external_bcc = 1;
	} else if (strcmp(cfg->outbound_external_action, "quarantine") != 0) {
		buf_printf(err, "mail.outbound_external_action: \"%s\" is not bcc or quarantine",
			   cfg->outbound_external_action);
		return M_EINVAL;
	}
	if (cfg->score_reject < cfg->score_quarantine) {
		buf_printf(err, "mail.score_reject (%lld) is below mail.score_quarantine (%lld)",
			   (long long)cfg->score_reject, (long long)cfg->score_quarantine);
		return M_EINVAL;
	}
	for (size_t i = 0; i < cfg->dmarc_overrides.n; i++) {
		const char *o = cfg->dmarc_overrides.v[i];
		const char *eq = strchr(o, '=');
		enum mail_action a;
		if (!eq || eq == o || parse_action("dmarc_overrides", eq + 1, &a, err) < 0 ||
		    a == MAIL_ACT_TAG) {
			buf_reset(err);
			buf_printf(err, "mail.dmarc_overrides: \"%s\" is not domain=none|quarantine|reject", o);
			return M_EINVAL;
		}
	}
	for (size_t i = 0; i < cfg->dlp_patterns.n; i++) {
		const char *eq = strchr(cfg->dlp_patterns.v[i], '=');
		if (!eq || eq == cfg->dlp_patterns.v[i] || !eq[1]) {
			buf_printf(err, "mail.dlp_patterns: \"%s\" is not name=regex",
				   cfg->dlp_patterns.v[i]);
			return M_EINVAL;
		}
	}
	for (size_t i = 0; i < cfg->dkim_keys.n; i++) {
		const char *v = cfg->dkim_keys.v[i];
		const char *c1 = strchr(v, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c1 || c1 == v || !c2 || c2 == c1 + 1 || !c2[1]) {
			buf_printf(err, "mail.dkim_keys: \"%s\" is not domain:selector:/path/key.pem", v);
			return M_EINVAL;
		}
	}
	int sign = (cfg->dkim_domain[0] != 0) + (cfg->dkim_selector[0] != 0) + (cfg->dkim_key[0] != 0);
	if (sign != 0 && sign != 3) {
		buf_printf(err, "mail.dkim_domain, dkim_selector and dkim_key go together");
		return M_EINVAL;
	}
	return 0;
}

void mail_config_free(struct mail_config *cfg)
{
	if (cfg)
		conf_free(mail_keywords, cfg);
}

int mail_config_describe(struct buf *out)
{
	return conf_describe("mail", mail_keywords, out);
}

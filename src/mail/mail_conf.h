/*
 * mail_conf: the mail: section (the milter and its policy), declared once
 * as a keyword table. Enumerated choices are checked after the generic
 * setters ran, with the key named in the error.
 */
#ifndef MAMORI_MAIL_CONF_H
#define MAMORI_MAIL_CONF_H

#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"

/* What a finding asks for; ordered by strength (the strongest wins). */
enum mail_action {
	MAIL_ACT_NONE = 0, /* only reported (event, header) */
	MAIL_ACT_TAG,      /* header and score, delivered */
	MAIL_ACT_QUARANTINE,
	MAIL_ACT_REJECT,
};

struct mail_config {
	char *milter;
	int64_t max_conns;
	int64_t max_message;
	int64_t timeout;
	char *authserv_id;
	char *dns;
	int64_t dns_timeout;
	struct conf_list local_domains;
	struct conf_list internal_networks;
	int dmarc_enforce;
	struct conf_list dmarc_overrides;
	struct conf_list arc_trusted;
	char *multiple_from;
	char *dns_failure;
	char *clamd;
	char *clamd_failure;
	char *yara_rules;
	char *attach_executable, *attach_script, *attach_shortcut, *attach_disk_image;
	char *attach_macro, *attach_encrypted, *attach_double_ext, *attach_bomb;
	char *malware_action;
	char *quarantine_dir;
	int64_t quarantine_retention;
	char *release_to;
	int64_t score_quarantine, score_reject;
	struct conf_list protected_names;
	struct conf_list finance_addresses;
	int64_t outbound_hold;
	char *outbound_hold_expiry;
	int hold_expiry_delete;
	int64_t outbound_max_external;
	char *outbound_external_action;
	char *dlp_action;
	struct conf_list dlp_keywords;
	struct conf_list dlp_patterns;
	char *dkim_domain, *dkim_selector, *dkim_key;
	struct conf_list dkim_keys;
	int arc_seal;
	int dmarc_reports;
	char *dmarc_report_org, *dmarc_report_from;
	char *public_url;

	/* Derived by mail_config_load. */
	enum mail_action act_executable, act_script, act_shortcut, act_disk_image, act_macro,
		act_encrypted, act_double_ext, act_bomb, act_malware, act_multiple_from, act_dlp;
	int external_bcc; /* outbound_external_action: bcc (1) or quarantine (0) */
	int dns_failure_accept, clamd_failure_accept;
};

extern const struct conf_keyword mail_keywords[];

/* Loads mail: (defaults when absent). On error err says file:line:col or
 * the key. Free with mail_config_free in every case. */
int mail_config_load(const struct conf_doc *doc, struct mail_config *cfg, struct buf *err);
void mail_config_free(struct mail_config *cfg);
int mail_config_describe(struct buf *out);
const char *mail_action_name(enum mail_action a);

#endif

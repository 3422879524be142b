/*
 * The mitigation manager: the safety rules and the state machine of
 * mitig.h over the SQLite store, and the calls into the back-end.
 *
 * Every operation runs under the manager's mutex and inside one SQLite
 * transaction (BEGIN IMMEDIATE), reads what it needs from the store, acts
 * on the speaker, and writes the outcome. Why the store and not memory:
 * the daemon, the API and the `mamori ddos` command act at once, and the
 * desired state must survive a restart; a few rows per attack cost nothing.
 *
 * An entry is ACTIVE while its attack lasts (or, manual, until withdrawn
 * or its duration ends) and HOLD once the attack ended, with expires set
 * hold_time later; a start of the same rule during the hold makes it
 * ACTIVE again without touching the speaker (hysteresis). mitig_tick()
 * withdraws what expired and retries what the back-end refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "ddos/mitig_int.h"

#define RETRY_AFTER 10   /* seconds between retries of failed announcements */

const char *mitig_outcome_name(enum mitig_outcome o)
{
	switch (o) {
	case MITIG_O_ANNOUNCED: return "announced";
	case MITIG_O_UPDATED: return "updated";
	case MITIG_O_KEPT: return "kept";
	case MITIG_O_DRY_RUN: return "dry-run";
	case MITIG_O_REFUSED: return "refused";
	case MITIG_O_FAILED: return "failed";
	}
	return "?";
}

int mitig_timeout_ms(const struct mitig *m)
{
	return (int)(m->cfg.command_timeout > 0 ? m->cfg.command_timeout * 1000 : 5000);
}

/* Sending is off in dry-run mode and without a back-end. */
static int sending(const struct mitig *m)
{
	return m->be && !m->cfg.dry_run;
}

struct mitig *mitig_new(const struct mitig_config *cfg, const char *db_path)
{
	struct mitig *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (mitig_config_copy(&m->cfg, cfg) < 0) {
		free(m);
		return NULL;
	}
	switch (m->cfg.kind) {
	case MITIG_BE_GOBGP: m->be = &mitig_be_gobgp; break;
	case MITIG_BE_EXABGP: m->be = &mitig_be_exabgp; break;
	case MITIG_BE_BIRD: m->be = &mitig_be_bird; break;
	case MITIG_BE_NFTABLES: m->be = &mitig_be_nft; break;
	case MITIG_BE_NONE: m->be = NULL; break;
	}
	pthread_mutex_init(&m->lock, NULL);
	if (mitig_db_open(db_path, &m->db) < 0) {
		mitig_free(m);
		return NULL;
	}
	return m;
}

void mitig_free(struct mitig *m)
{
	if (!m)
		return;
	sqlite3_close(m->db);
	mitig_config_free(&m->cfg);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void mitig_set_observer(struct mitig *m, mitig_observer_fn fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->observer = fn;
	m->observer_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

/* One log line per decision, and the observer. Reasons may hold text from
 * the network (an attack's description) or an operator: escaped. */
static void tell(struct mitig *m, enum log_level lvl, const char *what,
		 const struct mitig_entry *e, const char *detail)
{
	char reason[MITIG_REASON_MAX * 4], det[2048];

	log_escape(e->reason, strlen(e->reason), reason, sizeof(reason));
	log_escape(detail ? detail : "", detail ? strlen(detail) : 0, det, sizeof(det));
	log_msg(lvl, "mitig", "event=%s key=\"%s\" action=%s backend=%s dry_run=%d manual=%d"
		" attack=\"%s\" reason=\"%s\"%s%s%s", what, e->key, mitig_action_name(e->rule.action),
		m->be ? m->be->name : "none", m->cfg.dry_run || !m->be, e->manual, e->attack_id,
		reason, detail ? " detail=\"" : "", detail ? det : "", detail ? "\"" : "");
	if (m->observer)
		m->observer(m->observer_arg, what, e, detail);
}

static void result(struct mitig_result *res, enum mitig_outcome o, const char *key,
		   const char *detail)
{
	if (!res)
		return;
	res->outcome = o;
	snprintf(res->key, sizeof(res->key), "%s", key ? key : "");
	snprintf(res->detail, sizeof(res->detail), "%s", detail ? detail : "");
}

/* The desired routes: every entry. */
static int desired_routes(struct mitig *m, struct mitig_route **out, size_t *n)
{
	struct mitig_entry *e = NULL;
	size_t ne = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = mitig_db_select(m->db, NULL, 0, NULL, &e, &ne)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < ne; i++) {
		struct mitig_route r;
		if ((rc = mitig_route_make(&m->cfg, &e[i].rule, &r)) == 0)
			rc = mitig_routes_push(out, n, (size_t)-1, &r);
	}
	free(e);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* Full-state back-ends: the whole desired state, then the record. */
static int sync_all(struct mitig *m, struct buf *err)
{
	struct mitig_route *r = NULL;
	size_t n = 0;
	int rc;

	if ((rc = desired_routes(m, &r, &n)) < 0)
		return rc;
	rc = m->be->sync(m, r, n, err);
	if (rc == 0) {
		mitig_db_sent_replace(m->db, r, n);
		sqlite3_exec(m->db, "UPDATE mitigation SET announced = 1, dry_run = 0, last_error = ''"
			     " WHERE announced = 0 OR dry_run = 1", NULL, NULL, NULL);
	}
	free(r);
	return rc;
}

/* Sends one entry (already written to the store, so a full-state sync
 * includes it) and records the outcome in e (the caller writes e back). */
static int send_entry(struct mitig *m, struct mitig_entry *e, struct buf *err)
{
	struct mitig_route r;
	int rc;

	if (!sending(m))
		return M_OK;
	if ((rc = mitig_route_make(&m->cfg, &e->rule, &r)) < 0) {
		buf_printf(err, "cannot express %s", e->key);
		buf_cstr(err);
	} else if (m->be->full_state) {
		rc = sync_all(m, err);
	} else {
		rc = m->be->announce(m, &r, err);
		if (rc == 0)
			mitig_db_sent_put(m->db, &r);
	}
	e->announced = rc == 0;
	if (rc == 0)
		e->dry_run = 0;
	snprintf(e->last_error, sizeof(e->last_error), "%s", rc == 0 ? "" : (err->p ? err->p : err_str(rc)));
	return rc;
}

/* Withdraws entries already deleted from the store. */
static int unsend(struct mitig *m, const struct mitig_entry *e, size_t n, struct buf *err)
{
	int rc = M_OK;

	if (!sending(m) || n == 0)
		return M_OK;
	if (m->be->full_state)
		return sync_all(m, err);
	for (size_t i = 0; i < n; i++) {
		struct mitig_route r;
		int x = mitig_route_make(&m->cfg, &e[i].rule, &r);
		if (x == 0)
			x = m->be->withdraw(m, &r, err);
		if (x == 0)
			mitig_db_sent_del(m->db, r.key);
		else
			rc = x;   /* the sent record keeps it: reconciliation retries */
	}
	return rc;
}

/* ---- safety ---- */

static int allowed(const struct mitig *m, const struct mitig_rule *r, char *why, size_t whysz)
{
	char p[64], a[64];

	for (size_t i = 0; i < m->cfg.nallow; i++) {
		const struct mitig_prefix *al = &m->cfg.allow_p[i];
		int hit = r->action == MITIG_BLACKHOLE ? mitig_prefix_overlaps(al, &r->dst)
						      : mitig_prefix_contains(al, &r->dst);
		if (hit) {
			snprintf(why, whysz, "%s %s the allow-listed %s",
				 mitig_prefix_str(&r->dst, p, sizeof(p)),
				 r->action == MITIG_BLACKHOLE ? "overlaps" : "is within",
				 mitig_prefix_str(al, a, sizeof(a)));
			return 0;
		}
	}
	if (r->action == MITIG_BLACKHOLE) {
		int64_t min = r->dst.af == 4 ? m->cfg.blackhole_min_len4 : m->cfg.blackhole_min_len6;
		if (r->dst.len < min) {
			snprintf(why, whysz, "%s is wider than the widest blackhole allowed (/%lld)",
				 mitig_prefix_str(&r->dst, p, sizeof(p)), (long long)min);
			return 0;
		}
	}
	return 1;
}

/* What would be sent for one route, for a dry run. */
static void would_send(const struct mitig *m, const struct mitig_route *r, struct buf *out)
{
	struct mitig_argv a;

	switch (m->cfg.kind) {
	case MITIG_BE_GOBGP:
		if (mitig_gobgp_argv(&m->cfg, r, 0, &a) == 0)
			mitig_argv_join(&a, out);
		break;
	case MITIG_BE_EXABGP:
		mitig_exabgp_line(&m->cfg, r, 0, out);
		if (out->len && out->p[out->len - 1] == '\n')
			out->len--;
		break;
	case MITIG_BE_BIRD:
		mitig_bird_render(&m->cfg, r, 1, out);
		break;
	case MITIG_BE_NFTABLES:
		mitig_nft_render(&m->cfg, r, 1, out);
		break;
	case MITIG_BE_NONE:
		buf_printf(out, "no back-end: %s would only be recorded", r->fp);
		break;
	}
	buf_cstr(out);
}

static int refuse(struct mitig *m, struct mitig_result *res, const struct mitig_request *req,
		  const char *key, const char *why, int rc)
{
	struct mitig_entry e;

	memset(&e, 0, sizeof(e));
	snprintf(e.key, sizeof(e.key), "%s", key);
	e.rule = req->rule;
	e.manual = req->manual;
	snprintf(e.reason, sizeof(e.reason), "%s", req->reason);
	snprintf(e.attack_id, sizeof(e.attack_id), "%s", req->attack_id);
	tell(m, LOG_WARN, "refuse", &e, why);
	result(res, MITIG_O_REFUSED, key, why);
	return rc;
}

/* The filter rules req replaces (mitig_request.replace): its attack's
 * other automatic ones, not blackholes. Caller holds the lock and the
 * transaction; *out is the caller's (free()). */
static int replaced_select(struct mitig *m, const struct mitig_request *req, const char *key,
			   struct mitig_entry **out, size_t *n)
{
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!req->replace || !req->attack_id[0] || req->manual || req->rule.action == MITIG_BLACKHOLE)
		return M_OK;
	if ((rc = mitig_db_select(m->db, "attack_id = ?2 AND manual = 0", 0, req->attack_id, out, n)) < 0)
		return rc;
	for (size_t i = 0; i < *n; i++)
		if ((*out)[i].rule.action != MITIG_BLACKHOLE && strcmp((*out)[i].key, key) != 0)
			(*out)[k++] = (*out)[i];
	*n = k;
	return M_OK;
}

/* Withdraws what a replacement replaced, once the new rule is sent (sent
 * 0: it failed, so the next reconciliation does it). Their rows were
 * deleted in the same transaction, before the send, so a full-state
 * back-end's sync already left them out. */
static void replaced_withdraw(struct mitig *m, const struct mitig_entry *old, size_t n, const char *key,
			      int sent)
{
	char detail[MITIG_KEY_MAX + 32];
	struct buf err;
	int x = M_OK;

	if (!n)
		return;
	buf_init(&err, 4096);
	if (!sent)
		x = M_EIO;
	else if (sending(m) && !m->be->full_state)
		x = unsend(m, old, n, &err);
	if (x < 0)
		m->need_reconcile = 1;
	snprintf(detail, sizeof(detail), "replaced by %s", key);
	for (size_t i = 0; i < n; i++)
		tell(m, x == 0 ? LOG_INFO : LOG_ERROR, x == 0 ? "withdraw" : "withdraw_failed", &old[i],
		     x == 0 ? detail : err.p ? err.p : "the new rule is not sent yet: left to reconciliation");
	buf_fini(&err);
}

int mitig_start(struct mitig *m, const struct mitig_request *req, int64_t now,
		struct mitig_result *res)
{
	struct mitig_rule rule = req->rule;
	struct mitig_entry e, *old = NULL;
	char key[MITIG_KEY_MAX], why[512];
	struct buf err;
	size_t n, nold = 0;
	int rc;

	result(res, MITIG_O_REFUSED, "", "");
	if (mitig_rule_check(&rule, why, sizeof(why)) < 0 ||
	    mitig_rule_key(&rule, key, sizeof(key)) < 0) {
		log_msg(LOG_WARN, "mitig", "event=refuse reason=\"invalid request: %s\"", why);
		result(res, MITIG_O_REFUSED, "", why);
		return M_EINVAL;
	}
	buf_init(&err, 4096);
	pthread_mutex_lock(&m->lock);
	if (!allowed(m, &rule, why, sizeof(why))) {
		rc = refuse(m, res, req, key, why, M_EINVAL);
		goto unlock;
	}
	if ((rc = mitig_db_begin(m->db)) < 0) {
		result(res, MITIG_O_FAILED, key, "the mitigation store is not available");
		goto unlock;
	}
	if (!req->dry_run && (rc = replaced_select(m, req, key, &old, &nold)) < 0)
		goto rollback;
	for (size_t i = 0; i < nold && rc == 0; i++)
		rc = mitig_db_del(m->db, old[i].key);
	if (rc < 0)
		goto rollback;
	rc = mitig_db_get(m->db, key, &e);
	if (rc == M_ENOTFOUND) {
		/* New: the caps first (what it replaces is gone already). */
		if ((rc = mitig_db_count(m->db, NULL, &n)) < 0)
			goto rollback;
		if (n >= (size_t)m->cfg.max_mitigations) {
			snprintf(why, sizeof(why), "%zu mitigations already, the most allowed (max_mitigations)", n);
			mitig_db_rollback(m->db);
			rc = refuse(m, res, req, key, why, M_ELIMIT);
			goto unlock;
		}
		if (rule.action == MITIG_BLACKHOLE) {
			if ((rc = mitig_db_count(m->db, "action = 1", &n)) < 0)
				goto rollback;
			if (n >= (size_t)m->cfg.max_blackholes) {
				snprintf(why, sizeof(why),
					 "%zu blackholes already, the most allowed at once (max_blackholes)", n);
				mitig_db_rollback(m->db);
				rc = refuse(m, res, req, key, why, M_ELIMIT);
				goto unlock;
			}
		}
		memset(&e, 0, sizeof(e));
		snprintf(e.key, sizeof(e.key), "%s", key);
		e.rule = rule;
		snprintf(e.reason, sizeof(e.reason), "%s", req->reason);
		snprintf(e.attack_id, sizeof(e.attack_id), "%s", req->attack_id);
		e.manual = req->manual;
		e.dry_run = !sending(m);
		e.state = MITIG_ACTIVE;
		e.created = e.updated = now;
		e.expires = req->manual && req->duration > 0 ? now + req->duration : 0;
		if (req->dry_run) {
			struct mitig_route r;
			struct buf w;
			mitig_db_rollback(m->db);
			buf_init(&w, 1 << 16);
			mitig_route_make(&m->cfg, &rule, &r);
			would_send(m, &r, &w);
			tell(m, LOG_INFO, "dry_run", &e, w.p);
			result(res, MITIG_O_DRY_RUN, key, w.p);
			buf_fini(&w);
			rc = M_OK;
			goto unlock;
		}
		if ((rc = mitig_db_put(m->db, &e)) < 0)
			goto rollback;
		rc = send_entry(m, &e, &err);
		replaced_withdraw(m, old, nold, key, rc == 0);
		if (mitig_db_put(m->db, &e) < 0 || mitig_db_commit(m->db) < 0) {
			rc = M_EIO;
			goto rollback;
		}
		tell(m, rc == 0 ? LOG_INFO : LOG_ERROR, rc == 0 ? "announce" : "announce_failed", &e,
		     rc == 0 ? NULL : e.last_error);
		result(res, rc == 0 ? MITIG_O_ANNOUNCED : MITIG_O_FAILED, key,
		       rc == 0 ? (e.dry_run ? "recorded; dry run: nothing sent" : "") : e.last_error);
		rc = rc == 0 ? M_OK : M_EIO;
		goto unlock;
	}
	if (rc < 0)
		goto rollback;

	/* Known: a restart during the hold keeps the announcement. */
	{
		int changed = e.rule.action != rule.action || e.rule.rate != rule.rate;
		int was_hold = e.state == MITIG_HOLD;
		if (req->dry_run) {
			mitig_db_rollback(m->db);
			snprintf(why, sizeof(why), "already %s%s", was_hold ? "in hold" : "in place",
				 changed ? "; the action or rate would change" : "");
			result(res, MITIG_O_DRY_RUN, key, why);
			rc = M_OK;
			goto unlock;
		}
		if (req->manual) {
			e.manual = 1;
			e.expires = req->duration > 0 ? now + req->duration : 0;
		} else if (!e.manual) {
			e.expires = 0;
		}
		e.state = MITIG_ACTIVE;
		if (req->attack_id[0])
			snprintf(e.attack_id, sizeof(e.attack_id), "%s", req->attack_id);
		if (req->reason[0])
			snprintf(e.reason, sizeof(e.reason), "%s", req->reason);
		e.updated = now;
		e.rule = rule;
		if ((rc = mitig_db_put(m->db, &e)) < 0)
			goto rollback;
		if (changed || !e.announced) {
			rc = send_entry(m, &e, &err);
			replaced_withdraw(m, old, nold, key, rc == 0);
			if (mitig_db_put(m->db, &e) < 0 || mitig_db_commit(m->db) < 0) {
				rc = M_EIO;
				goto rollback;
			}
			tell(m, rc == 0 ? LOG_INFO : LOG_ERROR, rc == 0 ? "update" : "announce_failed", &e,
			     rc == 0 ? NULL : e.last_error);
			result(res, rc == 0 ? MITIG_O_UPDATED : MITIG_O_FAILED, key,
			       rc == 0 ? "" : e.last_error);
			rc = rc == 0 ? M_OK : M_EIO;
			goto unlock;
		}
		if (nold && m->be && m->be->full_state && sending(m))
			sync_all(m, &err);   /* the replaced rows are gone: say so */
		replaced_withdraw(m, old, nold, key, 1);
		if ((rc = mitig_db_commit(m->db)) < 0)
			goto rollback;
		tell(m, LOG_INFO, was_hold ? "hold_cancelled" : "keep", &e, NULL);
		result(res, MITIG_O_KEPT, key, was_hold ? "the attack came back during the hold: kept"
							 : "already in place");
		goto unlock;
	}
rollback:
	mitig_db_rollback(m->db);
	if (res && res->outcome == MITIG_O_REFUSED && !res->key[0])
		result(res, MITIG_O_FAILED, key, err_str(rc));
unlock:
	pthread_mutex_unlock(&m->lock);
	buf_fini(&err);
	free(old);
	return rc;
}

/* Entries whose withdrawal is due: removed from the store and withdrawn.
 * Caller holds the lock and the transaction. */
static int expire_locked(struct mitig *m, int64_t now)
{
	struct mitig_entry *e = NULL;
	struct buf err;
	size_t n = 0;
	int rc;

	if ((rc = mitig_db_select(m->db, "expires > 0 AND expires <= ?1", now, NULL, &e, &n)) < 0 ||
	    n == 0) {
		free(e);
		return rc;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = mitig_db_del(m->db, e[i].key);
	if (rc == 0) {
		buf_init(&err, 4096);
		int x = unsend(m, e, n, &err);
		if (x < 0)
			m->need_reconcile = 1;
		for (size_t i = 0; i < n; i++)
			tell(m, x == 0 ? LOG_INFO : LOG_ERROR, x == 0 ? "withdraw" : "withdraw_failed", &e[i],
			     x == 0 ? (e[i].state == MITIG_HOLD ? "hold time over" : "duration over") : err.p);
		buf_fini(&err);
	}
	free(e);
	return rc;
}

static int end_where(struct mitig *m, const char *where, const char *arg, int64_t now, int hold,
		     size_t *count)
{
	struct mitig_entry *e = NULL;
	size_t n = 0;
	int rc;

	if (count)
		*count = 0;
	pthread_mutex_lock(&m->lock);
	if ((rc = mitig_db_begin(m->db)) < 0)
		goto out;
	rc = mitig_db_select(m->db, where, 0, arg, &e, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		e[i].state = MITIG_HOLD;
		e[i].expires = now + (hold ? m->cfg.hold_time : 0);
		e[i].updated = now;
		rc = mitig_db_put(m->db, &e[i]);
		if (rc == 0)
			tell(m, LOG_INFO, "hold", &e[i], hold ? NULL : "released: withdrawn without a hold");
	}
	if (rc == 0 && (!hold || m->cfg.hold_time == 0))
		rc = expire_locked(m, now);
	if (rc == 0)
		rc = mitig_db_commit(m->db);
	if (rc < 0)
		mitig_db_rollback(m->db);
	else if (count)
		*count = n;
out:
	pthread_mutex_unlock(&m->lock);
	free(e);
	return rc;
}

int mitig_end(struct mitig *m, const char *attack_id, int64_t now, size_t *n)
{
	if (!attack_id || !attack_id[0])
		return M_EINVAL;
	return end_where(m, "attack_id = ?2 AND manual = 0 AND state = 0", attack_id, now, 1, n);
}

int mitig_release(struct mitig *m, const char *attack_id, int64_t now, size_t *n)
{
	if (!attack_id || !attack_id[0])
		return M_EINVAL;
	/* Held ones too: a release means the target must not be mitigated. */
	return end_where(m, "attack_id = ?2 AND manual = 0", attack_id, now, 0, n);
}

int mitig_reload(struct mitig *m, const struct mitig_config *cfg)
{
	struct mitig_config nc;

	if (mitig_config_copy(&nc, cfg) < 0)
		return M_ENOMEM;
	/* Only the reloadable keys and what is resolved from them change
	 * hands: the back-end, how it is reached and the worker's timing
	 * stay as they run (restart-only), and nothing else is written
	 * while other threads read them. nc leaves with the old values. */
	pthread_mutex_lock(&m->lock);
	for (const struct conf_keyword *k = mitig_keywords; k->name; k++) {
		char tmp[sizeof(struct conf_list)];
		size_t sz;
		if (!k->reloadable)
			continue;
		switch (k->type) {
		case CONF_STR:
		case CONF_ADDR: sz = sizeof(char *); break;
		case CONF_BOOL: sz = sizeof(int); break;
		case CONF_STRLIST: sz = sizeof(struct conf_list); break;
		default: sz = sizeof(int64_t); break;
		}
		memcpy(tmp, (char *)&m->cfg + k->offset, sz);
		memcpy((char *)&m->cfg + k->offset, (char *)&nc + k->offset, sz);
		memcpy((char *)&nc + k->offset, tmp, sz);
	}
	{
		struct mitig_config t = m->cfg;
		memcpy(m->cfg.comm, nc.comm, sizeof(nc.comm));
		m->cfg.ncomm = nc.ncomm;
		m->cfg.nh4 = nc.nh4;
		m->cfg.nh6 = nc.nh6;
		m->cfg.allow_p = nc.allow_p;
		m->cfg.nallow = nc.nallow;
		nc.allow_p = t.allow_p;
		nc.nallow = t.nallow;
	}
	pthread_mutex_unlock(&m->lock);
	mitig_config_free(&nc);
	return M_OK;
}

int mitig_end_key(struct mitig *m, const char *key, int64_t now)
{
	size_t n = 0;
	int rc = end_where(m, "key = ?2 AND manual = 0 AND state = 0", key, now, 1, &n);

	return rc < 0 ? rc : n ? M_OK : M_ENOTFOUND;
}

int mitig_withdraw(struct mitig *m, const char *key, const struct mitig_prefix *target,
		   enum mitig_action action, int64_t now, size_t *count)
{
	struct mitig_entry *e = NULL;
	struct buf err;
	size_t n = 0, k = 0;
	int rc;

	(void)now;
	*count = 0;
	buf_init(&err, 4096);
	pthread_mutex_lock(&m->lock);
	if ((rc = mitig_db_begin(m->db)) < 0)
		goto out;
	if ((rc = mitig_db_select(m->db, NULL, 0, NULL, &e, &n)) < 0)
		goto rollback;
	/* Keep the matching entries at the front of e. */
	for (size_t i = 0; i < n; i++) {
		int match;
		if (key)
			match = strcmp(e[i].key, key) == 0;
		else
			match = target && e[i].rule.dst.af == target->af &&
				e[i].rule.dst.len == target->len &&
				memcmp(e[i].rule.dst.a, target->a, 16) == 0 &&
				(action == 0 || (action == MITIG_BLACKHOLE) ==
						(e[i].rule.action == MITIG_BLACKHOLE));
		if (match)
			e[k++] = e[i];
	}
	for (size_t i = 0; rc == 0 && i < k; i++)
		rc = mitig_db_del(m->db, e[i].key);
	if (rc < 0)
		goto rollback;
	if (k) {
		int x = unsend(m, e, k, &err);
		for (size_t i = 0; i < k; i++)
			tell(m, x == 0 ? LOG_INFO : LOG_ERROR, x == 0 ? "withdraw" : "withdraw_failed", &e[i],
			     x == 0 ? "withdrawn by request" : err.p);
		if (x < 0) {
			m->need_reconcile = 1;
			rc = M_EIO;
		}
	}
	if (mitig_db_commit(m->db) < 0) {
		rc = M_EIO;
		goto rollback;
	}
	*count = k;
	if (rc == 0 && k == 0)
		rc = M_ENOTFOUND;
	goto out;
rollback:
	mitig_db_rollback(m->db);
out:
	pthread_mutex_unlock(&m->lock);
	free(e);
	buf_fini(&err);
	return rc;
}

int mitig_tick(struct mitig *m, int64_t now)
{
	struct mitig_entry *e = NULL;
	size_t n = 0;
	int rc, redo;

	pthread_mutex_lock(&m->lock);
	if ((rc = mitig_db_begin(m->db)) < 0)
		goto out;
	rc = expire_locked(m, now);
	/* Retry what the back-end refused, at most every RETRY_AFTER seconds. */
	if (rc == 0 && sending(m) && now >= m->next_retry &&
	    (rc = mitig_db_select(m->db, "announced = 0", 0, NULL, &e, &n)) == 0 && n) {
		struct buf err;
		buf_init(&err, 4096);
		for (size_t i = 0; i < n && rc == 0; i++) {
			int x;
			buf_reset(&err);
			x = send_entry(m, &e[i], &err);
			rc = mitig_db_put(m->db, &e[i]);
			tell(m, x == 0 ? LOG_INFO : LOG_WARN, x == 0 ? "announce" : "retry_failed", &e[i],
			     x == 0 ? "retried" : e[i].last_error);
			if (x < 0)
				break;   /* the speaker is down: the next round tries again */
			if (m->be->full_state)
				break;   /* one sync carried them all */
		}
		buf_fini(&err);
		m->next_retry = now + RETRY_AFTER;
	}
	if (rc == 0)
		rc = mitig_db_commit(m->db);
	if (rc < 0)
		mitig_db_rollback(m->db);
out:
	redo = m->need_reconcile && sending(m) && now >= m->next_reconcile;
	pthread_mutex_unlock(&m->lock);
	free(e);
	/* A withdrawal failed (the speaker was down): put it right as soon as
	 * possible rather than at the next periodic reconciliation. */
	if (rc == 0 && redo)
		rc = mitig_reconcile(m, now, NULL);
	return rc;
}

int mitig_reconcile(struct mitig *m, int64_t now, struct mitig_diff *out)
{
	struct mitig_route *want = NULL, *have = NULL;
	size_t nwant = 0, nhave = 0;
	struct mitig_diff d;
	struct buf err;
	int rc;

	memset(&d, 0, sizeof(d));
	if (out)
		memset(out, 0, sizeof(*out));
	buf_init(&err, 8192);
	pthread_mutex_lock(&m->lock);
	if ((rc = mitig_db_begin(m->db)) < 0)
		goto out;
	if ((rc = expire_locked(m, now)) < 0 || (rc = desired_routes(m, &want, &nwant)) < 0)
		goto rollback;
	if (m->be && m->be->list)
		rc = m->be->list(m, &have, &nhave, &err);
	else
		rc = mitig_db_sent_list(m->db, &have, &nhave);
	if (rc < 0) {
		log_msg(LOG_ERROR, "mitig", "event=reconcile_failed backend=%s err=\"%s\"",
			m->be ? m->be->name : "none", err.p ? err.p : err_str(rc));
		goto rollback;
	}
	if ((rc = mitig_diff_compute(want, nwant, have, nhave, &d)) < 0)
		goto rollback;
	log_msg(LOG_INFO, "mitig", "event=reconcile backend=%s desired=%zu announced=%zu"
		" to_announce=%zu to_withdraw=%zu unchanged=%zu dry_run=%d",
		m->be ? m->be->name : "none", nwant, nhave, d.nannounce, d.nwithdraw, d.unchanged,
		!sending(m));
	if (sending(m) && m->be->full_state) {
		rc = sync_all(m, &err);
	} else if (sending(m)) {
		int x;
		for (size_t i = 0; i < d.nwithdraw; i++) {
			buf_reset(&err);
			x = m->be->withdraw(m, &d.withdraw[i], &err);
			if (x == 0)
				mitig_db_sent_del(m->db, d.withdraw[i].key);
			else
				rc = x;
			log_msg(x == 0 ? LOG_INFO : LOG_ERROR, "mitig",
				"event=reconcile_withdraw key=\"%s\" ok=%d err=\"%s\"", d.withdraw[i].key,
				x == 0, x == 0 ? "" : err.p);
			if (x < 0)
				break;   /* the speaker is down: no need to wait on each route */
		}
		/* A speaker that cannot be read may have restarted empty:
		 * everything desired is sent again, not only the difference. */
		for (size_t i = 0; rc == 0 && i < (m->be->list ? d.nannounce : nwant); i++) {
			const struct mitig_route *r = m->be->list ? &d.announce[i] : &want[i];
			buf_reset(&err);
			x = m->be->announce(m, r, &err);
			if (x == 0)
				mitig_db_sent_put(m->db, r);
			else
				rc = x;
			if (x < 0 || m->be->list)
				log_msg(x == 0 ? LOG_INFO : LOG_ERROR, "mitig",
					"event=reconcile_announce key=\"%s\" ok=%d err=\"%s\"", r->key,
					x == 0, x == 0 ? "" : err.p);
			if (x == 0) {
				struct mitig_entry e;
				if (mitig_db_get(m->db, r->key, &e) == 0 && (!e.announced || e.dry_run)) {
					e.announced = 1;
					e.dry_run = 0;
					e.last_error[0] = '\0';
					mitig_db_put(m->db, &e);
				}
			}
		}
	}
	if (mitig_db_commit(m->db) < 0) {
		rc = M_EIO;
		goto rollback;
	}
	if (rc < 0) {
		log_msg(LOG_ERROR, "mitig", "event=reconcile_incomplete backend=%s err=\"%s\"",
			m->be->name, err.p ? err.p : err_str(rc));
		m->next_reconcile = now + RETRY_AFTER;
	} else {
		m->need_reconcile = 0;
	}
	goto out;
rollback:
	mitig_db_rollback(m->db);
	m->next_reconcile = now + RETRY_AFTER;
out:
	pthread_mutex_unlock(&m->lock);
	free(want);
	free(have);
	buf_fini(&err);
	if (out)
		*out = d;
	else
		mitig_diff_fini(&d);
	return rc;
}

int mitig_list(struct mitig *m, struct mitig_entry **out, size_t *n)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = mitig_db_select(m->db, NULL, 0, NULL, out, n);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int mitig_count_blackholes(struct mitig *m, size_t *n)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = mitig_db_count(m->db, "action = 1", n);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/*
 * mdns_yaml: see mdns_yaml.h. Two passes per name: first learn whether the
 * name holds TXT entries (then its SPF entries are not duplicated as TXT),
 * then add the records.
 */
#include "mail/mdns_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mdns.h"

#define TXT_MAX 65536

yaml_node_t *mdns_yaml_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
		    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

const char *mdns_yaml_str(yaml_node_t *n, size_t *len)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	if (len)
		*len = n->data.scalar.length;
	return (const char *)n->data.scalar.value;
}

/* The text of a TXT/SPF value: a scalar or a list of scalars, joined.
 * Returns the length, or -1 on a malformed value; *none set for NONE. */
static long txt_value(yaml_document_t *doc, yaml_node_t *v, char *buf, size_t cap, int *none)
{
	*none = 0;
	size_t len;
	const char *s = mdns_yaml_str(v, &len);
	if (s) {
		if (len == 4 && memcmp(s, "NONE", 4) == 0) {
			*none = 1;
			return 0;
		}
		if (len >= cap)
			return -1;
		memcpy(buf, s, len);
		return (long)len;
	}
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return -1;
	size_t n = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		s = mdns_yaml_str(yaml_document_get_node(doc, *it), &len);
		if (!s || n + len >= cap)
			return -1;
		memcpy(buf + n, s, len);
		n += len;
	}
	return (long)n;
}

static int add_record(struct mdns *z, yaml_document_t *doc, const char *name, const char *type,
		      yaml_node_t *v, int has_txt, char *buf, char *err, size_t errlen)
{
	int none = 0;
	if (strcmp(type, "TXT") == 0 || strcmp(type, "SPF") == 0) {
		if (strcmp(type, "SPF") == 0 && has_txt)
			return 0;
		long n = txt_value(doc, v, buf, TXT_MAX, &none);
		if (n < 0)
			goto bad;
		if (none)
			return mdns_zone_add_empty(z, name);
		return mdns_zone_add_txt(z, name, buf, (size_t)n);
	}
	if (strcmp(type, "A") == 0 || strcmp(type, "AAAA") == 0) {
		const char *s = mdns_yaml_str(v, NULL);
		return s ? mdns_zone_add_addr(z, name, s) : -1;
	}
	if (strcmp(type, "MX") == 0) {
		if (!v || v->type != YAML_SEQUENCE_NODE ||
		    v->data.sequence.items.top - v->data.sequence.items.start != 2)
			goto bad;
		const char *pref = mdns_yaml_str(yaml_document_get_node(doc,
						 v->data.sequence.items.start[0]), NULL);
		const char *host = mdns_yaml_str(yaml_document_get_node(doc,
						 v->data.sequence.items.start[1]), NULL);
		if (!pref || !host)
			goto bad;
		return mdns_zone_add_mx(z, name, (unsigned)strtoul(pref, NULL, 10), host);
	}
	if (strcmp(type, "PTR") == 0 || strcmp(type, "CNAME") == 0) {
		const char *s = mdns_yaml_str(v, NULL);
		if (!s)
			goto bad;
		return mdns_zone_add_name(z, name, type[0] == 'P' ? MDNS_PTR : MDNS_CNAME, s);
	}
bad:
	snprintf(err, errlen, "%s: unsupported or malformed %s record", name, type);
	return -1;
}

int mdns_zone_load_openspf(struct mdns *z, yaml_document_t *doc, yaml_node_t *zonedata,
			   char *err, size_t errlen)
{
	if (!zonedata || zonedata->type != YAML_MAPPING_NODE) {
		snprintf(err, errlen, "zonedata is not a mapping");
		return -1;
	}
	if (errlen)
		err[0] = '\0';
	char *buf = malloc(TXT_MAX);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = 0;
	for (yaml_node_pair_t *p = zonedata->data.mapping.pairs.start;
	     rc == 0 && p < zonedata->data.mapping.pairs.top; p++) {
		const char *name = mdns_yaml_str(yaml_document_get_node(doc, p->key), NULL);
		yaml_node_t *list = yaml_document_get_node(doc, p->value);
		if (!name || !list || list->type != YAML_SEQUENCE_NODE) {
			snprintf(err, errlen, "zonedata entry %s is not a list", name ? name : "?");
			rc = -1;
			break;
		}
		int has_txt = 0;
		for (yaml_node_item_t *it = list->data.sequence.items.start;
		     it < list->data.sequence.items.top; it++)
			if (mdns_yaml_get(doc, yaml_document_get_node(doc, *it), "TXT"))
				has_txt = 1;
		if (mdns_zone_add_empty(z, name) < 0) {
			snprintf(err, errlen, "%s: cannot add", name);
			rc = -1;
			break;
		}
		for (yaml_node_item_t *it = list->data.sequence.items.start;
		     rc == 0 && it < list->data.sequence.items.top; it++) {
			yaml_node_t *r = yaml_document_get_node(doc, *it);
			const char *s = mdns_yaml_str(r, NULL);
			if (s) {
				if (strcmp(s, "TIMEOUT") == 0) {
					rc = mdns_zone_set_timeout(z, name);
				} else {
					snprintf(err, errlen, "%s: unknown marker %s", name, s);
					rc = -1;
				}
				continue;
			}
			if (!r || r->type != YAML_MAPPING_NODE ||
			    r->data.mapping.pairs.top - r->data.mapping.pairs.start != 1) {
				snprintf(err, errlen, "%s: a record is not a one-key map", name);
				rc = -1;
				break;
			}
			yaml_node_pair_t *kv = r->data.mapping.pairs.start;
			const char *type = mdns_yaml_str(yaml_document_get_node(doc, kv->key), NULL);
			if (!type) {
				rc = -1;
				break;
			}
			rc = add_record(z, doc, name, type, yaml_document_get_node(doc, kv->value),
					has_txt, buf, err, errlen);
			if (rc < 0 && !err[0])
				snprintf(err, errlen, "%s: cannot add %s", name, type);
		}
	}
	free(buf);
	return rc;
}

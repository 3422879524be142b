/*
 * mdns_yaml: fill an in-memory mdns zone from the OpenSPF test-suite layout.
 *
 * Why in product code: the SPF and DMARC conformance harnesses, the unit
 * tests and an offline "what would SPF say" check all describe DNS the same
 * way (the OpenSPF suite's zonedata mapping), so one loader serves them.
 *
 * Layout: {name: [record...]} where a record is a one-key map {TYPE: value}
 * (A, AAAA, MX [pref, host], PTR, CNAME, TXT, SPF; TXT/SPF value a string or
 * a list of strings joined without separator; the value NONE is a
 * placeholder that adds no record) or the bare scalar TIMEOUT. SPF records
 * are served as TXT unless the name has TXT entries of its own (RFC 7208
 * dropped type 99; the suite relies on drivers duplicating).
 */
#ifndef MAMORI_MAIL_MDNS_YAML_H
#define MAMORI_MAIL_MDNS_YAML_H

#include <stddef.h>
#include <yaml.h>

struct mdns;

/* Load the zonedata mapping node of doc into zone z (from mdns_zone_new).
 * Returns 0, or -1 with a message in err. */
int mdns_zone_load_openspf(struct mdns *z, yaml_document_t *doc, yaml_node_t *zonedata,
			   char *err, size_t errlen);

/* Helpers for harnesses walking such documents: the value of key in a
 * mapping node (NULL when absent or not a mapping), and a scalar's text
 * (NULL when the node is not a scalar). */
yaml_node_t *mdns_yaml_get(yaml_document_t *doc, yaml_node_t *map, const char *key);
const char *mdns_yaml_str(yaml_node_t *n, size_t *len);

#endif

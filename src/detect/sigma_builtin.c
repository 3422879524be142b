/*
 * The field mappings and bundled rules compiled into the binary from rules/
 * (tools/embed_files.py). Why embedded: `mamori serve` on the defaults
 * must detect with no file on disk, and a rule set never silently loses its
 * mappings because a directory moved.
 */
#include <stdio.h>
#include <string.h>

#include "api/web_assets.h"
#include "core/err.h"
#include "detect/sigma.h"
#include "detect/sigma_int.h"

extern const struct web_asset rule_assets[];

int sigma_mapping_text(struct sigma_builder *b, const char *name,
		       const char *text, size_t len, struct buf *err);
int sigma_rule_text(struct sigma_builder *b, const char *name, const char *text,
		    size_t len, sigma_report_fn fn, void *ctx);

int sigma_builder_add_builtin(struct sigma_builder *b, int with_rules,
			      sigma_report_fn fn, void *ctx, struct buf *err)
{
	char name[256];
	int r;

	for (const struct web_asset *a = rule_assets; a->path; a++) {
		if (strncmp(a->path, "/mappings/", 10) != 0)
			continue;
		snprintf(name, sizeof(name), "builtin:rules%s", a->path);
		r = sigma_mapping_text(b, name, (const char *)a->data, a->len, err);
		if (r < 0)
			return r;
	}
	if (!with_rules)
		return 0;
	for (const struct web_asset *a = rule_assets; a->path; a++) {
		if (strncmp(a->path, "/mappings/", 10) == 0)
			continue;
		snprintf(name, sizeof(name), "builtin:rules%s", a->path);
		sigma_rule_text(b, name, (const char *)a->data, a->len, fn, ctx);
	}
	return 0;
}

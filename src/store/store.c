/*
 * The store back-end registry. Why a table chosen by name: the pipeline and
 * the API see only struct store_ops, so a deployment switches from the
 * embedded SQLite store to ClickHouse by configuration, not by rebuilding,
 * and each back-end stays one file with no knowledge of the others.
 */
#include "store/store.h"

#include <string.h>

extern const struct store_ops store_sqlite_ops;

static const struct store_ops *const store_backends[] = {
	&store_sqlite_ops,
};

const struct store_ops *store_backend(const char *name)
{
	if (!name || !*name)
		name = "sqlite";
	for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++)
		if (strcmp(store_backends[i]->name, name) == 0)
			return store_backends[i];
	return NULL;
}

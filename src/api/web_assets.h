/* Files of web/ embedded into the binary at build time (tools/embed_files.py). */
#ifndef MAMORI_WEB_ASSETS_H
#define MAMORI_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;          /* "/index.html" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};

/* Ended by an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif

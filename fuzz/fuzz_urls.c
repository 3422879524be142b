/*
 * libFuzzer target for urls_extract() (text and HTML) and the host helpers:
 * the first byte picks text or HTML, the rest is the body. The input is
 * copied to its own allocation so ASan sees any read past its end; the
 * list is checked for the invariants the callers rely on and freed per
 * input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/urls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[URLS_MAX_HOST + 1];
	struct url_list l;
	char *p;
	size_t i;

	if (size < 1)
		return 0;
	p = malloc(size - 1 ? size - 1 : 1);
	if (!p)
		return 0;
	memcpy(p, data + 1, size - 1);
	url_list_init(&l);
	(void)urls_extract(p, size - 1, data[0] & 1, &l);
	if (l.n > URLS_MAX)
		abort();
	for (i = 0; i < l.n; i++) {
		if (!l.item[i].url || !l.item[i].host || !l.item[i].host[0] ||
		    (l.item[i].text_mismatch && !l.item[i].shown_host))
			abort();
		(void)url_site(l.item[i].host);
	}
	url_list_fini(&l);
	if (size - 1 <= 3 * URLS_MAX_HOST &&
	    url_host_normalise(p, size - 1, host, sizeof(host)) == 0)
		(void)url_site(host);
	free(p);
	return 0;
}

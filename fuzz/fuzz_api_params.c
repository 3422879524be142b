/*
 * libFuzzer target for the API's query-parameter parser (api_params.c): the
 * part of the HTTP API that reads every byte of a hostile query string. The
 * input is split at '&' into name=value pairs (as libmicrohttpd would hand
 * them over, already decoded) and fed to one fresh search; the whole input is
 * also tried as a time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_search *s = malloc(sizeof(*s));
	/* A private copy so ASan sees reads past the input's end. */
	char *p = malloc(size ? size : 1);
	int64_t us;
	size_t pos = 0;

	if (!s || !p)
		goto out;
	memcpy(p, data, size);
	(void)api_parse_time(p, size, &us);
	api_search_init(s);
	while (pos < size) {
		char *amp = memchr(p + pos, '&', size - pos);
		size_t end = amp ? (size_t)(amp - p) : size;
		char *eq = memchr(p + pos, '=', end - pos);
		size_t nlen = eq ? (size_t)(eq - (p + pos)) : end - pos;

		if (api_search_param(s, p + pos, nlen, eq ? eq + 1 : NULL,
				     eq ? end - (size_t)(eq + 1 - p) : 0) != 0)
			break;
		pos = end + 1;
	}
	(void)api_search_finish(s);
out:
	free(s);
	free(p);
	return 0;
}

/*
 * urls: the URLs a message body carries. Why: URL reputation, the indicator
 * store and the phishing checks all start from the list of links in the
 * decoded text/plain and text/html parts, spelled the way the indicator
 * store keys them, with their host in one canonical form.
 *
 * What is found:
 *  - in text: http://, https://, ftp:// (any case) and bare "www." hosts,
 *    angle-bracketed <http://...> included; a URL ends at white space, a
 *    control byte, one of < > " ` { } | ^, invalid UTF-8, CJK or full-width
 *    punctuation (U+3000-U+303F, U+FF00-U+FFEF), general punctuation
 *    (U+2000-U+206F, so zero-width spaces and curly quotes) or no-break
 *    space, and where an ASCII letter or digit is directly followed by a
 *    Japanese, Chinese or Korean character ("http://example.com/です");
 *    trailing . , ; : ! ? ' * and unbalanced ) ] } are trimmed;
 *  - in HTML (is_html): the href, src, action, formaction and background
 *    attributes (entities such as &amp; &#x2F; decoded, tabs and line ends
 *    removed as browsers do, "//host" taken as http), then the visible text
 *    (tags removed, entities decoded) as above.
 * Other schemes (mailto:, javascript:, data:, cid:) and relative links are
 * not URLs here.
 *
 * Each URL is kept once: the key is the URL with its host in A-label form
 * (IDN through libidn2, UTS #46 non-transitional, percent-escapes in the host
 * decoded), non-ASCII bytes of the path and query percent-encoded, then
 * passed through intel_url_normalise() (detect/intel.h), so it is exactly the
 * form intel_lookup_url() matches.
 *
 * An <a> whose visible text is itself a URL or a domain name on another site
 * than its href (registrable domains compared through the public suffix
 * list, so "example.com" shown over https://click.example.com/ is fine) marks
 * the href's item text_mismatch: the classic phishing link.
 *
 * Bounds: URLS_MAX items per list (then truncated is set and further URLs are
 * ignored); a URL longer than URLS_MAX_LEN bytes as written is cut to that
 * length (cut is set); anchor text past URLS_MAX_TEXT bytes is not
 * compared. Pure functions of their input; thread-safe (the public suffix
 * list is libpsl's built-in, read-only one).
 */
#ifndef MAMORI_MAIL_URLS_H
#define MAMORI_MAIL_URLS_H

#include <stddef.h>
#include <stdint.h>

#define URLS_MAX 500
#define URLS_MAX_LEN 2048u
#define URLS_MAX_TEXT 1024u
#define URLS_MAX_HOST 253u

struct url_item {
	char *url;         /* normalised, NUL-terminated; owned by the list */
	char *host;        /* lower case, A-label, no trailing dot; owned */
	int text_mismatch; /* an anchor showed another site's name */
	char *shown_host;  /* that name's host (A-label) when text_mismatch,
			      else NULL; owned */
	int cut;           /* the URL was longer than URLS_MAX_LEN */
};

struct url_list {
	struct url_item *item;
	size_t n;
	int truncated;     /* URLS_MAX reached: later URLs were dropped */
	/* private */
	size_t cap;
	uint32_t *slot;    /* hash of url -> index + 1, for de-duplication */
};

/* An empty list, owned by the caller, released by url_list_fini. */
void url_list_init(struct url_list *l);
void url_list_fini(struct url_list *l);

/* Appends the URLs of text[0..len) (UTF-8, already transfer-decoded) to l,
 * skipping those l already holds, so the text/plain and text/html parts of
 * one message can share one list. 0, or M_ENOMEM (l then holds what was
 * added before and stays valid); reaching URLS_MAX is not an error. */
int urls_extract(const char *text, size_t len, int is_html,
		 struct url_list *l);

/* The canonical form of a host as written (percent-escapes decoded, ASCII
 * lower-cased, trailing dots dropped, IDN converted to its A-label form):
 * writes a NUL-terminated string of at most cap bytes. 0, M_EINVAL for an
 * empty host or one with bytes a host cannot hold, M_ELIMIT when longer
 * than URLS_MAX_HOST or cap - 1. */
int url_host_normalise(const char *host, size_t len, char *out, size_t cap);

/* The registrable domain (public suffix plus one label) of a canonical host,
 * as a pointer into host; host itself for an IP address, a public suffix or
 * a single label. */
const char *url_site(const char *host);

#endif

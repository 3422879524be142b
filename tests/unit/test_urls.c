/*
 * Unit tests for urls_extract(): text and HTML inputs with the exact list of
 * URLs (normalised), hosts and anchor mismatches expected, in order; the
 * bounds; and the host helpers. Table-driven: input, kind, expected items.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "mail/urls.h"

#define N(x) (sizeof(x) / sizeof((x)[0]))

struct want {
	const char *url;
	const char *host;
	int mismatch;
	const char *shown;   /* NULL: none */
};

struct tcase {
	const char *in;
	int html;
	struct want w[6];    /* ends at the first url == NULL */
};

static const struct tcase cases[] = {
	/* Plain text: schemes, case, default port, trailing punctuation. */
	{ "See http://Example.COM:80/a/./b, then (https://x.example.org/p_(1)).",
	  0,
	  { { "http://example.com/a/b", "example.com", 0, NULL },
	    { "https://x.example.org/p_(1)", "x.example.org", 0, NULL } } },
	{ "ftp://files.example.net/pub/file.tgz; HTTPS://A.B/", 0,
	  { { "ftp://files.example.net/pub/file.tgz", "files.example.net", 0,
	      NULL },
	    { "https://a.b/", "a.b", 0, NULL } } },
	/* Bare www. hosts, angle brackets, duplicates kept once. */
	{ "go to www.example.com/login! or <http://www.example.com/login>",
	  0,
	  { { "http://www.example.com/login", "www.example.com", 0, NULL } } },
	{ "mail info@www.example.com or awww.example.com, not www.", 0,
	  { { NULL } } },
	/* Japanese text glued to the URL, full-width punctuation. */
	{ "\xe8\xa9\xb3\xe7\xb4\xb0\xe3\x81\xafhttps://example.jp/"
	  "news\xe3\x82\x92\xe8\xa6\x8b\xe3\x81\xa6\xe3\x80\x82"
	  "http://example.co.jp\xe3\x80\x82", 0,
	  { { "https://example.jp/news", "example.jp", 0, NULL },
	    { "http://example.co.jp/", "example.co.jp", 0, NULL } } },
	/* IDN host to A-label; non-ASCII path percent-encoded; Cyrillic e. */
	{ "http://\xe4\xbe\x8b\xe3\x81\x88.jp/\xe3\x83\x91\xe3\x82\xb9 "
	  "http://\xd0\xb5xample.com/", 0,
	  { { "http://xn--r8jz45g.jp/%E3%83%91%E3%82%B9", "xn--r8jz45g.jp", 0,
	      NULL },
	    { "http://xn--xample-2of.com/", "xn--xample-2of.com", 0,
	      NULL } } },
	/* Percent-escaped host, userinfo trick, backslash as slash. */
	{ "http://%65xample.com/ http://paypal.com@evil.example/x "
	  "http://evil.example\\@good.example/", 0,
	  { { "http://example.com/", "example.com", 0, NULL },
	    { "http://paypal.com@evil.example/x", "evil.example", 0, NULL },
	    { "http://evil.example/@good.example/", "evil.example", 0,
	      NULL } } },
	/* Ports, userinfo, IPv6 literals, query and fragment. */
	{ "https://example.com:443/ http://u:p@Host.example:8080/a?q=%7e#f "
	  "http://[2001:DB8::1]:80/x", 0,
	  { { "https://example.com/", "example.com", 0, NULL },
	    { "http://u:p@host.example:8080/a?q=~", "host.example", 0, NULL },
	    { "http://[2001:db8::1]/x", "[2001:db8::1]", 0, NULL } } },
	/* Not URLs: other schemes, hosts without a name. */
	{ "mailto:a@example.com javascript:alert(1) http:// http:///x", 0,
	  { { NULL } } },
	/* HTML: href with entities, src, the visible text read too. */
	{ "<p>Hi <a href=\"https://example.com/a?x=1&amp;y=2\">here</a>"
	  "<img src='//cdn.example.net/i.png'> visit www.example.org"
	  "&#x2F;path</p>", 1,
	  { { "https://example.com/a?x=1&y=2", "example.com", 0, NULL },
	    { "http://cdn.example.net/i.png", "cdn.example.net", 0, NULL },
	    { "http://www.example.org/path", "www.example.org", 0, NULL } } },
	/* HTML: tabs and line ends inside an href are dropped; numeric
	 * entities in the scheme. */
	{ "<a href=\"ht\ttp&#58;//evil.example/\n&#x6c;ogin\">x</a>", 1,
	  { { "http://evil.example/login", "evil.example", 0, NULL } } },
	/* Phishing anchor: visible text names another site. */
	{ "<a href=\"http://evil.example/paypal\">https://www.paypal.com/"
	  "signin</a>", 1,
	  { { "http://evil.example/paypal", "evil.example", 1,
	      "www.paypal.com" },
	    { "https://www.paypal.com/signin", "www.paypal.com", 0,
	      NULL } } },
	{ "<a href=http://evil.example/><b>PayPal</b>.com</a>", 1,
	  { { "http://evil.example/", "evil.example", 1, "paypal.com" } } },
	/* Same site (tracking subdomain, www.) is not a mismatch; neither is
	 * text that is not a domain. */
	{ "<a href=\"https://click.example.com/t?u=1\">example.com</a>"
	  "<a href=\"https://example.org/\">www.example.org</a>"
	  "<a href=\"https://example.net/\">report.pdf</a>"
	  "<a href=\"https://example.net/\">3.5</a>"
	  "<a href=\"mailto:x@evil.example\">example.com</a>", 1,
	  { { "https://click.example.com/t?u=1", "click.example.com", 0,
	      NULL },
	    { "https://example.org/", "example.org", 0, NULL },
	    { "https://example.net/", "example.net", 0, NULL } } },
	/* A co.jp site against its neighbour on the same suffix. */
	{ "<a href=\"https://a.example.co.jp/\">b.example.co.jp</a>"
	  "<a href=\"https://other.co.jp/\">example.co.jp</a>", 1,
	  { { "https://a.example.co.jp/", "a.example.co.jp", 0, NULL },
	    { "https://other.co.jp/", "other.co.jp", 1, "example.co.jp" } } },
	/* Comments hide their content; a lone '<' is text. */
	{ "<!-- http://hidden.example/ --> 1 < 2 http://shown.example/", 1,
	  { { "http://shown.example/", "shown.example", 0, NULL } } },
	/* Hostile: unterminated tag, attribute and entity (an unterminated
	 * value still counts: more to check, never less). */
	{ "<a href=\"http://x.example/", 1,
	  { { "http://x.example/", "x.example", 0, NULL } } },
	{ "<a href=http://x.example/ &#x", 1,
	  { { "http://x.example/", "x.example", 0, NULL } } },
	{ "&#99999999999999999999; &#; &", 1, { { NULL } } },
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		const struct tcase *tc = &cases[i];
		struct url_list l;
		size_t nw = 0;

		url_list_init(&l);
		assert_int_equal(urls_extract(tc->in, strlen(tc->in), tc->html,
					      &l),
				 0);
		while (nw < N(tc->w) && tc->w[nw].url)
			nw++;
		if (l.n != nw) {
			for (size_t k = 0; k < l.n; k++)
				print_message("  got %s\n", l.item[k].url);
			fail_msg("case %zu (%s): %zu URLs, want %zu", i, tc->in,
				 l.n, nw);
		}
		for (size_t k = 0; k < nw; k++) {
			const struct url_item *it = &l.item[k];
			const struct want *w = &tc->w[k];

			if (strcmp(it->url, w->url) || strcmp(it->host, w->host) ||
			    it->text_mismatch != w->mismatch ||
			    (w->shown == NULL) != (it->shown_host == NULL) ||
			    (w->shown && strcmp(w->shown, it->shown_host)))
				fail_msg("case %zu item %zu: got %s %s %d %s", i,
					 k, it->url, it->host,
					 it->text_mismatch,
					 it->shown_host ? it->shown_host : "-");
		}
		url_list_fini(&l);
	}
}

/* The plain and HTML parts of one message share a list. */
static void test_shared_list(void **state)
{
	const char *plain = "http://a.example/ http://b.example/";
	const char *html = "<a href=\"http://b.example/\">x</a> http://c.example";
	struct url_list l;

	(void)state;
	url_list_init(&l);
	assert_int_equal(urls_extract(plain, strlen(plain), 0, &l), 0);
	assert_int_equal(urls_extract(html, strlen(html), 1, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.item[2].url, "http://c.example/");
	url_list_fini(&l);
	url_list_fini(&l);   /* twice is harmless */
}

static void test_bounds(void **state)
{
	size_t n = 700 * 32 + URLS_MAX_LEN + 64, o = 0;
	char *t = malloc(n);
	struct url_list l;

	(void)state;
	assert_non_null(t);
	for (int i = 0; i < 700; i++)
		o += (size_t)snprintf(t + o, n - o, "http://h%d.example/ ", i);
	url_list_init(&l);
	assert_int_equal(urls_extract(t, o, 0, &l), 0);
	assert_int_equal(l.n, URLS_MAX);
	assert_true(l.truncated);
	url_list_fini(&l);

	/* A very long URL is cut, not dropped. */
	o = (size_t)snprintf(t, n, "http://long.example/");
	memset(t + o, 'a', URLS_MAX_LEN + 10);
	o += URLS_MAX_LEN + 10;
	url_list_init(&l);
	assert_int_equal(urls_extract(t, o, 0, &l), 0);
	assert_int_equal(l.n, 1);
	assert_true(l.item[0].cut);
	assert_int_equal(strlen(l.item[0].url), URLS_MAX_LEN);
	url_list_fini(&l);
	free(t);
}

static void test_host_helpers(void **state)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
		const char *site;
	} hc[] = {
		{ "WWW.Example.COM.", 0, "www.example.com", "example.com" },
		{ "mail.example.co.jp", 0, "mail.example.co.jp",
		  "example.co.jp" },
		{ "\xe4\xbe\x8b\xe3\x81\x88.JP", 0, "xn--r8jz45g.jp",
		  "xn--r8jz45g.jp" },
		{ "192.0.2.1", 0, "192.0.2.1", "192.0.2.1" },
		{ "localhost", 0, "localhost", "localhost" },
		{ "", M_EINVAL, NULL, NULL },
		{ "...", M_EINVAL, NULL, NULL },
		{ "a b.example", M_EINVAL, NULL, NULL },
		{ "a%2fb.example", M_EINVAL, NULL, NULL },
	};
	char out[URLS_MAX_HOST + 1];

	(void)state;
	for (size_t i = 0; i < N(hc); i++) {
		int rc = url_host_normalise(hc[i].in, strlen(hc[i].in), out,
					    sizeof(out));

		assert_int_equal(rc, hc[i].rc);
		if (rc == 0) {
			assert_string_equal(out, hc[i].out);
			assert_string_equal(url_site(out), hc[i].site);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_shared_list),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_host_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

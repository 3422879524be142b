/*
 * Unit tests for the MIME walker, its decoders (base64, quoted-printable,
 * RFC 2047, RFC 2231) and the RFC 5322 address-list parser. Table-driven
 * where the inputs are small; whole messages are built in the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "mail/addr.h"
#include "mail/mime.h"
#include "mail/msg.h"

/* ---- decoders ---- */

struct dcase {
	const char *in;
	const char *out;
	size_t out_len; /* 0: strlen(out) */
};

static void test_base64(void **state)
{
	static const struct dcase tc[] = {
		{"aGVsbG8=", "hello", 0},
		{"aGVs\r\nbG8=\r\n", "hello", 0},
		{"aG!!VsbG8", "hello", 0},          /* junk skipped */
		{"aGVsbG8gd29ybGQ", "hello world", 0}, /* no padding */
		{"", "", 0},
		{"====", "", 0},
		{"AAE=", "\0\1", 2},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		unsigned char out[64];
		int tr;
		size_t bad;
		size_t n = mime_b64_decode(tc[i].in, strlen(tc[i].in), out,
					   sizeof(out), &tr, &bad);
		size_t want = tc[i].out_len ? tc[i].out_len : strlen(tc[i].out);
		assert_int_equal(n, want);
		assert_memory_equal(out, tc[i].out, want);
		assert_int_equal(tr, 0);
	}
	/* the output cap holds and is reported */
	unsigned char small[3];
	int tr;
	size_t n = mime_b64_decode("aGVsbG8=", 8, small, 3, &tr, NULL);
	assert_int_equal(n, 3);
	assert_int_equal(tr, 1);
}

static void test_qp(void **state)
{
	static const struct dcase tc[] = {
		{"caf=C3=A9", "caf\xc3\xa9", 0},
		{"soft=\r\nbreak", "softbreak", 0},
		{"soft=  \r\nbreak", "softbreak", 0},
		{"lf=\nonly", "lfonly", 0},
		{"a=zz", "a=zz", 0},            /* a lone '=' kept */
		{"end=", "end", 0},
		{"x=3d=3D", "x==", 0},
		{"line\r\nnext", "line\r\nnext", 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		unsigned char out[64];
		int tr;
		size_t n = mime_qp_decode(tc[i].in, strlen(tc[i].in), out,
					  sizeof(out), &tr, NULL);
		assert_int_equal(n, strlen(tc[i].out));
		assert_memory_equal(out, tc[i].out, n);
	}
}

static void test_encoded_words(void **state)
{
	/* RFC 2047 §8 examples and what mail really carries */
	static const struct dcase tc[] = {
		{"(=?ISO-8859-1?Q?a?=)", "(a)", 0},
		{"(=?ISO-8859-1?Q?a?= b)", "(a b)", 0},
		{"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)", 0},
		{"(=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-1?Q?b?=)", "(ab)", 0},
		{"(=?ISO-8859-1?Q?a_b?=)", "(a b)", 0},
		{"=?utf-8?B?w6l0w6k=?=", "\xc3\xa9t\xc3\xa9", 0},
		{"=?UTF-8?q?caf=C3=A9?= ok", "caf\xc3\xa9 ok", 0},
		{"=?iso-8859-1?q?=E9t=E9?=", "\xc3\xa9t\xc3\xa9", 0},
		{"=?windows-1252?q?=80?=", "\xe2\x82\xac", 0},
		{"=?utf-8*en?Q?hi?=", "hi", 0},      /* RFC 2231 language */
		{"=?utf-8?X?bad?=", "=?utf-8?X?bad?=", 0},
		{"=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated", 0},
		{"plain text", "plain text", 0},
		{"bad \xff byte", "bad \xef\xbf\xbd byte", 0},
		{"=?x-unknown?Q?abc?=", "abc", 0},
		/* a stateful multi-byte charset through iconv */
		{"=?ISO-2022-JP?B?GyRCJEgkaiQiJCgkOhsoQg==?=",
		 "\xe3\x81\xa8\xe3\x82\x8a\xe3\x81\x82\xe3\x81\x88\xe3\x81\x9a", 0},
		{"=?shift_jis?B?g2WDWINn?=", "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", 0},
	};
	struct arena a;
	(void)state;
	arena_init(&a, 0, 0);
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		char *o = mime_decode_words(&a, tc[i].in, strlen(tc[i].in));
		assert_non_null(o);
		if (strcmp(o, tc[i].out) != 0)
			fail_msg("case %zu: '%s' -> '%s', want '%s'", i, tc[i].in,
				 o, tc[i].out);
	}
	arena_fini(&a);
}

struct pcase {
	const char *val;
	const char *name;
	const char *want; /* NULL: absent */
};

static void test_params(void **state)
{
	static const struct pcase tc[] = {
		{"text/plain; charset=us-ascii", "charset", "us-ascii"},
		{"text/plain; charset=\"UTF-8\"", "charset", "UTF-8"},
		{"text/plain;\r\n\tcharset=\"UTF-8\"", "charset", "UTF-8"},
		{"text/plain; format=flowed", "charset", NULL},
		{"attachment; filename=\"a\\\"b.txt\"", "filename", "a\"b.txt"},
		{"attachment; filename=\"semi;colon.pdf\"; size=3", "filename",
		 "semi;colon.pdf"},
		/* RFC 2231 §3 and §4 */
		{"message/external-body; access-type=URL;\r\n"
		 " URL*0=\"ftp://\";\r\n URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
		 "url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"},
		{"application/x-stuff;\r\n title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
		 "title", "This is ***fun***"},
		{"application/x-stuff;\r\n title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
		 " title*1*=%2A%2A%2Afun%2A%2A%2A%20;\r\n title*2=\"isn't it!\"",
		 "title", "This is even more ***fun*** isn't it!"},
		{"attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf", "filename",
		 "\xe2\x82\xac rates.pdf"},
		{"attachment; filename*=iso-8859-1''%E9t%E9.txt", "filename",
		 "\xc3\xa9t\xc3\xa9.txt"},
		/* the 2231 form wins over the plain one, in any order */
		{"attachment; filename=\"plain.txt\"; filename*=utf-8''ext.txt",
		 "filename", "ext.txt"},
		/* sections out of order are joined in order */
		{"attachment; filename*1=\"b.exe\"; filename*0=\"a\"", "filename",
		 "ab.exe"},
		/* RFC 2047 inside a quoted name, as Outlook sends it */
		{"application/pdf; name=\"=?UTF-8?B?0YHRh9C10YIucGRm?=\"", "name",
		 "\xd1\x81\xd1\x87\xd0\xb5\xd1\x82.pdf"},
		{"multipart/mixed; boundary=\"----=_Part_0\"", "boundary",
		 "----=_Part_0"},
		{"multipart/mixed; boundary=simple", "boundary", "simple"},
		{"attachment; filename=", "filename", ""},
		{";;;;", "filename", NULL},
		{"", "filename", NULL},
	};
	struct arena a;
	(void)state;
	arena_init(&a, 0, 0);
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		char *o = mime_param(&a, tc[i].val, strlen(tc[i].val), tc[i].name);
		if (!tc[i].want) {
			if (o)
				fail_msg("case %zu: want absent, got '%s'", i, o);
			continue;
		}
		if (!o || strcmp(o, tc[i].want) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, o ? o : "(null)",
				 tc[i].want);
	}
	arena_fini(&a);
}

/* ---- addresses ---- */

struct acase {
	const char *in;
	size_t n;
	const char *display0, *addr0, *group0;
	const char *addr1;
	int errors; /* -1: do not check */
};

static void test_addresses(void **state)
{
	static const struct acase tc[] = {
		{"a@example.org", 1, "", "a@example.org", NULL, NULL, 0},
		{"<a@example.org>", 1, "", "a@example.org", NULL, NULL, 0},
		{"Alice <alice@example.org>", 1, "Alice", "alice@example.org", NULL,
		 NULL, 0},
		{"\"Smith, John\" <js@example.org>, b@example.net", 2, "Smith, John",
		 "js@example.org", NULL, "b@example.net", 0},
		{"\"Quoted \\\"Q\\\"\" <q@x.org>", 1, "Quoted \"Q\"", "q@x.org", NULL,
		 NULL, 0},
		{"bob@example.org (Bob Jones)", 1, "Bob Jones", "bob@example.org",
		 NULL, NULL, 0},
		{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", 1,
		 "Pete", "pete@silly.test", NULL, NULL, 0},
		{"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;", 3,
		 "Ed Jones", "c@a.test", "A Group", "joe@where.test", 0},
		{"undisclosed-recipients:;", 0, NULL, NULL, NULL, NULL, 0},
		{"=?utf-8?Q?CEO_J=C3=B6rg?= <ceo@evil.test>", 1,
		 "CEO J\xc3\xb6rg", "ceo@evil.test", NULL, NULL, 0},
		{"\"=?utf-8?B?UGF5cGFs?=\" <x@evil.test>", 1, "Paypal", "x@evil.test",
		 NULL, NULL, 0},
		{"<@route1,@route2:user@host.test>", 1, "", "user@host.test", NULL,
		 NULL, 0},
		{"a@b.test, , ,c@d.test,", 2, "", "a@b.test", NULL, "c@d.test", 0},
		{"user@[IPv6:2001:db8::1]", 1, "", "user@[IPv6:2001:db8::1]", NULL,
		 NULL, 0},
		/* a display name that carries another address */
		{"\"ceo@corp.test\" <attacker@evil.test>", 1, "ceo@corp.test",
		 "attacker@evil.test", NULL, NULL, 0},
		/* broken forms are kept and counted */
		{"no-at-sign", 1, "", "no-at-sign", NULL, NULL, 1},
		{"Name <unterminated@x.test", 1, "Name", "unterminated@x.test", NULL,
		 NULL, -1},
		{"\"unterminated quote <a@b.test>", 1, NULL, NULL, NULL, NULL, -1},
		{"", 0, NULL, NULL, NULL, NULL, 0},
		{"(only a comment)", 1, NULL, NULL, NULL, NULL, -1},
	};
	struct arena a;
	(void)state;
	arena_init(&a, 0, 0);
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		struct addr_list l;
		assert_int_equal(addr_parse_list(&a, tc[i].in, strlen(tc[i].in), &l), 0);
		if (l.n != tc[i].n)
			fail_msg("case %zu '%s': %zu mailboxes, want %zu", i,
				 tc[i].in, l.n, tc[i].n);
		if (tc[i].display0 && strcmp(l.v[0].display, tc[i].display0))
			fail_msg("case %zu: display '%s', want '%s'", i,
				 l.v[0].display, tc[i].display0);
		if (tc[i].addr0 && strcmp(l.v[0].addr, tc[i].addr0))
			fail_msg("case %zu: addr '%s', want '%s'", i, l.v[0].addr,
				 tc[i].addr0);
		if (tc[i].group0 &&
		    (!l.v[0].group || strcmp(l.v[0].group, tc[i].group0)))
			fail_msg("case %zu: group '%s'", i,
				 l.v[0].group ? l.v[0].group : "(null)");
		if (tc[i].addr1 && strcmp(l.v[1].addr, tc[i].addr1))
			fail_msg("case %zu: second addr '%s', want '%s'", i,
				 l.v[1].addr, tc[i].addr1);
		if (tc[i].errors == 0 && l.errors)
			fail_msg("case %zu: %d errors, want none", i, l.errors);
		if (tc[i].errors > 0 && !l.errors)
			fail_msg("case %zu: no error counted", i);
	}
	arena_fini(&a);
}

static void test_addr_limit(void **state)
{
	struct arena a;
	struct addr_list l;
	size_t n = 0, cap = 20 * (ADDR_MAX + 50);
	char *s = malloc(cap);
	(void)state;
	assert_non_null(s);
	for (int i = 0; i < ADDR_MAX + 50; i++)
		n += (size_t)snprintf(s + n, cap - n, "u%d@x.test,", i);
	arena_init(&a, 0, 0);
	assert_int_equal(addr_parse_list(&a, s, n, &l), 0);
	assert_int_equal(l.n, ADDR_MAX);
	assert_true(l.limited);
	arena_fini(&a);
	free(s);
}

/* ---- whole messages ---- */

static struct mime_msg *parse_text(const char *text, const struct mime_limits *lim,
				   struct msg **mout)
{
	int err;
	size_t line;
	struct msg *m = msg_parse(text, strlen(text), &err, &line);
	assert_non_null(m);
	struct mime_msg *mm = NULL;
	assert_int_equal(mime_parse(m, lim, &mm), 0);
	assert_non_null(mm);
	*mout = m;
	return mm;
}

static const char MSG1[] =
	"From: \"Alice A.\" <alice@example.org>\n"
	"To: bob@example.net, \"Carol\" <carol@example.net>\n"
	"Cc: undisclosed:;\n"
	"Subject: =?UTF-8?Q?Rechnung_f=C3=BCr?=\n"
	" =?UTF-8?Q?_M=C3=A4rz?=\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"preamble is ignored\n"
	"--outer\n"
	"Content-Type: multipart/alternative; boundary=\"outer-alt\"\n"
	"\n"
	"--outer-alt\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"caf=C3=A9 http://example.org/=\n"
	"path\n"
	"--outer-alt\n"
	"Content-Type: text/html; charset=\"ISO-8859-1\"\n"
	"\n"
	"<a href=\"http://example.org/\">x</a>\n"
	"--outer-alt--\n"
	"--outer\n"
	"Content-Type: application/octet-stream;\n"
	" name=\"=?UTF-8?B?aW52b2ljZS5wZGYuZXhl?=\"\n"
	"Content-Disposition: attachment\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"aGVs\n"
	"bG8=\n"
	"--outer\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"From: inner@example.com\n"
	"Subject: inner\n"
	"Content-Type: multipart/mixed; boundary=in\n"
	"\n"
	"--in\n"
	"\n"
	"inner body\n"
	"--in\n"
	"Content-Type: application/zip\n"
	"Content-Disposition: attachment;\n"
	" filename*0*=utf-8''%E2%82%AC;\n"
	" filename*1=\".zip\"\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\n"
	"--in--\n"
	"--outer--\n"
	"epilogue\n";

static void test_message(void **state)
{
	struct msg *m;
	(void)state;
	struct mime_msg *mm = parse_text(MSG1, NULL, &m);

	assert_string_equal(mm->subject, "Rechnung f\xc3\xbcr M\xc3\xa4rz");
	assert_int_equal(mm->nfrom, 1);
	assert_int_equal(mm->from.n, 1);
	assert_string_equal(mm->from.v[0].display, "Alice A.");
	assert_string_equal(mm->from.v[0].addr, "alice@example.org");
	assert_string_equal(mm->from.v[0].domain, "example.org");
	assert_int_equal(mm->to.n, 2);
	assert_string_equal(mm->to.v[1].addr, "carol@example.net");
	assert_int_equal(mm->cc.n, 0);
	assert_int_equal(mm->reply_to.n, 0);

	static const struct {
		int depth, parent;
		const char *ctype, *filename;
		int text, html, att;
		const char *data;
	} want[] = {
		{0, -1, "multipart/mixed", "", 0, 0, 0, NULL},
		{1, 0, "multipart/alternative", "", 0, 0, 0, NULL},
		{2, 1, "text/plain", "", 1, 0, 0, "caf\xc3\xa9 http://example.org/path"},
		{2, 1, "text/html", "", 0, 1, 0, "<a href=\"http://example.org/\">x</a>"},
		{1, 0, "application/octet-stream", "invoice.pdf.exe", 0, 0, 1, "hello"},
		{1, 0, "message/rfc822", "", 0, 0, 0, NULL},
		{2, 5, "multipart/mixed", "", 0, 0, 0, NULL},
		{3, 6, "text/plain", "", 1, 0, 0, "inner body"},
		{3, 6, "application/zip", "\xe2\x82\xac.zip", 0, 0, 1, NULL},
	};
	assert_int_equal(mm->nparts, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < mm->nparts; i++) {
		const struct mime_part *p = &mm->parts[i];
		if (p->depth != want[i].depth || p->parent != want[i].parent ||
		    strcmp(p->ctype, want[i].ctype) || strcmp(p->filename, want[i].filename))
			fail_msg("part %zu: depth %d parent %d '%s' '%s'", i, p->depth,
				 p->parent, p->ctype, p->filename);
		assert_int_equal(p->is_body_text, want[i].text);
		assert_int_equal(p->is_body_html, want[i].html);
		assert_int_equal(p->is_attachment, want[i].att);
		if (want[i].data) {
			size_t l = strlen(want[i].data);
			if (p->len != l || memcmp(p->data, want[i].data, l))
				fail_msg("part %zu: data '%.*s'", i, (int)p->len,
					 (const char *)p->data);
		}
	}
	assert_string_equal(mm->parts[2].charset, "utf-8");
	assert_string_equal(mm->parts[3].charset, "iso-8859-1");
	assert_string_equal(mm->parts[4].sha256,
			    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	assert_string_equal(mm->parts[4].sha1, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
	assert_string_equal(mm->parts[4].md5, "5d41402abc4b2a76b9719d911017c592");
	assert_int_equal(mm->parts[8].len, 22); /* an empty zip */
	/* any other parameter through the raw value */
	struct arena a;
	arena_init(&a, 0, 0);
	const struct mime_part *p8 = &mm->parts[8];
	assert_non_null(p8->cdisp_raw);
	assert_string_equal(mime_param(&a, p8->cdisp_raw, p8->cdisp_raw_len,
				       "filename"), "\xe2\x82\xac.zip");
	assert_null(mime_param(&a, p8->ctype_raw, p8->ctype_raw_len, "name"));
	assert_null(mm->parts[7].ctype_raw);
	arena_fini(&a);
	assert_int_equal(mm->errors, 0);
	assert_int_equal(mm->limited, 0);
	mime_free(mm);
	msg_free(m);
}

static void test_several_from(void **state)
{
	struct msg *m;
	(void)state;
	struct mime_msg *mm = parse_text(
		"From: a@one.test\nFrom: Boss <b@two.test>, c@three.test\n"
		"Subject: x\nSubject: y\n\nbody\n", NULL, &m);
	assert_int_equal(mm->nfrom, 2);
	assert_int_equal(mm->from.n, 3);
	assert_string_equal(mm->from.v[1].display, "Boss");
	assert_int_equal(mm->nsubject, 2);
	assert_string_equal(mm->subject, "x");
	/* a message without MIME headers is one text/plain body */
	assert_int_equal(mm->nparts, 1);
	assert_true(mm->parts[0].is_body_text);
	assert_int_equal(mm->parts[0].len, 6);
	mime_free(mm);
	msg_free(m);

	mm = parse_text("Subject: none\n\n", NULL, &m);
	assert_int_equal(mm->nfrom, 0);
	assert_int_equal(mm->from.n, 0);
	assert_string_equal(mm->subject, "none");
	mime_free(mm);
	msg_free(m);
}

/* Broken structure: decoded as well as possible, counted in errors. */
struct scase {
	const char *text;
	size_t nparts;
	int errors;       /* 1: errors must be > 0 */
	const char *last; /* data of the last part, or NULL */
};

static void test_structure(void **state)
{
	static const struct scase tc[] = {
		/* no closing boundary */
		{"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n",
		 3, 1, "two\r\n"},
		/* no boundary at all in the body */
		{"Content-Type: multipart/mixed; boundary=b\n\njust text\n", 1, 1, NULL},
		/* multipart without a boundary parameter becomes text */
		{"Content-Type: multipart/mixed\n\ntext\n", 1, 1, "text\r\n"},
		/* an inner boundary that starts with the outer one */
		{"Content-Type: multipart/mixed; boundary=ab\n\n--ab\n"
		 "Content-Type: multipart/mixed; boundary=ab-1\n\n--ab-1\n\nin\n--ab-1--\n"
		 "--ab\n\nsecond\n--ab--\n", 4, 0, "second"},
		/* transport padding after a delimiter */
		{"Content-Type: multipart/mixed; boundary=b\n\n--b  \n\nx\n--b-- \n", 2, 0,
		 "x"},
		/* bad Content-Type falls back to text/plain */
		{"Content-Type: garbage\n\nx", 1, 1, "x"},
		/* junk in base64 */
		{"Content-Transfer-Encoding: base64\n\naGVs*bG8=\n", 1, 1, "hello"},
		/* a part without header fields and without a blank line */
		{"Content-Type: multipart/mixed; boundary=b\n\n--b\nnot a header line\n--b--\n",
		 2, 0, "not a header line"},
		/* digest: parts default to message/rfc822 */
		{"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: s\n\nin\n--d--\n",
		 3, 0, "in"},
		/* base64 message/rfc822 (not allowed, sent anyway) */
		{"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
		 "U3ViamVjdDogaGkKCmlubmVy\n", 2, 0, "inner"},
		{"", 1, 0, ""},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
		struct msg *m;
		struct mime_msg *mm = parse_text(tc[i].text, NULL, &m);
		if (mm->nparts != tc[i].nparts)
			fail_msg("case %zu: %zu parts, want %zu (%s)", i, mm->nparts,
				 tc[i].nparts, mm->err);
		if (tc[i].errors && !mm->errors)
			fail_msg("case %zu: no error counted", i);
		if (!tc[i].errors && mm->errors)
			fail_msg("case %zu: error '%s'", i, mm->err);
		if (tc[i].last) {
			const struct mime_part *p = &mm->parts[mm->nparts - 1];
			size_t l = strlen(tc[i].last);
			if (p->len != l || memcmp(p->data, tc[i].last, l))
				fail_msg("case %zu: last part '%.*s'", i, (int)p->len,
					 p->data ? (const char *)p->data : "");
		}
		mime_free(mm);
		msg_free(m);
	}
}

/* Appends text to a growing test buffer. */
static void app(char **b, size_t *n, size_t *cap, const char *s)
{
	size_t l = strlen(s);
	if (*n + l + 1 > *cap) {
		*cap = (*n + l + 1) * 2;
		*b = realloc(*b, *cap);
		assert_non_null(*b);
	}
	memcpy(*b + *n, s, l + 1);
	*n += l;
}

static void test_limits(void **state)
{
	char *b = NULL, line[128];
	size_t n = 0, cap = 0;
	struct msg *m;
	struct mime_msg *mm;
	(void)state;

	/* 200 nested multiparts: stops at the depth limit */
	for (int i = 0; i < 200; i++) {
		snprintf(line, sizeof(line),
			 "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
		app(&b, &n, &cap, line);
	}
	app(&b, &n, &cap, "\nleaf\n");
	mm = parse_text(b, NULL, &m);
	assert_true(mm->limited);
	assert_true(mm->nparts <= MIME_DEFAULT_MAX_DEPTH + 1);
	mime_free(mm);
	msg_free(m);

	/* 5000 parts: stops at max_parts */
	n = 0;
	app(&b, &n, &cap, "Content-Type: multipart/mixed; boundary=z\n\n");
	for (int i = 0; i < 5000; i++)
		app(&b, &n, &cap, "--z\n\nx\n");
	app(&b, &n, &cap, "--z--\n");
	struct mime_limits lim;
	mime_limits_default(&lim);
	lim.max_parts = 100;
	mm = parse_text(b, &lim, &m);
	assert_true(mm->limited);
	assert_int_equal(mm->nparts, 100);
	mime_free(mm);
	msg_free(m);

	/* decoded bytes: the second part is cut, the third empty */
	n = 0;
	app(&b, &n, &cap, "Content-Type: multipart/mixed; boundary=z\n\n");
	for (int i = 0; i < 3; i++) {
		app(&b, &n, &cap, "--z\nContent-Transfer-Encoding: base64\n\n");
		for (int j = 0; j < 10; j++)
			app(&b, &n, &cap, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n");
	}
	app(&b, &n, &cap, "--z--\n");
	mime_limits_default(&lim);
	lim.max_decoded = 500;
	lim.no_hashes = 1;
	mm = parse_text(b, &lim, &m);
	assert_int_equal(mm->nparts, 4);
	assert_int_equal(mm->parts[1].len, 360);
	assert_int_equal(mm->parts[1].truncated, 0);
	assert_int_equal(mm->parts[2].len, 140);
	assert_int_equal(mm->parts[2].truncated, 1);
	assert_int_equal(mm->parts[3].len, 0);
	assert_true(mm->limited);
	assert_string_equal(mm->parts[1].sha256, "");
	mime_free(mm);
	msg_free(m);

	/* a thousand parts with 20 KB Content-Type values each: parsed, not
	 * out of memory (parameter values do not pile up) */
	char *pad = malloc(20001);
	assert_non_null(pad);
	memset(pad, 'x', 20000);
	pad[20000] = '\0';
	n = 0;
	app(&b, &n, &cap, "Content-Type: multipart/mixed; boundary=z\n\n");
	for (int i = 0; i < 999; i++) {
		app(&b, &n, &cap, "--z\nContent-Type: text/plain; charset=\"utf-8\"; x=\"");
		app(&b, &n, &cap, pad);
		app(&b, &n, &cap, "\"\n\nx\n");
	}
	app(&b, &n, &cap, "--z--\n");
	mm = parse_text(b, NULL, &m);
	assert_int_equal(mm->nparts, 1000);
	assert_string_equal(mm->parts[999].charset, "utf-8");
	assert_int_equal(mm->parts[999].ctype_raw_len, 16 * 1024);
	mime_free(mm);
	msg_free(m);
	free(pad);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_addr_limit),
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_several_from),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * dlp: outbound data-loss-prevention patterns over message text. Why: the
 * mis-send and DLP policy of the mail gateway holds or flags an outgoing
 * message that carries card numbers, Japanese individual numbers or
 * classified markings, and says so in an event without ever repeating the
 * number itself. A scanner is built once from configuration (keywords into
 * one Hyperscan database, custom patterns through PCRE2 with JIT), is
 * read-only afterwards and may be shared by every milter thread; each scan
 * uses its own scratch.
 *
 * What is found in UTF-8 text:
 *  - DLP_CARD: 13 to 19 digits, ASCII or full-width (０-９), written whole
 *    or in groups parted by one space, hyphen, ideographic space or
 *    full-width hyphen (the same separator throughout), that pass the Luhn
 *    check and start with a known issuer prefix (Visa 4; Mastercard 51-55,
 *    2221-2720; American Express 34, 37; Diners 300-305, 36, 38, 39;
 *    Discover 6011, 644-649, 65; JCB 3528-3589; UnionPay 62; Maestro 50,
 *    56-58, 67). An unbroken run of more than 19 digits, or digits glued to
 *    a decimal point or comma of a larger number, is never a card; a run in
 *    groups is read group by group, so two cards on a line are two.
 *  - DLP_MYNUMBER: マイナンバー, 12 digits (whole, or 4-4-4 with one
 *    separator) whose last digit is the check digit of the official
 *    formula (Ordinance of the Ministry of Internal Affairs and
 *    Communications No. 85 of 2014, art. 5): with P(n) the n-th digit from
 *    the right before the check digit and Q(n) = n + 1 for n <= 6, n - 5
 *    for n >= 7, the remainder r of sum(P(n) Q(n)) by 11 gives 0 when
 *    r <= 1, else 11 - r. Twelve equal digits are ignored.
 *  - DLP_KEYWORD: each keyword (defaults: 社外秘, 部外秘, 関係者外秘, 極秘,
 *    Confidential, Strictly confidential; configured ones are added, or
 *    replace them with no_default_keywords). ASCII letters match in any
 *    case; a keyword that starts or ends with an ASCII letter or digit must
 *    do so at a word boundary ("confidentiality" is not "confidential"); a
 *    space in a keyword matches any run of white space.
 *  - DLP_PATTERN: each custom PCRE2 regular expression (UTF mode, invalid
 *    UTF-8 in the text tolerated), up to DLP_MAX_MATCHES matches each.
 *
 * Samples are masked: every letter and digit becomes '*' except the last
 * four digits of a card or My Number ("**** **** **** 1234"), and the
 * last four characters of a custom match of at least ten; keywords carry
 * no sample (the name says which matched).
 */
#ifndef MAMORI_MAIL_DLP_H
#define MAMORI_MAIL_DLP_H

#include <stddef.h>

#define DLP_MAX_KEYWORDS 256
#define DLP_MAX_KEYWORD_LEN 128
#define DLP_MAX_PATTERNS 64
#define DLP_MAX_PATTERN_LEN 1024
#define DLP_MAX_MATCHES 10000     /* per custom pattern and scan */
#define DLP_MAX_SAMPLES 3
#define DLP_SAMPLE_MAX 48         /* bytes with the NUL */

enum dlp_kind {
	DLP_CARD = 1,
	DLP_MYNUMBER,
	DLP_KEYWORD,
	DLP_PATTERN,
};

struct dlp_pattern {
	const char *name;         /* reported name, e.g. "employee_id" */
	const char *regex;        /* PCRE2 syntax */
};

struct dlp_conf {
	const char *const *keywords;
	size_t n_keywords;
	int no_default_keywords;
	const struct dlp_pattern *patterns;
	size_t n_patterns;
	int no_cards;             /* skip the card check */
	int no_mynumber;          /* skip the My Number check */
};

struct dlp_item {
	enum dlp_kind kind;
	const char *name;         /* "credit_card", "my_number", the keyword
				     or the pattern name; owned by the dlp */
	size_t count;
	size_t n_samples;
	char sample[DLP_MAX_SAMPLES][DLP_SAMPLE_MAX];  /* masked */
};

struct dlp_result {
	struct dlp_item *item;    /* only kinds found, count > 0 */
	size_t n;
	size_t total;             /* sum of the counts */
};

struct dlp;

/* Builds a scanner (copies what it needs from conf); the caller owns it
 * (dlp_free). NULL on a bad configuration (a keyword or pattern empty, too
 * long or that does not compile, too many) with a message in err, or when
 * out of memory. */
struct dlp *dlp_new(const struct dlp_conf *conf, char *err, size_t errlen);
void dlp_free(struct dlp *d);

/* Scans text[0..len). out is overwritten and owned by the caller
 * (dlp_result_fini). 0; M_EINVAL for a NULL scanner or text, M_ELIMIT for
 * 4 GiB or more, M_ENOMEM, or M_EIO when Hyperscan failed; out is then
 * empty. Linear in len (the custom patterns aside, which PCRE2 bounds by
 * its match limit). Thread-safe on a shared scanner. */
int dlp_scan(const struct dlp *d, const char *text, size_t len,
	     struct dlp_result *out);
void dlp_result_fini(struct dlp_result *r);

/* "credit_card", "my_number", "keyword", "pattern" or "?". */
const char *dlp_kind_str(enum dlp_kind k);

#endif

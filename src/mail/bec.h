/*
 * bec: business-e-mail-compromise checks on a message's addresses. Why: a
 * BEC mail carries no malware and often passes SPF and DKIM (it comes from
 * the attacker's own domain); what gives it away is whom it pretends to be.
 * A checker is built once from configuration, is read-only afterwards (one
 * may be shared by every milter thread) and looks only at the addresses and
 * display name it is given; what the caller has seen before (first contact)
 * is the caller's state, passed in.
 *
 * Findings (each with a score; the scores add up):
 *  - BEC_DISPLAY_NAME: the From display name is a protected person's name
 *    while the address is outside our domains and not one of that person's
 *    own addresses. Names are compared as words after NFKC (full-width
 *    letters, ideographic spaces), without default-ignorable characters
 *    (soft hyphens, zero-width joiners), reduced to case-folded Unicode
 *    confusable skeletons (UTS #39): so "YAMADA Taro", "Taro Yamada (CEO)",
 *    "山田　太郎", "山田太郎", "太郎 山田" and a Cyrillic "Тaro Yamada" all
 *    match "Taro Yamada" / "山田 太郎". A display name matches when it holds
 *    every word of the person's name in any order, or the words run
 *    together in either order. Words are split at white space, the middle
 *    dots U+00B7 and U+30FB and , . ; : ( ) [ ] < > " ' / |. Also reported:
 *    a display name that shows an address in our domains
 *    ("ceo@example.com" <x@gmail.com>).
 *  - BEC_LOOKALIKE: the domain of From, Reply-To or Return-Path is not one
 *    of ours (nor a subdomain of one) but looks like one. Both sides are
 *    reduced to their registrable domain (public suffix plus one label,
 *    through the public suffix list; A-labels decoded to Unicode, NFKC,
 *    case-folded) and compared three ways:
 *      1. equal confusable skeletons (UTS #39: "rn" is "m", "1" is "l",
 *         "0" is "o", Cyrillic "е" is "e") of the whole registrable domain:
 *         a homograph, the highest score (examp1e.com, exarnple.com,
 *         example.c0m, an IDN "еxample.com");
 *      2. Damerau-Levenshtein distance (optimal string alignment, over code
 *         points) of the whole registrable domain, suffix included, within
 *         the limit (exmaple.com, exampple.com, example.co);
 *      3. when the public suffixes are equal, the same distance between
 *         the skeletons of the registrable labels (exarnpie.com).
 *    The limit is 2 when our registrable label has 6 characters or more, 1
 *    below. So example.co.jp (3 edits from example.com), example.net and
 *    example.org do not look like example.com: the company's name under
 *    another suffix is not reported by itself. Subdomains of ours, and of
 *    the trusted domains, never are. A domain that carries one of ours
 *    followed by more labels (example.com.evil.net) is reported too.
 *  - BEC_REPLY_TO: a Reply-To address on another site (registrable domain)
 *    than From; scored higher when From is ours and Reply-To is not.
 *  - BEC_FIRST_FINANCE: a sender outside our domains writes for the first
 *    time (the caller's flag) to one of the finance addresses.
 *
 * Addresses are "local@domain" (angle brackets and white space around are
 * tolerated), UTF-8; the display name is UTF-8 with RFC 2047 words already
 * decoded. Every list and string has a bound (BEC_MAX_*); inputs past them
 * are cut, never rejected.
 */
#ifndef MAMORI_MAIL_BEC_H
#define MAMORI_MAIL_BEC_H

#include <stddef.h>

#define BEC_MAX_DOMAINS 256
#define BEC_MAX_PEOPLE 1024
#define BEC_MAX_ADDRS 4096      /* finance plus people's addresses */
#define BEC_MAX_NAME 256        /* bytes of a display name looked at */
#define BEC_MAX_ADDR 320        /* bytes of an address */
#define BEC_MAX_INPUT 64        /* Reply-To addresses or recipients read */
#define BEC_MAX_FINDINGS 16
#define BEC_REASON_MAX 256

/* Default scores; a configuration may replace any (0 keeps the default). */
#define BEC_SCORE_DISPLAY_NAME 60
#define BEC_SCORE_HOMOGRAPH 80
#define BEC_SCORE_LOOKALIKE 60
#define BEC_SCORE_REPLY_TO 20
#define BEC_SCORE_REPLY_TO_EXT 40
#define BEC_SCORE_FIRST_FINANCE 30

struct bec_person {
	const char *name;             /* "Taro Yamada" or "山田 太郎" */
	const char *const *addrs;     /* the person's real addresses */
	size_t n_addrs;
};

struct bec_conf {
	const char *const *our_domains;   /* example.com, example.co.jp */
	size_t n_our_domains;
	const char *const *trusted_domains; /* never reported as lookalikes */
	size_t n_trusted_domains;
	const struct bec_person *people;
	size_t n_people;
	const char *const *finance_addrs;
	size_t n_finance_addrs;
	/* Edit distance limits: 0 takes the default (2 and 1); a negative
	 * value allows only equal skeletons (homographs). */
	int max_dist_long;                /* our label >= 6 characters */
	int max_dist_short;
	int score_display_name, score_homograph, score_lookalike;
	int score_reply_to, score_reply_to_ext, score_first_finance;
};

struct bec_input {
	const char *from_name;            /* may be NULL */
	const char *from_addr;            /* may be NULL */
	const char *const *reply_to;
	size_t n_reply_to;
	const char *return_path;          /* envelope sender; may be NULL */
	const char *const *rcpts;
	/* first_time[i] != 0: the sender never wrote to rcpts[i] before;
	 * NULL when unknown. Only finance recipients are looked at. */
	const unsigned char *first_time;
	size_t n_rcpts;
};

enum bec_kind {
	BEC_DISPLAY_NAME = 1,
	BEC_LOOKALIKE,
	BEC_REPLY_TO,
	BEC_FIRST_FINANCE,
};

struct bec_finding {
	enum bec_kind kind;
	int score;
	char reason[BEC_REASON_MAX];  /* printable; control bytes replaced */
};

struct bec_findings {
	struct bec_finding f[BEC_MAX_FINDINGS];
	size_t n;
	int score;                     /* sum of the findings' scores */
};

struct bec;

/* Builds a checker from conf (copied: conf may be freed afterwards). The
 * caller owns it (bec_free). NULL on a bad configuration (an empty or
 * malformed domain or address, a list past its bound) with a message in
 * err, or when out of memory. */
struct bec *bec_new(const struct bec_conf *conf, char *err, size_t errlen);
void bec_free(struct bec *b);

/* Checks one message; out is overwritten. 0, M_EINVAL for a NULL checker
 * or input, or M_ENOMEM (out then holds what was found before).
 * Thread-safe on a shared checker; uses about 40 KiB of stack. */
int bec_check(const struct bec *b, const struct bec_input *in,
	      struct bec_findings *out);

/* 1 when addr is one of the finance addresses: the caller keeps
 * first-contact state only for those. */
int bec_is_finance(const struct bec *b, const char *addr);

/* "display_name", "lookalike", "reply_to", "first_finance", or "?". */
const char *bec_kind_str(enum bec_kind k);

#endif

/*
 * Timestamp parsing shared by the log parsers (syslog, CEF, JSON). Every
 * parser meets the same few shapes (RFC 3339, BSD "Mmm dd hh:mm:ss", epoch
 * numbers), so they are parsed once here, without libc's locale- and
 * time-zone-dependent functions, and always into UTC microseconds.
 *
 * The *_prefix functions parse from the start of p and return how many bytes
 * they consumed (0 when p does not start with such a stamp); the others
 * require the whole slice to be the stamp.
 */
#ifndef MAMORI_INGEST_TIME_H
#define MAMORI_INGEST_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
int64_t ingest_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The inverse: year, month (1..12) and day (1..31) of a day number. */
void ingest_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* "YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|+hh:mm|+hhmm|+hh]" (no zone = UTC). */
size_t ingest_time_rfc3339_prefix(const char *p, size_t n, int64_t *us);
int ingest_time_rfc3339(const char *p, size_t n, int64_t *us);

/* BSD syslog "Mmm dd hh:mm:ss[.frac]", also "Mmm dd yyyy hh:mm:ss" and a
 * single-digit day. Without a year, the year is the one of recv_us, moved
 * back one when that puts the stamp more than a month after recv_us (a
 * December line received in January is last year's) and forward one when
 * it is more than eleven months before it. */
size_t ingest_time_bsd_prefix(const char *p, size_t n, int64_t recv_us,
			      int64_t *us);

/* Month number (1..12) of a three-letter English abbreviation, or 0. */
unsigned ingest_month_abbr(const char *p);

#endif

/*
 * Parse benchmark for the ingestion parsers: how many lines per second one
 * core turns into events, per format. Lines are generated in memory
 * (realistic sizes, varied hosts, apps, structured data and fields), then
 * parsed the way the pipeline does it: one event reused per line, one arena
 * reset per batch. It prints figures and never passes or fails.
 *
 * Usage: bench_parse [lines-per-format]   (default 2,000,000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/event.h"
#include "ingest/ingest.h"

#define DISTINCT 4096      /* distinct lines generated per format */
#define BATCH 256          /* lines per arena reset */

typedef int (*parse_fn)(const char *p, size_t n, struct event *ev,
			struct arena *a);

struct corpus {
	struct buf text;
	size_t off[DISTINCT + 1];
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static const char *const hosts[] = { "web01", "web02.example.net", "db-3.corp.example",
				     "fw-edge-1", "10.20.30.40", "mail.example.org" };
static const char *const apps[] = { "sshd", "nginx", "postfix/smtpd", "kernel",
				    "sudo", "CRON", "haproxy" };
static const char *const words[] = { "Accepted", "publickey", "for", "root", "from",
				     "connection", "closed", "by", "user", "session",
				     "opened", "port", "request", "GET", "/index.html" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void msg_words(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_printf(b, "%s%s", i ? " " : "", words[rnd(15)]);
}

static void gen_5424(struct buf *b)
{
	buf_printf(b, "<%u>1 2024-03-%02uT%02u:%02u:%02u.%06uZ %s %s %u ID%u ",
		   rnd(192), 1 + rnd(28), rnd(24), rnd(60), rnd(60), rnd(1000000),
		   hosts[rnd(6)], apps[rnd(7)], 100 + rnd(60000), rnd(100));
	if (rnd(4))
		buf_printf(b, "[meta@32473 seq=\"%u\" ip=\"10.%u.%u.%u\"] ", rnd(100000),
			   rnd(256), rnd(256), rnd(256));
	else
		buf_puts(b, "- ");
	msg_words(b, 3 + (int)rnd(4));
}

static void gen_3164(struct buf *b)
{
	buf_printf(b, "<%u>%s %2u %02u:%02u:%02u %s %s[%u]: ", rnd(192),
		   months[rnd(12)], 1 + rnd(28), rnd(24), rnd(60), rnd(60),
		   hosts[rnd(6)], apps[rnd(7)], 100 + rnd(60000));
	msg_words(b, 6 + (int)rnd(6));
}

static void gen_cef(struct buf *b)
{
	buf_printf(b, "CEF:0|Acme|Firewall|2.%u|%u|Connection %s|%u|src=10.%u.%u.%u "
		   "dst=192.0.2.%u spt=%u dpt=%u proto=TCP act=%s suser=user%u "
		   "cs1=rule-%u cs1Label=Rule Name rt=%llu msg=",
		   rnd(9), 100 + rnd(900), rnd(2) ? "blocked" : "allowed", rnd(11),
		   rnd(256), rnd(256), rnd(256), rnd(256), 1024 + rnd(60000),
		   rnd(2) ? 443 : 80, rnd(2) ? "block" : "allow", rnd(1000), rnd(500),
		   1700000000000ULL + rnd(1000000000));
	msg_words(b, 3 + (int)rnd(4));
}

static void gen_eve(struct buf *b)
{
	buf_printf(b, "{\"timestamp\":\"2024-03-10T12:%02u:%02u.%06u+0000\","
		   "\"flow_id\":%u%u,\"in_iface\":\"eth0\",",
		   rnd(60), rnd(60), rnd(1000000), 100000 + rnd(900000), rnd(1000000));
	switch (rnd(3)) {
	case 0:
		buf_printf(b, "\"event_type\":\"alert\",\"src_ip\":\"10.0.%u.%u\","
			   "\"src_port\":%u,\"dest_ip\":\"198.51.100.%u\",\"dest_port\":443,"
			   "\"proto\":\"TCP\",\"alert\":{\"action\":\"allowed\",\"gid\":1,"
			   "\"signature_id\":%u,\"rev\":%u,\"signature\":\"ET POLICY "
			   "Suspicious %s\",\"category\":\"Potentially Bad Traffic\","
			   "\"severity\":%u},\"app_proto\":\"tls\",\"flow\":{"
			   "\"pkts_toserver\":%u,\"pkts_toclient\":%u,\"bytes_toserver\":%u,"
			   "\"bytes_toclient\":%u,\"start\":\"2024-03-10T12:00:00.000000+0000\"}}",
			   rnd(256), rnd(256), 1024 + rnd(60000), rnd(256),
			   2000000 + rnd(100000), 1 + rnd(9), words[rnd(15)], 1 + rnd(3),
			   rnd(100), rnd(100), rnd(100000), rnd(100000));
		break;
	case 1:
		buf_printf(b, "\"event_type\":\"dns\",\"src_ip\":\"10.0.0.%u\",\"src_port\":%u,"
			   "\"dest_ip\":\"10.0.0.53\",\"dest_port\":53,\"proto\":\"UDP\","
			   "\"dns\":{\"type\":\"answer\",\"id\":%u,\"flags\":\"8180\","
			   "\"qr\":true,\"rrname\":\"host%u.example.com\",\"rrtype\":\"A\","
			   "\"rcode\":\"NOERROR\",\"answers\":[{\"rrname\":\"host%u.example.com\","
			   "\"rrtype\":\"A\",\"ttl\":300,\"rdata\":\"93.184.%u.%u\"}]}}",
			   rnd(256), 1024 + rnd(60000), rnd(65536), rnd(1000), rnd(1000),
			   rnd(256), rnd(256));
		break;
	default:
		buf_printf(b, "\"event_type\":\"flow\",\"src_ip\":\"10.0.0.%u\",\"src_port\":%u,"
			   "\"dest_ip\":\"203.0.113.%u\",\"dest_port\":%u,\"proto\":\"TCP\","
			   "\"app_proto\":\"http\",\"flow\":{\"pkts_toserver\":%u,"
			   "\"pkts_toclient\":%u,\"bytes_toserver\":%u,\"bytes_toclient\":%u,"
			   "\"start\":\"2024-03-10T12:00:00.000000+0000\",\"end\":"
			   "\"2024-03-10T12:00:05.000000+0000\",\"age\":5,\"state\":\"closed\","
			   "\"reason\":\"timeout\",\"alerted\":false},\"tcp\":{\"tcp_flags\":"
			   "\"1b\",\"syn\":true,\"fin\":true,\"psh\":true,\"ack\":true,"
			   "\"state\":\"closed\"}}",
			   rnd(256), 1024 + rnd(60000), rnd(256), rnd(2) ? 80 : 8080,
			   rnd(100), rnd(100), rnd(100000), rnd(100000));
		break;
	}
}

static void build(struct corpus *c, void (*gen)(struct buf *))
{
	buf_init(&c->text, 0);
	for (int i = 0; i < DISTINCT; i++) {
		c->off[i] = c->text.len;
		gen(&c->text);
	}
	c->off[DISTINCT] = c->text.len;
}

/* CPU time of this thread: the figure is "per core", and it holds up when
 * other work shares the machine (wall time is printed beside it). */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(const char *name, struct corpus *c, parse_fn fn, long lines)
{
	struct arena a;
	struct event *ev = calloc(1, sizeof(*ev));
	double t0, t1, c0, c1;
	size_t bytes = 0;
	long errors = 0;

	if (!ev)
		return;
	arena_init(&a, 0, 0);
	event_clear(ev);
	/* Warm-up pass over the distinct lines. */
	for (int i = 0; i < DISTINCT; i++) {
		event_clear(ev);
		(void)fn(c->text.p + c->off[i], c->off[i + 1] - c->off[i], ev, &a);
		if (i % BATCH == BATCH - 1)
			arena_reset(&a);
	}
	arena_reset(&a);
	t0 = now();
	c0 = cpu_now();
	for (long k = 0; k < lines; k++) {
		int i = (int)(k % DISTINCT);
		size_t n = c->off[i + 1] - c->off[i];
		event_clear(ev);
		ev->recv_us = 1710072000000000LL;
		if (fn(c->text.p + c->off[i], n, ev, &a) != 0)
			errors++;
		bytes += n;
		if (k % BATCH == BATCH - 1)
			arena_reset(&a);
	}
	c1 = cpu_now();
	t1 = now();
	printf("%-10s %9ld lines %6.1f B/line %10.0f lines/s %7.1f MB/s (cpu)"
	       " %10.0f lines/s (wall)%s\n", name, lines,
	       (double)bytes / (double)lines, (double)lines / (c1 - c0),
	       (double)bytes / (c1 - c0) / 1e6, (double)lines / (t1 - t0),
	       errors ? "  (parse errors!)" : "");
	arena_fini(&a);
	free(ev);
}

int main(int argc, char **argv)
{
	long lines = 2000000;
	struct corpus c5424, c3164, ccef, ceve;

	if (argc > 1) {
		char *end;
		lines = strtol(argv[1], &end, 10);
		if (*end || lines <= 0) {
			fprintf(stderr, "usage: %s [lines-per-format]\n", argv[0]);
			return 2;
		}
	}
	build(&c5424, gen_5424);
	build(&c3164, gen_3164);
	build(&ccef, gen_cef);
	build(&ceve, gen_eve);
	printf("bench_parse: one thread, event reused, arena reset every %d lines\n",
	       BATCH);
	run("rfc5424", &c5424, syslog_parse, lines);
	run("rfc3164", &c3164, syslog_parse, lines);
	run("cef", &ccef, cef_parse, lines);
	run("eve-json", &ceve, json_event_parse, lines);
	buf_fini(&c5424.text);
	buf_fini(&c3164.text);
	buf_fini(&ccef.text);
	buf_fini(&ceve.text);
	return 0;
}

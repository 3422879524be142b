/*
 * Load generator for the ingest benchmarks: writes N realistic RFC 5424
 * lines (~130 bytes, varied hosts, apps, structured data and words) to a
 * file, or streams a file over TCP to host:port as fast as the receiver
 * takes it, and prints what it sent and how fast.
 *
 *   bench_send gen FILE N
 *   bench_send send HOST:PORT FILE [CONNECTIONS]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"

static const char *const hosts[] = { "web01", "web02", "db01", "fw-edge", "mail-gw", "proxy3", "ids1", "dns2" };
static const char *const apps[] = { "sshd", "nginx", "postfix", "kernel", "sudo", "cron", "suricata", "named" };
static const char *const words[] = {
	"accepted", "failed", "password", "connection", "from", "user", "session", "opened",
	"closed", "request", "denied", "timeout", "error", "warning", "query", "response",
	"invalid", "port", "client", "server", "root", "admin", "reset", "blocked",
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int gen(const char *path, long n)
{
	FILE *f = fopen(path, "w");
	unsigned long long x = 88172645463325252ULL;

	if (!f) {
		perror(path);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		char msg[96];
		size_t o = 0;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (int w = 0; w < 6; w++) {
			const char *word = words[(x >> (w * 5)) % 24];
			size_t wl = strlen(word);
			if (o + wl + 2 >= sizeof(msg))
				break;
			memcpy(msg + o, word, wl);
			o += wl;
			msg[o++] = ' ';
		}
		msg[o] = '\0';
		fprintf(f, "<%d>1 2026-11-25T10:%02ld:%02ld.%03ldZ %s %s %ld ID%ld [origin ip=\"10.0.%ld.%ld\"] %sseq=%ld\n",
			(int)(((x >> 3) % 24) * 8 + (x >> 9) % 8), (i / 60000) % 60, (i / 1000) % 60, i % 1000,
			hosts[x % 8], apps[(x >> 8) % 8], 1000 + (long)(x % 30000),
			(long)((x >> 16) % 100), (long)((x >> 24) % 256), (long)((x >> 32) % 256), msg, i);
	}
	if (fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

struct sender {
	struct sockaddr_in sa;
	const char *data;
	size_t len;
	int rc;
};

static void *send_main(void *arg)
{
	struct sender *s = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t off = 0;

	if (fd < 0 || connect(fd, (struct sockaddr *)&s->sa, sizeof(s->sa)) < 0) {
		perror("connect");
		s->rc = 1;
		return NULL;
	}
	while (off < s->len) {
		ssize_t w = send(fd, s->data + off, s->len - off > (1 << 20) ? (1 << 20) : s->len - off,
				 MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror("send");
			s->rc = 1;
			break;
		}
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	return NULL;
}

static int send_file(const char *addr, const char *path, int conns)
{
	char host[256];
	int port, fd, rc = 0;
	struct stat st;
	char *data;
	struct sender s[64];
	pthread_t t[64];
	double t0, t1;
	size_t lines = 0;

	if (conf_split_addr(addr, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "bad address %s\n", addr);
		return 2;
	}
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (data == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (off_t i = 0; i < st.st_size; i++)
		lines += data[i] == '\n';
	if (conns < 1 || conns > 64)
		conns = 1;
	/* Split at line boundaries, one slice per connection. */
	size_t start = 0;
	for (int c = 0; c < conns; c++) {
		size_t end = c == conns - 1 ? (size_t)st.st_size : (size_t)st.st_size * (size_t)(c + 1) / (size_t)conns;
		while (end < (size_t)st.st_size && data[end - 1] != '\n')
			end++;
		memset(&s[c], 0, sizeof(s[c]));
		s[c].sa.sin_family = AF_INET;
		s[c].sa.sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &s[c].sa.sin_addr);
		s[c].data = data + start;
		s[c].len = end - start;
		start = end;
	}
	t0 = now_s();
	for (int c = 0; c < conns; c++)
		pthread_create(&t[c], NULL, send_main, &s[c]);
	for (int c = 0; c < conns; c++) {
		pthread_join(t[c], NULL);
		rc |= s[c].rc;
	}
	t1 = now_s();
	printf("sent %zu lines (%.1f MB) over %d connection(s) in %.3f s: %.0f lines/s\n", lines,
	       (double)st.st_size / 1e6, conns, t1 - t0, (double)lines / (t1 - t0));
	munmap(data, (size_t)st.st_size);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "gen")) {
		char *end;
		long n = strtol(argv[3], &end, 10);
		if (*end || n <= 0) {
			fprintf(stderr, "bad count %s\n", argv[3]);
			return 2;
		}
		return gen(argv[2], n);
	}
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "send"))
		return send_file(argv[2], argv[3], argc == 5 ? (int)strtol(argv[4], NULL, 10) : 1);
	fprintf(stderr, "usage: bench_send gen FILE N | bench_send send HOST:PORT FILE [CONNECTIONS]\n");
	return 2;
}

/*
 * imsdlgctl: the command line client of imsdlgd's JSON-RPC interface, in
 * the manner of kamcmd:
 *
 *   imsdlgctl [-s unix:PATH | -s http://HOST:PORT] METHOD [PARAM...]
 *
 * Parameters are typed as kamcmd types them: a decimal integer is sent as
 * a number, anything else as a string; "s:" forces a string ("s:0042"),
 * "i:" an integer. Without -s it finds the daemon's default socket the way
 * the daemon chose it (mgmt_default_socket). It speaks plain sockets: the
 * UNIX socket takes one request and a half-close, HTTP one POST with
 * Connection: close.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mgmt/mgmt.h"

#ifndef IMSDLG_VERSION
#define IMSDLG_VERSION "0.0.0"
#endif

#define EXIT_REPLY_ERROR 1 /* the daemon answered with an error */
#define EXIT_FAILURE_IO  2 /* usage, connection, malformed reply */
#define REPLY_MAX        (64 * 1024 * 1024)

struct target {
	bool http;
	char path[108]; /* UNIX */
	char host[256]; /* HTTP */
	char port[8];
	char url[512];
};

struct buf {
	char *p;
	size_t len, cap;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: imsdlgctl [-s ADDR] [-T TOKENFILE] [-r] [-t SECONDS] "
	        "METHOD [PARAM...]\n"
	        "       imsdlgctl [-s ADDR] -l\n"
	        "  -s ADDR    unix:PATH (or a path) or http://HOST:PORT[/RPC]; "
	        "default: the\n"
	        "             daemon's default socket\n"
	        "  -T FILE    bearer token for HTTP (or $IMSDLG_RPC_TOKEN)\n"
	        "  -r         print the reply as received\n"
	        "  -t SECONDS give up after this long (default 10)\n"
	        "  -l         list the methods\n"
	        "  -V, -h     version, this help\n"
	        "PARAM: 42 is a number, text a string; s:42 forces a string, "
	        "i:42 a number\n");
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int die(const char *fmt, ...)
{
	va_list ap;

	fputs("imsdlgctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAILURE_IO;
}

static int buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > REPLY_MAX)
			return EFBIG;
		q = realloc(b->p, cap);
		if (q == NULL)
			return ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* --------------------------------------------------------------- target */

static int parse_target(struct target *t, const char *s)
{
	const char *h, *end, *slash;

	memset(t, 0, sizeof(*t));
	if (strncmp(s, "unix:", 5) == 0 || s[0] == '/' || s[0] == '.') {
		if (strncmp(s, "unix:", 5) == 0)
			s += 5;
		if (strlen(s) >= sizeof(t->path) || *s == '\0')
			return EINVAL;
		snprintf(t->path, sizeof(t->path), "%s", s);
		return 0;
	}
	/* http://HOST:PORT[/PATH], or the daemon's own http:HOST:PORT */
	if (strncmp(s, "http://", 7) == 0)
		h = s + 7;
	else if (strncmp(s, "http:", 5) == 0)
		h = s + 5;
	else
		return EINVAL;
	t->http = true;
	slash = strchr(h, '/');
	snprintf(t->url, sizeof(t->url), "%s", slash ? slash : "/RPC");
	end = slash ? slash : h + strlen(h);
	snprintf(t->port, sizeof(t->port), "5080");
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (close == NULL || (size_t)(close - h - 1) >= sizeof(t->host))
			return EINVAL;
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(close - h - 1),
		         h + 1);
		if (close + 1 < end && close[1] == ':')
			snprintf(t->port, sizeof(t->port), "%.*s",
			         (int)(end - close - 2), close + 2);
	} else {
		const char *colon = memchr(h, ':', (size_t)(end - h));
		const char *hend = colon ? colon : end;

		if ((size_t)(hend - h) >= sizeof(t->host))
			return EINVAL;
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(hend - h), h);
		if (colon)
			snprintf(t->port, sizeof(t->port), "%.*s",
			         (int)(end - colon - 1), colon + 1);
	}
	return t->host[0] && t->port[0] ? 0 : EINVAL;
}

/* ------------------------------------------------------------------- io */

static int remaining_ms(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000LL +
	     (deadline->tv_nsec - now.tv_nsec) / 1000000LL;
	return ms < 0 ? 0 : ms > 1000000 ? 1000000 : (int)ms;
}

static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	struct pollfd p = {fd, events, 0};
	int r;

	do
		r = poll(&p, 1, remaining_ms(deadline));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno;
	return r == 0 ? ETIMEDOUT : 0;
}

static int send_all(int fd, const char *p, size_t n,
                    const struct timespec *deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int e = wait_fd(fd, POLLOUT, deadline);

			if (e)
				return e;
			continue;
		}
		if (w < 0)
			return errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, struct buf *b, const struct timespec *deadline)
{
	char tmp[16384];

	for (;;) {
		ssize_t r = recv(fd, tmp, sizeof(tmp), 0);

		if (r == 0)
			return 0;
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			int e = wait_fd(fd, POLLIN, deadline);

			if (e)
				return e;
			continue;
		}
		if (r < 0)
			return errno;
		if (buf_add(b, tmp, (size_t)r))
			return EFBIG;
	}
}

static int connect_to(int fd, const struct sockaddr *sa, socklen_t len,
                      const struct timespec *deadline)
{
	int e = 0;
	socklen_t el = sizeof(e);

	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	e = wait_fd(fd, POLLOUT, deadline);
	if (e)
		return e;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
		return errno;
	return e;
}

static int call_unix(const struct target *t, const char *req, struct buf *rep,
                     const struct timespec *deadline)
{
	struct sockaddr_un sa;
	int fd, e;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
	e = connect_to(fd, (struct sockaddr *)&sa, sizeof(sa), deadline);
	if (e == 0)
		e = send_all(fd, req, strlen(req), deadline);
	/* One request, then end of input: the server answers and closes. */
	if (e == 0 && shutdown(fd, SHUT_WR) != 0)
		e = errno;
	if (e == 0)
		e = recv_all(fd, rep, deadline);
	close(fd);
	return e;
}

/* Decodes a chunked body in place (RFC 9112 §7.1); false if malformed. */
static bool unchunk(struct buf *b, size_t off)
{
	size_t in = off, out = off;

	for (;;) {
		char *end;
		unsigned long n = strtoul(b->p + in, &end, 16);
		char *crlf = strstr(b->p + in, "\r\n");

		if (end == b->p + in || crlf == NULL)
			return false;
		in = (size_t)(crlf - b->p) + 2;
		if (n == 0)
			break;
		if (in + n + 2 > b->len)
			return false;
		memmove(b->p + out, b->p + in, n);
		out += n;
		in += n + 2;
	}
	b->len = out;
	b->p[out] = '\0';
	return true;
}

/* The body of the HTTP reply in rep, moved to its start; the status in
 * *status. */
static int http_body(struct buf *rep, int *status)
{
	char *hdr_end = strstr(rep->p ? rep->p : "", "\r\n\r\n");
	size_t off;
	bool chunked = false;

	if (rep->p == NULL || hdr_end == NULL ||
	    sscanf(rep->p, "HTTP/%*d.%*d %d", status) != 1)
		return EBADMSG;
	*hdr_end = '\0';
	for (char *l = strstr(rep->p, "\r\n"); l != NULL;
	     l = strstr(l + 2, "\r\n")) {
		if (strncasecmp(l + 2, "Transfer-Encoding:", 18) == 0 &&
		    strstr(l + 20, "chunked") != NULL)
			chunked = true;
	}
	off = (size_t)(hdr_end - rep->p) + 4;
	if (chunked && !unchunk(rep, off))
		return EBADMSG;
	memmove(rep->p, rep->p + off, rep->len - off + 1);
	rep->len -= off;
	return 0;
}

static int call_http(const struct target *t, const char *req, const char *token,
                     struct buf *rep, int *status,
                     const struct timespec *deadline)
{
	struct addrinfo hints, *ai = NULL, *a;
	struct buf out = {0};
	char hdr[1024];
	int fd = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(t->host, t->port, &hints, &ai);
	if (e != 0) {
		fprintf(stderr, "imsdlgctl: %s: %s\n", t->host,
		        gai_strerror(e));
		return EHOSTUNREACH;
	}
	e = ECONNREFUSED;
	for (a = ai; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family,
		            a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		e = connect_to(fd, a->ai_addr, a->ai_addrlen, deadline);
		if (e == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return e;
	snprintf(hdr, sizeof(hdr),
	         "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
	         "Content-Type: application/json\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n",
	         t->url, strchr(t->host, ':') ? "[" : "", t->host,
	         strchr(t->host, ':') ? "]" : "", t->port, strlen(req));
	e = buf_add(&out, hdr, strlen(hdr));
	if (e == 0 && token != NULL) {
		e = buf_add(&out, "Authorization: Bearer ", 22);
		if (e == 0)
			e = buf_add(&out, token, strlen(token));
		if (e == 0)
			e = buf_add(&out, "\r\n", 2);
	}
	if (e == 0)
		e = buf_add(&out, "\r\n", 2);
	if (e == 0)
		e = buf_add(&out, req, strlen(req));
	if (e == 0)
		e = send_all(fd, out.p, out.len, deadline);
	if (e == 0)
		e = recv_all(fd, rep, deadline);
	close(fd);
	free(out.p);
	if (e == 0)
		e = http_body(rep, status);
	return e;
}

/* ----------------------------------------------------------- the request */

static json_t *typed_param(const char *s)
{
	char *end;
	long long v;

	if (strncmp(s, "s:", 2) == 0)
		return json_string(s + 2);
	if (strncmp(s, "i:", 2) == 0) {
		s += 2;
		errno = 0;
		v = strtoll(s, &end, 10);
		if (*s == '\0' || *end != '\0' || errno != 0)
			return NULL;
		return json_integer(v);
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s != '\0' && *end == '\0' && errno == 0 &&
	    ((*s >= '0' && *s <= '9') || (*s == '-' && s[1] != '\0')))
		return json_integer(v);
	return json_string(s);
}

static char *read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t n;

	if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
		if (f)
			fclose(f);
		return NULL;
	}
	fclose(f);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
	                 line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	return strdup(line);
}

/* Prints the result; top-level strings bare, as kamcmd does. */
static void print_result(json_t *result, bool list)
{
	char *s;

	if (list && json_is_array(result)) {
		for (size_t i = 0; i < json_array_size(result); i++) {
			json_t *v = json_array_get(result, i);

			if (json_is_string(v))
				puts(json_string_value(v));
		}
		return;
	}
	if (json_is_string(result)) {
		puts(json_string_value(result));
		return;
	}
	s = json_dumps(result, JSON_INDENT(4) | JSON_ENCODE_ANY);
	if (s != NULL)
		puts(s);
	free(s);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *token_file = NULL, *method;
	bool raw = false, list = false;
	double timeout = 10;
	char *token = NULL, *req_text, defpath[300];
	struct target t;
	struct timespec deadline;
	struct buf rep = {0};
	json_t *req, *params, *reply, *err;
	json_error_t jerr;
	int opt, e, status = 200, rc;

	while ((opt = getopt(argc, argv, "+s:T:rt:lVh")) != -1) {
		switch (opt) {
		case 's':
			addr = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'r':
			raw = true;
			break;
		case 't':
			timeout = atof(optarg);
			if (timeout <= 0)
				return die("-t %s: expected seconds", optarg);
			break;
		case 'l':
			list = true;
			break;
		case 'V':
			printf("imsdlgctl " IMSDLG_VERSION "\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_FAILURE_IO;
		}
	}
	if (list ? optind != argc : optind >= argc) {
		usage(stderr);
		return EXIT_FAILURE_IO;
	}
	method = list ? "system.listMethods" : argv[optind++];

	if (addr == NULL) {
		if (mgmt_default_socket(defpath, sizeof(defpath), false) ==
		    ENAMETOOLONG)
			return die("default socket path too long");
		if (snprintf(t.path, sizeof(t.path), "%s", defpath) >=
		    (int)sizeof(t.path))
			return die("default socket path too long");
		t.http = false;
	} else if (parse_target(&t, addr) != 0) {
		return die("-s %s: expected unix:PATH or http://HOST:PORT",
		           addr);
	}
	if (token_file != NULL) {
		token = read_token(token_file);
		if (token == NULL)
			return die("%s: cannot read the token", token_file);
	} else if (getenv("IMSDLG_RPC_TOKEN") != NULL) {
		token = strdup(getenv("IMSDLG_RPC_TOKEN"));
	}

	params = json_array();
	for (int i = optind; i < argc; i++) {
		json_t *p = typed_param(argv[i]);

		if (p == NULL) {
			json_decref(params);
			free(token);
			return die("%s: not an integer", argv[i]);
		}
		json_array_append_new(params, p);
	}
	req = json_pack("{s:s, s:s, s:o, s:i}", "jsonrpc", "2.0", "method",
	                method, "params", params, "id", 1);
	req_text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (req_text == NULL) {
		free(token);
		return die("out of memory");
	}

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)timeout;
	deadline.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	e = t.http ? call_http(&t, req_text, token, &rep, &status, &deadline)
	           : call_unix(&t, req_text, &rep, &deadline);
	free(req_text);
	free(token);
	if (e != 0) {
		free(rep.p);
		if (t.http)
			return die("http://%s:%s%s: %s", t.host, t.port, t.url,
			           strerror(e));
		return die("unix:%s: %s%s", t.path, strerror(e),
		           addr == NULL && (e == ENOENT || e == ECONNREFUSED)
		                   ? " (is imsdlgd running?)"
		                   : "");
	}
	if (raw && rep.len > 0)
		printf("%s%s", rep.p, rep.p[rep.len - 1] == '\n' ? "" : "\n");
	reply = rep.len ? json_loadb(rep.p, rep.len, 0, &jerr) : NULL;
	free(rep.p);
	if (reply == NULL)
		return die(status != 200 ? "HTTP status %d without a JSON-RPC "
		                           "reply"
		                         : "malformed reply (status %d)",
		           status);
	err = json_object_get(reply, "error");
	if (err != NULL) {
		json_t *code = json_object_get(err, "code");
		json_t *msg = json_object_get(err, "message");

		/* kamcmd's format */
		fprintf(stderr, "error: %lld - %s\n",
		        (long long)json_integer_value(code),
		        json_is_string(msg) ? json_string_value(msg) : "");
		rc = EXIT_REPLY_ERROR;
	} else if (json_object_get(reply, "result") == NULL) {
		fprintf(stderr, "imsdlgctl: reply without result\n");
		rc = EXIT_FAILURE_IO;
	} else {
		if (!raw)
			print_result(json_object_get(reply, "result"), list);
		rc = 0;
	}
	json_decref(reply);
	return rc;
}

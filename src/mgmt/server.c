/*
 * The management server: one thread with its own libuv loop serving every
 * endpoint, so that handlers run one at a time, never on a worker.
 *
 *   UNIX stream sockets (uv_pipe): requests are JSON texts one after the
 *   other, normally one per line; each reply is one line. A request may
 *   also span lines, and a client may send one request without a newline
 *   and half-close: it gets its reply and the connection closes. Requests
 *   are framed by scanning brackets outside strings; a line that leaves a
 *   (short) request open and can never be completed gets its parse error
 *   at once.
 *
 *   HTTP (libmicrohttpd in "external" epoll mode): MHD's epoll descriptor
 *   is polled by the loop and MHD_run() is called when it is readable or
 *   when MHD's own timeout expires. POST /RPC (or /) carries JSON-RPC; GET
 *   serves the registered pages (/metrics).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mgmt/mgmt_int.h"

#define SOCK_NAME       "imsdlg_rpc.sock"
#define SOCK_MODE       0660
#define HTTP_TIMEOUT_S  30u
#define WRITE_QUEUE_MAX (1024 * 1024) /* unread replies before we give up */
#define READ_CHUNK      16384
#define RESYNC_MAX      4096          /* see conn_scan */
#define DRAIN_MAX       (1024 * 1024) /* oversized HTTP body read and dropped */

/* ------------------------------------------------------------- specs */

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int mgmt_spec_parse(struct mgmt_spec *out, const char *s, const char **why)
{
	struct mgmt_spec sp;
	struct slice host;
	const char *r, *port = NULL;
	uint32_t p = MGMT_DEFAULT_HTTP_PORT;

	memset(&sp, 0, sizeof(sp));
	if (strncmp(s, "unix:", 5) == 0) {
		sp.kind = MGMT_EP_UNIX;
		if (strlen(s + 5) >= sizeof(sp.path)) {
			*why = "socket path longer than 107 bytes";
			return EINVAL;
		}
		snprintf(sp.path, sizeof(sp.path), "%s", s + 5);
		*out = sp;
		return 0;
	}
	if (strncmp(s, "http:", 5) != 0) {
		*why = "expected http:[ADDR:]PORT or unix:PATH";
		return EINVAL;
	}
	sp.kind = MGMT_EP_HTTP;
	r = s + 5;
	if (*r == '[') {
		const char *close = strchr(r, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			*why = "expected http:[IPV6]:PORT";
			return EINVAL;
		}
		host = slice_make(r + 1, (size_t)(close - r - 1));
		if (close[1] == ':')
			port = close + 2;
	} else if (all_digits(r)) {
		/* Only a port: loopback, never every interface. */
		host = SLICE_LIT("127.0.0.1");
		port = r;
	} else {
		const char *colon = strrchr(r, ':');

		if (colon != NULL && memchr(r, ':', (size_t)(colon - r))) {
			*why = "an IPv6 address needs brackets: "
			       "http:[::1]:5080";
			return EINVAL;
		}
		host = colon ? slice_make(r, (size_t)(colon - r))
		             : slice_cstr(r);
		port = colon ? colon + 1 : NULL;
	}
	if (port != NULL && slice_to_u32(&p, slice_cstr(port), 65535) != 0) {
		*why = "the port must be a number up to 65535";
		return EINVAL;
	}
	if (slice_eq_cstr_nocase(host, "localhost"))
		host = SLICE_LIT("127.0.0.1");
	if (net_addr_make(&sp.addr, host, (uint16_t)p) != 0) {
		*why = "expected a numeric IPv4 or IPv6 address";
		return EINVAL;
	}
	*out = sp;
	return 0;
}

const char *mgmt_listen_check(const struct cfg_value *v)
{
	struct mgmt_spec sp;
	const char *why = NULL;

	if (v->s == NULL || mgmt_spec_parse(&sp, v->s, &why) != 0)
		return why ? why : "expected http:[ADDR:]PORT or unix:PATH";
	return NULL;
}

int mgmt_config_from_cfg(struct mgmt_config *out, const struct cfg *c,
                         char *err, size_t errsize)
{
	struct mgmt_config mc;
	const struct cfg_entry *e;

	memset(&mc, 0, sizeof(mc));
	for (e = cfg_next(c, NULL, NULL, "rpc_listen"); e;
	     e = cfg_next(c, e, NULL, "rpc_listen")) {
		if (mc.nlisten == MGMT_MAX_LISTEN) {
			cfg_entry_error(e, err, errsize,
			                "more than %d rpc_listen entries",
			                MGMT_MAX_LISTEN);
			return EINVAL;
		}
		mc.listen[mc.nlisten++] = e->v.s;
	}
	mc.token_file = cfg_str(c, NULL, "rpc_token", NULL);
	mc.pretty = cfg_int(c, "jsonrpcs", "pretty_format", 0) != 0;
	/* Ours first; Kamailio's xhttp_prom knob so that its configuration
	 * keeps its metric names. */
	mc.metrics_prefix =
	        cfg_str(c, NULL, "metrics_prefix",
	                cfg_str(c, "xhttp_prom", "xhttp_prom_beginning", NULL));
	*out = mc;
	return 0;
}

/* ------------------------------------------------------ default socket */

static bool dir_writable(const char *dir)
{
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	       access(dir, W_OK | X_OK) == 0;
}

/* /tmp/imsdlg-<uid> is ours only if we own it and it is no symlink:
 * anyone may have made it first. */
static bool private_dir(const char *dir, bool create)
{
	struct stat st;

	if (lstat(dir, &st) != 0) {
		if (errno != ENOENT)
			return false;
		if (!create)
			return true;
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return false;
		if (lstat(dir, &st) != 0)
			return false;
	}
	return S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 0022) == 0;
}

static int put_path(char *buf, size_t size, const char *dir)
{
	int n = snprintf(buf, size, "%s/%s", dir, SOCK_NAME);

	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}

int mgmt_default_socket(char *buf, size_t size, bool create)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dirs[3][256];
	unsigned n = 0, tmp;
	struct stat st;

	snprintf(dirs[n++], sizeof(dirs[0]), "/run/imsdlg");
	if (xdg != NULL && xdg[0] == '/' && strlen(xdg) < sizeof(dirs[0]))
		snprintf(dirs[n++], sizeof(dirs[0]), "%s", xdg);
	else
		xdg = NULL;
	tmp = n;
	snprintf(dirs[n++], sizeof(dirs[0]), "/tmp/imsdlg-%u",
	         (unsigned)geteuid());

	if (!create) {
		/* The daemon may run as another user, who chose another
		 * directory: whichever socket exists is the one. */
		for (unsigned i = 0; i < n; i++) {
			char p[300];

			if (put_path(p, sizeof(p), dirs[i]) == 0 &&
			    stat(p, &st) == 0 && S_ISSOCK(st.st_mode))
				return put_path(buf, size, dirs[i]);
		}
	}
	if (dir_writable(dirs[0]) ||
	    (create ? mkdir(dirs[0], 0755) == 0
	            : access("/run", W_OK | X_OK) == 0))
		return put_path(buf, size, dirs[0]);
	if (xdg != NULL && dir_writable(xdg))
		return put_path(buf, size, xdg);
	if (!private_dir(dirs[tmp], create)) {
		put_path(buf, size, dirs[tmp]);
		return EPERM;
	}
	return put_path(buf, size, dirs[tmp]);
}

/* ------------------------------------------------------- UNIX clients */

struct uconn {
	uv_pipe_t pipe; /* data points back here */
	struct mgmt *m;
	struct uconn *next, *prev;
	char *buf;
	size_t len, cap;
	/* framing: bytes [start, scan) belong to the request in progress */
	size_t scan, start;
	bool in_req;
	bool scalar; /* not an object or array: ends at a newline */
	bool in_str, esc;
	int depth;
	bool ending; /* reading stopped; closes once replies are out */
	uv_shutdown_t sreq;
};

struct uwrite {
	uv_write_t req;
	uv_buf_t b[2];
	char *body;
};

static size_t max_request(const struct mgmt *m)
{
	return m->cfg.max_request ? m->cfg.max_request : MGMT_MAX_REQUEST;
}

static void conn_closed(uv_handle_t *h)
{
	struct uconn *c = h->data;
	struct mgmt *m = c->m;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	m->nconns--;
	free(c->buf);
	free(c);
}

static void conn_close(struct uconn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	conn_close(req->handle->data);
}

/* Stops reading; the connection closes when what was queued is written. */
static void conn_end(struct uconn *c)
{
	if (c->ending)
		return;
	c->ending = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_shutdown) != 0)
		conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
	struct uwrite *w = (struct uwrite *)req;
	struct uconn *c = req->handle->data;

	free(w->body);
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		conn_close(c);
}

/* Sends body (taken) and a newline. */
static void conn_write(struct uconn *c, char *body, size_t len)
{
	struct uwrite *w;

	/* A client that sends without reading would grow this forever. */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) >
	    WRITE_QUEUE_MAX) {
		free(body);
		conn_close(c);
		return;
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		free(body);
		conn_close(c);
		return;
	}
	w->body = body;
	w->b[0] = uv_buf_init(body, (unsigned)len);
	w->b[1] = uv_buf_init("\n", 1);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, w->b, 2, on_written)) {
		free(body);
		free(w);
		conn_close(c);
	}
}

/* The rest of an oversized request cannot be told from the next one: the
 * client gets the error and the connection ends. */
static void conn_too_large(struct uconn *c)
{
	struct jrpc_reply r;

	jrpc_error_reply(&r, 413, RPC_INVALID_REQUEST,
	                 "Invalid Request: larger than %zu bytes",
	                 max_request(c->m));
	if (r.body != NULL)
		conn_write(c, r.body, r.len);
	conn_end(c);
}

static void conn_request(struct uconn *c, size_t from, size_t to)
{
	struct jrpc_reply r;

	if (to - from > max_request(c->m)) {
		conn_too_large(c);
		return;
	}
	jrpc_process(c->m, c->buf + from, to - from, false, &r);
	if (r.body != NULL)
		conn_write(c, r.body, r.len);
}

/* Ending, or closed because a write failed: nothing more to read. */
static bool conn_done(struct uconn *c)
{
	return c->ending || uv_is_closing((uv_handle_t *)&c->pipe);
}

/* Frames the requests in the bytes received since the last call. */
static void conn_scan(struct uconn *c)
{
	size_t i, drop;

	for (i = c->scan; i < c->len && !conn_done(c); i++) {
		char ch = c->buf[i];

		if (!c->in_req) {
			if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
				continue;
			c->in_req = true;
			c->start = i;
			c->scalar = ch != '{' && ch != '[';
			c->depth = c->scalar ? 0 : 1;
			c->in_str = c->esc = false;
			continue;
		}
		/* A request left open at the end of a line that can never be
		 * completed (a syntax error, not a missing bracket) is
		 * answered there rather than swallowing the lines after it.
		 * Tried only while the request is short, which bounds the
		 * parsing a many-line request costs. */
		if (!c->scalar && ch == '\n' && i - c->start < RESYNC_MAX &&
		    jrpc_broken(c->buf + c->start, i + 1 - c->start)) {
			c->in_req = false;
			conn_request(c, c->start, i + 1);
			continue;
		}
		if (c->scalar) {
			if (ch == '\n') {
				c->in_req = false;
				conn_request(c, c->start, i);
			}
			continue;
		}
		if (c->in_str) {
			if (c->esc)
				c->esc = false;
			else if (ch == '\\')
				c->esc = true;
			else if (ch == '"')
				c->in_str = false;
			continue;
		}
		if (ch == '"') {
			c->in_str = true;
		} else if (ch == '{' || ch == '[') {
			c->depth++;
		} else if ((ch == '}' || ch == ']') && --c->depth == 0) {
			c->in_req = false;
			conn_request(c, c->start, i + 1);
		}
	}
	c->scan = i;
	if (conn_done(c))
		return;
	if (c->in_req && c->len - c->start > max_request(c->m)) {
		conn_too_large(c);
		return;
	}
	drop = c->in_req ? c->start : c->len;
	memmove(c->buf, c->buf + drop, c->len - drop);
	c->len -= drop;
	c->scan -= drop;
	if (c->in_req)
		c->start = 0;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct uconn *c = h->data;

	if (c->cap - c->len < READ_CHUNK) {
		size_t cap = c->cap ? c->cap * 2 : READ_CHUNK;
		char *p;

		while (cap - c->len < READ_CHUNK)
			cap *= 2;
		p = realloc(c->buf, cap);
		if (p == NULL) {
			*b = uv_buf_init(NULL, 0); /* UV_ENOBUFS follows */
			return;
		}
		c->buf = p;
		c->cap = cap;
	}
	*b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct uconn *c = s->data;

	if (nread > 0) {
		c->len += (size_t)nread;
		conn_scan(c);
	} else if (nread == UV_EOF) {
		/* Half-closed: what is left is the last request. */
		if (c->in_req && !conn_done(c)) {
			c->in_req = false;
			conn_request(c, c->start, c->len);
		}
		conn_end(c);
	} else if (nread < 0) {
		conn_close(c);
	}
}

static void on_unix_conn(uv_stream_t *server, int status)
{
	struct mgmt_ep *ep = server->data;
	struct mgmt *m = ep->m;
	struct uconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->m = m;
	uv_pipe_init(&m->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = m->conns;
	if (m->conns != NULL)
		m->conns->prev = c;
	m->conns = c;
	m->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
	    m->nconns > MGMT_MAX_CONNS ||
	    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read))
		conn_close(c);
}

/* Whether a server answers at path (else the file is a leftover). */
static bool socket_live(const char *path)
{
	struct sockaddr_un sa;
	int fd, r, e;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	close(fd);
	return r == 0 || (e != ECONNREFUSED && e != ENOENT);
}

static int unix_bind(struct mgmt *m, struct mgmt_ep *ep, bool is_default,
                     char *err, size_t errsize)
{
	struct stat st;
	char path[sizeof(ep->path)];
	int e;

	/* Through a copy: name and path are two fields of *m, which GCC's
	 * -Wrestrict (at -O2) cannot tell apart. */
	memcpy(path, ep->path, sizeof(path));
	snprintf(ep->name, sizeof(ep->name), "unix:%s", path);
	if (lstat(ep->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsize,
			         "rpc_listen=%s: exists and is not a socket",
			         ep->name);
			return EEXIST;
		}
		if (socket_live(ep->path)) {
			if (is_default)
				return EALREADY;
			snprintf(err, errsize,
			         "rpc_listen=%s: another server listens there",
			         ep->name);
			return EADDRINUSE;
		}
		unlink(ep->path);
	}
	e = uv_pipe_init(&m->loop, &ep->listener, 0);
	if (e == 0) {
		ep->listener_init = true;
		ep->listener.data = ep;
		e = uv_pipe_bind(&ep->listener, ep->path);
	}
	if (e == 0) {
		ep->bound = true;
		if (stat(ep->path, &st) == 0) {
			ep->dev = st.st_dev;
			ep->ino = st.st_ino;
		}
		/* Before listen(): until then nobody can connect. */
		if (chmod(ep->path, SOCK_MODE) != 0)
			e = -errno;
	}
	if (e == 0)
		e = uv_listen((uv_stream_t *)&ep->listener, 16, on_unix_conn);
	if (e != 0) {
		snprintf(err, errsize, "rpc_listen=%s: %s", ep->name,
		         uv_strerror(e));
		return -e;
	}
	return 0;
}

/* ---------------------------------------------------------------- HTTP */

struct hreq {
	char *buf;
	size_t len;
	size_t seen; /* body bytes received, kept or not */
	bool too_big;
};

static void http_rearm(struct mgmt_ep *ep);

static void http_timer_cb(uv_timer_t *t)
{
	struct mgmt_ep *ep = t->data;

	MHD_run(ep->mhd);
	http_rearm(ep);
}

static void http_poll_cb(uv_poll_t *p, int status, int events)
{
	struct mgmt_ep *ep = p->data;

	MHD_run(ep->mhd);
	http_rearm(ep);
}

/* MHD must run again within its timeout (connection timeouts, data it
 * already holds) even when nothing is readable. */
static void http_rearm(struct mgmt_ep *ep)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(ep->mhd, &ms) == MHD_YES)
		uv_timer_start(&ep->timer, http_timer_cb, ms, 0);
	else
		uv_timer_stop(&ep->timer);
}

static bool auth_ok(const struct mgmt *m, struct MHD_Connection *conn)
{
	const char *h;
	size_t n;
	unsigned char diff = 0;

	if (m->token_len == 0)
		return true;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	for (h += 7; *h == ' '; h++)
		;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n != m->token_len)
		return false;
	/* Every byte compared, so timing says nothing about the prefix. */
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(h[i] ^ m->token[i]);
	return diff == 0;
}

static enum MHD_Result http_send(struct MHD_Connection *conn,
                                 struct jrpc_reply *r, const char *ctype,
                                 const char *allow, bool challenge)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->body != NULL)
		resp = MHD_create_response_from_buffer(r->len, r->body,
		                                       MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, NULL,
		                                       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		free(r->body);
		return MHD_NO;
	}
	if (r->body != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        ctype);
	if (allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (challenge)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"imsdlg\"");
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const char json_type[] = "application/json";

/* The first call for a request: headers are known, the body is not. */
static enum MHD_Result http_begin(struct mgmt_ep *ep,
                                  struct MHD_Connection *conn, const char *url,
                                  const char *method, void **con_cls)
{
	struct mgmt *m = ep->m;
	bool rpc = strcmp(url, "/RPC") == 0 || strcmp(url, "/") == 0;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	const struct mgmt_page *page;
	const char *cl;
	unsigned long long size;
	struct jrpc_reply r;
	struct hreq *h;

	if (!auth_ok(m, conn)) {
		jrpc_error_reply(&r, 401, 401, "Unauthorized");
		return http_send(conn, &r, json_type, NULL, true);
	}
	if (get && (page = mgmt_page_lookup(url)) != NULL) {
		jrpc_page(m, page, &r);
		return http_send(conn, &r,
		                 r.failed || page->content_type == NULL
		                         ? "text/plain; charset=utf-8"
		                         : page->content_type,
		                 NULL, false);
	}
	if (!rpc) {
		jrpc_error_reply(&r, 404, 404, "Not Found: %s", url);
		return http_send(conn, &r, json_type, NULL, false);
	}
	if (strcmp(method, "POST") != 0) {
		jrpc_error_reply(&r, 405, 405,
		                 "Method Not Allowed: JSON-RPC takes POST");
		return http_send(conn, &r, json_type, "POST", false);
	}
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
	size = cl ? strtoull(cl, NULL, 10) : 0;
	/* Answering before the body is read makes MHD close with bytes
	 * unread, and the client may see a reset instead of the 413: a
	 * body of moderate size is read and dropped first. */
	if (size > DRAIN_MAX) {
		jrpc_error_reply(&r, 413, RPC_INVALID_REQUEST,
		                 "Invalid Request: larger than %zu bytes",
		                 max_request(m));
		return http_send(conn, &r, json_type, NULL, false);
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return MHD_NO;
	h->too_big = size > max_request(m);
	*con_cls = h;
	return MHD_YES;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
	struct mgmt_ep *ep = cls;
	struct hreq *h = *con_cls;
	struct jrpc_reply r;

	if (h == NULL)
		return http_begin(ep, conn, url, method, con_cls);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		/* Dropping costs little, but not forever. */
		h->seen += n;
		if (h->seen > DRAIN_MAX)
			return MHD_NO;
		/* Chunked bodies have no Content-Length to refuse early. */
		if (!h->too_big && h->len + n > max_request(ep->m)) {
			h->too_big = true;
			free(h->buf);
			h->buf = NULL;
		}
		if (!h->too_big) {
			char *p = realloc(h->buf, h->len + n + 1);

			if (p == NULL)
				return MHD_NO;
			memcpy(p + h->len, upload_data, n);
			h->buf = p;
			h->len += n;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (h->too_big)
		jrpc_error_reply(&r, 413, RPC_INVALID_REQUEST,
		                 "Invalid Request: larger than %zu bytes",
		                 max_request(ep->m));
	else
		jrpc_process(ep->m, h->buf ? h->buf : "", h->len,
		             ep->m->cfg.pretty, &r);
	return http_send(conn, &r, json_type, NULL, false);
}

static void on_http_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct hreq *h = *con_cls;

	if (h != NULL) {
		free(h->buf);
		free(h);
		*con_cls = NULL;
	}
}

__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	log_vmsg(LL_INFO, fmt, ap);
}

static bool is_loopback(const union net_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return (ntohl(a->in.sin_addr.s_addr) >> 24) == 127;
	return a->sa.sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&a->in6.sin6_addr);
}

static int http_bind(struct mgmt *m, struct mgmt_ep *ep,
                     const struct mgmt_spec *sp, char *err, size_t errsize)
{
	union net_sockaddr a = sp->addr;
	socklen_t alen =
	        a.sa.sa_family == AF_INET6 ? sizeof(a.in6) : sizeof(a.in);
	const union MHD_DaemonInfo *info;
	char host[INET6_ADDRSTRLEN];
	int fd, one = 1, e = 0;

	net_addr_host(host, sizeof(host), &a);
	snprintf(ep->name, sizeof(ep->name),
	         a.sa.sa_family == AF_INET6 ? "http:[%s]:%u" : "http:%s:%u",
	         host, (unsigned)net_addr_port(&a));
	fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	            0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (a.sa.sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, &a.sa, alen) || listen(fd, 64) ||
	    getsockname(fd, &a.sa, &alen))
		e = errno;
	if (e != 0) {
		snprintf(err, errsize, "rpc_listen=%s: %s", ep->name,
		         strerror(e));
		if (fd >= 0)
			close(fd);
		return e;
	}
	/* The port the kernel chose, for port 0. */
	snprintf(ep->name, sizeof(ep->name),
	         a.sa.sa_family == AF_INET6 ? "http:[%s]:%u" : "http:%s:%u",
	         host, (unsigned)net_addr_port(&a));
	/* The logger first, or MHD says so on stderr. */
	ep->mhd = MHD_start_daemon(
	        MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                (a.sa.sa_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	        0, NULL, NULL, on_http, ep, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	        NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
	        on_http_done, ep, MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MGMT_MAX_CONNS,
	        MHD_OPTION_END);
	if (ep->mhd == NULL) {
		close(fd);
		snprintf(err, errsize, "rpc_listen=%s: cannot start HTTP",
		         ep->name);
		return EIO;
	}
	info = MHD_get_daemon_info(ep->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	e = info ? uv_poll_init(&m->loop, &ep->poll, info->epoll_fd) : UV_EIO;
	if (e == 0) {
		ep->poll_init = true;
		ep->poll.data = ep;
		e = uv_timer_init(&m->loop, &ep->timer);
	}
	if (e == 0) {
		ep->timer_init = true;
		ep->timer.data = ep;
		e = uv_poll_start(&ep->poll, UV_READABLE, http_poll_cb);
	}
	if (e != 0) {
		snprintf(err, errsize, "rpc_listen=%s: %s", ep->name,
		         uv_strerror(e));
		return -e;
	}
	http_rearm(ep);
	if (!is_loopback(&a))
		LOG_WARN("rpc: HTTP on %s is reachable from other hosts%s",
		         ep->name, m->token_len ? "" : " and has no rpc_token");
	return 0;
}

/* -------------------------------------------------------------- server */

static int read_token(struct mgmt *m, const char *path, char *err,
                      size_t errsize)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *t = m->token;
	size_t n = 0, start = 0;
	struct stat st;
	ssize_t r;

	if (fd < 0) {
		snprintf(err, errsize, "rpc_token %s: %s", path,
		         strerror(errno));
		return errno;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
		LOG_WARN("rpc_token %s is readable by every user", path);
	while (n < sizeof(m->token) &&
	       (r = read(fd, t + n, sizeof(m->token) - n)) > 0)
		n += (size_t)r;
	close(fd);
	if (n == sizeof(m->token)) {
		snprintf(err, errsize, "rpc_token %s: longer than %d bytes",
		         path, MGMT_TOKEN_MAX - 1);
		return EINVAL;
	}
	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r' ||
	                 t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	while (start < n && (t[start] == ' ' || t[start] == '\t'))
		start++;
	memmove(t, t + start, n - start);
	n -= start;
	t[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)t[i] <= ' ' || t[i] == 0x7f) {
			snprintf(err, errsize,
			         "rpc_token %s: the token must be one line "
			         "without blanks",
			         path);
			return EINVAL;
		}
	}
	if (n == 0) {
		snprintf(err, errsize, "rpc_token %s: empty", path);
		return EINVAL;
	}
	m->token_len = n;
	return 0;
}

static void close_all(struct mgmt *m)
{
	struct uconn *c, *next;

	for (c = m->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c);
	}
	for (unsigned i = 0; i < m->neps; i++) {
		struct mgmt_ep *ep = &m->eps[i];

		if (ep->listener_init &&
		    !uv_is_closing((uv_handle_t *)&ep->listener))
			uv_close((uv_handle_t *)&ep->listener, NULL);
		if (ep->poll_init && !uv_is_closing((uv_handle_t *)&ep->poll))
			uv_close((uv_handle_t *)&ep->poll, NULL);
		if (ep->timer_init && !uv_is_closing((uv_handle_t *)&ep->timer))
			uv_close((uv_handle_t *)&ep->timer, NULL);
	}
	if (m->wake_init && !uv_is_closing((uv_handle_t *)&m->wake))
		uv_close((uv_handle_t *)&m->wake, NULL);
}

static void on_wake(uv_async_t *a)
{
	close_all(a->data);
}

static void *mgmt_main(void *arg)
{
	struct mgmt *m = arg;

	uv_run(&m->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int add_endpoint(struct mgmt *m, const char *spec, char *err,
                        size_t errsize)
{
	struct mgmt_ep *ep = &m->eps[m->neps];
	struct mgmt_spec sp;
	const char *why = NULL;
	bool is_default;
	int e;

	if (mgmt_spec_parse(&sp, spec, &why) != 0) {
		snprintf(err, errsize, "rpc_listen=%s: %s", spec, why);
		return EINVAL;
	}
	memset(ep, 0, sizeof(*ep));
	ep->m = m;
	ep->kind = sp.kind;
	m->neps++;
	if (sp.kind == MGMT_EP_HTTP)
		return http_bind(m, ep, &sp, err, errsize);

	is_default = sp.path[0] == '\0';
	if (is_default) {
		e = mgmt_default_socket(ep->path, sizeof(ep->path), true);
		if (e != 0) {
			snprintf(err, errsize, "rpc socket %s: %s", ep->path,
			         e == EPERM ? "directory not private to this "
			                      "user"
			                    : strerror(e));
			return e;
		}
	} else {
		snprintf(ep->path, sizeof(ep->path), "%s", sp.path);
	}
	e = unix_bind(m, ep, is_default, err, errsize);
	if (e == EALREADY) {
		/* Another daemon serves the default socket (tests run
		 * several): leave it to it rather than steal it. */
		LOG_WARN("rpc: %s is served by another process; not "
		         "listening there",
		         ep->name);
		m->neps--;
		return 0;
	}
	return e;
}

int mgmt_start(struct mgmt **out, const struct mgmt_config *cfg, char *err,
               size_t errsize)
{
	struct mgmt *m;
	sigset_t block, old;
	int e = 0;

	if (errsize > 0)
		err[0] = '\0';
	if (cfg->nlisten > MGMT_MAX_LISTEN) {
		snprintf(err, errsize, "more than %d rpc_listen entries",
		         MGMT_MAX_LISTEN);
		return EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errsize, "rpc: out of memory");
		return ENOMEM;
	}
	m->cfg = *cfg;
	memset(m->cfg.listen, 0, sizeof(m->cfg.listen)); /* borrowed */
	m->cfg.metrics_prefix = NULL;                    /* copied: */
	snprintf(m->metrics_prefix, sizeof(m->metrics_prefix), "%s",
	         cfg->metrics_prefix ? cfg->metrics_prefix
	                             : MGMT_METRICS_PREFIX);
	m->started = time(NULL);
	if (stats_server_init(m) != 0) {
		snprintf(err, errsize, "rpc: out of memory");
		e = ENOMEM;
		goto fail;
	}
	m->sync = shard_sync_new();
	if (m->sync == NULL) {
		snprintf(err, errsize, "rpc: out of memory");
		e = ENOMEM;
		goto fail;
	}
	if (cfg->token_file != NULL &&
	    (e = read_token(m, cfg->token_file, err, errsize)) != 0)
		goto fail;
	mgmt_register_builtins();

	e = -uv_loop_init(&m->loop);
	if (e == 0) {
		m->loop_init = true;
		e = -uv_async_init(&m->loop, &m->wake, on_wake);
	}
	if (e != 0) {
		snprintf(err, errsize, "rpc: %s", strerror(e));
		goto fail;
	}
	m->wake_init = true;
	m->wake.data = m;

	for (unsigned i = 0; i < cfg->nlisten && e == 0; i++)
		e = add_endpoint(m, cfg->listen[i], err, errsize);
	if (cfg->nlisten == 0)
		e = add_endpoint(m, "unix:", err, errsize);
	if (e != 0)
		goto fail;

	/* The thread never takes the process's signals (the signal thread
	 * does), and a client gone away is EPIPE, not SIGPIPE. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	e = pthread_create(&m->thread, NULL, mgmt_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errsize, "rpc: thread: %s", strerror(e));
		goto fail;
	}
	m->thread_started = true;
	for (unsigned i = 0; i < m->neps; i++)
		LOG_NOTICE("rpc: listening on %s", m->eps[i].name);
	*out = m;
	return 0;
fail:
	mgmt_stop(m);
	return e;
}

unsigned mgmt_endpoints(const struct mgmt *m)
{
	return m->neps;
}

const char *mgmt_endpoint(const struct mgmt *m, unsigned i)
{
	return i < m->neps ? m->eps[i].name : NULL;
}

void mgmt_stop(struct mgmt *m)
{
	if (m == NULL)
		return;
	if (m->sync != NULL)
		shard_sync_cancel(m->sync);
	if (m->thread_started) {
		uv_async_send(&m->wake);
		pthread_join(m->thread, NULL);
	} else if (m->loop_init) {
		close_all(m);
		uv_run(&m->loop, UV_RUN_DEFAULT);
	}
	for (unsigned i = 0; i < m->neps; i++) {
		struct mgmt_ep *ep = &m->eps[i];
		struct stat st;

		if (ep->mhd != NULL)
			MHD_stop_daemon(ep->mhd);
		/* Only our own file: a newer daemon may have replaced it. */
		if (ep->bound && stat(ep->path, &st) == 0 &&
		    st.st_dev == ep->dev && st.st_ino == ep->ino)
			unlink(ep->path);
	}
	if (m->loop_init && uv_loop_close(&m->loop) != 0)
		LOG_AT(LL_BUG, "rpc: loop closed with handles open");
	shard_sync_unref(m->sync);
	stats_server_fini(m);
	free(m);
}

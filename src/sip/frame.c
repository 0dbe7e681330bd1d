/*
 * TCP stream framing (RFC 3261 §18.3): where does the next message, or
 * keep-alive (RFC 5626 §3.5.1), end in the bytes received so far.
 *
 * The function is stateless: the caller keeps the unconsumed bytes and calls
 * again when more arrive, so each call rescans the header section. The scan
 * never looks past max_size bytes, which bounds the cost of a peer trickling
 * a message one byte at a time.
 */
#include "sip/sip.h"

#include <errno.h>
#include <string.h>

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *p, size_t len, const char *s)
{
	size_t i;

	for (i = 0; i < len && s[i] != '\0'; i++)
		if (lower(p[i]) != s[i])
			return false;
	return i == len && s[i] == '\0';
}

/*
 * A start line is a request line ending in SIP-Version or a status line
 * starting with it (RFC 3261 §7.1, §7.2); either way it contains "SIP/"
 * (the ABNF literal is case-insensitive). Checking this much lets a peer
 * speaking another protocol (a TLS ClientHello, HTTP) be dropped at once
 * instead of after max_size bytes; the parser checks the rest.
 */
static bool looks_like_start_line(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i + 4 <= len; i++)
		if (eq_nocase(p + i, 4, "sip/"))
			return true;
	return false;
}

/* Content-Length seen so far in the header section. */
struct clen {
	bool seen;
	uint64_t value; /* saturates at UINT64_MAX */
};

/*
 * Decodes the value of one Content-Length header, p[0..len) being
 * everything after the colon up to the end of the (possibly folded) line:
 * LWS, 1*DIGIT, LWS (RFC 3261 §20.14, §25.1).
 */
static int clen_add(struct clen *cl, const char *p, size_t len,
                    const char **why)
{
	size_t i = 0;
	uint64_t v = 0;
	bool digits = false;

	while (i < len && (is_wsp(p[i]) || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < len && p[i] == '-') {
		*why = "negative Content-Length";
		return EBADMSG;
	}
	for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
		digits = true;
	}
	while (i < len && (is_wsp(p[i]) || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (!digits || i < len) {
		*why = "non-numeric Content-Length";
		return EBADMSG;
	}
	/* RFC 3261 §7.3.1 allows one Content-Length; repeating the same
	 * value is harmless, different values make the framing ambiguous
	 * (a request smuggling vector). */
	if (cl->seen && cl->value != v) {
		*why = "conflicting Content-Length headers";
		return EBADMSG;
	}
	cl->seen = true;
	cl->value = v;
	return 0;
}

/*
 * Keep-alives at the start of the buffer. RFC 3261 §7.5 also asks stream
 * receivers to ignore CRLFs before a start line: a lone CRLF (or LF) comes
 * out as a PONG to drop, which does both.
 *
 * "\r\n" alone or "\r\n\r" is EAGAIN: the peer may be halfway through a
 * ping, and taking it for a pong would leave the ping unanswered and the
 * flow declared dead (RFC 5626 §4.4.1). A real pong is therefore reported
 * only once the next byte arrives; a caller waiting for one after sending a
 * ping may treat a buffer of exactly "\r\n" as the pong itself.
 */
static int keepalive(struct sip_frame *out, const char *buf, size_t len,
                     const char **why)
{
	if (buf[0] == '\n') {
		out->kind = SIP_FRAME_PONG;
		out->len = 1;
		return 0;
	}
	if (len < 2)
		return EAGAIN;
	if (buf[1] != '\n') {
		*why = "bare CR before the start line";
		return EBADMSG;
	}
	if (len < 3 || (len < 4 && buf[2] == '\r'))
		return EAGAIN;
	if (buf[2] == '\r' && buf[3] == '\n') {
		out->kind = SIP_FRAME_PING;
		out->len = 4;
	} else {
		out->kind = SIP_FRAME_PONG;
		out->len = 2;
	}
	return 0;
}

/* No end of line within the first lim bytes. */
static int no_line_end(size_t len, size_t max_size, const char **why)
{
	if (len >= max_size) {
		*why = "header section larger than the limit";
		return EMSGSIZE;
	}
	return EAGAIN;
}

int sip_frame(struct sip_frame *out, const char *buf, size_t len,
              size_t max_size, const char **why)
{
	/* Never look further than a message may be long. */
	size_t lim = len < max_size ? len : max_size;
	struct clen cl = {false, 0};
	const char *cl_value =
	        NULL; /* value of the Content-Length in progress */
	const char *lf;
	size_t pos, hdr_len;
	int err;

	if (len == 0)
		return EAGAIN;
	if (buf[0] == '\r' || buf[0] == '\n')
		return keepalive(out, buf, len, why);

	/* Lines end with LF, CRLF being the norm (§7.5) and a bare LF
	 * accepted for robustness. */
	lf = memchr(buf, '\n', lim);
	if (lf == NULL)
		return no_line_end(len, max_size, why);
	if (!looks_like_start_line(buf, (size_t)(lf - buf))) {
		*why = "not a SIP start line";
		return EBADMSG;
	}
	pos = (size_t)(lf - buf) + 1;
	for (;;) {
		size_t end, colon;

		lf = memchr(buf + pos, '\n', lim - pos);
		if (lf == NULL)
			return no_line_end(len, max_size, why);
		end = (size_t)(lf - buf);
		/* A line starting with LWS continues the previous header
		 * (§7.3.1); a Content-Length value may span it. */
		if (pos < end && is_wsp(buf[pos])) {
			pos = end + 1;
			continue;
		}
		if (cl_value != NULL) {
			err = clen_add(&cl, cl_value,
			               (size_t)(buf + pos - cl_value), why);
			if (err != 0)
				return err;
			cl_value = NULL;
		}
		if (end == pos || (end == pos + 1 && buf[pos] == '\r')) {
			hdr_len = end + 1;
			break;
		}
		/* field-name, then LWS, then the colon (§7.3.1). Lines
		 * without a colon are left for the parser to reject. */
		for (colon = pos; colon < end && buf[colon] != ':'; colon++)
			;
		if (colon < end) {
			size_t n = colon;

			while (n > pos && is_wsp(buf[n - 1]))
				n--;
			if (eq_nocase(buf + pos, n - pos, "content-length") ||
			    eq_nocase(buf + pos, n - pos, "l"))
				cl_value = buf + colon + 1;
		}
		pos = end + 1;
	}

	if (!cl.seen) {
		*why = "missing Content-Length on a stream";
		return EBADMSG;
	}
	if (cl.value > max_size - hdr_len) {
		*why = "message larger than the limit";
		return EMSGSIZE;
	}
	if (len - hdr_len < cl.value)
		return EAGAIN;
	out->kind = SIP_FRAME_MSG;
	out->len = hdr_len + (size_t)cl.value;
	return 0;
}

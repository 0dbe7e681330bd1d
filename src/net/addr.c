/*
 * Socket addresses and listen specs.
 *
 * Listen addresses are numeric only: resolving a name at start-up would
 * tie the sockets we bind to whatever the resolver said that day, and
 * Kamailio users write "listen=udp:10.0.0.1:5060" anyway. The advertised
 * address (what goes into Via and Record-Route, RFC 3261 §18.2.1, §16.6)
 * may be a name, since the peer resolves it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"

const char *net_proto_name(enum net_proto p)
{
	switch (p) {
	case NET_UDP:
		return "udp";
	case NET_TCP:
		return "tcp";
	}
	return "?";
}

void net_addr_host(char *dst, size_t size, const union net_sockaddr *a)
{
	const void *src = NULL;

	if (size == 0)
		return;
	if (a->sa.sa_family == AF_INET && size >= 16) {
		/* By hand: inet_ntop goes through sprintf, a thousand
		 * instructions, and this runs for every request relayed. */
		const uint8_t *o = (const uint8_t *)&a->in.sin_addr;
		size_t n = 0;
		for (int i = 0; i < 4; i++) {
			if (i)
				dst[n++] = '.';
			n += fmt_u64(dst + n, o[i]);
		}
		dst[n] = '\0';
		return;
	}
	if (a->sa.sa_family == AF_INET)
		src = &a->in.sin_addr;
	else if (a->sa.sa_family == AF_INET6)
		src = &a->in6.sin6_addr;
	if (src == NULL || !inet_ntop(a->sa.sa_family, src, dst, size))
		slice_copy_cstr(dst, size, SLICE_LIT("?"));
}

uint16_t net_addr_port(const union net_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return ntohs(a->in.sin_port);
	if (a->sa.sa_family == AF_INET6)
		return ntohs(a->in6.sin6_port);
	return 0;
}

void net_addr_set_port(union net_sockaddr *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET)
		a->in.sin_port = htons(port);
	else if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons(port);
}

bool net_addr_eq(const union net_sockaddr *a, const union net_sockaddr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_port == b->in.sin_port &&
		       a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
		       memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr,
		              sizeof(a->in6.sin6_addr)) == 0;
	return false;
}

/*
 * A dotted IPv4 address as inet_pton() takes it (four decimal octets of
 * 1 to 3 digits, at most 255, no leading zero), without its copy to a
 * C string; false for anything else, which inet_pton() then judges.
 */
static bool ipv4_parse(struct in_addr *out, struct slice s)
{
	uint32_t addr = 0, octet = 0;
	unsigned digits = 0, dots = 0;

	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned char)s.p[i] - (unsigned)'0';
		if (d < 10) {
			octet = octet * 10 + d;
			if ((digits++ > 0 && octet == d) || octet > 255)
				return false; /* a leading zero, or too big */
		} else if (s.p[i] == '.' && digits > 0 && dots < 3) {
			addr = addr << 8 | octet;
			octet = digits = 0;
			dots++;
		} else {
			return false;
		}
	}
	if (dots != 3 || digits == 0)
		return false;
	out->s_addr = htonl(addr << 8 | octet);
	return true;
}

int net_addr_make(union net_sockaddr *out, struct slice host, uint16_t port)
{
	union net_sockaddr a;
	char txt[INET6_ADDRSTRLEN];

	if (host.len >= 2 && host.p[0] == '[' && host.p[host.len - 1] == ']')
		host = slice_make(host.p + 1, host.len - 2);
	if (host.len == 0 || host.len >= sizeof(txt))
		return EINVAL;
	memset(&a, 0, sizeof(a));
	/* the C string inet_pton() needs only when the usual form is not */
	bool v4 = ipv4_parse(&a.in.sin_addr, host);
	if (!v4) {
		memcpy(txt, host.p, host.len);
		txt[host.len] = '\0';
		v4 = inet_pton(AF_INET, txt, &a.in.sin_addr) == 1;
	}
	if (v4) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons(port);
	} else if (inet_pton(AF_INET6, txt, &a.in6.sin6_addr) == 1) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
	} else {
		return EINVAL;
	}
	*out = a;
	return 0;
}

bool net_addr_is_any(const union net_sockaddr *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->in.sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
	return true;
}

socklen_t net_addr_len(const union net_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

void net_listener_set_name(struct net_listener *l)
{
	snprintf(l->name, sizeof(l->name), "%s:%s:%u", net_proto_name(l->proto),
	         l->host, (unsigned)l->port);
}

/* Canonical header text of a numeric address: IPv6 in brackets, as a
 * hostport needs (RFC 3261 §25.1, RFC 5118 §4.1). */
static void host_text(char *dst, size_t size, const union net_sockaddr *a)
{
	char txt[INET6_ADDRSTRLEN];

	net_addr_host(txt, sizeof(txt), a);
	if (a->sa.sa_family == AF_INET6)
		snprintf(dst, size, "[%s]", txt);
	else
		snprintf(dst, size, "%s", txt);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Next blank-separated word of *s, advancing *s past it. */
static struct slice next_word(const char **s)
{
	const char *p = *s;
	const char *start;

	while (*p != '\0' && is_space(*p))
		p++;
	start = p;
	while (*p != '\0' && !is_space(*p))
		p++;
	*s = p;
	return slice_make(start, (size_t)(p - start));
}

static bool is_hex_only(struct slice s)
{
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static bool is_alpha_only(struct slice s)
{
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return s.len > 0;
}

/*
 * Splits "host[:port]", "[v6]:port", "[v6]" or a bare IPv6 address (more
 * than one colon: no port, as a port there would be ambiguous). *has_port
 * says whether a port was written.
 */
static int split_hostport(struct slice *host, uint32_t *port, bool *has_port,
                          struct slice s, const char **why)
{
	const char *colon;
	size_t ncolons = 0;

	*has_port = false;
	if (s.len == 0) {
		*why = "missing host";
		return EINVAL;
	}
	if (s.p[0] == '[') {
		const char *close = memchr(s.p, ']', s.len);
		size_t rest;

		if (close == NULL) {
			*why = "missing ']' after an IPv6 address";
			return EINVAL;
		}
		*host = slice_make(s.p, (size_t)(close - s.p) + 1);
		rest = s.len - host->len;
		if (rest == 0)
			return 0;
		if (close[1] != ':') {
			*why = "unexpected text after ']'";
			return EINVAL;
		}
		s = slice_make(close + 2, rest - 1);
		goto port;
	}
	for (size_t i = 0; i < s.len; i++)
		ncolons += s.p[i] == ':';
	if (ncolons != 1) {
		*host = s;
		return 0;
	}
	colon = memchr(s.p, ':', s.len);
	*host = slice_make(s.p, (size_t)(colon - s.p));
	s = slice_make(colon + 1, s.len - host->len - 1);
port:
	if (slice_to_u32(port, s, 65535) != 0) {
		*why = "invalid port";
		return EINVAL;
	}
	*has_port = true;
	return 0;
}

/* A host name for the advertised address: letters, digits, '-' and '.'
 * (RFC 3261 §25.1 hostname). */
static bool is_hostname(struct slice s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int parse_proto(enum net_proto *proto, struct slice *rest,
                       const char **why)
{
	const char *colon = memchr(rest->p, ':', rest->len);
	struct slice name;

	*proto = NET_UDP;
	if (colon == NULL)
		return 0;
	name = slice_make(rest->p, (size_t)(colon - rest->p));
	/* "abcd::1" is an address, not a protocol. */
	if (!is_alpha_only(name) || is_hex_only(name))
		return 0;
	if (slice_eq_cstr_nocase(name, "udp")) {
		*proto = NET_UDP;
	} else if (slice_eq_cstr_nocase(name, "tcp")) {
		*proto = NET_TCP;
	} else if (slice_eq_cstr_nocase(name, "tls")) {
		*why = "tls is not supported yet";
		return ENOTSUP;
	} else if (slice_eq_cstr_nocase(name, "sctp")) {
		*why = "sctp is not supported";
		return ENOTSUP;
	} else if (slice_eq_cstr_nocase(name, "ws") ||
	           slice_eq_cstr_nocase(name, "wss")) {
		*why = "websocket is not supported";
		return ENOTSUP;
	} else {
		*why = "unknown protocol (udp or tcp)";
		return EINVAL;
	}
	*rest = slice_make(colon + 1, rest->len - name.len - 1);
	return 0;
}

int net_hostport_parse(struct net_hostport *out, struct slice spec,
                       const char **why)
{
	struct slice rest = spec;
	uint32_t port = 0;
	int err = parse_proto(&out->proto, &rest, why);

	if (err != 0)
		return err;
	out->has_proto = rest.p != spec.p;
	err = split_hostport(&out->host, &port, &out->has_port, rest, why);
	out->port = (uint16_t)port;
	return err;
}

static int parse_advertise(struct net_listener *l, struct slice s,
                           const char **why)
{
	struct slice host;
	uint32_t port;
	bool has_port;
	union net_sockaddr a;
	int err;

	err = split_hostport(&host, &port, &has_port, s, why);
	if (err != 0)
		return err;
	if (net_addr_make(&a, host, 0) == 0) {
		host_text(l->adv_host, sizeof(l->adv_host), &a);
	} else if (is_hostname(host) && host.len < sizeof(l->adv_host)) {
		slice_copy_cstr(l->adv_host, sizeof(l->adv_host), host);
	} else {
		*why = "invalid advertised host";
		return EINVAL;
	}
	if (has_port)
		l->adv_port = (uint16_t)port;
	return 0;
}

int net_listener_parse(struct net_listener *out, const char *spec,
                       uint16_t default_port, const char **why)
{
	struct net_listener l;
	const char *p = spec;
	struct net_hostport hp;
	struct slice word;
	const char *dummy;
	int err;

	if (why == NULL)
		why = &dummy;
	memset(&l, 0, sizeof(l));
	l.fd = -1;
	l.worker_ports_at = -1;
	l.owner = -1;
	word = next_word(&p);
	if (word.len == 0) {
		*why = "empty listen address";
		return EINVAL;
	}
	err = net_hostport_parse(&hp, word, why);
	if (err != 0)
		return err;
	l.proto = hp.proto;
	uint16_t port = hp.has_port ? hp.port : default_port;
	if (net_addr_make(&l.addr, hp.host, port) != 0) {
		*why = "not a numeric IP address (host names are not "
		       "supported here)";
		return EINVAL;
	}
	l.port = port;
	host_text(l.host, sizeof(l.host), &l.addr);
	memcpy(l.adv_host, l.host, sizeof(l.adv_host));
	l.adv_port = l.port;

	/* Options, each at most once, in any order. */
	bool advertise = false;
	while ((word = next_word(&p)).len > 0) {
		bool is_adv = slice_eq_cstr_nocase(word, "advertise");
		if (!is_adv && !slice_eq_cstr_nocase(word, "worker_ports")) {
			*why = "unexpected text (expected 'advertise' or "
			       "'worker_ports')";
			return EINVAL;
		}
		if (is_adv ? advertise : l.worker_ports) {
			*why = is_adv ? "'advertise' given twice"
			              : "'worker_ports' given twice";
			return EINVAL;
		}
		struct slice arg = next_word(&p);
		if (arg.len == 0) {
			*why = is_adv ? "missing address after 'advertise'"
			              : "missing port after 'worker_ports'";
			return EINVAL;
		}
		if (is_adv) {
			advertise = true;
			err = parse_advertise(&l, arg, why);
			if (err != 0)
				return err;
			continue;
		}
		uint32_t base;
		if (l.proto != NET_UDP) {
			*why = "worker_ports is for UDP listeners only";
			return EINVAL;
		}
		if (slice_to_u32(&base, arg, 65535) != 0) {
			*why = "worker_ports needs a port number (0: chosen "
			       "by the system)";
			return EINVAL;
		}
		l.worker_ports = true;
		l.worker_port_base = (uint16_t)base;
	}
	net_listener_set_name(&l);
	*out = l;
	return 0;
}

/*
 * dns: where a SIP URI's host name leads (RFC 3263 §4.2), without blocking
 * the worker that asks.
 *
 * Each worker has its own resolver (c-ares on the worker's libuv loop) and
 * its own cache, so no lock is taken and a slow or dead name server stalls
 * only the requests that wait for it, never the calls around them.
 *
 * A name with a port in its URI is looked up as addresses (A and AAAA);
 * one without a port first as SRV records (_sip._udp.NAME, _sip._tcp.NAME
 * for TCP), in the order of RFC 2782 (priority, then a weighted random
 * draw), and as addresses on port 5060 when it has none. When the URI
 * gives no transport either and try_naptr is set, NAPTR records come
 * first (§4.1): the first one for SIP over UDP or TCP names the transport
 * and the SRV records; without one, UDP.
 *
 * A name's IPv4 addresses come before its IPv6 ones (Kamailio asks AAAA
 * only when A gives nothing). Results are cached for their TTL (the
 * smallest of the records that made them, at most dns_cache_max_ttl); a
 * name that does not exist or has no address is cached for
 * dns_cache_negative_ttl, a lookup that failed (timeout, server failure)
 * for at most 5 s. Concurrent lookups of one name share one query.
 */
#ifndef IMSDLG_DNS_H
#define IMSDLG_DNS_H

#include <uv.h>

#include "core/core.h"
#include "net/net.h"

struct dns_config {
	/* "ADDR[:PORT],..." (IPv6 in brackets); empty: /etc/resolv.conf */
	char servers[256];
	unsigned timeout_ms;     /* per try and server */
	unsigned tries;          /* per server */
	unsigned max_ttl_s;      /* a cached answer is kept at most this */
	unsigned negative_ttl_s; /* a name that does not exist */
	bool try_naptr;          /* NAPTR when the URI names no transport */
	unsigned slow_ms;        /* a lookup this long is slow (0: none) */
};

void dns_config_defaults(struct dns_config *c);
/* 0, or EINVAL with a reason in err when servers does not parse. */
int dns_config_check(const struct dns_config *c, char *err, size_t errsize);

/* One worker's resolver and cache. */
struct dns;

struct dns *dns_new(uv_loop_t *loop, const struct dns_config *cfg, char *err,
                    size_t errsize);
/* Every lookup still running ends without calling back; the loop must run
 * afterwards to close the resolver's handles. */
void dns_free(struct dns *d);

#define DNS_MAX_ADDRS 8

/* Where a name leads, best first, ports set, and over which transport
 * (the one asked for, or the one NAPTR chose). */
struct dns_result {
	enum net_proto proto;
	unsigned n;
	union net_sockaddr addr[DNS_MAX_ADDRS];
};

/* A caller waiting for a lookup. */
struct dns_wait;

/* err: 0 (r holds at least one address), ENOENT (no such name, or none of
 * its records gives an address), ETIMEDOUT (no server answered), EIO (any
 * other failure). r is valid during the call only. */
typedef void dns_done_fn(void *arg, int err, const struct dns_result *r);

/* proto of dns_resolve() when the URI names no transport */
#define DNS_PROTO_ANY (-1)

/*
 * Resolves host (a name: numeric hosts are the caller's) for proto (an
 * enum net_proto, or DNS_PROTO_ANY); port 0 means the URI gave none (SRV
 * first). Returns 0 with *out filled from
 * the cache; ENOENT, ETIMEDOUT or EIO from the cache too; or EINPROGRESS
 * when it has to ask: done(arg, ...) is called later, once, from the loop
 * (never from inside this call), and *wait names the wait until then (for
 * dns_cancel()). done may be NULL: the lookup then only fills the cache,
 * and *wait is left alone. ENAMETOOLONG for a name longer than 253 bytes,
 * ENOMEM.
 */
int dns_resolve(struct dns *d, struct slice host, int proto, uint16_t port,
                struct dns_result *out, dns_done_fn *done, void *arg,
                struct dns_wait **wait);
/* The caller of that wait no longer wants the answer (the lookup goes on
 * and fills the cache). */
void dns_cancel(struct dns_wait *wait);

struct dns_stats {
	uint64_t cache_hits; /* answered from the cache */
	uint64_t lookups;    /* procedures started (one per name asked) */
	uint64_t queries;    /* DNS queries sent (SRV, then addresses) */
	uint64_t failures;   /* lookups that ended without an address */
	uint64_t slow;       /* lookups that took slow_ms or longer */
	uint64_t cache_size; /* entries cached now */
	uint64_t pending;    /* lookups running now */
};

void dns_stats(const struct dns *d, struct dns_stats *out);

#endif

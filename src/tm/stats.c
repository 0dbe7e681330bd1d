/*
 * The statistics of tm, in the groups and names Kamailio users know:
 * "core" (its core counters), "tmx" (the tmx module's transaction
 * statistics) and "sl" (stateless replies). Each group is one X-macro:
 * name, kind, help and the value, expanded into the registry's table and
 * into the function that adds one shard's values. Everything is counted
 * per shard by its worker (struct tm_stats) and summed by the registry.
 */
#include "mgmt/mgmt.h"
#include "tm/tm_int.h"

/* Set once at start-up, before any worker reads: the shard of a worker. */
static struct tm_shard *(*shard_of)(struct worker *w);

#define C STAT_COUNTER
#define G STAT_GAUGE

/* X(id, name, kind, help, value of struct tm_stats *st) */
#define CORE_STATS(X)                                                          \
	X(RCV_REQ, "rcv_requests", C,                                          \
	  "Requests received (retransmissions too), counted by the worker "    \
	  "owning the call",                                                   \
	  st->rcv_requests)                                                    \
	X(RCV_RPL, "rcv_replies", C, "Replies received", st->rcv_replies)      \
	X(FWD_REQ, "fwd_requests", C,                                          \
	  "Requests forwarded: each branch of t_relay() and each stateless "   \
	  "forward (the ACK of a 2xx), retransmissions not counted",           \
	  st->fwd_requests)                                                    \
	X(FWD_RPL, "fwd_replies", C,                                           \
	  "Replies relayed upstream: by their transaction, or by Via when "    \
	  "a 2xx of an INVITE matches none",                                   \
	  st->fwd_replies)                                                     \
	X(DROP_REQ, "drop_requests", C,                                        \
	  "Requests dropped: by the script (drop before any transaction) "     \
	  "or a stateless forward that could not be sent",                     \
	  st->drop_requests)                                                   \
	X(DROP_RPL, "drop_replies", C,                                         \
	  "Replies dropped: by the script (reply route, or onreply route "     \
	  "for a provisional) or matching no transaction",                     \
	  st->drop_replies)                                                    \
	X(ERR_REQ, "err_requests", C,                                          \
	  "Malformed requests, answered 400 or 505", st->err_requests)         \
	X(ERR_RPL, "err_replies", C, "Malformed replies, discarded",           \
	  st->err_replies)                                                     \
	X(BAD_MSG, "bad_msg_hdr", C,                                           \
	  "Messages dropped unparsable (start line or header structure), "     \
	  "counted by the worker that read them",                              \
	  st->bad_msg_hdr)

#define TMX_STATS(X)                                                           \
	X(UAS, "UAS_transactions", C,                                          \
	  "Server transactions created for received requests", st->uas_trans)  \
	X(UAC, "UAC_transactions", C,                                          \
	  "Transactions of requests this proxy originates (BYEs of the "       \
	  "dialog engine)",                                                    \
	  st->uac_trans)                                                       \
	X(T2XX, "2xx_transactions", C,                                         \
	  "Server transactions whose first final reply upstream was a 2xx",    \
	  st->completed[2])                                                    \
	X(T3XX, "3xx_transactions", C,                                         \
	  "Server transactions whose first final reply upstream was a 3xx",    \
	  st->completed[3])                                                    \
	X(T4XX, "4xx_transactions", C,                                         \
	  "Server transactions whose first final reply upstream was a 4xx",    \
	  st->completed[4])                                                    \
	X(T5XX, "5xx_transactions", C,                                         \
	  "Server transactions whose first final reply upstream was a 5xx",    \
	  st->completed[5])                                                    \
	X(T6XX, "6xx_transactions", C,                                         \
	  "Server transactions whose first final reply upstream was a 6xx",    \
	  st->completed[6])                                                    \
	X(INUSE, "inuse_transactions", G,                                      \
	  "Transactions in memory, those lingering after their end too",       \
	  st->active)                                                          \
	X(ACTIVE, "active_transactions", G,                                    \
	  "Transactions not ended yet (in use and not lingering)",             \
	  st->active - st->waiting)                                            \
	X(RPL_RCV, "rpl_received", C,                                          \
	  "Replies received that matched a client transaction",                \
	  st->rpl_received)                                                    \
	X(RPL_ABS, "rpl_absorbed", C,                                          \
	  "Replies received and never relayed upstream, counted when their "   \
	  "transaction is freed",                                              \
	  st->rpl_absorbed)                                                    \
	X(RPL_GEN, "rpl_generated", C,                                         \
	  "Replies generated on a transaction (100 Trying, t_reply(), 408, "   \
	  "487 ...)",                                                          \
	  st->rpl_generated)                                                   \
	X(RPL_REL, "rpl_relayed", C, "Received replies relayed upstream",      \
	  st->rpl_relayed)                                                     \
	X(RPL_SENT, "rpl_sent", C,                                             \
	  "Replies sent upstream on transactions: relayed plus generated "     \
	  "(retransmissions not counted)",                                     \
	  st->rpl_relayed + st->rpl_generated)                                 \
	X(RETR, "retransmissions", C,                                          \
	  "Messages tm sent again: requests and CANCELs on timers A and E, "   \
	  "final replies on timer G or for a retransmitted request, ACKs "     \
	  "for a retransmitted negative reply",                                \
	  st->retransmissions)

#define SL_STATS(X)                                                            \
	X(SL1, "1xx_replies", C, "Stateless 1xx replies sent",                 \
	  st->sl_replies[1])                                                   \
	X(SL2, "2xx_replies", C, "Stateless 2xx replies sent",                 \
	  st->sl_replies[2])                                                   \
	X(SL3, "3xx_replies", C, "Stateless 3xx replies sent",                 \
	  st->sl_replies[3])                                                   \
	X(SL4, "4xx_replies", C, "Stateless 4xx replies sent",                 \
	  st->sl_replies[4])                                                   \
	X(SL5, "5xx_replies", C, "Stateless 5xx replies sent",                 \
	  st->sl_replies[5])                                                   \
	X(SL6, "6xx_replies", C, "Stateless 6xx replies sent",                 \
	  st->sl_replies[6])                                                   \
	X(SL_SENT, "sent_replies", C,                                          \
	  "Stateless replies sent (sl_send_reply() without a transaction, "    \
	  "400/416/420 to bad requests, answers to CANCEL)",                   \
	  st->sl_replies[1] + st->sl_replies[2] + st->sl_replies[3] +          \
	          st->sl_replies[4] + st->sl_replies[5] + st->sl_replies[6])   \
	X(SL_FAIL, "failures", C, "Stateless replies that could not be sent",  \
	  st->sl_failures)

/* The resolver's counters, kept by dns (a shard has one once a name was
 * resolved on it). Kamailio's dns group has failed_dns_request. */
#define DNS_STATS(X)                                                           \
	X(DNS_FAILED, "failed_dns_request", C,                                 \
	  "Lookups of a destination name that gave no address (no such "       \
	  "name, no record, timeout)",                                         \
	  st->dns.failures)                                                    \
	X(DNS_HITS, "cache_hits", C,                                           \
	  "Destination names answered from a worker's DNS cache",              \
	  st->dns.cache_hits)                                                  \
	X(DNS_LOOKUPS, "lookups", C,                                           \
	  "Destination names looked up (RFC 3263: SRV, then addresses)",       \
	  st->dns.lookups)                                                     \
	X(DNS_QUERIES, "queries", C,                                           \
	  "DNS queries sent (an address query asks for A and AAAA)",           \
	  st->dns.queries)                                                     \
	X(DNS_CACHED, "cache_entries", G,                                      \
	  "Answers in the workers' DNS caches", st->dns.cache_size)            \
	X(DNS_FAILOVER, "failovers", C,                                        \
	  "Branches sent to a name's next address after the one before "       \
	  "gave no answer or 503 (RFC 3263 section 4.3)",                      \
	  st->failovers)                                                       \
	X(DNS_PENDING, "pending_lookups", G,                                   \
	  "Lookups waiting for a name server", st->dns.pending)

#define ID(id, name, kind, help, value)  id,
#define DEF(id, name, kind, help, value) {name, kind, STAT_SHARD, help},
#define ADD(id, name, kind, help, value) v[id] += (int64_t)(value);

/* What a group's values are read from, on a shard: its tm counters, or
 * its resolver's (none before the shard resolved a name). */
static const struct tm_stats *tm_stats_of(struct tm_shard *sh,
                                          struct tm_stats *buf)
{
	(void)buf;
	return &sh->stats;
}

struct dns_values {
	struct dns_stats dns; /* the resolver's */
	uint64_t failovers;   /* tm's */
};

static const struct dns_values *dns_stats_of(struct tm_shard *sh,
                                             struct dns_values *buf)
{
	if (sh->dns == NULL)
		return NULL;
	dns_stats(sh->dns, &buf->dns);
	buf->failovers = sh->stats.dns_failovers;
	return buf;
}

/* One group: the indexes, the table and the reader from one list, whose
 * values are read from st (of type TYPE, given by FETCH). */
#define GROUP(var, gname, LIST, TYPE, FETCH)                                   \
	enum { LIST(ID) var##_N };                                             \
	static const struct stat_def var##_defs[] = {LIST(DEF)};               \
	static void var##_read(struct worker *w, int64_t *v, void *arg)        \
	{                                                                      \
		struct tm_shard *sh = shard_of ? shard_of(w) : NULL;           \
		TYPE buf;                                                      \
		const TYPE *st = sh ? FETCH(sh, &buf) : NULL;                  \
                                                                               \
		(void)arg;                                                     \
		if (st == NULL)                                                \
			return;                                                \
		LIST(ADD)                                                      \
	}                                                                      \
	static const struct stat_group var##_group = {                         \
	        gname, var##_defs, var##_N, var##_read, NULL, NULL};

GROUP(core, "core", CORE_STATS, struct tm_stats, tm_stats_of)
GROUP(tmx, "tmx", TMX_STATS, struct tm_stats, tm_stats_of)
GROUP(sl, "sl", SL_STATS, struct tm_stats, tm_stats_of)
GROUP(dns, "dns", DNS_STATS, struct dns_values, dns_stats_of)

int tm_register_stats(struct tm_shard *(*of)(struct worker *w))
{
	int err;

	shard_of = of;
	err = stats_register(&core_group);
	if (err == 0)
		err = stats_register(&tmx_group);
	if (err == 0)
		err = stats_register(&sl_group);
	if (err == 0)
		err = stats_register(&dns_group);
	return err;
}

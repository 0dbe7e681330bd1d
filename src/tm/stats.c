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

/* Kamailio's core counts requests of these methods (name, enum) */
#define REQ_METHODS(M, X)                                                      \
	M(X, invite, INVITE)                                                   \
	M(X, cancel, CANCEL)                                                   \
	M(X, ack, ACK)                                                         \
	M(X, bye, BYE)                                                         \
	M(X, info, INFO)                                                       \
	M(X, register, REGISTER)                                               \
	M(X, subscribe, SUBSCRIBE)                                             \
	M(X, notify, NOTIFY)                                                   \
	M(X, message, MESSAGE)                                                 \
	M(X, options, OPTIONS)                                                 \
	M(X, prack, PRACK)                                                     \
	M(X, update, UPDATE)                                                   \
	M(X, refer, REFER)                                                     \
	M(X, publish, PUBLISH)
#define REQ_STAT(X, name, M)                                                   \
	X(REQ_##M, "rcv_requests_" #name, C, "Requests " #M " received",       \
	  st->rcv_req_method[SIP_METHOD_##M])

/* ... and replies by class to requests of these (its names) */
#define RPL_METHODS(M, X, c)                                                   \
	M(X, c, invite, INVITE)                                                \
	M(X, c, cancel, CANCEL)                                                \
	M(X, c, bye, BYE)                                                      \
	M(X, c, reg, REGISTER)                                                 \
	M(X, c, message, MESSAGE)                                              \
	M(X, c, prack, PRACK)                                                  \
	M(X, c, update, UPDATE)                                                \
	M(X, c, refer, REFER)
#define RPL_STAT(X, c, name, M)                                                \
	X(RPL##c##_##M, "rcv_replies_" #c "xx_" #name, C,                      \
	  "Replies " #c "xx received to " #M " requests (by CSeq)",            \
	  st->rcv_rpl_method[SIP_METHOD_##M][c])
#define RPL_CLASS_STATS(X)                                                     \
	RPL_METHODS(RPL_STAT, X, 1)                                            \
	RPL_METHODS(RPL_STAT, X, 2)                                            \
	RPL_METHODS(RPL_STAT, X, 3)                                            \
	RPL_METHODS(RPL_STAT, X, 4)                                            \
	RPL_METHODS(RPL_STAT, X, 5)                                            \
	RPL_METHODS(RPL_STAT, X, 6)

/* replies by class, and of the codes Kamailio counts apart */
#define RPL_CLASS(X, c)                                                        \
	X(RPL##c, "rcv_replies_" #c "xx", C, "Replies " #c "xx received",      \
	  st->rcv_rpl_class[c])
#define RPL_CODE(X, code)                                                      \
	X(RPL##code, "rcv_replies_" #code, C, "Replies " #code " received",    \
	  st->rcv_rpl_##code)

/* X(id, name, kind, help, value of struct tm_stats *st) */
#define CORE_STATS(X)                                                          \
	X(RCV_REQ, "rcv_requests", C,                                          \
	  "Requests received (retransmissions too), counted by the worker "    \
	  "owning the call",                                                   \
	  sum(st->rcv_req_method, SIP_METHOD__COUNT))                          \
	REQ_METHODS(REQ_STAT, X)                                               \
	X(UNSUPPORTED, "unsupported_methods", C,                               \
	  "Requests received with a method of none of the statistics above",   \
	  st->rcv_req_method[SIP_METHOD_OTHER])                                \
	X(BAD_URI, "bad_URIs_rcvd", C,                                         \
	  "Requests whose Request-URI does not parse (answered 400)",          \
	  st->bad_uris)                                                        \
	X(RCV_RPL, "rcv_replies", C, "Replies received", st->rcv_replies)      \
	RPL_CLASS(X, 1)                                                        \
	X(RPL18X, "rcv_replies_18x", C, "Replies 180-189 received",            \
	  st->rcv_rpl_18x)                                                     \
	RPL_CLASS(X, 2)                                                        \
	RPL_CLASS(X, 3)                                                        \
	RPL_CLASS(X, 4)                                                        \
	RPL_CODE(X, 401)                                                       \
	RPL_CODE(X, 404)                                                       \
	RPL_CODE(X, 407)                                                       \
	RPL_CODE(X, 480)                                                       \
	RPL_CODE(X, 486)                                                       \
	RPL_CLASS(X, 5)                                                        \
	RPL_CLASS(X, 6)                                                        \
	RPL_CLASS_STATS(X)                                                     \
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

/* Kamailio's sl: a code with a statistic of its own, or its class */
#define SL_CODE(X, t)                                                          \
	X(SL_##t, #t "_replies", C, "Stateless " #t " replies sent",           \
	  st->sl_replies[TM_SL_##t])
#define SL_CLASS(X, t)                                                         \
	X(SL_##t, #t "_replies", C,                                            \
	  "Stateless " #t " replies sent whose code has no statistic of its "  \
	  "own",                                                               \
	  st->sl_replies[TM_SL_##t])
#define SL_STATS(X)                                                            \
	TM_SL_TYPE_LIST(SL_CODE, SL_CLASS, X)                                  \
	X(SL_SENT, "sent_replies", C,                                          \
	  "Stateless replies sent (sl_send_reply() without a transaction, "    \
	  "400/416/420/505 to requests refused, answers to CANCEL)",           \
	  sum(st->sl_replies, TM_SL_TYPES))                                    \
	X(SL_ERR, "sent_err_replies", C,                                       \
	  "Stateless replies refusing a request as malformed or not "          \
	  "supported (400, 416, 420, 505)",                                    \
	  st->sl_err_replies)                                                  \
	X(SL_FAIL, "failures", C, "Stateless replies that could not be sent",  \
	  st->sl_failures)                                                     \
	X(SL_ACKS, "received_ACKs", C,                                         \
	  "ACKs of stateless replies, absorbed before the script",             \
	  st->sl_acks)

/* The resolver's counters, kept by dns (a shard has one once a name was
 * resolved on it). Kamailio's dns group has failed_dns_request. */
#define DNS_STATS(X)                                                           \
	X(DNS_FAILED, "failed_dns_request", C,                                 \
	  "Lookups of a destination name that gave no address (no such "       \
	  "name, no record, timeout)",                                         \
	  st->dns.failures)                                                    \
	X(DNS_SLOW, "slow_dns_request", C,                                     \
	  "Lookups of a destination name that took dns_slow_query_ms or "      \
	  "longer",                                                            \
	  st->dns.slow)                                                        \
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

/* core's rcv_requests (every method), sl's sent_replies (every type) */
static uint64_t sum(const uint64_t *v, size_t n)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += v[i];
	return total;
}

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

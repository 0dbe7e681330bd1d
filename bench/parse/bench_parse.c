/*
 * Parser benchmark: what a proxy pays to parse an INVITE and its 200 OK and
 * read the fields it acts on (top Via branch, Call-ID, From and To tags,
 * CSeq, the Route set, Max-Forwards, Content-Length).
 *
 *   bench_parse [iterations]        ns per message, best of 5 timed runs
 *   bench_parse --once N [invite|ok] N untimed iterations, for callgrind
 *
 * The messages stay hot in the cache and the struct sip_msg is reused, as
 * in a receive loop: this measures the parser's own work, not memory
 * traffic. Both modes check the parsed values first and abort on a
 * mismatch, so a fast but wrong parser cannot report a figure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sip/sip.h"

/* An IMS originating INVITE as the P-CSCF forwards it to the S-CSCF. */
static const char invite_text[] =
        "INVITE sip:+4930123456@ims.test;user=phone SIP/2.0\r\n"
        "Via: SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bK3f8a.c4e1b2d0.0\r\n"
        "Via: SIP/2.0/TCP 10.0.0.4:5062;rport=41234;received=203.0.113.4"
        ";branch=z9hG4bKnashds8\r\n"
        "Max-Forwards: 69\r\n"
        "Route: <sip:orig@scscf.ims.test:6060;lr>, <sip:as.ims.test;lr>\r\n"
        "Record-Route: <sip:pcscf.ims.test:5060;lr>\r\n"
        "From: \"Alice\" <sip:+4930111111@ims.test>;tag=1928301774\r\n"
        "To: \"Bob\" <sip:+4930123456@ims.test>\r\n"
        "Call-ID: a84b4c76e66710@10.0.0.4\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:+4930111111@10.0.0.4:5062;transport=tcp>\r\n"
        "Content-Type: application/sdp\r\n"
        "Allow: INVITE, ACK, CANCEL, BYE, PRACK, UPDATE\r\n"
        "Supported: 100rel, timer\r\n"
        "User-Agent: bench-UE/1.0\r\n"
        "P-Asserted-Identity: \"Alice\" <sip:+4930111111@ims.test>\r\n"
        "Content-Length: 229\r\n"
        "\r\n"
        "v=0\r\n"
        "o=alice 2890844526 2890844526 IN IP4 203.0.113.4\r\n"
        "s=-\r\n"
        "c=IN IP4 203.0.113.4\r\n"
        "t=0 0\r\n"
        "m=audio 49170 RTP/AVP 96 97 101\r\n"
        "a=rtpmap:96 AMR-WB/16000\r\n"
        "a=rtpmap:97 AMR/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n";

/* The callee's answer, as it comes back to the P-CSCF. */
static const char ok_text[] =
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bK3f8a.c4e1b2d0.0\r\n"
        "Via: SIP/2.0/TCP 10.0.0.4:5062;rport=41234;received=203.0.113.4"
        ";branch=z9hG4bKnashds8\r\n"
        "Record-Route: <sip:as.ims.test;lr>\r\n"
        "Record-Route: <sip:pcscf.ims.test:5060;lr>\r\n"
        "From: \"Alice\" <sip:+4930111111@ims.test>;tag=1928301774\r\n"
        "To: \"Bob\" <sip:+4930123456@ims.test>;tag=a6c85cf\r\n"
        "Call-ID: a84b4c76e66710@10.0.0.4\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:+4930123456@198.51.100.99:5060>\r\n"
        "Content-Type: application/sdp\r\n"
        "Allow: INVITE, ACK, CANCEL, BYE, PRACK, UPDATE\r\n"
        "Supported: 100rel, timer\r\n"
        "Server: bench-UE/1.0\r\n"
        "Content-Length: 205\r\n"
        "\r\n"
        "v=0\r\n"
        "o=bob 2808844564 2808844564 IN IP4 198.51.100.99\r\n"
        "s=-\r\n"
        "c=IN IP4 198.51.100.99\r\n"
        "t=0 0\r\n"
        "m=audio 3456 RTP/AVP 96 101\r\n"
        "a=rtpmap:96 AMR-WB/16000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n";

/* noclone (GCC only) keeps one copy under the name callgrind looks for. */
#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_NOINLINE __attribute__((noinline, noclone))
#else
#define BENCH_NOINLINE __attribute__((noinline))
#endif

#define RUNS         5
#define DEFAULT_ITER 2000000UL

struct bench_msg {
	const char *name;
	const char *text;
	size_t len;
};

static const struct bench_msg msgs[] = {
        {"INVITE", invite_text, sizeof(invite_text) - 1},
        {"200 OK", ok_text, sizeof(ok_text) - 1},
};

/* What one message yields: enough to check against the text. */
struct fields {
	struct slice branch;
	struct slice call_id;
	struct slice from_tag;
	struct slice to_tag;
	bool has_to_tag;
	uint32_t cseq;
	enum sip_method cseq_method;
	unsigned nroutes;
	struct slice top_route; /* URI of the first Route, if any */
	bool has_max_forwards;
	uint32_t max_forwards;
	uint32_t content_length;
};

/* Keeps the results alive: the compiler cannot drop a store to it. */
static volatile uint64_t sink;

static struct sip_msg msg;

_Noreturn static void die(const char *what, const struct bench_msg *bm)
{
	fprintf(stderr, "bench_parse: %s: %s (%s)\n", bm->name, what,
	        msg.error ? msg.error : "no parser error");
	exit(1);
}

/*
 * One message: parse, then the reads a proxy makes before forwarding.
 * Kept out of line (and unclone'd) so that callgrind can name it and the
 * timing loop cannot hoist work out of it.
 */
static BENCH_NOINLINE void parse_one(struct fields *f,
                                     const struct bench_msg *bm,
                                     const struct sip_limits *lim)
{
	const struct sip_via *via;
	const struct sip_addr *from, *to;
	const struct sip_cseq *cseq;
	struct sip_elem_iter it;
	struct slice elem;
	int err;

	if (sip_msg_parse(&msg, bm->text, bm->len, lim))
		die("sip_msg_parse failed", bm);
	if (sip_msg_top_via(&via, &msg) || sip_msg_call_id(&f->call_id, &msg) ||
	    sip_msg_from(&from, &msg) || sip_msg_to(&to, &msg) ||
	    sip_msg_cseq(&cseq, &msg))
		die("a mandatory header did not decode", bm);
	f->branch = via->branch;
	f->from_tag = from->tag;
	f->to_tag = to->tag;
	f->has_to_tag = to->has_tag;
	f->cseq = cseq->num;
	f->cseq_method = cseq->method_id;

	/* Every Route element is decoded: the top one decides where the
	 * request goes, the others are checked before being forwarded. */
	f->nroutes = 0;
	f->top_route = SLICE_NULL;
	sip_elem_iter_init(&it, &msg, SIP_HDR_ROUTE);
	while ((err = sip_elem_next(&elem, &it)) == 0) {
		struct sip_addr route;
		const char *why;
		if (sip_addr_parse(&route, elem, 0, &why))
			die("bad Route", bm);
		if (f->nroutes++ == 0)
			f->top_route = route.uri;
	}
	if (err != ENOENT)
		die("bad Route list", bm);

	/* Absent in responses: ENOENT is an answer, not an error. */
	err = sip_msg_max_forwards(&f->max_forwards, &msg);
	if (err && err != ENOENT)
		die("bad Max-Forwards", bm);
	f->has_max_forwards = err == 0;
	f->content_length = msg.content_length;
}

/* Folds the fields into the sink so that none of the reads is dead. */
static void consume(const struct fields *f)
{
	sink += f->branch.len + f->call_id.len + f->from_tag.len +
	        f->to_tag.len + f->cseq + f->nroutes + f->top_route.len +
	        f->max_forwards + f->content_length;
}

static void expect(bool cond, const char *what, const struct bench_msg *bm)
{
	if (!cond)
		die(what, bm);
}

/* The parser must return what the text says before its speed counts. */
static void verify(const struct sip_limits *lim)
{
	const struct bench_msg *bm;
	struct fields f;
	unsigned status;

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		bm = &msgs[i];
		parse_one(&f, bm, lim);
		expect(sip_msg_check(&status, &msg) == 0,
		       "sip_msg_check rejects it", bm);
		expect(msg.len == bm->len, "length", bm);
		expect(slice_eq_cstr(f.branch, "z9hG4bK3f8a.c4e1b2d0.0"),
		       "top Via branch", bm);
		expect(sip_msg_hdr_count(&msg, SIP_HDR_VIA) == 2, "Via count",
		       bm);
		expect(slice_eq_cstr(f.call_id, "a84b4c76e66710@10.0.0.4"),
		       "Call-ID", bm);
		expect(slice_eq_cstr(f.from_tag, "1928301774"), "From tag", bm);
		expect(f.cseq == 314159 && f.cseq_method == SIP_METHOD_INVITE,
		       "CSeq", bm);
		expect(msg.has_content_length &&
		               f.content_length == msg.body.len &&
		               msg.body.p + msg.body.len == bm->text + bm->len,
		       "Content-Length", bm);
		if (msg.is_request) {
			expect(msg.method_id == SIP_METHOD_INVITE, "method",
			       bm);
			expect(!f.has_to_tag, "To tag in an initial INVITE",
			       bm);
			expect(f.nroutes == 2 &&
			               slice_eq_cstr(f.top_route,
			                             "sip:orig@scscf.ims.test:"
			                             "6060;lr"),
			       "Route set", bm);
			expect(f.has_max_forwards && f.max_forwards == 69,
			       "Max-Forwards", bm);
		} else {
			expect(msg.status == 200, "status", bm);
			expect(f.has_to_tag &&
			               slice_eq_cstr(f.to_tag, "a6c85cf"),
			       "To tag", bm);
			expect(f.nroutes == 0 && !f.has_max_forwards,
			       "Route or Max-Forwards in the response", bm);
			expect(sip_msg_hdr_count(&msg, SIP_HDR_RECORD_ROUTE) ==
			               2,
			       "Record-Route count", bm);
		}
	}
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Best of RUNS: the minimum is the run least disturbed by the machine. */
static double time_msg(const struct bench_msg *bm, unsigned long iter,
                       const struct sip_limits *lim)
{
	double best = 0;
	struct fields f;

	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();
		for (unsigned long i = 0; i < iter; i++) {
			parse_one(&f, bm, lim);
			consume(&f);
		}
		double ns = (now_ns() - t0) / (double)iter;
		if (r == 0 || ns < best)
			best = ns;
	}
	return best;
}

static unsigned long parse_count(const char *s)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || n == 0) {
		fprintf(stderr, "bench_parse: bad iteration count: %s\n", s);
		exit(2);
	}
	return n;
}

_Noreturn static void usage(void)
{
	fprintf(stderr, "usage: bench_parse [iterations]\n"
	                "       bench_parse --once N [invite|ok]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct sip_limits lim = SIP_LIMITS_DEFAULT;
	size_t n = sizeof(msgs) / sizeof(msgs[0]);
	struct fields f;

	verify(&lim);

	if (argc >= 2 && strcmp(argv[1], "--once") == 0) {
		size_t first = 0, last = n;
		if (argc < 3 || argc > 4)
			usage();
		unsigned long iter = parse_count(argv[2]);
		if (argc == 4 && strcmp(argv[3], "invite") == 0)
			last = 1;
		else if (argc == 4 && strcmp(argv[3], "ok") == 0)
			first = 1;
		else if (argc == 4)
			usage();
		for (size_t m = first; m < last; m++)
			for (unsigned long i = 0; i < iter; i++) {
				parse_one(&f, &msgs[m], &lim);
				consume(&f);
			}
		return 0;
	}
	if (argc > 2)
		usage();

	unsigned long iter = argc == 2 ? parse_count(argv[1]) : DEFAULT_ITER;
	printf("%-8s %6s %9s %9s   (best of %d runs x %lu iterations)\n",
	       "message", "bytes", "ns/msg", "msgs/s", RUNS, iter);
	for (size_t m = 0; m < n; m++) {
		double ns = time_msg(&msgs[m], iter, &lim);
		printf("%-8s %6zu %9.1f %8.2fM\n", msgs[m].name, msgs[m].len,
		       ns, 1e3 / ns);
	}
	return 0;
}

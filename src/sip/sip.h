/*
 * sip: zero-copy SIP message parser, URI and header decoders, TCP stream
 * framing, edit lists applied on send, and a builder for locally generated
 * replies, CANCELs and ACKs (RFC 3261).
 *
 * A received message is never modified. sip_msg_parse() records slices into
 * it: the start line and an index of header lines. Headers that a proxy
 * needs on every message are decoded on first use by the sip_msg_*()
 * accessors and cached in the message; every other header stays raw.
 *
 * Errors: 0 on success, EBADMSG for malformed input (with a human-readable
 * reason in msg->error, a static string), EMSGSIZE or E2BIG for a limit,
 * EAGAIN for "need more bytes", ENOSPC when an output buffer is too small.
 */
#ifndef IMSDLG_SIP_H
#define IMSDLG_SIP_H

#include <string.h>

#include "core/core.h"

/* ------------------------------------------------------------ tables */

/*
 * Every header the proxy knows by name: id, full name, compact form (RFC
 * 3261 §7.3.3 and the RFCs that added compact forms; 0 = none).
 */
#define SIP_HDR_LIST(X)                                                        \
	X(VIA, "Via", 'v')                                                     \
	X(FROM, "From", 'f')                                                   \
	X(TO, "To", 't')                                                       \
	X(CALL_ID, "Call-ID", 'i')                                             \
	X(CSEQ, "CSeq", 0)                                                     \
	X(MAX_FORWARDS, "Max-Forwards", 0)                                     \
	X(CONTENT_LENGTH, "Content-Length", 'l')                               \
	X(CONTACT, "Contact", 'm')                                             \
	X(ROUTE, "Route", 0)                                                   \
	X(RECORD_ROUTE, "Record-Route", 0)                                     \
	X(CONTENT_TYPE, "Content-Type", 'c')                                   \
	X(CONTENT_ENCODING, "Content-Encoding", 'e')                           \
	X(SUBJECT, "Subject", 's')                                             \
	X(SUPPORTED, "Supported", 'k')                                         \
	X(REQUIRE, "Require", 0)                                               \
	X(PROXY_REQUIRE, "Proxy-Require", 0)                                   \
	X(UNSUPPORTED, "Unsupported", 0)                                       \
	X(EXPIRES, "Expires", 0)                                               \
	X(RSEQ, "RSeq", 0)                                                     \
	X(RACK, "RAck", 0)                                                     \
	X(EVENT, "Event", 'o')                                                 \
	X(ALLOW_EVENTS, "Allow-Events", 'u')                                   \
	X(REFER_TO, "Refer-To", 'r')                                           \
	X(REFERRED_BY, "Referred-By", 'b')                                     \
	X(SESSION_EXPIRES, "Session-Expires", 'x')                             \
	X(IDENTITY, "Identity", 'y')                                           \
	X(REJECT_CONTACT, "Reject-Contact", 'j')                               \
	X(REQUEST_DISPOSITION, "Request-Disposition", 'd')                     \
	X(ACCEPT_CONTACT, "Accept-Contact", 'a')                               \
	X(ALLOW, "Allow", 0)                                                   \
	X(REASON, "Reason", 0)                                                 \
	X(USER_AGENT, "User-Agent", 0)                                         \
	X(SERVER, "Server", 0)                                                 \
	X(AUTHORIZATION, "Authorization", 0)                                   \
	X(PROXY_AUTHORIZATION, "Proxy-Authorization", 0)                       \
	X(DATE, "Date", 0)

enum sip_hdr_id {
	SIP_HDR_OTHER = 0,
#define SIP_HDR_ENUM(id, name, compact) SIP_HDR_##id,
	SIP_HDR_LIST(SIP_HDR_ENUM)
#undef SIP_HDR_ENUM
	        SIP_HDR__COUNT
};

/* Full name of a known header ("Via"), or NULL for SIP_HDR_OTHER. */
const char *sip_hdr_name(enum sip_hdr_id id);
/* Id of a header name, full or compact, any case; SIP_HDR_OTHER if unknown. */
enum sip_hdr_id sip_hdr_lookup(struct slice name);

#define SIP_METHOD_LIST(X)                                                     \
	X(INVITE)                                                              \
	X(ACK)                                                                 \
	X(BYE)                                                                 \
	X(CANCEL)                                                              \
	X(OPTIONS)                                                             \
	X(REGISTER)                                                            \
	X(PRACK)                                                               \
	X(UPDATE)                                                              \
	X(INFO)                                                                \
	X(SUBSCRIBE)                                                           \
	X(NOTIFY)                                                              \
	X(REFER)                                                               \
	X(MESSAGE)                                                             \
	X(PUBLISH)

enum sip_method {
	SIP_METHOD_OTHER = 0,
#define SIP_METHOD_ENUM(m) SIP_METHOD_##m,
	SIP_METHOD_LIST(SIP_METHOD_ENUM)
#undef SIP_METHOD_ENUM
	        SIP_METHOD__COUNT
};

/* Methods are case-sensitive (RFC 3261 §7.1). */
enum sip_method sip_method_lookup(struct slice name);
const char *sip_method_name(enum sip_method m);

/* ------------------------------------------------------------ limits */

/* Hard capacity of the header index of one message. */
#define SIP_HDRS_CAP 256

struct sip_limits {
	size_t max_msg_size;  /* whole message incl. body; default 65535 */
	unsigned max_headers; /* header lines; default 128, <= SIP_HDRS_CAP */
	unsigned max_vias;    /* Via elements; default 72 */
};

/* 72 Vias: Max-Forwards 70 (RFC 3261 §8.1.1.6) lets a request cross 70
 * hops, arriving at the last with 71 Vias, so that a loop ends with 483
 * when Max-Forwards runs out rather than with a 400 for its Vias. */
#define SIP_LIMITS_DEFAULT ((struct sip_limits){65535, 128, 72})

/* --------------------------------------------------------------- URIs */

enum sip_uri_scheme {
	SIP_URI_SIP,
	SIP_URI_SIPS,
	SIP_URI_TEL,
	SIP_URI_OTHER, /* absoluteURI of another scheme: only scheme is set */
};

enum sip_host_type {
	SIP_HOST_NAME,
	SIP_HOST_IPV4,
	SIP_HOST_IPV6, /* host holds the address without the brackets */
};

/*
 * A decoded SIP, SIPS or TEL URI (RFC 3261 §19.1, RFC 3966). Slices point
 * into the parsed text and keep their %HH escapes; compare with
 * sip_uri_unescape() output where escapes matter.
 */
struct sip_uri {
	enum sip_uri_scheme scheme;
	struct slice scheme_name;
	struct slice user; /* tel: the telephone-subscriber number */
	struct slice password;
	struct slice host; /* empty for tel: */
	enum sip_host_type host_type;
	uint16_t port; /* 0 when absent */
	bool has_port;
	struct slice params;  /* raw, after the first ';', without it */
	struct slice headers; /* raw, after '?', without it */
	/* well-known parameters, decoded from params */
	struct slice transport;
	struct slice maddr;
	struct slice user_param;
	struct slice method;
	struct slice ttl;
	bool lr;
};

/*
 * Decodes s (borrowed; the result points into it). Rejects with EBADMSG
 * and *why set: an empty or unknown-syntax URI, malformed %HH escapes,
 * characters outside the §25.1 sets, a bad host or port; *out may then be
 * changed.
 */
int sip_uri_parse(struct sip_uri *out, struct slice s, const char **why);
/* Writes s with %HH escapes decoded; returns the decoded length (which may
 * exceed size: output is truncated, not terminated). */
size_t sip_uri_unescape(char *dst, size_t size, struct slice s);
/*
 * Finds parameter name (a token: no LWS, '=' or ';'; case-insensitive) in
 * a raw ";"-separated list. Returns true when present; *value is its value
 * (empty when the parameter has no "="), trimmed of LWS.
 */
bool sip_param_find(struct slice *value, struct slice params, const char *name);

/* ------------------------------------------------------ header values */

/* One Via element (RFC 3261 §20.42, §18.2.2, RFC 3581). */
struct sip_via {
	struct slice raw; /* the whole element, trimmed */
	struct slice proto_name;
	struct slice proto_version;
	struct slice transport;
	struct slice host;
	enum sip_host_type host_type;
	uint16_t port;
	bool has_port;
	struct slice params; /* raw, after the first ';' */
	struct slice branch;
	struct slice received;
	struct slice rport; /* value, empty for a bare ";rport" */
	bool has_rport;
	struct slice maddr;
	struct slice ttl;
};

int sip_via_parse(struct sip_via *out, struct slice elem, const char **why);

/* name-addr or addr-spec with header parameters: From, To, Contact, Route,
 * Record-Route, Refer-To ... (RFC 3261 §20.10, §25.1). */
struct sip_addr {
	struct slice raw;     /* the whole element, trimmed */
	struct slice display; /* without quotes; escapes kept */
	struct slice uri;     /* the URI text, without <> */
	bool bracketed;       /* the URI was inside <> */
	bool star;            /* Contact: * */
	struct slice params;  /* raw header parameters after the URI */
	struct slice tag;
	bool has_tag;
	struct slice expires; /* Contact */
	struct slice q;       /* Contact */
};

/* flags for sip_addr_parse() */
#define SIP_ADDR_ALLOW_STAR 1u /* Contact */

int sip_addr_parse(struct sip_addr *out, struct slice elem, unsigned flags,
                   const char **why);

struct sip_cseq {
	uint32_t num; /* <= 2^31 - 1 (RFC 3261 §8.1.1.5) */
	struct slice method;
	enum sip_method method_id;
};

int sip_cseq_parse(struct sip_cseq *out, struct slice value, const char **why);

/* RAck: response-num CSeq-num Method (RFC 3262 §7.2). */
struct sip_rack {
	uint32_t rseq;
	uint32_t cseq;
	struct slice method;
};

int sip_rack_parse(struct sip_rack *out, struct slice value, const char **why);

/*
 * Iterates over the comma-separated elements of one header value,
 * splitting on commas outside quoted strings and <> (RFC 3261 §7.3.1).
 */
struct sip_list_iter {
	const char *pos;
	const char *end;
};

void sip_list_init(struct sip_list_iter *it, struct slice value);
/* Returns 0 and the next element (trimmed, non-empty), ENOENT at the end,
 * EBADMSG on an unterminated quoted string or <>. Empty elements (",,")
 * are EBADMSG too. */
int sip_list_next(struct slice *elem, struct sip_list_iter *it);

/* --------------------------------------------------------- messages */

struct sip_hdr {
	struct slice name;  /* as written */
	struct slice value; /* LWS-trimmed; folded lines stay inside */
	uint32_t off;       /* offset of the line in the message */
	uint32_t len;       /* whole line including folds and the CRLF */
	uint16_t id;        /* enum sip_hdr_id */
	uint16_t next;      /* index + 1 of the next header of this id */
};

/* Bits of sip_msg.decoded and sip_msg.failed: one per cached decoder. */
enum {
	SIP_DEC_VIA = 1u << 0,
	SIP_DEC_FROM = 1u << 1,
	SIP_DEC_TO = 1u << 2,
	SIP_DEC_CALL_ID = 1u << 3,
	SIP_DEC_CSEQ = 1u << 4,
	SIP_DEC_MAXFWD = 1u << 5,
	SIP_DEC_EXPIRES = 1u << 6,
	SIP_DEC_RSEQ = 1u << 7,
	SIP_DEC_RACK = 1u << 8,
	SIP_DEC_FROM_URI = 1u << 9,
	SIP_DEC_TO_URI = 1u << 10,
	SIP_DEC_RURI = 1u << 11,
	SIP_DEC_CONTACT = 1u << 12,
};

struct sip_msg {
	const char *buf; /* the received bytes (borrowed, never modified) */
	size_t len;      /* this message's length: trailing octets excluded */
	bool is_request;

	struct slice start_line; /* without CRLF */
	/* request line */
	struct slice method;
	enum sip_method method_id;
	struct slice ruri;
	/* status line */
	unsigned status;
	struct slice reason;
	struct slice version; /* "SIP/2.0"; any other value is kept here */

	struct slice body;
	uint32_t hdrs_end; /* offset of the empty line that ends the headers */
	bool has_content_length;
	uint32_t content_length;
	/*
	 * Defects found while indexing that still let the message be
	 * answered (a 400 needs its Vias): a malformed request line, and a
	 * body that Content-Length or a missing empty line leaves undelimited
	 * (the body then runs to the end of the datagram). NULL when none.
	 * sip_msg_check() rejects messages that have one.
	 */
	const char *line_error;
	const char *body_error;

	/* The limit sip_msg_check() applies: sip_limits.max_vias, one more
	 * for a response (the Via a proxy added to a request at the limit). */
	uint16_t max_vias;
	uint16_t nhdrs;
	uint16_t first[SIP_HDR__COUNT]; /* index + 1 of the first of each id */

	/* decoded on first use; see the SIP_DEC_* bits (sip_msg_copy()
	 * copies the members before these, and moves some decoded ones) */
	uint32_t decoded;
	uint32_t failed;
	struct sip_via top_via;
	struct sip_addr from;
	struct sip_addr to;
	struct sip_uri from_uri;
	struct sip_uri to_uri;
	struct sip_uri request_uri;
	struct sip_addr contact; /* the first Contact element */
	struct slice call_id;
	struct sip_cseq cseq;
	uint32_t max_forwards;
	uint32_t expires;
	uint32_t rseq;
	struct sip_rack rack;

	const char *error; /* reason of the last EBADMSG */

	/* Last, so that a copy can be allocated with SIP_MSG_SIZE(nhdrs)
	 * and parsed with max_headers = nhdrs. */
	struct sip_hdr hdrs[SIP_HDRS_CAP];
};

/* Bytes of a struct sip_msg able to index n header lines. */
#define SIP_MSG_SIZE(n)                                                        \
	(offsetof(struct sip_msg, hdrs) + (size_t)(n) * sizeof(struct sip_hdr))

/*
 * Parses the start line and indexes the header lines of the message at
 * buf[0..len) (borrowed: the message points into it). With Content-Length
 * the message ends after that many body bytes and any further octets are
 * ignored (RFC 3261 §18.3, RFC 4475 §3.1.1.8); without it the body runs to
 * the end of the datagram. Fails with EMSGSIZE above lim->max_msg_size,
 * E2BIG above lim->max_headers header lines, EBADMSG otherwise.
 */
int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len,
                  const struct sip_limits *lim);

/*
 * What sip_msg_parse() would make of buf, a copy of src's len bytes, at
 * the cost of a copy of src's index: dst (SIP_MSG_SIZE(src->nhdrs) bytes
 * or more) points into buf (borrowed: it must outlive dst), with src's
 * start line, index and defects, and its top Via, From, To, Call-ID and
 * CSeq if src has decoded them (moved into buf; the rest is decoded on
 * first use). src must be a successful parse; it is only read.
 */
void sip_msg_copy(struct sip_msg *dst, const struct sip_msg *src,
                  const char *buf);

/* Header i (0-based) or NULL. */
const struct sip_hdr *sip_msg_hdr_at(const struct sip_msg *m, unsigned i);
/* First header with this id, or NULL; walk with sip_msg_hdr_next(). */
const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id);
const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m,
                                       const struct sip_hdr *h);
/* First header with this name (full or compact, any case), or NULL. */
const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m,
                                          struct slice name);
/* Number of header lines with this id. */
unsigned sip_msg_hdr_count(const struct sip_msg *m, enum sip_hdr_id id);

/*
 * Cached decoders. Each returns 0 and points *out into the message (valid
 * as long as the message), ENOENT when the header is absent, EBADMSG (with
 * m->error) when it is malformed. The first call decodes, later calls are a
 * bit test.
 */
int sip_msg_top_via(const struct sip_via **out, struct sip_msg *m);
int sip_msg_from(const struct sip_addr **out, struct sip_msg *m);
int sip_msg_to(const struct sip_addr **out, struct sip_msg *m);
/* A request with a To tag is inside a dialog (Kamailio's has_totag()). */
bool sip_msg_has_to_tag(struct sip_msg *m);
/* The URI of From or To ("bad From URI" / "bad To URI" when it does not
 * parse): sip_msg_check() parses them, the script's $fU, $td ... reuse
 * that. */
int sip_msg_from_uri(const struct sip_uri **out, struct sip_msg *m);
int sip_msg_to_uri(const struct sip_uri **out, struct sip_msg *m);
/* The Request-URI parsed ("bad Request-URI" when it does not parse;
 * ENOENT in a response): sip_msg_check() parses it, routing reuses it.
 * *out is m's, valid until m is parsed again. */
int sip_msg_request_uri(const struct sip_uri **out, struct sip_msg *m);
int sip_msg_call_id(struct slice *out, struct sip_msg *m);
int sip_msg_cseq(const struct sip_cseq **out, struct sip_msg *m);
int sip_msg_max_forwards(uint32_t *out, struct sip_msg *m);
int sip_msg_expires(uint32_t *out, struct sip_msg *m);
int sip_msg_rseq(uint32_t *out, struct sip_msg *m);
int sip_msg_rack(const struct sip_rack **out, struct sip_msg *m);

/* Iterates over every element of every header with this id, in order. */
struct sip_elem_iter {
	const struct sip_msg *m;
	const struct sip_hdr *h;
	struct sip_list_iter list;
};

void sip_elem_iter_init(struct sip_elem_iter *it, const struct sip_msg *m,
                        enum sip_hdr_id id);
/* 0 and the next element, ENOENT at the end, EBADMSG. */
int sip_elem_next(struct slice *elem, struct sip_elem_iter *it);

/* Decodes every Via into vias[0..max); *count is the number found.
 * E2BIG when there are more than max. */
int sip_msg_vias(struct sip_via *vias, unsigned max, unsigned *count,
                 struct sip_msg *m);
/* Decodes the Contact elements likewise (each may be "*"), and keeps the
 * first for sip_msg_contact(). */
int sip_msg_contacts(struct sip_addr *addrs, unsigned max, unsigned *count,
                     struct sip_msg *m);
/* The first Contact element, cached as the decoders above are (it may be
 * "*": star set): the remote target a dialog takes. sip_msg_check()
 * leaves it decoded. */
int sip_msg_contact(const struct sip_addr **out, struct sip_msg *m);

/*
 * The checks a proxy makes before acting on a message (RFC 3261 §16.3 and
 * §8.2, RFC 4475): known version, mandatory headers present once and
 * well-formed (Via, From, To, Call-ID, CSeq; Max-Forwards and
 * Content-Length when present; Contact, Expires, RSeq and RAck when
 * present), CSeq method equal to a request's method, Contact URIs and a
 * request's Request-URI and From/To URIs syntactically valid.
 * Returns 0, or EBADMSG with *status the reply a request deserves (400, or
 * 505 for an unknown SIP version) and m->error the reason. A response that
 * fails must be discarded.
 */
int sip_msg_check(unsigned *status, struct sip_msg *m);

/*
 * Kamailio's sanity module checks, by its numbers: sanity_check(checks,
 * uri_checks). Default sets: SIP_SANITY_DEFAULT and
 * SIP_SANITY_URI_DEFAULT.
 */
enum sip_sanity_checks {
	SIP_SANITY_RURI_VERSION = 1,      /* 505 */
	SIP_SANITY_RURI_SCHEME = 2,       /* 416, 400 */
	SIP_SANITY_REQUIRED_HEADERS = 4,  /* 400: To From CSeq Call-ID Via */
	SIP_SANITY_VIA_VERSION = 8,       /* passes, as in Kamailio */
	SIP_SANITY_VIA_PROTOCOL = 16,     /* passes, as in Kamailio */
	SIP_SANITY_CSEQ_METHOD = 32,      /* 400 */
	SIP_SANITY_CSEQ_VALUE = 64,       /* 400 */
	SIP_SANITY_CONTENT_LENGTH = 128,  /* 400: UDP octets after the body */
	SIP_SANITY_EXPIRES = 256,         /* 400 */
	SIP_SANITY_PROXY_REQUIRE = 512,   /* 420 + Unsupported */
	SIP_SANITY_PARSE_URIS = 1024,     /* 400, URIs chosen by uri_checks */
	SIP_SANITY_DIGEST = 2048,         /* 400; no reply if not digest */
	SIP_SANITY_DUPLICATE_TAGS = 4096, /* 400 */
	SIP_SANITY_AUTHORIZATION = 8192,  /* 400 */
	SIP_SANITY_VIA1 = 16384,          /* no reply */
	SIP_SANITY_ALL = 32767,
	SIP_SANITY_DEFAULT = 3047,
	SIP_SANITY_URI_RURI = 1,
	SIP_SANITY_URI_FROM = 2,
	SIP_SANITY_URI_TO = 4,
	SIP_SANITY_URI_CONTACT = 8,
	SIP_SANITY_URI_ALL = 15,
	SIP_SANITY_URI_DEFAULT = 7,
};

struct sip_sanity_verdict {
	unsigned code;            /* the reply the request gets; 0: none */
	const char *reason;       /* its reason phrase (what failed) */
	struct slice unsupported; /* 420: the extension not supported */
};

/*
 * Runs the checks chosen (Kamailio's order, stopping at the first that
 * fails): 0, or EBADMSG with *v saying what failed. wire_len is the
 * length of the datagram m came in (0 for a stream, whose framing took
 * Content-Length's octets); supported lists the extensions a
 * Proxy-Require may name, comma-separated. Checks about the request line
 * pass for a response.
 */
int sip_sanity_check(struct sip_sanity_verdict *v, struct sip_msg *m,
                     size_t wire_len, unsigned checks, unsigned uri_checks,
                     struct slice supported);
/* The extensions (option tags) m's Proxy-Require headers name that
 * supported (a comma-separated list, compared without case) does not, in
 * order: at most max into exts; returns how many. */
unsigned sip_unsupported_exts(struct slice *exts, unsigned max,
                              struct sip_msg *m, struct slice supported);

/* ---------------------------------------------------- stream framing */

enum sip_frame_kind {
	SIP_FRAME_MSG,  /* a message of len bytes */
	SIP_FRAME_PING, /* CRLFCRLF keep-alive: answer with CRLF (RFC 5626) */
	SIP_FRAME_PONG, /* a lone CRLF (keep-alive answer): drop len bytes */
};

struct sip_frame {
	enum sip_frame_kind kind;
	size_t len; /* bytes to consume from the stream */
};

/*
 * Finds the next frame at the start of a stream buffer. Returns 0 with
 * *out, EAGAIN when more bytes are needed, EMSGSIZE when the message would
 * exceed max_size, EBADMSG (with *why) when the headers have no valid
 * Content-Length (mandatory on streams, RFC 3261 §18.3) or are not SIP.
 */
int sip_frame(struct sip_frame *out, const char *buf, size_t len,
              size_t max_size, const char **why);

/* ---------------------------------------------------------- edit list */

#define SIP_EDITS_CAP 32

/* Replace del bytes at off with ins (borrowed; must outlive the apply). */
struct sip_edit {
	uint32_t off;
	uint32_t del;
	struct slice ins;
	uint32_t seq; /* order of insertion, for stable sorting */
};

/*
 * Edits anchored at offsets of the original message, applied into an
 * output buffer in one pass (Kamailio's "lumps"). Helpers that compose text
 * take it from the arena, which must outlive the apply.
 */
struct sip_edits {
	const struct sip_msg *m;
	struct arena *arena;
	unsigned n;
	int err; /* first error of a helper; reported by apply */
	struct sip_edit e[SIP_EDITS_CAP];
};

void sip_edits_init(struct sip_edits *ed, const struct sip_msg *m,
                    struct arena *arena);
/* Raw edits. Text is borrowed. Overlapping deletions make apply fail. */
int sip_edit_insert(struct sip_edits *ed, uint32_t off, struct slice text);
int sip_edit_delete(struct sip_edits *ed, uint32_t off, uint32_t len);
int sip_edit_replace(struct sip_edits *ed, uint32_t off, uint32_t len,
                     struct slice text);

/* Helpers. value/uri/line are copied into the arena. */
/* "Via: <value>" as the new topmost Via. */
int sip_edit_push_via(struct sip_edits *ed, struct slice value);
/* Removes the topmost Via element (a whole line if it was alone). */
int sip_edit_pop_via(struct sip_edits *ed);
/* "Record-Route: <value>" above any existing Record-Route. */
int sip_edit_add_record_route(struct sip_edits *ed, struct slice value);
/* Removes the first n Route elements (across lines). */
int sip_edit_drop_routes(struct sip_edits *ed, unsigned n);
/* Removes the last Route element (its line when it is alone there). Not
 * with sip_edit_drop_routes() over the same element. */
int sip_edit_drop_last_route(struct sip_edits *ed);
int sip_edit_set_ruri(struct sip_edits *ed, struct slice uri);
/* Appends a header line (CRLF added when missing) at the end of the
 * headers. */
int sip_edit_add_header(struct sip_edits *ed, struct slice line);
/* The same before the first header line. */
int sip_edit_add_header_first(struct sip_edits *ed, struct slice line);
/* Removes every line of the header with this name (full or compact). */
int sip_edit_remove_header(struct sip_edits *ed, struct slice name);
/* Replaces the value of header h with value. */
int sip_edit_set_hdr_value(struct sip_edits *ed, const struct sip_hdr *h,
                           struct slice value);

/* Length of the output (without applying). */
size_t sip_edits_out_len(const struct sip_edits *ed);
/*
 * Writes the edited message into out[0..size). Returns 0 and *out_len,
 * ENOSPC when out is too small, EINVAL for overlapping or out-of-range
 * edits (or the error a helper recorded).
 */
int sip_edits_apply(size_t *out_len, char *out, size_t size,
                    struct sip_edits *ed);

/* ------------------------------------------------------------ builder */

/* A bounded output buffer; overflow is sticky and reported at the end. */
struct sip_buf {
	char *p;
	size_t len;
	size_t size;
	bool overflow;
};

void sip_buf_init(struct sip_buf *b, char *p, size_t size);

/* Inline: most pieces are literals, whose length and copy the compiler
 * then resolves. */
static inline void sip_buf_add(struct sip_buf *b, struct slice s)
{
	if (b->overflow || s.len > b->size - b->len) {
		b->overflow = true;
		return;
	}
	if (s.len > 0)
		memcpy(b->p + b->len, s.p, s.len);
	b->len += s.len;
}

/* A NUL-terminated s; NULL adds nothing, as slice_cstr() reads it. */
static inline void sip_buf_adds(struct sip_buf *b, const char *s)
{
	sip_buf_add(b, slice_make(s, s ? strlen(s) : 0));
}

/* v in decimal, without printf. */
static inline void sip_buf_addu(struct sip_buf *b, uint64_t v)
{
	char digits[20];

	sip_buf_add(b, slice_make(digits, fmt_u64(digits, v)));
}

void sip_buf_addf(struct sip_buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Length of the tag written by sip_gen_tag(). */
#define SIP_TAG_LEN 16

/*
 * A To tag derived from the request (Call-ID, From tag, top Via branch), so
 * that retransmissions of a request get the same tag. dst receives
 * SIP_TAG_LEN characters (not NUL-terminated).
 */
void sip_gen_tag(char dst[SIP_TAG_LEN], struct sip_msg *req);

/*
 * A reply to req (RFC 3261 §8.2.6): every Via, From, To (with to_tag added
 * when the request's To has none and code > 100; an empty to_tag means
 * sip_gen_tag()), Call-ID, CSeq, then extra_hdrs (raw lines, CRLF-ended,
 * may be empty), Content-Length and body (may be empty). req must have
 * passed sip_msg_check().
 */
int sip_build_reply(struct sip_buf *out, struct sip_msg *req, unsigned code,
                    struct slice reason, struct slice to_tag,
                    struct slice extra_hdrs, struct slice body);
/*
 * A CANCEL for req, the request as this proxy sent it (RFC 3261 §9.1): same
 * Request-URI, Call-ID, To, From, CSeq number, the top Via only, the same
 * Route headers, Max-Forwards: 70, then extra_hdrs (e.g. Reason).
 */
int sip_build_cancel(struct sip_buf *out, struct sip_msg *req,
                     struct slice extra_hdrs);
/*
 * The ACK for a non-2xx final response rpl to req, the request as sent
 * (RFC 3261 §17.1.1.3): Request-URI, Call-ID, From and top Via of req, To
 * of rpl, CSeq number of req with method ACK, the Route headers of req.
 */
int sip_build_ack(struct sip_buf *out, struct sip_msg *req,
                  struct sip_msg *rpl);
/*
 * The head of a request of a UAC in the dialog that rpl, a 2xx to its
 * INVITE, set up (RFC 3261 §12.1.2, §12.2.1.1), without Via (the sender
 * adds its own): Request-URI rpl's Contact (target without one), the
 * route set rpl's Record-Route in reverse, the UAC's From value (with its
 * tag) and Call-ID, rpl's To (with the UAS's tag), CSeq cseq method,
 * Max-Forwards. The caller adds its own lines, Content-Length and body.
 * For the ACK of the 2xx (§13.2.2.4) cseq is the INVITE's. E2BIG past
 * SIP_DIALOG_MAX_ROUTES route entries.
 */
#define SIP_DIALOG_MAX_ROUTES 16
int sip_build_in_dialog(struct sip_buf *out, struct sip_msg *rpl,
                        struct slice target, struct slice from,
                        struct slice call_id, const char *method,
                        uint32_t cseq);

#endif

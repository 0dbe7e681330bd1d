/*
 * Internals shared by the files of the sip component: character classes of
 * the RFC 3261 §25.1 grammar and small scanners. Not part of the API.
 */
#ifndef IMSDLG_SIP_INT_H
#define IMSDLG_SIP_INT_H

#include "sip/sip.h"

/* Character class bits (see sip_cc in tables.c). */
enum {
	SIP_CC_TOKEN = 1u << 0, /* token: alphanum - . ! % * _ + ` ' ~ */
	SIP_CC_WS = 1u << 1,    /* SP HT CR LF: LWS once lines are unfolded */
	SIP_CC_DIGIT = 1u << 2,
	SIP_CC_HEX = 1u << 3,
	SIP_CC_HOST = 1u << 4, /* hostname, IPv4 and IPv6 reference chars */
	SIP_CC_WORD =
	        1u
	        << 5, /* word of Call-ID: token + ( ) < > : \ " / [ ] ? { } */
};

extern const uint8_t sip_cc[256];
extern const uint8_t sip_lower[256];

static inline bool sip_is(unsigned char c, unsigned cls)
{
	return (sip_cc[c] & cls) != 0;
}

static inline const char *sip_skip_ws(const char *p, const char *end)
{
	while (p < end && sip_is((unsigned char)*p, SIP_CC_WS))
		p++;
	return p;
}

static inline const char *sip_skip_token(const char *p, const char *end)
{
	while (p < end && sip_is((unsigned char)*p, SIP_CC_TOKEN))
		p++;
	return p;
}

/* Case-insensitive equality of n bytes. */
static inline bool sip_eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sip_lower[(unsigned char)a[i]] !=
		    sip_lower[(unsigned char)b[i]])
			return false;
	return true;
}

/*
 * Scans a host (hostname, IPv4 address or IPv6 reference) at p and an
 * optional ":port". On success returns 0, sets the outputs and *next to the
 * first byte after them. EBADMSG with *why otherwise.
 */
int sip_host_port_scan(struct slice *host, enum sip_host_type *type,
                       uint16_t *port, bool *has_port, const char **next,
                       const char *p, const char *end, const char **why);

/*
 * Scans a quoted string starting at the opening quote p. Returns the
 * position after the closing quote, or NULL when it is unterminated or
 * holds a forbidden byte (RFC 3261 §25.1 quoted-string, quoted-pair).
 */
const char *sip_skip_quoted(const char *p, const char *end);

#endif

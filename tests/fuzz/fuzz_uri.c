/*
 * libFuzzer target for sip_uri_parse(), sip_uri_unescape() and
 * sip_param_find(): any input gives 0 or EBADMSG with a reason, and an
 * accepted URI is consistent with the bytes it came from (RFC 3261 §19.1,
 * §25.1; RFC 3966).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the check must survive NDEBUG builds. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static const char *in_p;
static size_t in_len;

/* Absent ({NULL, 0}) or entirely inside the input. */
static void check_in(struct slice s)
{
	if (s.p == NULL) {
		CHECK(s.len == 0);
		return;
	}
	CHECK(s.p >= in_p && s.p <= in_p + in_len);
	CHECK(s.len <= (size_t)(in_p + in_len - s.p));
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* sip_uri_unescape() agrees with itself at every output size. */
static void check_unescape(struct slice s)
{
	char small[8];
	char *full = malloc(s.len + 1);
	size_t n, pct = 0;

	CHECK(full != NULL);
	n = sip_uri_unescape(full, s.len + 1, s);
	for (size_t i = 0; i < s.len; i++)
		pct += s.p[i] == '%';
	CHECK(n <= s.len && n + 2 * pct >= s.len);
	CHECK(sip_uri_unescape(NULL, 0, s) == n);
	CHECK(sip_uri_unescape(small, sizeof(small), s) == n);
	CHECK(memcmp(small, full, n < sizeof(small) ? n : sizeof(small)) == 0);
	free(full);
}

/* A parameter sip_param_find() finds has its value inside the list. */
static bool find(struct slice *v, struct slice params, const char *name)
{
	struct slice got = {(const char *)1, 12345};

	if (!sip_param_find(&got, params, name))
		return false;
	CHECK(got.p != NULL);
	CHECK(got.p >= params.p && got.p <= params.p + params.len);
	CHECK(got.len <= (size_t)(params.p + params.len - got.p));
	*v = got;
	return true;
}

/* A well-known parameter decoded by the parser is what sip_param_find()
 * gives for the same name: both take the first occurrence, raw. */
static void check_known(struct slice decoded, struct slice params,
                        const char *name)
{
	struct slice v;

	if (find(&v, params, name)) {
		CHECK(decoded.p == v.p && decoded.len == v.len);
	} else {
		CHECK(decoded.p == NULL);
	}
}

static void check_uri(const struct sip_uri *u)
{
	const char *end = in_p + in_len;
	struct slice v;

	check_in(u->scheme_name);
	check_in(u->user);
	check_in(u->password);
	check_in(u->host);
	check_in(u->params);
	check_in(u->headers);
	check_in(u->transport);
	check_in(u->maddr);
	check_in(u->user_param);
	check_in(u->method);
	check_in(u->ttl);

	CHECK(u->scheme_name.p == in_p && u->scheme_name.len > 0);
	CHECK(u->scheme_name.len < in_len && in_p[u->scheme_name.len] == ':');
	CHECK(u->port <= 65535);
	CHECK(u->has_port || u->port == 0);

	/* no whitespace or control character anywhere in a URI */
	for (size_t i = 0; i < in_len; i++)
		CHECK((unsigned char)in_p[i] > 0x20 && in_p[i] != 0x7f);

	switch (u->scheme) {
	case SIP_URI_SIP:
	case SIP_URI_SIPS:
		CHECK(u->host.len > 0);
		CHECK(u->host_type == SIP_HOST_NAME ||
		      u->host_type == SIP_HOST_IPV4 ||
		      u->host_type == SIP_HOST_IPV6);
		CHECK(u->user.p == NULL || u->user.len > 0);
		CHECK(u->password.p == NULL || u->user.p != NULL);
		/* the last part present ends the input */
		if (u->headers.p != NULL)
			CHECK(u->headers.p + u->headers.len == end);
		else if (u->params.p != NULL)
			CHECK(u->params.p + u->params.len == end);
		if (u->params.p != NULL)
			CHECK(u->params.p[-1] == ';' && u->params.len > 0);
		if (u->headers.p != NULL)
			CHECK(u->headers.p[-1] == '?' && u->headers.len > 0);
		check_known(u->transport, u->params, "transport");
		check_known(u->maddr, u->params, "maddr");
		check_known(u->user_param, u->params, "user");
		check_known(u->method, u->params, "method");
		check_known(u->ttl, u->params, "ttl");
		CHECK(u->lr == find(&v, u->params, "lr"));
		break;
	case SIP_URI_TEL:
		CHECK(u->user.len > 0);
		CHECK(u->host.p == NULL && u->password.p == NULL);
		CHECK(u->headers.p == NULL && !u->has_port && !u->lr);
		break;
	case SIP_URI_OTHER:
		CHECK(u->user.p == NULL && u->host.p == NULL);
		CHECK(u->params.p == NULL && u->headers.p == NULL);
		CHECK(!u->has_port && !u->lr);
		return;
	default:
		abort();
	}

	/* every '%' of an accepted SIP or tel URI starts an escape */
	for (size_t i = 0; i < in_len; i++)
		if (in_p[i] == '%')
			CHECK(i + 2 < in_len && is_hex(in_p[i + 1]) &&
			      is_hex(in_p[i + 2]));

	check_unescape(u->user);
	check_unescape(u->password);
	check_unescape(u->params);
	check_unescape(u->headers);
	find(&v, u->params, "x");
	find(&v, u->headers, "a");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sip_uri u;
	const char *why = NULL;
	struct slice v;
	int err;

	in_p = (const char *)data;
	in_len = size;

	/* garbage first: an accepted URI must have set every field it has */
	memset(&u, 0x5a, sizeof(u));
	err = sip_uri_parse(&u, slice_make(in_p, size), &why);
	if (err == 0)
		check_uri(&u);
	else
		CHECK(err == EBADMSG && why != NULL);

	/* the raw input as a header parameter list (LWS, quotes) */
	struct slice all = slice_make(in_p, size);
	find(&v, all, "tag");
	find(&v, all, "lr");
	check_unescape(all);
	return 0;
}

/*
 * rr: Record-Route insertion and loose routing (RFC 3261 §16.4, §16.6
 * step 4, §16.12), with Kamailio's rr module semantics for the script.
 *
 * Returns follow the script convention: > 0 true, < 0 false.
 */
#ifndef IMSDLG_RR_H
#define IMSDLG_RR_H

#include "tm/tm.h"

struct rr_config {
	bool append_fromtag; /* ;ftag=<From tag> in our Record-Route */
};

void rr_config_defaults(struct rr_config *c);

/* record_route() / record_route_params(params): this proxy in the
 * Record-Route of the request's branches; params like ";p=1" or "p=1". */
int rr_record_route(struct tm_ctx *ctx, const struct rr_config *cfg,
                    struct slice params);
/* add_rr_param(param): a parameter for the Record-Route being added. */
int rr_add_rr_param(struct tm_ctx *ctx, struct slice param);
/*
 * loose_route(): 1 when the request was routed by its Route set (our own
 * entries consumed, the next hop being the next Route or the Request-URI,
 * or the strict-router rewrite of §16.4), -1 without Route headers to act
 * on. Runs the registered callbacks with the parameters of our entry.
 */
int rr_loose_route(struct tm_ctx *ctx);
/* check_route_param(regex): 1 when the parameters of our Route entry that
 * loose_route() consumed match the POSIX extended regex. */
int rr_check_route_param(struct tm_ctx *ctx, const char *regex);
/* is_direction("downstream"|"upstream"): needs ;ftag in our entry. */
int rr_is_direction(struct tm_ctx *ctx, const char *dir);

/* Called by loose_route() when it consumed our own Route entry; params
 * are that entry's URI parameters (borrowed for the call). */
typedef void(rr_callback_fn)(struct tm_ctx *ctx, struct slice params,
                             void *arg);
/* At start-up only (not thread-safe): at most 4 callbacks. */
int rr_register_callback(rr_callback_fn *fn, void *arg);

#endif

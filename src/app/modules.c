/*
 * The built-in "modules" and the parameters the config file may set, in
 * Kamailio's names: one table that the config loader checks against and
 * the daemon reads from.
 */
#include <stddef.h>

#include "app/app.h"

#define NOLIMIT 1, 0 /* min > max: unbounded */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const debug_aliases[] = {"log_level", NULL};

static const struct cfg_param_def globals[] = {
	{"listen", CFG_STR, NOLIMIT, true, NULL,
	 "[proto:]addr[:port] [advertise addr:port]", NULL},
	{"children", CFG_INT, 1, 256, false, NULL, "worker threads", NULL},
	{"debug", CFG_INT, -5, 3, false, NULL, "log level, -5..3",
	 debug_aliases},
	{"log_stderror", CFG_INT, 0, 1, false, NULL, "accepted; stderr is the "
						      "default", NULL},
	{"log_facility", CFG_STR, NOLIMIT, false, NULL, "syslog facility", NULL},
	{"fork", CFG_INT, 0, 1, false, NULL, "accepted; imsdlgd runs in the "
					      "foreground", NULL},
	{"alias", CFG_STR, NOLIMIT, true, NULL, "accepted (names are not "
						 "resolved)", NULL},
	{"tcp_connection_lifetime", CFG_INT, 1, 86400, false, NULL,
	 "seconds an idle TCP connection is kept", NULL},
	{"max_msg_size", CFG_INT, 1024, 65535, false, NULL,
	 "largest SIP message accepted, bytes", NULL},
	{"server_header", CFG_STR, NOLIMIT, false, NULL,
	 "Server header line of local replies", NULL},
};

static const struct cfg_param_def tm_params[] = {
	{"fr_timer", CFG_INT, 100, 3600000, false, NULL,
	 "ms before a branch without final reply gets 408", NULL},
	{"fr_inv_timer", CFG_INT, 100, 3600000, false, NULL,
	 "ms an INVITE branch may ring before it is CANCELled", NULL},
	{"wt_timer", CFG_INT, 100, 600000, false, NULL,
	 "ms a finished transaction lingers", NULL},
	{"retr_timer1", CFG_INT, 10, 60000, false, NULL, "T1, ms", NULL},
	{"retr_timer2", CFG_INT, 10, 600000, false, NULL, "T2, ms", NULL},
	{"auto_inv_100", CFG_INT, 0, 1, false, NULL, "100 Trying for INVITE",
	 NULL},
};

static const struct cfg_param_def rr_params[] = {
	{"append_fromtag", CFG_INT, 0, 1, false, NULL,
	 "add ;ftag= to Record-Route", NULL},
	{"enable_double_rr", CFG_INT, 0, 2, false, NULL,
	 "accepted; two entries when sockets differ", NULL},
	{"enable_full_lr", CFG_INT, 0, 1, false, NULL, "accepted", NULL},
};

static const struct cfg_param_def maxfwd_params[] = {
	{"max_limit", CFG_INT, 0, 255, false, NULL, "accepted", NULL},
};

static const struct cfg_param_def app_lua_params[] = {
	{"load", CFG_STR, NOLIMIT, false, NULL, "the Lua routing script",
	 NULL},
};

static const char *const dialog_aliases[] = {"dialog", NULL};

static const struct cfg_module_def modules[] = {
	{"tm", NULL, tm_params, COUNT(tm_params)},
	{"sl", NULL, NULL, 0},
	{"rr", NULL, rr_params, COUNT(rr_params)},
	{"pv", NULL, NULL, 0},
	{"maxfwd", NULL, maxfwd_params, COUNT(maxfwd_params)},
	{"textops", NULL, NULL, 0},
	{"siputils", NULL, NULL, 0},
	{"corex", NULL, NULL, 0},
	{"kex", NULL, NULL, 0},
	{"ims_dialog", dialog_aliases, NULL, 0},
	{"app_lua", NULL, app_lua_params, COUNT(app_lua_params)},
	{"jsonrpcs", NULL, NULL, 0},
	{"xhttp", NULL, NULL, 0},
	{"xhttp_prom", NULL, NULL, 0},
	{"ctl", NULL, NULL, 0},
};

const struct cfg_schema app_schema = {
	globals,
	COUNT(globals),
	modules,
	COUNT(modules),
};

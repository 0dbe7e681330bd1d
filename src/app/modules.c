/*
 * The built-in "modules" and the parameters the config file may set, in
 * Kamailio's names: one table that the config loader checks against and
 * the daemon reads from.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "app/app.h"
#include "dns/dns.h"
#include "mgmt/mgmt.h"
#include "sip/sip.h"
#include "tm/tm.h"

#define NOLIMIT  1, 0 /* min > max: unbounded */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const debug_aliases[] = {"log_level", NULL};

/* What a Prometheus name may hold, short enough for mgmt's copy. */
static const char *metrics_prefix_check(const struct cfg_value *v)
{
	size_t n = 0;

	for (const char *c = v->s; c && *c; c++, n++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_'))
			return "letters, digits and '_' only";
	return n > 63 ? "at most 63 characters" : NULL;
}

static const char *prom_counter_check(const struct cfg_value *v)
{
	return prom_spec_check(PROM_COUNTER, v->s);
}

static const char *prom_gauge_check(const struct cfg_value *v)
{
	return prom_spec_check(PROM_GAUGE, v->s);
}

static const char *prom_histogram_check(const struct cfg_value *v)
{
	return prom_spec_check(PROM_HISTOGRAM, v->s);
}

static const char *alias_check(const struct cfg_value *v)
{
	struct tm_alias a;
	const char *why;

	return tm_alias_parse(&a, v->s, &why) ? why : NULL;
}

/* A server list c-ares takes. */
static const char *dns_servers_check(const struct cfg_value *v)
{
	static char why[320];
	struct dns_config c;

	dns_config_defaults(&c);
	if (strlen(v->s) >= sizeof(c.servers))
		return "too long";
	strcpy(c.servers, v->s);
	if (dns_config_check(&c, why, sizeof(why)))
		return why;
	return NULL;
}

/* A whole header line of the name the parameter is for (Kamailio's
 * server_header and user_agent_header), short and of one line. */
static const char *header_named(const struct cfg_value *v, const char *name)
{
	size_t n = strlen(name);

	if (strncasecmp(v->s, name, n) != 0 || v->s[n] != ':')
		return "a whole header line: Name: value";
	if (strlen(v->s) > 200 || strpbrk(v->s, "\r\n"))
		return "one line of at most 200 characters";
	return NULL;
}

static const char *server_header_check(const struct cfg_value *v)
{
	return header_named(v, "Server");
}

static const char *user_agent_header_check(const struct cfg_value *v)
{
	return header_named(v, "User-Agent");
}

/* log_prefix: one line, of a length its expansion can mostly keep. */
static const char *log_prefix_check(const struct cfg_value *v)
{
	if (strlen(v->s) > LOG_PREFIX_MAX || strpbrk(v->s, "\r\n"))
		return "one line of at most 256 characters";
	return NULL;
}

static const struct cfg_param_def globals[] = {
        {"listen", CFG_STR, NOLIMIT, true, NULL,
         "[proto:]addr[:port] [advertise addr:port]", NULL},
        {"children", CFG_INT, 1, 256, false, NULL, "worker threads", NULL},
        {"port", CFG_INT, 1, 65535, false, NULL,
         "port of a listen address that gives none (5060)", NULL},
        {"debug", CFG_INT, -5, 3, false, NULL, "log level, -5..3",
         debug_aliases},
        {"log_stderror", CFG_INT, 0, 1, false, NULL,
         "accepted; stderr is the "
         "default",
         NULL},
        {"log_facility", CFG_STR, NOLIMIT, false, NULL, "syslog facility",
         NULL},
        {"log_prefix", CFG_STR, NOLIMIT, false, log_prefix_check,
         "text with pseudo-variables put in front of what is logged while "
         "a route handles a message",
         NULL},
        {"fork", CFG_INT, 0, 1, false, NULL,
         "accepted; imsdlgd runs in the "
         "foreground",
         NULL},
        {"alias", CFG_STR, NOLIMIT, true, alias_check,
         "[proto:]host[:port] this proxy also answers to (is_myself, "
         "loose_route)",
         NULL},
        /* Kamailio settings whose "no" is what imsdlgd always does:
         * accepted so that its configurations load. */
        {"auto_aliases", CFG_INT, 0, 1, false, NULL,
         "accepted; imsdlgd adds no alias of its own (alias= does)", NULL},
        {"dns", CFG_INT, 0, 1, false, NULL,
         "accepted; a Via's address is never looked up", NULL},
        {"rev_dns", CFG_INT, 0, 1, false, NULL, "accepted; no reverse lookups",
         NULL},
        {"memdbg", CFG_INT, NOLIMIT, false, NULL,
         "accepted; Kamailio's allocator debugging", NULL},
        {"memlog", CFG_INT, NOLIMIT, false, NULL,
         "accepted; Kamailio's allocator debugging", NULL},
        {"tcp_connection_lifetime", CFG_INT, 1, 86400, false, NULL,
         "seconds an idle TCP connection is kept", NULL},
        {"tcp_max_connections", CFG_INT, 1, 1 << 20, false, NULL,
         "TCP connections open at most (accepted and opened)", NULL},
        {"tcp_connect_timeout", CFG_INT, 1, 3600, false, NULL,
         "seconds a TCP connection may take to connect", NULL},
        {"tcp_send_timeout", CFG_INT, 1, 3600, false, NULL,
         "seconds bytes may wait to be written on a TCP connection "
         "(a peer that stopped reading)",
         NULL},
        {"max_msg_size", CFG_INT, 1024, 65535, false, NULL,
         "largest SIP message accepted, bytes", NULL},
        {"server_header", CFG_STR, NOLIMIT, false, server_header_check,
         "Server header line of replies of ours", NULL},
        {"user_agent_header", CFG_STR, NOLIMIT, false, user_agent_header_check,
         "User-Agent header line of requests of ours", NULL},
        {"server_signature", CFG_INT, 0, 1, false, NULL,
         "0: neither server_header nor user_agent_header is sent", NULL},
        /* mgmt: not Kamailio's (its RPC listens through xhttp on a SIP
         * port, or on jsonrpcs' FIFO); see docs/rpc.md. */
        {"rpc_listen", CFG_STR, NOLIMIT, true, mgmt_listen_check,
         "http:[ADDR:]PORT or unix:PATH; repeatable", NULL},
        {"rpc_token", CFG_STR, NOLIMIT, false, NULL,
         "file holding the bearer token HTTP RPC requests must carry", NULL},
        /* DNS (RFC 3263) for destinations that are names: Kamailio's
         * names and units; dns_servers is ours (Kamailio reads only
         * /etc/resolv.conf). */
        {"dns_servers", CFG_STR, NOLIMIT, false, dns_servers_check,
         "ADDR[:PORT],... name servers (default: /etc/resolv.conf)", NULL},
        {"dns_retr_time", CFG_INT, 1, 60, false, NULL,
         "seconds before a DNS query is tried again", NULL},
        {"dns_retr_no", CFG_INT, 1, 10, false, NULL,
         "tries of a DNS query per server", NULL},
        {"dns_cache_max_ttl", CFG_INT, 0, 604800, false, NULL,
         "seconds a DNS answer is cached at most", NULL},
        {"dns_cache_negative_ttl", CFG_INT, 0, 86400, false, NULL,
         "seconds a name that does not exist is cached", NULL},
        {"dns_slow_query_ms", CFG_INT, 0, 3600000, false, NULL,
         "a lookup this long counts in dns:slow_dns_request (0: none)", NULL},
        {"dns_try_naptr", CFG_INT, 0, 1, false, NULL,
         "NAPTR (RFC 3263 section 4.1) for a name whose URI gives neither "
         "transport nor port",
         NULL},
        {"use_dns_failover", CFG_INT, 0, 1, false, NULL,
         "a branch to a name that gets no answer or 503 goes on to the "
         "name's next address (on; Kamailio's default is off)",
         NULL},
        {"metrics_prefix", CFG_STR, NOLIMIT, false, metrics_prefix_check,
         "start of the /metrics names (imsdlg_; kamailio_ for "
         "Kamailio's)",
         NULL},
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
        {"failure_reply_mode", CFG_INT, 0, 3, false, NULL,
         "0: earlier replies still compete when a failure route forks "
         "again; 1-3: they do not (3)",
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

static const struct cfg_param_def sanity_params[] = {
        {"default_checks", CFG_INT, 1, SIP_SANITY_ALL, false, NULL,
         "checks of sanity_check() without arguments (3047)", NULL},
        {"uri_checks", CFG_INT, 1, SIP_SANITY_URI_ALL, false, NULL,
         "URIs check 1024 parses (7: R-URI, From, To)", NULL},
        {"proxy_require", CFG_STR, NOLIMIT, false, NULL,
         "extensions a Proxy-Require may name, comma-separated", NULL},
        {"autodrop", CFG_INT, 0, 1, false, NULL,
         "accepted; KEMI sanity_check() returns -1 either way, as in "
         "Kamailio",
         NULL},
        {"noreply", CFG_INT, 0, 1, false, NULL,
         "1: a failed check sends no reply (sanity_reply() does)", NULL},
};

static const struct cfg_param_def app_lua_params[] = {
        {"load", CFG_STR, NOLIMIT, false, NULL, "the Lua routing script", NULL},
        {"route_time_limit", CFG_INT, 0, 3600000, false, NULL,
         "ms a route may run before it is stopped (0: no limit)", NULL},
};

static const char *power_of_two(const struct cfg_value *v)
{
	/* Kamailio "rounds" other values into a 2^29-slot table that fails
	 * to allocate (ims-dialog-behaviour.md §13 #35): say so instead. */
	return (v->i & (v->i - 1)) ? "must be a power of two" : NULL;
}

/* Header lines put into requests as they are: each must end in CRLF and
 * none be empty, which would end the header block. */
static const char *header_lines(const struct cfg_value *v)
{
	size_t n = strlen(v->s);

	if (n == 0)
		return NULL;
	if (n < 2 || strcmp(v->s + n - 2, "\r\n") != 0 ||
	    strncmp(v->s, "\r\n", 2) == 0 || strstr(v->s, "\r\n\r\n"))
		return "header lines, each ending in \\r\\n, none empty";
	return NULL;
}

static const char *db_mode_zero(const struct cfg_value *v)
{
	return v->i != 0 ? "persistence is not implemented yet: db_mode must "
	                   "be 0"
	                 : NULL;
}

static const struct cfg_param_def dialog_params[] = {
        {"hash_size", CFG_INT, 1, 1 << 24, false, power_of_two,
         "dialog table slots", NULL},
        {"rr_param", CFG_STR, NOLIMIT, false, NULL, "Record-Route cookie name",
         NULL},
        {"dlg_flag", CFG_INT, 0, 31, false, NULL,
         "message flag that makes an INVITE a tracked dialog", NULL},
        {"timeout_avp", CFG_STR, NOLIMIT, false, NULL,
         "AVP holding a dialog's lifetime, e.g. $avp(dlg_timeout)", NULL},
        {"default_timeout", CFG_INT, 1, 1 << 30, false, NULL,
         "dialog lifetime, s", NULL},
        {"dlg_extra_hdrs", CFG_STR, NOLIMIT, false, header_lines,
         "header lines for generated BYEs", NULL},
        {"dlg_match_mode", CFG_INT, 0, 2, false, NULL,
         "0 cookie, 1 cookie then tags, 2 tags", NULL},
        {"detect_spirals", CFG_INT, 0, 1, false, NULL, "0 or 1", NULL},
        {"profiles_with_value", CFG_STR, NOLIMIT, false, NULL,
         "profiles whose members carry a value, ';'-separated", NULL},
        {"profiles_no_value", CFG_STR, NOLIMIT, false, NULL,
         "profiles without values, ';'-separated", NULL},
        {"metrics_profiles", CFG_STR, NOLIMIT, false, NULL,
         "profiles whose sizes GET /metrics shows, ';'-separated", NULL},
        {"bridge_controller", CFG_STR, NOLIMIT, false, NULL,
         "From and Referred-By URI of dlg_bridge's requests", NULL},
        {"bridge_contact", CFG_STR, NOLIMIT, false, NULL,
         "Contact URI of dlg_bridge's requests", NULL},
        {"early_timeout", CFG_INT, 1, 1 << 30, false, NULL,
         "s in states 1 and 2", NULL},
        {"noack_timeout", CFG_INT, 1, 1 << 30, false, NULL, "s in state 3",
         NULL},
        {"end_timeout", CFG_INT, 0, 1 << 30, false, NULL,
         "s an ended dialog lingers", NULL},
        {"early_terminate_code", CFG_INT, 300, 699, false, NULL,
         "final reply when a ringing call is terminated", NULL},
        {"bye_early_code", CFG_INT, 300, 699, false, NULL,
         "Kamailio's dialog name of early_terminate_code", NULL},
        {"bye_early_reason", CFG_STR, NOLIMIT, false, NULL,
         "its reason phrase when none is given", NULL},
        {"timeout_noreset", CFG_INT, 0, 1, false, NULL,
         "1: in-dialog requests do not restart any dialog's lifetime", NULL},
        {"send_bye", CFG_INT, 0, 1, false, NULL,
         "0: an expired dialog is forgotten without BYEs", NULL},
        {"lreq_callee_headers", CFG_STR, NOLIMIT, false, header_lines,
         "header lines for every request of ours towards a callee", NULL},
        {"event_callback", CFG_STR, NOLIMIT, false, NULL,
         "Lua function called with dialog:start/end/failed/timeout", NULL},
        {"max_dialogs", CFG_INT, 0, 1 << 30, false, NULL,
         "live dialogs admitted (more get 503), 0 for no limit", NULL},
        {"max_memory", CFG_INT, 0, 1 << 20, false, NULL,
         "MB that calls may hold (more get 503), 0 for no limit", NULL},
        {"ka_timer", CFG_INT, 0, 1 << 30, false, NULL,
         "accepted: each dialog keeps its own keep-alive timer", NULL},
        {"ka_interval", CFG_INT, 0, 1 << 30, false, NULL,
         "s between keep-alive OPTIONS, 0 for none", NULL},
        {"ka_failed_limit", CFG_INT, 1, 1 << 30, false, NULL,
         "failed keep-alives in a row that end a call", NULL},
        {"enable_stats", CFG_INT, 0, 1, false, NULL, "accepted", NULL},
        {"initial_cbs_inscript", CFG_INT, 0, 1, false, NULL, "accepted", NULL},
        {"db_url", CFG_STR, NOLIMIT, false, NULL, "accepted", NULL},
        {"db_mode", CFG_INT, 0, 3, false, db_mode_zero, "0 only", NULL},
        {"db_update_period", CFG_INT, 1, 1 << 30, false, NULL, "accepted",
         NULL},
        {"db_fetch_rows", CFG_INT, 0, 1 << 30, false, NULL, "accepted", NULL},
        {"table_name", CFG_STR, NOLIMIT, false, NULL, "accepted", NULL},
};

static const char *const dialog_aliases[] = {"dialog", NULL};

/* jsonrpcs' parameters, so that a Kamailio configuration loads: the
 * transports themselves are chosen with rpc_listen. */
static const struct cfg_param_def jsonrpcs_params[] = {
        {"pretty_format", CFG_INT, 0, 1, false, NULL,
         "indent the replies over HTTP", NULL},
        {"transport", CFG_INT, 0, 15, false, NULL,
         "accepted; transports come from rpc_listen", NULL},
        {"fifo_name", CFG_STR, NOLIMIT, false, NULL,
         "accepted; no FIFO: use rpc_listen=unix:PATH", NULL},
        {"dgram_socket", CFG_STR, NOLIMIT, false, NULL,
         "accepted; no datagram socket: use rpc_listen=unix:PATH", NULL},
        {"tcp_socket", CFG_STR, NOLIMIT, false, NULL,
         "accepted; use rpc_listen=http:ADDR:PORT", NULL},
};

/* Kamailio's xhttp_prom, so that its configuration keeps its names: the
 * page itself is always there, the script's metrics are declared here
 * (docs/metrics.md). */
static const struct cfg_param_def xhttp_prom_params[] = {
        {"xhttp_prom_beginning", CFG_STR, NOLIMIT, false, metrics_prefix_check,
         "start of the /metrics names (metrics_prefix wins)", NULL},
        {"xhttp_prom_stats", CFG_STR, NOLIMIT, false, NULL,
         "accepted; /metrics shows every statistic", NULL},
        {"xhttp_prom_buf_size", CFG_INT, 0, 1 << 30, false, NULL, "accepted",
         NULL},
        {"xhttp_prom_timeout", CFG_INT, 0, 1 << 30, false, NULL,
         "minutes a script metric's series is kept unmoved (0: always)", NULL},
        {"prom_counter", CFG_STR, NOLIMIT, true, prom_counter_check,
         "a counter the script moves: name=N;label=a:b:c", NULL},
        {"prom_gauge", CFG_STR, NOLIMIT, true, prom_gauge_check,
         "a gauge the script sets: name=N;label=a:b:c", NULL},
        {"prom_histogram", CFG_STR, NOLIMIT, true, prom_histogram_check,
         "a histogram the script observes: "
         "name=N;label=a:b:c;buckets=0.1:1:10",
         NULL},
};

static const struct cfg_module_def modules[] = {
        {"tm", NULL, tm_params, COUNT(tm_params)},
        {"sl", NULL, NULL, 0},
        {"rr", NULL, rr_params, COUNT(rr_params)},
        {"pv", NULL, NULL, 0},
        {"maxfwd", NULL, maxfwd_params, COUNT(maxfwd_params)},
        {"textops", NULL, NULL, 0},
        {"siputils", NULL, NULL, 0},
        {"sanity", NULL, sanity_params, COUNT(sanity_params)},
        {"tmx", NULL, NULL, 0},
        {"xlog", NULL, NULL, 0},
        {"corex", NULL, NULL, 0},
        {"kex", NULL, NULL, 0},
        {"kemix", NULL, NULL, 0}, /* KSR.kx */
        {"ims_dialog", dialog_aliases, dialog_params, COUNT(dialog_params)},
        {"app_lua", NULL, app_lua_params, COUNT(app_lua_params)},
        {"jsonrpcs", NULL, jsonrpcs_params, COUNT(jsonrpcs_params)},
        {"xhttp", NULL, NULL, 0},
        {"xhttp_prom", NULL, xhttp_prom_params, COUNT(xhttp_prom_params)},
        {"ctl", NULL, NULL, 0},
};

const struct cfg_schema app_schema = {
        globals,
        COUNT(globals),
        modules,
        COUNT(modules),
};

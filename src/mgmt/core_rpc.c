/*
 * The methods every server has: system.* (introspection, as Kamailio's
 * core) and core.* (what the daemon is and since when). Written against
 * the public handler API like any component's methods.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mgmt/mgmt_int.h"

#ifndef IMSDLG_VERSION
#define IMSDLG_VERSION "0.0.0"
#endif
#ifndef IMSDLG_BUILD_ARCH
#define IMSDLG_BUILD_ARCH "unknown"
#endif

#define MAX_NAMES 512

#if defined(__clang__)
static const char compiler[] = "clang " __clang_version__;
#elif defined(__GNUC__)
static const char compiler[] = "gcc " __VERSION__;
#else
static const char compiler[] = "unknown";
#endif

/* "imsdlgd 0.1.0 (x86_64/linux)", the shape of Kamailio's core.version. */
static const char version[] =
        "imsdlgd " IMSDLG_VERSION " (" IMSDLG_BUILD_ARCH ")";

static void system_list_methods(struct rpc_ctx *ctx)
{
	const char *names[MAX_NAMES];
	size_t n = rpc_method_names(names, MAX_NAMES);
	struct rpc_node *a = rpc_add_array(ctx, NULL, NULL);

	for (size_t i = 0; i < n; i++)
		rpc_add_str(ctx, a, NULL, names[i]);
}

static void system_method_help(struct rpc_ctx *ctx)
{
	const struct rpc_method *m;
	const char *name;

	if (rpc_param_str(ctx, 0, "method", &name))
		return;
	m = rpc_lookup(name);
	if (m == NULL) {
		/* Kamailio's code and words for it. */
		rpc_fault(ctx, 400, "command not found: %s", name);
		return;
	}
	rpc_add_str(ctx, NULL, NULL,
	            m->help && m->help[0] ? m->help : "undocumented");
}

static void core_version(struct rpc_ctx *ctx)
{
	rpc_add_str(ctx, NULL, NULL, version);
}

/* ctime() without its newline, as Kamailio prints times here. */
static void add_ctime(struct rpc_ctx *ctx, struct rpc_node *o, const char *key,
                      time_t t)
{
	char buf[64];
	size_t n;

	if (ctime_r(&t, buf) == NULL) {
		rpc_add_null(ctx, o, key);
		return;
	}
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	rpc_add_str(ctx, o, key, buf);
}

static void core_uptime(struct rpc_ctx *ctx)
{
	struct mgmt *m = rpc_server(ctx);
	time_t now = time(NULL);
	struct rpc_node *o = rpc_add_object(ctx, NULL, NULL);

	add_ctime(ctx, o, "now", now);
	add_ctime(ctx, o, "up_since", m->started);
	rpc_add_int(ctx, o, "uptime", (long long)(now - m->started));
}

static void core_info(struct rpc_ctx *ctx)
{
	struct mgmt *m = rpc_server(ctx);
	struct rpc_node *o = rpc_add_object(ctx, NULL, NULL);
	struct rpc_node *a;

	rpc_add_str(ctx, o, "version", version);
	rpc_add_str(ctx, o, "compiler", compiler);
	rpc_add_int(ctx, o, "pid", (long long)getpid());
	rpc_add_int(ctx, o, "workers", rpc_workers(ctx));
	a = rpc_add_array(ctx, o, "listeners");
	if (m->cfg.rt != NULL) {
		unsigned n;
		const struct net_listener *l = rt_listeners(m->cfg.rt, &n);

		for (unsigned i = 0; i < n; i++)
			rpc_add_str(ctx, a, NULL, l[i].name);
	}
	a = rpc_add_array(ctx, o, "rpc");
	for (unsigned i = 0; i < mgmt_endpoints(m); i++)
		rpc_add_str(ctx, a, NULL, mgmt_endpoint(m, i));
	add_ctime(ctx, o, "up_since", m->started);
	rpc_add_int(ctx, o, "uptime", (long long)(time(NULL) - m->started));
}

static const struct rpc_method builtins[] = {
        {"system.listMethods", system_list_methods,
         "Lists the RPC methods, sorted"},
        {"system.methodHelp", system_method_help,
         "Help line of a method: system.methodHelp NAME"},
        {"core.version", core_version, "Version of the daemon"},
        {"core.uptime", core_uptime,
         "Current time, start time and uptime in seconds"},
        {"core.info", core_info,
         "Version, process id, workers, SIP listeners and RPC endpoints"},
};

/* Global: the built-ins go in once, whichever server starts first. */
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static void register_builtins(void)
{
	if (rpc_register(builtins, sizeof(builtins) / sizeof(builtins[0])) ||
	    rpc_register(&jrpc_echo_method, 1) || stats_register_methods() ||
	    metrics_register_page())
		LOG_ERR("rpc: cannot register the built-in methods");
}

void mgmt_register_builtins(void)
{
	pthread_once(&builtins_once, register_builtins);
}

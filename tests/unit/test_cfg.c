/* cfg: the Kamailio-syntax configuration loader. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/cfg.h"

/* ------------------------------------------------------ the fake binary */

static const char *power_of_two(const struct cfg_value *v)
{
	return v->i > 0 && (v->i & (v->i - 1)) == 0 ? NULL
	                                            : "must be a power of two";
}

static const char *no_spaces(const struct cfg_value *v)
{
	return strchr(v->s, ' ') ? "must not contain spaces" : NULL;
}

static const char *const user_aliases[] = {"uid", NULL};

static const struct cfg_param_def globals[] = {
        {.name = "debug",
         .type = CFG_INT,
         .min = -5,
         .max = 3,
         .help = "log level"},
        {.name = "children", .type = CFG_INT, .min = 1, .max = 1024},
        {.name = "fork", .type = CFG_INT, .min = 0, .max = 1},
        {.name = "log_stderror", .type = CFG_INT, .min = 0, .max = 1},
        {.name = "tcp_connection_lifetime",
         .type = CFG_INT,
         .min = 1,
         .max = 0},
        {.name = "listen", .type = CFG_STR, .repeatable = true},
        {.name = "alias", .type = CFG_STR, .repeatable = true},
        {.name = "rpc_listen", .type = CFG_STR},
        {.name = "server_header", .type = CFG_STR},
        {.name = "log_facility", .type = CFG_STR},
        {.name = "user", .type = CFG_STR, .aliases = user_aliases},
        {.name = "log_name", .type = CFG_STR, .check = no_spaces},
};

static const struct cfg_param_def tm_params[] = {
        {.name = "fr_timer",
         .type = CFG_INT,
         .min = 100,
         .max = 3600000,
         .help = "final response timeout in ms"},
        {.name = "fr_inv_timer", .type = CFG_INT, .min = 100, .max = 3600000},
};

static const struct cfg_param_def rr_params[] = {
        {.name = "enable_full_lr", .type = CFG_INT, .min = 0, .max = 1},
        {.name = "append_fromtag", .type = CFG_INT, .min = 0, .max = 1},
};

static const struct cfg_param_def dlg_params[] = {
        {.name = "hash_size",
         .type = CFG_INT,
         .min = 1,
         .max = 65536,
         .check = power_of_two},
        {.name = "db_url", .type = CFG_STR},
};

static const struct cfg_param_def usrloc_params[] = {
        {.name = "db_url", .type = CFG_STR},
};

static const struct cfg_param_def lua_params[] = {
        {.name = "load", .type = CFG_STR, .repeatable = true},
};

static const char *const dlg_aliases[] = {"dialog", NULL};

static const struct cfg_module_def modules[] = {
        {"tm", NULL, tm_params, 2},
        {"sl", NULL, NULL, 0},
        {"rr", NULL, rr_params, 2},
        {"ims_dialog", dlg_aliases, dlg_params, 2},
        {"usrloc", NULL, usrloc_params, 1},
        {"app_lua", NULL, lua_params, 1},
};

static const struct cfg_schema schema = {
        globals,
        sizeof(globals) / sizeof(globals[0]),
        modules,
        sizeof(modules) / sizeof(modules[0]),
};

#define AVAILABLE "available: tm, sl, rr, ims_dialog, usrloc, app_lua"

/* ------------------------------------------------------------- helpers */

static struct cfg *load_defs(const char *text, const char *const *defines)
{
	struct cfg *c = NULL;
	char err[1024] = "";
	int rc = cfg_load_string(&c, "t.cfg", text, strlen(text), &schema,
	                         defines, err, sizeof(err));

	if (rc)
		fail_msg("load failed (%d): %s", rc, err);
	assert_non_null(c);
	return c;
}

static struct cfg *load(const char *text)
{
	return load_defs(text, NULL);
}

/* Loading text as "t.cfg" fails with exactly msg, leaving out alone. */
static void expect_err(const char *text, const char *msg)
{
	struct cfg *c = (struct cfg *)&c;
	char err[1024] = "";
	int rc = cfg_load_string(&c, "t.cfg", text, strlen(text), &schema, NULL,
	                         err, sizeof(err));

	if (rc != EINVAL)
		fail_msg("expected \"%s\", got %d \"%s\"", msg, rc, err);
	assert_string_equal(err, msg);
	assert_ptr_equal(c, (struct cfg *)&c);
}

/* The line holding the first occurrence of needle. */
static unsigned line_of(const char *text, const char *needle)
{
	const char *at = strstr(text, needle);
	unsigned line = 1;

	assert_non_null(at);
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

/* A scratch directory; every file written is removed at the end. */
static char dir[64];
static char *made[64];
static size_t nmade;

static int setup_dir(void **state)
{
	strcpy(dir, "/tmp/test_cfg.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	while (nmade > 0) {
		char *p = made[--nmade];

		if (remove(p) != 0)
			fprintf(stderr, "cannot remove %s\n", p);
		free(p);
	}
	return rmdir(dir);
}

/* The path of name in the scratch directory (rotating static buffers). */
static const char *path(const char *name)
{
	static char bufs[8][256];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

static void track(const char *p)
{
	for (size_t i = 0; i < nmade; i++)
		if (strcmp(made[i], p) == 0)
			return;
	assert_true(nmade < sizeof(made) / sizeof(made[0]));
	made[nmade] = strdup(p);
	assert_non_null(made[nmade]);
	nmade++;
}

static void mkdir_in(const char *name)
{
	const char *p = path(name);

	if (mkdir(p, 0700) != 0)
		assert_int_equal(errno, EEXIST);
	track(p);
}

static void put(const char *name, const char *text)
{
	const char *p = path(name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	track(p);
}

static int load_file(struct cfg **c, const char *name, char *err,
                     size_t errsize)
{
	return cfg_load(c, path(name), &schema, NULL, err, errsize);
}

/* -------------------------------------------------------------- numbers */

static void test_parse_int(void **state)
{
	static const struct {
		const char *s;
		int rc;
		long long v;
	} cases[] = {
	        {"0", 0, 0},
	        {"5060", 0, 5060},
	        {"-1", 0, -1},
	        {"-0", 0, 0},
	        {"0x1F", 0, 31},
	        {"0Xff", 0, 255},
	        {"-0x10", 0, -16},
	        {"0600", 0, 0600}, /* octal, as Kamailio: file modes */
	        {"101b", 0, 5},
	        {"0b", 0, 0},
	        {"-11b", 0, -3},
	        {"9223372036854775807", 0, LLONG_MAX},
	        {"-9223372036854775808", 0, LLONG_MIN},
	        {"0x7fffffffffffffff", 0, LLONG_MAX},
	        {"9223372036854775808", ERANGE, 0},
	        {"-9223372036854775809", ERANGE, 0},
	        {"99999999999999999999999", ERANGE, 0},
	        {"0x10000000000000000", ERANGE, 0},
	        {"", EINVAL, 0},
	        {"-", EINVAL, 0},
	        {"+1", EINVAL, 0},
	        {" 1", EINVAL, 0},
	        {"1 ", EINVAL, 0},
	        {"--1", EINVAL, 0},
	        {"0x", EINVAL, 0},
	        {"0x-1", EINVAL, 0},
	        {"08", EINVAL, 0},
	        {"12b", EINVAL, 0},
	        {"b", EINVAL, 0},
	        {"1a", EINVAL, 0},
	        {"1.5", EINVAL, 0},
	        {"yes", EINVAL, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long v = 4242;
		int rc = cfg_parse_int(&v, slice_cstr(cases[i].s));

		if (rc != cases[i].rc)
			fail_msg("\"%s\": rc %d, want %d", cases[i].s, rc,
			         cases[i].rc);
		assert_int_equal(v, rc ? 4242 : cases[i].v);
	}
}

static void test_parse_int_slices(void **state)
{
	char zeros[3000];
	long long v = 0;

	/* A slice is not NUL-terminated: only its bytes count. */
	assert_int_equal(cfg_parse_int(&v, slice_make("12345", 3)), 0);
	assert_int_equal(v, 123);
	assert_int_equal(cfg_parse_int(&v, slice_make("7;", 1)), 0);
	assert_int_equal(v, 7);
	/* No fixed buffer: many leading zeros are still a number. */
	memset(zeros, '0', sizeof(zeros));
	zeros[sizeof(zeros) - 2] = '1';
	zeros[sizeof(zeros) - 1] = '7';
	assert_int_equal(cfg_parse_int(&v, slice_make(zeros, sizeof(zeros))),
	                 0);
	assert_int_equal(v, 017);
}

/* ------------------------------------------------------- a full config */

static const char full[] =
        "#!KAMAILIO\n"
        "#\n"
        "# Kamailio-style configuration for imsdlg\n"
        "#\n"
        "\n"
        "#!define WITH_DEBUG\n"
        "#!define FR_TIMER 30000\n"
        "#!define DBURL \"mysql://kamailio:secret@localhost/kamailio\"\n"
        "#!trydef WORKERS 8\n"
        "#!define PUBLIC_IP 203.0.113.1\n"
        "\n"
        "####### Global Parameters #########\n"
        "\n"
        "#!ifdef WITH_DEBUG\n"
        "debug=3\n"
        "log_stderror=yes\n"
        "#!else\n"
        "debug=2\n"
        "log_stderror=no\n"
        "#!endif\n"
        "\n"
        "fork=yes\n"
        "children=WORKERS\n"
        "\n"
        "/* uncomment the next line to disable TCP (default on) */\n"
        "#disable_tcp=yes\n"
        "\n"
        "listen=udp:127.0.0.1:5060\n"
        "listen=tcp:[::1]:5060\n"
        "listen = 10.0.0.1\n"
        "listen=udp:10.0.0.1:5060 advertise PUBLIC_IP:5060\n"
        "alias=\"ims.example.net\"\n"
        "rpc_listen = unix:/run/imsdlg/rpc.sock\n"
        "server_header=\"Server: imsdlg\"\n"
        "log_facility=LOG_LOCAL0;\n"
        "uid=kamailio\n"
        "\n"
        "####### Modules Section ########\n"
        "\n"
        "mpath=\"/usr/lib/x86_64-linux-gnu/kamailio/modules/\"\n"
        "\n"
        "loadmodule \"tm.so\"\n"
        "loadmodule \"sl\"\n"
        "loadmodule \"/usr/lib/x86_64-linux-gnu/kamailio/modules/rr.so\"\n"
        "loadmodule \"dialog.so\"\n"
        "loadmodule \"app_lua.so\"\n"
        "\n"
        "# ----- tm params -----\n"
        "modparam(\"tm\", \"fr_timer\", FR_TIMER)\n"
        "modparam(\"tm\", \"fr_inv_timer\", 120000)\n"
        "\n"
        "# ----- rr params -----\n"
        "modparam(\"rr\", \"enable_full_lr\", 0)\n"
        "modparam(\"rr\", \"append_fromtag\", on)\n"
        "\n"
        "#!ifdef MOD_ims_dialog\n"
        "modparam(\"dialog\", \"hash_size\", 4096)\n"
        "modparam(\"ims_dialog\", \"db_url\",\n"
        "\tDBURL)\n"
        "#!endif\n"
        "\n"
        "modparam(\"app_lua\", \"load\", \"/etc/imsdlg/main.lua\")\n"
        "modparam(\"app_lua\", \"load\", \"/etc/imsdlg/extra.lua\")\n"
        "\n"
        "cfgengine \"lua\"\n";

static void test_full_config(void **state)
{
	struct cfg *c = load(full);
	const struct cfg_entry *e;
	size_t n;

	assert_int_equal(cfg_int(c, NULL, "debug", -1), 3);
	assert_int_equal(cfg_int(c, NULL, "log_stderror", -1), 1);
	assert_int_equal(cfg_int(c, NULL, "fork", -1), 1);
	assert_int_equal(cfg_int(c, NULL, "children", -1), 8);

	e = cfg_next(c, NULL, NULL, "listen");
	assert_non_null(e);
	assert_string_equal(e->v.s, "udp:127.0.0.1:5060");
	assert_string_equal(e->file, "t.cfg");
	assert_int_equal(e->line, line_of(full, "listen=udp:127"));
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s, "tcp:[::1]:5060");
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s, "10.0.0.1");
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s,
	                    "udp:10.0.0.1:5060 advertise 203.0.113.1:5060");
	assert_null(cfg_next(c, e, NULL, "listen"));

	assert_string_equal(cfg_str(c, NULL, "alias", NULL), "ims.example.net");
	assert_string_equal(cfg_str(c, NULL, "rpc_listen", NULL),
	                    "unix:/run/imsdlg/rpc.sock");
	assert_string_equal(cfg_str(c, NULL, "server_header", NULL),
	                    "Server: imsdlg");
	assert_string_equal(cfg_str(c, NULL, "log_facility", NULL),
	                    "LOG_LOCAL0");
	assert_string_equal(cfg_str(c, NULL, "user", NULL), "kamailio");
	assert_string_equal(cfg_str(c, NULL, "uid", NULL), "kamailio");

	assert_true(cfg_module_loaded(c, "tm"));
	assert_true(cfg_module_loaded(c, "sl"));
	assert_true(cfg_module_loaded(c, "rr"));
	assert_true(cfg_module_loaded(c, "ims_dialog"));
	assert_true(cfg_module_loaded(c, "dialog"));
	assert_true(cfg_module_loaded(c, "app_lua"));
	assert_false(cfg_module_loaded(c, "usrloc"));
	assert_false(cfg_module_loaded(c, "nosuch"));

	assert_int_equal(cfg_int(c, "tm", "fr_timer", -1), 30000);
	assert_int_equal(cfg_int(c, "tm", "fr_inv_timer", -1), 120000);
	assert_int_equal(cfg_int(c, "rr", "enable_full_lr", -1), 0);
	assert_int_equal(cfg_int(c, "rr", "append_fromtag", -1), 1);
	assert_int_equal(cfg_int(c, "dialog", "hash_size", -1), 4096);
	e = cfg_get(c, "ims_dialog", "hash_size");
	assert_non_null(e);
	assert_string_equal(e->module, "ims_dialog");
	assert_int_equal(e->line, line_of(full, "4096"));
	e = cfg_get(c, "ims_dialog", "db_url");
	assert_string_equal(e->v.s,
	                    "mysql://kamailio:secret@localhost/kamailio");
	/* A value on its own line is reported there. */
	assert_int_equal(e->line, line_of(full, "\tDBURL"));

	e = cfg_next(c, NULL, "app_lua", "load");
	assert_string_equal(e->v.s, "/etc/imsdlg/main.lua");
	e = cfg_next(c, e, "app_lua", "load");
	assert_string_equal(e->v.s, "/etc/imsdlg/extra.lua");
	assert_null(cfg_next(c, e, "app_lua", "load"));

	assert_string_equal(cfg_engine(c), "lua");

	/* 13 globals (4 of them listen) and 8 module parameters. */
	cfg_entries(c, &n);
	assert_int_equal(n, 21);
	cfg_free(c);
}

/* ------------------------------------------------------------ comments */

static void test_comments(void **state)
{
	struct cfg *c = load("# hash comment\n"
	                     "// slash comment\n"
	                     "debug=1 # after a statement\n"
	                     "children=2 // after a statement\n"
	                     "fork=0 /* inline */ ;\n"
	                     "/* a block\n"
	                     "   over lines, with debug=3 and \"quotes\n"
	                     "   /* nested */ still in the comment\n"
	                     "*/\n"
	                     "log_stderror=/* inside */1\n"
	                     "rpc_listen=http:127.0.0.1:5080 # a comment\n"
	                     "alias=a.example.com// no blank needed\n");

	assert_int_equal(cfg_int(c, NULL, "debug", -1), 1);
	assert_int_equal(cfg_int(c, NULL, "children", -1), 2);
	assert_int_equal(cfg_int(c, NULL, "fork", -1), 0);
	assert_int_equal(cfg_int(c, NULL, "log_stderror", -1), 1);
	assert_int_equal(cfg_get(c, NULL, "log_stderror")->line, 10);
	assert_string_equal(cfg_str(c, NULL, "rpc_listen", NULL),
	                    "http:127.0.0.1:5080");
	assert_string_equal(cfg_str(c, NULL, "alias", NULL), "a.example.com");
	cfg_free(c);

	/* Lines are counted through multi-line comments. */
	expect_err("/*\n\n\n*/ debug=2\n"
	           "/* one\n two */\n"
	           "nosuch=1\n",
	           "t.cfg:7: unknown global parameter \"nosuch\"");
	expect_err("debug=1\n"
	           "/* never\n"
	           "closed\n",
	           "t.cfg:2: unterminated comment");
	/* Nested like Kamailio: the first close leaves the outer open. */
	expect_err("/* outer\n"
	           "/* inner */\n"
	           "debug=1\n",
	           "t.cfg:1: unterminated comment");
}

/* ------------------------------------------------------------- strings */

static void test_strings(void **state)
{
	struct cfg *c = load("server_header=\"a\\\"b\\\\c\\nd\\te\"\n"
	                     "log_facility=\"\\x41\\102\\q\\0\"\n"
	                     "rpc_listen=\"joined \"  \"over\"\n"
	                     "   \"lines\"\n"
	                     "alias='single \\n \"verbatim\"'\n"
	                     "alias=\"esc\\\n"
	                     "aped newline\"\n"
	                     "user=\"\"\n"
	                     "debug=1\n");
	const struct cfg_entry *e;

	assert_string_equal(cfg_str(c, NULL, "server_header", NULL),
	                    "a\"b\\c\nd\te");
	/* \x41 \102 decode; an unknown escape keeps its backslash. */
	assert_string_equal(cfg_str(c, NULL, "log_facility", NULL), "AB\\q\\0");
	assert_string_equal(cfg_str(c, NULL, "rpc_listen", NULL),
	                    "joined overlines");
	e = cfg_next(c, NULL, NULL, "alias");
	assert_string_equal(e->v.s, "single \\n \"verbatim\"");
	e = cfg_next(c, e, NULL, "alias");
	assert_string_equal(e->v.s, "escaped newline");
	assert_int_equal(e->line, 6);
	assert_string_equal(cfg_str(c, NULL, "user", NULL), "");
	/* Lines are counted inside joined and escaped strings. */
	assert_int_equal(cfg_get(c, NULL, "debug")->line, 9);
	cfg_free(c);

	expect_err("debug=1\nserver_header=\"open\n\n",
	           "t.cfg:2: unterminated string");
	expect_err("server_header='open\n", "t.cfg:1: unterminated string");
	expect_err("server_header=\"a\\x00b\"\n",
	           "t.cfg:1: NUL character in string");
	expect_err("server_header=\"a\\000b\"\n",
	           "t.cfg:1: NUL character in string");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "debug=1\nchil\0dren=2\n";
	struct cfg *c = NULL;
	char err[256];

	assert_int_equal(cfg_load_string(&c, "t.cfg", text, sizeof(text) - 1,
	                                 &schema, NULL, err, sizeof(err)),
	                 EINVAL);
	assert_string_equal(err, "t.cfg:2: NUL byte in the file");
	assert_null(c);
}

/* -------------------------------------------------------------- values */

static void test_int_values(void **state)
{
	struct cfg *c = load("debug=-5\n"
	                     "children = 0x10 ;\n"
	                     "tcp_connection_lifetime=-9223372036854775808\n"
	                     "fork=off; log_stderror=true\n");

	assert_int_equal(cfg_int(c, NULL, "debug", 0), -5);
	assert_int_equal(cfg_int(c, NULL, "children", 0), 16);
	/* min > max: unbounded. */
	assert_int_equal(cfg_int(c, NULL, "tcp_connection_lifetime", 0),
	                 LLONG_MIN);
	assert_int_equal(cfg_int(c, NULL, "fork", 7), 0);
	assert_int_equal(cfg_int(c, NULL, "log_stderror", 7), 1);
	assert_int_equal(cfg_get(c, NULL, "log_stderror")->line, 4);
	cfg_free(c);

	static const struct {
		const char *word;
		int v;
	} words[] = {
	        {"yes", 1},  {"no", 0},    {"on", 1},     {"off", 0},
	        {"true", 1}, {"false", 0}, {"enable", 1}, {"disable", 0},
	        {"1", 1},    {"0", 0},
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		char text[64];

		snprintf(text, sizeof(text), "fork=%s\n", words[i].word);
		c = load(text);
		assert_int_equal(cfg_int(c, NULL, "fork", 7), words[i].v);
		cfg_free(c);
	}

	expect_err("children=\"4\"\n",
	           "t.cfg:1: \"children\" expects an integer");
	expect_err("children=four\n",
	           "t.cfg:1: \"children\" expects an integer");
	expect_err("children=4 8\n",
	           "t.cfg:1: expected ';' or a new line, not \"8\"");
	expect_err("children=YES\n",
	           "t.cfg:1: \"children\" expects an integer");
	expect_err("children=0\n",
	           "t.cfg:1: \"children\" must be between 1 and 1024, not 0");
	expect_err("\ndebug=4\n", "t.cfg:2: \"debug\" must be between -5 and "
	                          "3, not 4 (log level)");
	expect_err("debug=x\n",
	           "t.cfg:1: \"debug\" expects an integer (log level)");
	expect_err("children=99999999999999999999\n",
	           "t.cfg:1: \"children\": 99999999999999999999 is out of "
	           "range");
}

static void test_string_values(void **state)
{
	struct cfg *c = load("log_name=imsdlg\n"
	                     "server_header=123\n"
	                     "log_facility=yes\n"
	                     "user=\"x\" y\n");

	assert_string_equal(cfg_str(c, NULL, "log_name", NULL), "imsdlg");
	/* A global string takes any value as written. */
	assert_string_equal(cfg_str(c, NULL, "server_header", NULL), "123");
	assert_string_equal(cfg_str(c, NULL, "log_facility", NULL), "yes");
	assert_string_equal(cfg_str(c, NULL, "user", NULL), "\"x\" y");
	/* An int parameter read as a string, and the reverse: defaults. */
	assert_string_equal(cfg_str(c, NULL, "debug", "dflt"), "dflt");
	assert_int_equal(cfg_int(c, NULL, "user", 5), 5);
	cfg_free(c);

	expect_err("log_name=\"im sdlg\"\n",
	           "t.cfg:1: \"log_name\": must not contain spaces");
}

static void test_listen_forms(void **state)
{
	static const char *const forms[] = {
	        "udp:127.0.0.1:5060",
	        "tcp:[::1]:5060",
	        "127.0.0.1",
	        "[2001:db8::1]",
	        "tls:eth0:5061",
	        "udp:1.2.3.4:5060 advertise 5.6.7.8:5060",
	        "tcp:10.0.0.1:5060 advertise ims.example.net:5060 name "
	        "\"core\"",
	        "udp:1.2.3.4:5060 name \"a;b\"",
	};
	struct buf {
		char text[256];
	} b;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct cfg *c;

		snprintf(b.text, sizeof(b.text), "listen=%s\n", forms[i]);
		c = load(b.text);
		assert_string_equal(cfg_str(c, NULL, "listen", NULL), forms[i]);
		cfg_free(c);
		/* Blanks around '=' and in the value, and a ';'. */
		snprintf(b.text, sizeof(b.text), "listen  =\t%s  ;\n",
		         forms[i]);
		c = load(b.text);
		assert_string_equal(cfg_str(c, NULL, "listen", NULL), forms[i]);
		cfg_free(c);
	}

	/* Extra blanks fold to one space; a line continues after '\'. */
	struct cfg *c = load("listen=udp:1.2.3.4:5060    advertise \\\n"
	                     "\t5.6.7.8:5060\n"
	                     "debug=1\n");
	assert_string_equal(cfg_str(c, NULL, "listen", NULL),
	                    "udp:1.2.3.4:5060 advertise 5.6.7.8:5060");
	assert_int_equal(cfg_get(c, NULL, "debug")->line, 3);
	cfg_free(c);

	expect_err("listen=udp:1.2.3.4:5060 (x)\n",
	           "t.cfg:1: unexpected \"(\" in the value of \"listen\"");
}

static void test_statements(void **state)
{
	/* Several per line after ';', CRLF line ends, a missing final
	 * new line, a UTF-8 byte order mark. */
	struct cfg *c = load("\xEF\xBB\xBF"
	                     "debug=1; children=2;fork=0\r\n"
	                     "\r\n"
	                     ";;\n"
	                     "log_stderror=1");

	assert_int_equal(cfg_int(c, NULL, "debug", -1), 1);
	assert_int_equal(cfg_int(c, NULL, "children", -1), 2);
	assert_int_equal(cfg_int(c, NULL, "fork", -1), 0);
	assert_int_equal(cfg_int(c, NULL, "log_stderror", -1), 1);
	assert_int_equal(cfg_get(c, NULL, "log_stderror")->line, 4);
	cfg_free(c);

	c = load("");
	assert_null(cfg_get(c, NULL, "debug"));
	assert_null(cfg_engine(c));
	cfg_free(c);

	expect_err("request_route {\n\txlog(\"hi\");\n}\n",
	           "t.cfg:1: route blocks are not supported; use cfgengine "
	           "\"lua\"");
	expect_err("debug=1\nroute[RELAY] {\n}\n",
	           "t.cfg:2: route blocks are not supported; use cfgengine "
	           "\"lua\"");
	expect_err("event_route[xhttp:request] {\n}\n",
	           "t.cfg:1: route blocks are not supported; use cfgengine "
	           "\"lua\"");
	expect_err("onreply_route\n{\n}\n",
	           "t.cfg:1: route blocks are not supported; use cfgengine "
	           "\"lua\"");
	expect_err("\n\nroutes=1\n", "t.cfg:3: unknown global parameter "
	                             "\"routes\"");
	expect_err("debug=1\nforce_rport()\n",
	           "t.cfg:2: unknown statement \"force_rport\"");
	expect_err("debug\n", "t.cfg:1: unknown statement \"debug\"");
	expect_err("debug=\nchildren=1\n",
	           "t.cfg:1: missing value for \"debug\"");
	expect_err("debug=;\n", "t.cfg:1: missing value for \"debug\"");
	expect_err("debug=", "t.cfg:1: missing value for \"debug\"");
	expect_err("debug=1 children=2\n",
	           "t.cfg:1: expected ';' or a new line, not \"children\"");
	expect_err("server_header=\"x\"\n}\n", "t.cfg:2: unexpected \"}\"");
	expect_err("\"x\"\n", "t.cfg:1: unexpected quoted string");
	expect_err("= 1\n", "t.cfg:1: unexpected \"=\"");
	expect_err("debug=1\n\x01\n", "t.cfg:2: unexpected character 0x01");
	expect_err("loadmodule \"tm\" loadmodule \"sl\"\n",
	           "t.cfg:1: expected ';' or a new line, not \"loadmodule\"");
}

static void test_last_wins(void **state)
{
	struct cfg *c = load("debug=1\n"
	                     "listen=a\n"
	                     "debug=2\n"
	                     "listen=b\n"
	                     "debug=3\n");
	const struct cfg_entry *all, *e;
	size_t n;

	e = cfg_get(c, NULL, "debug");
	assert_int_equal(e->v.i, 3);
	assert_int_equal(e->line, 5);
	/* Only the assignment in effect is kept... */
	assert_int_equal(cfg_next(c, NULL, NULL, "debug"), e);
	assert_null(cfg_next(c, e, NULL, "debug"));
	/* ... while a repeatable one keeps them all, in file order. */
	e = cfg_get(c, NULL, "listen");
	assert_string_equal(e->v.s, "b");
	all = cfg_entries(c, &n);
	assert_int_equal(n, 3);
	assert_string_equal(all[0].v.s, "a");
	assert_string_equal(all[1].v.s, "b");
	assert_int_equal(all[2].v.i, 3);
	assert_null(all[2].module);
	cfg_free(c);
}

/* ------------------------------------------------------------- defines */

static void test_defines(void **state)
{
	static const char text[] =
	        "#!define WORKERS 4\n"
	        "#!define FR 45000\n"
	        "#!define HOST 192.0.2.7\n"
	        "#!define PORT 5070\n"
	        "#!define SOCK udp:HOST:PORT\n"
	        "#!define HDR \"Server: x\" // trailing comment\n"
	        "#!define LONG a \\\n"
	        "  b \\\n"
	        "  c\n"
	        "#!define EMPTY\n"
	        "#!define SELF SELF\n"
	        "#!trydef WORKERS 99\n"
	        "#!define GONE 1\n"
	        "#!undef GONE\n"
	        "#!undef NEVER_DEFINED\n"
	        "!!define BANG 2\n"
	        "#!redefine FR 46000\n"
	        "#!redef PORT 5080\n"
	        "children=WORKERS\n"
	        "debug=BANG\n"
	        "listen=SOCK\n"
	        "listen=tcp:HOST:PORT advertise HOST_X:PORT\n"
	        "server_header=HDR\n"
	        "log_facility=LONG\n"
	        "user=SELF\n"
	        "#!ifdef EMPTY\n"
	        "alias=empty-is-defined\n"
	        "#!endif\n"
	        "#!ifdef GONE\n"
	        "alias=gone\n"
	        "#!endif\n"
	        "loadmodule \"tm\"\n"
	        "modparam(\"tm\", \"fr_timer\", FR)\n"
	        "rpc_listen=EMPTY unix:/x\n"
	        "fork=EMPTY 1\n";
	struct cfg *c = load(text);
	const struct cfg_entry *e;

	assert_int_equal(cfg_int(c, NULL, "children", 0), 4);
	assert_int_equal(cfg_int(c, NULL, "debug", 0), 2);
	e = cfg_next(c, NULL, NULL, "listen");
	assert_string_equal(e->v.s, "udp:192.0.2.7:5080");
	/* Defines are whole words: HOST_X is not HOST. */
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s, "tcp:192.0.2.7:5080 advertise HOST_X:5080");
	assert_int_equal(e->line, line_of(text, "listen=tcp"));
	assert_string_equal(cfg_str(c, NULL, "server_header", NULL),
	                    "Server: x");
	assert_string_equal(cfg_str(c, NULL, "log_facility", NULL), "a b c");
	assert_int_equal(cfg_get(c, NULL, "log_facility")->line,
	                 line_of(text, "log_facility"));
	assert_string_equal(cfg_str(c, NULL, "user", NULL), "SELF");
	assert_string_equal(cfg_str(c, NULL, "alias", NULL),
	                    "empty-is-defined");
	assert_int_equal(cfg_int(c, "tm", "fr_timer", 0), 46000);
	assert_string_equal(cfg_str(c, NULL, "rpc_listen", NULL), "unix:/x");
	assert_int_equal(cfg_int(c, NULL, "fork", 0), 1);
	cfg_free(c);
}

static void test_ifdef_nesting(void **state)
{
	static const char text[] = "#!define A\n"
	                           "#!ifdef A\n"
	                           "  #!ifndef B\n"
	                           "debug=1\n"
	                           "    #!ifdef C\n"
	                           "debug=2\n"
	                           "    #!else\n"
	                           "children=3\n"
	                           "    #!endif\n"
	                           "  #!else\n"
	                           "debug=4\n"
	                           "  #!endif\n"
	                           "#!else\n"
	                           "  #!ifdef A\n"
	                           "debug=5\n"
	                           "  #!else\n"
	                           "debug=6\n"
	                           "  #!endif\n"
	                           "this is not even parsed \"\n"
	                           "/* nor this\n"
	                           "#!bogus\n"
	                           "#!endif\n"
	                           "!!ifndef A\n"
	                           "fork=1\n"
	                           "!!else\n"
	                           "fork=0\n"
	                           "!!endif // comment allowed\n"
	                           "#!ifdef A # comment allowed\n"
	                           "log_stderror=1\n"
	                           "#!endif\n";
	struct cfg *c = load(text);

	assert_int_equal(cfg_int(c, NULL, "debug", -1), 1);
	assert_int_equal(cfg_int(c, NULL, "children", -1), 3);
	assert_int_equal(cfg_int(c, NULL, "fork", -1), 0);
	assert_int_equal(cfg_int(c, NULL, "log_stderror", -1), 1);
	assert_int_equal(cfg_get(c, NULL, "fork")->line,
	                 line_of(text, "fork=0"));
	cfg_free(c);

	/* A directive inside a comment is part of the comment. */
	c = load("/*\n#!ifdef X\n*/\ndebug=1\n");
	assert_int_equal(cfg_int(c, NULL, "debug", -1), 1);
	cfg_free(c);
}

static void test_predefined(void **state)
{
	static const char *const defs[] = {"WITH_TLS", "WORKERS=6",
	                                   "WORKERS=12", NULL};
	static const char *const bad[] = {"1X=2", NULL};
	struct cfg *c = load_defs("#!ifdef WITH_TLS\n"
	                          "debug=2\n"
	                          "#!endif\n"
	                          "children=WORKERS\n"
	                          "#!trydef WITH_TLS 0\n",
	                          defs);
	char err[128];

	assert_int_equal(cfg_int(c, NULL, "debug", -1), 2);
	assert_int_equal(cfg_int(c, NULL, "children", -1), 12);
	cfg_free(c);

	c = NULL;
	assert_int_equal(cfg_load_string(&c, "t.cfg", "", 0, &schema, bad, err,
	                                 sizeof(err)),
	                 EINVAL);
	assert_string_equal(err, "invalid define \"1X=2\"");
	assert_null(c);

	/* Kamailio refuses a second #!define of a name given by -A. */
	c = NULL;
	assert_int_equal(cfg_load_string(&c, "t.cfg", "\n#!define WITH_TLS\n",
	                                 19, &schema, defs, err, sizeof(err)),
	                 EINVAL);
	assert_string_equal(err, "t.cfg:2: \"WITH_TLS\" is already defined");
}

static void test_mod_defines(void **state)
{
	struct cfg *c = load("#!ifdef MOD_tm\n"
	                     "debug=1\n"
	                     "#!endif\n"
	                     "loadmodule \"tm\"\n"
	                     "loadmodule \"dialog\"\n"
	                     "#!ifdef MOD_tm\n"
	                     "children=2\n"
	                     "#!endif\n"
	                     "#!ifdef MOD_ims_dialog\n"
	                     "fork=0\n"
	                     "#!endif\n");

	assert_null(cfg_get(c, NULL, "debug"));
	assert_int_equal(cfg_int(c, NULL, "children", -1), 2);
	assert_int_equal(cfg_int(c, NULL, "fork", -1), 0);
	cfg_free(c);
}

/* #!subst rules rewrite the quoted strings after them (defines do not);
 * #!substdef and #!substdefs also define the name. */
static void test_substitutions(void **state)
{
	static const char text[] = "#!substdef \"!MY_IP!192.0.2.9!g\"\n"
	                           "#!substdefs \"/MY_NAME/proxy.test/\"\n"
	                           "#!subst \"/(x+)-(y)/[\\\\2\\\\1]/gi\"\n"
	                           "#!subst \"/\\\\/p/|p/\"\n"
	                           "listen=udp:MY_IP:5060\n"
	                           "alias=MY_NAME\n"
	                           "alias=\"sip:MY_IP;a=MY_IP\"\n"
	                           "alias=\"x-y XX-Y x-z\"\n"
	                           "alias=\"a/p b/p\"\n"
	                           "alias=\"MY_NAME\"\n"
	                           "server_header=\"nothing to do\"\n";
	struct cfg *c = load(text);
	const struct cfg_entry *e;

	(void)state;
	assert_string_equal(cfg_str(c, NULL, "listen", NULL),
	                    "udp:192.0.2.9:5060");
	e = cfg_next(c, NULL, NULL, "alias");
	assert_string_equal(e->v.s, "proxy.test"); /* substdefs: "value" */
	e = cfg_next(c, e, NULL, "alias");
	assert_string_equal(e->v.s, "sip:192.0.2.9;a=192.0.2.9"); /* g */
	e = cfg_next(c, e, NULL, "alias");
	assert_string_equal(e->v.s, "[yx] [YXX] x-z"); /* groups, g, i */
	e = cfg_next(c, e, NULL, "alias");
	assert_string_equal(e->v.s, "a|p b/p"); /* an escaped delimiter;
	                                          first match only */
	e = cfg_next(c, e, NULL, "alias");
	assert_string_equal(e->v.s, "proxy.test");
	assert_string_equal(cfg_str(c, NULL, "server_header", NULL),
	                    "nothing to do");
	cfg_free(c);

	expect_err("#!subst \"/a/b\"\n",
	           "t.cfg:1: #!subst expects \"/regex/replacement/flags\"");
	expect_err("#!subst \"/a/b/gx\"\n",
	           "t.cfg:1: #!subst: unknown flag 'x'");
	expect_err("#!subst \"/a/b/g/\"\n",
	           "t.cfg:1: #!subst: text after the flags");
	expect_err("#!subst /a/b/\n",
	           "t.cfg:1: #!subst expects a quoted expression");
	expect_err("#!substdef \"/A-B/1/\"\n",
	           "t.cfg:1: invalid name \"A-B\" in #!substdef");
	expect_err("#!substdef \"/A/1/\"\n#!define A 2\n",
	           "t.cfg:2: \"A\" is already defined");
	expect_err(
	        "#!subst \"/a{2}/b/\"\n",
	        "t.cfg:1: #!subst: regex empty, over 128 bytes, or costly to "
	        "match (back-reference, {n}, more than 8 '+')");
	expect_err(
	        "#!subst \"/(a)\\\\1/b/\"\n",
	        "t.cfg:1: #!subst: regex empty, over 128 bytes, or costly to "
	        "match (back-reference, {n}, more than 8 '+')");
	expect_err(
	        "#!subst \"/a+++++++++/b/\"\n",
	        "t.cfg:1: #!subst: regex empty, over 128 bytes, or costly to "
	        "match (back-reference, {n}, more than 8 '+')");
	expect_err(
	        "#!subst \"//b/\"\n",
	        "t.cfg:1: #!subst: regex empty, over 128 bytes, or costly to "
	        "match (back-reference, {n}, more than 8 '+')");
	expect_err("#!subst \"/a/aaaaaaaaaaaaaaaa/g\"\n"
	           "#!subst \"/a/aaaaaaaaaaaaaaaa/g\"\n"
	           "#!subst \"/a/aaaaaaaaaaaaaaaa/g\"\n"
	           "#!subst \"/a/aaaaaaaaaaaaaaaa/g\"\n"
	           "alias=\"aaaa\"\n",
	           "t.cfg:5: #!subst rules make a string longer than 65536 "
	           "bytes");
	expect_err("#!subst \"/a(/b/\"\n",
	           "t.cfg:1: #!subst: bad regex \"a(\": Unmatched ( or \\(");
}

/* #!defenv and its forms define names from the environment. */
static void test_defenv(void **state)
{
	static const char text[] = "#!defenv HOST=IMSDLG_T_HOST\n"
	                           "#!defenvs IMSDLG_T_HOST\n"
	                           "#!trydefenv NOPE=IMSDLG_T_UNSET\n"
	                           "#!trydefenvs IMSDLG_T_PORT\n"
	                           "#!ifdef NOPE\n"
	                           "debug=9\n"
	                           "#!endif\n"
	                           "listen=udp:HOST:5060\n"
	                           "alias=IMSDLG_T_HOST\n"
	                           "alias=IMSDLG_T_PORT\n";
	struct cfg *c;
	const struct cfg_entry *e;

	(void)state;
	setenv("IMSDLG_T_HOST", "192.0.2.7", 1);
	setenv("IMSDLG_T_PORT", "5070", 1);
	unsetenv("IMSDLG_T_UNSET");
	c = load(text);
	assert_string_equal(cfg_str(c, NULL, "listen", NULL),
	                    "udp:192.0.2.7:5060");
	/* #!defenvs: a quoted string, so a string however it reads */
	e = cfg_next(c, NULL, NULL, "alias");
	assert_string_equal(e->v.s, "192.0.2.7");
	e = cfg_next(c, e, NULL, "alias");
	assert_string_equal(e->v.s, "5070");
	assert_null(cfg_get(c, NULL, "debug"));
	cfg_free(c);

	expect_err("#!defenv A=IMSDLG_T_UNSET\n",
	           "t.cfg:1: #!defenv: environment variable IMSDLG_T_UNSET "
	           "is not set");
	expect_err("debug=1\n#!defenvs IMSDLG_T_UNSET\n",
	           "t.cfg:2: #!defenvs: environment variable IMSDLG_T_UNSET "
	           "is not set");
	expect_err("#!defenv A=\n",
	           "t.cfg:1: #!defenv expects ID=VAR or VAR, not \"A=\"");
	expect_err("#!trydefenv\n", "t.cfg:1: #!trydefenv needs a name");
	expect_err("#!define A 1\n#!trydefenv A=IMSDLG_T_HOST\n",
	           "t.cfg:2: \"A\" is already defined");
	expect_err("#!defenv A=IMSDLG_T_HOST x\n",
	           "t.cfg:1: unexpected text after #!defenv");
	unsetenv("IMSDLG_T_HOST");
	unsetenv("IMSDLG_T_PORT");
}

static void test_directive_errors(void **state)
{
	expect_err("debug=1\n#!KAMAILIO\n",
	           "t.cfg:2: #!KAMAILIO is only allowed on the first line");
	expect_err("\n#!OPENSER\n",
	           "t.cfg:2: #!OPENSER is only allowed on the first line");
	expect_err("!!KAMAILIO\n", "t.cfg:1: unknown directive \"!!KAMAILIO\"");
	expect_err("#!KAMAILIO extra\n",
	           "t.cfg:1: unexpected text after #!KAMAILIO");
	expect_err("debug=1\n\n#!foo bar\n",
	           "t.cfg:3: unknown directive \"#!foo\"");
	expect_err("#!\n", "t.cfg:1: unknown directive \"#!\"");
	expect_err("#!defexp A=B\n", "t.cfg:1: unsupported directive #!defexp");
	expect_err("#!define\n", "t.cfg:1: #!define needs a name");
	expect_err("#!define A-B 1\n",
	           "t.cfg:1: invalid name \"A-B\" in #!define");
	expect_err("!!ifdef 9X\n#!endif\n",
	           "t.cfg:1: invalid name \"9X\" in !!ifdef");
	expect_err("#!define A 1\n#!define A 2\n",
	           "t.cfg:2: \"A\" is already defined");
	expect_err("#!else\n", "t.cfg:1: #!else without #!ifdef");
	expect_err("debug=1\n#!endif\n", "t.cfg:2: #!endif without #!ifdef");
	expect_err("!!endif\n", "t.cfg:1: !!endif without !!ifdef");
	expect_err("#!ifdef A\n#!else\n#!else\n#!endif\n",
	           "t.cfg:3: duplicate #!else");
	expect_err("#!ifdef A\n#!endif A\n",
	           "t.cfg:2: unexpected text after #!endif");
	expect_err("#!ifdef A B\n#!endif\n",
	           "t.cfg:1: unexpected text after #!ifdef");
	/* An unclosed #!ifdef is reported where it opened: the innermost,
	 * whether its branch is read or skipped. */
	expect_err("#!ifdef A\n"
	           "#!endif\n"
	           "#!ifndef A\n"
	           "debug=1\n"
	           "  #!ifdef B\n"
	           "  #!endif\n"
	           "\n",
	           "t.cfg:3: #!ifndef without #!endif");
	expect_err("#!ifdef A\n"
	           "  #!ifdef B\n"
	           "debug=1\n",
	           "t.cfg:2: #!ifdef without #!endif");
	/* Errors in a skipped branch are not looked at... */
	struct cfg *c = load("#!ifdef NOPE\n#!foo\nnosuch=1\n#!endif\n");
	cfg_free(c);
	/* ... but its nesting is. */
	expect_err("#!ifdef NOPE\n#!else\n#!else\n#!endif\n",
	           "t.cfg:3: duplicate #!else");
}

/* ------------------------------------------------------------- modules */

static void test_loadmodule(void **state)
{
	struct cfg *c = load("loadpath \"/usr/lib/kamailio/modules\"\n"
	                     "mpath=\"/usr/lib/kamailio/modules\"\n"
	                     "loadmodule \"tm\"\n"
	                     "loadmodule \"sl.so\"\n"
	                     "loadmodule \"/usr/lib/x86_64-linux-gnu/kamailio/"
	                     "modules/rr.so\"\n"
	                     "loadmodule \"dialog.so\";\n"
	                     "loadmodule \"tm\"\n");

	assert_true(cfg_module_loaded(c, "tm"));
	assert_true(cfg_module_loaded(c, "sl"));
	assert_true(cfg_module_loaded(c, "rr"));
	assert_true(cfg_module_loaded(c, "ims_dialog"));
	assert_false(cfg_module_loaded(c, "app_lua"));
	cfg_free(c);

	expect_err("loadmodule \"foo\"\n",
	           "t.cfg:1: unknown module \"foo\"; " AVAILABLE);
	expect_err("\nloadmodule \"/usr/lib/kamailio/modules/xlog.so\"\n",
	           "t.cfg:2: unknown module \"xlog\"; " AVAILABLE);
	expect_err("loadmodule tm\n",
	           "t.cfg:1: loadmodule expects a quoted module name");
	expect_err("loadmodule\n",
	           "t.cfg:1: loadmodule expects a quoted module name");

	struct cfg_schema none = {globals, 1, NULL, 0};
	char err[128];

	c = NULL;
	assert_int_equal(cfg_load_string(&c, "t.cfg", "loadmodule \"tm\"", 15,
	                                 &none, NULL, err, sizeof(err)),
	                 EINVAL);
	assert_string_equal(err,
	                    "t.cfg:1: unknown module \"tm\"; available: none");
}

static void test_modparam(void **state)
{
	struct cfg *c = load("loadmodule \"tm\"\n"
	                     "loadmodule \"ims_dialog\"\n"
	                     "loadmodule \"usrloc\"\n"
	                     "modparam(\"tm\",\"fr_timer\",0x100)\n"
	                     "modparam( \"tm\" , \"fr_inv_timer\" , 200 ) ;\n"
	                     "modparam(\"ims_dialog|usrloc\", \"db_url\",\n"
	                     "    \"mysql://a\"\n"
	                     "    \"@b/c\")\n"
	                     "modparam(\"dialog\", \"hash_size\", 1)\n"
	                     "modparam(\"dialog\", \"db_url\", 42)\n");
	const struct cfg_entry *e;

	assert_int_equal(cfg_int(c, "tm", "fr_timer", 0), 256);
	assert_int_equal(cfg_int(c, "tm", "fr_inv_timer", 0), 200);
	assert_string_equal(cfg_str(c, "usrloc", "db_url", NULL),
	                    "mysql://a@b/c");
	e = cfg_get(c, "usrloc", "db_url");
	assert_string_equal(e->module, "usrloc");
	assert_int_equal(e->line, 7);
	assert_int_equal(cfg_int(c, "ims_dialog", "hash_size", 0), 1);
	/* An integer makes a string of its text. */
	assert_string_equal(cfg_str(c, "ims_dialog", "db_url", NULL), "42");
	/* Unset, or of an unknown module: the default. */
	assert_int_equal(cfg_int(c, "rr", "enable_full_lr", -7), -7);
	assert_int_equal(cfg_int(c, "nosuch", "x", -7), -7);
	assert_null(cfg_next(c, NULL, "nosuch", "x"));
	cfg_free(c);

#define TM  "loadmodule \"tm\"\n"
#define DLG "loadmodule \"dialog\"\n"
	expect_err(TM "modparam(\"foo\", \"x\", 1)\n",
	           "t.cfg:2: unknown module \"foo\"; " AVAILABLE);
	expect_err("modparam(\"tm\", \"fr_timer\", 1000)\n",
	           "t.cfg:1: module \"tm\" not loaded");
	expect_err(TM "modparam(\"tm|rr\", \"fr_timer\", 1000)\n",
	           "t.cfg:2: module \"rr\" not loaded");
	expect_err(TM "modparam(\"tm\", \"fr_timr\", 1000)\n",
	           "t.cfg:2: unknown parameter \"fr_timr\" of module \"tm\"; "
	           "available: fr_timer, fr_inv_timer");
	expect_err("loadmodule \"sl\"\nmodparam(\"sl\", \"x\", 1)\n",
	           "t.cfg:2: unknown parameter \"x\" of module \"sl\"; "
	           "available: none");
	expect_err(TM "modparam(\"tm\", \"fr_timer\", \"30000\")\n",
	           "t.cfg:2: modparam(\"tm\", \"fr_timer\") expects an integer "
	           "(final response timeout in ms)");
	expect_err(
	        TM "modparam(\"tm\", \"fr_timer\", 50)\n",
	        "t.cfg:2: modparam(\"tm\", \"fr_timer\") must be between 100 "
	        "and 3600000, not 50 (final response timeout in ms)");
	expect_err(DLG "modparam(\"dialog\", \"hash_size\", 1000)\n",
	           "t.cfg:2: modparam(\"dialog\", \"hash_size\"): must be a "
	           "power of two");
	expect_err(DLG "modparam(\"dialog\", \"db_url\", mysql)\n",
	           "t.cfg:2: modparam(\"dialog\", \"db_url\") expects a quoted "
	           "string");
	expect_err(DLG "modparam(\"dialog\", \"db_url\", yes)\n",
	           "t.cfg:2: modparam(\"dialog\", \"db_url\") expects a quoted "
	           "string");
	expect_err(TM "modparam(\"tm\", \"fr_timer\" 1000)\n",
	           "t.cfg:2: modparam expects (\"module\", \"name\", value), "
	           "not \"1000\"");
	expect_err(TM "modparam(\"tm\", \"fr_timer\", (1000))\n",
	           "t.cfg:2: modparam expects (\"module\", \"name\", value), "
	           "not \"(\"");
	expect_err(TM "modparam(tm, \"fr_timer\", 1000)\n",
	           "t.cfg:2: modparam expects (\"module\", \"name\", value), "
	           "not \"tm\"");
	expect_err(TM "modparam(\"tm\", \"fr_timer\", 1000\n\n",
	           "t.cfg:4: modparam expects (\"module\", \"name\", value), "
	           "not the end of the file");
	expect_err(TM "modparam(\"tm\", \"fr_timer\", 1000) debug=1\n",
	           "t.cfg:2: expected ';' or a new line, not \"debug\"");
#undef TM
#undef DLG
}

static void test_cfgengine(void **state)
{
	struct cfg *c = load("cfgengine \"lua\"\n");

	assert_string_equal(cfg_engine(c), "lua");
	cfg_free(c);
	c = load("cfgengine=\"lua\";\n");
	assert_string_equal(cfg_engine(c), "lua");
	cfg_free(c);

	expect_err("\ncfgengine \"native\"\n",
	           "t.cfg:2: unsupported cfgengine \"native\" (only \"lua\")");
	expect_err("cfgengine \"python\"\n",
	           "t.cfg:1: unsupported cfgengine \"python\" (only \"lua\")");
	expect_err("cfgengine lua\n",
	           "t.cfg:1: cfgengine expects a quoted name");
}

/* ------------------------------------------------------------- include */

static void test_include(void **state)
{
	struct cfg *c = NULL;
	const struct cfg_entry *e;
	char err[512] = "";

	mkdir_in("sub");
	put("main.cfg", "#!KAMAILIO\n"
	                "debug=1\n"
	                "include_file \"sub/a.cfg\"\n"
	                "import_file \"missing.cfg\"\n"
	                "#!include_file \"c.cfg\"\n"
	                "!!import_file \"also-missing.cfg\"\n"
	                "#!ifdef NOT_DEFINED\n"
	                "include_file \"nonexistent.cfg\"\n"
	                "#!endif\n"
	                "children=FROM_B\n"
	                "listen=udp:main\n");
	/* Relative to the including file's directory. */
	put("sub/a.cfg", "#!KAMAILIO\n"
	                 "listen=udp:a\n"
	                 "include_file \"b.cfg\";\n"
	                 "listen=udp:a2");
	put("sub/b.cfg", "#!define FROM_B 7\n"
	                 "\n"
	                 "listen=udp:b\n");
	put("c.cfg", "fork=0\n");

	assert_int_equal(load_file(&c, "main.cfg", err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(cfg_int(c, NULL, "debug", -1), 1);
	assert_int_equal(cfg_int(c, NULL, "children", -1), 7);
	assert_int_equal(cfg_int(c, NULL, "fork", -1), 0);
	e = cfg_next(c, NULL, NULL, "listen");
	assert_string_equal(e->v.s, "udp:a");
	assert_string_equal(e->file, path("sub/a.cfg"));
	assert_int_equal(e->line, 2);
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s, "udp:b");
	assert_string_equal(e->file, path("sub/b.cfg"));
	assert_int_equal(e->line, 3);
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s, "udp:a2");
	assert_string_equal(e->file, path("sub/a.cfg"));
	assert_int_equal(e->line, 4);
	e = cfg_next(c, e, NULL, "listen");
	assert_string_equal(e->v.s, "udp:main");
	assert_string_equal(e->file, path("main.cfg"));
	assert_int_equal(e->line, 11);
	assert_null(cfg_next(c, e, NULL, "listen"));
	cfg_free(c);
}

static void test_include_errors(void **state)
{
	struct cfg *c = NULL;
	char err[512], want[512];

	/* An error inside an included file names it and its line. */
	put("bad.cfg", "/* a\n"
	               "   comment */\n"
	               "debug=1\n"
	               "children=zero\n");
	put("inc-bad.cfg", "debug=1\ninclude_file \"bad.cfg\"\nfork=1\n");
	assert_int_equal(load_file(&c, "inc-bad.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want), "%s:4: \"children\" expects an integer",
	         path("bad.cfg"));
	assert_string_equal(err, want);
	assert_null(c);

	put("inc-missing.cfg", "\n\ninclude_file \"nope.cfg\"\n");
	assert_int_equal(load_file(&c, "inc-missing.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want),
	         "%s:3: cannot read \"%s\": No such file or directory",
	         path("inc-missing.cfg"), path("nope.cfg"));
	assert_string_equal(err, want);

	/* A directory is not missing: import_file does not skip it. */
	mkdir_in("adir");
	put("imp-dir.cfg", "import_file \"adir\"\n");
	assert_int_equal(load_file(&c, "imp-dir.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want), "%s:1: cannot read \"%s\": Is a directory",
	         path("imp-dir.cfg"), path("adir"));
	assert_string_equal(err, want);

	/* Including itself stops at Kamailio's depth limit. */
	put("loop.cfg", "debug=1\ninclude_file \"loop.cfg\"\n");
	assert_int_equal(load_file(&c, "loop.cfg", err, sizeof(err)), EINVAL);
	snprintf(want, sizeof(want), "%s:2: include depth limit (10) exceeded",
	         path("loop.cfg"));
	assert_string_equal(err, want);

	/* An #!ifdef may not be left open by an included file. */
	put("open-if.cfg", "debug=1\n#!ifdef X\n");
	put("inc-open-if.cfg", "include_file \"open-if.cfg\"\n#!endif\n");
	assert_int_equal(load_file(&c, "inc-open-if.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want), "%s:2: #!ifdef without #!endif",
	         path("open-if.cfg"));
	assert_string_equal(err, want);

	/* Nor closed by one. */
	put("close-if.cfg", "#!endif\n");
	put("inc-close-if.cfg", "#!ifdef X\n#!endif\n"
	                        "#!ifndef X\ninclude_file \"close-if.cfg\"\n");
	assert_int_equal(load_file(&c, "inc-close-if.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want), "%s:1: #!endif without #!ifdef",
	         path("close-if.cfg"));
	assert_string_equal(err, want);

	put("inc-syntax.cfg", "include_file sub.cfg\n");
	assert_int_equal(load_file(&c, "inc-syntax.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want),
	         "%s:1: include_file expects a quoted "
	         "file name",
	         path("inc-syntax.cfg"));
	assert_string_equal(err, want);

	put("inc-tail.cfg", "include_file \"c.cfg\"; debug=1\n");
	assert_int_equal(load_file(&c, "inc-tail.cfg", err, sizeof(err)),
	                 EINVAL);
	snprintf(want, sizeof(want),
	         "%s:1: expected ';' or a new line, not \"debug\"",
	         path("inc-tail.cfg"));
	assert_string_equal(err, want);

	/* The main file itself: its errno, and no line. */
	c = (struct cfg *)&c;
	assert_int_equal(load_file(&c, "no-such-main.cfg", err, sizeof(err)),
	                 ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory",
	         path("no-such-main.cfg"));
	assert_string_equal(err, want);
	assert_ptr_equal(c, (struct cfg *)&c);
}

/* --------------------------------------------------------------- misc */

static void test_long_values(void **state)
{
	size_t big = 300 * 1000;
	char *text = malloc(big + 6000);
	struct cfg *c;
	size_t n;

	assert_non_null(text);
	/* A long string, and a long bare word, on long lines. */
	n = (size_t)sprintf(text, "server_header=\"");
	memset(text + n, 'x', big);
	n += big;
	n += (size_t)sprintf(text + n, "\"\nrpc_listen=");
	memset(text + n, 'y', 1000);
	n += 1000;
	strcpy(text + n, "\ndebug=2\n");
	c = load(text);
	assert_int_equal(strlen(cfg_str(c, NULL, "server_header", "")), big);
	assert_int_equal(strlen(cfg_str(c, NULL, "rpc_listen", "")), 1000);
	assert_int_equal(cfg_get(c, NULL, "debug")->line, 3);
	cfg_free(c);

	/* An error quoting a long word is cut to the buffer, not beyond. */
	n = (size_t)sprintf(text, "debug=1\n");
	memset(text + n, 'z', 5000);
	strcpy(text + n + 5000, "=1\n");
	{
		char err[64];

		c = NULL;
		assert_int_equal(cfg_load_string(&c, "t.cfg", text,
		                                 strlen(text), &schema, NULL,
		                                 err, sizeof(err)),
		                 EINVAL);
		static const char want[] =
		        "t.cfg:2: unknown global parameter \"zzz";

		assert_int_equal(strlen(err), sizeof(err) - 1);
		assert_memory_equal(err, want, strlen(want));
	}
	free(text);
}

static void test_error_buffer(void **state)
{
	struct cfg *c = NULL;
	char err[12];

	/* No buffer at all, or a tiny one: still the error code. */
	assert_int_equal(
	        cfg_load_string(&c, "t.cfg", "x", 1, &schema, NULL, NULL, 0),
	        EINVAL);
	memset(err, '#', sizeof(err));
	assert_int_equal(
	        cfg_load_string(&c, "t.cfg", "x", 1, &schema, NULL, err, 1),
	        EINVAL);
	assert_int_equal(err[0], '\0');
	assert_int_equal(err[1], '#');
	assert_int_equal(cfg_load_string(&c, "t.cfg", "x", 1, &schema, NULL,
	                                 err, sizeof(err)),
	                 EINVAL);
	assert_string_equal(err, "t.cfg:1: un");
	assert_null(c);
	/* Success clears it. */
	assert_int_equal(cfg_load_string(&c, "t.cfg", "", 0, &schema, NULL, err,
	                                 sizeof(err)),
	                 0);
	assert_string_equal(err, "");
	cfg_free(c);
	cfg_free(NULL);
}

static void test_entry_error(void **state)
{
	struct cfg *c = load("loadmodule \"dialog\"\n"
	                     "\n"
	                     "modparam(\"dialog\", \"hash_size\", 64)\n");
	const struct cfg_entry *e = cfg_get(c, "dialog", "hash_size");
	char err[128];
	char small[10];

	assert_non_null(e);
	cfg_entry_error(e, err, sizeof(err), "hash_size %lld is too small",
	                e->v.i);
	assert_string_equal(err, "t.cfg:3: hash_size 64 is too small");
	cfg_entry_error(e, small, sizeof(small), "%s", "long text");
	assert_string_equal(small, "t.cfg:3: ");
	cfg_entry_error(e, NULL, 0, "nothing");
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_int),
	        cmocka_unit_test(test_parse_int_slices),
	        cmocka_unit_test(test_full_config),
	        cmocka_unit_test(test_comments),
	        cmocka_unit_test(test_strings),
	        cmocka_unit_test(test_nul_byte),
	        cmocka_unit_test(test_int_values),
	        cmocka_unit_test(test_string_values),
	        cmocka_unit_test(test_listen_forms),
	        cmocka_unit_test(test_statements),
	        cmocka_unit_test(test_last_wins),
	        cmocka_unit_test(test_defines),
	        cmocka_unit_test(test_substitutions),
	        cmocka_unit_test(test_defenv),
	        cmocka_unit_test(test_ifdef_nesting),
	        cmocka_unit_test(test_predefined),
	        cmocka_unit_test(test_mod_defines),
	        cmocka_unit_test(test_directive_errors),
	        cmocka_unit_test(test_loadmodule),
	        cmocka_unit_test(test_modparam),
	        cmocka_unit_test(test_cfgengine),
	        cmocka_unit_test(test_include),
	        cmocka_unit_test(test_include_errors),
	        cmocka_unit_test(test_long_values),
	        cmocka_unit_test(test_error_buffer),
	        cmocka_unit_test(test_entry_error),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}

/*
 * cfg: the configuration file loader, in the syntax of the global part of
 * kamailio.cfg, with the same meanings, so that an existing Kamailio
 * configuration loads unchanged up to its route blocks (which live in Lua
 * here: `cfgengine "lua"`).
 *
 * What a binary supports is described by tables (struct cfg_schema): its
 * global parameters and its built-in modules with their parameters. The
 * loader checks every statement against them, so a typo, a value of the
 * wrong type or out of range, or a parameter of a module that was not
 * loaded stops the load with "FILE:LINE: reason", the way Kamailio refuses
 * to start. The result (struct cfg) is read-only and holds every value with
 * the file and line that set it, so that a component finding a problem
 * later (say, a hash size that is not a power of two) can still point at
 * the line (cfg_entry_error()).
 *
 * Accepted syntax (the Kamailio meaning in each case):
 *
 *   # comment       to the end of the line; also // comment, and C block
 *                   comments, which may span lines and nest
 *   #!KAMAILIO #!SER #!OPENSER #!ALL #!MAXCOMPAT   first line of a file only
 *   #!define NAME [value]   also #!def; #!trydef / #!trydefine (only if
 *                           undefined), #!redefine / #!redef (replace);
 *                           the value runs to the end of the line, a
 *                           trailing backslash continues it on the next
 *   #!undef NAME
 *   #!ifdef NAME, #!ifndef NAME, #!else, #!endif   (nest)
 *   !!define ... !!endif    the same directives with the "!!" prefix
 *   include_file "path"     also #!include_file; a relative path is taken
 *                           from the including file's directory
 *   import_file "path"      the same, but a missing file is skipped
 *   name = value [;]        a global parameter
 *   loadmodule "tm"         also "tm.so" or a path to "tm.so"
 *   loadpath "dir"          also mpath = "dir"; accepted and ignored
 *   modparam("tm", "fr_timer", 30000)
 *   cfgengine "lua"
 *
 * Directives are recognised at the start of a line (leading blanks
 * allowed). A define is replaced wherever its name appears as a word
 * outside quotes: `children=WORKERS`, `modparam("tm", "fr_timer", FR)`,
 * and also as part of a bare word, `listen=udp:MY_IP:5060`. A value is an
 * integer (decimal, 0x hexadecimal, 0 octal, 101b binary, maybe negative),
 * yes/no/on/off/true/false/enable/disable (1 or 0), a quoted string
 * ("..." with \" \\ \n \r \t \a \xHH \ooo escapes, adjacent strings
 * joined; '...' taken verbatim), or, for a global string parameter, bare
 * text up to the end of the statement: `listen=udp:1.2.3.4:5060 advertise
 * 5.6.7.8:5060` gives the string "udp:1.2.3.4:5060 advertise 5.6.7.8:5060"
 * for the caller to parse. Statements end at a new line or a ';'.
 *
 * Route blocks and anything else are errors; the first error stops the load.
 * Nothing here keeps global state: two loads may run at once.
 */
#ifndef IMSDLG_CFG_H
#define IMSDLG_CFG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

/* Kamailio's own limit on nested include_file. */
#define CFG_MAX_INCLUDE_DEPTH 10

enum cfg_type {
	CFG_INT,
	CFG_STR,
};

struct cfg_value {
	enum cfg_type type;
	long long i;   /* CFG_INT */
	const char *s; /* CFG_STR: NUL-terminated, owned by the cfg; NULL for
	                  CFG_INT */
};

/*
 * One parameter, global or of a module. Tables of these are written once
 * per component (normally static const) and are borrowed by the loader and
 * by the struct cfg it returns: they must outlive it.
 */
struct cfg_param_def {
	const char *name;
	enum cfg_type type;
	long long min, max; /* CFG_INT only; min > max means unbounded */
	/* Several assignments are all kept, in file order (listen, alias,
	 * app_lua's load); otherwise the last one replaces the others. */
	bool repeatable;
	/* NULL, or returns NULL when v is acceptable and else a short
	 * static text saying why not ("must be a power of two"). Runs
	 * after the type and range checks. */
	const char *(*check)(const struct cfg_value *v);
	const char *help; /* one line; appended to errors about the value */
	/* Other names Kamailio accepts for it (uid for user), NULL-terminated;
	 * may be NULL. */
	const char *const *aliases;
};

struct cfg_module_def {
	const char *name;           /* canonical: "ims_dialog" */
	const char *const *aliases; /* NULL-terminated ("dialog"), or NULL */
	const struct cfg_param_def *params;
	size_t nparams;
};

/* Everything this binary supports; borrowed, see struct cfg_param_def. */
struct cfg_schema {
	const struct cfg_param_def *globals;
	size_t nglobals;
	const struct cfg_module_def *modules;
	size_t nmodules;
};

/* One assignment that took effect. Owned by the cfg, read-only. */
struct cfg_entry {
	const char *module; /* canonical module name, NULL for a global */
	const struct cfg_param_def *def;
	struct cfg_value v;
	const char *file; /* as given, or as resolved for an included file */
	unsigned line;
};

struct cfg;

/*
 * Loads the file at path. schema (borrowed, see above) says what is
 * accepted. defines (NULL-terminated, may be NULL; borrowed) are defined
 * before the first line, as `kamailio -A`: "NAME" or "NAME=value".
 *
 * On success *out is a new cfg to release with cfg_free(). On failure
 * returns EINVAL for an error in the configuration, ENOMEM, or the errno
 * of reading path itself (ENOENT, EACCES...), and writes a one-line
 * message into err[0..errsize) when err is not NULL (truncated to fit,
 * always NUL-terminated): "FILE:LINE: reason" for an error in the text,
 * "PATH: reason" when path cannot be read, `invalid define "X"` for a
 * malformed entry of defines.
 */
int cfg_load(struct cfg **out, const char *path,
             const struct cfg_schema *schema, const char *const *defines,
             char *err, size_t errsize);

/*
 * The same for text[0..len) (borrowed for the call only), named name in
 * messages and entries; included files are looked up relative to name's
 * directory.
 */
int cfg_load_string(struct cfg **out, const char *name, const char *text,
                    size_t len, const struct cfg_schema *schema,
                    const char *const *defines, char *err, size_t errsize);

/* Releases c and every string and entry it owns; c may be NULL. */
void cfg_free(struct cfg *c);

/* Whether module (canonical name or alias) was loadmodule'd. */
bool cfg_module_loaded(const struct cfg *c, const char *module);

/* "lua" after `cfgengine "lua"`, else NULL. */
const char *cfg_engine(const struct cfg *c);

/*
 * The entry in effect for parameter name (canonical name or alias) of
 * module (canonical name or alias; NULL for a global), or NULL if it was
 * never set. For a repeatable parameter, the last assignment.
 * The entry is owned by c.
 */
const struct cfg_entry *cfg_get(const struct cfg *c, const char *module,
                                const char *name);

/*
 * The assignments of one parameter in file order: the first one when prev
 * is NULL, else the one after prev (an entry of c). NULL at the end.
 */
const struct cfg_entry *cfg_next(const struct cfg *c,
                                 const struct cfg_entry *prev,
                                 const char *module, const char *name);

/* Every entry in effect, in file order (for dumping the configuration);
 * the array is owned by c. */
const struct cfg_entry *cfg_entries(const struct cfg *c, size_t *count);

/* The value of an integer parameter, or def when it was not set. */
long long cfg_int(const struct cfg *c, const char *module, const char *name,
                  long long def);

/* The value of a string parameter (owned by c), or def when not set. */
const char *cfg_str(const struct cfg *c, const char *module, const char *name,
                    const char *def);

/*
 * Writes "FILE:LINE: " of e and then the formatted text into
 * err[0..errsize) (truncated to fit, NUL-terminated; nothing when err is
 * NULL or errsize is 0): for problems found after loading by the component
 * that reads a value, so that the message points at the line anyway.
 */
void cfg_entry_error(const struct cfg_entry *e, char *err, size_t errsize,
                     const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * Parses s as a configuration integer, as Kamailio does: an optional '-',
 * then decimal digits, 0x and hexadecimal digits, 0 and octal digits, or
 * binary digits followed by 'b'. Nothing else: no blanks, no '+', no
 * trailing characters. Returns EINVAL when s is not such a number and
 * ERANGE when it does not fit a long long; *out is written only on success.
 */
int cfg_parse_int(long long *out, struct slice s);

#endif

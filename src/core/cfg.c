/*
 * Configuration loader for the global part of kamailio.cfg (see cfg.h).
 *
 * Three layers, each small:
 *   sources  a stack of texts being read: the main file, included files,
 *            and define values being expanded (read like Kamailio, which
 *            pushes a define's text back into its scanner)
 *   lexer    tokens (words, strings, punctuation, new lines) with
 *            comments and directives handled on the way, and the lines of
 *            an inactive #!ifdef branch skipped
 *   parser   one function per statement, the values checked against the
 *            caller's tables and stored in the struct cfg
 *
 * Everything the result keeps (strings, file names) goes into its arena;
 * everything else (file contents, token texts, defines) lives until the end
 * of the load in the parser's, because tokens point into both.
 */
#include "core/cfg.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfg {
	struct arena mem; /* strings and file names of the entries */
	struct cfg_schema schema;
	struct cfg_entry *entries; /* in effect, in file order */
	size_t nentries, capentries;
	bool *loaded; /* per schema module */
	const char *engine;
};

/* ------------------------------------------------------------ helpers */

/* Growable byte buffer; a failed allocation sticks until checked. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->oom = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

static void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Makes room for n elements of size bytes in *arr; NULL when out of
 * memory (the array is then unchanged). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;

	if (n <= *cap)
		return arr;
	ncap = *cap ? *cap : 8;
	while (ncap < n) {
		if (ncap > SIZE_MAX / 2)
			return NULL;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / size)
		return NULL;
	arr = realloc(arr, ncap * size);
	if (arr)
		*cap = ncap;
	return arr;
}

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_id_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_id_char(int c)
{
	return is_id_start(c) || (c >= '0' && c <= '9');
}

/* Kamailio's ID: what a define, an #!ifdef or a module may be named. */
static bool is_id(struct slice s)
{
	if (s.len == 0 || !is_id_start((unsigned char)s.p[0]))
		return false;
	for (size_t i = 1; i < s.len; i++)
		if (!is_id_char((unsigned char)s.p[i]))
			return false;
	return true;
}

static bool is_punct(int c)
{
	return c != '\0' && strchr(";=(),{}", c) != NULL;
}

static bool has_prefix(struct slice s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

/* -------------------------------------------------------------- numbers */

int cfg_parse_int(long long *out, struct slice s)
{
	unsigned long long mag, limit;
	bool neg = false;
	char *copy, *end;
	const char *digits;
	size_t n;
	int base = 10, rc = 0;

	if (s.len > 0 && s.p[0] == '-') {
		neg = true;
		s.p++;
		s.len--;
	}
	/* strtoull() would take blanks, a sign or "0x" alone: refuse them
	 * here so that the whole slice is the number. */
	if (s.len == 0 || s.p[0] < '0' || s.p[0] > '9')
		return EINVAL;
	n = s.len;
	if (s.p[n - 1] == 'b') {
		base = 2;
		n--;
		for (size_t i = 0; i < n; i++)
			if (s.p[i] != '0' && s.p[i] != '1')
				return EINVAL;
	} else if (n > 1 && s.p[0] == '0' && (s.p[1] == 'x' || s.p[1] == 'X')) {
		/* Here too strtoull() would take a sign or blanks. */
		int h = n > 2 ? s.p[2] : 0;

		if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
		      (h >= 'A' && h <= 'F')))
			return EINVAL;
		base = 16;
	} else if (n > 1 && s.p[0] == '0') {
		base = 8;
	}
	if (n == 0)
		return EINVAL;
	/* The slice is not NUL-terminated and may be long (leading zeros):
	 * strtoull() needs a terminated copy of its own size. */
	copy = malloc(n + 1);
	if (!copy)
		return ENOMEM;
	memcpy(copy, s.p, n);
	copy[n] = '\0';
	digits = base == 16 ? copy + 2 : copy;
	errno = 0;
	mag = strtoull(digits, &end, base);
	if (end == digits || *end != '\0')
		rc = EINVAL;
	else if (errno == ERANGE)
		rc = ERANGE;
	free(copy);
	if (rc)
		return rc;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	if (mag > limit)
		return ERANGE;
	if (neg)
		*out = mag == limit ? LLONG_MIN : -(long long)mag;
	else
		*out = (long long)mag;
	return 0;
}

/* --------------------------------------------------------------- schema */

static bool name_in(const char *const *names, struct slice s)
{
	for (; names && *names; names++)
		if (slice_eq_cstr(s, *names))
			return true;
	return false;
}

static const struct cfg_module_def *find_module(const struct cfg_schema *sc,
                                                struct slice name)
{
	for (size_t i = 0; i < sc->nmodules; i++) {
		const struct cfg_module_def *m = &sc->modules[i];

		if (slice_eq_cstr(name, m->name) || name_in(m->aliases, name))
			return m;
	}
	return NULL;
}

static bool param_named(const struct cfg_param_def *d, struct slice name)
{
	return slice_eq_cstr(name, d->name) || name_in(d->aliases, name);
}

static const struct cfg_param_def *find_param(const struct cfg_param_def *defs,
                                              size_t n, struct slice name)
{
	for (size_t i = 0; i < n; i++)
		if (param_named(&defs[i], name))
			return &defs[i];
	return NULL;
}

/* ------------------------------------------------------------- parser */

/* A text being read: a file, or the value of a define being expanded. */
struct src {
	struct src *up;   /* the source this one was pushed from */
	const char *file; /* owned by the cfg; a define's is its user's */
	const char *text;
	size_t len, pos;
	unsigned line;
	char *owned;       /* file contents to free, or NULL */
	const char *macro; /* name of the define being expanded, or NULL */
	size_t cond_base;  /* #!ifdef depth when the file was entered */
	unsigned depth;    /* include depth, 0 for the main file */
	bool bol;          /* only blanks since the start of the line */
	bool ended;        /* the new line ending its last line was sent */
};

struct define {
	const char *name;  /* NUL-terminated, in the parser's arena */
	const char *value; /* idem, "" when defined without a value */
};

/* A #!subst rule: applied, in order, to every quoted string after it. */
struct subst {
	regex_t re;
	const char *repl; /* \0..\9 name the match and its groups */
	bool global;      /* every match, not only the first */
};

/* One open #!ifdef or #!ifndef. */
struct cond {
	const char *file;
	unsigned line;
	char prefix;      /* '#' or '!', as written */
	const char *name; /* "ifdef" or "ifndef" */
	bool outer;       /* whether the enclosing lines are read */
	bool value;       /* whether the first branch is taken */
	bool in_else;
};

enum tok_kind {
	T_EOF,
	T_NL,
	T_WORD,
	T_STR,
	T_PUNCT,
};

struct tok {
	enum tok_kind kind;
	char punct;
	/* T_WORD: the word with defines replaced; T_STR: the decoded
	 * string (NUL-terminated). */
	struct slice text;
	struct slice raw; /* T_STR: as written, quotes included */
	const char *file;
	unsigned line;
	bool spaced; /* blanks or a comment before it */
};

struct parser {
	const struct cfg_schema *schema;
	struct cfg *cfg;
	struct arena tmp; /* token texts and defines, until the end */
	struct src *src;  /* innermost source */
	struct src *done; /* finished sources, kept since tokens point in */
	struct define *defs;
	size_t ndefs, capdefs;
	struct subst *substs;
	size_t nsubsts, capsubsts;
	struct cond *conds;
	size_t nconds, capconds;
	struct tok *vals; /* scratch for the tokens of one value */
	size_t capvals;
	struct tok la; /* lookahead */
	bool have_la;
	bool spaced;
	const char *eof_file; /* where the input ended */
	unsigned eof_line;
	char *err;
	size_t errsize;
};

static int fail(struct parser *p, const char *file, unsigned line,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes "file:line: text" into the caller's buffer; returns EINVAL so
 * that callers can `return fail(...)`. */
static int fail(struct parser *p, const char *file, unsigned line,
                const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->err || p->errsize == 0)
		return EINVAL;
	n = snprintf(p->err, p->errsize, "%s:%u: ", file, line);
	if (n >= 0 && (size_t)n < p->errsize) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errsize - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return EINVAL;
}

static int nomem(struct parser *p)
{
	if (p->err && p->errsize > 0)
		snprintf(p->err, p->errsize, "out of memory");
	return ENOMEM;
}

static char *tmp_printf(struct parser *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* printf into the parser's arena, for texts that go into messages;
 * NULL when out of memory. */
static char *tmp_printf(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = arena_alloc(&p->tmp, (size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* How a token is named in a message. */
static const char *describe(struct parser *p, const struct tok *t)
{
	const char *s = NULL;

	switch (t->kind) {
	case T_EOF:
		return "the end of the file";
	case T_NL:
		return "the end of the line";
	case T_STR:
		return "a quoted string";
	case T_PUNCT:
		s = tmp_printf(p, "\"%c\"", t->punct);
		break;
	case T_WORD:
		s = tmp_printf(p, "\"%.*s\"", SLICE_ARG(t->text));
		break;
	}
	return s ? s : "a token";
}

/* ------------------------------------------------------------- defines */

static struct define *find_define(struct parser *p, struct slice name)
{
	for (size_t i = 0; i < p->ndefs; i++)
		if (slice_eq_cstr(name, p->defs[i].name))
			return &p->defs[i];
	return NULL;
}

enum def_mode {
	DEF_NEW,   /* #!define: an error if already defined */
	DEF_TRY,   /* #!trydef: nothing if already defined */
	DEF_REDEF, /* #!redefine: replaces */
};

/* file and line: where, for the "already defined" error. */
static int define(struct parser *p, struct slice name, struct slice value,
                  enum def_mode mode, const char *file, unsigned line)
{
	struct define *d = find_define(p, name);
	char *v;

	if (d && mode == DEF_NEW)
		return fail(p, file, line, "\"%.*s\" is already defined",
		            SLICE_ARG(name));
	if (d && mode == DEF_TRY)
		return 0;
	/* A value being replaced stays in the arena: a define being
	 * expanded may still be reading it. */
	v = arena_strdup(&p->tmp, value);
	if (!v)
		return nomem(p);
	if (d) {
		d->value = v;
		return 0;
	}
	d = grow(p->defs, &p->capdefs, p->ndefs + 1, sizeof(*p->defs));
	if (!d)
		return nomem(p);
	p->defs = d;
	d = &p->defs[p->ndefs];
	d->name = arena_strdup(&p->tmp, name);
	if (!d->name)
		return nomem(p);
	d->value = v;
	p->ndefs++;
	return 0;
}

static void undefine(struct parser *p, struct slice name)
{
	struct define *d = find_define(p, name);

	if (d)
		*d = p->defs[--p->ndefs];
}

/* A define is not expanded inside its own expansion (as in C), so that
 * `#!define A A` or a cycle terminates. */
struct guard {
	const char *name;
	const struct guard *up;
};

static bool expanding(const struct parser *p, const struct guard *g,
                      const char *name)
{
	for (; g; g = g->up)
		if (g->name == name)
			return true;
	for (const struct src *s = p->src; s; s = s->up)
		if (s->macro == name)
			return true;
	return false;
}

/* Appends text with every word that names a define replaced by its
 * value, itself expanded. */
static void expand_into(struct parser *p, struct buf *b, struct slice text,
                        const struct guard *g)
{
	size_t i = 0;

	while (i < text.len) {
		size_t j = i;
		struct define *d;

		if (!is_id_char((unsigned char)text.p[i])) {
			buf_addc(b, text.p[i++]);
			continue;
		}
		while (j < text.len && is_id_char((unsigned char)text.p[j]))
			j++;
		d = is_id_start((unsigned char)text.p[i])
		            ? find_define(p, slice_make(text.p + i, j - i))
		            : NULL;
		if (d && !expanding(p, g, d->name)) {
			struct guard ng = {d->name, g};

			expand_into(p, b, slice_cstr(d->value), &ng);
		} else {
			buf_add(b, text.p + i, j - i);
		}
		i = j;
	}
}

/* Whether some word inside w names a define: "udp:MY_IP:5060". */
static bool has_define(struct parser *p, struct slice w)
{
	size_t i = 0;

	while (i < w.len) {
		size_t j = i;

		while (j < w.len && is_id_char((unsigned char)w.p[j]))
			j++;
		if (j > i && is_id_start((unsigned char)w.p[i])) {
			struct define *d =
			        find_define(p, slice_make(w.p + i, j - i));

			if (d && !expanding(p, NULL, d->name))
				return true;
		}
		i = j > i ? j : i + 1;
	}
	return false;
}

/* ------------------------------------------------------------- sources */

static int read_file(const char *path, char **out, size_t *outlen)
{
	struct buf b = {0};
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t n;
	int rc = 0;

	if (!f)
		return errno;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(f))
		rc = errno ? errno : EIO;
	fclose(f);
	if (!rc && b.oom)
		rc = ENOMEM;
	if (rc) {
		free(b.p);
		return rc;
	}
	if (!b.p) {
		b.p = malloc(1);
		if (!b.p)
			return ENOMEM;
		b.p[0] = '\0';
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

/*
 * Pushes a file (takes owned, may be NULL when text is borrowed). A NUL
 * byte is refused here, once, so that no later step has to fear one
 * cutting a string short.
 */
static int push_file(struct parser *p, const char *file, const char *text,
                     size_t len, char *owned, unsigned depth)
{
	const char *nul = memchr(text, '\0', len);
	struct src *s;

	if (nul) {
		unsigned line = 1;

		for (const char *c = text; c < nul; c++)
			line += *c == '\n';
		free(owned);
		return fail(p, file, line, "NUL byte in the file");
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(owned);
		return nomem(p);
	}
	s->up = p->src;
	s->file = file;
	s->text = text;
	s->len = len;
	s->owned = owned;
	s->line = 1;
	s->bol = true;
	s->cond_base = p->nconds;
	s->depth = depth;
	/* A UTF-8 byte order mark is no statement. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		s->pos = 3;
	p->src = s;
	return 0;
}

static int push_macro(struct parser *p, const struct define *d)
{
	struct src *s = calloc(1, sizeof(*s));

	if (!s)
		return nomem(p);
	/* Its tokens are reported where the define is used. */
	s->up = p->src;
	s->file = p->src->file;
	s->line = p->src->line;
	s->text = d->value;
	s->len = strlen(d->value);
	s->macro = d->name;
	p->src = s;
	return 0;
}

static int pop_src(struct parser *p)
{
	struct src *s = p->src;

	if (!s->macro && p->nconds > s->cond_base) {
		const struct cond *c = &p->conds[p->nconds - 1];

		return fail(p, c->file, c->line, "%c!%s without %c!endif",
		            c->prefix, c->name, c->prefix);
	}
	p->eof_file = s->file;
	p->eof_line = s->line;
	p->src = s->up;
	s->up = p->done;
	p->done = s;
	return 0;
}

static const struct src *file_src(const struct parser *p)
{
	const struct src *s = p->src;

	while (s && s->macro)
		s = s->up;
	return s;
}

/*
 * include_file / import_file at file:line of path. A relative path is
 * taken from the directory of the including file, like Kamailio's second
 * attempt (its first, from the working directory, would make the meaning
 * depend on where the daemon is started).
 */
static int include(struct parser *p, const char *file, unsigned line,
                   const char *path, bool import)
{
	const struct src *cur = file_src(p);
	const char *slash = strrchr(cur->file, '/');
	char *text = NULL, *name;
	size_t len = 0;
	int rc;

	if (path[0] == '\0')
		return fail(p, file, line, "empty file name");
	if (cur->depth >= CFG_MAX_INCLUDE_DEPTH)
		return fail(p, file, line, "include depth limit (%d) exceeded",
		            CFG_MAX_INCLUDE_DEPTH);
	if (path[0] == '/' || !slash) {
		name = arena_strdup(&p->cfg->mem, slice_cstr(path));
	} else {
		struct buf b = {0};

		buf_add(&b, cur->file, (size_t)(slash - cur->file) + 1);
		buf_adds(&b, path);
		name = b.oom ? NULL
		             : arena_strdup(&p->cfg->mem,
		                            slice_make(b.p, b.len));
		free(b.p);
	}
	if (!name)
		return nomem(p);
	rc = read_file(name, &text, &len);
	if (rc == ENOENT && import)
		return 0;
	if (rc == ENOMEM)
		return nomem(p);
	if (rc)
		return fail(p, file, line, "cannot read \"%s\": %s", name,
		            strerror(rc));
	return push_file(p, name, text, len, text, cur->depth + 1);
}

/* --------------------------------------------------------------- lexer */

static int at(const struct src *s, size_t i)
{
	return i < s->len ? (unsigned char)s->text[i] : -1;
}

/* Length of the line break at i ("\n" or "\r\n"), 0 if none. */
static size_t nl_len(const struct src *s, size_t i)
{
	if (at(s, i) == '\n')
		return 1;
	if (at(s, i) == '\r' && at(s, i + 1) == '\n')
		return 2;
	return 0;
}

/* Moves past the end of the current line, its '\n' included. */
static void skip_line(struct src *s)
{
	const char *nl = memchr(s->text + s->pos, '\n', s->len - s->pos);

	if (nl) {
		s->pos = (size_t)(nl - s->text) + 1;
		s->line++;
	} else {
		s->pos = s->len;
	}
	s->bol = true;
}

static int block_comment(struct parser *p, struct src *s)
{
	unsigned line = s->line;
	size_t depth = 0;

	/* Nested, as in Kamailio: a commented-out block may hold one. */
	while (s->pos < s->len) {
		int c = at(s, s->pos);

		if (c == '/' && at(s, s->pos + 1) == '*') {
			depth++;
			s->pos += 2;
		} else if (c == '*' && at(s, s->pos + 1) == '/') {
			s->pos += 2;
			if (--depth == 0)
				return 0;
		} else {
			if (c == '\n')
				s->line++;
			s->pos++;
		}
	}
	return fail(p, s->file, line, "unterminated comment");
}

/* Decodes one escape of a "..." string at i (just after the backslash):
 * writes the byte, returns how many bytes it took, 0 when it is none
 * (the backslash is then kept, as Kamailio does). */
static size_t unescape(const struct src *s, size_t i, char *out)
{
	static const char simple[] = "n\nr\rt\ta\a\"\"\\\\";
	int c = at(s, i);
	unsigned v = 0;
	size_t n = 0;

	for (size_t k = 0; simple[k]; k += 2) {
		if (c == simple[k]) {
			*out = simple[k + 1];
			return 1;
		}
	}
	if (c == 'x') {
		for (n = 1; n <= 2; n++) {
			int h = at(s, i + n);

			if (h >= '0' && h <= '9')
				v = v * 16 + (unsigned)(h - '0');
			else if (h >= 'a' && h <= 'f')
				v = v * 16 + (unsigned)(h - 'a' + 10);
			else if (h >= 'A' && h <= 'F')
				v = v * 16 + (unsigned)(h - 'A' + 10);
			else
				break;
		}
		if (n == 1)
			return 0;
		*out = (char)v;
		return n;
	}
	/* Two or three octal digits: one would eat the \1 of a
	 * substitution (Kamailio's reason). */
	while (n < 3 && at(s, i + n) >= '0' && at(s, i + n) <= '7') {
		v = v * 8 + (unsigned)(at(s, i + n) - '0');
		n++;
	}
	if (n < 2)
		return 0;
	*out = (char)(v & 0xff);
	return n;
}

/*
 * A quoted string at s->pos. "..." takes escapes and is joined with the
 * "..." strings that follow it after blanks and new lines, as Kamailio
 * does for long values split over lines; '...' is verbatim.
 */
static int lex_string(struct parser *p, struct src *s, struct tok *t)
{
	char q = s->text[s->pos];
	size_t start = s->pos, i = s->pos + 1, end;
	unsigned line = s->line, lines = 0;
	char *out, *o;

	/* First find the end, so that the decoded text (never longer)
	 * gets one allocation. */
	for (;;) {
		int c = at(s, i);

		if (c < 0)
			return fail(p, s->file, line, "unterminated string");
		if (c == '\\' && q == '"' && i + 1 < s->len) {
			lines += at(s, i + 1) == '\n';
			i += 2;
			continue;
		}
		if (c == '\n')
			lines++;
		if (c != q) {
			i++;
			continue;
		}
		end = i + 1;
		if (q == '"') {
			size_t j = end;
			unsigned more = 0;

			while (is_blank(at(s, j)) || at(s, j) == '\n')
				more += at(s, j++) == '\n';
			if (at(s, j) == '"') {
				lines += more;
				i = j + 1;
				continue;
			}
		}
		break;
	}
	out = arena_alloc(&p->tmp, end - start + 1);
	if (!out)
		return nomem(p);
	o = out;
	for (i = start + 1; i < end - 1; i++) {
		int c = at(s, i);
		size_t n;

		if (q == '\'') {
			*o++ = (char)c;
		} else if (c == '"') {
			/* Between joined parts: skip to the next quote. */
			while (at(s, ++i) != '"')
				;
		} else if (c != '\\') {
			*o++ = (char)c;
		} else if ((n = nl_len(s, i + 1)) > 0) {
			i += n; /* an escaped line break is dropped */
		} else if ((n = unescape(s, i + 1, o)) > 0) {
			if (*o == '\0')
				return fail(p, s->file, line,
				            "NUL character in string");
			o++;
			i += n;
		} else {
			*o++ = '\\';
		}
	}
	*o = '\0';
	t->kind = T_STR;
	t->text = slice_make(out, (size_t)(o - out));
	t->raw = slice_make(s->text + start, end - start);
	s->pos = end;
	s->line += lines;
	return 0;
}

static bool is_word_char(const struct src *s, size_t i)
{
	int c = at(s, i);

	if (c <= ' ' || c == 0x7f || strchr(";=(),{}\"'#", c))
		return false;
	if (c == '/' && (at(s, i + 1) == '/' || at(s, i + 1) == '*'))
		return false;
	if (c == '\\' && nl_len(s, i + 1) > 0)
		return false;
	return true;
}

/* A word at s->pos; *pushed when it was a define, whose value is now the
 * source to read instead. */
static int lex_word(struct parser *p, struct src *s, struct tok *t,
                    bool *pushed)
{
	size_t start = s->pos;
	struct define *d;
	struct slice w;

	while (s->pos < s->len && is_word_char(s, s->pos))
		s->pos++;
	w = slice_make(s->text + start, s->pos - start);
	t->kind = T_WORD;
	t->text = w;
	t->raw = w;
	*pushed = false;
	d = find_define(p, w);
	if (d && !expanding(p, NULL, d->name)) {
		*pushed = true;
		return push_macro(p, d);
	}
	if (has_define(p, w)) {
		struct buf b = {0};
		char *x;

		expand_into(p, &b, w, NULL);
		x = b.oom ? NULL
		          : arena_strdup(&p->tmp, slice_make(b.p, b.len));
		free(b.p);
		if (!x)
			return nomem(p);
		t->text = slice_cstr(x);
	}
	return 0;
}

/* ----------------------------------------------------------- directives */

enum dir_kind {
	D_COMPAT,
	D_DEFINE,
	D_TRYDEF,
	D_REDEF,
	D_UNDEF,
	D_IFDEF,
	D_IFNDEF,
	D_ELSE,
	D_ENDIF,
	D_INCLUDE,
	D_IMPORT,
	D_SUBST,
	D_SUBSTDEF,
	D_SUBSTDEFS,
	D_DEFENV,
	D_DEFENVS,
	D_TRYDEFENV,
	D_TRYDEFENVS,
	D_UNSUPPORTED,
};

static const struct {
	const char *name;
	enum dir_kind kind;
} directives[] = {
        {"KAMAILIO", D_COMPAT},
        {"OPENSER", D_COMPAT},
        {"SER", D_COMPAT},
        {"ALL", D_COMPAT},
        {"MAXCOMPAT", D_COMPAT},
        {"define", D_DEFINE},
        {"def", D_DEFINE},
        {"trydefine", D_TRYDEF},
        {"trydef", D_TRYDEF},
        {"redefine", D_REDEF},
        {"redef", D_REDEF},
        {"undef", D_UNDEF},
        {"ifdef", D_IFDEF},
        {"ifndef", D_IFNDEF},
        {"else", D_ELSE},
        {"endif", D_ENDIF},
        {"include_file", D_INCLUDE},
        {"import_file", D_IMPORT},
        {"subst", D_SUBST},
        {"substdef", D_SUBSTDEF},
        {"substdefs", D_SUBSTDEFS},
        {"defenv", D_DEFENV},
        {"defenvs", D_DEFENVS},
        {"trydefenv", D_TRYDEFENV},
        {"trydefenvs", D_TRYDEFENVS},
        /* Kamailio 5.7's (5.6 reads them as comments): refused rather
         * than read as comments, as a configuration using them would
         * silently mean something else here. */
        {"ifexp", D_UNSUPPORTED},
        {"defexp", D_UNSUPPORTED},
        {"defexps", D_UNSUPPORTED},
};

static bool cond_active(const struct parser *p)
{
	const struct cond *c;

	if (p->nconds == 0)
		return true;
	c = &p->conds[p->nconds - 1];
	return c->outer && c->value != c->in_else;
}

/* After a directive's arguments: only blanks or a comment may follow;
 * consumes the line. */
static int dir_end(struct parser *p, struct src *s, size_t i, char prefix,
                   const char *name)
{
	while (is_blank(at(s, i)))
		i++;
	if (at(s, i) >= 0 && at(s, i) != '\n' && at(s, i) != '#' &&
	    !(at(s, i) == '/' && at(s, i + 1) == '/'))
		return fail(p, s->file, s->line, "unexpected text after %c!%s",
		            prefix, name);
	s->pos = i;
	skip_line(s);
	return 0;
}

/* A directive's one argument at i, a quoted string (what it is: for the
 * error), into *t; then the end of the line as dir_end(). */
static int dir_string(struct parser *p, struct src *s, size_t i, char prefix,
                      const char *name, const char *what, struct tok *t)
{
	int rc;

	while (is_blank(at(s, i)))
		i++;
	if (at(s, i) != '"' && at(s, i) != '\'')
		return fail(p, s->file, s->line, "%c!%s expects a quoted %s",
		            prefix, name, what);
	s->pos = i;
	rc = lex_string(p, s, t);
	return rc ? rc : dir_end(p, s, s->pos, prefix, name);
}

/* The one-word argument of a directive, from i (blanks before it
 * skipped); moves i past it. */
static int dir_word(struct parser *p, struct src *s, size_t *i, char prefix,
                    const char *dname, struct slice *word)
{
	size_t j = *i;

	while (is_blank(at(s, j)))
		j++;
	*i = j;
	while (at(s, j) > ' ' && at(s, j) != 0x7f)
		j++;
	*word = slice_make(s->text + *i, j - *i);
	*i = j;
	if (word->len == 0)
		return fail(p, s->file, s->line, "%c!%s needs a name", prefix,
		            dname);
	return 0;
}

/* The NAME argument of a directive, from i; moves i past it. */
static int dir_name(struct parser *p, struct src *s, size_t *i, char prefix,
                    const char *dname, struct slice *name)
{
	int rc = dir_word(p, s, i, prefix, dname, name);

	if (rc)
		return rc;
	if (!is_id(*name))
		return fail(p, s->file, s->line,
		            "invalid name \"%.*s\" in %c!%s", SLICE_ARG(*name),
		            prefix, dname);
	return 0;
}

/*
 * The value of a #!define from i: the rest of the line, continued on the
 * next after a trailing backslash, without a trailing comment and blanks.
 * Consumes the line(s).
 */
static int define_value(struct parser *p, struct src *s, size_t i,
                        struct slice *value)
{
	struct buf b = {0};
	char quote = 0;
	size_t n, cut;
	char *v;

	while (is_blank(at(s, i)))
		i++;
	while (at(s, i) >= 0 && at(s, i) != '\n') {
		if (at(s, i) == '\\' && (n = nl_len(s, i + 1)) > 0) {
			i += 1 + n;
			s->line++;
			continue;
		}
		buf_addc(&b, s->text[i++]);
	}
	s->pos = i;
	skip_line(s);
	cut = b.len;
	for (size_t k = 0; k < b.len; k++) {
		char c = b.p[k];

		if (quote) {
			if (c == '\\' && quote == '"' && k + 1 < b.len)
				k++;
			else if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '#' ||
		           (c == '/' && k + 1 < b.len && b.p[k + 1] == '/')) {
			cut = k;
			break;
		}
	}
	while (cut > 0 && is_blank((unsigned char)b.p[cut - 1]))
		cut--;
	v = b.oom ? NULL : arena_strdup(&p->tmp, slice_make(b.p, cut));
	free(b.p);
	if (!v)
		return nomem(p);
	*value = slice_make(v, cut);
	return 0;
}

static int push_cond(struct parser *p, const struct src *s, unsigned line,
                     char prefix, const char *name, bool value)
{
	struct cond *c;
	bool outer = cond_active(p);

	c = grow(p->conds, &p->capconds, p->nconds + 1, sizeof(*p->conds));
	if (!c)
		return nomem(p);
	p->conds = c;
	c = &p->conds[p->nconds++];
	c->file = s->file;
	c->line = line;
	c->prefix = prefix;
	c->name = name;
	c->outer = outer;
	c->value = value;
	c->in_else = false;
	return 0;
}

/*
 * The directive at s->pos ("#!" or "!!" at the start of a line), which it
 * consumes with its line. When skipping (inside an inactive branch) only
 * the nesting is followed.
 */
/*
 * #!subst "/regex/replacement/flags" (any delimiter; "\\/" is one in a
 * field): a rule for the quoted strings that follow, as in Kamailio, where
 * #!define names are not replaced inside strings. Flags: g (every match),
 * i (ignore case). #!substdef "/ID/value/" also defines ID as value,
 * #!substdefs as "value" (a quoted string). Kamailio's syntax and
 * meaning; its regexes are POSIX extended, as here.
 */
/*
 * A regex glibc could take unbounded time or memory over (a configuration
 * line must not stall the start): a back-reference (backtracking), a
 * counted repetition {n} or stacked '+' (each copies what it repeats);
 * also the empty one and one over 128 bytes.
 */
static bool regex_unbounded(const char *re)
{
	unsigned plus = 0;

	if (re[0] == '\0' || strlen(re) > 128 || strchr(re, '{'))
		return true;
	for (const char *r = re; *r; r++) {
		plus += *r == '+';
		if (*r == '\\' && r[1] >= '1' && r[1] <= '9')
			return true;
		if (*r == '\\' && r[1] != '\0')
			r++;
	}
	return plus > 8;
}

static int add_subst(struct parser *p, struct slice expr, enum dir_kind kind,
                     const char *dname, const char *file, unsigned line)
{
	char *field[3], *o;
	unsigned nf = 0;
	char delim;
	int flags = REG_EXTENDED;
	bool global = false;
	struct subst *r;
	int err;

	if (expr.len < 4)
		return fail(p, file, line,
		            "#!%s expects \"/regex/replacement/flags\"", dname);
	delim = expr.p[0];
	o = arena_alloc(&p->tmp, expr.len + 1);
	if (!o)
		return nomem(p);
	field[0] = o;
	for (size_t i = 1; i < expr.len; i++) {
		char c = expr.p[i];
		if (c == '\\' && i + 1 < expr.len && expr.p[i + 1] == delim) {
			*o++ = delim;
			i++;
		} else if (c == delim && nf < 2) {
			*o++ = '\0';
			field[++nf] = o;
		} else if (c == delim) {
			return fail(p, file, line, "#!%s: text after the flags",
			            dname);
		} else {
			*o++ = c;
		}
	}
	*o = '\0';
	if (nf != 2)
		return fail(p, file, line,
		            "#!%s expects \"/regex/replacement/flags\"", dname);
	for (const char *f = field[2]; *f; f++) {
		if (*f == 'g')
			global = true;
		else if (*f == 'i')
			flags |= REG_ICASE;
		else
			return fail(p, file, line, "#!%s: unknown flag '%c'",
			            dname, *f);
	}
	if (regex_unbounded(field[0]))
		return fail(p, file, line,
		            "#!%s: regex empty, over 128 bytes, or costly to "
		            "match (back-reference, {n}, more than 8 '+')",
		            dname);
	if (kind != D_SUBST && !is_id(slice_cstr(field[0])))
		return fail(p, file, line, "invalid name \"%s\" in #!%s",
		            field[0], dname);
	r = grow(p->substs, &p->capsubsts, p->nsubsts + 1, sizeof(*p->substs));
	if (!r)
		return nomem(p);
	p->substs = r;
	r = &p->substs[p->nsubsts];
	err = regcomp(&r->re, field[0], flags);
	if (err) {
		char why[160];
		regerror(err, &r->re, why, sizeof(why));
		return fail(p, file, line, "#!%s: bad regex \"%s\": %s", dname,
		            field[0], why);
	}
	r->repl = field[1];
	r->global = global;
	p->nsubsts++;
	if (kind == D_SUBST)
		return 0;
	if (kind == D_SUBSTDEFS) {
		char *q = tmp_printf(p, "\"%s\"", field[1]);
		if (!q)
			return nomem(p);
		return define(p, slice_cstr(field[0]), slice_cstr(q), DEF_NEW,
		              file, line);
	}
	return define(p, slice_cstr(field[0]), slice_cstr(field[1]), DEF_NEW,
	              file, line);
}

/* The replacement of one match: \0..\9 are the match and its groups,
 * \\ a backslash. */
static void add_replacement(struct buf *b, const char *repl, const char *text,
                            const regmatch_t *m)
{
	for (const char *r = repl; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '9') {
			const regmatch_t *g = &m[r[1] - '0'];
			if (g->rm_so >= 0)
				buf_add(b, text + g->rm_so,
				        (size_t)(g->rm_eo - g->rm_so));
			r++;
		} else if (r[0] == '\\' && r[1] == '\\') {
			buf_addc(b, '\\');
			r++;
		} else {
			buf_addc(b, *r);
		}
	}
}

#define SUBST_MAX 65536

/* Runs the #!subst rules over a string token, in order. */
static int run_substs(struct parser *p, struct tok *t)
{
	for (size_t i = 0; i < p->nsubsts; i++) {
		const struct subst *r = &p->substs[i];
		const char *text = t->text.p;
		struct buf b = {0};
		regmatch_t m[10];
		size_t at = 0;
		bool changed = false;

		while (text[at] != '\0' && regexec(&r->re, text + at, 10, m,
		                                   at ? REG_NOTBOL : 0) == 0) {
			/* rules that feed each other could grow a string
			 * without bound */
			if (b.len > SUBST_MAX) {
				free(b.p);
				return fail(
				        p, t->file, t->line,
				        "#!subst rules make a string longer "
				        "than %d bytes",
				        SUBST_MAX);
			}
			buf_add(&b, text + at, (size_t)m[0].rm_so);
			add_replacement(&b, r->repl, text + at, m);
			changed = true;
			/* an empty match moves on by one character */
			if (m[0].rm_eo == m[0].rm_so) {
				if (text[at + (size_t)m[0].rm_eo] != '\0')
					buf_addc(&b,
					         text[at + (size_t)m[0].rm_eo]);
				at += (size_t)m[0].rm_eo + 1;
			} else {
				at += (size_t)m[0].rm_eo;
			}
			if (!r->global)
				break;
		}
		if (!changed)
			continue;
		if (at < t->text.len)
			buf_add(&b, text + at, t->text.len - at);
		buf_addc(&b, '\0');
		if (b.oom) {
			free(b.p);
			return nomem(p);
		}
		char *out = arena_strdup(&p->tmp, slice_make(b.p, b.len - 1));
		free(b.p);
		if (!out)
			return nomem(p);
		t->text = slice_make(out, strlen(out));
	}
	return 0;
}

/*
 * #!defenv ID=VAR (or VAR: ID is VAR) defines ID as the value of the
 * environment variable VAR, #!defenvs as "value" (a quoted string); an
 * unset VAR is an error, while the #!trydefenv forms then define nothing.
 * As in Kamailio, ID must not be defined already.
 */
static int define_env(struct parser *p, struct src *s, size_t i, char prefix,
                      enum dir_kind kind, const char *dname)
{
	struct slice arg, id, var;
	const char *eq, *value;
	char *name;
	unsigned line = s->line;
	int rc = dir_word(p, s, &i, prefix, dname, &arg);

	if (rc)
		return rc;
	eq = memchr(arg.p, '=', arg.len);
	id = eq ? slice_make(arg.p, (size_t)(eq - arg.p)) : arg;
	var = eq ? slice_make(eq + 1, (size_t)(arg.p + arg.len - eq - 1)) : arg;
	if (!is_id(id) || !is_id(var))
		return fail(p, s->file, line,
		            "%c!%s expects ID=VAR or VAR, not \"%.*s\"", prefix,
		            dname, SLICE_ARG(arg));
	rc = dir_end(p, s, i, prefix, dname);
	if (rc)
		return rc;
	name = arena_strdup(&p->tmp, var);
	if (!name)
		return nomem(p);
	value = getenv(name);
	if (value == NULL) {
		if (kind == D_TRYDEFENV || kind == D_TRYDEFENVS)
			return 0;
		return fail(p, s->file, line,
		            "%c!%s: environment variable %.*s is not set",
		            prefix, dname, SLICE_ARG(var));
	}
	if (kind == D_DEFENVS || kind == D_TRYDEFENVS) {
		value = tmp_printf(p, "\"%s\"", value);
		if (!value)
			return nomem(p);
	}
	return define(p, id, slice_cstr(value), DEF_NEW, s->file, line);
}

static int directive(struct parser *p, struct src *s, bool skipping)
{
	char prefix = s->text[s->pos];
	size_t i = s->pos + 2, j = i, k;
	unsigned line = s->line;
	enum dir_kind kind = D_UNSUPPORTED;
	const char *dname = NULL;
	struct slice name, value;
	struct tok t;
	bool own = s->cond_base < p->nconds;
	int rc;

	while (is_id_char(at(s, j)))
		j++;
	for (size_t d = 0; d < sizeof(directives) / sizeof(directives[0]);
	     d++) {
		if (slice_eq_cstr(slice_make(s->text + i, j - i),
		                  directives[d].name)) {
			kind = directives[d].kind;
			dname = directives[d].name;
			break;
		}
	}
	if (skipping && (!dname || (kind != D_IFDEF && kind != D_IFNDEF &&
	                            kind != D_ELSE && kind != D_ENDIF))) {
		skip_line(s);
		return 0;
	}
	/* The compatibility marks are comments to Kamailio's scanner, and
	 * only in the "#!" form. */
	if (!dname || (kind == D_COMPAT && prefix != '#')) {
		for (k = s->pos; at(s, k) > ' ' && at(s, k) != 0x7f; k++)
			;
		return fail(p, s->file, line, "unknown directive \"%.*s\"",
		            (int)(k - s->pos), s->text + s->pos);
	}
	switch (kind) {
	case D_COMPAT:
		if (line != 1)
			return fail(p, s->file, line,
			            "#!%s is only allowed on the first line",
			            dname);
		return dir_end(p, s, j, prefix, dname);
	case D_DEFINE:
	case D_TRYDEF:
	case D_REDEF:
		rc = dir_name(p, s, &j, prefix, dname, &name);
		if (!rc)
			rc = define_value(p, s, j, &value);
		if (!rc)
			rc = define(p, name, value,
			            kind == D_DEFINE   ? DEF_NEW
			            : kind == D_TRYDEF ? DEF_TRY
			                               : DEF_REDEF,
			            s->file, line);
		return rc;
	case D_UNDEF:
		rc = dir_name(p, s, &j, prefix, dname, &name);
		if (!rc)
			rc = dir_end(p, s, j, prefix, dname);
		if (!rc)
			undefine(p, name);
		return rc;
	case D_IFDEF:
	case D_IFNDEF:
		if (skipping) {
			/* Only nesting matters: the name is not read. */
			rc = push_cond(p, s, line, prefix, dname, false);
			skip_line(s);
			return rc;
		}
		rc = dir_name(p, s, &j, prefix, dname, &name);
		if (!rc)
			rc = dir_end(p, s, j, prefix, dname);
		if (!rc)
			rc = push_cond(p, s, line, prefix, dname,
			               (find_define(p, name) != NULL) ==
			                       (kind == D_IFDEF));
		return rc;
	case D_ELSE:
		if (!own)
			return fail(p, s->file, line,
			            "%c!else without %c!ifdef", prefix, prefix);
		if (p->conds[p->nconds - 1].in_else)
			return fail(p, s->file, line, "duplicate %c!else",
			            prefix);
		rc = dir_end(p, s, j, prefix, dname);
		if (!rc)
			p->conds[p->nconds - 1].in_else = true;
		return rc;
	case D_ENDIF:
		if (!own)
			return fail(p, s->file, line,
			            "%c!endif without %c!ifdef", prefix,
			            prefix);
		rc = dir_end(p, s, j, prefix, dname);
		if (!rc)
			p->nconds--;
		return rc;
	case D_INCLUDE:
	case D_IMPORT:
		rc = dir_string(p, s, j, prefix, dname, "file name", &t);
		if (!rc)
			rc = include(p, s->file, line, t.text.p,
			             kind == D_IMPORT);
		return rc;
	case D_SUBST:
	case D_SUBSTDEF:
	case D_SUBSTDEFS:
		rc = dir_string(p, s, j, prefix, dname, "expression", &t);
		if (!rc)
			rc = add_subst(p, t.text, kind, dname, s->file, line);
		return rc;
	case D_DEFENV:
	case D_DEFENVS:
	case D_TRYDEFENV:
	case D_TRYDEFENVS:
		return define_env(p, s, j, prefix, kind, dname);
	case D_UNSUPPORTED:
		break;
	}
	return fail(p, s->file, line, "unsupported directive %c!%s", prefix,
	            dname);
}

/* Skips the lines of an inactive branch, following the nesting, until a
 * branch is taken again or the file ends. */
static int skip_inactive(struct parser *p, struct src *s)
{
	while (s->pos < s->len && !cond_active(p)) {
		size_t i = s->pos;

		while (is_blank(at(s, i)))
			i++;
		if ((at(s, i) == '#' || at(s, i) == '!') &&
		    at(s, i + 1) == '!') {
			int rc;

			s->pos = i;
			rc = directive(p, s, true);
			if (rc)
				return rc;
		} else {
			skip_line(s);
		}
	}
	return 0;
}

/* The next token; defines are expanded and directives obeyed on the way. */
static int lex(struct parser *p, struct tok *t)
{
	*t = (struct tok){0};
	for (;;) {
		struct src *s = p->src;
		bool pushed;
		int c, rc;

		if (!s) {
			t->kind = T_EOF;
			t->file = p->eof_file;
			t->line = p->eof_line;
			t->spaced = true;
			return 0;
		}
		if (s->pos >= s->len) {
			/* A file's end ends its last statement, so that an
			 * included file cannot leave one open. */
			if (!s->macro && !s->ended) {
				s->ended = true;
				t->kind = T_NL;
				t->file = s->file;
				t->line = s->line;
				return 0;
			}
			rc = pop_src(p);
			if (rc)
				return rc;
			continue;
		}
		if (!s->macro && !cond_active(p)) {
			rc = skip_inactive(p, s);
			if (rc)
				return rc;
			continue;
		}
		c = at(s, s->pos);
		if (c == '\n') {
			t->kind = T_NL;
			t->file = s->file;
			t->line = s->line;
			s->pos++;
			s->line++;
			s->bol = true;
			p->spaced = true;
			return 0;
		}
		if (is_blank(c)) {
			s->pos++;
			p->spaced = true;
			continue;
		}
		if (c == '\\' && nl_len(s, s->pos + 1) > 0) {
			s->pos += 1 + nl_len(s, s->pos + 1);
			s->line++;
			s->bol = false;
			p->spaced = true;
			continue;
		}
		if (s->bol && !s->macro && (c == '#' || c == '!') &&
		    at(s, s->pos + 1) == '!') {
			rc = directive(p, s, false);
			if (rc)
				return rc;
			continue;
		}
		if (c == '#' || (c == '/' && at(s, s->pos + 1) == '/')) {
			const char *nl =
			        memchr(s->text + s->pos, '\n', s->len - s->pos);

			s->pos = nl ? (size_t)(nl - s->text) : s->len;
			p->spaced = true;
			continue;
		}
		if (c == '/' && at(s, s->pos + 1) == '*') {
			rc = block_comment(p, s);
			if (rc)
				return rc;
			p->spaced = true;
			continue;
		}
		s->bol = false;
		t->file = s->file;
		t->line = s->line;
		t->spaced = p->spaced;
		p->spaced = false;
		if (c == '"' || c == '\'') {
			rc = lex_string(p, s, t);
			return rc ? rc : run_substs(p, t);
		}
		if (is_punct(c)) {
			t->kind = T_PUNCT;
			t->punct = (char)c;
			t->text = slice_make(s->text + s->pos, 1);
			t->raw = t->text;
			s->pos++;
			return 0;
		}
		if (c < ' ' || c == 0x7f)
			return fail(p, s->file, s->line,
			            "unexpected character 0x%02x", c);
		rc = lex_word(p, s, t, &pushed);
		if (rc)
			return rc;
		if (!pushed)
			return 0;
		/* The define's first token stands where the word stood. */
		p->spaced = t->spaced;
	}
}

/* -------------------------------------------------------------- parser */

static int next(struct parser *p, struct tok *t)
{
	if (p->have_la) {
		*t = p->la;
		p->have_la = false;
		return 0;
	}
	return lex(p, t);
}

static int peek(struct parser *p, const struct tok **t)
{
	if (!p->have_la) {
		int rc = lex(p, &p->la);

		if (rc)
			return rc;
		p->have_la = true;
	}
	*t = &p->la;
	return 0;
}

/* The next token other than a new line: inside parentheses. */
static int next_nonl(struct parser *p, struct tok *t)
{
	int rc;

	while (!(rc = next(p, t)) && t->kind == T_NL)
		;
	return rc;
}

static bool is_punct_tok(const struct tok *t, char c)
{
	return t->kind == T_PUNCT && t->punct == c;
}

/* A statement ends at a new line, a ';' or the end. With own_line, nothing
 * may follow on the line (include_file: the included text must come
 * next). */
static int end_stmt(struct parser *p, bool own_line)
{
	const struct tok *t;
	struct tok skip;
	int rc = peek(p, &t);

	if (!rc && is_punct_tok(t, ';')) {
		rc = next(p, &skip);
		if (!rc)
			rc = peek(p, &t);
		if (!rc && !own_line)
			return t->kind == T_NL ? next(p, &skip) : 0;
	}
	if (rc)
		return rc;
	if (t->kind == T_NL)
		return next(p, &skip);
	if (t->kind == T_EOF)
		return 0;
	return fail(p, t->file, t->line, "expected ';' or a new line, not %s",
	            describe(p, t));
}

/* " (help)" for the messages about a value of d, or "". */
static const char *help(struct parser *p, const struct cfg_param_def *d)
{
	const char *s = d->help ? tmp_printf(p, " (%s)", d->help) : NULL;

	return s ? s : "";
}

static const struct {
	const char *word;
	int value;
} bool_words[] = {
        {"yes", 1}, {"true", 1},  {"on", 1},  {"enable", 1},
        {"no", 0},  {"false", 0}, {"off", 0}, {"disable", 0},
};

static bool bool_word(struct slice w, long long *v)
{
	for (size_t i = 0; i < sizeof(bool_words) / sizeof(bool_words[0]); i++)
		if (slice_eq_cstr(w, bool_words[i].word)) {
			*v = bool_words[i].value;
			return true;
		}
	return false;
}

/*
 * Turns the n tokens of a value for def into *v, strings copied into the
 * cfg. what names the parameter in messages. bare: whether bare text (any
 * words) may make a string, as for global parameters; modparam wants a
 * quoted string or a number.
 */
static int make_value(struct parser *p, const struct cfg_param_def *def,
                      const char *what, const struct tok *toks, size_t n,
                      bool bare, struct cfg_value *v)
{
	const struct tok *t = &toks[0];
	const char *why;
	long long i;
	int rc;

	v->type = def->type;
	v->i = 0;
	v->s = NULL;
	if (def->type == CFG_INT) {
		if (n != 1 || t->kind != T_WORD)
			return fail(p, t->file, t->line,
			            "%s expects an integer%s", what,
			            help(p, def));
		if (!bool_word(t->text, &i)) {
			rc = cfg_parse_int(&i, t->text);
			if (rc == ENOMEM)
				return nomem(p);
			if (rc == ERANGE)
				return fail(p, t->file, t->line,
				            "%s: %.*s is out of range", what,
				            SLICE_ARG(t->text));
			if (rc)
				return fail(p, t->file, t->line,
				            "%s expects an integer%s", what,
				            help(p, def));
		}
		if (def->min <= def->max && (i < def->min || i > def->max))
			return fail(p, t->file, t->line,
			            "%s must be between %lld and %lld, not "
			            "%lld%s",
			            what, def->min, def->max, i, help(p, def));
		v->i = i;
	} else if (n == 1) {
		if (t->kind == T_WORD && !bare &&
		    cfg_parse_int(&i, t->text) != 0)
			return fail(p, t->file, t->line,
			            "%s expects a quoted string%s", what,
			            help(p, def));
		v->s = arena_strdup(&p->cfg->mem, t->text);
		if (!v->s)
			return nomem(p);
	} else {
		/* Bare text over several tokens ("udp:1.2.3.4:5060
		 * advertise 5.6.7.8:5060"): kept as written, blanks
		 * folded to one space, for the owner to parse. */
		struct buf b = {0};

		for (size_t k = 0; k < n; k++) {
			if (k > 0 && toks[k].spaced)
				buf_addc(&b, ' ');
			if (toks[k].kind == T_STR)
				buf_add(&b, toks[k].raw.p, toks[k].raw.len);
			else
				buf_add(&b, toks[k].text.p, toks[k].text.len);
		}
		v->s = b.oom ? NULL
		             : arena_strdup(&p->cfg->mem,
		                            slice_make(b.p, b.len));
		free(b.p);
		if (!v->s)
			return nomem(p);
	}
	if (def->check && (why = def->check(v)) != NULL)
		return fail(p, t->file, t->line, "%s: %s%s", what, why,
		            help(p, def));
	return 0;
}

static int add_entry(struct parser *p, const struct cfg_module_def *m,
                     const struct cfg_param_def *def, const struct cfg_value *v,
                     const struct tok *at_tok)
{
	struct cfg *c = p->cfg;
	const char *module = m ? m->name : NULL;
	struct cfg_entry *e;

	if (!def->repeatable) {
		/* The last assignment wins: the earlier one is forgotten,
		 * so that the entries are exactly what is in effect. */
		for (size_t i = 0; i < c->nentries; i++) {
			if (c->entries[i].def == def &&
			    c->entries[i].module == module) {
				memmove(&c->entries[i], &c->entries[i + 1],
				        (c->nentries - i - 1) *
				                sizeof(*c->entries));
				c->nentries--;
				break;
			}
		}
	}
	e = grow(c->entries, &c->capentries, c->nentries + 1,
	         sizeof(*c->entries));
	if (!e)
		return nomem(p);
	c->entries = e;
	e = &c->entries[c->nentries++];
	e->module = module;
	e->def = def;
	e->v = *v;
	e->file = at_tok->file;
	e->line = at_tok->line;
	return 0;
}

/* "a, b, c" of the names in a table, for "unknown X; available: ...". */
static const char *list_modules(struct parser *p)
{
	struct buf b = {0};
	const char *s;

	for (size_t i = 0; i < p->schema->nmodules; i++) {
		if (i > 0)
			buf_adds(&b, ", ");
		buf_adds(&b, p->schema->modules[i].name);
	}
	s = b.oom ? NULL
	    : b.p ? arena_strdup(&p->tmp, slice_make(b.p, b.len))
	          : "none";
	free(b.p);
	return s;
}

static const char *list_params(struct parser *p, const struct cfg_module_def *m)
{
	struct buf b = {0};
	const char *s;

	for (size_t i = 0; i < m->nparams; i++) {
		if (i > 0)
			buf_adds(&b, ", ");
		buf_adds(&b, m->params[i].name);
	}
	s = b.oom ? NULL
	    : b.p ? arena_strdup(&p->tmp, slice_make(b.p, b.len))
	          : "none";
	free(b.p);
	return s;
}

static int unknown_module(struct parser *p, const struct tok *t,
                          struct slice name)
{
	const char *list = list_modules(p);

	if (!list)
		return nomem(p);
	return fail(p, t->file, t->line,
	            "unknown module \"%.*s\"; available: %s", SLICE_ARG(name),
	            list);
}

/* name = value */
static int st_assign(struct parser *p, const struct tok *name)
{
	const struct cfg_param_def *def;
	const struct tok *t;
	struct tok eq;
	struct cfg_value v;
	size_t n = 0;
	char *what;
	int rc;

	rc = next(p, &eq); /* the '=' seen by the caller */
	if (rc)
		return rc;
	def = find_param(p->schema->globals, p->schema->nglobals, name->text);
	if (!def)
		return fail(p, name->file, name->line,
		            "unknown global parameter \"%.*s\"",
		            SLICE_ARG(name->text));
	for (;;) {
		struct tok *slot;

		rc = peek(p, &t);
		if (rc)
			return rc;
		/* An integer is one word: what follows is for end_stmt()
		 * to refuse, as "debug=1 children=2" should be. */
		if (t->kind == T_NL || t->kind == T_EOF ||
		    is_punct_tok(t, ';') || (def->type == CFG_INT && n == 1))
			break;
		if (t->kind == T_PUNCT)
			return fail(p, t->file, t->line,
			            "unexpected \"%c\" in the value of "
			            "\"%.*s\"",
			            t->punct, SLICE_ARG(name->text));
		slot = grow(p->vals, &p->capvals, n + 1, sizeof(*p->vals));
		if (!slot)
			return nomem(p);
		p->vals = slot;
		rc = next(p, &p->vals[n++]);
		if (rc)
			return rc;
	}
	if (n == 0)
		return fail(p, name->file, name->line,
		            "missing value for \"%.*s\"",
		            SLICE_ARG(name->text));
	what = tmp_printf(p, "\"%.*s\"", SLICE_ARG(name->text));
	if (!what)
		return nomem(p);
	rc = make_value(p, def, what, p->vals, n, true, &v);
	if (!rc)
		rc = add_entry(p, NULL, def, &v, &p->vals[0]);
	if (!rc)
		rc = end_stmt(p, false);
	return rc;
}

/* loadmodule "tm" | "tm.so" | "/usr/lib/.../tm.so" */
static int st_loadmodule(struct parser *p, const struct tok *kw)
{
	const struct cfg_module_def *m;
	struct slice name;
	const char *slash;
	struct tok t;
	char *def;
	int rc;

	rc = next(p, &t);
	if (rc)
		return rc;
	if (t.kind != T_STR)
		return fail(p, kw->file, kw->line,
		            "loadmodule expects a quoted module name");
	/* The basename, without ".so": modules are built in. */
	slash = strrchr(t.text.p, '/');
	name = slice_cstr(slash ? slash + 1 : t.text.p);
	if (name.len > 3 && memcmp(name.p + name.len - 3, ".so", 3) == 0)
		name.len -= 3;
	m = find_module(p->schema, name);
	if (!m)
		return unknown_module(p, &t, name);
	p->cfg->loaded[m - p->schema->modules] = true;
	/* Kamailio defines MOD_name for each loaded module, for
	 * `#!ifdef MOD_tm`. */
	def = tmp_printf(p, "MOD_%s", m->name);
	if (!def)
		return nomem(p);
	rc = define(p, slice_cstr(def), SLICE_NULL, DEF_TRY, t.file, t.line);
	if (!rc)
		rc = end_stmt(p, false);
	return rc;
}

/* The value of `keyword value` or `keyword = value` into *v. */
static int keyword_value(struct parser *p, struct tok *v)
{
	const struct tok *t;
	int rc = peek(p, &t);

	if (!rc && is_punct_tok(t, '='))
		rc = next(p, v);
	if (!rc)
		rc = next(p, v);
	return rc;
}

/* loadpath "dir", mpath = "dir": modules are built in. */
static int st_loadpath(struct parser *p, const struct tok *kw)
{
	struct tok v;
	int rc = keyword_value(p, &v);

	if (rc)
		return rc;
	if (v.kind != T_STR && v.kind != T_WORD)
		return fail(p, kw->file, kw->line, "%.*s expects a directory",
		            SLICE_ARG(kw->text));
	return end_stmt(p, false);
}

/* cfgengine "lua" */
static int st_cfgengine(struct parser *p, const struct tok *kw)
{
	struct tok v;
	int rc = keyword_value(p, &v);

	if (rc)
		return rc;
	if (v.kind != T_STR)
		return fail(p, kw->file, kw->line,
		            "cfgengine expects a quoted name");
	if (!slice_eq_cstr(v.text, "lua"))
		return fail(p, v.file, v.line,
		            "unsupported cfgengine \"%.*s\" (only \"lua\")",
		            SLICE_ARG(v.text));
	p->cfg->engine = "lua";
	return end_stmt(p, false);
}

/* modparam("module", "name", value); the module may be "a|b", which
 * Kamailio reads as a regular expression: alternatives of plain names are
 * what configurations use. */
static int st_modparam(struct parser *p, const struct tok *kw)
{
	struct tok t[7];
	static const enum tok_kind want[7] = {T_PUNCT, T_STR,  T_PUNCT, T_STR,
	                                      T_PUNCT, T_WORD, T_PUNCT};
	static const char punct[7] = {'(', 0, ',', 0, ',', 0, ')'};
	struct slice mods;
	int rc;

	for (int i = 0; i < 7; i++) {
		rc = next_nonl(p, &t[i]);
		if (rc)
			return rc;
		if (t[i].kind == want[i] &&
		    (!punct[i] || t[i].punct == punct[i]))
			continue;
		if (i == 5 && t[i].kind == T_STR)
			continue;
		return fail(p, t[i].file, t[i].line,
		            "modparam expects (\"module\", \"name\", value), "
		            "not %s",
		            describe(p, &t[i]));
	}
	mods = t[1].text;
	for (;;) {
		const char *bar = memchr(mods.p, '|', mods.len);
		struct slice mname = slice_make(
		        mods.p, bar ? (size_t)(bar - mods.p) : mods.len);
		const struct cfg_module_def *m = find_module(p->schema, mname);
		const struct cfg_param_def *def;
		struct cfg_value v;
		const char *list;
		char *what;

		if (!m)
			return unknown_module(p, &t[1], mname);
		if (!p->cfg->loaded[m - p->schema->modules])
			return fail(p, t[1].file, t[1].line,
			            "module \"%.*s\" not loaded",
			            SLICE_ARG(mname));
		def = find_param(m->params, m->nparams, t[3].text);
		if (!def) {
			list = list_params(p, m);
			if (!list)
				return nomem(p);
			return fail(p, t[3].file, t[3].line,
			            "unknown parameter \"%.*s\" of module "
			            "\"%.*s\"; available: %s",
			            SLICE_ARG(t[3].text), SLICE_ARG(mname),
			            list);
		}
		what = tmp_printf(p, "modparam(\"%.*s\", \"%.*s\")",
		                  SLICE_ARG(mname), SLICE_ARG(t[3].text));
		if (!what)
			return nomem(p);
		rc = make_value(p, def, what, &t[5], 1, false, &v);
		if (!rc)
			rc = add_entry(p, m, def, &v, &t[5]);
		if (rc)
			return rc;
		if (!bar)
			break;
		mods = slice_make(bar + 1, mods.len - mname.len - 1);
	}
	return end_stmt(p, false);
}

static int st_include_any(struct parser *p, const struct tok *kw, bool import)
{
	struct tok t;
	int rc = next(p, &t);

	if (rc)
		return rc;
	if (t.kind != T_STR)
		return fail(p, kw->file, kw->line,
		            "%.*s expects a quoted file name",
		            SLICE_ARG(kw->text));
	/* The rest of the line first: the included text comes next. */
	rc = end_stmt(p, true);
	if (!rc)
		rc = include(p, kw->file, kw->line, t.text.p, import);
	return rc;
}

static int st_include(struct parser *p, const struct tok *kw)
{
	return st_include_any(p, kw, false);
}

static int st_import(struct parser *p, const struct tok *kw)
{
	return st_include_any(p, kw, true);
}

static const struct {
	const char *word;
	int (*parse)(struct parser *p, const struct tok *kw);
} statements[] = {
        {"loadmodule", st_loadmodule}, {"loadpath", st_loadpath},
        {"mpath", st_loadpath},        {"modparam", st_modparam},
        {"cfgengine", st_cfgengine},   {"include_file", st_include},
        {"import_file", st_import},
};

/* Kamailio's route block keywords: the routing logic lives in Lua. */
static const char *const route_words[] = {
        "route",         "request_route", "reply_route",  "onreply_route",
        "failure_route", "branch_route",  "onsend_route", "event_route",
};

static bool is_route(struct slice w)
{
	for (size_t i = 0; i < sizeof(route_words) / sizeof(route_words[0]);
	     i++) {
		size_t n = strlen(route_words[i]);

		if (has_prefix(w, route_words[i]) &&
		    (w.len == n || w.p[n] == '['))
			return true;
	}
	return false;
}

static int statement(struct parser *p, const struct tok *w)
{
	const struct tok *t;
	int rc;

	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
		if (slice_eq_cstr(w->text, statements[i].word))
			return statements[i].parse(p, w);
	if (is_route(w->text))
		return fail(p, w->file, w->line,
		            "route blocks are not supported; use cfgengine "
		            "\"lua\"");
	rc = peek(p, &t);
	if (rc)
		return rc;
	if (is_punct_tok(t, '='))
		return st_assign(p, w);
	return fail(p, w->file, w->line, "unknown statement \"%.*s\"",
	            SLICE_ARG(w->text));
}

static int parse(struct parser *p)
{
	struct tok t;
	int rc;

	for (;;) {
		rc = next(p, &t);
		if (rc)
			return rc;
		switch (t.kind) {
		case T_EOF:
			return 0;
		case T_NL:
			break;
		case T_PUNCT:
			if (t.punct != ';')
				return fail(p, t.file, t.line,
				            "unexpected \"%c\"", t.punct);
			break;
		case T_STR:
			return fail(p, t.file, t.line,
			            "unexpected quoted string");
		case T_WORD:
			rc = statement(p, &t);
			if (rc)
				return rc;
			break;
		}
	}
}

/* "NAME" or "NAME=value", as given to kamailio -A. */
static int predefine(struct parser *p, const char *const *defines)
{
	for (; defines && *defines; defines++) {
		const char *eq = strchr(*defines, '=');
		struct slice name =
		        slice_make(*defines, eq ? (size_t)(eq - *defines)
		                                : strlen(*defines));
		struct slice value = eq ? slice_cstr(eq + 1) : SLICE_NULL;

		if (!is_id(name)) {
			if (p->err && p->errsize > 0)
				snprintf(p->err, p->errsize,
				         "invalid define \"%s\"", *defines);
			return EINVAL;
		}
		/* Like -A, a later one replaces an earlier one. */
		int rc = define(p, name, value, DEF_REDEF, "", 0);

		if (rc)
			return rc;
	}
	return 0;
}

static void parser_fini(struct parser *p)
{
	while (p->src) {
		struct src *s = p->src;

		p->src = s->up;
		free(s->owned);
		free(s);
	}
	while (p->done) {
		struct src *s = p->done;

		p->done = s->up;
		free(s->owned);
		free(s);
	}
	free(p->defs);
	for (size_t i = 0; i < p->nsubsts; i++)
		regfree(&p->substs[i].re);
	free(p->substs);
	free(p->conds);
	free(p->vals);
	arena_fini(&p->tmp);
}

/* Loads text (owned is its buffer to free, or NULL when borrowed). */
static int load(struct cfg **out, const char *name, const char *text,
                size_t len, char *owned, const struct cfg_schema *schema,
                const char *const *defines, char *err, size_t errsize)
{
	struct parser p = {0};
	struct cfg *c;
	const char *file;
	int rc;

	if (err && errsize > 0)
		err[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (!c) {
		free(owned);
		p.err = err;
		p.errsize = errsize;
		return nomem(&p);
	}
	arena_init(&c->mem, NULL, 0);
	c->schema = *schema;
	c->loaded = calloc(schema->nmodules ? schema->nmodules : 1,
	                   sizeof(*c->loaded));
	p.schema = &c->schema;
	p.cfg = c;
	p.err = err;
	p.errsize = errsize;
	p.eof_file = "";
	arena_init(&p.tmp, NULL, 0);
	file = arena_strdup(&c->mem, slice_cstr(name));
	if (!c->loaded || !file) {
		free(owned);
		rc = nomem(&p);
	} else {
		rc = predefine(&p, defines);
		if (rc)
			free(owned);
		else
			rc = push_file(&p, file, text, len, owned, 0);
	}
	if (!rc)
		rc = parse(&p);
	parser_fini(&p);
	if (rc) {
		cfg_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int cfg_load(struct cfg **out, const char *path,
             const struct cfg_schema *schema, const char *const *defines,
             char *err, size_t errsize)
{
	char *text;
	size_t len;
	int rc = read_file(path, &text, &len);

	if (rc) {
		if (err && errsize > 0)
			snprintf(err, errsize, "%s: %s", path, strerror(rc));
		return rc;
	}
	return load(out, path, text, len, text, schema, defines, err, errsize);
}

int cfg_load_string(struct cfg **out, const char *name, const char *text,
                    size_t len, const struct cfg_schema *schema,
                    const char *const *defines, char *err, size_t errsize)
{
	return load(out, name, text, len, NULL, schema, defines, err, errsize);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	arena_fini(&c->mem);
	free(c->entries);
	free(c->loaded);
	free(c);
}

/* -------------------------------------------------------------- queries */

bool cfg_module_loaded(const struct cfg *c, const char *module)
{
	const struct cfg_module_def *m =
	        find_module(&c->schema, slice_cstr(module));

	return m && c->loaded[m - c->schema.modules];
}

const char *cfg_engine(const struct cfg *c)
{
	return c->engine;
}

/* The canonical name of module, NULL for the globals; false when module
 * is not in the schema (nothing can match). */
static bool canonical(const struct cfg *c, const char *module,
                      const char **name)
{
	const struct cfg_module_def *m;

	*name = NULL;
	if (!module)
		return true;
	m = find_module(&c->schema, slice_cstr(module));
	if (!m)
		return false;
	*name = m->name;
	return true;
}

static bool entry_is(const struct cfg_entry *e, const char *module,
                     const char *name)
{
	return e->module == module && param_named(e->def, slice_cstr(name));
}

const struct cfg_entry *cfg_get(const struct cfg *c, const char *module,
                                const char *name)
{
	const char *m;

	if (!canonical(c, module, &m))
		return NULL;
	for (size_t i = c->nentries; i > 0; i--)
		if (entry_is(&c->entries[i - 1], m, name))
			return &c->entries[i - 1];
	return NULL;
}

const struct cfg_entry *cfg_next(const struct cfg *c,
                                 const struct cfg_entry *prev,
                                 const char *module, const char *name)
{
	size_t i = prev ? (size_t)(prev - c->entries) + 1 : 0;
	const char *m;

	if (!canonical(c, module, &m))
		return NULL;
	for (; i < c->nentries; i++)
		if (entry_is(&c->entries[i], m, name))
			return &c->entries[i];
	return NULL;
}

const struct cfg_entry *cfg_entries(const struct cfg *c, size_t *count)
{
	*count = c->nentries;
	return c->entries;
}

long long cfg_int(const struct cfg *c, const char *module, const char *name,
                  long long def)
{
	const struct cfg_entry *e = cfg_get(c, module, name);

	return e && e->v.type == CFG_INT ? e->v.i : def;
}

const char *cfg_str(const struct cfg *c, const char *module, const char *name,
                    const char *def)
{
	const struct cfg_entry *e = cfg_get(c, module, name);

	return e && e->v.type == CFG_STR ? e->v.s : def;
}

void cfg_entry_error(const struct cfg_entry *e, char *err, size_t errsize,
                     const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || errsize == 0)
		return;
	n = snprintf(err, errsize, "%s:%u: ", e->file, e->line);
	if (n < 0 || (size_t)n >= errsize)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errsize - (size_t)n, fmt, ap);
	va_end(ap);
}

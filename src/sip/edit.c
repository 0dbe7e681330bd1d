/*
 * Edit lists: changes to a received message recorded as (offset, bytes to
 * delete, text to insert) against the original bytes and applied in one
 * pass when the message is sent (Kamailio's "lumps"). The received buffer
 * is never touched, and no edit moves the offsets of another.
 */
#include <errno.h>
#include <string.h>

#include "sip/sip.h"

/* Records the first error, so a caller may chain helpers and look once at
 * the result of sip_edits_apply(). */
static int fail(struct sip_edits *ed, int err)
{
	if (ed->err == 0)
		ed->err = err;
	return err;
}

static int add(struct sip_edits *ed, uint32_t off, uint32_t del,
               struct slice ins)
{
	struct sip_edit *e;

	if (ed->n == SIP_EDITS_CAP)
		return fail(ed, E2BIG);
	e = &ed->e[ed->n];
	e->off = off;
	e->del = del;
	e->ins = ins;
	e->seq = ed->n++;
	return 0;
}

void sip_edits_init(struct sip_edits *ed, const struct sip_msg *m,
                    struct arena *arena)
{
	ed->m = m;
	ed->arena = arena;
	ed->n = 0;
	ed->err = 0;
}

int sip_edit_insert(struct sip_edits *ed, uint32_t off, struct slice text)
{
	return add(ed, off, 0, text);
}

int sip_edit_delete(struct sip_edits *ed, uint32_t off, uint32_t len)
{
	return add(ed, off, len, SLICE_NULL);
}

int sip_edit_replace(struct sip_edits *ed, uint32_t off, uint32_t len,
                     struct slice text)
{
	return add(ed, off, len, text);
}

/* ------------------------------------------------------------ helpers */

/* prefix + s + suffix, copied into the arena. */
static int compose(struct slice *out, struct sip_edits *ed, const char *prefix,
                   struct slice s, const char *suffix)
{
	size_t np = strlen(prefix), ns = strlen(suffix);
	char *p;

	if (s.len > SIZE_MAX - np - ns)
		return fail(ed, ENOMEM);
	p = arena_alloc(ed->arena, np + s.len + ns);
	if (p == NULL)
		return fail(ed, ENOMEM);
	memcpy(p, prefix, np);
	if (s.len > 0)
		memcpy(p + np, s.p, s.len);
	memcpy(p + np + s.len, suffix, ns);
	*out = slice_make(p, np + s.len + ns);
	return 0;
}

static uint32_t offset_of(const struct sip_msg *m, const char *p)
{
	return (uint32_t)(p - m->buf);
}

/* Offset of the first line of header id, or of the end of the headers
 * when there is none. */
static uint32_t line_or_end(const struct sip_msg *m, enum sip_hdr_id id)
{
	const struct sip_hdr *h = sip_msg_hdr(m, id);

	return h != NULL ? h->off : m->hdrs_end;
}

/* "Name: value\r\n" inserted at off. */
static int insert_line(struct sip_edits *ed, uint32_t off, const char *prefix,
                       struct slice value)
{
	struct slice line;
	int err = compose(&line, ed, prefix, value, "\r\n");

	return err != 0 ? err : add(ed, off, 0, line);
}

/*
 * Removes the first n elements of the header lines with this id: whole
 * lines while all their elements go, then the leading elements of the
 * next line with the comma and LWS after them, so "Via: a, b" becomes
 * "Via: b".
 */
static int drop_first_elems(struct sip_edits *ed, enum sip_hdr_id id,
                            unsigned n)
{
	const struct sip_hdr *h = sip_msg_hdr(ed->m, id);

	if (h == NULL)
		return fail(ed, ENOENT);
	for (; h != NULL && n > 0; h = sip_msg_hdr_next(ed->m, h)) {
		struct sip_list_iter it;
		struct slice first, elem;
		unsigned k = 0;
		int err;

		sip_list_init(&it, h->value);
		while ((err = sip_list_next(&elem, &it)) == 0) {
			if (k == 0)
				first = elem;
			if (k == n) {
				/* elem is the first one kept. */
				return add(ed, offset_of(ed->m, first.p),
				           (uint32_t)(elem.p - first.p),
				           SLICE_NULL);
			}
			k++;
		}
		if (err != ENOENT || k == 0)
			return fail(ed, EBADMSG);
		err = add(ed, h->off, h->len, SLICE_NULL);
		if (err)
			return err;
		n -= k;
	}
	return n == 0 ? 0 : fail(ed, ENOENT);
}

int sip_edit_push_via(struct sip_edits *ed, struct slice value)
{
	/* A proxy puts its Via above the others (RFC 3261 §16.6 step 8);
	 * a line of its own keeps the existing lines byte for byte. */
	const struct sip_hdr *via = sip_msg_hdr(ed->m, SIP_HDR_VIA);
	const struct sip_msg *m = ed->m;

	/* A request this proxy originates has none: the first line then,
	 * where RFC 3261 §7.3.1 recommends it, not after Content-Length. */
	return insert_line(ed,
	                   via        ? via->off
	                   : m->nhdrs ? m->hdrs[0].off
	                              : m->hdrs_end,
	                   "Via: ", value);
}

int sip_edit_pop_via(struct sip_edits *ed)
{
	/* §16.7 step 3: the topmost Via of a response is the proxy's own. */
	return drop_first_elems(ed, SIP_HDR_VIA, 1);
}

int sip_edit_add_record_route(struct sip_edits *ed, struct slice value)
{
	/* §16.6 step 4: the new value goes above any existing ones. */
	return insert_line(ed, line_or_end(ed->m, SIP_HDR_RECORD_ROUTE),
	                   "Record-Route: ", value);
}

int sip_edit_drop_routes(struct sip_edits *ed, unsigned n)
{
	/* §16.4: the Route values naming this proxy are removed (two of
	 * them after a double Record-Route). */
	return drop_first_elems(ed, SIP_HDR_ROUTE, n);
}

int sip_edit_drop_last_route(struct sip_edits *ed)
{
	/* §16.4: the last value became the Request-URI. */
	const struct sip_hdr *last = NULL;
	struct sip_list_iter it;
	struct slice elem, before = SLICE_NULL, final = SLICE_NULL;
	int err;

	for (const struct sip_hdr *h = sip_msg_hdr(ed->m, SIP_HDR_ROUTE); h;
	     h = sip_msg_hdr_next(ed->m, h))
		last = h;
	if (last == NULL)
		return fail(ed, ENOENT);
	sip_list_init(&it, last->value);
	while ((err = sip_list_next(&elem, &it)) == 0) {
		before = final;
		final = elem;
	}
	if (err != ENOENT || final.p == NULL)
		return fail(ed, EBADMSG);
	if (before.p == NULL)
		return add(ed, last->off, last->len, SLICE_NULL);
	/* ", <last>": from the end of the one before to the end of the value */
	const char *from = before.p + before.len;
	return add(ed, offset_of(ed->m, from),
	           (uint32_t)(final.p + final.len - from), SLICE_NULL);
}

int sip_edit_set_ruri(struct sip_edits *ed, struct slice uri)
{
	const struct sip_msg *m = ed->m;
	struct slice text;
	int err;

	if (!m->is_request || m->ruri.p == NULL)
		return fail(ed, EINVAL);
	err = compose(&text, ed, "", uri, "");
	if (err != 0)
		return err;
	return add(ed, offset_of(m, m->ruri.p), (uint32_t)m->ruri.len, text);
}

/* A whole header line inserted at off. Whatever line end the caller
 * wrote becomes one CRLF: an empty line here would end the header section
 * early. */
static int header_line_at(struct sip_edits *ed, uint32_t off, struct slice line)
{
	while (line.len > 0 &&
	       (line.p[line.len - 1] == '\r' || line.p[line.len - 1] == '\n'))
		line.len--;
	if (line.len == 0)
		return fail(ed, EINVAL);
	return insert_line(ed, off, "", line);
}

int sip_edit_add_header(struct sip_edits *ed, struct slice line)
{
	return header_line_at(ed, ed->m->hdrs_end, line);
}

int sip_edit_add_header_first(struct sip_edits *ed, struct slice line)
{
	const struct sip_msg *m = ed->m;

	return header_line_at(ed, m->nhdrs ? m->hdrs[0].off : m->hdrs_end,
	                      line);
}

int sip_edit_remove_header(struct sip_edits *ed, struct slice name)
{
	const struct sip_msg *m = ed->m;
	enum sip_hdr_id id = sip_hdr_lookup(name);
	unsigned i;
	int err;

	for (i = 0; i < m->nhdrs; i++) {
		const struct sip_hdr *h = &m->hdrs[i];

		/* Known names match by id, so "Via" also removes "v:"
		 * lines (RFC 3261 §7.3.3). */
		if (h->id != id ||
		    (id == SIP_HDR_OTHER && !slice_eq_nocase(h->name, name)))
			continue;
		err = add(ed, h->off, h->len, SLICE_NULL);
		if (err != 0)
			return err;
	}
	return 0;
}

int sip_edit_set_hdr_value(struct sip_edits *ed, const struct sip_hdr *h,
                           struct slice value)
{
	const struct sip_msg *m = ed->m;
	struct slice text;
	int err;

	if (h < m->hdrs || h >= m->hdrs + m->nhdrs)
		return fail(ed, EINVAL);
	err = compose(&text, ed, "", value, "");
	if (err != 0)
		return err;
	return add(ed, offset_of(m, h->value.p), (uint32_t)h->value.len, text);
}

/* -------------------------------------------------------------- apply */

size_t sip_edits_out_len(const struct sip_edits *ed)
{
	size_t len = ed->m->len, del = 0;
	unsigned i;

	for (i = 0; i < ed->n; i++) {
		len += ed->e[i].ins.len;
		del += ed->e[i].del;
	}
	/* Overlapping deletions can remove more than there is; apply
	 * rejects those edits anyway. */
	return del <= len ? len - del : 0;
}

/* Appends n bytes at *pos if they fit. */
static bool put(char *out, size_t size, size_t *pos, const char *p, size_t n)
{
	if (n > size - *pos)
		return false;
	if (n > 0)
		memcpy(out + *pos, p, n);
	*pos += n;
	return true;
}

int sip_edits_apply(size_t *out_len, char *out, size_t size,
                    struct sip_edits *ed)
{
	const struct sip_msg *m = ed->m;
	const struct sip_edit *order[SIP_EDITS_CAP];
	size_t pos = 0;
	uint64_t src = 0; /* next original byte to copy */
	uint64_t prev_off = 0;
	unsigned i, j;

	if (ed->err != 0)
		return ed->err;
	/* Insertion sort by offset, then by order of recording: stable and
	 * cheap for at most SIP_EDITS_CAP edits. */
	for (i = 0; i < ed->n; i++) {
		const struct sip_edit *e = &ed->e[i];

		for (j = i; j > 0 && (order[j - 1]->off > e->off ||
		                      (order[j - 1]->off == e->off &&
		                       order[j - 1]->seq > e->seq));
		     j--)
			order[j] = order[j - 1];
		order[j] = e;
	}

	for (i = 0; i < ed->n; i++) {
		const struct sip_edit *e = order[i];
		uint64_t end = (uint64_t)e->off + e->del;

		if (end > m->len)
			return EINVAL;
		/*
		 * Edits may not touch bytes an earlier one deleted, except
		 * that an insertion may share the offset of a deletion
		 * before it: a replacement is a deletion and an insertion,
		 * and text added next to it still has one obvious place.
		 */
		if (e->off < src && !(e->del == 0 && e->off == prev_off))
			return EINVAL;
		if (e->off > src) {
			if (!put(out, size, &pos, m->buf + src,
			         (size_t)(e->off - src)))
				return ENOSPC;
			src = e->off;
		}
		if (!put(out, size, &pos, e->ins.p, e->ins.len))
			return ENOSPC;
		if (end > src)
			src = end;
		prev_off = e->off;
	}
	if (!put(out, size, &pos, m->buf + src, (size_t)(m->len - src)))
		return ENOSPC;
	*out_len = pos;
	return 0;
}

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"

/* ---------------------------------------------------------------- slices */

static void test_slice_basics(void **state)
{
	struct slice s = SLICE_LIT("Via");
	char buf[8];

	assert_int_equal(s.len, 3);
	assert_true(slice_eq(s, slice_cstr("Via")));
	assert_false(slice_eq(s, slice_cstr("via")));
	assert_false(slice_eq(s, slice_cstr("Vias")));
	assert_true(slice_eq_nocase(s, slice_cstr("vIA")));
	assert_false(slice_eq_nocase(s, slice_cstr("vIB")));
	assert_true(slice_eq_cstr(s, "Via"));
	assert_true(slice_eq_cstr_nocase(s, "VIA"));
	assert_false(slice_eq_cstr_nocase(s, "VI"));
	/* Empty slices are equal whatever their pointer. */
	assert_true(slice_eq(SLICE_NULL, slice_make("x", 0)));
	assert_true(slice_eq_nocase(SLICE_NULL, SLICE_LIT("")));
	assert_int_equal(slice_cstr(NULL).len, 0);
	/* Only ASCII letters fold: '@' and '`' differ by 0x20 too. */
	assert_false(slice_eq_nocase(SLICE_LIT("@"), SLICE_LIT("`")));

	assert_true(slice_eq(slice_trim(SLICE_LIT(" \t\r\n a b \r\n")),
	                     SLICE_LIT("a b")));
	assert_int_equal(slice_trim(SLICE_LIT(" \t\r\n")).len, 0);
	assert_int_equal(slice_trim(SLICE_NULL).len, 0);
	assert_true(slice_eq(slice_trim(SLICE_LIT("x")), SLICE_LIT("x")));

	assert_int_equal(slice_copy_cstr(buf, sizeof(buf), SLICE_LIT("abc")),
	                 3);
	assert_string_equal(buf, "abc");
	assert_int_equal(
	        slice_copy_cstr(buf, sizeof(buf), SLICE_LIT("0123456789")), 7);
	assert_string_equal(buf, "0123456");
	assert_int_equal(slice_copy_cstr(buf, 1, SLICE_LIT("abc")), 0);
	assert_string_equal(buf, "");
	assert_int_equal(slice_copy_cstr(buf, sizeof(buf), SLICE_NULL), 0);
	assert_string_equal(buf, "");
}

static void test_slice_to_u32(void **state)
{
	uint32_t v = 7;

	assert_int_equal(slice_to_u32(&v, SLICE_LIT("0"), 10), 0);
	assert_int_equal(v, 0);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("00042"), 100), 0);
	assert_int_equal(v, 42);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("2147483647"), INT32_MAX),
	                 0);
	assert_int_equal(v, 2147483647u);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("4294967295"), UINT32_MAX),
	                 0);
	assert_int_equal(v, UINT32_MAX);

	v = 7;
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("2147483648"), INT32_MAX),
	                 ERANGE);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("4294967296"), UINT32_MAX),
	                 ERANGE);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("99999999999999999999999"),
	                              UINT32_MAX),
	                 ERANGE);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("101"), 100), ERANGE);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("100"), 100), 0);
	assert_int_equal(v, 100);

	v = 7;
	assert_int_equal(slice_to_u32(&v, SLICE_NULL, 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT(""), 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("1a"), 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("-1"), 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("+1"), 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT(" 1"), 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("1 "), 100), EINVAL);
	assert_int_equal(slice_to_u32(&v, SLICE_LIT("0x10"), 100), EINVAL);
	/* A non-digit after an overflowing prefix is still malformed. */
	assert_int_equal(
	        slice_to_u32(&v, SLICE_LIT("99999999999x"), UINT32_MAX),
	        EINVAL);
	/* The output is written only on success. */
	assert_int_equal(v, 7);
	/* Only the slice is read, not what follows it. */
	assert_int_equal(slice_to_u32(&v, slice_make("123x", 3), 1000), 0);
	assert_int_equal(v, 123);
}

/* --------------------------------------------------------------- logging */

/* Runs fn with stderr sent to a temporary file and returns what it wrote
 * (static buffer). */
static const char *capture_stderr(void (*fn)(void))
{
	static char out[4096];
	char path[] = "/tmp/test_core_logXXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	out[n] = '\0';
	return out;
}

static void log_every_level(void)
{
	LOG_CRIT("crit %d", 1);
	LOG_ERR("err %s", "x");
	LOG_WARN("warn");
	LOG_NOTICE("notice\n");
	LOG_INFO("info");
	LOG_DBG("dbg");
	/* Direct calls are filtered as well. */
	log_msg(LL_DBG, "direct dbg");
	log_msg(LL_ALERT, "alert");
}

static void test_log_levels(void **state)
{
	int saved = log_get_level();
	const char *out;

	assert_int_equal(saved, LL_INFO);

	log_set_level(LL_WARN);
	assert_int_equal(log_get_level(), LL_WARN);
	out = capture_stderr(log_every_level);
	assert_string_equal(out, " CRITICAL: crit 1\n"
	                         " ERROR: err x\n"
	                         " WARNING: warn\n"
	                         " ALERT: alert\n");

	log_set_level(LL_DBG);
	out = capture_stderr(log_every_level);
	assert_string_equal(out, " CRITICAL: crit 1\n"
	                         " ERROR: err x\n"
	                         " WARNING: warn\n"
	                         " NOTICE: notice\n"
	                         " INFO: info\n"
	                         " DEBUG: dbg\n"
	                         " DEBUG: direct dbg\n"
	                         " ALERT: alert\n");

	log_set_level(LL_ALERT);
	out = capture_stderr(log_every_level);
	assert_string_equal(out, " ALERT: alert\n");

	log_set_level(saved);
}

static void log_long_line(void)
{
	char big[5000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	LOG_ERR("%s", big);
}

static void test_log_truncates(void **state)
{
	const char *out = capture_stderr(log_long_line);
	size_t len = strlen(out);

	/* Cut to the line buffer but still a whole line. */
	assert_true(len > 1000 && len < 4096);
	assert_int_equal(out[len - 1], '\n');
	assert_int_equal(out[len - 2], 'a');
}

/* ----------------------------------------------------------------- arena */

static bool aligned16(const void *p)
{
	return ((uintptr_t)p & 15) == 0;
}

static void check_fmt(uint64_t v, unsigned min, const char *dec,
                      const char *hex)
{
	char buf[32];
	size_t n = fmt_u64(buf, v);

	assert_int_equal(n, strlen(dec));
	assert_memory_equal(buf, dec, n);
	n = fmt_hex(buf, v, min);
	assert_int_equal(n, strlen(hex));
	assert_memory_equal(buf, hex, n);
}

static void test_fmt_numbers(void **state)
{
	(void)state;
	check_fmt(0, 1, "0", "0");
	check_fmt(9, 1, "9", "9");
	check_fmt(10, 1, "10", "a");
	check_fmt(65535, 1, "65535", "ffff");
	check_fmt(0x1f, 4, "31", "001f");
	check_fmt(UINT64_MAX, 16, "18446744073709551615", "ffffffffffffffff");
	check_fmt(1, 20, "1", "0000000000000001"); /* at most 16 hex digits */

	/* every length: both sides of each power of ten and of sixteen */
	for (uint64_t p = 1, k = 0; k < 20; k++, p *= 10) {
		for (uint64_t v = p - 1; v <= p; v++) {
			char dec[24], hex[24];
			snprintf(dec, sizeof(dec), "%llu",
			         (unsigned long long)v);
			snprintf(hex, sizeof(hex), "%llx",
			         (unsigned long long)v);
			check_fmt(v, 1, dec, hex);
		}
	}
	for (unsigned k = 0; k < 16; k++) {
		uint64_t p = (uint64_t)1 << (4 * k);
		char dec[24], hex[24];
		snprintf(dec, sizeof(dec), "%llu", (unsigned long long)p);
		snprintf(hex, sizeof(hex), "%08llx", (unsigned long long)p);
		check_fmt(p, 8, dec, hex);
	}
}

static void test_arena_concat(void **state)
{
	char buf[64];
	struct arena a;
	const struct slice parts[] = {SLICE_LIT("<sip:"), SLICE_NULL,
	                              SLICE_LIT("h"), SLICE_LIT(">")};

	(void)state;
	arena_init(&a, buf, sizeof(buf));
	struct slice s = arena_concat(&a, parts, 4);
	assert_int_equal(s.len, 7);
	assert_string_equal(s.p, "<sip:h>"); /* NUL-terminated */
	s = arena_concat(&a, parts, 0);
	assert_int_equal(s.len, 0);
	assert_non_null(s.p);
	arena_fini(&a);
}

static void test_arena(void **state)
{
	_Alignas(16) char buf[256];
	struct arena a;
	char *p, *q, *big;
	char *s;

	arena_init(&a, buf, sizeof(buf));
	p = arena_alloc(&a, 1);
	q = arena_alloc(&a, 10);
	/* Both come from the caller's buffer, aligned. */
	assert_ptr_equal(p, buf);
	assert_true(q > p && q < buf + sizeof(buf));
	assert_true(aligned16(p) && aligned16(q));
	assert_null(a.blocks);
	assert_int_equal(a.used, 11);

	/* Too big for what is left: an overflow block. */
	big = arena_alloc(&a, 300);
	assert_non_null(big);
	assert_true(aligned16(big));
	assert_true(big < buf || big >= buf + sizeof(buf));
	assert_non_null(a.blocks);
	memset(big, 0x5a, 300);

	/* Many allocations, including huge ones, stay aligned and
	 * disjoint. */
	for (int i = 0; i < 1000; i++) {
		size_t n = (size_t)(i % 37) + (i % 100 == 0 ? 100000 : 0);
		char *r = arena_alloc(&a, n);

		assert_non_null(r);
		assert_true(aligned16(r));
		memset(r, i, n);
	}
	s = arena_strdup(&a, SLICE_LIT("hello"));
	assert_string_equal(s, "hello");
	assert_true(aligned16(s));
	s = arena_strdup(&a, SLICE_NULL);
	assert_string_equal(s, "");

	/* Reset goes back to the first buffer and frees the rest. */
	arena_reset(&a);
	assert_null(a.blocks);
	assert_int_equal(a.used, 0);
	assert_ptr_equal(arena_alloc(&a, 16), buf);
	/* Exactly filling the first buffer still uses it. */
	p = arena_alloc(&a, sizeof(buf) - 16);
	assert_ptr_equal(p, buf + 16);
	assert_null(a.blocks);
	assert_int_equal(a.used, sizeof(buf));
	arena_fini(&a);
}

static void test_arena_unaligned_first(void **state)
{
	_Alignas(16) char buf[128];
	struct arena a;
	char *p;

	/* A misaligned buffer loses its head to alignment. */
	arena_init(&a, buf + 3, sizeof(buf) - 3);
	p = arena_alloc(&a, 8);
	assert_ptr_equal(p, buf + 16);
	p = arena_alloc(&a, 200);
	assert_true(aligned16(p));
	assert_non_null(a.blocks);
	arena_fini(&a);
}

static void test_arena_no_first(void **state)
{
	struct arena a;
	char *s;

	arena_init(&a, NULL, 0);
	s = arena_strdup(&a, SLICE_LIT("Call-ID"));
	assert_string_equal(s, "Call-ID");
	assert_true(aligned16(s));
	assert_non_null(a.blocks);
	assert_non_null(arena_alloc(&a, 0));
	arena_reset(&a);
	assert_null(a.blocks);
	assert_non_null(arena_alloc(&a, 5000));
	arena_fini(&a);
	assert_null(a.blocks);
	/* The arena may be initialised again. */
	arena_init(&a, NULL, 0);
	assert_non_null(arena_alloc(&a, 1));
	arena_fini(&a);
}

/* ------------------------------------------------------------------- obj */

struct thing {
	int value;
	int *destroyed;
	char pad[40];
};

static void thing_destroy(void *obj)
{
	struct thing *t = obj;

	(*t->destroyed)++;
	/* A destructor may take and drop references (say, while unlinking
	 * itself) without being run again. */
	obj_unref(obj_ref(t));
}

static void test_obj(void **state)
{
	size_t base = obj_bytes_in_use();
	int destroyed = 0;
	struct thing *t;
	char *raw;

	assert_int_equal(base, 0);
	t = obj_alloc(sizeof(*t), thing_destroy);
	assert_non_null(t);
	assert_true(aligned16(t));
	for (size_t i = 0; i < sizeof(*t); i++)
		assert_int_equal(((const char *)t)[i], 0);
	t->destroyed = &destroyed;
	assert_true(obj_bytes_in_use() >= sizeof(*t));
	assert_int_equal(obj_refcount(t), 1);

	assert_ptr_equal(obj_ref(t), t);
	assert_ptr_equal(obj_ref(t), t);
	assert_int_equal(obj_refcount(t), 3);
	assert_null(obj_unref(t));
	assert_null(obj_unref(t));
	assert_int_equal(destroyed, 0);
	assert_int_equal(obj_refcount(t), 1);
	assert_null(obj_unref(t));
	assert_int_equal(destroyed, 1);
	assert_int_equal(obj_bytes_in_use(), 0);

	/* NULL is accepted everywhere. */
	assert_null(obj_ref(NULL));
	assert_null(obj_unref(NULL));
	assert_int_equal(obj_refcount(NULL), 0);

	/* No destructor; odd sizes keep the user area aligned. */
	for (size_t n = 0; n < 70; n++) {
		raw = obj_alloc(n, NULL);
		assert_non_null(raw);
		assert_true(aligned16(raw));
		memset(raw, 1, n);
		obj_unref(raw);
	}
	assert_int_equal(obj_bytes_in_use(), 0);
	assert_null(obj_alloc(SIZE_MAX - 8, NULL));
	assert_int_equal(obj_bytes_in_use(), 0);
}

static void test_obj_many(void **state)
{
	enum { N = 1000 };
	void **v = calloc(N, sizeof(*v));
	size_t prev = 0;

	assert_non_null(v);
	for (int i = 0; i < N; i++) {
		v[i] = obj_alloc((size_t)i, NULL);
		assert_non_null(v[i]);
		/* Header included: even empty objects count. */
		assert_true(obj_bytes_in_use() > prev);
		assert_true(obj_bytes_in_use() >= prev + (size_t)i);
		prev = obj_bytes_in_use();
	}
	for (int i = 0; i < N; i++)
		obj_unref(v[i]);
	assert_int_equal(obj_bytes_in_use(), 0);
	free(v);
}

/* --------------------------------------------------------------- hashing */

/* The per-thread block cache: a freed block is handed out again for any
 * size that rounds to its own, and only for those. */
static void test_mem_reuse(void **state)
{
	(void)state;
	mem_thread_fini();
	assert_int_equal(mem_cached_bytes(), 0);

	char *a = mem_get(100);
	assert_non_null(a);
	memset(a, 'x', 100);
	mem_put(a, 100);
	assert_true(mem_cached_bytes() >= 112);
	/* 97..112 share the block; the zeroing one clears what was left */
	char *b = mem_get_zero(105);
	assert_ptr_equal(b, a);
	for (int i = 0; i < 105; i++)
		assert_int_equal(b[i], 0);
	assert_int_equal(mem_cached_bytes(), 0);
	mem_put(b, 105);
	char *c = mem_get(113); /* the next size up: another block */
	assert_ptr_not_equal(c, a);
	mem_put(c, 113);
	assert_int_equal(mem_block_size(100), 112);
	assert_int_equal(mem_block_size(0), 16);
	assert_int_equal(mem_block_size(5000), 5000);

	/* larger blocks are not cached */
	size_t before = mem_cached_bytes();
	char *big = mem_get(5000);
	assert_non_null(big);
	memset(big, 1, 5000);
	mem_put(big, 5000);
	assert_int_equal(mem_cached_bytes(), before);

	/* at most 4 MiB is held: the rest goes back to malloc() */
	enum { N = 1200 };
	void *many[N];
	for (int i = 0; i < N; i++)
		assert_non_null(many[i] = mem_get(4000));
	for (int i = 0; i < N; i++)
		mem_put(many[i], 4000);
	assert_true(mem_cached_bytes() <= 4u << 20);
	assert_true(mem_cached_bytes() > (4u << 20) - 5000);
	mem_thread_fini();
	assert_int_equal(mem_cached_bytes(), 0);
}

/* A cache full of a size no longer asked for makes room for the sizes in
 * use (once it has not been asked for in 65,536 gets), and keeps the
 * blocks of those. */
static void test_mem_sizes_move(void **state)
{
	enum { OLD = 1200, NEW = 64, ROUNDS = 1400 };
	void *old[OLD], *new[NEW];

	(void)state;
	mem_thread_fini();
	/* the cache full of 4,000-byte blocks, and one of 200 bytes */
	for (int i = 0; i < OLD; i++)
		assert_non_null(old[i] = mem_get(4000));
	void *kept = mem_get(200);
	mem_put(kept, 200);
	for (int i = 0; i < OLD; i++)
		mem_put(old[i], 4000);
	assert_true(mem_cached_bytes() > (4u << 20) - 5000);

	/* then only 100 and 200 bytes are asked for: the 100-byte blocks
	 * find the cache full, and go to free() until the 4,000-byte ones
	 * are idle */
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < NEW; i++)
			assert_non_null(new[i] = mem_get(100));
		for (int i = 0; i < NEW; i++)
			mem_put(new[i], 100);
		void *q = mem_get(200);
		mem_put(q, 200);
	}
	/* the 4,000-byte blocks are gone, the 100-byte ones cached, the
	 * 200-byte one still there */
	assert_true(mem_cached_bytes() < (4u << 20) / 2);
	assert_true(mem_cached_bytes() >= NEW * mem_block_size(100));
	size_t before = mem_cached_bytes();
	for (int i = 0; i < NEW; i++)
		new[i] = mem_get(100);
	kept = mem_get(200);
	assert_true(before - mem_cached_bytes() >=
	            NEW * mem_block_size(100) + mem_block_size(200));
	mem_put(kept, 200);
	for (int i = 0; i < NEW; i++)
		mem_put(new[i], 100);
	mem_thread_fini();
}

/* realloc() semantics, the content kept across every kind of move. */
static void test_mem_resize(void **state)
{
	(void)state;
	char *p = mem_resize(NULL, 0, 20);
	assert_non_null(p);
	memcpy(p, "0123456789abcdefghi", 20);
	char *q = mem_resize(p, 20, 30); /* the same 32-byte block */
	assert_ptr_equal(q, p);
	q = mem_resize(q, 30, 300); /* another one */
	assert_non_null(q);
	assert_memory_equal(q, "0123456789abcdefghi", 20);
	memset(q + 20, 'z', 280);
	q = mem_resize(q, 300, 6000); /* past the cache */
	assert_memory_equal(q, "0123456789abcdefghi", 20);
	assert_int_equal(q[299], 'z');
	q = mem_resize(q, 6000, 9000); /* realloc() */
	assert_int_equal(q[299], 'z');
	q = mem_resize(q, 9000, 10); /* back into it */
	assert_memory_equal(q, "0123456789", 10);
	mem_put(q, 10);
	mem_thread_fini();
}

/* Returns what its cache held once the block was in (no cmocka assert
 * outside the test's thread). */
static void *put_elsewhere(void *arg)
{
	mem_put(arg, 64);
	size_t held = mem_cached_bytes();
	mem_thread_fini();
	return (void *)(uintptr_t)held;
}

/* A block may go back in another thread, into that thread's cache. */
static void test_mem_other_thread(void **state)
{
	pthread_t t;

	(void)state;
	mem_thread_fini();
	void *p = mem_get(64);
	assert_non_null(p);
	void *held;
	assert_int_equal(pthread_create(&t, NULL, put_elsewhere, p), 0);
	assert_int_equal(pthread_join(t, &held), 0);
	assert_true((uintptr_t)held >= 64);
	assert_int_equal(mem_cached_bytes(), 0);
}

/* Under AddressSanitizer a cached block stays poisoned: a use after
 * mem_put() is still caught (in a child, which it must kill). */
static void test_mem_cached_is_poisoned(void **state)
{
	(void)state;
#ifdef __SANITIZE_ADDRESS__
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		char *p = mem_get(64);
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO); /* its report */
		mem_put(p, 64);
		volatile char c = p[32];
		(void)c;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#else
	skip();
#endif
}

static void test_hash(void **state)
{
	char mixed[1000], lower[1000];
	uint32_t x = 12345;

	assert_int_equal(hash_bytes("abc", 3), hash_bytes("abc", 3));
	assert_true(hash_bytes("abc", 3) != hash_bytes("abd", 3));
	assert_int_equal(hash_bytes_nocase("Via", 3), hash_bytes("via", 3));
	assert_int_equal(hash_bytes_nocase("", 0), hash_bytes("", 0));
	assert_int_equal(hash_bytes_nocase(NULL, 0), hash_bytes(NULL, 0));

	/* Every byte value, at lengths on both sides of the internal
	 * buffer. */
	for (size_t i = 0; i < sizeof(mixed); i++) {
		x = x * 1103515245u + 12345u;
		mixed[i] = (char)(x >> 16);
		lower[i] = mixed[i] >= 'A' && mixed[i] <= 'Z'
		                   ? (char)(mixed[i] + 32)
		                   : mixed[i];
	}
	for (size_t len = 0; len <= sizeof(mixed); len += 7) {
		assert_int_equal(hash_bytes_nocase(mixed, len),
		                 hash_bytes(lower, len));
	}
	for (size_t len = 250; len < 520; len++) {
		assert_int_equal(hash_bytes_nocase(mixed, len),
		                 hash_bytes(lower, len));
	}

	/* Every byte value at every position of an 8-byte word (value c at
	 * index c - shift), and in the bytes after the last whole word. */
	for (int shift = 0; shift < 8; shift++) {
		for (int i = 0; i < 256; i++) {
			unsigned char c = (unsigned char)(i + shift);
			mixed[i] = (char)c;
			lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		for (size_t len = 249; len <= 256; len++)
			assert_int_equal(hash_bytes_nocase(mixed, len),
			                 hash_bytes(lower, len));
	}
}

static void test_clock(void **state)
{
	uint64_t a = clock_now_ms();
	uint64_t b = clock_now_ms();

	assert_true(a > 0);
	assert_true(b >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_slice_basics),
	        cmocka_unit_test(test_slice_to_u32),
	        cmocka_unit_test(test_log_levels),
	        cmocka_unit_test(test_log_truncates),
	        cmocka_unit_test(test_fmt_numbers),
	        cmocka_unit_test(test_arena_concat),
	        cmocka_unit_test(test_arena),
	        cmocka_unit_test(test_arena_unaligned_first),
	        cmocka_unit_test(test_arena_no_first),
	        cmocka_unit_test(test_obj),
	        cmocka_unit_test(test_obj_many),
	        cmocka_unit_test(test_mem_reuse),
	        cmocka_unit_test(test_mem_sizes_move),
	        cmocka_unit_test(test_mem_resize),
	        cmocka_unit_test(test_mem_other_thread),
	        cmocka_unit_test(test_mem_cached_is_poisoned),
	        cmocka_unit_test(test_hash),
	        cmocka_unit_test(test_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

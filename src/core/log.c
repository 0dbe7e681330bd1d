#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* <syslog.h> defines LOG_CRIT, LOG_ERR, LOG_NOTICE and LOG_INFO as well:
 * keep its priorities under other names and let core.h have the macros. */
enum {
	SYS_ALERT = LOG_ALERT,
	SYS_CRIT = LOG_CRIT,
	SYS_ERR = LOG_ERR,
	SYS_WARNING = LOG_WARNING,
	SYS_NOTICE = LOG_NOTICE,
	SYS_INFO = LOG_INFO,
	SYS_DEBUG = LOG_DEBUG,
};
#undef LOG_CRIT
#undef LOG_ERR
#undef LOG_NOTICE
#undef LOG_INFO

#include "core/core.h"

/* Worker threads read these on every log call, hence atomics. */
static atomic_int log_level = LL_INFO;
static atomic_bool log_syslog;

static _Thread_local struct {
	size_t len;
	char text[LOG_PREFIX_MAX];
} thread_prefix;

void log_set_prefix(const char *text, size_t len)
{
	if (len > LOG_PREFIX_MAX)
		len = LOG_PREFIX_MAX;
	if (len)
		memcpy(thread_prefix.text, text, len);
	thread_prefix.len = len;
}

/* Lets the compiler check our own use of fmt. */
__attribute__((format(printf, 2, 0))) void log_vmsg(int level, const char *fmt,
                                                    va_list ap);

void log_set_level(int level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	atomic_store_explicit(&log_syslog, true, memory_order_release);
}

/* Kamailio's names, so that log lines read the same as the proxy's; -3 is
 * its second critical level, which the enum leaves out. */
static const char *level_name(int level)
{
	if (level <= LL_ALERT)
		return "ALERT";
	if (level == LL_BUG)
		return "BUG";
	if (level <= LL_CRIT)
		return "CRITICAL";
	switch (level) {
	case LL_ERR:
		return "ERROR";
	case LL_WARN:
		return "WARNING";
	case LL_NOTICE:
		return "NOTICE";
	case LL_INFO:
		return "INFO";
	default:
		return "DEBUG";
	}
}

static int syslog_priority(int level)
{
	if (level <= LL_ALERT)
		return SYS_ALERT;
	if (level <= LL_CRIT)
		return SYS_CRIT;
	switch (level) {
	case LL_ERR:
		return SYS_ERR;
	case LL_WARN:
		return SYS_WARNING;
	case LL_NOTICE:
		return SYS_NOTICE;
	case LL_INFO:
		return SYS_INFO;
	default:
		return SYS_DEBUG;
	}
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	char buf[2048];
	int level_end, prefix;
	int n;
	size_t len;

	/* Direct callers bypass the LOG_AT() check. */
	if (level > log_get_level())
		return;

	/* syslog has its own level: it gets what follows level_end */
	level_end = snprintf(buf, sizeof(buf), " %s: ", level_name(level));
	if (level_end < 0)
		return;
	memcpy(buf + level_end, thread_prefix.text, thread_prefix.len);
	prefix = level_end + (int)thread_prefix.len;
	n = vsnprintf(buf + prefix, sizeof(buf) - (size_t)prefix, fmt, ap);
	if (n < 0)
		return;
	len = (size_t)prefix + (size_t)n;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	/* Callers may or may not end their format with a newline. */
	while (len > (size_t)prefix && buf[len - 1] == '\n')
		len--;

	if (atomic_load_explicit(&log_syslog, memory_order_acquire)) {
		buf[len] = '\0';
		syslog(syslog_priority(level), "%s", buf + level_end);
		return;
	}
	buf[len++] = '\n';
	/* One write(2) per line keeps lines from concurrent threads whole,
	 * which stdio's buffering would not. */
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, buf + off, len - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

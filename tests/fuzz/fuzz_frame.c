/*
 * libFuzzer target for sip_frame(): any input must give one of the
 * documented results, and a frame must be consistent with the bytes it
 * covers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the check must survive NDEBUG builds. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static void check_frame(const char *buf, size_t len, size_t max_size)
{
	struct sip_frame f, again;
	const char *why = NULL;
	int err = sip_frame(&f, buf, len, max_size, &why);

	switch (err) {
	case 0:
		break;
	case EAGAIN:
		return;
	case EBADMSG:
	case EMSGSIZE:
		CHECK(why != NULL);
		return;
	default:
		abort();
	}

	CHECK(f.len > 0 && f.len <= len);
	switch (f.kind) {
	case SIP_FRAME_MSG:
		CHECK(f.len <= max_size);
		CHECK(buf[0] != '\r' && buf[0] != '\n');
		break;
	case SIP_FRAME_PING:
		CHECK(f.len == 4 && memcmp(buf, "\r\n\r\n", 4) == 0);
		break;
	case SIP_FRAME_PONG:
		CHECK((f.len == 2 && memcmp(buf, "\r\n", 2) == 0) ||
		      (f.len == 1 && buf[0] == '\n'));
		/* a pong is reported only when it cannot be half a ping */
		CHECK(f.len == 1 || len > 3 || (len == 3 && buf[2] != '\r'));
		return;
	default:
		abort();
	}
	/* Bytes after a message or ping do not change it: the caller may
	 * consume exactly f.len bytes and frame the same thing. */
	CHECK(sip_frame(&again, buf, f.len, max_size, &why) == 0);
	CHECK(again.kind == f.kind && again.len == f.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	check_frame(buf, size, 65535);
	check_frame(buf, size, 512);
	/* Walk the stream as a connection would, frame after frame. */
	while (off < size) {
		struct sip_frame f;
		const char *why = NULL;

		if (sip_frame(&f, buf + off, size - off, 512, &why) != 0)
			break;
		check_frame(buf + off, size - off, 512);
		off += f.len;
	}
	return 0;
}

/*
 * fuzz_query.c - the small text parsers behind query parameters and the
 * command line: API times and integers (api.c), provider timestamps
 * (timefmt.c), sizes and durations (cfg_values.c), CIDRs (netaddr.c) and listen
 * addresses (netaddr.c).
 *
 * The input (up to its first NUL) goes to every parser; its first 8 bytes
 * are also an epoch number for hr_time_parse_epoch(). Besides "no crash,
 * UB or hang" it checks each parser's promise:
 *  - API time: a value >= 1 (0 means "no bound" to the store); integers
 *    inside [min, max];
 *  - timestamps: the normalised text parses back to the same instant;
 *  - CIDRs and addresses: formatting what was parsed and parsing it again
 *    gives the same value; a network contains its own address;
 *  - names (kind, provider, session status) map back to themselves.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "api_int.h"
#include "fuzz.h"
#include "hr/auth.h"
#include "hr/cfg.h"
#include "hr/event.h"
#include "hr/netaddr.h"
#include "hr/timefmt.h"

#define NOW_US INT64_C(1700000000000000) /* 2023-11-14T22:13:20Z */

static void
check_api(const char *text)
{
	static const struct {
		int64_t min, max;
	} ranges[] = {
		{ 1, MAX_LIMIT }, /* limit */
		{ 1, INT64_MAX }, /* cursor */
		{ INT64_MIN, INT64_MAX },
		{ 0, 0 },
	};
	int64_t v;

	if (hr_api_parse_time(text, NOW_US, &v) == HR_OK)
		FUZZ_CHECK(v >= 1);
	if (hr_api_parse_time(text, 0, &v) == HR_OK)
		FUZZ_CHECK(v >= 1);
	for (size_t i = 0; i < HR_ARRAY_LEN(ranges); i++)
		if (hr_api_parse_uint(text, ranges[i].min, ranges[i].max, &v) == HR_OK)
			FUZZ_CHECK(v >= ranges[i].min && v <= ranges[i].max);
}

/* A valid time's normalisation is itself a valid time, the same instant. */
static void
check_time(const struct hr_time *t)
{
	struct hr_time back;
	char norm[32], again[32];

	FUZZ_CHECK(t->valid);
	FUZZ_CHECK(hr_time_norm(t, norm, sizeof(norm)) == norm);
	FUZZ_CHECK(strlen(norm) == 27 && norm[26] == 'Z');
	FUZZ_CHECK(hr_time_parse_str(norm, &back) == HR_OK);
	FUZZ_CHECK(back.valid && back.us == t->us);
	FUZZ_CHECK(strcmp(hr_time_norm(&back, again, sizeof(again)), norm) == 0);
}

static void
check_times(const char *text, const uint8_t *data, size_t size)
{
	struct hr_time t;
	double secs;

	if (hr_time_parse_str(text, &t) == HR_OK)
		check_time(&t);
	FUZZ_CHECK(strcmp(hr_time_raw(&t), text) == 0); /* kept whole, as received */
	if (size >= sizeof(secs)) {
		memcpy(&secs, data, sizeof(secs));
		if (hr_time_parse_epoch(secs, &t) == HR_OK) {
			check_time(&t);
			FUZZ_CHECK(fabs((double)t.us / 1e6 - secs) <= 1.0);
		}
	}
}

static void
check_numbers(const char *text)
{
	size_t sz;
	int64_t ms;

	if (hr_cfg_parse_duration_ms(text, &ms) == HR_OK)
		FUZZ_CHECK(ms >= 0);
	(void)hr_cfg_parse_size(text, &sz);
}

static void
check_cidr(const char *text)
{
	struct hr_cidr c, back;
	struct sockaddr_storage ss;
	char addr[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN + 8];

	if (hr_cidr_parse(text, &c) != HR_OK)
		return;
	FUZZ_CHECK(c.family == AF_INET || c.family == AF_INET6);
	FUZZ_CHECK(c.bits <= (c.family == AF_INET ? 32u : 128u));
	FUZZ_CHECK(inet_ntop(c.family, c.addr, addr, sizeof(addr)) != NULL);
	snprintf(again, sizeof(again), "%s/%u", addr, c.bits);
	FUZZ_CHECK(hr_cidr_parse(again, &back) == HR_OK);
	/* The same block, field by field; written as a block it has no host bits left. */
	FUZZ_CHECK(back.family == c.family && back.bits == c.bits &&
	    memcmp(back.addr, c.addr, sizeof(c.addr)) == 0 && !back.host_bits);
	/* The network's own address is inside it. */
	memset(&ss, 0, sizeof(ss));
	if (c.family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, c.addr, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, c.addr, 16);
	}
	FUZZ_CHECK(hr_cidr_match(&c, (const struct sockaddr *)&ss));
}

static void
check_netaddr(const char *text)
{
	struct sockaddr_storage ss, back;
	socklen_t len = 0, blen = 0;
	char shown[64];

	if (hr_netaddr_parse(text, &ss, &len) != HR_OK)
		return;
	FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	hr_netaddr_format((const struct sockaddr *)&ss, shown, sizeof(shown));
	FUZZ_CHECK(hr_netaddr_parse(shown, &back, &blen) == HR_OK);
	FUZZ_CHECK(blen == len && memcmp(&back, &ss, len) == 0);
}

static void
check_names(const char *text)
{
	int v;

	if ((v = hr_kind_from_name(text)) >= 0)
		FUZZ_CHECK(strcmp(hr_kind_name((enum hr_kind)v), text) == 0);
	if ((v = hr_provider_from_name(text)) >= 0)
		FUZZ_CHECK(strcmp(hr_provider_name((enum hr_provider)v), text) == 0);
	if ((v = hr_session_status_from_name(text)) >= 0)
		FUZZ_CHECK(strcmp(hr_session_status_name((enum hr_session_status)v), text) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cursor in;

	if (!fuzz_cursor_init(&in, data, size))
		return 0;
	check_api(in.buf);
	check_times(in.buf, data, size);
	check_numbers(in.buf);
	check_cidr(in.buf);
	check_netaddr(in.buf);
	check_names(in.buf);
	fuzz_cursor_free(&in);
	return 0;
}

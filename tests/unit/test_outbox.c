/* test_outbox.c - routing events to destinations, the SSRF address guard, and the
 * forwarder's heartbeat. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/cfg.h"
#include "hr/forward.h"
#include "hr/netaddr.h"
#include "hr/outbox.h"
#include "hr/store.h"
#include "hr/store_sqlite.h"
#include "hr/timefmt.h"

#include "../../src/flow/forward_int.h"
#include "tmpdir.h"

static bool
allowed(const char *addr)
{
	struct sockaddr_storage ss = { 0 };
	char why[96];

	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
	}
	return hr_netaddr_allowed((struct sockaddr *)&ss, why, sizeof(why));
}

static void
private_and_metadata_addresses_are_refused(void **state)
{
	static const char *const refused[] = { "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4",
		"172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
		"224.0.0.1", "255.255.255.255", "::1", "::", "fd00:ec2::254", "fc00::1", "fe80::1",
		"ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.1.1.1",
		"64:ff9b::7f00:1" };

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (allowed(refused[i]))
			fail_msg("%s should be refused", refused[i]);
}

static void
public_addresses_are_allowed(void **state)
{
	static const char *const ok[] = { "93.184.216.34", "8.8.8.8", "172.32.0.1", "192.169.0.1",
		"2606:4700::1111", "::ffff:8.8.8.8" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!allowed(ok[i]))
			fail_msg("%s should be allowed", ok[i]);
}

/* Issue 11 item 17: forms that used to count as public. */
static void
embedded_and_deprecated_ipv6_forms_are_refused(void **state)
{
	static const char *const refused[] = { "::127.0.0.1", "::10.0.0.1", "::8.8.8.8",
		"::169.254.169.254", "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:a00:1:1::1",
		"2002:c0a8:101::", "fec0::1", "feff::1", "64:ff9b:1::a00:1", "64:ff9b:1::808:808",
		"64:ff9b:1:ffff::1",
		/* documentation, benchmarking, Teredo, discard-only, the 6to4 relay anycast */
		"192.0.2.1", "198.51.100.7", "203.0.113.7", "192.88.99.1", "2001:db8::1",
		"2001:db8:ffff::1", "3fff::1", "3fff:fff::1", "2001::1",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:2::1", "100::1" };

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (allowed(refused[i]))
			fail_msg("%s should be refused", refused[i]);
}

static void
embedded_public_ipv4_is_allowed(void **state)
{
	static const char *const ok[] = { "2002:808:808::1", "64:ff9b::808:808", "64:ff9b:2::1",
		"fe00::1", "2003::1", "2001:4860:4860::8888", "2001:db9::1", "3fff:1000::1",
		"2001:3::1", "100:0:0:1::1", "192.0.3.1", "203.0.114.1" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!allowed(ok[i]))
			fail_msg("%s should be allowed", ok[i]);
}

static void
sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':') != NULL) {
		ss->ss_family = AF_INET6;
		assert_int_equal(
		    inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
	} else {
		ss->ss_family = AF_INET;
		assert_int_equal(
		    inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr), 1);
	}
}

/* hr_netaddr_same: address and port, both families; what decides whether the
 * ingest path may reuse the peer's text for the client. */
static void
same_address_and_port_only(void **state)
{
	struct sockaddr_storage a, b;

	(void)state;
	sockaddr_of("203.0.113.7", &a);
	sockaddr_of("203.0.113.7", &b);
	((struct sockaddr_in *)&a)->sin_port = htons(4711);
	((struct sockaddr_in *)&b)->sin_port = htons(4711);
	assert_true(hr_netaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b));
	((struct sockaddr_in *)&b)->sin_port = htons(4712);
	assert_false(hr_netaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b));
	sockaddr_of("203.0.113.8", &b);
	((struct sockaddr_in *)&b)->sin_port = htons(4711);
	assert_false(hr_netaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b));
	sockaddr_of("2001:db8::7", &b);
	assert_false(hr_netaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b));
	sockaddr_of("2001:db8::7", &a);
	assert_true(hr_netaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b));
	sockaddr_of("2001:db8::8", &a);
	assert_false(hr_netaddr_same((struct sockaddr *)&a, (struct sockaddr *)&b));
	assert_false(hr_netaddr_same(NULL, (struct sockaddr *)&b));
}

/* A public address of this host reaches its loopback-only services too. */
static void
this_hosts_public_addresses_are_refused(void **state)
{
	static const char *const forms[] = { "93.184.216.7", "::ffff:93.184.216.7",
		"64:ff9b::5db8:d807", "2002:5db8:d807::1", "2606:4700::7" };
	struct sockaddr_storage own4, own6;
	const struct sockaddr *own[2] = { (struct sockaddr *)&own4, (struct sockaddr *)&own6 };
	char why[96];

	(void)state;
	sockaddr_of("93.184.216.7", &own4);
	sockaddr_of("2606:4700::7", &own6);
	hr_netaddr_set_own_addresses(own, 0);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (!allowed(forms[i]))
			fail_msg("%s is not this host's yet", forms[i]);
	hr_netaddr_set_own_addresses(own, 2);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct sockaddr_storage ss;

		sockaddr_of(forms[i], &ss);
		if (hr_netaddr_allowed((struct sockaddr *)&ss, why, sizeof(why)))
			fail_msg("%s is this host's", forms[i]);
		assert_string_equal(why, "an address of this host");
	}
	assert_true(allowed("93.184.216.8"));
	hr_netaddr_set_own_addresses(NULL, 0);
}

/* One listing: this host's IPv6 address 2606:4700::7 (one block, as glibc's
 * freeifaddrs() frees it); then, once `listing_fails`, none. */
static bool listing_fails;

static int
one_v6_listing(struct ifaddrs **out)
{
	struct block {
		struct ifaddrs ifa;
		struct sockaddr_in6 sin6;
	} * b;

	if (listing_fails) {
		errno = EAFNOSUPPORT; /* a sandbox without AF_NETLINK */
		return -1;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -1;
	b->ifa.ifa_name = (char *)"eth0";
	b->ifa.ifa_addr = (struct sockaddr *)&b->sin6;
	b->sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2606:4700::7", &b->sin6.sin6_addr), 1);
	*out = &b->ifa;
	return 0;
}

/* Regression (final read): a listing that failed once, after one that worked, put the
 * IPv4 addresses SIOCGIFCONF reads in place of the whole snapshot, so for a second the
 * guard let attempts reach this host's IPv6 addresses. The old snapshot stays. */
static void
a_failed_listing_keeps_this_hosts_ipv6_addresses(void **state)
{
	char why[96];
	struct sockaddr_storage ss;

	(void)state;
	sockaddr_of("2606:4700::7", &ss);
	listing_fails = false;
	hr_netaddr_set_own_listing(one_v6_listing);
	assert_false(hr_netaddr_allowed((struct sockaddr *)&ss, why, sizeof(why)));
	assert_string_equal(why, "an address of this host");
	listing_fails = true;
	hr_netaddr_set_own_listing(one_v6_listing); /* looks again at the next attempt */
	assert_false(hr_netaddr_allowed((struct sockaddr *)&ss, why, sizeof(why)));
	assert_string_equal(why, "an address of this host");
	hr_netaddr_set_own_listing(NULL);
}

/* Regression: only the first 64 addresses of this host were kept, so a host with
 * more (a container host's bridges and veths) let deliveries reach the rest. */
static void
a_host_with_hundreds_of_addresses_has_them_all_refused(void **state)
{
	enum { N = 300 };
	static struct sockaddr_storage ss[N];
	const struct sockaddr *own[N];
	char text[32], why[96];

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof(text), "93.184.%d.%d", 100 + i / 200, 1 + i % 200);
		sockaddr_of(text, &ss[i]);
		own[i] = (const struct sockaddr *)&ss[i];
	}
	hr_netaddr_set_own_addresses(own, N);
	for (int i = 0; i < N; i++)
		if (hr_netaddr_allowed(own[i], why, sizeof(why)))
			fail_msg("own address %d of %d is let through", i + 1, N);
	assert_true(allowed("93.184.102.1"));
	hr_netaddr_set_own_addresses(NULL, 0);
}

/* ... and the real interfaces count, whatever their addresses are. */
static void
every_interface_address_is_refused(void **state)
{
	struct ifaddrs *list = NULL;
	char why[96];

	(void)state;
	assert_int_equal(getifaddrs(&list), 0);
	for (const struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
		char text[INET6_ADDRSTRLEN] = "?";

		if (i->ifa_addr == NULL ||
		    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		getnameinfo(i->ifa_addr,
		    i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                      : sizeof(struct sockaddr_in6),
		    text, sizeof(text), NULL, 0, NI_NUMERICHOST);
		if (hr_netaddr_allowed(i->ifa_addr, why, sizeof(why)))
			fail_msg("%s (%s) is an address of this host", text, i->ifa_name);
	}
	freeifaddrs(list);
}

static const char *
load_match(const char *text, const char *source, const char *kind, char *out, size_t len)
{
	struct hr_error err = { .field = "" };
	struct hr_cfg *cfg = NULL;
	const char *names[8];
	bool ordered[8];
	size_t n;

	assert_int_equal(hr_cfg_load_string(text, "t.conf", &cfg, &err), HR_OK);
	n = hr_outbox_match(cfg, source, kind, names, ordered, 8);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s%s", i ? "," : "", names[i],
		    ordered[i] ? "(o)" : "");
	hr_cfg_free(cfg);
	return out;
}

#define CFG                                                                                        \
	"[source a]\n[source b]\n"                                                                 \
	"[destination all]\nurl = http://x.example/\n"                                             \
	"[destination conv]\nurl = http://x.example/\nmatch = tavus.conversation.*\nordered = "    \
	"true\n"                                                                                   \
	"[destination pf]\nurl = http://x.example/\nmatch = pailflow.*, tavus.video\n"             \
	"[destination only_b]\nurl = http://x.example/\nsources = b\n"

static void
kind_globs_and_sources_pick_the_destinations(void **state)
{
	char out[128];

	(void)state;
	assert_string_equal(
	    load_match(CFG, "a", "tavus.conversation.system.shutdown", out, sizeof(out)),
	    "all,conv(o)");
	assert_string_equal(
	    load_match(CFG, "a", "pailflow.bot_join_failed", out, sizeof(out)), "all,pf");
	assert_string_equal(load_match(CFG, "a", "tavus.video", out, sizeof(out)), "all,pf");
	assert_string_equal(load_match(CFG, "b", "unknown", out, sizeof(out)), "all,only_b");
}

/*
 * Regression: the forwarder's heartbeat (what /readyz and the systemd watchdog
 * look at) was 0 until its thread first turned, so /readyz answered 503 "the
 * loop has not run yet" to a request that came right after the start. A
 * forwarder counts as having turned when it starts.
 */
static void
a_forwarder_has_a_heartbeat_as_soon_as_it_starts(void **state)
{
	char dir[64], path[96], cmd[128];
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = path, .readers = 1 };
	struct hr_error err = { .field = "" };
	struct hr_forwarder *fw = NULL;
	struct hr_store *store = NULL;
	int64_t before = hr_time_mono_us(), beat; /* monotonic: a clock step is no stall */

	(void)state;
	tmp_template(dir, sizeof(dir), "hroutboxXXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
	assert_int_equal(hr_store_open(&o, &store, &err), HR_OK);
	assert_int_equal(hr_forwarder_start(NULL, 0, store, &fw, &err), HR_OK);
	beat = hr_forwarder_last_loop_us(fw); /* at once: its thread may not have run */
	hr_forwarder_stop(fw);
	hr_store_close(store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_true(beat >= before);
	assert_true(beat <= hr_time_mono_us());
}

/*
 * A retry's jitter spreads over the whole +- range whatever the step. The
 * draw was an unsigned rand() and the range cut to 32 bits, so the 10-hour
 * step of the default schedule came out between 8 h and 8 h 25 min, never
 * near 10 h, and a delivery died hours before the schedule said.
 */
static void
retry_delays_spread_over_the_whole_jitter_range(void **state)
{
	const int64_t hour = INT64_C(3600) * 1000000, base = 10 * hour, spread = 2 * hour;
	int64_t lo = INT64_MAX, hi = 0, sum = 0;
	const int n = 4000;

	(void)state;
	for (int i = 0; i < n; i++) {
		int64_t d = hr_retry_delay_us(base, 20);

		assert_true(d >= base - spread && d <= base + spread);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d / n;
	}
	/* Uniform over 4 h: 4,000 draws reach within 12 min of both ends, and their
	 * mean is within a few minutes of the step. */
	assert_true(lo < base - spread + hour / 5);
	assert_true(hi > base + spread - hour / 5);
	assert_true(sum > base - hour / 6 && sum < base + hour / 6);
	/* No jitter: the step itself; 100 %: anywhere from 0 to twice the step. */
	assert_true(hr_retry_delay_us(base, 0) == base);
	for (int i = 0; i < 100; i++) {
		int64_t d = hr_retry_delay_us(base, 100), small = hr_retry_delay_us(100000, 20);

		assert_true(d >= 0 && d <= 2 * base);
		assert_true(small >= 80000 && small <= 120000);
	}
}

static const char *self_path; /* argv[0] */

/* The first jitter a new process draws for a 10-hour step: this binary run
 * with --draw prints it. */
static long long
first_draw_of_a_new_process(void)
{
	char cmd[4200], line[64] = "";
	FILE *p;

	assert_true(strlen(self_path) < 4096 && strchr(self_path, '\'') == NULL);
	snprintf(cmd, sizeof(cmd), "'%s' --draw", self_path);
	assert_non_null(p = popen(cmd, "r"));
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	return strtoll(line, NULL, 10);
}

/*
 * Two processes (two nodes, or a node and itself after a restart) draw
 * different jitter. rand() was never seeded, so each drew the same sequence,
 * and retries that failed together on several nodes came back together.
 */
static void
each_process_draws_its_own_jitter(void **state)
{
	long long a = first_draw_of_a_new_process(), b = first_draw_of_a_new_process();

	(void)state;
	assert_true(a != b); /* equal by chance: 1 in 3.6e10 */
}

/*
 * The guard refusing one address of a name is final only when no other was
 * tried: a name with a private AAAA and a public A whose connection failed
 * was recorded "blocked" and never retried, an outage made a lost delivery.
 */
static void
an_attempt_is_refused_only_when_no_allowed_address_was_tried(void **state)
{
	struct hr_destination_cfg cfg = { .retry_4xx = false };
	struct dest d = { .cfg = &cfg };
	struct transfer t = { .d = &d, .blocked = true };

	(void)state;
	assert_int_equal(hr_fwd_classify(&t, CURLE_COULDNT_CONNECT, 0), HR_FWD_FAIL);
	t.opened_allowed = true; /* the other address was tried and did not connect */
	assert_int_equal(hr_fwd_classify(&t, CURLE_COULDNT_CONNECT, 0), HR_FWD_RETRY);
	assert_int_equal(hr_fwd_classify(&t, CURLE_OPERATION_TIMEDOUT, 0), HR_FWD_RETRY);
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 200), HR_FWD_SUCCESS);
	t.blocked = false;
	t.opened_allowed = false;
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 204), HR_FWD_SUCCESS);
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 503), HR_FWD_RETRY);
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 429), HR_FWD_RETRY);
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 410), HR_FWD_GONE);
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 400), HR_FWD_FAIL);
	cfg.retry_4xx = true;
	assert_int_equal(hr_fwd_classify(&t, CURLE_OK, 400), HR_FWD_RETRY);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(private_and_metadata_addresses_are_refused),
		cmocka_unit_test(public_addresses_are_allowed),
		cmocka_unit_test(embedded_and_deprecated_ipv6_forms_are_refused),
		cmocka_unit_test(embedded_public_ipv4_is_allowed),
		cmocka_unit_test(same_address_and_port_only),
		cmocka_unit_test(this_hosts_public_addresses_are_refused),
		cmocka_unit_test(a_host_with_hundreds_of_addresses_has_them_all_refused),
		cmocka_unit_test(every_interface_address_is_refused),
		cmocka_unit_test(kind_globs_and_sources_pick_the_destinations),
		cmocka_unit_test(a_forwarder_has_a_heartbeat_as_soon_as_it_starts),
		cmocka_unit_test(retry_delays_spread_over_the_whole_jitter_range),
		cmocka_unit_test(each_process_draws_its_own_jitter),
		cmocka_unit_test(an_attempt_is_refused_only_when_no_allowed_address_was_tried),
		cmocka_unit_test(a_failed_listing_keeps_this_hosts_ipv6_addresses),
	};

	self_path = argv[0];
	if (argc == 2 && strcmp(argv[1], "--draw") == 0) { /* each_process_draws_its_own_jitter */
		printf("%lld\n", (long long)hr_retry_delay_us(INT64_C(36000) * 1000000, 50));
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_peers.c - connections per client address (src/http/http_peers.c):
 * the counts against a model, and the connections that wait past the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/http/http_int.h"

static struct sockaddr_storage
v4(uint32_t host_order, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(host_order);
	in->sin_port = htons((uint16_t)port);
	return ss;
}

static struct sockaddr_storage
v6(const char *text, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
	in6->sin6_port = htons((uint16_t)port);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* A connection of `ss` with nothing to wait on: in, or waiting with no socket. */
static enum hr_peer_verdict
admit_nothing(struct hr_peers *p, const struct sockaddr_storage *ss)
{
	return hr_peers_admit(p, -1, ss, sizeof(*ss));
}

static void
an_address_holds_at_most_the_limit_and_others_are_apart(void **state)
{
	struct hr_peers *p = hr_peers_new(2, 16);
	struct sockaddr_storage a1 = v4(0x7f000001, 1000), a2 = v4(0x7f000001, 2000);
	struct sockaddr_storage b = v4(0x7f000002, 1000);
	struct sockaddr_storage mapped = v6("::ffff:127.0.0.1", 3000), six = v6("::1", 1000);

	(void)state;
	assert_int_equal(admit_nothing(p, &a1), HR_PEER_IN);
	assert_int_equal(admit_nothing(p, &a2), HR_PEER_IN); /* the port does not count */
	assert_int_equal(admit_nothing(p, &b), HR_PEER_IN);
	assert_int_equal(admit_nothing(p, &six), HR_PEER_IN);
	/* a dual-stack socket's IPv4 client is that IPv4 address */
	assert_int_equal(hr_peers_open(p, SA(mapped)), 2);
	assert_int_equal(hr_peers_open(p, SA(six)), 1);
	assert_false(hr_peers_give_back(p, SA(a2))); /* nobody waits */
	assert_int_equal(hr_peers_open(p, SA(a1)), 1);
	assert_int_equal(admit_nothing(p, &mapped), HR_PEER_IN);
	assert_int_equal(hr_peers_open(p, SA(a1)), 2);
	assert_int_equal(hr_peers_waiting(p), 0);
	hr_peers_free(p);
}

/* Address i of the churn: close together and far apart, IPv4 and IPv6. */
static struct sockaddr_storage
churn_address(unsigned i)
{
	char text[64];

	if (i % 2 == 0)
		return v4(0x0a000000 + i * 257, 1);
	snprintf(text, sizeof(text), "2001:db8::%x", i);
	return v6(text, 1);
}

/*
 * Many addresses in a small table, admitted and given back at random, held
 * against plain counters: the table's deletions move entries back along
 * their probe paths, and a wrong move loses or doubles an address.
 */
static void
the_counts_follow_a_model_through_random_churn(void **state)
{
	enum { ADDRS = 300, LIMIT = 3, OPS = 200000 };
	static unsigned model[ADDRS];
	unsigned total = 0;
	struct hr_peers *p = hr_peers_new(LIMIT, 192);

	(void)state;
	memset(model, 0, sizeof(model));
	srand(7);
	for (int op = 0; op < OPS; op++) {
		unsigned i = (unsigned)rand() % ADDRS;
		struct sockaddr_storage ss = churn_address(i);

		/* at most 256 connections in all, as the acceptor's cap keeps them */
		if (rand() % 2 == 0 && total < 256 && model[i] < LIMIT) {
			assert_int_equal(admit_nothing(p, &ss), HR_PEER_IN);
			model[i]++;
			total++;
		} else if (model[i] > 0) {
			assert_false(hr_peers_give_back(p, SA(ss)));
			model[i]--;
			total--;
		}
		assert_int_equal(hr_peers_open(p, SA(ss)), model[i]);
	}
	for (unsigned i = 0; i < ADDRS; i++) {
		struct sockaddr_storage ss = churn_address(i);

		assert_int_equal(hr_peers_open(p, SA(ss)), model[i]);
	}
	assert_int_equal(hr_peers_waiting(p), 0);
	hr_peers_free(p);
}

/* ---- waiting ---- */

struct admitted {
	int fds[8];
	size_t n;
};

static void
admit(void *arg, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	struct admitted *a = arg;

	(void)ss;
	(void)len;
	a->fds[a->n++] = fd;
}

/* What the client end of a connection reads within a second, until it closes. */
static char *
client_reads(int fd)
{
	static char buf[2048];
	size_t n = 0;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t got;

		if (poll(&pfd, 1, 1000) != 1)
			break;
		got = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	return buf;
}

static void
pair(int sp[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
}

static void
a_waiting_connection_goes_in_when_its_address_has_room_in_order(void **state)
{
	struct hr_peers *p = hr_peers_new(1, 16);
	struct sockaddr_storage a = v4(0x7f000001, 1), b = v4(0x7f000002, 1);
	struct admitted in = { { 0 }, 0 };
	int first[2], second[2], other[2];

	(void)state;
	pair(first);
	pair(second);
	pair(other);
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	assert_int_equal(admit_nothing(p, &b), HR_PEER_IN);
	assert_int_equal(hr_peers_admit(p, first[0], &a, sizeof(a)), HR_PEER_WAITS);
	assert_int_equal(hr_peers_admit(p, other[0], &b, sizeof(b)), HR_PEER_WAITS);
	assert_int_equal(hr_peers_admit(p, second[0], &a, sizeof(a)), HR_PEER_WAITS);
	assert_int_equal(hr_peers_waiting(p), 3);
	assert_int_equal(hr_peers_admit_ready(p, admit, &in), 0);
	/* b's room goes to b's waiting one, though a's waited longer */
	assert_true(hr_peers_give_back(p, SA(b)));
	assert_int_equal(hr_peers_admit_ready(p, admit, &in), 1);
	assert_int_equal(in.fds[0], other[0]);
	/* a's goes to a's oldest; the next waits for the next room */
	assert_true(hr_peers_give_back(p, SA(a)));
	/* ... and a new connection of a's queues behind it, though a has room now */
	assert_int_equal(admit_nothing(p, &a), HR_PEER_WAITS);
	assert_int_equal(hr_peers_admit_ready(p, admit, &in), 1);
	assert_int_equal(in.fds[1], first[0]);
	assert_int_equal(hr_peers_open(p, SA(a)), 1);
	assert_int_equal(hr_peers_waiting(p), 2);
	assert_int_equal(hr_peers_waited(p), 4);
	/* at a stop, those still waiting are told their request was not read */
	assert_int_equal(hr_peers_refuse_all(p), 2);
	assert_non_null(strstr(client_reads(second[1]), "urn:hookrelay:problem:shutting-down"));
	assert_int_equal(hr_peers_refused(p), 2);
	for (size_t i = 0; i < in.n; i++)
		close(in.fds[i]);
	close(first[1]);
	close(second[1]);
	close(other[1]);
	hr_peers_free(p);
}

static void
a_waiting_connection_whose_client_left_is_closed(void **state)
{
	struct hr_peers *p = hr_peers_new(1, 16);
	struct sockaddr_storage a = v4(0x7f000001, 1);
	struct pollfd pfd;
	int sp[2];

	(void)state;
	pair(sp);
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	assert_int_equal(hr_peers_admit(p, sp[0], &a, sizeof(a)), HR_PEER_WAITS);
	assert_int_equal(hr_peers_events(p), 0);
	close(sp[1]); /* connect-and-close must not hold a slot until request_timeout */
	pfd = (struct pollfd){ hr_peers_epoll_fd(p), POLLIN, 0 };
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(hr_peers_events(p), 1);
	assert_int_equal(hr_peers_waiting(p), 0);
	assert_int_equal(hr_peers_refused(p), 0);
	assert_int_equal(hr_peers_next_deadline(p, 1000000), -1);
	/* its address's room is not held for it */
	assert_false(hr_peers_give_back(p, SA(a)));
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	hr_peers_free(p);
}

static void
a_connection_that_waits_too_long_is_answered_503_and_its_body_drained(void **state)
{
	struct hr_peers *p = hr_peers_new(1, 16);
	struct sockaddr_storage a = v4(0x7f000001, 1);
	static char request[100000];
	int sp[2];
	const char *got;
	int64_t deadline;

	(void)state;
	pair(sp);
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	/* a request already sent, which the 503 must not be lost behind */
	memset(request, 'x', sizeof(request));
	assert_int_equal(write(sp[1], request, sizeof(request)), (ssize_t)sizeof(request));
	assert_int_equal(hr_peers_admit(p, sp[0], &a, sizeof(a)), HR_PEER_WAITS);
	deadline = hr_peers_next_deadline(p, 1000000);
	assert_true(deadline > 0);
	assert_int_equal(hr_peers_expire(p, deadline - 1, 1000000), 0);
	assert_int_equal(hr_peers_expire(p, deadline, 1000000), 1);
	assert_int_equal(hr_peers_waiting(p), 0);
	/* it lingers: the client's late bytes are read, not answered with a reset */
	assert_true(hr_peers_next_deadline(p, 1000000) > deadline);
	assert_int_equal(write(sp[1], request, sizeof(request)), (ssize_t)sizeof(request));
	got = client_reads(sp[1]);
	assert_true(strncmp(got, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
	assert_non_null(strstr(got, "Retry-After: 1\r\n"));
	assert_non_null(strstr(got, "max_connections_per_ip"));
	(void)hr_peers_events(p);
	/* the client closes: so does the lingering connection */
	shutdown(sp[1], SHUT_WR);
	{
		struct pollfd pfd = { hr_peers_epoll_fd(p), POLLIN, 0 };

		assert_int_equal(poll(&pfd, 1, 1000), 1);
	}
	assert_int_equal(hr_peers_events(p), 0);
	assert_int_equal(hr_peers_next_deadline(p, 1000000), -1);
	close(sp[1]);
	hr_peers_free(p);
}

/* An address's share of the unverified-body budget. */
static void
an_address_holds_at_most_its_share_of_unverified_bytes(void **state)
{
	struct hr_peers *p = hr_peers_new(2, 16);
	struct sockaddr_storage a = v4(0x7f000001, 1), b = v4(0x7f000002, 1);
	struct sockaddr_storage gone = v4(0x7f000003, 1);

	(void)state;
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	assert_int_equal(admit_nothing(p, &b), HR_PEER_IN);
	assert_true(hr_peers_budget_take(p, SA(a), 600, 1000));
	assert_false(hr_peers_budget_take(p, SA(a), 401, 1000));
	assert_true(hr_peers_budget_take(p, SA(a), 400, 1000));
	assert_true(hr_peers_budget_take(p, SA(b), 1000, 1000)); /* its own share */
	hr_peers_budget_give(p, SA(a), 500);
	assert_true(hr_peers_budget_take(p, SA(a), 500, 1000));
	/* an address with no connection counted is not limited */
	assert_true(hr_peers_budget_take(p, SA(gone), 5000, 1000));
	/* a slot is kept while it holds bytes, even with its connections closed */
	assert_false(hr_peers_give_back(p, SA(a)));
	assert_false(hr_peers_budget_take(p, SA(a), 1, 1000));
	hr_peers_budget_give(p, SA(a), 1000);
	assert_int_equal(hr_peers_open(p, SA(a)), 0);
	hr_peers_free(p);
}

/* At a stop every waiting one goes in, past the limit: their webhooks are in. */
static void
a_stop_hands_every_waiting_one_over(void **state)
{
	struct hr_peers *p = hr_peers_new(1, 16);
	struct sockaddr_storage a = v4(0x7f000001, 1);
	struct admitted in = { { 0 }, 0 };

	(void)state;
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	assert_int_equal(admit_nothing(p, &a), HR_PEER_WAITS);
	assert_int_equal(admit_nothing(p, &a), HR_PEER_WAITS);
	assert_int_equal(hr_peers_admit_all(p, admit, &in), 2);
	assert_int_equal(in.n, 2);
	assert_int_equal(hr_peers_waiting(p), 0);
	assert_int_equal(hr_peers_open(p, SA(a)), 3);
	/* each close gives its count back, as any other's */
	for (int i = 0; i < 3; i++)
		assert_false(hr_peers_give_back(p, SA(a)));
	assert_int_equal(hr_peers_open(p, SA(a)), 0);
	assert_int_equal(hr_peers_refused(p), 0);
	hr_peers_free(p);
}

static void
at_the_cap_the_oldest_waiting_one_goes(void **state)
{
	struct hr_peers *p = hr_peers_new(1, 16);
	struct sockaddr_storage a = v4(0x7f000001, 1);
	int old[2], young[2];

	(void)state;
	assert_false(hr_peers_drop_oldest(p, true));
	pair(old);
	pair(young);
	assert_int_equal(admit_nothing(p, &a), HR_PEER_IN);
	assert_int_equal(hr_peers_admit(p, old[0], &a, sizeof(a)), HR_PEER_WAITS);
	assert_int_equal(hr_peers_admit(p, young[0], &a, sizeof(a)), HR_PEER_WAITS);
	assert_true(hr_peers_drop_oldest(p, false));
	assert_non_null(strstr(client_reads(old[1]), "max_connections"));
	assert_int_equal(hr_peers_waiting(p), 1);
	close(old[1]);
	hr_peers_free(p); /* refuses the young one */
	assert_non_null(strstr(client_reads(young[1]), "shutting-down"));
	close(young[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_address_holds_at_most_the_limit_and_others_are_apart),
		cmocka_unit_test(the_counts_follow_a_model_through_random_churn),
		cmocka_unit_test(a_waiting_connection_goes_in_when_its_address_has_room_in_order),
		cmocka_unit_test(a_waiting_connection_whose_client_left_is_closed),
		cmocka_unit_test(
		    a_connection_that_waits_too_long_is_answered_503_and_its_body_drained),
		cmocka_unit_test(an_address_holds_at_most_its_share_of_unverified_bytes),
		cmocka_unit_test(a_stop_hands_every_waiting_one_over),
		cmocka_unit_test(at_the_cap_the_oldest_waiting_one_goes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

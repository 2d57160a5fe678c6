/*
 * http_peers.c - connections per client address ([server]
 * max_connections_per_ip), and the connections that wait past it.
 *
 * The acceptor hands a connection to libmicrohttpd only while its address has
 * fewer than the limit open. One past it is not refused: it waits here,
 * accepted and unread, until one of its address's connections closes, as a
 * connection past max_connections waits in the listen backlog. A refusal
 * would be final for the providers that never retry (Tavus, PailFlow), and a
 * burst from one provider's address during a slow commit is exactly when its
 * connections pile up. A waiting connection holds a descriptor and a slot
 * under max_connections, nothing else: it is answered 503 and closed after
 * request_timeout, at a stop, or first of all at max_connections (its address
 * already has its share open).
 *
 * The counts: an open-addressing table (linear probing, backward-shift
 * deletion) of the addresses with connections open, under its own mutex: the
 * acceptor counts, libmicrohttpd's threads give back. The waiting list is
 * the acceptor thread's alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "http_int.h"

#define SAY_EVERY   (INT64_C(10) * 1000000) /* "connections wait", at most this often */
#define DRAIN_BYTES (256 * 1024) /* read before a 503, so that the close sends no reset */

/* An address: IPv4 (and IPv4-mapped IPv6) in the first 4 bytes, or IPv6. */
struct peer_key {
	unsigned char family; /* AF_INET, AF_INET6; 0: an empty slot */
	unsigned char addr[16];
};

struct peer_slot {
	struct peer_key key;
	unsigned open; /* connections handed to libmicrohttpd, not closed yet */
};

struct waiter {
	struct waiter *next, *prev;
	int fd;
	struct sockaddr_storage ss;
	socklen_t len;
	struct peer_key key;
	int64_t since_us; /* accepted (monotonic) */
};

struct hr_peers {
	unsigned limit;
	pthread_mutex_t mu; /* slots, used */
	struct peer_slot *slots;
	size_t mask; /* slots - 1; a power of two, at least twice the connections */
	size_t used;
	uint64_t seed;
	struct waiter waiting; /* list head, oldest first; the acceptor's */
	atomic_uint nwaiting;
	atomic_ulong waited, refused;
	int64_t said_us;
	unsigned long unsaid;
};

static bool
key_of(const struct sockaddr *sa, struct peer_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		k->family = AF_INET;
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) { /* a dual-stack socket's IPv4 client */
			k->family = AF_INET;
			memcpy(k->addr, a->s6_addr + 12, 4);
		} else {
			k->family = AF_INET6;
			memcpy(k->addr, a->s6_addr, 16);
		}
		return true;
	}
	return false;
}

static size_t
home_of(const struct hr_peers *p, const struct peer_key *k)
{
	uint64_t h = p->seed ^ k->family;

	/* FNV-1a, seeded: addresses are chosen by clients */
	for (size_t i = 0; i < sizeof(k->addr); i++)
		h = (h ^ k->addr[i]) * UINT64_C(0x100000001b3);
	return (size_t)(h ^ (h >> 29)) & p->mask;
}

/* The slot holding `k`, or the empty one where it would go. Under p->mu. */
static size_t
find(const struct hr_peers *p, const struct peer_key *k)
{
	size_t i = home_of(p, k);

	while (p->slots[i].key.family != 0 && memcmp(&p->slots[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & p->mask;
	return i;
}

/* Empty slot i, moving back the entries its emptiness would hide. Under p->mu. */
static void
remove_at(struct hr_peers *p, size_t i)
{
	for (size_t j = i;;) {
		size_t home;

		j = (j + 1) & p->mask;
		if (p->slots[j].key.family == 0)
			break;
		home = home_of(p, &p->slots[j].key);
		/* slot j may move to i only if i lies on its probe path (home..j) */
		if (((j - home) & p->mask) >= ((j - i) & p->mask)) {
			p->slots[i] = p->slots[j];
			i = j;
		}
	}
	memset(&p->slots[i], 0, sizeof(p->slots[i]));
	p->used--;
}

struct hr_peers *
hr_peers_new(unsigned limit, unsigned max_conns)
{
	struct hr_peers *p = calloc(1, sizeof(*p));
	size_t n = 64;

	if (p == NULL)
		return NULL;
	while (n < 2 * (size_t)max_conns + 2)
		n *= 2;
	if ((p->slots = calloc(n, sizeof(*p->slots))) == NULL) {
		free(p);
		return NULL;
	}
	p->mask = n - 1;
	p->limit = limit;
	p->seed =
	    (uint64_t)(uintptr_t)p ^ (uint64_t)hr_time_mono_us() ^ UINT64_C(0xcbf29ce484222325);
	pthread_mutex_init(&p->mu, NULL);
	p->waiting.next = p->waiting.prev = &p->waiting;
	return p;
}

/* Count a connection of k's address if it has room; under p->mu. */
static bool
take_locked(struct hr_peers *p, const struct peer_key *k)
{
	size_t i = find(p, k);

	if (p->slots[i].key.family == 0) {
		if (p->used >= p->mask / 2)
			return false; /* more addresses than connections: cannot happen */
		p->slots[i].key = *k;
		p->used++;
	} else if (p->slots[i].open >= p->limit) {
		return false;
	}
	p->slots[i].open++;
	return true;
}

bool
hr_peers_take(struct hr_peers *p, const struct sockaddr *sa)
{
	struct peer_key k;
	bool ok;

	if (!key_of(sa, &k))
		return true; /* not IP: not limited (hookrelay listens on TCP/IP only) */
	pthread_mutex_lock(&p->mu);
	ok = take_locked(p, &k);
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void
hr_peers_give_back(struct hr_peers *p, const struct sockaddr *sa)
{
	struct peer_key k;
	size_t i;

	if (!key_of(sa, &k))
		return;
	pthread_mutex_lock(&p->mu);
	i = find(p, &k);
	if (p->slots[i].key.family != 0 && --p->slots[i].open == 0)
		remove_at(p, i);
	pthread_mutex_unlock(&p->mu);
}

unsigned
hr_peers_open(struct hr_peers *p, const struct sockaddr *sa)
{
	struct peer_key k;
	unsigned n = 0;
	size_t i;

	if (!key_of(sa, &k))
		return 0;
	pthread_mutex_lock(&p->mu);
	i = find(p, &k);
	if (p->slots[i].key.family != 0)
		n = p->slots[i].open;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* ---- the waiting connections (the acceptor's thread) ---- */

bool
hr_peers_wait(struct hr_peers *p, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	struct waiter *w = calloc(1, sizeof(*w));
	int64_t now = hr_time_mono_us();

	if (w == NULL) {
		close(fd);
		atomic_fetch_add(&p->refused, 1);
		return false;
	}
	w->fd = fd;
	w->ss = *ss;
	w->len = len;
	(void)key_of((const struct sockaddr *)ss, &w->key);
	w->since_us = now;
	w->prev = p->waiting.prev;
	w->next = &p->waiting;
	p->waiting.prev->next = w;
	p->waiting.prev = w;
	atomic_fetch_add(&p->nwaiting, 1);
	atomic_fetch_add(&p->waited, 1);
	if (p->said_us != 0 && now - p->said_us < SAY_EVERY) {
		p->unsaid++;
		return true;
	}
	{
		char who[INET6_ADDRSTRLEN] = "?";

		(void)inet_ntop(w->key.family, w->key.addr, who, sizeof(who));
		log_warnx("http: %s has %u connections open, [server] max_connections_per_ip: "
		          "its next ones wait for one to close (%lu more such waits unsaid)",
		    who, p->limit, p->unsaid);
	}
	p->said_us = now;
	p->unsaid = 0;
	return true;
}

static void
unlink_waiter(struct hr_peers *p, struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	atomic_fetch_sub(&p->nwaiting, 1);
}

/*
 * A 503 to a connection whose request was never read, and the close. What it
 * sent is read first (up to DRAIN_BYTES): closing a socket with unread data
 * resets the connection, and the client may lose the answer with it.
 */
static void
refuse(int fd, const char *slug, const char *detail)
{
	char body[512], head[256];
	char sink[16384];
	size_t drained = 0;
	int hn, bn;

	while (drained < DRAIN_BYTES) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n <= 0)
			break;
		drained += (size_t)n;
	}
	bn = snprintf(body, sizeof(body),
	    "{\"type\":\"urn:hookrelay:problem:%s\",\"title\":\"Service Unavailable\","
	    "\"status\":503,\"detail\":\"%s\"}",
	    slug, detail);
	hn = snprintf(head, sizeof(head),
	    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
	    "Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
	    bn);
	/* A fresh socket's send buffer takes this whole; if not, the close says enough. */
	if (send(fd, head, (size_t)hn, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE) == hn)
		(void)!send(fd, body, (size_t)bn, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void
refuse_waiter(struct hr_peers *p, struct waiter *w, const char *slug, const char *detail)
{
	unlink_waiter(p, w);
	refuse(w->fd, slug, detail);
	free(w);
	atomic_fetch_add(&p->refused, 1);
}

unsigned
hr_peers_admit_waiting(struct hr_peers *p,
    void (*admit)(void *, int fd, const struct sockaddr_storage *, socklen_t), void *arg)
{
	unsigned n = 0;

	for (struct waiter *w = p->waiting.next, *next; w != &p->waiting; w = next) {
		bool ok;

		next = w->next;
		pthread_mutex_lock(&p->mu);
		ok = take_locked(p, &w->key);
		pthread_mutex_unlock(&p->mu);
		if (!ok)
			continue;
		unlink_waiter(p, w);
		admit(arg, w->fd, &w->ss, w->len);
		free(w);
		n++;
	}
	return n;
}

int64_t
hr_peers_next_deadline(struct hr_peers *p, int64_t timeout_us)
{
	return p->waiting.next != &p->waiting ? p->waiting.next->since_us + timeout_us : -1;
}

unsigned
hr_peers_expire(struct hr_peers *p, int64_t now, int64_t timeout_us)
{
	unsigned n = 0;

	while (p->waiting.next != &p->waiting && now - p->waiting.next->since_us >= timeout_us) {
		refuse_waiter(p, p->waiting.next, "overloaded",
		    "too many connections from this address ([server] max_connections_per_ip); "
		    "this one waited request_timeout and its request was not read");
		n++;
	}
	return n;
}

bool
hr_peers_drop_oldest(struct hr_peers *p)
{
	if (p->waiting.next == &p->waiting)
		return false;
	refuse_waiter(p, p->waiting.next, "overloaded",
	    "at [server] max_connections, a connection waiting past max_connections_per_ip is "
	    "the first to go; its request was not read");
	return true;
}

unsigned
hr_peers_refuse_all(struct hr_peers *p)
{
	unsigned n = 0;

	while (p->waiting.next != &p->waiting) {
		refuse_waiter(p, p->waiting.next, "shutting-down",
		    "hookrelay is stopping; this connection's request was not read");
		n++;
	}
	return n;
}

unsigned
hr_peers_waiting(struct hr_peers *p)
{
	return p != NULL ? atomic_load(&p->nwaiting) : 0;
}

unsigned long
hr_peers_waited(struct hr_peers *p)
{
	return p != NULL ? atomic_load(&p->waited) : 0;
}

unsigned long
hr_peers_refused(struct hr_peers *p)
{
	return p != NULL ? atomic_load(&p->refused) : 0;
}

void
hr_peers_free(struct hr_peers *p)
{
	if (p == NULL)
		return;
	(void)hr_peers_refuse_all(p);
	pthread_mutex_destroy(&p->mu);
	free(p->slots);
	free(p);
}

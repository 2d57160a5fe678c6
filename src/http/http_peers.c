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
 * connections pile up.
 *
 * An address's waiting connections go in oldest first, and a new connection
 * from an address with some waiting queues behind them. A close that makes
 * room queues its address (the ready ring), so admitting costs nothing per
 * connection waiting elsewhere. A waiting connection holds a descriptor and
 * a slot under max_connections: it is answered 503 after request_timeout, or
 * first of all at max_connections (its address already has its share open),
 * handed over past the limit at a stop (served in its drain), and closed at
 * once when its client goes away (epoll,
 * EPOLLRDHUP), so that connect-and-close cannot pile up sockets. After a 503
 * the connection lingers: what the client still sends is read and dropped
 * until it closes or LINGER_US pass, so that the close does not reset the
 * connection and lose the answer; that holds no slot.
 *
 * The counts and the address queues are in an open-addressing table (linear
 * probing, backward-shift deletion) under p->mu: the acceptor counts,
 * libmicrohttpd's threads give back. The waiting connections themselves, the
 * lingering ones and the epoll set are the acceptor thread's alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hr/log.h"
#include "hr/netaddr.h"
#include "hr/timefmt.h"
#include "http_int.h"

#define SAY_EVERY   (INT64_C(10) * 1000000) /* "connections wait", at most this often */
#define LINGER_US   (INT64_C(2) * 1000000)  /* after a 503: reading what still comes */
#define LINGER_MAX  64                      /* lingering at once; more close at once */
#define EVICT_ROOM  64                      /* connections handed over past the cap */
#define EVENTS_TURN 64                      /* epoll events taken per turn */

/* An address: IPv4 (and IPv4-mapped IPv6) in the first 4 bytes, or IPv6. */
struct peer_key {
	unsigned char family; /* AF_INET, AF_INET6; 0: an empty slot */
	unsigned char addr[16];
};

/* An accepted connection not handed over: waiting, or lingering after a 503. */
struct waiter {
	struct waiter *prev, *next;   /* all waiting, oldest first; or the lingering */
	struct waiter *aprev, *anext; /* its address's waiting, oldest first */
	int fd;
	bool lingering;
	struct sockaddr_storage ss;
	socklen_t len;
	struct peer_key key;
	int64_t since_us; /* accepted; lingering: when it closes (monotonic) */
};

struct peer_slot {
	struct peer_key key;
	size_t unverified; /* bytes of its unauthenticated bodies held (http_body.c) */
	unsigned open;     /* connections handed to libmicrohttpd, not closed yet */
	unsigned waiting;  /* accepted and waiting for room */
	struct waiter *whead, *wtail;
	bool ready; /* in the ready ring */
};

struct hr_peers {
	unsigned limit;
	pthread_mutex_t mu; /* slots, used, the ready ring, every slot's queue */
	struct peer_slot *slots;
	size_t mask; /* slots - 1; a power of two, at least twice the connections */
	size_t used;
	uint64_t seed;
	struct peer_key *ring; /* addresses with room and waiting connections */
	size_t ring_head, ring_n;
	atomic_size_t nready;
	/* the acceptor's */
	int epfd;
	struct waiter waiting, lingering; /* list heads */
	unsigned nlingering;
	atomic_uint nwaiting;
	atomic_ulong waited, refused;
	int64_t said_us;
	unsigned long unsaid;
};

/* ---- the table ---- */

/* An address alone, the port left out (netaddr.h folds IPv4-mapped IPv6). */
static bool
key_of(const struct sockaddr *sa, struct peer_key *k)
{
	int family = 0;

	memset(k, 0, sizeof(*k));
	if (!hr_netaddr_bytes(sa, &family, k->addr))
		return false;
	k->family = (unsigned char)family;
	return true;
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
static struct peer_slot *
find(const struct hr_peers *p, const struct peer_key *k)
{
	size_t i = home_of(p, k);

	while (p->slots[i].key.family != 0 && memcmp(&p->slots[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & p->mask;
	return &p->slots[i];
}

/* The slot of `k`, made if need be; NULL only if the table is full. Under p->mu. */
static struct peer_slot *
find_or_add(struct hr_peers *p, const struct peer_key *k)
{
	struct peer_slot *s = find(p, k);

	if (s->key.family == 0) {
		if (p->used >= p->mask / 2)
			return NULL; /* more addresses than connections: cannot happen */
		s->key = *k;
		p->used++;
	}
	return s;
}

/* Empty slot `s` if nothing holds it, moving back the entries its emptiness
 * would hide. Under p->mu. */
static void
release(struct hr_peers *p, struct peer_slot *s)
{
	size_t i = (size_t)(s - p->slots);

	if (s->open > 0 || s->waiting > 0 || s->ready || s->unverified > 0)
		return;
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
	/* every address with a connection handed over (up to the cap and the
	 * evicted ones still closing) or waiting (each holds a slot of the cap) */
	while (n < 2 * ((size_t)max_conns + EVICT_ROOM) + 2)
		n *= 2;
	p->slots = calloc(n, sizeof(*p->slots));
	p->ring = calloc(n, sizeof(*p->ring));
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->slots == NULL || p->ring == NULL || p->epfd < 0) {
		if (p->epfd >= 0)
			close(p->epfd);
		free(p->slots);
		free(p->ring);
		free(p);
		return NULL;
	}
	p->mask = n - 1;
	p->limit = limit;
	p->seed =
	    (uint64_t)(uintptr_t)p ^ (uint64_t)hr_time_mono_us() ^ UINT64_C(0xcbf29ce484222325);
	pthread_mutex_init(&p->mu, NULL);
	p->waiting.next = p->waiting.prev = &p->waiting;
	p->lingering.next = p->lingering.prev = &p->lingering;
	return p;
}

bool
hr_peers_give_back(struct hr_peers *p, const struct sockaddr *sa)
{
	struct peer_key k;
	struct peer_slot *s;
	bool wake = false;

	if (!key_of(sa, &k))
		return false;
	pthread_mutex_lock(&p->mu);
	s = find(p, &k);
	if (s->key.family != 0 && s->open > 0) {
		s->open--;
		if (s->waiting > 0 && !s->ready) { /* room for its oldest waiting one */
			s->ready = true;
			p->ring[(p->ring_head + p->ring_n++) & p->mask] = k;
			atomic_fetch_add(&p->nready, 1);
			wake = true;
		}
		release(p, s);
	}
	pthread_mutex_unlock(&p->mu);
	return wake;
}

bool
hr_peers_budget_take(struct hr_peers *p, const struct sockaddr *sa, size_t n, size_t share)
{
	struct peer_key k;
	struct peer_slot *s;
	bool ok = true;

	if (!key_of(sa, &k))
		return true;
	pthread_mutex_lock(&p->mu);
	s = find(p, &k);
	if (s->key.family != 0) { /* its connection is open: counted (else: not limited) */
		ok = n <= share && s->unverified <= share - n;
		if (ok)
			s->unverified += n;
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void
hr_peers_budget_give(struct hr_peers *p, const struct sockaddr *sa, size_t n)
{
	struct peer_key k;
	struct peer_slot *s;

	if (!key_of(sa, &k))
		return;
	pthread_mutex_lock(&p->mu);
	s = find(p, &k);
	if (s->key.family != 0) {
		s->unverified -= n < s->unverified ? n : s->unverified;
		release(p, s);
	}
	pthread_mutex_unlock(&p->mu);
}

unsigned
hr_peers_open(struct hr_peers *p, const struct sockaddr *sa)
{
	struct peer_key k;
	struct peer_slot *s;
	unsigned n = 0;

	if (!key_of(sa, &k))
		return 0;
	pthread_mutex_lock(&p->mu);
	s = find(p, &k);
	if (s->key.family != 0)
		n = s->open;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/* ---- waiting (the acceptor's thread) ---- */

static void
link_waiter(struct hr_peers *p, struct peer_slot *s, struct waiter *w)
{
	w->prev = p->waiting.prev;
	w->next = &p->waiting;
	p->waiting.prev->next = w;
	p->waiting.prev = w;
	w->aprev = s->wtail;
	w->anext = NULL;
	if (s->wtail != NULL)
		s->wtail->anext = w;
	else
		s->whead = w;
	s->wtail = w;
	s->waiting++;
	atomic_fetch_add(&p->nwaiting, 1);
}

/* Out of both lists (its slot s, found by the caller). Under p->mu. */
static void
unlink_waiter(struct hr_peers *p, struct peer_slot *s, struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	if (w->aprev != NULL)
		w->aprev->anext = w->anext;
	else
		s->whead = w->anext;
	if (w->anext != NULL)
		w->anext->aprev = w->aprev;
	else
		s->wtail = w->aprev;
	s->waiting--;
	atomic_fetch_sub(&p->nwaiting, 1);
}

/* Take w off the waiting lists, its slot released if nothing else holds it
 * (its epoll registration stays: the caller changes or ends it). */
static void
unwait(struct hr_peers *p, struct waiter *w)
{
	struct peer_slot *s;

	pthread_mutex_lock(&p->mu);
	s = find(p, &w->key);
	unlink_waiter(p, s, w);
	release(p, s);
	pthread_mutex_unlock(&p->mu);
}

static void
say_waiting(struct hr_peers *p, const struct peer_key *k, int64_t now)
{
	char who[INET6_ADDRSTRLEN] = "?";

	if (p->said_us != 0 && now - p->said_us < SAY_EVERY) {
		p->unsaid++;
		return;
	}
	(void)inet_ntop(k->family, k->addr, who, sizeof(who));
	log_warnx("http: %s has %u connections open, [server] max_connections_per_ip: its next "
	          "ones wait for one to close (%lu more such waits unsaid)",
	    who, p->limit, p->unsaid);
	p->said_us = now;
	p->unsaid = 0;
}

/*
 * The canned answer to a connection whose request was never read. It carries
 * what every other answer does: the Date libmicrohttpd adds to its own, and
 * the no-store and nosniff of docs/api.md, which it lacked (a review).
 */
static void
send_503(int fd, const char *slug, const char *detail)
{
	char body[512], head[512], date[48] = "";
	time_t now = time(NULL);
	struct tm tm;
	int hn, bn;

	/* IMF-fixdate (RFC 9110): the daemon keeps the C locale's day and month names */
	if (gmtime_r(&now, &tm) != NULL &&
	    strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm) == 0)
		date[0] = '\0';
	bn = snprintf(body, sizeof(body),
	    "{\"type\":\"urn:hookrelay:problem:%s\",\"title\":\"Service Unavailable\","
	    "\"status\":503,\"detail\":\"%s\"}",
	    slug, detail);
	hn = snprintf(head, sizeof(head),
	    "HTTP/1.1 503 Service Unavailable\r\n%sContent-Type: application/problem+json\r\n"
	    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
	    "Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
	    date, bn);
	/* A fresh socket's send buffer takes this whole; if not, the close says enough. */
	if (send(fd, head, (size_t)hn, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE) == hn)
		(void)!send(fd, body, (size_t)bn, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
}

/* Read and drop what the client sent; false once it closed (or failed). */
static bool
drain(int fd)
{
	char sink[16384];

	for (int i = 0; i < 64; i++) { /* a turn's worth; the rest at the next event */
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return false;
		if (n < 0)
			return true;
	}
	return true;
}

static void
close_waiter(struct hr_peers *p, struct waiter *w)
{
	if (w->lingering) {
		w->prev->next = w->next;
		w->next->prev = w->prev;
		p->nlingering--;
	}
	(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	free(w);
}

/*
 * A 503 to w (off the waiting lists), then it lingers: what its client still
 * sends is read and dropped until it closes, so that closing a socket with
 * unread data does not reset the connection and lose the answer. `linger`
 * false, or too many lingering: closed at once.
 */
static void
refuse(struct hr_peers *p, struct waiter *w, const char *slug, const char *detail, bool linger)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = w };

	atomic_fetch_add(&p->refused, 1);
	send_503(w->fd, slug, detail);
	if (!linger || p->nlingering >= LINGER_MAX || !drain(w->fd) ||
	    epoll_ctl(p->epfd, EPOLL_CTL_MOD, w->fd, &ev) != 0) {
		(void)drain(w->fd); /* what is there already */
		close_waiter(p, w);
		return;
	}
	w->lingering = true;
	w->since_us = hr_time_mono_us() + LINGER_US;
	w->prev = p->lingering.prev;
	w->next = &p->lingering;
	p->lingering.prev->next = w;
	p->lingering.prev = w;
	p->nlingering++;
}

enum hr_peer_verdict
hr_peers_admit(struct hr_peers *p, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	struct epoll_event ev = { .events = EPOLLRDHUP };
	struct waiter *w;
	struct peer_key k;
	struct peer_slot *s;

	if (!key_of((const struct sockaddr *)ss, &k))
		return HR_PEER_IN; /* not IP: not limited (hookrelay listens on TCP/IP only) */
	pthread_mutex_lock(&p->mu);
	s = find_or_add(p, &k);
	/* behind those of its address that wait, if any */
	if (s == NULL || (s->waiting == 0 && s->open < p->limit)) {
		if (s != NULL)
			s->open++;
		pthread_mutex_unlock(&p->mu);
		return HR_PEER_IN;
	}
	if ((w = calloc(1, sizeof(*w))) != NULL) {
		w->fd = fd;
		w->ss = *ss;
		w->len = len;
		w->key = k;
		w->since_us = hr_time_mono_us();
		link_waiter(p, s, w);
	}
	release(p, s); /* made for it, if the waiter could not be */
	pthread_mutex_unlock(&p->mu);
	if (w == NULL) {
		atomic_fetch_add(&p->refused, 1);
		send_503(fd, "overloaded", "out of memory; the request was not read");
		(void)drain(fd);
		close(fd);
		return HR_PEER_REFUSED;
	}
	ev.data.ptr = w;
	(void)epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev); /* failing: noticed at its timeout */
	atomic_fetch_add(&p->waited, 1);
	say_waiting(p, &k, w->since_us);
	return HR_PEER_WAITS;
}

unsigned
hr_peers_admit_ready(struct hr_peers *p,
    void (*admit)(void *, int fd, const struct sockaddr_storage *, socklen_t), void *arg)
{
	struct waiter *in = NULL, **tail = &in;
	unsigned n = 0;

	if (atomic_load(&p->nready) == 0)
		return 0;
	pthread_mutex_lock(&p->mu);
	while (p->ring_n > 0) {
		struct peer_slot *s = find(p, &p->ring[p->ring_head]);

		p->ring_head = (p->ring_head + 1) & p->mask;
		p->ring_n--;
		atomic_fetch_sub(&p->nready, 1);
		if (s->key.family == 0)
			continue; /* cannot happen: a ready slot is kept */
		s->ready = false;
		while (s->waiting > 0 && s->open < p->limit) {
			struct waiter *w = s->whead;

			unlink_waiter(p, s, w);
			s->open++;
			w->next = NULL;
			*tail = w;
			tail = &w->next;
		}
		release(p, s);
	}
	pthread_mutex_unlock(&p->mu);
	while (in != NULL) {
		struct waiter *w = in;

		in = w->next;
		(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		admit(arg, w->fd, &w->ss, w->len);
		free(w);
		n++;
	}
	return n;
}

unsigned
hr_peers_admit_all(struct hr_peers *p,
    void (*admit)(void *, int fd, const struct sockaddr_storage *, socklen_t), void *arg)
{
	unsigned n = 0;

	while (p->waiting.next != &p->waiting) {
		struct waiter *w = p->waiting.next;
		struct peer_slot *s;

		pthread_mutex_lock(&p->mu);
		s = find(p, &w->key);
		unlink_waiter(p, s, w);
		s->open++; /* past the limit: given back at its close as the others */
		pthread_mutex_unlock(&p->mu);
		(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		admit(arg, w->fd, &w->ss, w->len);
		free(w);
		n++;
	}
	while (p->lingering.next != &p->lingering)
		close_waiter(p, p->lingering.next);
	return n;
}

int
hr_peers_epoll_fd(const struct hr_peers *p)
{
	return p->epfd;
}

/*
 * A client that sent its request and then shut down its sending side (RFC 9112,
 * 9.6) has not gone away: it waits for the answer, and its request (a webhook
 * its provider never sends again) was closed unread (a review). When bytes wait
 * to be read, the connection keeps its place, watched from now on only for a
 * reset or hang-up (EPOLLRDHUP is level-triggered: it would fire on every turn).
 */
static bool
half_closed_with_a_request(struct hr_peers *p, struct waiter *w, uint32_t events)
{
	struct epoll_event ev = { .events = 0, .data.ptr = w };
	char byte;

	if ((events & (EPOLLHUP | EPOLLERR)) != 0 ||
	    recv(w->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
		return false;
	return epoll_ctl(p->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0;
}

unsigned
hr_peers_events(struct hr_peers *p)
{
	struct epoll_event evs[EVENTS_TURN];
	unsigned gone = 0;
	int n = epoll_wait(p->epfd, evs, EVENTS_TURN, 0);

	for (int i = 0; i < n; i++) {
		struct waiter *w = evs[i].data.ptr;

		if (w->lingering) {
			if (!drain(w->fd))
				close_waiter(p, w);
			continue;
		}
		if (half_closed_with_a_request(p, w, evs[i].events))
			continue;
		/* the client of a waiting connection went away: nothing to answer */
		unwait(p, w);
		close_waiter(p, w);
		gone++;
	}
	return gone;
}

int64_t
hr_peers_next_deadline(struct hr_peers *p, int64_t timeout_us)
{
	int64_t next = p->waiting.next != &p->waiting ? p->waiting.next->since_us + timeout_us : -1;

	if (p->lingering.next != &p->lingering && (next < 0 || p->lingering.next->since_us < next))
		next = p->lingering.next->since_us;
	return next;
}

unsigned
hr_peers_expire(struct hr_peers *p, int64_t now, int64_t timeout_us)
{
	unsigned n = 0;

	while (p->lingering.next != &p->lingering && now >= p->lingering.next->since_us)
		close_waiter(p, p->lingering.next);
	while (p->waiting.next != &p->waiting && now - p->waiting.next->since_us >= timeout_us) {
		struct waiter *w = p->waiting.next;

		unwait(p, w);
		refuse(p, w, "overloaded",
		    "too many connections from this address ([server] max_connections_per_ip); "
		    "this one waited request_timeout, header_timeout and a second, and its request "
		    "was not read",
		    true);
		n++;
	}
	return n;
}

bool
hr_peers_drop_oldest(struct hr_peers *p, bool linger)
{
	struct waiter *w = p->waiting.next;

	if (w == &p->waiting)
		return false;
	unwait(p, w);
	refuse(p, w, "overloaded",
	    "at [server] max_connections, a connection waiting past max_connections_per_ip is "
	    "the first to go; its request was not read",
	    linger);
	return true;
}

unsigned
hr_peers_refuse_all(struct hr_peers *p)
{
	unsigned n = 0;

	while (p->waiting.next != &p->waiting) {
		struct waiter *w = p->waiting.next;

		unwait(p, w);
		refuse(p, w, "shutting-down",
		    "hookrelay is stopping; this connection's request was not read", false);
		n++;
	}
	while (p->lingering.next != &p->lingering)
		close_waiter(p, p->lingering.next);
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
	close(p->epfd);
	pthread_mutex_destroy(&p->mu);
	free(p->slots);
	free(p->ring);
	free(p);
}

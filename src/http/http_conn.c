/*
 * http_conn.c - connection slots: the listening socket, the acceptor,
 * deadlines and eviction.
 *
 * hookrelay accepts connections itself, on one thread, and hands each to
 * libmicrohttpd (MHD_add_connection). Two reasons:
 *
 *  - MHD's own listener accepts one connection per turn of its poll loop
 *    (ten with epoll), so a burst of hundreds waits behind the requests of
 *    those already in; and MHD 0.9.75's epoll loop, after a full batch of 128
 *    events, blocks in epoll_wait() with the turn's whole timeout before it
 *    handles them (seconds of stall with 256 busy connections). MHD runs its
 *    poll() loop here, which has neither trap, and this thread accepts as
 *    fast as connections come.
 *  - Slots are a shared resource an attacker can hold by connecting and
 *    sending nothing. At max_connections the acceptor does not leave the
 *    next client in the backlog behind them: it shuts down the connection
 *    that has waited longest without sending a complete request, and admits
 *    the newcomer. A request that has arrived whole is never evicted.
 *  - A connection from an address at max_connections_per_ip is not handed
 *    over: it waits (http_peers.c) until one of its address's closes.
 *
 * Every connection is tracked from MHD's "started" to its "closed"
 * notification. A sweeper looks once a second: a connection must send its
 * request line and headers within header_timeout and the whole request
 * within request_timeout (counted from the connection's start, or from the
 * end of the previous answer on a keep-alive connection), else it is shut
 * down. MHD's own timeout only notices silence, and a client that trickles
 * a byte a second (slow-loris) is never silent. Shutting a socket down
 * leaves its descriptor MHD's to close: MHD sees the end and cleans up.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <unistd.h>

#include "hr/log.h"
#include "hr/netaddr.h"
#include "hr/timefmt.h"
#include "http_int.h"

#define LISTEN_BACKLOG  1024
#define ACCEPT_BATCH    64                    /* accept() calls per wake, so a stop is noticed */
#define EVICT_SLACK     64                    /* evicted connections not closed yet, at most */
#define FULL_RECHECK_MS 200                   /* at the cap with nothing evictable: look again */
#define SETTLE_US       (INT64_C(100) * 1000) /* a hand-over's request begun, surely */
/* File descriptors kept for everything but client connections: the database's
 * files (three per SQLite connection) or sockets, the destinations' sockets,
 * the log, eventfds, epoll. */
#define FD_RESERVE   256
#define FD_SAY_EVERY (INT64_C(10) * 1000000) /* "out of file descriptors", at most this often */

/* ---- the listening socket ---- */

static int
open_listener(const char *addr, struct hr_error *err)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd, one = 1;

	if (hr_netaddr_parse(addr, &ss, &len) != HR_OK) {
		hr_error_set(err, HR_EINVAL, "listen", "bad listen address %s", addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* As MHD did: a restart may bind while old connections linger in TIME_WAIT,
	 * and [::]:port means IPv6 only (":port" is every IPv4 address). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (ss.ss_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0)
		goto fail;
	return fd;
fail:
	hr_error_set(err, HR_EINVAL, "listen", "cannot listen on %s: %s", addr, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Is systemd's socket one to accept() HTTP on? A datagram socket (ListenDatagram=)
 * was taken and served nothing, without a word. */
static bool
a_listening_stream(int fd)
{
	int type = 0, listening = 0;
	socklen_t n = sizeof(type), m = sizeof(listening);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) == 0 && type == SOCK_STREAM &&
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &m) == 0 && listening;
}

int
hr_http_listen(struct hr_http *h, const struct hr_http_opts *o, struct hr_error *err)
{
	socklen_t blen = sizeof(h->bound_ss);
	int flags;

	if (o->listen_fd >= 0) {
		/* systemd's socket: non-blocking, so accept() never hangs the acceptor */
		h->listen_fd = o->listen_fd;
		if (!a_listening_stream(h->listen_fd))
			return hr_error_set(err, HR_EINVAL, "listen",
			    "the socket from systemd is not a TCP/IP socket listening for "
			    "connections (ListenStream= in hookrelay.socket)");
		if ((flags = fcntl(h->listen_fd, F_GETFL)) < 0 ||
		    fcntl(h->listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
			return hr_error_set(err, HR_EINVAL, "listen", "the socket from systemd: %s",
			    strerror(errno));
	} else if ((h->listen_fd = open_listener(o->listen, err)) < 0) {
		return HR_EINVAL;
	} else {
		h->own_listen = true;
	}
	if (getsockname(h->listen_fd, (struct sockaddr *)&h->bound_ss, &blen) != 0 ||
	    (h->bound_ss.ss_family != AF_INET && h->bound_ss.ss_family != AF_INET6))
		return hr_error_set(
		    err, HR_EINVAL, "listen", "the listening socket is not a TCP/IP socket");
	hr_netaddr_format((struct sockaddr *)&h->bound_ss, h->bound, sizeof(h->bound));
	return HR_OK;
}

/* ---- tracking ---- */

struct hr_conn *
hr_http_conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

static void
wake_acceptor(struct hr_http *h)
{
	uint64_t one = 1;

	if (write(h->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("http: waking the acceptor");
}

void
hr_http_on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct hr_http *h = cls;
	struct hr_conn *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
			return; /* untracked: no deadline and never evicted, MHD's timeout only */
		c->fd = ci->connect_fd;
		c->since_us = hr_time_mono_us();
		/* Every request on the connection shows its peer: formatted once here. */
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL && ci->client_addr != NULL)
			hr_netaddr_format(ci->client_addr, c->peer_text, sizeof(c->peer_text));
		pthread_mutex_lock(&h->mu);
		c->next = h->conns.next;
		c->prev = &h->conns;
		h->conns.next->prev = c;
		h->conns.next = c;
		pthread_mutex_unlock(&h->mu);
		*socket_context = c;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	bool ready = false; /* room for one of this address's waiting connections */

	if (h->peers != NULL) { /* counted at admission, tracked or not */
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL)
			ready = hr_peers_give_back(h->peers, ci->client_addr);
	}
	pthread_mutex_lock(&h->mu);
	if (c != NULL) {
		c->prev->next = c->next;
		c->next->prev = c->prev;
		if (c->evicted)
			h->evicting--;
	}
	h->open--;
	pthread_mutex_unlock(&h->mu);
	free(c);
	*socket_context = NULL;
	if (ready || atomic_load(&h->idle_acceptor)) /* or a slot the acceptor waits for */
		wake_acceptor(h);
}

void
hr_http_conn_headers_in(struct hr_http *h, struct MHD_Connection *mc)
{
	struct hr_conn *c = hr_http_conn_of(mc);

	if (c == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	c->headers_in = true;
	pthread_mutex_unlock(&h->mu);
}

void
hr_http_conn_busy(struct hr_http *h, struct MHD_Connection *mc, bool busy)
{
	struct hr_conn *c = hr_http_conn_of(mc);

	if (c == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	c->busy = busy;
	if (!busy) { /* the next request's clock starts now */
		c->headers_in = false;
		c->since_us = hr_time_mono_us();
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- the sweeper ---- */

static void
sweep(struct hr_http *h, int64_t now)
{
	pthread_mutex_lock(&h->mu);
	for (struct hr_conn *c = h->conns.next; c != &h->conns; c = c->next) {
		int64_t limit = c->headers_in ? h->timeout_us : h->header_timeout_us;

		if (c->busy || c->evicted || now - c->since_us < limit)
			continue;
		shutdown(c->fd, SHUT_RDWR);
		c->since_us = INT64_MAX / 2; /* once */
		atomic_fetch_add(&h->cut_off, 1);
	}
	pthread_mutex_unlock(&h->mu);
}

static void *
sweeper_main(void *arg)
{
	struct hr_http *h = arg;
	struct timespec until;

	pthread_mutex_lock(&h->stop_mu);
	while (!h->stop) {
		sweep(h, hr_time_mono_us());
		clock_gettime(CLOCK_MONOTONIC, &until); /* stop_cv waits on it */
		until.tv_sec += SWEEP_PERIOD_US / 1000000;
		pthread_cond_timedwait(&h->stop_cv, &h->stop_mu, &until);
	}
	pthread_mutex_unlock(&h->stop_mu);
	return NULL;
}

/* ---- the acceptor ---- */

/*
 * At the cap, make room for one more: shut down the connection that has
 * waited longest for a complete request (idle keep-alive, slow headers or
 * body). Under h->mu. False when every connection has a request in, or too
 * many evicted ones are still closing.
 */
static bool
evict_one(struct hr_http *h)
{
	struct hr_conn *victim = NULL;

	if (h->evicting >= EVICT_SLACK)
		return false;
	for (struct hr_conn *c = h->conns.next; c != &h->conns; c = c->next)
		if (!c->busy && !c->evicted && (victim == NULL || c->since_us < victim->since_us))
			victim = c;
	if (victim == NULL)
		return false;
	shutdown(victim->fd, SHUT_RDWR);
	victim->evicted = true;
	h->evicting++;
	atomic_fetch_add(&h->evicted, 1);
	return true;
}

/* Where the next connection's slot comes from. */
enum slot_from {
	SLOT_NONE,   /* at the cap, nothing to make room: leave it in the backlog */
	SLOT_FREE,   /* a free one (or one an eviction is freeing), taken */
	SLOT_WAITER, /* the oldest connection waiting past max_connections_per_ip's */
};

/*
 * Is there a slot for one more connection? At the cap (someone_waits: poll()
 * said one is in the backlog), a connection waiting past its address's limit
 * gives its slot first (its address has its share open), once the newcomer
 * is accepted; else the longest-idle connection is evicted.
 */
static enum slot_from
take_slot(struct hr_http *h, bool someone_waits)
{
	enum slot_from from = SLOT_NONE;

	pthread_mutex_lock(&h->mu);
	if (h->open - h->evicting < h->max_conns)
		from = SLOT_FREE;
	else if (someone_waits && hr_peers_waiting(h->peers) > 0)
		from = SLOT_WAITER;
	else if (someone_waits && evict_one(h))
		from = SLOT_FREE;
	if (from == SLOT_FREE)
		h->open++;
	pthread_mutex_unlock(&h->mu);
	return from;
}

static void
give_slots_back(struct hr_http *h, unsigned n)
{
	pthread_mutex_lock(&h->mu);
	h->open -= n;
	pthread_mutex_unlock(&h->mu);
}

/* To libmicrohttpd, its slot and its address's count taken. */
static void
hand_over(void *arg, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	struct hr_http *h = arg;

	atomic_store(&h->handed_us, hr_time_mono_us());
	/* MHD closes fd itself when it refuses it (no memory). (One it accepts and
	 * then fails to start, out of memory in its worker, is never notified:
	 * its slot and its address's count stay taken, as MHD 0.9.75 gives no
	 * sign of it.) */
	if (MHD_add_connection(h->mhd, fd, (const struct sockaddr *)ss, len) != MHD_YES) {
		if (h->peers != NULL && hr_peers_give_back(h->peers, (const struct sockaddr *)ss))
			wake_acceptor(h); /* the next of its address goes in at the next turn */
		give_slots_back(h, 1);
	}
}

/*
 * accept() found no file descriptor (EMFILE, ENFILE) or no memory: as at the
 * cap, the longest-idle connection makes room, and the acceptor waits for a
 * close. It returned at once to poll(), which said the same client waits: the
 * thread spun on one CPU and logged the failure ten million times in 14 s,
 * while /healthz went unanswered.
 */
static void
out_of_descriptors(struct hr_http *h, int err)
{
	int64_t now = hr_time_mono_us();

	/* a waiting connection's descriptor first, closed at once: it holds no request in */
	if (hr_peers_drop_oldest(h->peers, false)) {
		give_slots_back(h, 1);
	} else {
		pthread_mutex_lock(&h->mu);
		(void)evict_one(h);
		pthread_mutex_unlock(&h->mu);
	}
	if (h->fd_said_us != 0 && now - h->fd_said_us < FD_SAY_EVERY) {
		h->fd_unsaid++;
		return;
	}
	log_warnx("http: accept: %s with %u connections open (%lu more such failures unsaid): "
	          "the longest idle is closed to make room; raise LimitNOFILE= (ulimit -n) or "
	          "lower [server] max_connections",
	    strerror(err), h->open, h->fd_unsaid);
	h->fd_said_us = now;
	h->fd_unsaid = 0;
}

/* Accept what waits, as long as there are slots. False: at the cap, nothing to evict. */
static bool
accept_some(struct hr_http *h)
{
	for (int i = 0; i < ACCEPT_BATCH && !atomic_load(&h->refusing); i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		/* Evict only for the first: poll() said one waits; more may not. */
		enum slot_from from = take_slot(h, i == 0);

		if (from == SLOT_NONE)
			return i > 0;
		/* MHD makes it non-blocking; hookrelay never runs another program */
		fd = accept(h->listen_fd, (struct sockaddr *)&ss, &len);
		if (fd >= 0 && from == SLOT_WAITER)
			(void)hr_peers_drop_oldest(h->peers, true); /* its slot is the newcomer's */
		if (fd < 0) {
			int e = errno;

			if (from == SLOT_FREE)
				give_slots_back(h, 1);
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				out_of_descriptors(h, e);
				return false; /* wait for a close (or FULL_RECHECK_MS) */
			}
			if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR && e != ECONNABORTED)
				log_warn("http: accept");
			return true;
		}
		switch (h->peers != NULL ? hr_peers_admit(h->peers, fd, &ss, len) : HR_PEER_IN) {
		case HR_PEER_IN:
			hand_over(h, fd, &ss, len);
			break;
		case HR_PEER_WAITS:
			break;
		case HR_PEER_REFUSED:
			give_slots_back(h, 1);
			break;
		}
	}
	return true;
}

/*
 * The connections waiting past max_connections_per_ip: those whose address
 * has room now go in, those that waited request_timeout are answered 503.
 * The poll timeout until the next one's end (-1: none waits).
 */
static int
tend_waiting(struct hr_http *h)
{
	int64_t now, next;
	unsigned gone;

	if (h->peers == NULL)
		return -1;
	(void)hr_peers_admit_ready(h->peers, hand_over, h);
	gone = hr_peers_events(h->peers);
	now = hr_time_mono_us();
	gone += hr_peers_expire(h->peers, now, h->wait_us);
	if (gone > 0)
		give_slots_back(h, gone);
	if ((next = hr_peers_next_deadline(h->peers, h->wait_us)) < 0)
		return -1;
	return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

static void *
acceptor_main(void *arg)
{
	struct hr_http *h = arg;
	bool room = true;

	while (!atomic_load(&h->refusing)) {
		/* the waiting connections' epoll set, if any: -1 is ignored by poll() */
		struct pollfd p[3] = { { h->wake_fd, POLLIN, 0 },
			{ h->peers != NULL ? hr_peers_epoll_fd(h->peers) : -1, POLLIN, 0 },
			{ h->listen_fd, POLLIN, 0 } };
		int waiting_ms = tend_waiting(h), timeout = room ? -1 : FULL_RECHECK_MS;
		uint64_t n;

		if (waiting_ms >= 0 && (timeout < 0 || waiting_ms < timeout))
			timeout = waiting_ms;
		/* At the cap with nothing to evict, only a close (or a moment) helps. */
		atomic_store(&h->idle_acceptor, !room);
		if (poll(p, room ? 3 : 2, timeout) < 0 && errno != EINTR) {
			log_warn("http: poll");
			break;
		}
		if (p[0].revents & POLLIN)
			(void)!read(h->wake_fd, &n, sizeof(n));
		room = !(p[2].revents & POLLIN) || accept_some(h);
	}
	return NULL;
}

/*
 * Each connection is a file descriptor: under RLIMIT_NOFILE, accept() fails
 * before max_connections is reached (1,024 of an interactive shell against the
 * default 1,024 connections). The soft limit is raised to the hard one, and the
 * cap held under it with FD_RESERVE to spare, so that the cap's eviction, not
 * EMFILE, is what a flood of connections meets.
 */
static void
cap_to_descriptors(struct hr_http *h)
{
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit raised = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl = raised;
	}
	room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
	if (rl.rlim_cur != RLIM_INFINITY && room < h->max_conns) {
		log_warnx("http: the file descriptor limit is %llu: at most %llu connections, not "
		          "[server] max_connections %u (raise LimitNOFILE= or ulimit -n)",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)room, h->max_conns);
		h->max_conns = room > 0 ? (unsigned)room : 1;
	}
}

int
hr_http_conns_start(struct hr_http *h, struct hr_error *err)
{
	cap_to_descriptors(h);
	h->sweeping = pthread_create(&h->sweeper, NULL, sweeper_main, h) == 0;
	h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!h->sweeping || h->wake_fd < 0)
		return hr_error_set(err, HR_ENOMEM, "listen", "cannot start the acceptor");
	h->accepting = pthread_create(&h->acceptor, NULL, acceptor_main, h) == 0;
	if (!h->accepting)
		return hr_error_set(err, HR_ENOMEM, "listen", "cannot start the acceptor");
	return HR_OK;
}

/*
 * Stop accepting. Our own listening socket is closed (new clients are
 * refused at once); systemd's stays open and unaccepted, so what waits in
 * its backlog is served by the next hookrelay.
 */
void
hr_http_accept_stop(struct hr_http *h)
{
	atomic_store(&h->refusing, true);
	if (h->accepting) {
		wake_acceptor(h);
		pthread_join(h->acceptor, NULL);
		h->accepting = false;
	}
	/* Those waiting past their address's limit are served with the others
	 * during the stop's drain (their webhooks are in: a 503 would lose them). */
	if (h->peers != NULL)
		(void)hr_peers_admit_all(h->peers, hand_over, h);
	atomic_store(&h->idle_acceptor, false); /* wake_fd stays open until MHD stopped */
	if (h->own_listen && h->listen_fd >= 0) {
		close(h->listen_fd);
		h->listen_fd = -1;
	}
}

bool
hr_http_settled(struct hr_http *h)
{
	/* MHD starts a connection handed over on its worker's next turn: until
	 * then its request is counted nowhere. */
	return h == NULL || hr_time_mono_us() - atomic_load(&h->handed_us) > SETTLE_US;
}

void
hr_http_conns_stop(struct hr_http *h)
{
	hr_http_accept_stop(h);
	pthread_mutex_lock(&h->stop_mu);
	h->stop = true;
	pthread_cond_signal(&h->stop_cv);
	pthread_mutex_unlock(&h->stop_mu);
	if (h->sweeping) {
		pthread_join(h->sweeper, NULL);
		h->sweeping = false;
	}
}

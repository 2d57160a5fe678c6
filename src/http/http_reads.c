/*
 * http_reads.c - the threads that run the handlers of HR_ROUTE_READS routes.
 *
 * libmicrohttpd ties each connection to one of its `threads` workers, and a
 * handler runs on that worker: while it waits on the store, every other
 * connection of the worker waits too. A read of the API can take long (a
 * count over a large table, a database that answers slowly), and webhooks
 * share those workers: with the default two workers, two slow reads held
 * every POST /hooks until they ended (2026-12-05, PostgreSQL: p50 771 ms beside
 * two loops of 400-ms reads, 3 ms alone; tests/integration/test_api_reads.py
 * holds reads on a lock). So such a request is suspended
 * by its worker and its handler runs here, one queue, `threads` threads; its
 * answer is sent once the connection is resumed (http.c, on_request).
 *
 * A handler here may hand a write over as on a worker (hr_req_suspend(), then
 * the write's completion answers and resumes), but the request is resumed only
 * when its thread has let go too: on a worker, the resumed connection waited
 * for the worker to return from the handler; here nothing else would. A
 * stream's answer made here is queued by the worker once it resumes the
 * connection (only a worker may queue one, from inside its handler).
 *
 * A stream's reader runs on its worker, and hands its store reads to these
 * threads the same way (hr_req_stream_job): its connection suspended, the job
 * run here, the connection resumed, and the reader sends what the job read.
 */
#include <pthread.h>
#include <stdlib.h>

#include "hr/log.h"
#include "http_int.h"

struct hr_http_reads {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hr_req *head, *tail; /* queued, oldest first (hr_req.read_next) */
	bool stop;
	unsigned n;
	pthread_t threads[];
};

/* The handler answers, or hands a write over (hr_req_suspend() then takes a
 * second hold, which the write's completion lets go). A handler that failed
 * without either gets a 500. */
static void
answer(struct hr_req *req)
{
	if (req->route->handle(req) != HR_OK && !req->replied && atomic_load(&req->holds) == 1)
		hr_req_reply_problem(req, 500, "internal", "Internal Server Error", NULL, NULL);
	/* The request may be answered and freed from here on: not touched again. */
	hr_req_resume(req);
}

/* A stream's job: its reader runs again once the connection is resumed. */
static void
run_job(struct hr_req *req)
{
	void (*job)(void *) = req->read_job;

	req->read_job = NULL;
	job(req->read_job_arg);
	hr_req_resume(req);
}

static void *
reads_main(void *arg)
{
	struct hr_http_reads *r = arg;
	struct hr_req *req;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->head == NULL && !r->stop)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->head == NULL)
			break; /* stopping, and nothing left */
		req = r->head;
		if ((r->head = req->read_next) == NULL)
			r->tail = NULL;
		pthread_mutex_unlock(&r->mu);
		if (req->read_job != NULL)
			run_job(req);
		else
			answer(req);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int
hr_http_reads_start(struct hr_http *h, unsigned n, struct hr_error *err)
{
	struct hr_http_reads *r = calloc(1, sizeof(*r) + n * sizeof(r->threads[0]));

	if (r == NULL)
		return hr_error_set(err, HR_ENOMEM, "threads", "out of memory");
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	h->reads = r;
	for (; r->n < n; r->n++)
		if (pthread_create(&r->threads[r->n], NULL, reads_main, r) != 0) {
			hr_http_reads_stop(h);
			return hr_error_set(
			    err, HR_ENOMEM, "threads", "cannot start the read threads");
		}
	return HR_OK;
}

static void
enqueue(struct hr_http_reads *r, struct hr_req *req)
{
	req->read_next = NULL;
	pthread_mutex_lock(&r->mu);
	if (r->tail != NULL)
		r->tail->read_next = req;
	else
		r->head = req;
	r->tail = req;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void
hr_http_reads_submit(struct hr_http *h, struct hr_req *req)
{
	req->on_reads = true;
	atomic_store(&req->holds, 1); /* its read thread's */
	enqueue(h->reads, req);
}

void
hr_http_reads_queue_job(struct hr_http *h, struct hr_req *req)
{
	enqueue(h->reads, req);
}

/* After the server stopped: a request it suspended was answered before, so the
 * queue is empty, and each thread ends at its next look. */
void
hr_http_reads_stop(struct hr_http *h)
{
	struct hr_http_reads *r = h->reads;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (unsigned i = 0; i < r->n; i++)
		pthread_join(r->threads[i], NULL);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
	h->reads = NULL;
}

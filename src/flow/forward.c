/*
 * forward.c - the delivery worker's destinations: start, reload, stop, and
 * what the API and /metrics read of them.
 *
 * One thread (forward_loop.c) takes due rows per destination up to
 * max_in_flight and runs each attempt (forward_delivery.c) behind the
 * destination's breaker (forward_breaker.c). A row stays owned there,
 * counted against max_in_flight, until the record of its attempt is
 * committed, so it is never taken twice; after a crash the rows are simply
 * still pending and go again.
 *
 * The forwarder keeps its own copy of the destinations' settings, never the
 * configuration with its inbound secrets: a reference-counted set per
 * configuration generation. A destination holds a reference on the set its
 * settings are in, and a destination a reload removed lives on until its
 * last attempt is recorded, so no attempt outlives what it reads, however
 * many reloads come meanwhile.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward_int.h"
#include "hr/log.h"
#include "hr/secretfile.h"
#include "hr/sign.h"
#include "hr/timefmt.h"

_Static_assert(MAX_SECRETS <= HR_SECRETFILE_LINES_MAX, "a destination's secrets fit the reader");

/* ---- destination sets ---- */

static void
dset_release(struct dset *set)
{
	if (set == NULL || atomic_fetch_sub(&set->refs, 1) != 1)
		return;
	for (size_t i = 0; i < set->n; i++)
		hr_cfg_destination_clear(&set->v[i]);
	if (set->keys != NULL)
		OPENSSL_cleanse(set->keys, set->n * sizeof(*set->keys));
	free(set->keys);
	free(set->v);
	free(set);
}

static struct dset *
dset_ref(struct dset *set)
{
	atomic_fetch_add(&set->refs, 1);
	return set;
}

static int load_secrets(const struct hr_destination_cfg *c, struct dkeys *k, struct hr_error *err);

/*
 * A new set (one reference) with copies of `dests` and their keys, each
 * secret file read here, once: what the set's destinations sign with is what
 * was checked (a reload is refused whole when one cannot be read).
 */
static int
dset_new(const struct hr_destination_cfg *dests, size_t n, struct dset **out, struct hr_error *err)
{
	struct dset *set = calloc(1, sizeof(*set));
	int rc = HR_OK;

	*out = NULL;
	if (set == NULL)
		return hr_error_set(err, HR_ENOMEM, "forwarder", "out of memory");
	atomic_store(&set->refs, 1);
	set->v = calloc(n ? n : 1, sizeof(*set->v));
	set->keys = calloc(n ? n : 1, sizeof(*set->keys));
	if (set->v == NULL || set->keys == NULL) {
		dset_release(set);
		return hr_error_set(err, HR_ENOMEM, "forwarder", "out of memory");
	}
	for (; set->n < n && rc == HR_OK; set->n++) {
		if (hr_cfg_destination_copy(&set->v[set->n], &dests[set->n]) != HR_OK) {
			rc = hr_error_set(err, HR_ENOMEM, "forwarder", "out of memory");
			break; /* not counted: the copy cleared what it had made */
		}
		rc = load_secrets(&set->v[set->n], &set->keys[set->n], err);
	}
	if (rc != HR_OK) {
		dset_release(set);
		return rc;
	}
	*out = set;
	return HR_OK;
}

/* ---- secrets ---- */

/*
 * The whsec_ keys of d's secret_file; more than MAX_SECRETS is refused, and so
 * is a file with none (emptied in a rotation, only comments left): that would
 * send every request unsigned, which a verifying receiver answers 401, final.
 * Only whsec_<base64> lines: a bare base64 line is more likely a mistake (a
 * source's secret pasted here) than a key.
 */
static int
load_secrets(const struct hr_destination_cfg *c, struct dkeys *k, struct hr_error *err)
{
	const char *path = c->secret_file;
	struct hr_secretfile sf;
	struct hr_error ferr = { .field = "" };
	char field[sizeof(ferr.field)];
	int rc;

	k->n = 0;
	if (path[0] == '\0')
		return HR_OK;
	if ((rc = hr_secretfile_read(path, MAX_SECRETS, &sf, &ferr)) != HR_OK)
		return hr_error_set(err, rc, ferr.field, "[destination %s] secret_file %s: %s",
		    c->name, path, ferr.msg);
	if (sf.n == 0)
		rc = hr_error_set(err, HR_EINVAL, path,
		    "[destination %s] secret_file %s holds no secret (one whsec_<base64> a line)",
		    c->name, path);
	for (size_t i = 0; i < sf.n && rc == HR_OK; i++) {
		int drc = HR_EINVAL;

		k->len[k->n] = sizeof(k->key[0]);
		if (strncmp(sf.line[i], "whsec_", 6) == 0 &&
		    (drc = hr_whsec_decode(sf.line[i], k->key[k->n], &k->len[k->n])) == HR_OK) {
			k->n++;
			continue;
		}
		hr_secretfile_where(path, sf.lineno[i], field, sizeof(field));
		/* A key past the limit was called "not whsec_<base64>" (review R4). */
		rc = hr_error_set(err, HR_EINVAL, field, "[destination %s] secret_file holds a %s",
		    c->name,
		    drc == HR_ETOOBIG ? "key longer than 64 bytes"
		                      : "secret that is not whsec_<base64>");
	}
	hr_secretfile_clear(&sf);
	return rc;
}

int
hr_forwarder_check(
    const struct hr_destination_cfg *dests, size_t n, size_t *every, struct hr_error *err)
{
	int rc = HR_OK;

	for (size_t i = 0; i < n && (rc == HR_OK || every != NULL); i++) {
		struct hr_error e = { .field = "" };
		struct dkeys k;
		int r = load_secrets(&dests[i], &k, &e);

		OPENSSL_cleanse(&k, sizeof(k));
		if (r == HR_OK)
			continue;
		rc = r;
		hr_log_hold_error(err, every, &e);
	}
	return rc;
}

void
hr_fwd_dest_free(struct dest *d)
{
	while (d->owned != NULL) {
		struct transfer *t = d->owned;

		d->owned = t->next;
		hr_fwd_transfer_free(t);
	}
	free(d->keys_window);
	OPENSSL_cleanse(&d->keys, sizeof(d->keys));
	hr_logflood_destroy(&d->final_log);
	dset_release(d->set);
	free(d);
}

/* ---- destinations and reloads ---- */

int
hr_fwd_dest_read_state(struct hr_forwarder *fw, struct dest *d, struct hr_error *err)
{
	struct hr_destination_row row;
	char reason[64];
	int rc = hr_store_destination(fw->store, d->cfg->name, &row, reason, sizeof(reason), err);

	pthread_mutex_lock(&fw->mu);
	d->state_unread = rc != HR_OK;
	if (rc == HR_OK) {
		d->disabled = row.disabled;
		d->state_set_us = row.disabled_us;
	}
	pthread_mutex_unlock(&fw->mu);
	if (rc == HR_OK && row.disabled)
		log_warnx("forward: destination %s is disabled (%s); enable it with POST "
		          "/v1/destinations/%s/enable",
		    d->cfg->name, reason, d->cfg->name);
	return rc;
}

/*
 * A 410 that the removed copy of d's name took (state_dest) for d's URL after
 * the store's state was set: its write may still wait in the writer's queue,
 * and the copy configured again, reading the state before it was stored, sent
 * (a test held the writer). Taken over, and written again until the store
 * holds it (save_state). Only this thread changes the retired list.
 */
static void
adopt_retired_state(struct hr_forwarder *fw, struct dest *d)
{
	for (const struct dest *r = fw->retired; r != NULL; r = r->next_retired) {
		if (!r->state_unsaved || r->state_set_us <= d->state_set_us ||
		    strcmp(r->cfg->name, d->cfg->name) != 0 ||
		    strcmp(r->cfg->url, d->cfg->url) != 0)
			continue;
		pthread_mutex_lock(&fw->mu);
		d->disabled = r->disabled;
		d->state_set_us = r->state_set_us;
		snprintf(d->state_reason, sizeof(d->state_reason), "%s", r->state_reason);
		d->state_unsaved = true;
		pthread_mutex_unlock(&fw->mu);
	}
}

/*
 * A destination for `c`, which is in `set` (a reference is taken). Its state
 * (disabled by a 410?) is read from the store; when that fails (the database
 * away for a moment during a reload) it starts all the same and sends nothing
 * until a poll could read it, rather than being left out with its deliveries
 * pending until the next reload.
 */
static int
dest_new(struct hr_forwarder *fw, struct dset *set, const struct hr_destination_cfg *c,
    struct dest **out)
{
	struct hr_error err = { .field = "" };
	struct dest *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (d == NULL)
		return HR_ENOMEM;
	d->cfg = c;
	d->set = dset_ref(set);
	hr_breaker_init(&d->breaker, c);
	hr_logflood_init(&d->final_log);
	d->keys = set->keys[c - set->v];
	if (hr_fwd_dest_read_state(fw, d, &err) != HR_OK)
		log_warnx("forward: destination %s: its state could not be read (%s); it sends"
		          " nothing until it can",
		    c->name, err.msg);
	adopt_retired_state(fw, d);
	*out = d;
	return HR_OK;
}

/* A kept destination takes its new settings, `c` in `set`; its breaker and in-flight
 * attempts stay. */
static void
dest_update(
    struct hr_forwarder *fw, struct dest *d, struct dset *set, const struct hr_destination_cfg *c)
{
	struct dset *old;

	OPENSSL_cleanse(&d->keys, sizeof(d->keys));
	d->keys = set->keys[c - set->v]; /* read when the set was made */
	/* API threads read d->cfg under the lock (hr_fwd_find_dest): after it, none reads `old`. */
	pthread_mutex_lock(&fw->mu);
	/* The 410 spoke for the old URL, but a reload enables nothing: with several
	 * nodes, one not yet reloaded would send to the old URL again and disable it. */
	if (d->disabled && strcmp(d->cfg->url, c->url) != 0)
		log_warnx("forward: destination %s has a new url and is still disabled (%s): POST "
		          "/v1/destinations/%s/enable once its receiver is ready",
		    c->name, d->state_reason[0] ? d->state_reason : "410 Gone", c->name);
	old = d->set;
	d->cfg = c;
	d->set = dset_ref(set);
	hr_breaker_configure(&d->breaker, c);
	pthread_mutex_unlock(&fw->mu);
	dset_release(old);
}

static struct dest *
take_dest(struct dest **list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] != NULL && strcmp(list[i]->cfg->name, name) == 0) {
			struct dest *d = list[i];

			list[i] = NULL;
			return d;
		}
	}
	return NULL;
}

/* Build the destination list of `set`, reusing what `old` has by name. */
static struct dest **
build_dests(struct hr_forwarder *fw, struct dset *set, struct dest **old, size_t nold)
{
	struct dest **dests = calloc(set->n ? set->n : 1, sizeof(*dests));

	for (size_t i = 0; dests != NULL && i < set->n; i++) {
		const struct hr_destination_cfg *c = &set->v[i];

		if ((dests[i] = take_dest(old, nold, c->name)) != NULL) {
			dest_update(fw, dests[i], set, c);
		} else if (dest_new(fw, set, c, &dests[i]) != HR_OK) {
			log_warnx("forward: destination %s not started: out of memory", c->name);
			dests[i] = NULL;
		}
	}
	return dests;
}

static void
compact(struct dest **dests, size_t *n)
{
	size_t k = 0;

	for (size_t i = 0; i < *n; i++)
		if (dests[i] != NULL)
			dests[k++] = dests[i];
	*n = k;
}

/* ---- deliveries no destination sends ---- */

static bool
set_has(const char *name, void *arg)
{
	const struct dset *set = arg;

	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return true;
	return false;
}

static int
warn_unconfigured_one(const struct hr_destination_row *row, void *arg)
{
	char oldest[40];

	(void)arg;
	hr_time_format(row->oldest_pending_us, oldest, sizeof(oldest));
	log_warnx(
	    "forward: %lld deliveries to %s are pending (the oldest since %s), and the "
	    "configuration has no [destination %s]: they are not sent, and their events are "
	    "kept whole, until a destination of that name sends them or `hookctl destinations "
	    "discard %s` gives them up (docs/forwarding.md)",
	    (long long)row->pending, row->name, oldest, row->name, row->name);
	return HR_OK;
}

/* Said at the start and at each reload, naming each one: nothing sends them and
 * their events are never pruned (store.h). */
static void
warn_unconfigured(struct hr_store *store, const struct dset *set)
{
	struct hr_error err = { .field = "" };

	if (hr_store_unconfigured_destinations(
	        store, set_has, warn_unconfigured_one, (void *)set, &err) != HR_OK)
		log_warnx("forward: the destinations of pending deliveries could not be read: %s",
		    err.msg);
}

/* Apply a configuration a SIGHUP swapped in: add, change and remove destinations. */
void
hr_fwd_apply_reload(struct hr_forwarder *fw)
{
	struct dset *set, *was;
	struct dest **dests, **old, **left;
	size_t n, nold;

	pthread_mutex_lock(&fw->mu);
	set = fw->pending;
	fw->pending = NULL;
	pthread_mutex_unlock(&fw->mu);
	if (set == NULL)
		return;
	/* build_dests() takes the kept destinations out of the list it is given;
	 * API threads walk fw->dests meanwhile (hr_fwd_find_dest), so it gets a copy.
	 * Only this thread changes fw->dests: reading it here needs no lock. */
	nold = fw->ndests;
	if ((left = malloc((nold ? nold : 1) * sizeof(*left))) == NULL) {
		dset_release(set);
		return;
	}
	memcpy(left, fw->dests, nold * sizeof(*left));
	if ((dests = build_dests(fw, set, left, nold)) == NULL) {
		free(left);
		dset_release(set); /* out of memory: keep the old set */
		return;
	}
	n = set->n;
	compact(dests, &n);
	pthread_mutex_lock(&fw->mu);
	old = fw->dests;
	fw->dests = dests;
	fw->ndests = n;
	for (size_t i = 0; i < nold; i++) {
		if (left[i] == NULL)
			continue;
		log_info("forward: destination %s removed", left[i]->cfg->name);
		left[i]->next_retired = fw->retired;
		fw->retired = left[i];
	}
	was = fw->set; /* retired destinations hold their own references */
	fw->set = set;
	pthread_mutex_unlock(&fw->mu);
	dset_release(was);
	free(old);
	free(left);
	atomic_store(&fw->poll_needed, true);
	log_info("forward: %zu destination(s) after reload", n);
	warn_unconfigured(fw->store, set);
}

/* ---- public ---- */

void
hr_forwarder_wake(void *arg)
{
	struct hr_forwarder *fw = arg;

	atomic_store(&fw->poll_needed, true);
	curl_multi_wakeup(fw->multi);
}

static void
free_all_dests(struct hr_forwarder *fw)
{
	for (size_t i = 0; i < fw->ndests; i++)
		hr_fwd_dest_free(fw->dests[i]);
	free(fw->dests);
	while (fw->retired != NULL) {
		struct dest *d = fw->retired;

		fw->retired = d->next_retired;
		hr_fwd_dest_free(d);
	}
	dset_release(fw->pending);
	dset_release(fw->set);
}

int
hr_forwarder_start(const struct hr_destination_cfg *dests, size_t n, struct hr_store *store,
    struct hr_forwarder **out, struct hr_error *err)
{
	struct hr_forwarder *fw;
	int rc = HR_ENOMEM;

	*out = NULL;
	if ((fw = calloc(1, sizeof(*fw))) == NULL)
		return HR_ENOMEM;
	fw->store = store;
	pthread_mutex_init(&fw->mu, NULL);
	if ((rc = dset_new(dests, n, &fw->set, err)) != HR_OK)
		goto fail;
	rc = HR_ENOMEM;
	if ((fw->multi = curl_multi_init()) == NULL)
		goto fail;
	fw->dests = calloc(fw->set->n ? fw->set->n : 1, sizeof(*fw->dests));
	if (fw->dests == NULL)
		goto fail;
	for (; fw->ndests < fw->set->n; fw->ndests++)
		if ((rc = dest_new(fw, fw->set, &fw->set->v[fw->ndests], &fw->dests[fw->ndests])) !=
		    HR_OK) {
			hr_error_set(err, rc, "forwarder", "out of memory");
			goto fail;
		}
	warn_unconfigured(store, fw->set);
	atomic_store(&fw->poll_needed, true);
	/* Started counts as turned: /readyz and the watchdog judge the loop by this
	 * heartbeat, and a request right after the start must not find it at 0. */
	atomic_store(&fw->last_loop_us, hr_time_mono_us());
	if (pthread_create(&fw->thread, NULL, hr_fwd_loop_main, fw) != 0) {
		rc = hr_error_set(err, HR_ENOMEM, "forwarder", "cannot start the forwarder thread");
		goto fail;
	}
	hr_store_set_commit_hook(store, hr_forwarder_wake, fw);
	*out = fw;
	return HR_OK;
fail:
	free_all_dests(fw);
	curl_multi_cleanup(fw->multi);
	pthread_mutex_destroy(&fw->mu);
	free(fw);
	return rc;
}

int
hr_forwarder_reload(
    struct hr_forwarder *fw, const struct hr_destination_cfg *dests, size_t n, struct hr_error *err)
{
	struct dset *set, *superseded;
	int rc;

	if ((rc = dset_new(dests, n, &set, err)) != HR_OK)
		return rc;
	pthread_mutex_lock(&fw->mu);
	superseded = fw->pending; /* a reload not yet applied */
	fw->pending = set;
	pthread_mutex_unlock(&fw->mu);
	dset_release(superseded);
	hr_forwarder_wake(fw);
	return HR_OK;
}

void
hr_forwarder_stop(struct hr_forwarder *fw)
{
	if (fw == NULL)
		return;
	hr_store_set_commit_hook(fw->store, NULL, NULL);
	atomic_store(&fw->stopping, true);
	curl_multi_wakeup(fw->multi);
	pthread_join(fw->thread, NULL);
	/* Records still queued reach the writer before it stops; what was not
	 * answered stays pending and goes again after the restart. */
	free_all_dests(fw);
	curl_multi_cleanup(fw->multi);
	pthread_mutex_destroy(&fw->mu);
	free(fw);
}

/* Caller holds fw->mu. */
struct dest *
hr_fwd_find_dest(struct hr_forwarder *fw, const char *name)
{
	for (size_t i = 0; i < fw->ndests; i++)
		if (strcmp(fw->dests[i]->cfg->name, name) == 0)
			return fw->dests[i];
	return NULL;
}

/*
 * A reload that removed d's name and configured it again leaves the removed
 * copy's attempts running: their answers count for d (state_dest) and their
 * rows are still pending, so they are d's attempts under way and hold its
 * max_in_flight. Left out, the new copy sent beyond max_in_flight, or took
 * nothing (the rows it was given were those attempts') while in_flight said
 * 0. A retired copy is freed, and drops out of this sum, once its last
 * record is committed (hr_fwd_delivery_reap).
 */
unsigned
hr_fwd_in_flight(const struct hr_forwarder *fw, const struct dest *d)
{
	unsigned n = d->nowned;

	for (const struct dest *r = fw->retired; r != NULL; r = r->next_retired)
		if (r != d && strcmp(r->cfg->name, d->cfg->name) == 0)
			n += r->nowned;
	return n;
}

void
hr_forwarder_status(struct hr_forwarder *fw, const char *name, struct hr_dest_status *out)
{
	struct dest *d;

	memset(out, 0, sizeof(*out));
	if (fw == NULL)
		return;
	pthread_mutex_lock(&fw->mu);
	if ((d = hr_fwd_find_dest(fw, name)) != NULL) {
		out->known = true;
		out->disabled = d->disabled;
		out->breaker = d->breaker.state;
		out->in_flight = hr_fwd_in_flight(fw, d);
		out->consecutive_failures = d->breaker.failures;
		out->probe_at_us = d->breaker.state == HR_BREAKER_OPEN ? d->breaker.probe_at_us : 0;
		snprintf(out->last_error, sizeof(out->last_error), "%s", d->last_error);
		out->last_error_us = d->last_error_us;
	}
	pthread_mutex_unlock(&fw->mu);
}

int
hr_forwarder_enable(struct hr_forwarder *fw, const char *name)
{
	struct dest *d;

	pthread_mutex_lock(&fw->mu);
	if ((d = hr_fwd_find_dest(fw, name)) != NULL) {
		/* The API wrote the row already, stamped (a 410 another node wrote before
		 * it yields to it: save_state); this node's own view follows. */
		if (d->disabled)
			hr_fwd_set_disabled(fw, d, false, NULL);
		hr_breaker_reset(&d->breaker, d->cfg);
	}
	pthread_mutex_unlock(&fw->mu);
	if (d == NULL)
		return HR_ENOTFOUND;
	hr_forwarder_wake(fw);
	return HR_OK;
}

int64_t
hr_forwarder_last_loop_us(struct hr_forwarder *fw)
{
	return atomic_load(&fw->last_loop_us);
}

size_t
hr_forwarder_metrics(struct hr_forwarder *fw, struct hr_dest_metrics_snap *out, size_t max)
{
	size_t n = 0;

	if (fw == NULL)
		return 0;
	pthread_mutex_lock(&fw->mu);
	for (size_t i = 0; i < fw->ndests && n < max; i++, n++) {
		const struct dest *d = fw->dests[i];
		struct hr_dest_metrics_snap *o = &out[n];

		snprintf(o->name, sizeof(o->name), "%s", d->cfg->name);
		o->disabled = d->disabled;
		o->breaker = d->breaker.state;
		for (size_t k = 0; k < HR_OUTCOME_COUNT; k++)
			o->outcomes[k] =
			    atomic_load_explicit(&d->metrics.outcomes[k], memory_order_relaxed);
		hr_hist_snap(&d->metrics.latency, &o->latency);
		hr_hist_snap(&d->metrics.attempt, &o->attempt);
		o->polls = atomic_load_explicit(&d->metrics.polls, memory_order_relaxed);
		o->poll_cpu_us =
		    atomic_load_explicit(&d->metrics.poll_cpu_us, memory_order_relaxed);
		o->poll_us = atomic_load_explicit(&d->metrics.poll_us, memory_order_relaxed);
	}
	pthread_mutex_unlock(&fw->mu);
	return n;
}

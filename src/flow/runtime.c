/*
 * runtime.c - configuration generations.
 *
 * Everything derived from the config file that requests use (secrets, rate
 * buckets, the API token, JSON limits) is built here, off to the side, and
 * only then swapped in whole. A reload whose secrets cannot be read is
 * refused like a file with a syntax error, and the old generation stays.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/app.h"
#include "hr/auth.h"
#include "hr/event.h"
#include "hr/log.h"
#include "hr/secretfile.h"

#define TOKEN_MIN 16

/* An API token: the one secret of `path`, [api] `key` (as every secrets file is read). */
static int
load_token(const char *key, const char *path, char **out, struct hr_error *err)
{
	struct hr_secretfile sf;
	struct hr_error ferr = { .field = "" };
	int rc;

	*out = NULL;
	if (path[0] == '\0')
		return HR_OK;
	if ((rc = hr_secretfile_read(path, 1, &sf, &ferr)) != HR_OK)
		return hr_error_set(err, rc, ferr.field, "[api] %s %s: %s", key, path, ferr.msg);
	if (sf.n == 0 || strlen(sf.line[0]) < TOKEN_MIN)
		rc = hr_error_set(err, HR_EINVAL, path,
		    "[api] %s %s: the token must be at least %d characters", key, path, TOKEN_MIN);
	else if ((*out = strdup(sf.line[0])) == NULL)
		rc = hr_error_set(err, HR_ENOMEM, path, "out of memory");
	hr_secretfile_clear(&sf);
	return rc;
}

/*
 * [api] token_file's token and read_token_file's. `nerr` NULL: stops at the
 * first error; else (hookrelay -t) goes on, hr_log_hold_error() counting.
 */
static int
load_tokens(
    const struct hr_cfg *cfg, char **token, char **read_token, size_t *nerr, struct hr_error *err)
{
	struct hr_error e = { .field = "" };
	int rc = HR_OK, r;

	if ((r = load_token("token_file", cfg->token_file, token, &e)) != HR_OK) {
		hr_log_hold_error(err, nerr, &e);
		if (nerr == NULL)
			return r;
		rc = r;
	}
	if ((r = load_token("read_token_file", cfg->read_token_file, read_token, &e)) != HR_OK) {
		hr_log_hold_error(err, nerr, &e);
		rc = r;
	} else if (*read_token != NULL && *token != NULL && strcmp(*read_token, *token) == 0) {
		/* One token in both files would let the reader write. */
		hr_error_set(&e, HR_EINVAL, cfg->read_token_file,
		    "[api] read_token_file holds the token of token_file: give it a token of its "
		    "own");
		hr_log_hold_error(err, nerr, &e);
		rc = HR_EINVAL;
	}
	return rc;
}

/* Source `src`'s secrets; a file's error names the file, one of the configuration its line. */
static int
source_secrets(const struct hr_cfg *cfg, const struct hr_source_cfg *src, struct hr_secrets **out,
    struct hr_error *err)
{
	struct hr_error serr = { .field = "" };
	char where[sizeof(serr.field)];
	int rc;

	if ((rc = hr_auth_load_secrets(src, out, &serr)) == HR_OK)
		return HR_OK;
	snprintf(
	    where, sizeof(where), "%.*s:%d", (int)sizeof(where) - 16, cfg->file, src->auth_line);
	return hr_error_set(err, rc, serr.field[0] != '\0' ? serr.field : where, "[source %s] %s",
	    src->name, serr.msg);
}

const char *const hr_not_stored_labels[HR_NOT_STORED_REASONS] = { "storage", "queue_full",
	"stopping" };

/* Source `name`'s state in `prev`, or NULL. */
static struct hr_source_state *
prev_state(const char *name, const struct hr_runtime *prev)
{
	for (size_t i = 0; prev != NULL && i < prev->cfg->nsources; i++)
		if (strcmp(prev->cfg->sources[i].name, name) == 0)
			return &prev->sources[i];
	return NULL;
}

/* The counters of source `name`: those of `prev` if it has the source, else new. */
static struct hr_source_counters *
source_counters(const struct hr_source_cfg *src, const struct hr_runtime *prev)
{
	struct hr_source_state *was = prev_state(src->name, prev);
	struct hr_source_counters *c;

	if (was != NULL) {
		atomic_fetch_add(&was->counters->refs, 1);
		return was->counters;
	}
	if ((c = calloc(1, sizeof(*c))) != NULL) {
		atomic_store(&c->refs, 1);
		hr_logflood_init(&c->refusal_log);
		hr_logflood_init(&c->reject_log);
		hr_bucket_init(&c->bucket, src->rate, src->burst);
	}
	return c;
}

static void
source_counters_release(struct hr_source_counters *c)
{
	if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1) {
		hr_logflood_destroy(&c->refusal_log);
		hr_logflood_destroy(&c->reject_log);
		hr_bucket_destroy(&c->bucket);
		free(c);
	}
}

static void
source_state_clear(struct hr_source_state *st)
{
	hr_secrets_free(st->secrets);
	source_counters_release(st->counters);
}

static void
free_token(char *token)
{
	if (token != NULL) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
}

static void
runtime_free(struct hr_runtime *rt)
{
	for (size_t i = 0; rt->sources != NULL && i < rt->cfg->nsources; i++)
		source_state_clear(&rt->sources[i]);
	free(rt->sources);
	free_token(rt->api_token);
	free_token(rt->api_read_token);
	hr_cfg_free(rt->cfg);
	free(rt);
}

/* dedup = header:NAME cannot hold with a signature that does not cover the header. */
static void
warn_ignored_dedup(const struct hr_source_cfg *src)
{
	if ((src->auth == HR_AUTH_HMAC || src->auth == HR_AUTH_DAILY) &&
	    strncmp(src->dedup, "header:", 7) == 0)
		log_warnx("[source %s] dedup = %s is ignored with auth = %s: the signature"
		          " does not cover the header, so a replayed request with a new one"
		          " would be stored again; events are keyed %s",
		    src->name, src->dedup, src->auth == HR_AUTH_HMAC ? "hmac" : "daily",
		    src->auth == HR_AUTH_HMAC ? "by their body"
		                              : "by Daily's envelope id (else their body)");
}

int
hr_runtime_new(struct hr_cfg *cfg, const struct hr_runtime *prev, size_t *every,
    struct hr_runtime **out, struct hr_error *err)
{
	struct hr_runtime *rt = calloc(1, sizeof(*rt));
	size_t ready = 0, nerr = every != NULL ? *every : 0;
	int rc = HR_ENOMEM;

	*out = NULL;
	if (rt == NULL) {
		hr_cfg_free(cfg);
		return HR_ENOMEM;
	}
	rt->cfg = cfg;
	atomic_store(&rt->refs, 1);
	rt->limits = (struct hr_json_limits){ cfg->max_depth, cfg->max_object_keys, cfg->max_string,
		cfg->max_values };
	if ((rt->sources = calloc(cfg->nsources ? cfg->nsources : 1, sizeof(*rt->sources))) == NULL)
		goto fail;
	for (; ready < cfg->nsources; ready++) {
		const struct hr_source_cfg *src = &cfg->sources[ready];
		struct hr_error e;

		if ((rc = source_secrets(cfg, src, &rt->sources[ready].secrets, &e)) != HR_OK) {
			hr_log_hold_error(err, every, &e);
			if (every == NULL)
				goto fail;
			continue; /* -t: said, and on to the next source */
		}
		if ((rt->sources[ready].counters = source_counters(src, prev)) == NULL) {
			rc = hr_error_set(err, HR_ENOMEM, src->name, "out of memory");
			ready++; /* its secrets are set up */
			goto fail;
		}
		warn_ignored_dedup(src);
	}
	if ((rc = load_tokens(cfg, &rt->api_token, &rt->api_read_token, every, err)) != HR_OK)
		goto fail;
	if (every != NULL && *every > nerr) {
		rc = HR_EINVAL; /* a source's secret failed: held in `err` */
		goto fail;
	}
	*out = rt;
	return HR_OK;
fail:
	/* Only the sources set up so far own secrets and counters. */
	for (size_t i = 0; i < ready; i++)
		source_state_clear(&rt->sources[i]);
	free(rt->sources);
	rt->sources = NULL;
	runtime_free(rt);
	return rc;
}

struct hr_runtime *
hr_runtime_ref(struct hr_runtime *rt)
{
	atomic_fetch_add(&rt->refs, 1);
	return rt;
}

void
hr_runtime_release(struct hr_runtime *rt)
{
	if (rt != NULL && atomic_fetch_sub(&rt->refs, 1) == 1)
		runtime_free(rt);
}

struct hr_source_state *
hr_runtime_source_state(struct hr_runtime *rt, const struct hr_source_cfg *src)
{
	return &rt->sources[src - rt->cfg->sources];
}

struct hr_runtime *
hr_app_runtime(struct hr_app *app)
{
	struct hr_runtime *rt;

	pthread_mutex_lock(&app->rt_mu);
	rt = hr_runtime_ref(app->rt);
	pthread_mutex_unlock(&app->rt_mu);
	return rt;
}

bool
hr_app_runtime_is_current(struct hr_app *app, const struct hr_runtime *rt)
{
	bool current;

	pthread_mutex_lock(&app->rt_mu);
	current = app->rt == rt;
	pthread_mutex_unlock(&app->rt_mu);
	return current;
}

void
hr_app_swap_runtime(struct hr_app *app, struct hr_runtime *rt)
{
	struct hr_runtime *old;

	pthread_mutex_lock(&app->rt_mu);
	old = app->rt;
	app->rt = rt;
	pthread_mutex_unlock(&app->rt_mu);
	/* Once in force, and not before: a reload refused later leaves them as they were. */
	for (size_t i = 0; i < rt->cfg->nsources; i++)
		hr_bucket_reconfigure(&rt->sources[i].counters->bucket, rt->cfg->sources[i].rate,
		    rt->cfg->sources[i].burst, hr_time_mono_us());
	hr_runtime_release(old);
}

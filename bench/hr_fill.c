/*
 * hr_fill - fill a hookrelay database through the store API, for bench/scale.
 *
 * Writes --events synthetic events into --db (created if missing) the way
 * the daemon does: each body is built from a tests/payloads file with fresh
 * correlation ids, goes through hr_event_parse() (so every one validates as
 * its kind), and is queued as an event write (hr_store_put_event) with
 * --in-flight writes outstanding, so the writer group-commits them (WAL,
 * synchronous=FULL) as it would under load. Events come as sessions, which is how providers send
 * them: a Tavus conversation (replica_joined, perception, shutdown,
 * transcription_ready, recording_ready, sometimes a post-call action and an
 * objective), a Tavus video or replica training, a PailFlow session, an
 * AgentHuman session (created, started, ended). Sources are `tavus`,
 * `pailflow` and `agenthuman`. received_at runs evenly from --from to --to;
 * events younger than the dedup window get the dedup key the daemon's
 * `dedup = auto` would give them (older keys would already be pruned).
 *
 * Prints one JSON object on stdout when done; progress goes to stderr.
 *
 * usage: hr_fill --db PATH --payloads DIR [--events N] [--from UNIX_S] [--to UNIX_S]
 *                [--seed N] [--batch-max N] [--in-flight N] [--dedup-window-days D]
 *                [--no-dedup] [--quiet]
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/cfg.h"
#include "hr/dedup.h"
#include "hr/event.h"
#include "hr/log.h"
#include "hr/store.h"
#include "hr/store_sqlite.h"
#include "hr/timefmt.h"

/* ---- payload templates ---- */

enum tpl {
	T_REPLICA_JOINED,
	T_PAL_JOINED,
	T_PERCEPTION,
	T_PERCEPTION_UNAVAILABLE,
	T_SHUTDOWN,
	T_TRANSCRIPT,
	T_TRANSCRIPT_EXT,
	T_RECORDING,
	T_RECORDING_URI,
	T_RECORDING_FAILED,
	T_POST_CALL,
	T_OBJECTIVE,
	T_VIDEO_OK,
	T_VIDEO_ERR,
	T_REPLICA_OK,
	T_REPLICA_ERR,
	T_PF_COMPLETE,
	T_PF_INSIGHTS_ERR,
	T_PF_JOIN_FAILED,
	T_AH_CREATED,
	T_AH_STARTED,
	T_AH_ENDED,
	T_COUNT
};

static const char *const tpl_files[T_COUNT] = {
	[T_REPLICA_JOINED] = "tavus.conversation.system.replica_joined.json",
	[T_PAL_JOINED] = "tavus.conversation.system.pal_joined.json",
	[T_PERCEPTION] = "tavus.conversation.application.perception_analysis.json",
	[T_PERCEPTION_UNAVAILABLE] = "tavus.conversation.application.perception_unavailable.json",
	[T_SHUTDOWN] = "tavus.conversation.system.shutdown.json",
	[T_TRANSCRIPT] = "tavus.conversation.application.transcription_ready.json",
	[T_TRANSCRIPT_EXT] = "tavus.conversation.application.transcription_ready.extended.json",
	[T_RECORDING] = "tavus.conversation.application.recording_ready.json",
	[T_RECORDING_URI] = "tavus.conversation.application.recording_ready.storage_uri.json",
	[T_RECORDING_FAILED] = "tavus.conversation.application.recording_copy_failed.json",
	[T_POST_CALL] = "tavus.conversation.application.post_call_action_executed.json",
	[T_OBJECTIVE] = "tavus.objective.completed.json",
	[T_VIDEO_OK] = "tavus.video.completed.json",
	[T_VIDEO_ERR] = "tavus.video.error.json",
	[T_REPLICA_OK] = "tavus.replica.completed.json",
	[T_REPLICA_ERR] = "tavus.replica.error.json",
	[T_PF_COMPLETE] = "botplatform.session_complete.json",
	[T_PF_INSIGHTS_ERR] = "botplatform.session_complete.insights_error.json",
	[T_PF_JOIN_FAILED] = "botplatform.bot_join_failed.json",
	[T_AH_CREATED] = "agenthuman.session.created.json",
	[T_AH_STARTED] = "agenthuman.session.started.json",
	[T_AH_ENDED] = "agenthuman.session.ended.json",
};

static json_t *templates[T_COUNT];

/* ---- state ---- */

struct slot {
	struct hr_event_write w;
	struct hr_store_op op;
	struct hr_event ev;
	char *body;
	char headers[160];
	char dedup_key[HR_DEDUP_KEY_LEN];
	char id[40];
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight;
	uint64_t stored, duplicates, failed;
} g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0 };

static uint64_t rng_state;

static uint64_t
rng(void)
{ /* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static unsigned
pct(void)
{
	return (unsigned)(rng() % 100);
}

static void
done(struct hr_store_op *op, void *arg)
{
	struct slot *s = arg;

	pthread_mutex_lock(&g.mu);
	if (op->res.status != HR_OK)
		g.failed++;
	else if (op->res.duplicate)
		g.duplicates++;
	else
		g.stored++;
	g.inflight--;
	pthread_cond_signal(&g.cv);
	pthread_mutex_unlock(&g.mu);
	hr_event_clear(&s->ev);
	free(s->body);
	free(s);
}

static json_t *
load_template(const char *dir, const char *file)
{
	char path[4096];
	json_error_t je;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((j = json_load_file(path, 0, &je)) == NULL) {
		fprintf(stderr, "hr_fill: %s: %s (line %d)\n", path, je.text, je.line);
		exit(1);
	}
	return j;
}

static void
set_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, json_string(v));
}

/* ---- what one session looks like ---- */

enum scenario { S_CONVERSATION, S_VIDEO, S_REPLICA, S_PAILFLOW, S_AGENTHUMAN };

struct session {
	enum scenario sc;
	char key[64];   /* the correlation key */
	char extra[64]; /* a second id (workflow thread, room id) */
	uint64_t n;     /* session number, for varied content */
	enum tpl steps[8];
	size_t nsteps, next;
};

static void
plan_session(struct session *s, uint32_t nonce, uint64_t n)
{
	unsigned r = pct();

	memset(s, 0, sizeof(*s));
	s->n = n;
	/* Half the sessions are Tavus conversations; weights are a guess at a typical mix. */
	s->sc = r < 50 ? S_CONVERSATION
	    : r < 60   ? S_VIDEO
	    : r < 63   ? S_REPLICA
	    : r < 80   ? S_PAILFLOW
	               : S_AGENTHUMAN;
	switch (s->sc) {
	case S_CONVERSATION:
		snprintf(s->key, sizeof(s->key), "c%07x%08llx", nonce & 0xfffffff,
		    (unsigned long long)n);
		s->steps[s->nsteps++] = pct() < 10 ? T_PAL_JOINED : T_REPLICA_JOINED;
		if (pct() < 90)
			s->steps[s->nsteps++] =
			    pct() < 90 ? T_PERCEPTION : T_PERCEPTION_UNAVAILABLE;
		s->steps[s->nsteps++] = T_SHUTDOWN;
		s->steps[s->nsteps++] = pct() < 70 ? T_TRANSCRIPT : T_TRANSCRIPT_EXT;
		r = pct();
		s->steps[s->nsteps++] = r < 65 ? T_RECORDING
		    : r < 95                   ? T_RECORDING_URI
		                               : T_RECORDING_FAILED;
		if (pct() < 30)
			s->steps[s->nsteps++] = T_POST_CALL;
		if (pct() < 30)
			s->steps[s->nsteps++] = T_OBJECTIVE;
		break;
	case S_VIDEO:
		snprintf(
		    s->key, sizeof(s->key), "%03x%07llx", nonce & 0xfff, (unsigned long long)n);
		s->steps[s->nsteps++] = pct() < 85 ? T_VIDEO_OK : T_VIDEO_ERR;
		break;
	case S_REPLICA:
		snprintf(
		    s->key, sizeof(s->key), "r%03x%08llx", nonce & 0xfff, (unsigned long long)n);
		s->steps[s->nsteps++] = pct() < 80 ? T_REPLICA_OK : T_REPLICA_ERR;
		break;
	case S_PAILFLOW:
		snprintf(s->key, sizeof(s->key), "interview-%07x%08llx", nonce & 0xfffffff,
		    (unsigned long long)n);
		snprintf(s->extra, sizeof(s->extra), "%08x-%04x-4%03x-8%03x-%012llx", nonce,
		    (unsigned)(rng() & 0xffff), (unsigned)(rng() & 0xfff),
		    (unsigned)(rng() & 0xfff), (unsigned long long)n);
		r = pct();
		s->steps[s->nsteps++] = r < 70 ? T_PF_COMPLETE
		    : r < 82                   ? T_PF_INSIGHTS_ERR
		                               : T_PF_JOIN_FAILED;
		break;
	case S_AGENTHUMAN:
		snprintf(s->key, sizeof(s->key), "sess_%07X%019llu", nonce & 0xfffffff,
		    (unsigned long long)n);
		s->steps[s->nsteps++] = T_AH_CREATED;
		s->steps[s->nsteps++] = T_AH_STARTED;
		s->steps[s->nsteps++] = T_AH_ENDED;
		break;
	}
}

static const char *
source_of(enum scenario sc)
{
	return sc == S_PAILFLOW ? "pailflow" : sc == S_AGENTHUMAN ? "agenthuman" : "tavus";
}

static const char *
agent_of(enum scenario sc)
{
	return sc == S_PAILFLOW  ? "python-httpx/0.27.2"
	    : sc == S_AGENTHUMAN ? "axios/1.7.7"
	                         : "python-requests/2.32.3";
}

/* The body of the session's next event, received at `us`; malloc'ed. */
static char *
build_body(struct session *s, enum tpl t, int64_t us)
{
	json_t *j = json_deep_copy(templates[t]);
	json_t *props = json_object_get(j, "properties");
	char ts[40], buf[256];
	char *text;

	hr_time_format(us, ts, sizeof(ts));
	switch (s->sc) {
	case S_CONVERSATION:
		set_str(j, "conversation_id", s->key);
		if (json_object_get(j, "timestamp") != NULL)
			set_str(j, "timestamp", ts);
		if (t == T_RECORDING || t == T_RECORDING_URI) {
			snprintf(buf, sizeof(buf), "%s/%lld.mp4", s->key, (long long)(us / 1000));
			set_str(props, "s3_key", buf);
			if (t == T_RECORDING_URI) {
				char uri[300];

				snprintf(uri, sizeof(uri), "s3://my-cvi-recordings/%s", buf);
				set_str(props, "storage_uri", uri);
			}
			json_object_set_new(
			    props, "duration", json_integer((json_int_t)(rng() % 3600)));
		}
		if (t == T_TRANSCRIPT || t == T_TRANSCRIPT_EXT) {
			/* A different conversation: the user says something else. */
			json_t *turns = json_object_get(props, "transcript");
			json_t *turn = json_array_get(turns, 1);

			snprintf(buf, sizeof(buf),
			    "Hi, this is caller %llu. I'd like to talk about %s.",
			    (unsigned long long)s->n,
			    (const char *[]){ "NLP", "computer vision", "pricing",
			        "my last project", "the interview" }[rng() % 5]);
			if (turn != NULL)
				set_str(turn, "content", buf);
		}
		break;
	case S_VIDEO:
		set_str(j, "video_id", s->key);
		snprintf(buf, sizeof(buf), "https://videos.tavus.io/video/%s", s->key);
		set_str(j, "hosted_url", buf);
		snprintf(buf, sizeof(buf), "replica_id: r79e1c033f - video: %s", s->key);
		set_str(j, "video_name", buf);
		break;
	case S_REPLICA:
		set_str(j, "replica_id", s->key);
		break;
	case S_PAILFLOW:
		if (t == T_PF_JOIN_FAILED) {
			snprintf(buf, sizeof(buf), "https://lunchpaillabs.daily.co/%s", s->key);
			set_str(j, "room_url", buf);
			set_str(j, "workflow_thread_id", s->extra);
			set_str(j, "timestamp", ts);
		} else {
			set_str(j, "room_name", s->key);
			if (t == T_PF_COMPLETE)
				set_str(j, "room_id", s->extra);
			json_object_set_new(
			    j, "duration_seconds", json_integer((json_int_t)(60 + rng() % 3000)));
		}
		break;
	case S_AGENTHUMAN:
		set_str(j, "session_id", s->key);
		set_str(j, "created_at", ts);
		if (t != T_AH_CREATED)
			set_str(j, "started_at", ts);
		if (t == T_AH_ENDED)
			set_str(j, "ended_at", ts);
		break;
	}
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL) {
		fprintf(stderr, "hr_fill: out of memory\n");
		exit(1);
	}
	return text;
}

static const char *
no_header(void *arg, const char *name)
{
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hr_fill --db PATH --payloads DIR [--events N] [--from UNIX_S] [--to UNIX_S]\n"
	    "               [--seed N] [--batch-max N] [--in-flight N] [--dedup-window-days D]\n"
	    "               [--no-dedup] [--quiet]\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "payloads", required_argument, NULL, 'p' },
		{ "events", required_argument, NULL, 'n' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "batch-max", required_argument, NULL, 'b' },
		{ "in-flight", required_argument, NULL, 'i' },
		{ "dedup-window-days", required_argument, NULL, 'w' },
		{ "no-dedup", no_argument, NULL, 'D' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	const char *db = NULL, *payloads = NULL;
	uint64_t events = 100000, seed = 1;
	int64_t now = hr_time_now_us(), from_us = now - 30LL * 86400 * 1000000, to_us = now;
	unsigned batch_max = 1000, in_flight = 8000;
	double window_days = 7;
	bool dedup = true, quiet = false;
	struct hr_json_limits lim = { 64, 10000, 4u << 20, 100000 };
	struct hr_source_cfg src_cfg;
	struct hr_store *store = NULL;
	struct hr_error err = { .field = "" };
	struct hr_store_stats st;
	struct session sess;
	uint64_t body_bytes = 0, sessions = 0, dedup_keys = 0, next_report;
	int64_t t0, t1;
	uint32_t nonce;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			db = optarg;
			break;
		case 'p':
			payloads = optarg;
			break;
		case 'n':
			events = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			from_us = (int64_t)(strtod(optarg, NULL) * 1e6);
			break;
		case 't':
			to_us = (int64_t)(strtod(optarg, NULL) * 1e6);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			batch_max = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			in_flight = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			window_days = strtod(optarg, NULL);
			break;
		case 'D':
			dedup = false;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			usage();
		}
	}
	if (db == NULL || payloads == NULL || optind != argc || batch_max == 0 || in_flight == 0 ||
	    to_us < from_us)
		usage();
	hr_log_set_level(HR_LOG_WARNING);
	for (int t = 0; t < T_COUNT; t++)
		templates[t] = load_template(payloads, tpl_files[t]);
	/* Keys unique across runs into one database: a random nonce in every id. */
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		nonce = (uint32_t)(ts.tv_nsec ^ (ts.tv_sec << 7) ^ (seed << 16));
	}
	memset(&src_cfg, 0, sizeof(src_cfg));
	snprintf(src_cfg.dedup, sizeof(src_cfg.dedup), "auto");

	struct hr_store_opts so = { .engine = &hr_store_sqlite,
		.path = db,
		.batch_max = batch_max,
		.queue_max = in_flight + 16,
		.rejections_max = 10000,
		.readers = 1 };
	if (hr_store_open(&so, &store, &err) != HR_OK) {
		fprintf(stderr, "hr_fill: %s: %s\n", db, err.msg);
		return 1;
	}

	t0 = hr_time_mono_us();
	next_report = events / 10;
	memset(&sess, 0, sizeof(sess));
	for (uint64_t i = 0; i < events; i++) {
		int64_t us = from_us +
		    (int64_t)((double)(to_us - from_us) * (double)i /
		        (double)(events > 1 ? events - 1 : 1));
		struct slot *s;
		struct hr_parse_error pe;
		enum tpl t;
		int rc;

		if (sess.next == sess.nsteps) {
			plan_session(&sess, nonce, sessions++);
		}
		t = sess.steps[sess.next++];
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			fprintf(stderr, "hr_fill: out of memory\n");
			return 1;
		}
		s->body = build_body(&sess, t, us);
		s->w.req.body_len = strlen(s->body);
		if (hr_event_parse(
		        s->body, s->w.req.body_len, HR_PROVIDER_AUTO, &lim, &s->ev, &pe) != HR_OK) {
			fprintf(stderr, "hr_fill: generated %s body does not validate: %s %s%s%s\n",
			    tpl_files[t], pe.detail, pe.nerrors ? pe.errors[0].pointer : "",
			    pe.nerrors ? " " : "", pe.nerrors ? pe.errors[0].detail : "");
			return 1;
		}
		body_bytes += s->w.req.body_len;
		hr_store_new_id("evt", s->id, sizeof(s->id));
		s->w.req.id = s->id;
		snprintf(s->headers, sizeof(s->headers),
		    "{\"content-length\":\"%zu\",\"content-type\":\"application/json\","
		    "\"user-agent\":\"%s\"}",
		    s->w.req.body_len, agent_of(sess.sc));
		s->w.req.received_us = us;
		s->w.req.source = source_of(sess.sc);
		s->w.req.remote_addr = "198.51.100.23";
		s->w.req.body = s->body;
		s->w.req.headers_json = s->headers;
		s->w.ev = &s->ev;
		if (dedup && us + (int64_t)(window_days * 86400e6) > now &&
		    hr_dedup_key(&src_cfg, &s->ev, s->body, s->w.req.body_len, NULL, no_header,
		        NULL, NULL, s->dedup_key)) {
			s->w.dedup_key = s->dedup_key;
			s->w.dedup_window_us = (int64_t)(window_days * 86400e6);
			dedup_keys++;
		}
		s->op.done = done;
		s->op.arg = s;

		pthread_mutex_lock(&g.mu);
		while (g.inflight >= in_flight)
			pthread_cond_wait(&g.cv, &g.mu);
		g.inflight++;
		pthread_mutex_unlock(&g.mu);
		while ((rc = hr_store_put_event(store, &s->w, &s->op)) == HR_EBUSY) {
			struct timespec pause = { 0, 1000000 };

			nanosleep(&pause, NULL);
		}
		if (rc != HR_OK) {
			fprintf(stderr, "hr_fill: submit: %s\n", hr_status_str(rc));
			return 1;
		}
		if (!quiet && next_report > 0 && i + 1 >= next_report) {
			double el = (double)(hr_time_mono_us() - t0) / 1e6;

			fprintf(stderr, "hr_fill: %llu/%llu events, %.0f/s\n",
			    (unsigned long long)(i + 1), (unsigned long long)events,
			    (double)(i + 1) / (el > 0 ? el : 1));
			next_report += events / 10;
		}
	}
	pthread_mutex_lock(&g.mu);
	while (g.inflight > 0)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	t1 = hr_time_mono_us();
	hr_store_stats(store, &st);
	hr_store_close(store); /* the last connection: SQLite checkpoints and removes the WAL */
	for (int t = 0; t < T_COUNT; t++)
		json_decref(templates[t]);

	printf("{\"events\":%llu,\"stored\":%llu,\"duplicates\":%llu,\"failed\":%llu,"
	       "\"sessions\":%llu,\"dedup_keys\":%llu,\"body_bytes\":%llu,\"seconds\":%.3f,"
	       "\"batches\":%llu,\"mean_batch\":%.1f}\n",
	    (unsigned long long)events, (unsigned long long)g.stored,
	    (unsigned long long)g.duplicates, (unsigned long long)g.failed,
	    (unsigned long long)sessions, (unsigned long long)dedup_keys,
	    (unsigned long long)body_bytes, (double)(t1 - t0) / 1e6, (unsigned long long)st.batches,
	    st.batches ? (double)st.jobs / (double)st.batches : 0.0);
	return g.failed || g.duplicates ? 1 : 0;
}

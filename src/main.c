/*
 * main.c - command line, configuration, start/stop order, signals.
 *
 * Start: config, store (and its writer), forwarder, then the listener, so
 * nothing is accepted before it can be stored; then READY=1 to systemd.
 * SIGHUP: read the file again and swap the whole configuration in, or keep
 * the old one if the new one has any error. SIGTERM/SIGINT: refuse new
 * connections, let requests in flight finish and commit, stop the listener,
 * the forwarder, and drain and close the store. Signals are taken
 * synchronously with sigtimedwait() in this thread, which also feeds the
 * systemd watchdog; every other thread has them blocked.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "hr/api.h"
#include "hr/app.h"
#include "hr/cfg.h"
#include "hr/forward.h"
#include "hr/http.h"
#include "hr/hooks.h"
#include "hr/jarena.h"
#include "hr/log.h"
#include "hr/outbox.h"
#include "hr/store.h"
#include "hr/store_pg.h"
#include "hr/store_sqlite.h"
#include "hr/timefmt.h"
#include "hr/ui.h"

#define DEFAULT_CONFIG "/etc/hookrelay/hookrelay.conf"
#define TICK_MS        1000 /* status, readiness and watchdog checks, unless the watchdog asks faster */

struct options {
	const char *config;
	const char *listen;
	const char *db;
	const char *log_level;
	bool check_only;
	const char *backup_to; /* `hookrelay backup FILE` */
	bool migrate;          /* `hookrelay migrate --from sqlite:PATH --to postgresql:URL` */
	const char *from, *to;
	bool socket_passed; /* systemd passed the listening socket (socket activation) */
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: hookrelay [-c FILE] [--listen ADDR:PORT] [--db PATH] [--log-level LEVEL]\n"
	    "                 [-t|--check-config] [--version] [--help] [--config-reference]\n"
	    "       hookrelay [-c FILE] [--db PATH] backup FILE\n"
	    "       hookrelay migrate --from sqlite:PATH --to postgresql:URL\n"
	    "\n"
	    "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
	    "      --listen ADDR:PORT  override [server] listen; port 0 picks a free port\n"
	    "      --db PATH         override [storage] path\n"
	    "      --log-level LEVEL override [log] level: error, warning, info, debug\n"
	    "  -t, --check-config    read the configuration, report errors, exit\n"
	    "      --version         print the version\n"
	    "      --config-reference[=man]  print docs/configuration.md (or the KEYS\n"
	    "                        section of hookrelay.conf(5) in scdoc)\n"
	    "  backup FILE           copy the database, consistent, while the daemon serves\n"
	    "  migrate               copy a SQLite database (daemon stopped) into PostgreSQL;\n"
	    "                        resumable; prints counts and checksums of both sides\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration; SIGTERM and SIGINT stop cleanly.\n"
	    "Exit status: 0 on a clean stop, 78 for a bad configuration, 64 for bad usage,\n"
	    "1 otherwise.\n\n");
	hr_cfg_print_help(out);
}

/* A usage error: what was wrong, and where the help is (the whole help, key
 * table included, buried the one line that mattered). */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hookrelay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'hookrelay --help'.\n", stderr);
	return 64;
}

/* Returns -1 to go on, else the exit status. */
/* --config-reference[=markdown|man]: 0, or 64 for another format. */
static int
print_reference(const char *format)
{
	if (format != NULL && strcmp(format, "man") == 0)
		hr_cfg_print_man_keys(stdout);
	else if (format == NULL || strcmp(format, "markdown") == 0)
		hr_cfg_print_markdown(stdout);
	else
		return usage_error("--config-reference=%s: expected markdown or man", format);
	return 0;
}

/* What follows the options: nothing (run the daemon), `backup FILE` or `migrate`
 * (which alone takes --from and --to). -1 to go on, else the exit status. */
static int
parse_command(int argc, char **argv, struct options *o)
{
	/* -t reads the configuration and exits: with a command it wrote the backup
	 * (or ran the migration) as if -t were not there (review R42SU). */
	if (argc >= 1 && o->check_only)
		return usage_error(
		    "-t checks the configuration only: it takes no command (%s)", argv[0]);
	if (argc == 1 && strcmp(argv[0], "migrate") == 0) {
		o->migrate = true;
		return -1;
	}
	if (argc == 2 && strcmp(argv[0], "backup") == 0 && o->from == NULL && o->to == NULL) {
		o->backup_to = argv[1];
		return -1;
	}
	if (argc >= 1 && strcmp(argv[0], "backup") == 0)
		return usage_error("backup takes one FILE, the copy to write");
	if (argc >= 1 && strcmp(argv[0], "migrate") == 0)
		return usage_error(
		    "migrate takes no operand: --from sqlite:PATH --to postgresql:URL");
	if (argc != 0)
		return usage_error("unknown command \"%s\" (backup, migrate)", argv[0]);
	if (o->from != NULL || o->to != NULL)
		return usage_error("--from and --to go with migrate");
	return -1;
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_LISTEN = 256, OPT_DB, OPT_VERSION, OPT_REF, OPT_LOGLEVEL, OPT_FROM, OPT_TO };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "db", required_argument, NULL, OPT_DB },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "config-reference", optional_argument, NULL, OPT_REF },
		{ "help", no_argument, NULL, 'h' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->check_only = true;
			break;
		case OPT_LISTEN: /* checked as the file's is: -t said ok, a start exited 1 */
			if (hr_cfg_parse_listen(optarg) != HR_OK)
				return usage_error(
				    "--listen %s: expected a numeric ADDR:PORT", optarg);
			o->listen = optarg;
			break;
		case OPT_DB:
			o->db = optarg;
			break;
		case OPT_LOGLEVEL:
			if (hr_log_level_parse(optarg) < 0)
				return usage_error(
				    "--log-level %s: expected error, warning, info or debug",
				    optarg);
			o->log_level = optarg;
			break;
		case OPT_FROM:
			o->from = optarg;
			break;
		case OPT_TO:
			o->to = optarg;
			break;
		case OPT_VERSION:
			printf("hookrelay %s\n", HR_VERSION_STRING);
			return 0;
		case OPT_REF:
			return print_reference(optarg);
		case 'h':
			usage(stdout);
			return 0;
		default: /* getopt said what */
			fputs("Try 'hookrelay --help'.\n", stderr);
			return 64;
		}
	}
	return parse_command(argc - optind, argv + optind, o);
}

/* Read the config file and apply command line overrides; NULL with `err` set on
 * error. `start`: the configuration the daemon started with, for a reload. */
static struct hr_cfg *
read_config(const struct options *o, const struct hr_cfg *start, struct hr_error *err)
{
	struct hr_cfg *cfg = NULL;
	const char *path = o->config ? o->config : DEFAULT_CONFIG;
	/* The address the daemon listens on, for the warnings that depend on it: at a
	 * reload the one it started on, as `listen` waits for a restart (review R42CF). */
	const char *listening = o->listen ? o->listen
	    : o->socket_passed            ? ""
	    : start != NULL               ? start->listen
	                                  : NULL;
	int level;

	/* A reload must not wait in open(2) for a FIFO's writer: the main thread
	 * holds SIGTERM and the watchdog's pings (review R42CF). */
	if (hr_cfg_load_listening(path, listening, start != NULL, &cfg, err) != HR_OK)
		return NULL;
	/* as [storage] path = "" is (review R42CF: -t passed, the start failed) */
	if (o->db != NULL && o->db[0] == '\0') {
		hr_error_set(err, HR_EINVAL, "--db", "must not be empty");
		hr_cfg_free(cfg);
		return NULL;
	}
	if (o->listen != NULL)
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", o->listen);
	if (o->db != NULL)
		snprintf(cfg->db_path, sizeof(cfg->db_path), "%s", o->db);
	if (o->log_level != NULL) {
		if ((level = hr_log_level_parse(o->log_level)) < 0) {
			hr_error_set(
			    err, HR_EINVAL, "--log-level", "unknown level %s", o->log_level);
			hr_cfg_free(cfg);
			return NULL;
		}
		cfg->log_level = level;
	}
	return cfg;
}

/* `start`: as read_config()'s. */
static struct hr_runtime *
load_runtime(const struct options *o, const struct hr_cfg *start, const struct hr_runtime *prev,
    struct hr_error *err)
{
	struct hr_cfg *cfg = read_config(o, start, err);
	struct hr_runtime *rt = NULL;
	size_t nerr = 0, *every = o->check_only ? &nerr : NULL;

	if (cfg == NULL)
		return NULL;
	/* An empty or half-written file (configuration management mid-write, a
	 * truncated copy) must not take every endpoint off the air: refused. */
	if (cfg->nsources == 0) {
		hr_error_set(err, HR_EINVAL, cfg->file,
		    "no [source NAME] section: every POST /hooks/... would answer 404");
		hr_cfg_free(cfg);
		return NULL;
	}
	/* Destination secrets as start and -t check them: a reload that cannot
	 * read one, or finds it malformed, is refused whole, never half applied
	 * (a destination with its new URL and its old keys, or not started). -t
	 * says every secret file that fails, where a start stops at the first. */
	if (hr_forwarder_check(cfg->destinations, cfg->ndestinations, every, err) != HR_OK &&
	    every == NULL) {
		hr_cfg_free(cfg);
		return NULL;
	}
	if (hr_runtime_new(cfg, prev, every, &rt, err) != HR_OK)
		return NULL;
	if (nerr > 0) { /* -t: a destination's failed, the sources' loaded */
		hr_runtime_release(rt);
		return NULL;
	}
	return rt;
}

/* Settings the listener and the store took at start; a reload cannot change them.
 * `activated`: the listening socket is systemd's, and a restart keeps it too. */
static void
warn_restart_only(const struct hr_cfg *was, const struct hr_cfg *now, bool activated)
{
	static const struct {
		const char *key;
		size_t off, len;
		bool text; /* a string: what follows its NUL is whatever was there before */
	} fixed[] = {
#define FIXED(key, m) { key, offsetof(struct hr_cfg, m), sizeof(((struct hr_cfg *)0)->m), false }
#define FIXED_TEXT(key, m)                                                                         \
	{                                                                                          \
		key, offsetof(struct hr_cfg, m), 0, true                                           \
	}
		FIXED_TEXT("[server] listen", listen),
		FIXED("[server] threads", threads),
		FIXED("[server] max_connections", max_connections),
		FIXED("[server] max_connections_per_ip", max_connections_per_ip),
		FIXED("[server] request_timeout", request_timeout_ms),
		FIXED("[server] header_timeout", header_timeout_ms),
		FIXED("[storage] backend", db_backend),
		FIXED_TEXT("[storage] path", db_path),
		FIXED_TEXT("[storage] url", db_url),
		FIXED("[storage] pool", db_pool),
		FIXED("[storage] lease", lease_ms),
		FIXED("[storage] statement_timeout", statement_timeout_ms),
		FIXED("[storage] batch_max", batch_max),
		FIXED("[storage] cache_size", cache_size),
		FIXED("[storage] queue_max", queue_max),
		FIXED("[storage] rejections_max", rejections_max),
#undef FIXED
#undef FIXED_TEXT
	};

	for (size_t i = 0; i < HR_ARRAY_LEN(fixed); i++) {
		const char *a = (const char *)was + fixed[i].off,
		           *b = (const char *)now + fixed[i].off;

		if (fixed[i].text ? strcmp(a, b) == 0 : memcmp(a, b, fixed[i].len) == 0)
			continue;
		if (activated && fixed[i].off == offsetof(struct hr_cfg, listen))
			log_warnx("reload: [server] listen changed, but the listening socket is "
			          "systemd's: change ListenStream= in hookrelay.socket instead");
		else
			log_warnx("reload: %s changed; it takes effect at the next restart",
			    fixed[i].key);
	}
	/* Checked per request, but the connection memory was sized for the start's:
	 * a larger request gets libmicrohttpd's own 431 (an HTML page). */
	if (now->max_header_size > was->max_header_size)
		log_warnx("reload: [server] max_header_size raised; the connection memory, sized "
		          "at start, still ends a request line and headers at about %zu bytes "
		          "until the next restart (a lower limit applies now)",
		    hr_http_conn_memory(was->max_header_size));
}

/* What the watchdog last said of one part (main thread only): said when it stops
 * responding, again every LIVENESS_REPEAT_US while it does not, and when it is back. */
#define LIVENESS_REPEAT_US (INT64_C(60) * 1000000)
struct liveness {
	int64_t down_since_us, said_us; /* monotonic; 0: responding */
};

struct daemon {
	const struct options *opts;
	struct hr_app app;
	struct hr_http *http;
	struct hr_cfg start_cfg; /* a copy of the scalars in force (its lists are not ours) */
	size_t max_size;         /* [storage] max_size in force: a reload may change it */
	bool socket_activated;   /* listening on systemd's socket, not [server] listen */
	int64_t watchdog_us;     /* 0: no systemd watchdog */
	struct liveness writer_seen, forwarder_seen;
	int64_t tick_us; /* the watchdog's last tick (monotonic) */
	bool disk_low;   /* under [storage] min_free_space at the last tick */
};

/*
 * [source] retain, [storage] max_size and prune_interval: the store's pruning
 * passes. `max_size` is the running store's cap: a file already set up for
 * the next restart's backend (PostgreSQL, where max_size is refused) must not
 * take the cap off the SQLite file in use.
 */
static int
set_retention(struct hr_store *store, const struct hr_cfg *cfg, size_t max_size)
{
	struct hr_retention_rule *rules = calloc(cfg->nsources ? cfg->nsources : 1, sizeof(*rules));
	struct hr_retention r = { .interval_us = cfg->prune_interval_ms * 1000,
		.max_size = (int64_t)max_size,
		.rules = rules,
		.nrules = cfg->nsources };
	int rc = HR_ENOMEM;

	for (size_t i = 0; rules != NULL && i < cfg->nsources; i++)
		rules[i] = (struct hr_retention_rule){ cfg->sources[i].name,
			cfg->sources[i].retain_ms * 1000 };
	if (rules != NULL)
		rc = hr_store_set_retention(store, &r);
	free(rules);
	if (rc != HR_OK)
		log_errx("storage: pruning cannot be set up: %s", hr_status_str(rc));
	return rc;
}

/*
 * STATUS= for systemctl status: the counts, and a refused reload. With READY=1
 * (`extra`) too: systemctl status said "starting: opening the database" until
 * the first tick, 10 s after the start, and a refused reload went unsaid as
 * long (an operations review).
 */
static void
notify_status(struct daemon *d, const char *extra)
{
	struct hr_store_stats st;

	hr_store_stats(d->app.store, &st);
	sd_notifyf(0, "%sSTATUS=%lu accepted, %lu rejected, %lu failed; %u queued for the writer%s",
	    extra, atomic_load(&d->app.accepted), atomic_load(&d->app.rejected),
	    atomic_load(&d->app.failed), st.queued,
	    atomic_load(&d->app.metrics.reload_ok) ? ""
	                                           : "; the last reload was refused (see the log)");
}

/*
 * On PostgreSQL a claim must outlive its attempt. The file's own check holds
 * its timeouts against its own lease, but a reload applies new timeouts at
 * once and the lease only at the next restart: hold them against the lease
 * in force, or claims expire mid-attempt and another node sends again.
 */
static bool
lease_outlives_timeouts(
    const struct hr_cfg *running, const struct hr_cfg *cfg, struct hr_error *err)
{
	ssize_t i;

	if (running->db_backend != HR_CFG_BACKEND_POSTGRESQL ||
	    (i = hr_cfg_timeout_over_lease(cfg, running->lease_ms)) < 0)
		return true;
	hr_error_set(err, HR_EINVAL, cfg->file,
	    "[destination %s] timeout is over half the [storage] lease in force "
	    "(%lld ms; a new lease waits for a restart)",
	    cfg->destinations[i].name, (long long)running->lease_ms);
	return false;
}

static void
reload(struct daemon *d)
{
	struct hr_error err = { .field = "" };
	struct hr_runtime *cur = hr_app_runtime(&d->app);
	struct hr_runtime *rt;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)hr_time_mono_us());
	rt = load_runtime(d->opts, &d->start_cfg, cur, &err);
	/* The forwarder reads the destination secrets it will sign with first: a file
	 * changed since load_runtime() checked it refuses the reload, never half of it. */
	if (rt != NULL &&
	    (!lease_outlives_timeouts(&d->start_cfg, rt->cfg, &err) ||
	        hr_forwarder_reload(d->app.forwarder, rt->cfg->destinations, rt->cfg->ndestinations,
	            &err) != HR_OK)) {
		hr_runtime_release(rt);
		rt = NULL;
	}
	atomic_store(&d->app.metrics.reload_ok, rt != NULL);
	if (rt == NULL) {
		log_errx(
		    "reload refused, the running configuration stays: %s: %s", err.field, err.msg);
	} else {
		atomic_store(&d->app.metrics.reload_ok_us, hr_time_now_us());
		warn_restart_only(&d->start_cfg, rt->cfg, d->socket_activated);
		hr_log_set_level((enum hr_log_level)rt->cfg->log_level);
		/* The cap stays as it is while the file is for another backend (next restart). */
		if (rt->cfg->db_backend == d->start_cfg.db_backend)
			d->max_size = rt->cfg->max_size;
		(void)set_retention(
		    d->app.store, rt->cfg, d->max_size); /* on failure the old stays */
		hr_app_swap_runtime(&d->app, rt);
		log_info("reload: %zu source(s), %zu destination(s)", rt->cfg->nsources,
		    rt->cfg->ndestinations);
	}
	hr_runtime_release(cur);
	notify_status(d, "READY=1\n");
}

/* The tick used to log a part that did not respond at every tick: once a second
 * for as long as a stuck writer lasted, without systemd's watchdog to end it. */
static void
watch_part(struct liveness *l, const char *part, bool ok)
{
	int64_t now = hr_time_mono_us();

	if (ok) {
		if (l->down_since_us != 0)
			log_info("watchdog: %s responding again after %.1fs", part,
			    (double)(now - l->down_since_us) / 1e6);
		l->down_since_us = 0;
	} else if (l->down_since_us == 0) {
		l->down_since_us = l->said_us = now;
		log_errx("watchdog: %s not responding", part);
	} else if (now - l->said_us >= LIVENESS_REPEAT_US) {
		l->said_us = now;
		log_errx("watchdog: %s still not responding, %.0fs after it was first said", part,
		    (double)(now - l->down_since_us) / 1e6);
	}
}

/* The tick's period: TICK_MS, or a third of systemd's watchdog if that is
 * shorter. Not the watchdog's third alone: the tick also pings the writer and
 * looks at the disk, which /readyz reports, and under the shipped unit
 * (WatchdogSec=30s) readiness came back up to 10 s after writes did (a review). */
static int64_t
tick_period_us(const struct daemon *d)
{
	int64_t third = d->watchdog_us / 3;

	return d->watchdog_us > 0 && third < TICK_MS * 1000LL ? third : TICK_MS * 1000LL;
}

/*
 * Free space under [storage] min_free_space: /readyz says so whenever asked;
 * the log says when it begins and when it ends (looked at every tick: statvfs
 * costs microseconds). Past it, a full disk fails every write, and Tavus and
 * PailFlow do not retry what was answered 503.
 */
static void
watch_disk(struct daemon *d, const struct hr_cfg *cfg)
{
	size_t min = cfg->min_free_space;
	uint64_t free_bytes = 0;
	bool low = min > 0 && hr_store_disk_free(d->app.store, &free_bytes) == HR_OK &&
	    free_bytes != UINT64_MAX && free_bytes < min; /* MAX: PostgreSQL's own disk */

	if (low && !d->disk_low)
		log_warnx("store: %.1f MiB free on the database's file system, under [storage] "
		          "min_free_space (%.1f MiB): /readyz answers 503 (disk); free space or "
		          "move the database, before writes fail on a full disk",
		    (double)free_bytes / (1 << 20), (double)min / (1 << 20));
	else if (!low && d->disk_low)
		log_info(
		    "store: the database's file system has [storage] min_free_space free again");
	d->disk_low = low;
}

/*
 * The writer and the forwarder loop are alive: feed the watchdog. The writer is
 * alive when it answers a ping or finished a batch within half the limit: a ping
 * behind a full queue of slow commits is late, not a sign of a hung writer, and
 * a restart would only drop the connections waiting on it. (Whether writes
 * commit is readiness, /readyz: a restart does not mend a read-only disk.) The
 * ping is not waited for: signals are taken on this thread.
 */
static void
watchdog_tick(struct daemon *d)
{
	int64_t limit = d->watchdog_us > 0 ? d->watchdog_us : 30 * 1000000LL;
	bool writer_ok = hr_store_writer_turns(d->app.store, limit / 2);
	/* The idle forwarder loop turns at least once a second. */
	int64_t fwd_limit = limit / 2 > 2500000 ? limit / 2 : 2500000;
	bool forwarder_ok =
	    hr_time_mono_us() - hr_forwarder_last_loop_us(d->app.forwarder) < fwd_limit;

	/* A tick far later than its period: the whole process was stopped (SIGSTOP,
	 * a suspended VM), not one part, which the first tick after would call not
	 * responding (a false alarm in the log, and a ping left out). The parts are
	 * judged at the next tick, once they ran again. */
	int64_t mono = hr_time_mono_us(), gap = d->tick_us != 0 ? mono - d->tick_us : 0;

	d->tick_us = mono;
	notify_status(d, "");
	if (gap > 2 * tick_period_us(d)) {
		log_info("watchdog: the process did not run for %.1fs (stopped?); its parts are "
		         "judged at the next tick",
		    (double)gap / 1e6);
		sd_notify(0, "WATCHDOG=1");
		return;
	}
	if (writer_ok && forwarder_ok)
		sd_notify(0, "WATCHDOG=1");
	struct hr_runtime *rt = hr_app_runtime(&d->app);

	watch_disk(d, rt->cfg);
	hr_hooks_say_held(rt);
	hr_runtime_release(rt);
	watch_part(&d->writer_seen, "writer", writer_ok);
	watch_part(&d->forwarder_seen, "forwarder", forwarder_ok);
}

/*
 * Requests suspended for the writer or for the read threads (API reads;
 * on PostgreSQL, [storage] statement_timeout bounds each) must all be
 * answered before the HTTP server stops: libmicrohttpd aborts the process
 * when it finds one still suspended. After `step_us` ([server] stop_timeout) the writes still
 * queued are failed (503, "retry later"); the batch the writer holds cannot
 * be taken back, so its requests are waited for as long as it takes
 * (systemd's TimeoutStopSec bounds that), with a line in the log every
 * `step_us`. Bodies still arriving are waited for until
 * `receive_until` (monotonic; 0: not at all).
 */
static void
wait_for_inflight(struct hr_app *app, int64_t receive_until, int64_t step_us)
{
	int64_t deadline = hr_time_mono_us() + step_us;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	bool failed_queue = false;

	/* Requests begun before the stop whose body is still arriving are waited for
	 * too, up to `step_us`: stopping the server cut them off unanswered (a
	 * review lost a webhook so, its body sent 50 ms after SIGTERM), where they
	 * are in flight as much as those waiting for the writer. */
	while (atomic_load(&app->inflight) > 0 ||
	    (hr_time_mono_us() < receive_until &&
	        (atomic_load(&app->receiving) > 0 || !hr_http_settled(atomic_load(&app->http))))) {
		if (hr_time_mono_us() >= deadline) {
			unsigned queued = failed_queue ? 0 : hr_store_fail_queued(app->store);

			log_warnx(
			    "stopping: %u requests still in flight (waiting for the writer, or"
			    " reading); %u queued writes failed (their webhooks answered 503)",
			    atomic_load(&app->inflight), queued);
			failed_queue = true;
			deadline = hr_time_mono_us() + step_us;
		}
		nanosleep(&tick, NULL);
	}
}

/* [storage] backend names the store's engine: the one place that picks a table. */
static const struct hr_store_ops *const engines[HR_CFG_BACKENDS] = {
	[HR_CFG_BACKEND_SQLITE] = &hr_store_sqlite,
	[HR_CFG_BACKEND_POSTGRESQL] = &hr_store_pg,
};

/* The socket systemd passed (hookrelay.socket), or -1 to bind [server] listen. */
static int
activated_socket(void)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return -1;
	if (n > 1)
		log_warnx("systemd passed %d sockets; using the first", n);
	return SD_LISTEN_FDS_START;
}

static struct hr_store_opts
store_opts(const struct hr_cfg *cfg)
{
	return (struct hr_store_opts){ .engine = engines[cfg->db_backend],
		.path = cfg->db_path,
		.url = cfg->db_url,
		.lease_us = cfg->lease_ms * 1000,
		.statement_timeout_us = cfg->statement_timeout_ms * 1000,
		.batch_max = cfg->batch_max,
		.cache_bytes = cfg->cache_size,
		.queue_max = cfg->queue_max,
		.rejections_max = cfg->rejections_max,
		.readers = cfg->db_pool ? cfg->db_pool : cfg->threads + 2 };
}

static int
start(struct daemon *d, struct hr_runtime *rt)
{
	const struct hr_cfg *cfg = rt->cfg;
	struct hr_error err = { .field = "" };
	struct hr_store_opts so = store_opts(cfg);
	const char *db = cfg->db_backend == HR_CFG_BACKEND_SQLITE ? cfg->db_path : so.engine->name;
	static const struct hr_route *const routes[] = { hr_hooks_routes, hr_api_routes,
		hr_rejection_routes, hr_delivery_routes, hr_stream_routes, hr_metrics_routes,
		hr_ui_routes };
	struct hr_http_opts ho = { .routes = routes,
		.nroutes = HR_ARRAY_LEN(routes),
		.listen = cfg->listen,
		.listen_fd = activated_socket(),
		.threads = cfg->threads,
		.max_connections = cfg->max_connections,
		.max_per_ip = cfg->max_connections_per_ip,
		.max_header_size = cfg->max_header_size,
		.timeout_ms = cfg->request_timeout_ms,
		.header_timeout_ms = cfg->header_timeout_ms };
	char bound[80];
	int rc;

	d->app.rt = rt;
	d->start_cfg = *cfg; /* by value: a reload frees the first runtime */
	d->app.metrics.start_us = hr_time_now_us();
	atomic_store(&d->app.metrics.reload_ok, true);
	atomic_store(&d->app.metrics.reload_ok_us, d->app.metrics.start_us);
	pthread_mutex_init(&d->app.rt_mu, NULL);
	if ((rc = hr_store_open(&so, &d->app.store, &err)) != HR_OK) {
		log_errx("storage %s: %s", db, err.msg);
		/* Another daemon owns the database, or a newer hookrelay migrated it (a
		 * rolled-back binary): no restart mends either, and 78 is one of the
		 * unit's RestartPreventExitStatus. */
		return rc == HR_EBUSY || rc == HR_EINVAL ? HR_EX_CONFIG : 1;
	}
	d->max_size = cfg->max_size;
	if (set_retention(d->app.store, cfg, d->max_size) != HR_OK) {
		hr_store_close(d->app.store);
		return 1;
	}
	if (hr_forwarder_start(cfg->destinations, cfg->ndestinations, d->app.store,
	        &d->app.forwarder, &err) != HR_OK) {
		log_errx("forwarder: %s", err.msg);
		hr_store_close(d->app.store);
		return HR_EX_CONFIG;
	}
	if ((rc = hr_http_start(&ho, &d->app, &d->http, &err)) != HR_OK) {
		log_errx("%s", err.msg);
		hr_forwarder_stop(d->app.forwarder);
		hr_store_close(d->app.store);
		/* A socket from systemd that cannot serve is the socket unit's error: a
		 * restart brings the same one (78 stops the unit's restarts). An address
		 * of the file's in use may be free at the next try. */
		return ho.listen_fd >= 0 && rc == HR_EINVAL ? HR_EX_CONFIG : 1;
	}
	atomic_store(&d->app.http, d->http); /* for /metrics (slow clients cut off) */
	d->socket_activated = ho.listen_fd >= 0;
	hr_http_bound(d->http, bound, sizeof(bound));
	log_info("hookrelay %s: listening on %s%s, database %s, %zu source(s), %zu destination(s)",
	    HR_VERSION_STRING, bound, ho.listen_fd >= 0 ? " (socket from systemd)" : "", db,
	    cfg->nsources, cfg->ndestinations);
	return HR_OK;
}

/* The signals that stop the daemon, by name: "signal 15" meant nothing to most
 * readers of the log. */
static const char *
stop_signal_name(int sig)
{
	switch (sig) {
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	default:
		return "a signal";
	}
}

static void
stop(struct daemon *d, int sig)
{
	struct hr_runtime *rt = d->app.rt;
	int64_t receive_until, step_us = rt->cfg->stop_timeout_ms * 1000;

	sd_notify(0, "STOPPING=1");
	log_info("%s: stopping; finishing requests in flight", stop_signal_name(sig));
	/* Webhooks on open connections are still stored, each answer closing its
	 * connection (the client's next goes to the next hookrelay), until none is
	 * in flight; then the rest are answered 503 and the server stops. Set
	 * before the connections waiting past max_connections_per_ip are handed
	 * over: one answered at once went out without its Connection: close (the
	 * sanitizer run of the suite, once). */
	atomic_store(&d->app.stopping, true);
	hr_http_quiesce(d->http);
	/* One wait for bodies still arriving, however many steps: each step's own
	 * held a trickled body's stop for twice stop_timeout (review R3). */
	receive_until = hr_time_mono_us() + step_us;
	wait_for_inflight(&d->app, receive_until, step_us);
	atomic_store(&d->app.closing, true);
	/* those begun before they saw `closing` */
	wait_for_inflight(&d->app, receive_until, step_us);
	atomic_store(&d->app.sealed, true);
	/* a suspension that came past the wait for bodies */
	wait_for_inflight(&d->app, 0, step_us);
	hr_http_stop(d->http);
	hr_forwarder_stop(d->app.forwarder);
	hr_store_close(d->app.store);
	log_info("stopped: %lu accepted, %lu rejected, %lu failed", atomic_load(&d->app.accepted),
	    atomic_load(&d->app.rejected), atomic_load(&d->app.failed));
	d->app.rt = NULL;
	hr_runtime_release(rt);
	pthread_mutex_destroy(&d->app.rt_mu);
}

/*
 * systemd waits TimeoutStartSec= (90 s by default) for READY=1, then kills the
 * service. The store's first open after an upgrade migrates the schema, which
 * on a database of tens of millions of events takes minutes (an index built
 * over every event), and a kill rolls the step back, at every start. While
 * start() runs, this thread asks systemd for more time (EXTEND_TIMEOUT_USEC,
 * which never shortens the configured timeout) at once and every
 * START_EXTEND_EVERY_S, saying why in STATUS=.
 */
#define START_EXTEND_EVERY_S 10
#define START_EXTEND_USEC    (3ULL * START_EXTEND_EVERY_S * 1000000ULL)

struct start_keepalive {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, running;
};

static void *
start_keepalive_main(void *arg)
{
	struct start_keepalive *k = arg;
	struct timespec at;

	pthread_mutex_lock(&k->mu);
	while (!k->done) {
		sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=starting: opening the database",
		    START_EXTEND_USEC);
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_sec += START_EXTEND_EVERY_S;
		while (!k->done && pthread_cond_timedwait(&k->cv, &k->mu, &at) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static void
start_keepalive_begin(struct start_keepalive *k)
{
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	k->done = false;
	k->running = getenv("NOTIFY_SOCKET") != NULL &&
	    pthread_create(&k->thread, NULL, start_keepalive_main, k) == 0;
}

static void
start_keepalive_end(struct start_keepalive *k)
{
	pthread_mutex_lock(&k->mu);
	k->done = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (k->running)
		pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
}

static int
serve(const struct options *o, struct hr_runtime *rt, sigset_t *signals)
{
	struct daemon d = { .opts = o };
	struct start_keepalive keepalive;
	uint64_t wd_usec = 0;
	int sig = 0, rc;

	if (sd_watchdog_enabled(0, &wd_usec) > 0)
		d.watchdog_us = (int64_t)wd_usec;
	start_keepalive_begin(&keepalive);
	rc = start(&d, rt);
	start_keepalive_end(&keepalive);
	if (rc != HR_OK) {
		hr_runtime_release(rt);
		return rc;
	}
	notify_status(&d, "READY=1\n");
	/* The tick is due on the clock, not after a quiet wait: signals coming more
	 * often than it (SIGHUPs of a rotation loop) must not starve the watchdog. */
	int64_t period_us = tick_period_us(&d);
	int64_t next_tick = hr_time_mono_us() + period_us;

	while (sig != SIGTERM && sig != SIGINT) {
		int64_t wait_us = next_tick - hr_time_mono_us();
		struct timespec ts = { 0, 0 };

		if (wait_us > 0)
			ts = (struct timespec){ wait_us / 1000000, (wait_us % 1000000) * 1000 };
		sig = sigtimedwait(signals, NULL, &ts);
		if (sig == SIGHUP)
			reload(&d);
		if (hr_time_mono_us() >= next_tick) {
			watchdog_tick(&d);
			/* Large bodies' tree pages go once no large body has needed them for a
			 * while. */
			hr_jarena_trim(hr_time_mono_us(), HR_JARENA_IDLE_US);
			next_tick = hr_time_mono_us() + period_us;
		}
	}
	stop(&d, sig);
	return 0;
}

static int
backup(const struct options *o)
{
	struct hr_error err = { .field = "" };
	struct hr_cfg *cfg = read_config(o, NULL, &err);
	int rc;

	if (cfg == NULL) {
		log_errx("%s: %s", err.field, err.msg);
		return HR_EX_CONFIG;
	}
	rc = hr_store_backup(
	    &(struct hr_store_opts){
	        .engine = engines[cfg->db_backend], .path = cfg->db_path, .url = cfg->db_url },
	    o->backup_to, &err);
	if (rc == HR_OK)
		printf("%s: backup of %s written\n", o->backup_to, cfg->db_path);
	else
		log_errx("backup: %s%s%s", err.field, err.field[0] != '\0' ? ": " : "", err.msg);
	hr_cfg_free(cfg);
	return rc == HR_OK ? 0 : 1;
}

/* `hookrelay migrate --from sqlite:PATH --to postgresql:URL` (docs/scaling.md). */
static int
migrate(const struct options *o)
{
	struct hr_error err = { .field = "" };
	int rc;

	if (o->from == NULL || o->to == NULL || strncmp(o->from, "sqlite:", 7) != 0 ||
	    strncmp(o->to, "postgresql:", 11) != 0) {
		fprintf(
		    stderr, "usage: hookrelay migrate --from sqlite:PATH --to postgresql:URL\n");
		return 64;
	}
	/* Each table's progress line goes out as it is written: a run stopped with ^C
	 * (then resumed) lost them all to the buffer when the output was a file. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* postgresql:URL, where URL may itself be a postgresql:// URI */
	rc = hr_store_pg_migrate(o->from + 7,
	    strncmp(o->to, "postgresql://", 13) == 0 ? o->to : o->to + 11, stdout, &err);
	if (rc != HR_OK)
		log_errx("migrate: %s", err.msg);
	return rc == HR_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct hr_error err = { .field = "" };
	struct options o = { 0 };
	struct hr_runtime *rt;
	sigset_t signals;
	int rc;

	/* A SIGHUP sent while the daemon reads its files (a reload racing a start)
	 * killed it, SIGHUP's default: held from the first instruction, it waits
	 * for the loop below, which takes it as a reload once serving. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	if ((rc = parse_args(argc, argv, &o)) >= 0)
		return rc;
	o.socket_passed = sd_listen_fds(0) > 0; /* read again, and taken, at the start */
	if (o.backup_to != NULL)
		return backup(&o);
	if (o.migrate)
		return migrate(&o);
	/* hookrelay(8): -t reports every error, where a start stops at the first */
	hr_cfg_report_every_error(o.check_only);
	if ((rt = load_runtime(&o, NULL, NULL, &err)) == NULL)
		fatalx(HR_EX_CONFIG, "%s: %s", err.field, err.msg);
	hr_log_set_level((enum hr_log_level)rt->cfg->log_level);
	if (o.check_only) {
		printf("%s: configuration ok\n", rt->cfg->file);
		hr_runtime_release(rt);
		return 0;
	}
	/* Block before any thread starts so that only sigtimedwait() sees these. */
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Past RLIMIT_FSIZE a write must fail (EFBIG: the batch is answered 503),
	 * not kill the daemon with every request in flight. */
	signal(SIGXFSZ, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx(1, "libcurl initialisation failed");
	rc = serve(&o, rt, &signals);
	curl_global_cleanup();
	return rc;
}

/*
 * main.c - command line, configuration, start/stop order, signals.
 *
 * Start: config, store (and its writer), then the listener, so nothing is
 * accepted before it can be stored. Stop (SIGTERM/SIGINT): stop accepting,
 * let requests in flight finish and commit, stop the listener, then drain
 * and close the store. Signals are taken synchronously with sigwait() in
 * this thread; every other thread has them blocked.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hr/app.h"
#include "hr/auth.h"
#include "hr/cfg.h"
#include "hr/forward.h"
#include "hr/http.h"
#include "hr/log.h"
#include "hr/outbox.h"
#include "hr/store.h"
#include "hr/timefmt.h"

#define DEFAULT_CONFIG   "/etc/hookrelay/hookrelay.conf"
#define DRAIN_TIMEOUT_MS 10000

struct options {
	const char *config;
	const char *listen;
	const char *db;
	const char *log_level;
	bool check_only;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: hookrelay [-c FILE] [--listen ADDR:PORT] [--db PATH] [--log-level LEVEL]\n"
	    "                 [-t|--check-config] [--version] [--help] [--config-reference]\n"
	    "\n"
	    "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
	    "      --listen ADDR:PORT  override [server] listen; port 0 picks a free port\n"
	    "      --db PATH         override [storage] path\n"
	    "      --log-level LEVEL override [log] level: error, warning, info, debug\n"
	    "  -t, --check-config    read the configuration, report errors, exit\n"
	    "      --version         print the version\n"
	    "      --config-reference  print docs/configuration.md\n"
	    "\n"
	    "Exit status: 0 on a clean stop, 78 for a bad configuration, 1 otherwise.\n\n");
	hr_cfg_print_help(out);
}

/* Returns -1 to go on, else the exit status. */
static int
parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_LISTEN = 256, OPT_DB, OPT_VERSION, OPT_REFERENCE, OPT_LOG_LEVEL };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "db", required_argument, NULL, OPT_DB },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "config-reference", no_argument, NULL, OPT_REFERENCE },
		{ "help", no_argument, NULL, 'h' },
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
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_DB:
			o->db = optarg;
			break;
		case OPT_LOG_LEVEL:
			o->log_level = optarg;
			break;
		case OPT_VERSION:
			printf("hookrelay %s\n", HR_VERSION_STRING);
			return 0;
		case OPT_REFERENCE:
			hr_cfg_print_markdown(stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 64;
	}
	return -1;
}

static struct hr_cfg *
load_config(const struct options *o)
{
	struct hr_error err = { .field = "" };
	struct hr_cfg *cfg = NULL;
	const char *path = o->config ? o->config : DEFAULT_CONFIG;
	int level;

	if (hr_cfg_load(path, &cfg, &err) != HR_OK)
		fatalx(HR_EX_CONFIG, "%s: %s", err.field, err.msg);
	if (o->listen != NULL)
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", o->listen);
	if (o->db != NULL)
		snprintf(cfg->db_path, sizeof(cfg->db_path), "%s", o->db);
	if (o->log_level != NULL) {
		if ((level = hr_log_level_parse(o->log_level)) < 0)
			fatalx(HR_EX_CONFIG, "--log-level: unknown level %s", o->log_level);
		cfg->log_level = level;
	}
	if (cfg->ndestinations > HR_MAX_DESTINATIONS)
		fatalx(HR_EX_CONFIG, "%s: at most %d [destination] sections", path,
		    HR_MAX_DESTINATIONS);
	if (cfg->nsources == 0)
		log_warnx(
		    "%s: no [source NAME] section: every POST /hooks/... will answer 404", path);
	return cfg;
}

/* The API token, first line of token_file, trailing whitespace removed. */
static char *
load_token(const char *path)
{
	char buf[1024];
	FILE *f;
	size_t n;

	if (path[0] == '\0')
		return NULL;
	if ((f = fopen(path, "r")) == NULL)
		fatalx(HR_EX_CONFIG, "[api] token_file %s: %s", path, strerror(errno));
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n < 16)
		fatalx(HR_EX_CONFIG,
		    "[api] token_file %s: the token must be at least 16 characters", path);
	return strdup(buf);
}

/* Secrets and rate buckets of every source; a secret that cannot be read is a config error. */
static struct hr_source_state *
sources_init(const struct hr_cfg *cfg)
{
	struct hr_source_state *st = calloc(cfg->nsources ? cfg->nsources : 1, sizeof(*st));
	struct hr_error err = { .field = "" };

	if (st == NULL)
		fatalx(1, "out of memory");
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct hr_source_cfg *src = &cfg->sources[i];

		if (hr_auth_load_secrets(src, &st[i].secrets, &err) != HR_OK)
			fatalx(HR_EX_CONFIG, "[source %s] %s: %s", src->name, err.field, err.msg);
		hr_bucket_init(&st[i].bucket, src->rate, src->burst);
	}
	return st;
}

static void
sources_free(const struct hr_cfg *cfg, struct hr_source_state *st)
{
	for (size_t i = 0; st != NULL && i < cfg->nsources; i++) {
		hr_secrets_free(st[i].secrets);
		hr_bucket_destroy(&st[i].bucket);
	}
	free(st);
}

static void
wait_for_inflight(struct hr_app *app)
{
	int64_t deadline = hr_time_now_us() + DRAIN_TIMEOUT_MS * 1000LL;
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	while (atomic_load(&app->inflight) > 0 && hr_time_now_us() < deadline)
		nanosleep(&tick, NULL);
	if (atomic_load(&app->inflight) > 0)
		log_warnx("stopping with %u requests still waiting for the writer",
		    atomic_load(&app->inflight));
}

static int
serve(struct hr_cfg *cfg, sigset_t *signals)
{
	struct hr_error err = { .field = "" };
	struct hr_app app = { .cfg = cfg };
	struct hr_store_opts so = { .path = cfg->db_path,
		.batch_max = cfg->batch_max,
		.queue_max = cfg->queue_max,
		.rejections_max = cfg->rejections_max,
		.readers = cfg->threads + 1 };
	struct hr_http_opts ho = { .listen = cfg->listen,
		.listen_fd = -1,
		.threads = cfg->threads,
		.max_connections = cfg->max_connections,
		.max_per_ip = cfg->max_connections_per_ip,
		.max_header_size = cfg->max_header_size,
		.timeout_ms = cfg->request_timeout_ms };
	struct hr_http *http = NULL;
	char bound[80];
	int sig = 0;

	app.limits =
	    (struct hr_json_limits){ cfg->max_depth, cfg->max_object_keys, cfg->max_string };
	app.api_token = load_token(cfg->token_file);
	app.sources = sources_init(cfg);
	if (hr_store_open(&so, &app.store, &err) != HR_OK)
		fatalx(1, "storage %s: %s", cfg->db_path, err.msg);
	if (hr_forwarder_start(cfg, app.store, &app.forwarder, &err) != HR_OK) {
		hr_store_close(app.store);
		fatalx(HR_EX_CONFIG, "forwarder: %s", err.msg);
	}
	if (hr_http_start(&ho, &app, &http, &err) != HR_OK) {
		hr_forwarder_stop(app.forwarder);
		hr_store_close(app.store);
		fatalx(1, "%s", err.msg);
	}
	hr_http_bound(http, bound, sizeof(bound));
	log_info("hookrelay %s: listening on %s, database %s, %zu source(s), %zu destination(s)",
	    HR_VERSION_STRING, bound, cfg->db_path, cfg->nsources, cfg->ndestinations);
	while (sig != SIGTERM && sig != SIGINT) {
		if (sigwait(signals, &sig) != 0)
			break;
		if (sig == SIGHUP)
			log_info("SIGHUP: configuration reload is not supported yet; ignored");
	}
	log_info("signal %d: stopping; finishing requests in flight", sig);
	hr_http_quiesce(http);
	atomic_store(&app.stopping, true); /* new webhooks on open connections: 503 */
	wait_for_inflight(&app);
	hr_http_stop(http);
	hr_forwarder_stop(app.forwarder);
	hr_store_close(app.store);
	free(app.api_token);
	sources_free(cfg, app.sources);
	log_info("stopped: %lu accepted, %lu rejected, %lu failed", atomic_load(&app.accepted),
	    atomic_load(&app.rejected), atomic_load(&app.failed));
	return 0;
}

int
main(int argc, char **argv)
{
	struct options o = { 0 };
	struct hr_cfg *cfg;
	sigset_t signals;
	int rc;

	if ((rc = parse_args(argc, argv, &o)) >= 0)
		return rc;
	cfg = load_config(&o);
	hr_log_set_level((enum hr_log_level)cfg->log_level);
	if (o.check_only) {
		printf("%s: configuration ok\n", o.config ? o.config : DEFAULT_CONFIG);
		hr_cfg_free(cfg);
		return 0;
	}
	/* Block before any thread starts so that only sigwait() sees these. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx(1, "libcurl initialisation failed");
	rc = serve(cfg, &signals);
	curl_global_cleanup();
	hr_cfg_free(cfg);
	return rc;
}

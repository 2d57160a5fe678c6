/* tests/unit/test_cfg.c - the config file: option table, parsers, errors, rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/cfg.h"
#include "hr/log.h"
#include "tmpdir.h"

#define SHIPPED_CONF HR_SOURCE_DIR "/config/hookrelay.conf"
#define DOC_FILE     HR_SOURCE_DIR "/docs/configuration.md"

/* Load `text` as "t.conf"; the config is freed here, the error kept in *err. */
static int
load_err(const char *text, struct hr_error *err)
{
	struct hr_cfg *cfg = NULL;
	int rc = hr_cfg_load_string(text, "t.conf", &cfg, err);

	hr_cfg_free(cfg);
	return rc;
}

static struct hr_cfg *
load_ok(const char *text)
{
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	int rc = hr_cfg_load_string(text, "t.conf", &cfg, &err);

	if (rc != HR_OK)
		fail_msg("%s: %s", err.field, err.msg);
	return cfg;
}

/* What `print` writes, as a new string. */
static char *
capture(void (*print)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	print(fp);
	fclose(fp);
	return buf;
}

static char *
capture_cfg(const struct hr_cfg *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	hr_cfg_print(fp, cfg);
	fclose(fp);
	return buf;
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* The table */

static void
option_table_is_consistent(void **state)
{
	(void)state;
	assert_int_equal(cfg_table_check(), 0);
}

static void
empty_file_gives_defaults(void **state)
{
	struct hr_cfg *cfg = load_ok("");

	(void)state;
	assert_string_equal(cfg->file, "t.conf");
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_int_equal(cfg->max_body, 8 * 1024 * 1024);
	assert_int_equal(cfg->request_timeout_ms, 30000);
	assert_int_equal(cfg->threads, 2);
	assert_int_equal(cfg->max_connections, 1024);
	assert_int_equal(cfg->max_depth, 64);
	assert_int_equal(cfg->max_object_keys, 10000);
	assert_int_equal(cfg->max_string, 8 * 1024 * 1024);
	assert_int_equal(cfg->max_connections_per_ip, 64);
	assert_int_equal(cfg->max_header_size, 16 * 1024);
	assert_string_equal(cfg->db_path, "var/hookrelay.db");
	assert_int_equal(cfg->batch_max, 256);
	assert_int_equal(cfg->queue_max, 8192);
	assert_int_equal(cfg->rejections_max, 10000);
	assert_string_equal(cfg->token_file, "");
	assert_int_equal(cfg->log_level, HR_LOG_INFO);
	assert_int_equal(cfg->nsources, 0);
	assert_null(cfg->sources);
	assert_int_equal(cfg->ndestinations, 0);
	assert_null(cfg->destinations);
	hr_cfg_free(cfg);
}

static void
new_defaults_equal_an_empty_file(void **state)
{
	struct hr_cfg *def = hr_cfg_new_defaults(), *empty = load_ok("");
	char *a, *b;

	(void)state;
	assert_non_null(def);
	assert_string_equal(def->file, "");
	a = capture_cfg(def);
	b = capture_cfg(empty);
	assert_string_equal(a, b);
	free(a);
	free(b);
	hr_cfg_free(def);
	hr_cfg_free(empty);
}

static void
free_accepts_null(void **state)
{
	(void)state;
	hr_cfg_free(NULL);
}

static void
comments_and_blank_lines_are_ignored(void **state)
{
	struct hr_cfg *cfg = load_ok("# comment\n; other comment\n\n[server]\n"
	                             "  max_body = 1MiB   # inline\nthreads = 3 ; inline\n");

	(void)state;
	assert_int_equal(cfg->max_body, 1024 * 1024);
	assert_int_equal(cfg->threads, 3);
	hr_cfg_free(cfg);
}

static void
crlf_line_endings_and_bom_are_accepted(void **state)
{
	struct hr_cfg *cfg = load_ok("\xEF\xBB\xBF[server]\r\nthreads = 4\r\n[source a]\r\n");

	(void)state;
	assert_int_equal(cfg->threads, 4);
	assert_non_null(hr_cfg_source(cfg, "a"));
	hr_cfg_free(cfg);
}

static void
colon_separates_key_and_value_too(void **state)
{
	struct hr_cfg *cfg = load_ok("[server]\nlisten: [::1]:9000\n");

	(void)state;
	assert_string_equal(cfg->listen, "[::1]:9000");
	hr_cfg_free(cfg);
}

/* Types */

static void
addr_accepts_ipv4_ipv6_and_port_zero(void **state)
{
	const char *good[] = { "0.0.0.0:0", "[::1]:8080", ":8080", "10.1.2.3:65535" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(good); i++) {
		char text[128];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[server]\nlisten = %s\n", good[i]);
		cfg = load_ok(text);
		assert_string_equal(cfg->listen, good[i]);
		hr_cfg_free(cfg);
	}
}

static void
addr_rejects_host_names_and_bad_ports(void **state)
{
	const char *bad[] = { "localhost:8080", "127.0.0.1", "127.0.0.1:65536", "[::1]8080", "",
		"127.0.0.1:+8080", "127.0.0.1: 8080", "127.0.0.1:-0", "[::1]:+80",
		"127.0.0.1:080800" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[128];
		struct hr_error err = { 0 };

		snprintf(text, sizeof(text), "[server]\nlisten = %s\n", bad[i]);
		assert_int_equal(load_err(text, &err), HR_EINVAL);
		assert_string_equal(err.field, "t.conf:2");
		assert_non_null(strstr(err.msg, "is not a numeric address:port"));
	}
}

static void
size_option_accepts_units(void **state)
{
	struct hr_cfg *cfg = load_ok("[server]\nmax_body = 512KiB\nmax_string = 2k\n");

	(void)state;
	assert_int_equal(cfg->max_body, 512 * 1024);
	assert_int_equal(cfg->max_string, 2048);
	hr_cfg_free(cfg);
}

static void
size_option_rejects_junk(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nmax_body = 9x\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
	assert_string_equal(err.msg, "max_body: \"9x\" is not a size (e.g. 8MiB)");
}

static void
size_option_rejects_out_of_range(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nmax_body = 2GiB\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "max_body: 2GiB is out of range (1KiB..512MiB)");
	/* Past SQLite's 1e9-byte value limit a body could never be stored: every try
	 * of such a body was answered 503 (retry) and /readyz went not ready. */
	assert_int_equal(load_err("[server]\nmax_body = 1GiB\n", &err), HR_EINVAL);
	assert_int_equal(load_err("[server]\nmax_body = 1023\n", &err), HR_EINVAL);
	assert_int_equal(load_err("[server]\nmax_body = 99999999999999999999\n", &err), HR_EINVAL);
	assert_non_null(strstr(err.msg, "out of range"));
}

static void
duration_option_accepts_fractions(void **state)
{
	struct hr_cfg *cfg = load_ok("[server]\nrequest_timeout = 1.5m\n");

	(void)state;
	assert_int_equal(cfg->request_timeout_ms, 90000);
	hr_cfg_free(cfg);
}

static void
duration_option_rejects_out_of_range(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nrequest_timeout = 500ms\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "request_timeout: 500ms is out of range (1s..1h)");
	assert_int_equal(load_err("[server]\nrequest_timeout = soon\n", &err), HR_EINVAL);
	assert_string_equal(
	    err.msg, "request_timeout: \"soon\" is not a duration (e.g. 30s, 250ms)");
}

static void
int_option_accepts_bounds(void **state)
{
	struct hr_cfg *cfg = load_ok("[server]\nthreads = 64\n[storage]\nrejections_max = 0\n");

	(void)state;
	assert_int_equal(cfg->threads, 64);
	assert_int_equal(cfg->rejections_max, 0);
	hr_cfg_free(cfg);
}

static void
int_option_rejects_out_of_range_and_junk(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nthreads = 65\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "threads: 65 is out of range (1..64)");
	assert_int_equal(load_err("[server]\nthreads = -1\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "threads: -1 is out of range (1..64)");
	assert_int_equal(load_err("[server]\nthreads = 2x\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "threads: \"2x\" is not a whole number");
	assert_int_equal(load_err("[server]\nthreads =\n", &err), HR_EINVAL);
	assert_int_equal(load_err("[server]\nthreads = +2\n", &err), HR_EINVAL);
}

static void
path_option_keeps_the_text(void **state)
{
	struct hr_cfg *cfg =
	    load_ok("[storage]\npath = /var/lib/hookrelay/events.db\n[api]\ntoken_file = t\n");

	(void)state;
	assert_string_equal(cfg->db_path, "/var/lib/hookrelay/events.db");
	assert_string_equal(cfg->token_file, "t");
	hr_cfg_free(cfg);
}

static void
path_option_rejects_empty_storage_path(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[storage]\npath =\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
	assert_string_equal(err.msg, "path: must not be empty");
}

static void
path_option_allows_empty_token_file(void **state)
{
	struct hr_cfg *cfg = load_ok("[api]\ntoken_file =\n");

	(void)state;
	assert_string_equal(cfg->token_file, "");
	hr_cfg_free(cfg);
}

static void
enum_option_accepts_each_log_level(void **state)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = { { "error", HR_LOG_ERR }, { "warning", HR_LOG_WARNING },
		{ "info", HR_LOG_INFO }, { "debug", HR_LOG_DEBUG } };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(levels); i++) {
		char text[64];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[log]\nlevel = %s\n", levels[i].name);
		cfg = load_ok(text);
		assert_int_equal(cfg->log_level, levels[i].level);
		assert_int_equal(cfg->log_level, hr_log_level_parse(levels[i].name));
		hr_cfg_free(cfg);
	}
}

static void
enum_option_lists_the_choices(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[log]\nlevel = loud\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "level: \"loud\" is not one of error, warning, info, debug");
}

/* Errors and where they are */

static void
unknown_key_names_its_line(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nthreads = 2\nthread = 3\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:3");
	assert_string_equal(err.msg, "unknown key \"thread\" in [server]");
}

static void
key_of_another_section_is_unknown(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[storage]\nmax_body = 1MiB\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
	assert_string_equal(err.msg, "unknown key \"max_body\" in [storage]");
}

/* A secret pasted in bare (base64 ends in "=", where the key ends) is never echoed. */
static void
a_line_that_is_no_key_is_not_quoted(void **state)
{
	static const char *const lines[] = { "dGhpc2lzYXNlY3JldGtleQ==",
		"0123456789abcdef0123456789abcdef0123456789abcdef = x", "Sk-Live_Abc = 1" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(lines); i++) {
		char text[160];
		struct hr_error err = { 0 };

		snprintf(text, sizeof(text), "[source s]\n%s\n", lines[i]);
		assert_int_equal(load_err(text, &err), HR_EINVAL);
		assert_string_equal(err.field, "t.conf:2");
		assert_string_equal(
		    err.msg, "unknown key (not shown: it is not a key's name) in [source]");
	}
}

static void
unknown_section_names_its_line(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\n\n[sever]\nthreads = 2\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:3");
	assert_string_equal(err.msg, "unknown section [sever]");
}

static void
duplicate_key_names_both_lines(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nthreads = 2\n\nthreads = 3\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:4");
	assert_string_equal(err.msg, "duplicate key threads (first set on line 2)");
}

static void
duplicate_key_across_repeated_section_is_an_error(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(
	    load_err("[log]\nlevel = info\n[server]\n[log]\nlevel = debug\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:5");
}

static void
same_key_in_two_sources_is_fine(void **state)
{
	struct hr_cfg *cfg =
	    load_ok("[source a]\nprovider = tavus\n[source b]\nprovider = pailflow\n");

	(void)state;
	assert_int_equal(cfg->nsources, 2);
	hr_cfg_free(cfg);
}

static void
duplicate_source_names_its_line(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[source a]\n[source b]\n[source a]\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:3");
	assert_string_equal(err.msg, "duplicate section [source a]");
}

static void
malformed_line_names_its_line(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nthreads = 2\nthreads 3\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:3");
	assert_non_null(strstr(err.msg, "malformed line"));
}

static void
unclosed_section_header_is_malformed(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("\n[server\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
	assert_non_null(strstr(err.msg, "malformed section header"));
}

static void
text_after_section_header_is_an_error(void **state)
{
	struct hr_error err = { 0 };
	struct hr_cfg *cfg;

	(void)state;
	assert_int_equal(load_err("[server] threads = 2\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:1");
	cfg = load_ok("[server]   # the listener\nthreads = 2\n");
	hr_cfg_free(cfg);
}

static void
key_before_any_section_is_an_error(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("# top\nthreads = 2\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
	assert_string_equal(err.msg, "key \"threads\" is outside any section");
}

static void
overlong_line_is_an_error(void **state)
{
	struct hr_error err = { 0 };
	size_t n = 10000;
	char *text = malloc(n + 32);

	(void)state;
	assert_non_null(text);
	strcpy(text, "[api]\ntoken_file = ");
	memset(text + strlen(text), 'x', n);
	strcpy(text + 19 + n, "\n");
	assert_int_equal(load_err(text, &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
	assert_non_null(strstr(err.msg, "line longer than"));
	free(text);
}

static void
long_value_within_the_line_limit_is_read_whole(void **state)
{
	size_t n = 4000;
	char *text = malloc(n + 32);
	struct hr_cfg *cfg;

	(void)state;
	assert_non_null(text);
	strcpy(text, "[api]\ntoken_file = ");
	memset(text + 19, 'x', n);
	strcpy(text + 19 + n, "\n");
	cfg = load_ok(text);
	assert_int_equal(strlen(cfg->token_file), n);
	hr_cfg_free(cfg);
	free(text);
}

static void
first_error_wins(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server]\nthreads = 0\nbogus\n[nope]\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:2");
}

static void
load_on_a_missing_file_names_the_file(void **state)
{
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(hr_cfg_load("/nonexistent/hookrelay.conf", &cfg, &err), HR_EINVAL);
	assert_null(cfg);
	assert_string_equal(err.field, "/nonexistent/hookrelay.conf");
	assert_non_null(strstr(err.msg, "No such file or directory"));
}

static void
load_on_a_directory_is_an_error(void **state)
{
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(hr_cfg_load("/", &cfg, &err), HR_EINVAL);
	assert_null(cfg);
	assert_string_equal(err.field, "/");
	assert_string_equal(err.msg, "read error: Is a directory");
}

static void
load_reports_file_and_line(void **state)
{
	char path[96];
	int fd;
	FILE *fp;
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	char want[160];

	(void)state;
	tmp_template(path, sizeof(path), "test_cfg.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	fputs("[server]\nthreads = 2\nmax_body = 9x\n", fp);
	fclose(fp);
	assert_int_equal(hr_cfg_load(path, &cfg, &err), HR_EINVAL);
	snprintf(want, sizeof(want), "%s:3", path);
	assert_string_equal(err.field, want);
	unlink(path);
}

static void
long_file_name_keeps_the_line_number(void **state)
{
	char name[300], *text = "[nope]\n";
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	size_t n;

	(void)state;
	memset(name, 'd', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(hr_cfg_load_string(text, name, &cfg, &err), HR_EINVAL);
	n = strlen(err.field);
	assert_true(n < sizeof(err.field));
	assert_string_equal(err.field + n - 2, ":1");
}

/* Sources */

static void
source_without_keys_exists_with_defaults(void **state)
{
	struct hr_cfg *cfg = load_ok("[source empty]\n");
	const struct hr_source_cfg *src;

	(void)state;
	assert_int_equal(cfg->nsources, 1);
	src = hr_cfg_source(cfg, "empty");
	assert_non_null(src);
	assert_int_equal(src->provider, HR_PROVIDER_AUTO);
	hr_cfg_free(cfg);
}

static void
two_sources_keep_their_own_settings(void **state)
{
	struct hr_cfg *cfg = load_ok("[source tv]\nprovider = tavus\n\n[server]\nthreads = 3\n\n"
	                             "[source all]\n");

	(void)state;
	assert_int_equal(cfg->nsources, 2);
	assert_string_equal(cfg->sources[0].name, "tv");
	assert_int_equal(cfg->sources[0].provider, HR_PROVIDER_TAVUS);
	assert_string_equal(cfg->sources[1].name, "all");
	assert_int_equal(cfg->sources[1].provider, HR_PROVIDER_AUTO);
	assert_int_equal(cfg->threads, 3);
	hr_cfg_free(cfg);
}

static void
provider_accepts_each_choice(void **state)
{
	static const struct {
		const char *name;
		enum hr_provider p;
	} provs[] = { { "auto", HR_PROVIDER_AUTO }, { "tavus", HR_PROVIDER_TAVUS },
		{ "pailflow", HR_PROVIDER_PAILFLOW }, { "agenthuman", HR_PROVIDER_AGENTHUMAN } };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(provs); i++) {
		char text[64];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[source s]\nprovider = %s\n", provs[i].name);
		cfg = load_ok(text);
		assert_int_equal(hr_cfg_source(cfg, "s")->provider, provs[i].p);
		hr_cfg_free(cfg);
	}
}

static void
provider_rejects_unknown_and_lists_choices(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[source s]\n\nprovider = stripe\n", &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:3");
	assert_string_equal(
	    err.msg, "provider: \"stripe\" is not one of auto, tavus, pailflow, agenthuman, daily");
}

static void
source_name_of_63_characters_is_kept_whole(void **state)
{
	char name[64], text[128];
	struct hr_cfg *cfg;

	(void)state;
	memset(name, 'n', 63);
	name[63] = '\0';
	snprintf(text, sizeof(text), "[source %s]\nprovider = tavus\n", name);
	cfg = load_ok(text);
	assert_non_null(hr_cfg_source(cfg, name));
	hr_cfg_free(cfg);
}

static void
source_name_of_64_characters_is_rejected(void **state)
{
	char name[65], text[128];
	struct hr_error err = { 0 };

	(void)state;
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), "[source %s]\n", name);
	assert_int_equal(load_err(text, &err), HR_EINVAL);
	assert_string_equal(err.field, "t.conf:1");
}

static void
source_name_must_be_valid(void **state)
{
	const char *bad[] = { "[source a/b]", "[source a b]", "[source]", "[source ]" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[128];
		struct hr_error err = { 0 };

		snprintf(text, sizeof(text), "[server]\n%s\n", bad[i]);
		assert_int_equal(load_err(text, &err), HR_EINVAL);
		assert_string_equal(err.field, "t.conf:2");
	}
}

static void
plain_section_takes_no_name(void **state)
{
	struct hr_error err = { 0 };

	(void)state;
	assert_int_equal(load_err("[server main]\n", &err), HR_EINVAL);
	assert_string_equal(err.msg, "section [server] takes no name");
}

static void
source_lookup_misses_unknown_names(void **state)
{
	struct hr_cfg *cfg = load_ok("[source a]\n");

	(void)state;
	assert_null(hr_cfg_source(cfg, "b"));
	assert_null(hr_cfg_source(cfg, ""));
	hr_cfg_free(cfg);
}

/* Errors of the new keys: where and what */

/* Loading `text` fails with HR_EINVAL at `field`, with exactly `msg` unless it is NULL. */
static void
assert_load_error(const char *text, const char *field, const char *msg)
{
	struct hr_error err = { 0 };

	assert_int_equal(load_err(text, &err), HR_EINVAL);
	assert_string_equal(err.field, field);
	if (msg != NULL)
		assert_string_equal(err.msg, msg);
}

/* Loading `text` fails with a message containing `part`. */
static void
assert_load_error_has(const char *text, const char *part)
{
	struct hr_error err = { 0 };

	assert_int_equal(load_err(text, &err), HR_EINVAL);
	if (strstr(err.msg, part) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", err.msg, part);
}

/* A destination that loads; tests append their keys. */
#define DEST "[destination d]\nurl = http://127.0.0.1:9000/hook\n"

/* [server] limits */

static void
max_header_size_is_bounded(void **state)
{
	(void)state;
	assert_load_error("[server]\nmax_header_size = 2MiB\n", "t.conf:2",
	    "max_header_size: 2MiB is out of range (1KiB..1MiB)");
	assert_load_error("[server]\nmax_header_size = 512\n", "t.conf:2",
	    "max_header_size: 512 is out of range (1KiB..1MiB)");
}

static void
max_header_size_accepts_units(void **state)
{
	struct hr_cfg *cfg = load_ok("[server]\nmax_header_size = 64k\n");

	(void)state;
	assert_int_equal(cfg->max_header_size, 64 * 1024);
	hr_cfg_free(cfg);
}

static void
max_connections_per_ip_accepts_zero_for_unlimited(void **state)
{
	struct hr_cfg *cfg = load_ok("[server]\nmax_connections_per_ip = 0\n");

	(void)state;
	assert_int_equal(cfg->max_connections_per_ip, 0);
	hr_cfg_free(cfg);
}

/* [source] authentication and limits */

static void
source_auth_keys_have_defaults(void **state)
{
	struct hr_cfg *cfg = load_ok("[source s]\n");
	const struct hr_source_cfg *src = hr_cfg_source(cfg, "s");

	(void)state;
	assert_int_equal(src->auth, HR_AUTH_NONE);
	assert_string_equal(src->secret_file, "");
	assert_string_equal(src->hmac_header, "X-Signature");
	assert_int_equal(src->hmac_algorithm, HR_HMAC_SHA256);
	assert_int_equal(src->hmac_encoding, HR_ENC_HEX);
	assert_string_equal(src->hmac_prefix, "");
	assert_int_equal(src->hmac_signed, HR_SIGNED_BODY);
	assert_string_equal(src->hmac_timestamp_header, "");
	assert_int_equal(src->tolerance_ms, 5 * 60 * 1000);
	assert_int_equal(src->allow_cidrs.n, 0);
	assert_int_equal(src->trusted_proxies.n, 0);
	assert_string_equal(src->dedup, "auto");
	assert_int_equal(src->dedup_window_ms, INT64_C(7) * 86400 * 1000);
	assert_true(src->rate == 0.0);
	assert_int_equal(src->burst, 20);
	hr_cfg_free(cfg);
}

static void
auth_accepts_each_mode(void **state)
{
	static const struct {
		const char *name;
		enum hr_auth_mode mode;
	} modes[] = { { "none", HR_AUTH_NONE }, { "token", HR_AUTH_TOKEN },
		{ "standard-webhooks", HR_AUTH_STANDARD_WEBHOOKS }, { "hmac", HR_AUTH_HMAC },
		{ "basic", HR_AUTH_BASIC } };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(modes); i++) {
		char text[96];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[source s]\nauth = %s\n", modes[i].name);
		cfg = load_ok(text);
		assert_int_equal(hr_cfg_source(cfg, "s")->auth, modes[i].mode);
		hr_cfg_free(cfg);
	}
}

static void
auth_rejects_unknown_mode_and_lists_choices(void **state)
{
	(void)state;
	assert_load_error("[source s]\nauth = jwt\n", "t.conf:2",
	    "auth: \"jwt\" is not one of none, token, standard-webhooks, hmac, basic, daily");
}

static void
hmac_keys_are_parsed(void **state)
{
	struct hr_cfg *cfg = load_ok("[source gh]\nauth = hmac\nsecret_file = /run/gh.secret\n"
	                             "hmac_header = X-Hub-Signature-256\nhmac_algorithm = sha512\n"
	                             "hmac_encoding = base64\nhmac_prefix = sha256=\n"
	                             "hmac_signed = timestamp.body\n"
	                             "hmac_timestamp_header = X-Timestamp\ntolerance = 90s\n");
	const struct hr_source_cfg *src = hr_cfg_source(cfg, "gh");

	(void)state;
	assert_int_equal(src->auth, HR_AUTH_HMAC);
	assert_string_equal(src->secret_file, "/run/gh.secret");
	assert_string_equal(src->hmac_header, "X-Hub-Signature-256");
	assert_int_equal(src->hmac_algorithm, HR_HMAC_SHA512);
	assert_int_equal(src->hmac_encoding, HR_ENC_BASE64);
	assert_string_equal(src->hmac_prefix, "sha256=");
	assert_int_equal(src->hmac_signed, HR_SIGNED_TIMESTAMP_BODY);
	assert_string_equal(src->hmac_timestamp_header, "X-Timestamp");
	assert_int_equal(src->tolerance_ms, 90000);
	hr_cfg_free(cfg);
}

static void
hmac_header_must_be_a_header_name(void **state)
{
	(void)state;
	assert_load_error("[source s]\nhmac_header = X Signature\n", "t.conf:2",
	    "hmac_header: \"X Signature\" is not a header name (A-Z a-z 0-9 and "
	    "!#$%&'*+-.^_`|~)");
	assert_load_error_has("[source s]\nhmac_header =\n", "must not be empty");
	assert_load_error_has("[source s]\nhmac_timestamp_header = X:T\n", "not a header name");
}

static void
hmac_prefix_is_bounded(void **state)
{
	(void)state;
	assert_load_error("[source s]\nhmac_prefix = 0123456789012345678901234567890123\n",
	    "t.conf:2", "hmac_prefix: is longer than 31 bytes");
}

static void
timestamp_body_without_timestamp_header_is_an_error(void **state)
{
	(void)state;
	assert_load_error("[source s]\nauth = hmac\nhmac_signed = timestamp.body\n\n[server]\n",
	    "t.conf:3", "[source s]: hmac_signed = timestamp.body needs hmac_timestamp_header");
}

static void
timestamp_header_may_come_after_hmac_signed(void **state)
{
	struct hr_cfg *cfg = load_ok("[source s]\nauth = hmac\nhmac_signed = timestamp.body\n"
	                             "hmac_timestamp_header = X-Ts\n");

	(void)state;
	assert_string_equal(hr_cfg_source(cfg, "s")->hmac_timestamp_header, "X-Ts");
	hr_cfg_free(cfg);
}

static void
tolerance_is_bounded(void **state)
{
	(void)state;
	assert_load_error(
	    "[source s]\ntolerance = 0s\n", "t.conf:2", "tolerance: 0s is out of range (1s..1d)");
}

static void
allow_cidrs_accepts_ipv4_ipv6_and_single_addresses(void **state)
{
	struct hr_cfg *cfg = load_ok("[source s]\nallow_cidrs = 10.0.0.0/8, 192.0.2.7,"
	                             "2001:db8::/32 , ::1, ::ffff:192.0.2.0/120, 0.0.0.0/0\n");
	const struct hr_strlist *l = &hr_cfg_source(cfg, "s")->allow_cidrs;

	(void)state;
	assert_int_equal(l->n, 6);
	assert_string_equal(l->v[0], "10.0.0.0/8");
	assert_string_equal(l->v[1], "192.0.2.7");
	assert_string_equal(l->v[2], "2001:db8::/32");
	assert_string_equal(l->v[3], "::1");
	assert_string_equal(l->v[4], "::ffff:192.0.2.0/120");
	assert_string_equal(l->v[5], "0.0.0.0/0");
	hr_cfg_free(cfg);
}

static void
allow_cidrs_rejects_a_bad_cidr(void **state)
{
	const char *bad[] = { "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.1/", "10.0.0.1/+8",
		"10.0.0.1/8/8", "example.com", "10.0.0.0/-1", "1.2.3.4.5", "fe80::1%eth0",
		"[::1]" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[128], want[200];

		snprintf(text, sizeof(text), "[source s]\nallow_cidrs = 10.0.0.0/8, %s\n", bad[i]);
		snprintf(want, sizeof(want),
		    "allow_cidrs: \"%s\" is not an address or CIDR (e.g. 10.0.0.0/8, "
		    "2001:db8::/32)",
		    bad[i]);
		assert_load_error(text, "t.conf:2", want);
	}
}

/* "192.0.2.10/24" could mean the host or its /24: an access list must not guess. */
static void
cidr_with_host_bits_is_refused(void **state)
{
	(void)state;
	assert_load_error("[source s]\nallow_cidrs = 192.0.2.10/24\n", "t.conf:2",
	    "allow_cidrs: \"192.0.2.10/24\" has bits set past its /24 prefix: write "
	    "192.0.2.0/24 for the block, or the address alone for one host");
	assert_load_error("[source s]\ntrusted_proxies = 2001:db8::1/64\n", "t.conf:2",
	    "trusted_proxies: \"2001:db8::1/64\" has bits set past its /64 prefix: write "
	    "2001:db8::/64 for the block, or the address alone for one host");
	assert_load_error_has(
	    "[source s]\nallow_cidrs = ::ffff:192.0.2.1/120\n", "write 192.0.2.0/24 for the block");
}

static void
trusted_proxies_is_a_list_of_cidrs(void **state)
{
	struct hr_cfg *cfg = load_ok("[source s]\ntrusted_proxies = 127.0.0.1, fd00::/8\n");

	(void)state;
	assert_int_equal(hr_cfg_source(cfg, "s")->trusted_proxies.n, 2);
	hr_cfg_free(cfg);
	assert_load_error_has(
	    "[source s]\ntrusted_proxies = proxy.local\n", "is not an address or CIDR");
}

static void
dedup_accepts_each_form(void **state)
{
	const char *good[] = { "auto", "body", "off", "header:webhook-id", "header:X-Request-Id" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(good); i++) {
		char text[96];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[source s]\ndedup = %s\n", good[i]);
		cfg = load_ok(text);
		assert_string_equal(hr_cfg_source(cfg, "s")->dedup, good[i]);
		hr_cfg_free(cfg);
	}
}

static void
dedup_rejects_other_forms(void **state)
{
	const char *bad[] = { "Auto", "header:", "header:X Id", "header", "sometimes", "hash" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[96], want[160];

		snprintf(text, sizeof(text), "[source s]\ndedup = %s\n", bad[i]);
		snprintf(want, sizeof(want), "dedup: \"%s\" is not auto, body, off or header:NAME",
		    bad[i]);
		assert_load_error(text, "t.conf:2", want);
	}
}

static void
dedup_window_is_a_duration(void **state)
{
	struct hr_cfg *cfg = load_ok("[source s]\ndedup_window = 36h\n");

	(void)state;
	assert_int_equal(hr_cfg_source(cfg, "s")->dedup_window_ms, INT64_C(36) * 3600 * 1000);
	hr_cfg_free(cfg);
	assert_load_error_has("[source s]\ndedup_window = 30s\n", "out of range (1m..365d)");
}

/* Numbers (rate) */

static void
rate_accepts_whole_and_fractional_numbers(void **state)
{
	static const struct {
		const char *text;
		double want;
	} cases[] = { { "10", 10.0 }, { "0.5", 0.5 }, { "0", 0.0 }, { "2.25", 2.25 },
		{ "0.000001", 0.000001 }, { "1000000", 1000000.0 } };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(cases); i++) {
		char text[96];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[source s]\nrate = %s\n", cases[i].text);
		cfg = load_ok(text);
		assert_true(hr_cfg_source(cfg, "s")->rate == cases[i].want);
		hr_cfg_free(cfg);
	}
}

static void
rate_rejects_signs_exponents_and_junk(void **state)
{
	const char *bad[] = { "-1", "+1", "1e3", ".5", "1.", "0.1234567", "inf", "nan", "1,5",
		"0x10", "" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[96], want[128];

		snprintf(text, sizeof(text), "[source s]\nrate = %s\n", bad[i]);
		snprintf(want, sizeof(want), "rate: \"%s\" is not a number (e.g. 10, 0.5)", bad[i]);
		assert_load_error(text, "t.conf:2", want);
	}
}

static void
rate_rejects_out_of_range(void **state)
{
	(void)state;
	assert_load_error("[source s]\nrate = 1000000.5\n", "t.conf:2",
	    "rate: 1000000.5 is out of range (0..1000000)");
	assert_load_error_has("[source s]\nrate = 99999999999999999999\n", "out of range");
}

static void
burst_is_a_positive_integer(void **state)
{
	struct hr_cfg *cfg = load_ok("[source s]\nrate = 2\nburst = 5\n");

	(void)state;
	assert_int_equal(hr_cfg_source(cfg, "s")->burst, 5);
	hr_cfg_free(cfg);
	assert_load_error(
	    "[source s]\nburst = 0\n", "t.conf:2", "burst: 0 is out of range (1..1000000)");
}

/* Lists */

static void
list_items_are_trimmed(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "match =   tavus.* ,agenthuman.session,  *.error\t\n");
	const struct hr_strlist *l = &hr_cfg_destination(cfg, "d")->match;

	(void)state;
	assert_int_equal(l->n, 3);
	assert_string_equal(l->v[0], "tavus.*");
	assert_string_equal(l->v[1], "agenthuman.session");
	assert_string_equal(l->v[2], "*.error");
	hr_cfg_free(cfg);
}

static void
list_of_one_item_has_no_comma(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "match = tavus.*\n");

	(void)state;
	assert_int_equal(hr_cfg_destination(cfg, "d")->match.n, 1);
	hr_cfg_free(cfg);
}

static void
list_rejects_empty_items(void **state)
{
	const char *bad[] = { "*,,*", "*,", ",*", " , ", "*, ,*", "," };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[128];

		snprintf(text, sizeof(text), DEST "match = %s\n", bad[i]);
		assert_load_error(text, "t.conf:3", "match: an item of the list is empty");
	}
}

static void
empty_list_value_is_an_empty_list(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "match =\nsources =   \n");

	(void)state;
	assert_int_equal(hr_cfg_destination(cfg, "d")->match.n, 0);
	assert_null(hr_cfg_destination(cfg, "d")->match.v);
	assert_int_equal(hr_cfg_destination(cfg, "d")->sources.n, 0);
	hr_cfg_free(cfg);
}

static void
list_rejects_more_items_than_its_bound(void **state)
{
	char text[1024] = DEST "match = tavus.*";

	(void)state;
	for (int i = 0; i < 64; i++)
		strcat(text, ",tavus.*");
	strcat(text, "\n");
	assert_load_error(text, "t.conf:3", "match: more than 64 items");
}

static void
list_key_set_twice_is_a_duplicate(void **state)
{
	(void)state;
	assert_load_error(DEST "match = tavus.*\nmatch = daily.*\n", "t.conf:4",
	    "duplicate key match (first set on line 3)");
}

static void
match_rejects_a_bad_glob(void **state)
{
	(void)state;
	assert_load_error(DEST "match = tavus.*, tavus conversation\n", "t.conf:3",
	    "match: \"tavus conversation\" is not a kind glob (A-Z a-z 0-9 _ . - and the "
	    "wildcards * ?)");
}

/*
 * A glob that names no kind would route nothing, and say nothing: the API's ?kind=
 * refuses it, and so does the file (one rule, hr_kind_glob_set()).
 */
static void
match_rejects_a_glob_that_names_no_known_kind(void **state)
{
	(void)state;
	assert_load_error(DEST "match = tavus.*, tavus.conversaton.*\n", "t.conf:3",
	    "match: \"tavus.conversaton.*\" matches no known kind (see docs/events.md)");
	assert_load_error(DEST "match = agenthuman.session.created\n", "t.conf:3",
	    "match: \"agenthuman.session.created\" is not a known kind (see docs/events.md)");
}

/* Duration lists (retry_schedule) */

static void
retry_schedule_defaults_to_standard_webhooks(void **state)
{
	/* Retries after 5s, 5m, 30m, 2h, 5h, 10h, 10h: with the first attempt, 8 in all. */
	static const int64_t want[] = { 5000, 300000, 1800000, 7200000, 18000000, 36000000,
		36000000 };
	struct hr_cfg *cfg = load_ok(DEST);
	const struct hr_durlist *l = &hr_cfg_destination(cfg, "d")->retry_schedule;

	(void)state;
	assert_int_equal(l->n, HR_ARRAY_LEN(want));
	for (size_t i = 0; i < l->n; i++)
		assert_int_equal(l->ms[i], want[i]);
	hr_cfg_free(cfg);
}

static void
retry_schedule_replaces_the_default(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "retry_schedule = 250ms ,1.5m, 2h,0\n");
	const struct hr_durlist *l = &hr_cfg_destination(cfg, "d")->retry_schedule;

	(void)state;
	assert_int_equal(l->n, 4);
	assert_int_equal(l->ms[0], 250);
	assert_int_equal(l->ms[1], 90000);
	assert_int_equal(l->ms[2], 7200000);
	assert_int_equal(l->ms[3], 0);
	hr_cfg_free(cfg);
}

static void
retry_schedule_needs_an_entry(void **state)
{
	(void)state;
	assert_load_error(
	    DEST "retry_schedule =\n", "t.conf:3", "retry_schedule: needs at least 1 item");
}

static void
retry_schedule_takes_50_entries_not_51(void **state)
{
	char text[512] = DEST "retry_schedule = 1s";
	struct hr_cfg *cfg;

	(void)state;
	for (int i = 1; i < 50; i++)
		strcat(text, ",1s");
	strcat(text, "\n");
	cfg = load_ok(text);
	assert_int_equal(hr_cfg_destination(cfg, "d")->retry_schedule.n, 50);
	hr_cfg_free(cfg);
	text[strlen(text) - 1] = '\0';
	strcat(text, ",1s\n");
	assert_load_error(text, "t.conf:3", "retry_schedule: more than 50 items");
}

static void
retry_schedule_rejects_a_bad_entry(void **state)
{
	(void)state;
	assert_load_error(DEST "retry_schedule = 0s, soon\n", "t.conf:3",
	    "retry_schedule: \"soon\" is not a duration (e.g. 30s, 250ms)");
	assert_load_error(DEST "retry_schedule = 0s, 31d\n", "t.conf:3",
	    "retry_schedule: 31d is out of range (0s..30d)");
	assert_load_error(DEST "retry_schedule = 0s,,5s\n", "t.conf:3",
	    "retry_schedule: an item of the list is empty");
}

/* The repeatable header key */

static void
header_lines_add_one_item_each_commas_kept(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "header = X-A: 1, 2\ntimeout = 5s\n"
	                                  "header: Authorization: Bearer abc\n");
	const struct hr_strlist *l = &hr_cfg_destination(cfg, "d")->headers;

	(void)state;
	assert_int_equal(l->n, 2);
	assert_string_equal(l->v[0], "X-A: 1, 2");
	assert_string_equal(l->v[1], "Authorization: Bearer abc");
	hr_cfg_free(cfg);
}

static void
header_needs_a_name_a_colon_and_a_value(void **state)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{ "NoColon", "is not Name: value" },
		{ ": v", "is not Name: value" },
		{ "X A: v", "is not Name: value" },
		{ "X(A): v", "is not Name: value" },
		{ "X-A:", "has no value after the colon" },
		{ "X-A:   ", "has no value after the colon" },
		/* a forwarding review: both were accepted and sent */
		{ "X-Ctl: a\x01b", "has a control character in its value" },
		{ "X-Ctl: a\x7f", "has a control character in its value" },
		{ "webhook-foo: x", "webhook-foo is set by hookrelay and cannot be configured" },
		{ "Webhook-Version: 2", "Webhook-Version is set by hookrelay" },
	};

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[128];

		snprintf(text, sizeof(text), DEST "header = %s\n", bad[i].line);
		assert_load_error_has(text, bad[i].why);
	}
}

static void
header_error_names_the_repeated_line(void **state)
{
	(void)state;
	assert_load_error(DEST "header = X-A: 1\nheader = X(B): 2\n", "t.conf:4",
	    "header: \"X(B)\" is not Name: value (a header name, a colon, a value)");
}

/* A name on two header lines went out twice on every forward (forwarding.md has one
 * line per header): the second line is refused, whatever the case of its name. */
static void
header_name_set_twice_is_refused_at_its_second_line(void **state)
{
	(void)state;
	assert_load_error(DEST "header = X-Tenant: acme\ntimeout = 5s\nheader = x-tenant: other\n",
	    "t.conf:5",
	    "header: x-tenant is set on an earlier line too (one line per header; join its "
	    "values with commas)");
}

/* The [storage] checks made once the file is read name the line of their key, as
 * every other error does (they named the file alone). */
static void
storage_checks_name_their_line(void **state)
{
	(void)state;
	assert_load_error("[storage]\nbackend = postgresql\n", "t.conf:2",
	    "[storage] backend = postgresql needs url");
	assert_load_error("[storage]\nbackend = postgresql\nurl = dbname=x\n\nmax_size = 1GiB\n",
	    "t.conf:5",
	    "[storage] max_size is for SQLite: PostgreSQL gives space back by vacuum, not per"
	    " row deleted; use retain in [source] (docs/scaling.md)");
	assert_load_error("[storage]\nbackend = postgresql\nurl = dbname=x\nlease = 10s\n" DEST
	                  "timeout = 30s\n",
	    "t.conf:4",
	    "[storage] lease must be at least twice [destination d] timeout: a claim must"
	    " outlive its attempt");
	/* No lease line (the default 10 minutes): the timeout's line is at fault. */
	assert_load_error("[storage]\nbackend = postgresql\nurl = dbname=x\n" DEST "\n"
	                  "timeout = 6m\n",
	    "t.conf:7",
	    "[storage] lease must be at least twice [destination d] timeout: a claim must"
	    " outlive its attempt");
}

/* The forwarder and the outbox hold 64 destinations: the 65th header is the error. */
static void
destinations_past_64_name_the_line(void **state)
{
	char *text = calloc(1, 65 * 64 + 16);
	size_t len = 0;

	(void)state;
	assert_non_null(text);
	for (int i = 0; i < 65; i++)
		len += (size_t)sprintf(text + len, "[destination d%d]\nurl = http://a/h\n", i);
	assert_load_error(text, "t.conf:129", "more than 64 [destination] sections");
	text[len - strlen("[destination d64]\nurl = http://a/h\n")] = '\0';
	hr_cfg_free(load_ok(text));
	free(text);
}

/* A node given the shared database's url but not the backend would keep its events. */
static void
url_without_postgresql_is_an_error(void **state)
{
	(void)state;
	assert_load_error("[storage]\npath = /tmp/x.db\nurl = host=db1 dbname=hookrelay\n",
	    "t.conf:3",
	    "[storage] url is for backend = postgresql: without that line this node stores in "
	    "SQLite (path = /tmp/x.db)");
}

/* A credential written for a source that checks none: the source would be open. */
static void
credentials_without_auth_are_an_error(void **state)
{
	static const char *const cases[][2] = {
		{ "secret_file = /etc/hookrelay/gh.secret", "secret_file" },
		{ "hmac_header = X-Hub-Signature-256", "hmac_header" },
		{ "hmac_prefix = sha256=", "hmac_prefix" },
		{ "hmac_timestamp_header = X-Ts", "hmac_timestamp_header" },
		/* Were accepted though the reference named every hmac_* key (review R4). */
		{ "hmac_algorithm = sha512", "hmac_algorithm" },
		{ "hmac_encoding = base64", "hmac_encoding" },
	};

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(cases); i++) {
		char text[160], want[300];

		snprintf(text, sizeof(text), "[source gh]\nprovider = auto\n%s\n", cases[i][0]);
		snprintf(want, sizeof(want),
		    "[source gh]: %s is set but auth = none, so no request is checked and anyone "
		    "may post here; set auth (token, hmac, basic, standard-webhooks or daily), or "
		    "remove %s",
		    cases[i][1], cases[i][1]);
		assert_load_error(text, "t.conf:3", want);
	}
	/* Said outright, or a Daily source's own default, auth makes them fine. */
	hr_cfg_free(load_ok("[source gh]\nauth = hmac\nsecret_file = /etc/hookrelay/gh.secret\n"));
	hr_cfg_free(
	    load_ok("[source d]\nprovider = daily\nsecret_file = /etc/hookrelay/d.secret\n"));
}

/* The value of a header line is often a credential: an error quotes the name only. */
static void
header_errors_never_quote_a_value(void **state)
{
	static const char *const bad[] = {
		"Authorization : Bearer sk_live_0123456789",
		"sk_live_0123456789",
		"Authorization Bearer sk_live_0123456789",
	};

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		struct hr_error err = { 0 };
		char text[256];

		snprintf(text, sizeof(text), DEST "header = %s\n", bad[i]);
		assert_int_equal(load_err(text, &err), HR_EINVAL);
		assert_non_null(strstr(err.msg, "is not Name: value"));
		if (strstr(err.msg, "sk_live") != NULL)
			fail_msg("the error quotes the value: %s", err.msg);
	}
}

static void
header_repeats_are_bounded(void **state)
{
	char text[2048] = DEST;

	(void)state;
	for (int i = 0; i < 65; i++)
		snprintf(
		    text + strlen(text), sizeof(text) - strlen(text), "header = X-A%d: 1\n", i);
	assert_load_error(text, "t.conf:67", "header: more than 64 items");
}

static void
headers_of_two_destinations_stay_apart(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "header = X-A: 1\n[destination e]\n"
	                                  "url = https://example.com/\nheader = X-B: 2\n"
	                                  "header = X-C: 3\n");

	(void)state;
	assert_int_equal(hr_cfg_destination(cfg, "d")->headers.n, 1);
	assert_int_equal(hr_cfg_destination(cfg, "e")->headers.n, 2);
	assert_string_equal(hr_cfg_destination(cfg, "e")->headers.v[0], "X-B: 2");
	hr_cfg_free(cfg);
}

/* [destination] */

static void
destination_keys_have_defaults(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST);
	const struct hr_destination_cfg *d = hr_cfg_destination(cfg, "d");

	(void)state;
	assert_int_equal(cfg->ndestinations, 1);
	assert_string_equal(d->url, "http://127.0.0.1:9000/hook");
	assert_int_equal(d->match.n, 0);
	assert_int_equal(d->sources.n, 0);
	assert_int_equal(d->headers.n, 0);
	assert_int_equal(d->timeout_ms, 15000);
	assert_int_equal(d->connect_timeout_ms, 5000);
	assert_int_equal(d->retry_schedule.n, 7);
	assert_int_equal(d->jitter_pct, 20);
	assert_int_equal(d->max_in_flight, 16);
	assert_false(d->ordered);
	assert_string_equal(d->secret_file, "");
	assert_false(d->allow_private);
	assert_int_equal(d->breaker_failures, 10);
	assert_int_equal(d->breaker_cooldown_ms, 30000);
	assert_false(d->retry_4xx);
	hr_cfg_free(cfg);
}

static void
destination_keys_are_parsed(void **state)
{
	struct hr_cfg *cfg =
	    load_ok("[source tv]\n[source pf]\n" DEST
	            "match = tavus.conversation.*\nsources = tv, pf\ntimeout = 1m\n"
	            "connect_timeout = 250ms\njitter = 0\nmax_in_flight = 1024\nordered = yes\n"
	            "secret_file = /etc/hookrelay/d.whsec\nallow_private = true\n"
	            "breaker_failures = 3\nbreaker_cooldown = 100ms\nretry_4xx = on\n");
	const struct hr_destination_cfg *d = hr_cfg_destination(cfg, "d");

	(void)state;
	assert_string_equal(d->match.v[0], "tavus.conversation.*");
	assert_int_equal(d->sources.n, 2);
	assert_string_equal(d->sources.v[1], "pf");
	assert_int_equal(d->timeout_ms, 60000);
	assert_int_equal(d->connect_timeout_ms, 250);
	assert_int_equal(d->jitter_pct, 0);
	assert_int_equal(d->max_in_flight, 1024);
	assert_true(d->ordered);
	assert_string_equal(d->secret_file, "/etc/hookrelay/d.whsec");
	assert_true(d->allow_private);
	assert_int_equal(d->breaker_failures, 3);
	assert_int_equal(d->breaker_cooldown_ms, 100);
	assert_true(d->retry_4xx);
	hr_cfg_free(cfg);
}

static void
destination_without_url_names_its_section_line(void **state)
{
	(void)state;
	assert_load_error("[server]\n\n[destination d]\ntimeout = 5s\n[source s]\n", "t.conf:3",
	    "[destination d]: url is required");
}

static void
later_line_errors_come_before_end_of_file_checks(void **state)
{
	(void)state;
	assert_load_error("[destination d]\n[server]\nthreads = 0\n", "t.conf:3", NULL);
}

static void
url_must_be_http_or_https(void **state)
{
	const char *bad[] = { "ftp://example.com/x", "file:///etc/passwd", "127.0.0.1:9000/hook",
		"http://", "http://exa mple.com/", "mailto:a@example.com", "//example.com/x",
		"gopher://example.com/" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[160], want[160];

		snprintf(text, sizeof(text), "[destination d]\nurl = %s\n", bad[i]);
		snprintf(want, sizeof(want),
		    "url: not an http:// or https:// URL with a host (http://HOST/...)");
		assert_load_error(text, "t.conf:2", want);
	}
}

/* libcurl reads "http:///x" as host "x": a file that lost its host must not load. */
static void
url_needs_a_host_right_after_the_slashes(void **state)
{
	const char *bad[] = { "http:///x", "https:///hook", "http:/x", "http:x", "http://user@/x",
		"http://:8080/x", "http://?x", "http://#x", "http://u:s3cret@/x" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		char text[160];
		struct hr_error err = { 0 };

		snprintf(text, sizeof(text), "[destination d]\nurl = %s\n", bad[i]);
		assert_int_equal(load_err(text, &err), HR_EINVAL);
		assert_string_equal(err.field, "t.conf:2");
		assert_non_null(strstr(err.msg, "with a host"));
		/* The reason never repeats the URL: it may carry a password. */
		assert_null(strstr(err.msg, "s3cret"));
	}
}

/* fgets() stops at a NUL byte: the line used to be reported as too long. */
static void
nul_byte_in_the_file_is_named_as_such(void **state)
{
	static const char text[] = "[source a]\nprovider = t\0avus\n";
	char path[96];
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	int fd;

	(void)state;
	tmp_template(path, sizeof(path), "hr-test-cfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(hr_cfg_load(path, &cfg, &err), HR_EINVAL);
	unlink(path);
	assert_null(cfg);
	assert_string_equal(err.field + strlen(err.field) - 2, ":2");
	assert_string_equal(err.msg, "a NUL byte at column 13: the file is not text");
}

static void
url_accepts_http_https_and_ipv6(void **state)
{
	const char *good[] = { "https://example.com/hook?x=1&y=2", "http://[::1]:9000/h",
		"HTTP://EXAMPLE.COM", "https://user:pw@example.com:8443/a/b" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(good); i++) {
		char text[160];
		struct hr_cfg *cfg;

		snprintf(text, sizeof(text), "[destination d]\nurl = %s\n", good[i]);
		cfg = load_ok(text);
		assert_string_equal(hr_cfg_destination(cfg, "d")->url, good[i]);
		hr_cfg_free(cfg);
	}
}

static void
url_set_empty_is_an_error(void **state)
{
	(void)state;
	assert_load_error("[destination d]\nurl =\n", "t.conf:2", "url: must not be empty");
}

static void
sources_must_name_a_configured_source(void **state)
{
	(void)state;
	assert_load_error("[source a]\n" DEST "\nsources = a, b\n[source c]\n", "t.conf:5",
	    "sources: there is no [source b]");
}

static void
sources_may_name_a_source_defined_later(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST "sources = late\n[source late]\n");

	(void)state;
	assert_string_equal(hr_cfg_destination(cfg, "d")->sources.v[0], "late");
	hr_cfg_free(cfg);
}

static void
sources_rejects_an_invalid_name(void **state)
{
	(void)state;
	assert_load_error(DEST "sources = a/b\n", "t.conf:3",
	    "sources: \"a/b\" is not a section name (1 to 63 of A-Z a-z 0-9 _ . -)");
}

static void
destination_integers_are_bounded(void **state)
{
	(void)state;
	assert_load_error(
	    DEST "jitter = 101\n", "t.conf:3", "jitter: 101 is out of range (0..100)");
	assert_load_error(
	    DEST "max_in_flight = 0\n", "t.conf:3", "max_in_flight: 0 is out of range (1..1024)");
	assert_load_error(DEST "max_in_flight = 1025\n", "t.conf:3",
	    "max_in_flight: 1025 is out of range (1..1024)");
	assert_load_error(DEST "breaker_failures = 0\n", "t.conf:3",
	    "breaker_failures: 0 is out of range (1..1000)");
}

static void
breaker_cooldown_is_at_least_100ms(void **state)
{
	(void)state;
	assert_load_error(DEST "breaker_cooldown = 99ms\n", "t.conf:3",
	    "breaker_cooldown: 99ms is out of range (100ms..10m)");
}

static void
duplicate_destination_names_its_line(void **state)
{
	(void)state;
	assert_load_error(
	    DEST "[destination d]\n", "t.conf:3", "duplicate section [destination d]");
}

static void
source_and_destination_may_share_a_name(void **state)
{
	struct hr_cfg *cfg = load_ok("[source d]\n" DEST "sources = d\n");

	(void)state;
	assert_non_null(hr_cfg_source(cfg, "d"));
	assert_non_null(hr_cfg_destination(cfg, "d"));
	hr_cfg_free(cfg);
}

/* The forwarder keeps copies of destinations past the configuration they came from. */
static void
destination_copy_outlives_its_configuration(void **state)
{
	struct hr_cfg *cfg = load_ok("[destination d]\nurl = http://example.com/h\n"
	                             "match = tavus.*, pailflow.*\nheader = X-A: 1\n"
	                             "retry_schedule = 1s, 2s, 3s\n");
	struct hr_destination_cfg copy;

	(void)state;
	assert_int_equal(hr_cfg_destination_copy(&copy, &cfg->destinations[0]), HR_OK);
	assert_ptr_not_equal(copy.match.v, cfg->destinations[0].match.v);
	assert_ptr_not_equal(copy.retry_schedule.ms, cfg->destinations[0].retry_schedule.ms);
	hr_cfg_free(cfg); /* under ASan any pointer into it would now fail below */
	assert_string_equal(copy.name, "d");
	assert_string_equal(copy.url, "http://example.com/h");
	assert_int_equal(copy.match.n, 2);
	assert_string_equal(copy.match.v[1], "pailflow.*");
	assert_int_equal(copy.headers.n, 1);
	assert_string_equal(copy.headers.v[0], "X-A: 1");
	assert_int_equal(copy.retry_schedule.n, 3);
	assert_int_equal(copy.retry_schedule.ms[2], 3000);
	hr_cfg_destination_clear(&copy);
	hr_cfg_destination_clear(NULL);
}

static void
destination_lookup_misses_unknown_names(void **state)
{
	struct hr_cfg *cfg = load_ok(DEST);

	(void)state;
	assert_null(hr_cfg_destination(cfg, "e"));
	assert_null(hr_cfg_destination(cfg, ""));
	hr_cfg_free(cfg);
}

static void
failed_load_frees_the_lists_it_parsed(void **state)
{
	(void)state; /* the leak check of the sanitizer build is the assertion */
	assert_load_error(
	    "[source s]\nallow_cidrs = 10.0.0.0/8, ::1\n" DEST
	    "match = tavus.*, daily.*\nheader = X-A: 1\nheader = X-B: 2\nretry_schedule = 1s\n"
	    "jitter = 500\n",
	    "t.conf:9", NULL);
}

static void
printed_lists_load_back_the_same(void **state)
{
	struct hr_cfg *a = load_ok("[source s]\nauth = hmac\nallow_cidrs = 10.0.0.0/8, ::1\n"
	                           "rate = 0.5\nhmac_prefix = sha256=\n" DEST
	                           "match = tavus.*, *.error\nsources = s\nheader = X-A: 1, 2\n"
	                           "header = X-B: b\nretry_schedule = 0s, 250ms, 90s\n"
	                           "[destination e]\nurl = https://example.com/\n");
	struct hr_cfg *b;
	char *ta = capture_cfg(a), *tb;

	(void)state;
	assert_non_null(strstr(ta, "allow_cidrs = 10.0.0.0/8, ::1\n"));
	assert_non_null(strstr(ta, "rate = 0.5\n"));
	assert_non_null(strstr(ta, "header = X-A: 1, 2\nheader = X-B: b\n"));
	assert_non_null(strstr(ta, "retry_schedule = 0s, 250ms, 90s\n"));
	assert_non_null(strstr(ta, "[destination e]\nurl = https://example.com/\n"));
	assert_non_null(strstr(ta, "match =\nsources =\nheader =\n"));
	b = load_ok(ta);
	tb = capture_cfg(b);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	hr_cfg_free(a);
	hr_cfg_free(b);
}

static void
markdown_marks_required_and_repeatable_keys(void **state)
{
	char *md = capture(hr_cfg_print_markdown);

	(void)state;
	assert_non_null(strstr(md, "\n## [destination NAME]\n"));
	assert_non_null(strstr(md, "| `url` | string | (required) |"));
	assert_non_null(strstr(md, "| `header` | repeatable | (empty) | at most 64 lines |"));
	assert_non_null(strstr(md,
	    "| `retry_schedule` | durations | "
	    "`5s, 5m, 30m, 2h, 5h, 10h, 10h` | 1..50 items, each 0s..30d |"));
	assert_non_null(strstr(md, "| `rate` | number | `0` | 0..1000000 |"));
	free(md);
}

/* hr_cfg_parse_size / hr_cfg_parse_duration_ms */

static void
parse_size_accepts_units(void **state)
{
	static const struct {
		const char *text;
		size_t want;
	} cases[] = { { "0", 0 }, { "1024", 1024 }, { "512k", 512 * 1024 }, { "512KB", 512 * 1024 },
		{ "512KiB", 512 * 1024 }, { "512kib", 512 * 1024 }, { "8M", 8 << 20 },
		{ "8MiB", 8 << 20 }, { "8 MiB", 8 << 20 }, { "1G", 1 << 30 }, { "1GiB", 1 << 30 },
		{ "100b", 100 } };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(cases); i++) {
		size_t v = 0;

		assert_int_equal(hr_cfg_parse_size(cases[i].text, &v), HR_OK);
		assert_int_equal(v, cases[i].want);
	}
}

static void
parse_size_rejects_bad_text(void **state)
{
	const char *bad[] = { "", "-1", "1.5M", "k", "8MiBx", "8 M iB", " 8M", "8T", "0x10",
		"99999999999999999999", "9999999999999G" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		size_t v = 7;

		assert_int_equal(hr_cfg_parse_size(bad[i], &v), HR_EINVAL);
		assert_int_equal(v, 7);
	}
}

static void
parse_duration_accepts_units_and_fractions(void **state)
{
	static const struct {
		const char *text;
		int64_t want;
	} cases[] = { { "250ms", 250 }, { "0.2s", 200 }, { "15s", 15000 }, { "15", 15000 },
		{ "1.5m", 90000 }, { "5m", 300000 }, { "2h", 7200000 },
		{ "30d", INT64_C(30) * 86400 * 1000 }, { "0", 0 }, { "0.001s", 1 },
		{ "1.25", 1250 } };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(cases); i++) {
		int64_t v = 0;

		assert_int_equal(hr_cfg_parse_duration_ms(cases[i].text, &v), HR_OK);
		assert_int_equal(v, cases[i].want);
	}
}

static void
parse_duration_rejects_bad_text(void **state)
{
	const char *bad[] = { "", "-5s", "5x", "s", ".5s", "5.s", "1.0001s", "0.5ms", "5S", "1h30m",
		"1.0000000001s", "9999999999999999999", "999999999999999d" };

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(bad); i++) {
		int64_t v = 7;

		assert_int_equal(hr_cfg_parse_duration_ms(bad[i], &v), HR_EINVAL);
		assert_int_equal(v, 7);
	}
}

/* The shipped config and the generated texts */

static void
shipped_config_loads(void **state)
{
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	const struct hr_source_cfg *src;

	(void)state;
	if (hr_cfg_load(SHIPPED_CONF, &cfg, &err) != HR_OK)
		fail_msg("%s: %s", err.field, err.msg);
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_true(strncmp(cfg->db_path, "var/", 4) == 0);
	src = hr_cfg_source(cfg, "default");
	assert_non_null(src);
	assert_int_equal(src->provider, HR_PROVIDER_AUTO);
	assert_int_equal(src->auth, HR_AUTH_NONE);
	assert_int_equal(cfg->ndestinations, 0); /* the example is commented out */
	hr_cfg_free(cfg);
}

/* Where "[section" starts in `text`, or "#[section" (commented out); NULL if neither. */
static const char *
section_start(const char *text, const char *section)
{
	char head[80];
	const char *sec;

	snprintf(head, sizeof(head), "\n[%s", section);
	if ((sec = strstr(text, head)) != NULL)
		return sec;
	snprintf(head, sizeof(head), "\n#[%s", section);
	return strstr(text, head);
}

/* The first of "\n[" and "\n#[" after the section starting at `sec`, or NULL. */
static const char *
next_section(const char *sec)
{
	const char *a = strstr(sec + 1, "\n["), *b = strstr(sec + 1, "\n#[");

	if (a == NULL)
		return b;
	return b != NULL && b < a ? b : a;
}

/* Each option appears as "key =" or "#key =" in its section, which may be commented out. */
static void
shipped_config_mentions_every_option(void **state)
{
	char *text = slurp(SHIPPED_CONF);
	const char *key, *section;

	(void)state;
	for (size_t i = 0; (key = cfg_option_key(i, &section)) != NULL; i++) {
		char line[80];
		const char *sec = section_start(text, section), *next, *at;

		if (sec == NULL) {
			fail_msg("no [%s] section", section);
			break;
		}
		next = next_section(sec);
		snprintf(line, sizeof(line), "\n%s =", key);
		if ((at = strstr(sec, line)) == NULL) {
			snprintf(line, sizeof(line), "\n#%s =", key);
			at = strstr(sec, line);
		}
		if (at == NULL || (next != NULL && at > next))
			fail_msg("%s.%s is not in config/hookrelay.conf", section, key);
	}
	free(text);
}

static void
printed_config_loads_back_the_same(void **state)
{
	struct hr_cfg *a = load_ok("[server]\nmax_body = 3MiB\nrequest_timeout = 1.5m\n"
	                           "[api]\ntoken_file = /etc/t\n[log]\nlevel = debug\n"
	                           "[source x]\nprovider = agenthuman\n[source y]\n");
	struct hr_cfg *b;
	char *ta = capture_cfg(a), *tb;

	(void)state;
	assert_non_null(strstr(ta, "max_body = 3MiB\n"));
	assert_non_null(strstr(ta, "request_timeout = 90s\n"));
	assert_non_null(strstr(ta, "[source x]\nprovider = agenthuman\n"));
	b = load_ok(ta);
	tb = capture_cfg(b);
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	hr_cfg_free(a);
	hr_cfg_free(b);
}

static void
help_lists_every_option(void **state)
{
	char *text = capture(hr_cfg_print_help);
	const char *key, *section;

	(void)state;
	assert_non_null(strstr(text, "\n[source NAME]\n"));
	for (size_t i = 0; (key = cfg_option_key(i, &section)) != NULL; i++) {
		char line[80];

		snprintf(line, sizeof(line), "\n  %s ", key);
		if (strstr(text, line) == NULL)
			fail_msg("--help lacks %s", key);
	}
	free(text);
}

static void
markdown_ends_with_one_newline_and_is_deterministic(void **state)
{
	char *a = capture(hr_cfg_print_markdown), *b = capture(hr_cfg_print_markdown);
	size_t n = strlen(a);

	(void)state;
	assert_string_equal(a, b);
	assert_true(n > 2 && a[n - 1] == '\n' && a[n - 2] != '\n');
	assert_non_null(strstr(a, "| `max_body` | size | `8MiB` | 1KiB..512MiB |"));
	assert_non_null(strstr(a, "`auto`, `tavus`, `pailflow`, `agenthuman`"));
	free(a);
	free(b);
}

static void
committed_docs_match_the_table(void **state)
{
	char *want = capture(hr_cfg_print_markdown), *have = slurp(DOC_FILE);

	(void)state;
	if (strcmp(want, have) != 0)
		fail_msg(
		    "docs/configuration.md is stale: regenerate it from hr_cfg_print_markdown()");
	free(want);
	free(have);
}

static void
provider_daily_makes_auth_daily_the_default(void **state)
{
	struct hr_cfg *cfg = load_ok("[source d]\nprovider = daily\n"
	                             "[source e]\nprovider = daily\nauth = none\n"
	                             "[source f]\nauth = daily\n");

	(void)state;
	assert_int_equal(hr_cfg_source(cfg, "d")->auth, HR_AUTH_DAILY);
	assert_int_equal(hr_cfg_source(cfg, "e")->auth, HR_AUTH_NONE); /* said so: kept */
	assert_int_equal(hr_cfg_source(cfg, "f")->auth, HR_AUTH_DAILY);
	assert_int_equal(hr_cfg_source(cfg, "f")->provider, HR_PROVIDER_AUTO);
	hr_cfg_free(cfg);
}

/*
 * configuration.md: "Numbers ... No sign", "Negative numbers ... are errors". An
 * integer key whose range starts at 0 took "-0" (parse_int() reads a leading
 * '-', and -0 is 0, inside the range): a sign the file format has not. (A key
 * whose range starts at 1 refuses it, as out of range.)
 */
static void
a_signed_zero_is_refused_like_any_signed_number(void **state)
{
	static const char *const lines[] = {
		"[server]\nmax_connections_per_ip = -0\n[source a]\n",
		"[storage]\nrejections_max = -0\n[source a]\n",
		"[storage]\npool = -0\n[source a]\n",
		"[source a]\n[destination d]\nurl = http://127.0.0.1:9/\njitter = -0\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct hr_error err = { 0 };

		if (load_err(lines[i], &err) != HR_EINVAL)
			fail_msg("accepted: %s", lines[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(option_table_is_consistent),
		cmocka_unit_test(empty_file_gives_defaults),
		cmocka_unit_test(new_defaults_equal_an_empty_file),
		cmocka_unit_test(free_accepts_null),
		cmocka_unit_test(comments_and_blank_lines_are_ignored),
		cmocka_unit_test(crlf_line_endings_and_bom_are_accepted),
		cmocka_unit_test(colon_separates_key_and_value_too),
		cmocka_unit_test(addr_accepts_ipv4_ipv6_and_port_zero),
		cmocka_unit_test(addr_rejects_host_names_and_bad_ports),
		cmocka_unit_test(size_option_accepts_units),
		cmocka_unit_test(size_option_rejects_junk),
		cmocka_unit_test(size_option_rejects_out_of_range),
		cmocka_unit_test(duration_option_accepts_fractions),
		cmocka_unit_test(duration_option_rejects_out_of_range),
		cmocka_unit_test(int_option_accepts_bounds),
		cmocka_unit_test(int_option_rejects_out_of_range_and_junk),
		cmocka_unit_test(path_option_keeps_the_text),
		cmocka_unit_test(path_option_rejects_empty_storage_path),
		cmocka_unit_test(path_option_allows_empty_token_file),
		cmocka_unit_test(enum_option_accepts_each_log_level),
		cmocka_unit_test(enum_option_lists_the_choices),
		cmocka_unit_test(unknown_key_names_its_line),
		cmocka_unit_test(key_of_another_section_is_unknown),
		cmocka_unit_test(unknown_section_names_its_line),
		cmocka_unit_test(duplicate_key_names_both_lines),
		cmocka_unit_test(duplicate_key_across_repeated_section_is_an_error),
		cmocka_unit_test(same_key_in_two_sources_is_fine),
		cmocka_unit_test(duplicate_source_names_its_line),
		cmocka_unit_test(malformed_line_names_its_line),
		cmocka_unit_test(unclosed_section_header_is_malformed),
		cmocka_unit_test(text_after_section_header_is_an_error),
		cmocka_unit_test(key_before_any_section_is_an_error),
		cmocka_unit_test(overlong_line_is_an_error),
		cmocka_unit_test(long_value_within_the_line_limit_is_read_whole),
		cmocka_unit_test(first_error_wins),
		cmocka_unit_test(load_on_a_missing_file_names_the_file),
		cmocka_unit_test(load_on_a_directory_is_an_error),
		cmocka_unit_test(load_reports_file_and_line),
		cmocka_unit_test(long_file_name_keeps_the_line_number),
		cmocka_unit_test(source_without_keys_exists_with_defaults),
		cmocka_unit_test(two_sources_keep_their_own_settings),
		cmocka_unit_test(provider_accepts_each_choice),
		cmocka_unit_test(provider_rejects_unknown_and_lists_choices),
		cmocka_unit_test(provider_daily_makes_auth_daily_the_default),
		cmocka_unit_test(source_name_of_63_characters_is_kept_whole),
		cmocka_unit_test(source_name_of_64_characters_is_rejected),
		cmocka_unit_test(source_name_must_be_valid),
		cmocka_unit_test(plain_section_takes_no_name),
		cmocka_unit_test(source_lookup_misses_unknown_names),
		cmocka_unit_test(max_header_size_is_bounded),
		cmocka_unit_test(max_header_size_accepts_units),
		cmocka_unit_test(max_connections_per_ip_accepts_zero_for_unlimited),
		cmocka_unit_test(source_auth_keys_have_defaults),
		cmocka_unit_test(auth_accepts_each_mode),
		cmocka_unit_test(auth_rejects_unknown_mode_and_lists_choices),
		cmocka_unit_test(hmac_keys_are_parsed),
		cmocka_unit_test(hmac_header_must_be_a_header_name),
		cmocka_unit_test(hmac_prefix_is_bounded),
		cmocka_unit_test(timestamp_body_without_timestamp_header_is_an_error),
		cmocka_unit_test(timestamp_header_may_come_after_hmac_signed),
		cmocka_unit_test(tolerance_is_bounded),
		cmocka_unit_test(allow_cidrs_accepts_ipv4_ipv6_and_single_addresses),
		cmocka_unit_test(allow_cidrs_rejects_a_bad_cidr),
		cmocka_unit_test(trusted_proxies_is_a_list_of_cidrs),
		cmocka_unit_test(cidr_with_host_bits_is_refused),
		cmocka_unit_test(a_line_that_is_no_key_is_not_quoted),
		cmocka_unit_test(url_without_postgresql_is_an_error),
		cmocka_unit_test(destinations_past_64_name_the_line),
		cmocka_unit_test(credentials_without_auth_are_an_error),
		cmocka_unit_test(dedup_accepts_each_form),
		cmocka_unit_test(dedup_rejects_other_forms),
		cmocka_unit_test(dedup_window_is_a_duration),
		cmocka_unit_test(rate_accepts_whole_and_fractional_numbers),
		cmocka_unit_test(rate_rejects_signs_exponents_and_junk),
		cmocka_unit_test(rate_rejects_out_of_range),
		cmocka_unit_test(burst_is_a_positive_integer),
		cmocka_unit_test(list_items_are_trimmed),
		cmocka_unit_test(list_of_one_item_has_no_comma),
		cmocka_unit_test(list_rejects_empty_items),
		cmocka_unit_test(empty_list_value_is_an_empty_list),
		cmocka_unit_test(list_rejects_more_items_than_its_bound),
		cmocka_unit_test(list_key_set_twice_is_a_duplicate),
		cmocka_unit_test(match_rejects_a_bad_glob),
		cmocka_unit_test(match_rejects_a_glob_that_names_no_known_kind),
		cmocka_unit_test(retry_schedule_defaults_to_standard_webhooks),
		cmocka_unit_test(retry_schedule_replaces_the_default),
		cmocka_unit_test(retry_schedule_needs_an_entry),
		cmocka_unit_test(retry_schedule_takes_50_entries_not_51),
		cmocka_unit_test(retry_schedule_rejects_a_bad_entry),
		cmocka_unit_test(header_lines_add_one_item_each_commas_kept),
		cmocka_unit_test(header_needs_a_name_a_colon_and_a_value),
		cmocka_unit_test(header_error_names_the_repeated_line),
		cmocka_unit_test(header_name_set_twice_is_refused_at_its_second_line),
		cmocka_unit_test(header_errors_never_quote_a_value),
		cmocka_unit_test(storage_checks_name_their_line),
		cmocka_unit_test(header_repeats_are_bounded),
		cmocka_unit_test(headers_of_two_destinations_stay_apart),
		cmocka_unit_test(destination_keys_have_defaults),
		cmocka_unit_test(destination_keys_are_parsed),
		cmocka_unit_test(destination_without_url_names_its_section_line),
		cmocka_unit_test(later_line_errors_come_before_end_of_file_checks),
		cmocka_unit_test(url_must_be_http_or_https),
		cmocka_unit_test(url_needs_a_host_right_after_the_slashes),
		cmocka_unit_test(nul_byte_in_the_file_is_named_as_such),
		cmocka_unit_test(url_accepts_http_https_and_ipv6),
		cmocka_unit_test(url_set_empty_is_an_error),
		cmocka_unit_test(sources_must_name_a_configured_source),
		cmocka_unit_test(sources_may_name_a_source_defined_later),
		cmocka_unit_test(sources_rejects_an_invalid_name),
		cmocka_unit_test(destination_integers_are_bounded),
		cmocka_unit_test(breaker_cooldown_is_at_least_100ms),
		cmocka_unit_test(duplicate_destination_names_its_line),
		cmocka_unit_test(source_and_destination_may_share_a_name),
		cmocka_unit_test(destination_lookup_misses_unknown_names),
		cmocka_unit_test(destination_copy_outlives_its_configuration),
		cmocka_unit_test(failed_load_frees_the_lists_it_parsed),
		cmocka_unit_test(printed_lists_load_back_the_same),
		cmocka_unit_test(markdown_marks_required_and_repeatable_keys),
		cmocka_unit_test(parse_size_accepts_units),
		cmocka_unit_test(parse_size_rejects_bad_text),
		cmocka_unit_test(parse_duration_accepts_units_and_fractions),
		cmocka_unit_test(parse_duration_rejects_bad_text),
		cmocka_unit_test(shipped_config_loads),
		cmocka_unit_test(shipped_config_mentions_every_option),
		cmocka_unit_test(printed_config_loads_back_the_same),
		cmocka_unit_test(help_lists_every_option),
		cmocka_unit_test(markdown_ends_with_one_newline_and_is_deterministic),
		cmocka_unit_test(committed_docs_match_the_table),
		cmocka_unit_test(a_signed_zero_is_refused_like_any_signed_number),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

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
	assert_int_equal(cfg->max_string, 4 * 1024 * 1024);
	assert_string_equal(cfg->db_path, "var/hookrelay.db");
	assert_int_equal(cfg->batch_max, 256);
	assert_int_equal(cfg->queue_max, 8192);
	assert_int_equal(cfg->rejections_max, 10000);
	assert_string_equal(cfg->token_file, "");
	assert_int_equal(cfg->log_level, HR_LOG_INFO);
	assert_int_equal(cfg->nsources, 0);
	assert_null(cfg->sources);
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
	const char *bad[] = { "localhost:8080", "127.0.0.1", "127.0.0.1:65536", "[::1]8080", "" };

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
	assert_string_equal(err.msg, "max_body: 2GiB is out of range (1KiB..1GiB)");
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
	assert_string_equal(err.msg, "key threads is outside any section");
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
	char path[] = "/tmp/test_cfg.XXXXXX";
	int fd = mkstemp(path);
	FILE *fp;
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	char want[160];

	(void)state;
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
	    err.msg, "provider: \"stripe\" is not one of auto, tavus, pailflow, agenthuman");
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
	hr_cfg_free(cfg);
}

/* Each option appears as "key =" or "#key =" in its section. */
static void
shipped_config_mentions_every_option(void **state)
{
	char *text = slurp(SHIPPED_CONF);
	const char *key, *section;

	(void)state;
	for (size_t i = 0; (key = cfg_option_key(i, &section)) != NULL; i++) {
		char head[80], line[80];
		const char *sec, *next, *at;

		snprintf(head, sizeof(head), "\n[%s", section);
		if ((sec = strstr(text, head)) == NULL)
			fail_msg("no [%s] section", section);
		next = strstr(sec + 1, "\n[");
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
	assert_non_null(strstr(a, "| `max_body` | size | `8MiB` | 1KiB..1GiB |"));
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
		cmocka_unit_test(source_name_of_63_characters_is_kept_whole),
		cmocka_unit_test(source_name_of_64_characters_is_rejected),
		cmocka_unit_test(source_name_must_be_valid),
		cmocka_unit_test(plain_section_takes_no_name),
		cmocka_unit_test(source_lookup_misses_unknown_names),
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

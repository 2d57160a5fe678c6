/*
 * fuzz_config.c - configuration text through hr_cfg_load_string().
 *
 * The input is the file's text (up to its first NUL). Besides "no crash,
 * leak, UB or hang" it checks:
 *  - a refusal names a place (err.field) and a reason (err.msg);
 *  - round trip: what hr_cfg_print() writes for an accepted config (the
 *    effective configuration in config file syntax) loads again, and prints
 *    the same text again: printing is a fixed point;
 *  - every allow_cidrs / trusted_proxies item parses with hr_cidr_parse():
 *    auth.c re-parses them per request, trusting the loader;
 *  - hr_cfg_source() / hr_cfg_destination() find every section by its name.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "hr/cfg.h"
#include "hr/netaddr.h"

/* The config as hr_cfg_print() writes it; new, free(). */
static char *
print_cfg(const struct hr_cfg *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	FUZZ_CHECK(fp != NULL);
	hr_cfg_print(fp, cfg);
	FUZZ_CHECK(fclose(fp) == 0 && text != NULL);
	return text;
}

static void
check_cidrs(const struct hr_strlist *l)
{
	struct hr_cidr c;

	for (size_t i = 0; i < l->n; i++)
		FUZZ_CHECK(hr_cidr_parse(l->v[i], &c) == HR_OK);
}

static void
check_loaded(const struct hr_cfg *cfg)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct hr_source_cfg *s = &cfg->sources[i];

		FUZZ_CHECK(hr_cfg_source(cfg, s->name) == s);
		check_cidrs(&s->allow_cidrs);
		check_cidrs(&s->trusted_proxies);
	}
	for (size_t i = 0; i < cfg->ndestinations; i++) {
		const struct hr_destination_cfg *d = &cfg->destinations[i];

		FUZZ_CHECK(hr_cfg_destination(cfg, d->name) == d);
		FUZZ_CHECK(d->url[0] != '\0');
		for (size_t j = 0; j < d->sources.n; j++)
			FUZZ_CHECK(hr_cfg_source(cfg, d->sources.v[j]) != NULL);
	}
}

static void
check_round_trip(const struct hr_cfg *cfg)
{
	struct hr_cfg *again = NULL;
	struct hr_error err = { 0 };
	char *first = print_cfg(cfg), *second;

	if (hr_cfg_load_string(first, "printed.conf", &again, &err) != HR_OK) {
		fprintf(stderr, "printed config does not load: %s: %s\n--- printed:\n%s---\n",
		    err.field, err.msg, first);
		FUZZ_CHECK(!"the printed config loads again");
	}
	FUZZ_CHECK(again->nsources == cfg->nsources);
	FUZZ_CHECK(again->ndestinations == cfg->ndestinations);
	second = print_cfg(again);
	if (strcmp(first, second) != 0) {
		fprintf(stderr, "--- printed:\n%s--- printed again:\n%s---\n", first, second);
		FUZZ_CHECK(!"printing the config is a fixed point");
	}
	free(second);
	free(first);
	hr_cfg_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cursor in;
	struct hr_cfg *cfg = NULL;
	struct hr_error err = { 0 };
	int rc;

	if (!fuzz_cursor_init(&in, data, size))
		return 0;
	rc = hr_cfg_load_string(in.buf, "fuzz.conf", &cfg, &err);
	if (rc == HR_OK) {
		check_loaded(cfg);
		check_round_trip(cfg);
		hr_cfg_free(cfg);
	} else {
		FUZZ_CHECK(rc == HR_EINVAL || rc == HR_ENOMEM);
		FUZZ_CHECK(err.field[0] != '\0' && err.msg[0] != '\0');
	}
	fuzz_cursor_free(&in);
	return 0;
}

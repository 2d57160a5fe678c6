/* tests/unit/test_auth.c - inbound authentication: secrets, modes, CIDRs, X-Forwarded-For. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/auth.h"
#include "hr/netaddr.h"
#include "hr/sign.h"
#include "tmpdir.h"

/* The Standard Webhooks specification's test vector. */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS     "1614265330"
#define SW_BODY   "{\"test\": 2432232314}"
#define SW_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_NOW_MS (INT64_C(1614265330) * 1000)

#define OTHER_WHSEC "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="

/* GitHub's documented example for X-Hub-Signature-256. */
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY   "Hello, World!"
#define GH_SIG    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

/* HMAC-SHA256("stripe-like-secret", "1700000000.{\"id\":1}"), from Python's hmac. */
#define TSB_SECRET "stripe-like-secret"
#define TSB_TS     "1700000000"
#define TSB_BODY   "{\"id\":1}"
#define TSB_SIG    "407d0652e4c6820774149fdc884ea912e9aa52c0c740731dd7e0344780b357b6"
#define TSB_NOW_MS (INT64_C(1700000000) * 1000)

#define TOLERANCE_MS (5 * 60 * 1000)
#define MAX_FILES    4
#define MAX_HEADERS  8

struct hdr {
	const char *name, *value;
};

struct fx {
	char dir[64];
	char files[MAX_FILES][160];
	size_t nfiles;
	struct hr_source_cfg src;
	struct hr_secrets *secrets;
	struct hdr hdrs[MAX_HEADERS];
	size_t nhdrs;
	struct sockaddr_storage peer;
	const char *query_token, *path_token, *body;
	int64_t now_ms;
	struct hr_auth_out out;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	tmp_template(fx->dir, sizeof(fx->dir), "test_auth.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->src.name, sizeof(fx->src.name), "s");
	snprintf(fx->src.hmac_header, sizeof(fx->src.hmac_header), "X-Signature");
	fx->src.tolerance_ms = TOLERANCE_MS;
	fx->body = "";
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	hr_secrets_free(fx->secrets);
	for (size_t i = 0; i < fx->nfiles; i++)
		unlink(fx->files[i]);
	rmdir(fx->dir);
	unsetenv("CREDENTIALS_DIRECTORY");
	free(fx);
	return 0;
}

/* Write `content` to DIR/`name`; the path, which stays valid until teardown. */
static const char *
write_file(struct fx *fx, const char *name, const char *content)
{
	char *path = fx->files[fx->nfiles], tmp[sizeof(fx->files[0])];
	FILE *fp;

	assert_true(fx->nfiles < MAX_FILES);
	snprintf(tmp, sizeof(tmp), "%s/%s", fx->dir, name);
	memcpy(path, tmp, sizeof(tmp));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	fx->nfiles++;
	return path;
}

/* auth = `mode` with `content` as its secret_file, loaded. */
static void
use_secrets(struct fx *fx, enum hr_auth_mode mode, const char *content)
{
	struct hr_error err = { 0 };

	fx->src.auth = mode;
	snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "%s",
	    write_file(fx, "secrets", content));
	if (hr_auth_load_secrets(&fx->src, &fx->secrets, &err) != HR_OK)
		fail_msg("%s: %s", err.field, err.msg);
}

static void
set_addr(struct sockaddr_storage *ss, const char *text)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(40000);
}

static void
add_header(struct fx *fx, const char *name, const char *value)
{
	assert_true(fx->nhdrs < MAX_HEADERS);
	fx->hdrs[fx->nhdrs++] = (struct hdr){ name, value };
}

static const char *
lookup(void *arg, const char *name)
{
	struct fx *fx = arg;

	for (size_t i = 0; i < fx->nhdrs; i++)
		if (strcasecmp(fx->hdrs[i].name, name) == 0)
			return fx->hdrs[i].value;
	return NULL;
}

static void
each(void *arg, int (*cb)(void *, const char *, const char *), void *cbarg)
{
	struct fx *fx = arg;

	for (size_t i = 0; i < fx->nhdrs; i++)
		if (cb(cbarg, fx->hdrs[i].name, fx->hdrs[i].value) != 0)
			return;
}

static int
check(struct fx *fx)
{
	struct hr_auth_req req = {
		.src = &fx->src,
		.secrets = fx->secrets,
		.peer = (const struct sockaddr *)&fx->peer,
		.header = lookup,
		.each_header = each,
		.header_arg = fx,
		.query_token = fx->query_token,
		.path_token = fx->path_token,
		.body = fx->body,
		.len = strlen(fx->body),
		.now_ms = fx->now_ms,
	};

	if (fx->peer.ss_family == 0)
		set_addr(&fx->peer, "192.0.2.1");
	return hr_auth_check(&req, &fx->out);
}

static void
assert_client(const struct fx *fx, const char *want)
{
	char text[INET6_ADDRSTRLEN] = "";
	const struct sockaddr_storage *c = &fx->out.client;

	if (c->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)c)->sin_addr, text, sizeof(text));
	else if (c->ss_family == AF_INET6)
		inet_ntop(
		    AF_INET6, &((const struct sockaddr_in6 *)c)->sin6_addr, text, sizeof(text));
	assert_string_equal(text, want);
}

/* A list for the source from string literals; the test keeps the storage. */
#define LIST(...)                                                                                  \
	(struct hr_strlist)                                                                        \
	{                                                                                          \
		(char *[]){ __VA_ARGS__ }, sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)      \
	}

static void
sw_headers(struct fx *fx, const char *id, const char *ts, const char *sig)
{
	add_header(fx, "webhook-id", id);
	add_header(fx, "webhook-timestamp", ts);
	add_header(fx, "webhook-signature", sig);
	fx->body = SW_BODY;
	fx->now_ms = SW_NOW_MS;
}

/* Loading secrets */

static void
load_reads_one_secret_per_line(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "# current\n\n  first  \r\nsecond\n# old\n");
	assert_int_equal(hr_secrets_count(fx->secrets), 2);
}

static void
load_with_auth_none_reads_nothing(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };

	snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "/nonexistent");
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_OK);
	assert_int_equal(hr_secrets_count(fx->secrets), 0);
}

static void
load_names_a_missing_file(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };

	fx->src.auth = HR_AUTH_TOKEN;
	snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "/nonexistent/s");
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
	assert_null(fx->secrets);
	assert_string_equal(err.field, "/nonexistent/s");
	assert_string_equal(err.msg, "cannot open: No such file or directory");
}

static void
load_rejects_a_file_without_secrets(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };

	fx->src.auth = HR_AUTH_TOKEN;
	snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "%s",
	    write_file(fx, "empty", "# nothing yet\n\n   \n"));
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
	assert_string_equal(err.msg, "holds no secret");
}

static void
load_names_the_line_of_a_bad_whsec_but_not_its_text(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };
	char want[PATH_MAX + 8];

	fx->src.auth = HR_AUTH_STANDARD_WEBHOOKS;
	snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "%s",
	    write_file(fx, "sw", SW_SECRET "\nwhsec_not-base64!!\n"));
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
	snprintf(want, sizeof(want), "%s:2", fx->src.secret_file);
	assert_string_equal(err.field, want);
	assert_string_equal(err.msg, "not a whsec_<base64> secret");
	assert_null(strstr(err.field, "not-base64"));
}

static void
load_rejects_a_basic_line_without_user_and_password(void **state)
{
	const char *bad[] = { "userpass\n", ":pw\n", "user:\n" };
	struct fx *fx = *state;

	fx->src.auth = HR_AUTH_BASIC;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hr_error err = { 0 };
		char name[16];

		snprintf(name, sizeof(name), "b%zu", i);
		snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "%s",
		    write_file(fx, name, bad[i]));
		assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
		assert_string_equal(err.msg, "not user:password");
	}
}

static void
load_rejects_more_than_the_maximum_of_secrets(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };
	char text[512] = "";

	for (int i = 0; i <= HR_SECRETS_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "secret%d\n", i);
	fx->src.auth = HR_AUTH_TOKEN;
	snprintf(
	    fx->src.secret_file, sizeof(fx->src.secret_file), "%s", write_file(fx, "many", text));
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
	assert_string_equal(err.msg, "more than 16 secrets");
}

static void
load_reads_the_systemd_credential_without_secret_file(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };

	write_file(fx, "s", "from-credentials\n");
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", fx->dir, 1), 0);
	fx->src.auth = HR_AUTH_TOKEN;
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_OK);
	fx->query_token = "from-credentials";
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
load_without_secret_file_or_credentials_fails(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };

	unsetenv("CREDENTIALS_DIRECTORY");
	fx->src.auth = HR_AUTH_HMAC;
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
	assert_non_null(strstr(err.msg, "$CREDENTIALS_DIRECTORY"));
}

static void
secrets_free_accepts_null(void **state)
{
	(void)state;
	hr_secrets_free(NULL);
	assert_int_equal(hr_secrets_count(NULL), 0);
}

/* auth = none, and secrets that do not fit */

static void
none_accepts_any_request(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_client(fx, "192.0.2.1");
}

static void
secrets_of_another_mode_are_refused(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "t\n");
	fx->src.auth = HR_AUTH_BASIC;
	add_header(fx, "Authorization", "Basic dDp0");
	assert_int_equal(check(fx), HR_AUTH_ENOSECRET);
}

static void
missing_secrets_are_refused(void **state)
{
	struct fx *fx = *state;

	fx->src.auth = HR_AUTH_TOKEN;
	fx->query_token = "t";
	assert_int_equal(check(fx), HR_AUTH_ENOSECRET);
}

/* auth = token */

static void
token_in_the_query_is_accepted(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "s3cret\n");
	fx->query_token = "s3cret";
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
token_in_the_path_is_accepted(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "s3cret\n");
	fx->path_token = "s3cret";
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
wrong_token_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "s3cret\n");
	fx->query_token = "s3cre";
	assert_int_equal(check(fx), HR_AUTH_ECREDENTIALS);
	fx->query_token = "s3cret2";
	assert_int_equal(check(fx), HR_AUTH_ECREDENTIALS);
}

static void
missing_token_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "s3cret\n");
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
	fx->query_token = "";
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
}

static void
token_rotation_accepts_old_and_new(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "new-token\nold-token\n");
	fx->query_token = "new-token";
	assert_int_equal(check(fx), HR_AUTH_OK);
	fx->query_token = "old-token";
	assert_int_equal(check(fx), HR_AUTH_OK);
	fx->query_token = "older-token";
	assert_int_equal(check(fx), HR_AUTH_ECREDENTIALS);
}

/* auth = standard-webhooks */

static void
sw_spec_request_is_accepted_and_exposes_the_id(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	sw_headers(fx, SW_MSG_ID, SW_TS, SW_SIG);
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_non_null(fx->out.webhook_id);
	assert_string_equal(fx->out.webhook_id, SW_MSG_ID);
}

static void
sw_svix_headers_are_accepted(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	add_header(fx, "svix-id", SW_MSG_ID);
	add_header(fx, "svix-timestamp", SW_TS);
	add_header(fx, "svix-signature", SW_SIG);
	fx->body = SW_BODY;
	fx->now_ms = SW_NOW_MS;
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_string_equal(fx->out.webhook_id, SW_MSG_ID);
}

static void
sw_wrong_secret_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, OTHER_WHSEC "\n");
	sw_headers(fx, SW_MSG_ID, SW_TS, SW_SIG);
	assert_int_equal(check(fx), HR_AUTH_ESIGNATURE);
}

static void
sw_tampered_body_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	sw_headers(fx, SW_MSG_ID, SW_TS, SW_SIG);
	fx->body = "{\"test\": 2432232315}";
	assert_int_equal(check(fx), HR_AUTH_ESIGNATURE);
}

static void
sw_stale_timestamp_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	sw_headers(fx, SW_MSG_ID, SW_TS, SW_SIG);
	fx->now_ms = SW_NOW_MS + TOLERANCE_MS + 1;
	assert_int_equal(check(fx), HR_AUTH_ESTALE);
}

static void
sw_future_timestamp_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	sw_headers(fx, SW_MSG_ID, SW_TS, SW_SIG);
	fx->now_ms = SW_NOW_MS - TOLERANCE_MS - 1;
	assert_int_equal(check(fx), HR_AUTH_EFUTURE);
}

static void
sw_malformed_timestamp_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	sw_headers(fx, SW_MSG_ID, "2021-02-26T00:00:00Z", SW_SIG);
	assert_int_equal(check(fx), HR_AUTH_ETIMESTAMP);
}

static void
sw_missing_signature_header_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	add_header(fx, "webhook-id", SW_MSG_ID);
	add_header(fx, "webhook-timestamp", SW_TS);
	fx->body = SW_BODY;
	fx->now_ms = SW_NOW_MS;
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
}

static void
sw_request_without_headers_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, SW_SECRET "\n");
	fx->body = SW_BODY;
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
	assert_null(fx->out.webhook_id);
}

static void
sw_rotation_accepts_old_and_new(void **state)
{
	struct fx *fx = *state;
	unsigned char key[HR_WHSEC_KEY_MAX];
	size_t keylen = sizeof(key);
	char sig[HR_SW_SIG_MAX];

	use_secrets(fx, HR_AUTH_STANDARD_WEBHOOKS, OTHER_WHSEC "\n" SW_SECRET "\n");
	sw_headers(fx, SW_MSG_ID, SW_TS, SW_SIG);
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_int_equal(hr_whsec_decode(OTHER_WHSEC, key, &keylen), HR_OK);
	assert_int_equal(hr_sw_sign(key, keylen, SW_MSG_ID, INT64_C(1614265330), SW_BODY,
	                     strlen(SW_BODY), sig, sizeof(sig)),
	    HR_OK);
	fx->hdrs[2].value = sig;
	assert_int_equal(check(fx), HR_AUTH_OK);
}

/* auth = hmac */

static void
use_github(struct fx *fx, const char *secrets)
{
	use_secrets(fx, HR_AUTH_HMAC, secrets);
	snprintf(fx->src.hmac_header, sizeof(fx->src.hmac_header), "X-Hub-Signature-256");
	snprintf(fx->src.hmac_prefix, sizeof(fx->src.hmac_prefix), "sha256=");
	fx->body = GH_BODY;
}

static void
hmac_github_request_is_accepted(void **state)
{
	struct fx *fx = *state;

	use_github(fx, GH_SECRET "\n");
	add_header(fx, "X-Hub-Signature-256", GH_SIG);
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
hmac_wrong_secret_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_github(fx, "not the secret\n");
	add_header(fx, "X-Hub-Signature-256", GH_SIG);
	assert_int_equal(check(fx), HR_AUTH_ESIGNATURE);
}

static void
hmac_tampered_body_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_github(fx, GH_SECRET "\n");
	add_header(fx, "X-Hub-Signature-256", GH_SIG);
	fx->body = "Hello, World?";
	assert_int_equal(check(fx), HR_AUTH_ESIGNATURE);
}

static void
hmac_missing_header_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_github(fx, GH_SECRET "\n");
	add_header(fx, "X-Signature", GH_SIG);
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
}

static void
hmac_rotation_accepts_old_and_new(void **state)
{
	struct fx *fx = *state;

	use_github(fx, "the new secret\n" GH_SECRET "\n");
	add_header(fx, "X-Hub-Signature-256", GH_SIG);
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
use_timestamped(struct fx *fx, const char *ts)
{
	use_secrets(fx, HR_AUTH_HMAC, TSB_SECRET "\n");
	fx->src.hmac_signed = HR_SIGNED_TIMESTAMP_BODY;
	snprintf(fx->src.hmac_timestamp_header, sizeof(fx->src.hmac_timestamp_header), "X-Ts");
	add_header(fx, "X-Signature", TSB_SIG);
	if (ts != NULL)
		add_header(fx, "X-Ts", ts);
	fx->body = TSB_BODY;
	fx->now_ms = TSB_NOW_MS;
}

static void
hmac_timestamp_body_is_accepted_within_tolerance(void **state)
{
	struct fx *fx = *state;

	use_timestamped(fx, TSB_TS);
	fx->now_ms = TSB_NOW_MS + TOLERANCE_MS;
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
hmac_timestamp_body_stale_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_timestamped(fx, TSB_TS);
	fx->now_ms = TSB_NOW_MS + TOLERANCE_MS + 1000;
	assert_int_equal(check(fx), HR_AUTH_ESTALE);
}

static void
hmac_timestamp_body_future_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_timestamped(fx, TSB_TS);
	fx->now_ms = TSB_NOW_MS - TOLERANCE_MS - 1000;
	assert_int_equal(check(fx), HR_AUTH_EFUTURE);
}

static void
hmac_timestamp_body_without_timestamp_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_timestamped(fx, NULL);
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
}

static void
hmac_timestamp_is_part_of_what_is_signed(void **state)
{
	struct fx *fx = *state;

	use_timestamped(fx, "1700000001");
	assert_int_equal(check(fx), HR_AUTH_ESIGNATURE);
}

/* auth = basic */

static void
basic_right_credentials_are_accepted(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_BASIC, "user:pw\n");
	add_header(fx, "Authorization", "Basic dXNlcjpwdw==");
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
basic_scheme_is_case_insensitive(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_BASIC, "user:pw\n");
	add_header(fx, "Authorization", "basic   dXNlcjpwdw==");
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
basic_wrong_password_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_BASIC, "user:pw\n");
	add_header(fx, "Authorization", "Basic dXNlcjpwdzI="); /* user:pw2 */
	assert_int_equal(check(fx), HR_AUTH_ECREDENTIALS);
}

static void
basic_missing_or_other_scheme_is_rejected(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_BASIC, "user:pw\n");
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
	add_header(fx, "Authorization", "Bearer dXNlcjpwdw==");
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
}

static void
basic_rotation_accepts_old_and_new(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_BASIC, "user:new\nuser:pw\n");
	add_header(fx, "Authorization", "Basic dXNlcjpwdw==");
	assert_int_equal(check(fx), HR_AUTH_OK);
	fx->hdrs[0].value = "Basic dXNlcjpuZXc="; /* user:new */
	assert_int_equal(check(fx), HR_AUTH_OK);
}

/* CIDRs */

static bool
cidr_matches(const char *cidr, const char *addr)
{
	struct hr_cidr c;
	struct sockaddr_storage ss;

	assert_int_equal(hr_cidr_parse(cidr, &c), HR_OK);
	set_addr(&ss, addr);
	return hr_cidr_match(&c, (const struct sockaddr *)&ss);
}

static void
cidr_parse_clears_host_bits(void **state)
{
	struct hr_cidr c;
	const unsigned char want[4] = { 10, 0, 0, 0 };

	(void)state;
	assert_int_equal(hr_cidr_parse("10.1.2.3/8", &c), HR_OK);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.bits, 8);
	assert_memory_equal(c.addr, want, 4);
	assert_true(c.host_bits);
	assert_int_equal(hr_cidr_parse("10.0.0.0/8", &c), HR_OK);
	assert_false(c.host_bits);
	assert_int_equal(hr_cidr_parse("10.0.0.1", &c), HR_OK);
	assert_false(c.host_bits);
}

static void
cidr_parse_rejects_malformed_text(void **state)
{
	const char *bad[] = { "", "/8", "10.0.0.0/33", "::/129", "10.0.0.1/", "10.0.0.1/1x",
		"10.0.0.1/0008", "10.0.0", "example.com", "::1/+1" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hr_cidr c;

		if (hr_cidr_parse(bad[i], &c) != HR_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void
cidr_matches_ipv4_by_prefix(void **state)
{
	(void)state;
	assert_true(cidr_matches("192.0.2.128/25", "192.0.2.200"));
	assert_false(cidr_matches("192.0.2.128/25", "192.0.2.100"));
	assert_true(cidr_matches("10.0.0.0/8", "10.255.255.255"));
	assert_false(cidr_matches("10.0.0.0/8", "11.0.0.0"));
	assert_true(cidr_matches("0.0.0.0/0", "203.0.113.9"));
	assert_false(cidr_matches("0.0.0.0/0", "2001:db8::1"));
}

static void
cidr_single_address_matches_only_itself(void **state)
{
	(void)state;
	assert_true(cidr_matches("192.0.2.7", "192.0.2.7"));
	assert_false(cidr_matches("192.0.2.7", "192.0.2.8"));
	assert_true(cidr_matches("::1", "::1"));
	assert_false(cidr_matches("::1", "::2"));
}

static void
cidr_matches_ipv6_by_prefix(void **state)
{
	(void)state;
	assert_true(cidr_matches("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(cidr_matches("2001:db8::/32", "2001:db9::1"));
	assert_true(cidr_matches("fe80::/10", "febf::1"));
	assert_false(cidr_matches("fe80::/10", "fec0::1"));
	assert_false(cidr_matches("::/0", "192.0.2.1"));
}

static void
cidr_treats_ipv4_mapped_ipv6_as_ipv4(void **state)
{
	(void)state;
	assert_true(cidr_matches("192.0.2.0/24", "::ffff:192.0.2.5"));
	assert_false(cidr_matches("192.0.2.0/24", "::ffff:198.51.100.5"));
	assert_true(cidr_matches("::ffff:192.0.2.0/120", "192.0.2.5"));
	assert_true(cidr_matches("::ffff:192.0.2.0/120", "::ffff:192.0.2.5"));
}

/* allow_cidrs and X-Forwarded-For */

static void
allow_cidrs_admits_a_listed_client(void **state)
{
	struct fx *fx = *state;

	fx->src.allow_cidrs = LIST("198.51.100.0/24", "192.0.2.0/24");
	set_addr(&fx->peer, "192.0.2.77");
	assert_int_equal(check(fx), HR_AUTH_OK);
}

static void
allow_cidrs_refuses_others_before_checking_credentials(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_TOKEN, "s3cret\n");
	fx->src.allow_cidrs = LIST("10.0.0.0/8");
	fx->query_token = "s3cret";
	set_addr(&fx->peer, "203.0.113.9");
	assert_int_equal(check(fx), HR_AUTH_EADDR);
}

static void
allow_cidrs_admits_ipv6_and_mapped_clients(void **state)
{
	struct fx *fx = *state;

	fx->src.allow_cidrs = LIST("2001:db8::/32", "192.0.2.0/24");
	set_addr(&fx->peer, "2001:db8::5");
	assert_int_equal(check(fx), HR_AUTH_OK);
	set_addr(&fx->peer, "::ffff:192.0.2.5");
	assert_int_equal(check(fx), HR_AUTH_OK);
	set_addr(&fx->peer, "2001:db9::5");
	assert_int_equal(check(fx), HR_AUTH_EADDR);
}

static void
forwarded_for_is_ignored_from_an_untrusted_peer(void **state)
{
	struct fx *fx = *state;

	fx->src.allow_cidrs = LIST("10.0.0.0/8");
	fx->src.trusted_proxies = LIST("127.0.0.1");
	set_addr(&fx->peer, "203.0.113.9");
	add_header(fx, "X-Forwarded-For", "10.0.0.5");
	assert_int_equal(check(fx), HR_AUTH_EADDR);
	assert_client(fx, "203.0.113.9");
}

static void
forwarded_for_is_ignored_without_trusted_proxies(void **state)
{
	struct fx *fx = *state;

	set_addr(&fx->peer, "127.0.0.1");
	add_header(fx, "X-Forwarded-For", "203.0.113.7");
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_client(fx, "127.0.0.1");
}

static void
forwarded_for_right_most_untrusted_entry_is_the_client(void **state)
{
	struct fx *fx = *state;

	fx->src.trusted_proxies = LIST("127.0.0.1", "10.0.0.0/8");
	fx->src.allow_cidrs = LIST("203.0.113.0/24");
	set_addr(&fx->peer, "127.0.0.1");
	add_header(fx, "X-Forwarded-For", "198.51.100.1, 203.0.113.7,10.0.0.3");
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_client(fx, "203.0.113.7");
}

static void
forwarded_for_spoofed_left_entries_do_not_count(void **state)
{
	struct fx *fx = *state;

	fx->src.trusted_proxies = LIST("127.0.0.1");
	fx->src.allow_cidrs = LIST("10.0.0.0/8");
	set_addr(&fx->peer, "127.0.0.1");
	add_header(fx, "X-Forwarded-For", "10.0.0.5, 203.0.113.7");
	assert_int_equal(check(fx), HR_AUTH_EADDR);
	assert_client(fx, "203.0.113.7");
}

static void
forwarded_for_of_only_trusted_proxies_gives_the_left_most(void **state)
{
	struct fx *fx = *state;

	fx->src.trusted_proxies = LIST("10.0.0.0/8", "127.0.0.1");
	set_addr(&fx->peer, "127.0.0.1");
	add_header(fx, "X-Forwarded-For", "10.0.0.1, 10.0.0.2");
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_client(fx, "10.0.0.1");
}

static void
forwarded_for_malformed_entry_is_refused(void **state)
{
	struct fx *fx = *state;

	fx->src.trusted_proxies = LIST("127.0.0.1");
	set_addr(&fx->peer, "127.0.0.1");
	add_header(fx, "X-Forwarded-For", "203.0.113.7, unknown");
	assert_int_equal(check(fx), HR_AUTH_EADDR);
	fx->hdrs[0].value = "203.0.113.7,";
	assert_int_equal(check(fx), HR_AUTH_EADDR);
}

static void
forwarded_for_absent_behind_a_trusted_proxy_keeps_the_peer(void **state)
{
	struct fx *fx = *state;

	fx->src.trusted_proxies = LIST("127.0.0.1");
	set_addr(&fx->peer, "127.0.0.1");
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_client(fx, "127.0.0.1");
}

static void
forwarded_for_carries_ipv6_clients_through_an_ipv6_proxy(void **state)
{
	struct fx *fx = *state;

	fx->src.trusted_proxies = LIST("fd00::/8");
	fx->src.allow_cidrs = LIST("2001:db8::/32");
	set_addr(&fx->peer, "fd00::1");
	add_header(fx, "X-Forwarded-For", "2001:db8::42");
	assert_int_equal(check(fx), HR_AUTH_OK);
	assert_client(fx, "2001:db8::42");
}

/* Issue 11 item 2: a long client part must not push the proxy's entry out. */
static void
forwarded_for_fields_are_read_whole_and_in_order(void **state)
{
	struct fx *fx = *state;
	static char spoof[1100];

	fx->src.trusted_proxies = LIST("127.0.0.1");
	fx->src.allow_cidrs = LIST("10.0.0.0/8");
	set_addr(&fx->peer, "127.0.0.1");
	/* 1,023 bytes ending in an allowed address, then the real client on a second line */
	memset(spoof, ' ', sizeof(spoof));
	memcpy(spoof + 1023 - strlen("10.0.0.5"), "10.0.0.5", strlen("10.0.0.5"));
	spoof[1023] = '\0';
	add_header(fx, "X-Forwarded-For", spoof);
	add_header(fx, "X-Forwarded-For", "203.0.113.7");
	assert_int_equal(check(fx), HR_AUTH_EADDR);
	assert_client(fx, "203.0.113.7");
	/* the same in one field */
	fx->nhdrs = 0;
	strcpy(spoof + 1023, ", 203.0.113.7");
	add_header(fx, "X-Forwarded-For", spoof);
	assert_int_equal(check(fx), HR_AUTH_EADDR);
	assert_client(fx, "203.0.113.7");
}

static void
forwarded_for_past_the_entry_bound_is_refused(void **state)
{
	struct fx *fx = *state;
	static char many[HR_XFF_MAX * 12 + 16];
	size_t n = 0;

	fx->src.trusted_proxies = LIST("127.0.0.1", "10.0.0.0/8");
	set_addr(&fx->peer, "127.0.0.1");
	for (int i = 0; i < HR_XFF_MAX - 1; i++)
		n += (size_t)sprintf(many + n, "10.0.0.%d, ", i % 250 + 1);
	strcpy(many + n, "10.0.0.1");
	add_header(fx, "X-Forwarded-For", many); /* exactly HR_XFF_MAX: read */
	assert_int_equal(check(fx), HR_AUTH_OK);
	add_header(fx, "X-Forwarded-For", "10.0.0.2"); /* one more: refused, not cut */
	assert_int_equal(check(fx), HR_AUTH_EADDR);
}

static void
status_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(hr_auth_status_str(HR_AUTH_OK), "ok");
	assert_string_equal(hr_auth_status_str(HR_AUTH_EADDR), "address");
	assert_string_equal(hr_auth_status_str(HR_AUTH_ESIGNATURE), "bad_signature");
	assert_string_equal(hr_auth_status_str(HR_AUTH_EINTERNAL), "internal");
	assert_string_equal(hr_auth_status_str(-1), "unknown");
	assert_string_equal(hr_auth_status_str(100), "unknown");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* ---- auth = daily (vector computed with Python, as in test_sign.c) ---- */

#define DY_SECRET "aG9va3JlbGF5LWRhaWx5LXRlc3Qta2V5LTAxMjM0NTY3ODk="
#define DY_TS     "1718000000123"
#define DY_BODY                                                                                    \
	"{\"version\":\"1.0.0\",\"type\":\"meeting.started\",\"id\":\"met-sta-1\",\"payload\":{"   \
	"\"room\":\"r1\",\"meeting_id\":\"m1\",\"start_ts\":1718000000},\"event_ts\":1718000000."  \
	"1}"
#define DY_SIG "CaG0Bixn+fXwI1sWXtKsdYBNZwiUh35ni4imG6bBNfQ="

static void
daily_checks_the_signature_headers_with_any_secret(void **state)
{
	struct fx *fx = *state;

	use_secrets(fx, HR_AUTH_DAILY, "# rotated in first\naGVsbG8td29ybGQ=\n" DY_SECRET "\n");
	assert_int_equal(hr_secrets_count(fx->secrets), 2);
	fx->body = DY_BODY;
	fx->now_ms = INT64_C(1718000000123) + 1000;
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
	add_header(fx, "X-Webhook-Timestamp", DY_TS);
	assert_int_equal(check(fx), HR_AUTH_EMISSING);
	add_header(fx, "x-webhook-signature", DY_SIG);
	assert_int_equal(check(fx), HR_AUTH_OK);
	fx->body = DY_BODY " ";
	assert_int_equal(check(fx), HR_AUTH_ESIGNATURE);
	fx->body = DY_BODY;
	fx->now_ms += TOLERANCE_MS;
	assert_int_equal(check(fx), HR_AUTH_ESTALE);
}

static void
daily_secret_lines_must_be_base64(void **state)
{
	struct fx *fx = *state;
	struct hr_error err = { 0 };

	fx->src.auth = HR_AUTH_DAILY;
	snprintf(fx->src.secret_file, sizeof(fx->src.secret_file), "%s",
	    write_file(fx, "daily", DY_SECRET "\nnot base64 at all\n"));
	assert_int_equal(hr_auth_load_secrets(&fx->src, &fx->secrets, &err), HR_EINVAL);
	assert_string_equal(err.msg, "not base64 (the webhook's hmac, as Daily returns it)");
	assert_null(strstr(err.field, "at all"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(load_reads_one_secret_per_line),
		T(load_with_auth_none_reads_nothing),
		T(load_names_a_missing_file),
		T(load_rejects_a_file_without_secrets),
		T(load_names_the_line_of_a_bad_whsec_but_not_its_text),
		T(daily_checks_the_signature_headers_with_any_secret),
		T(daily_secret_lines_must_be_base64),
		T(load_rejects_a_basic_line_without_user_and_password),
		T(load_rejects_more_than_the_maximum_of_secrets),
		T(load_reads_the_systemd_credential_without_secret_file),
		T(load_without_secret_file_or_credentials_fails),
		T(secrets_free_accepts_null),
		T(none_accepts_any_request),
		T(secrets_of_another_mode_are_refused),
		T(missing_secrets_are_refused),
		T(token_in_the_query_is_accepted),
		T(token_in_the_path_is_accepted),
		T(wrong_token_is_rejected),
		T(missing_token_is_rejected),
		T(token_rotation_accepts_old_and_new),
		T(sw_spec_request_is_accepted_and_exposes_the_id),
		T(sw_svix_headers_are_accepted),
		T(sw_wrong_secret_is_rejected),
		T(sw_tampered_body_is_rejected),
		T(sw_stale_timestamp_is_rejected),
		T(sw_future_timestamp_is_rejected),
		T(sw_malformed_timestamp_is_rejected),
		T(sw_missing_signature_header_is_rejected),
		T(sw_request_without_headers_is_rejected),
		T(sw_rotation_accepts_old_and_new),
		T(hmac_github_request_is_accepted),
		T(hmac_wrong_secret_is_rejected),
		T(hmac_tampered_body_is_rejected),
		T(hmac_missing_header_is_rejected),
		T(hmac_rotation_accepts_old_and_new),
		T(hmac_timestamp_body_is_accepted_within_tolerance),
		T(hmac_timestamp_body_stale_is_rejected),
		T(hmac_timestamp_body_future_is_rejected),
		T(hmac_timestamp_body_without_timestamp_is_rejected),
		T(hmac_timestamp_is_part_of_what_is_signed),
		T(basic_right_credentials_are_accepted),
		T(basic_scheme_is_case_insensitive),
		T(basic_wrong_password_is_rejected),
		T(basic_missing_or_other_scheme_is_rejected),
		T(basic_rotation_accepts_old_and_new),
		T(cidr_parse_clears_host_bits),
		T(cidr_parse_rejects_malformed_text),
		T(cidr_matches_ipv4_by_prefix),
		T(cidr_single_address_matches_only_itself),
		T(cidr_matches_ipv6_by_prefix),
		T(cidr_treats_ipv4_mapped_ipv6_as_ipv4),
		T(allow_cidrs_admits_a_listed_client),
		T(allow_cidrs_refuses_others_before_checking_credentials),
		T(allow_cidrs_admits_ipv6_and_mapped_clients),
		T(forwarded_for_is_ignored_from_an_untrusted_peer),
		T(forwarded_for_is_ignored_without_trusted_proxies),
		T(forwarded_for_right_most_untrusted_entry_is_the_client),
		T(forwarded_for_spoofed_left_entries_do_not_count),
		T(forwarded_for_of_only_trusted_proxies_gives_the_left_most),
		T(forwarded_for_malformed_entry_is_refused),
		T(forwarded_for_absent_behind_a_trusted_proxy_keeps_the_peer),
		T(forwarded_for_carries_ipv6_clients_through_an_ipv6_proxy),
		T(forwarded_for_fields_are_read_whole_and_in_order),
		T(forwarded_for_past_the_entry_bound_is_refused),
		T(status_names_are_stable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

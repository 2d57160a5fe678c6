/*
 * replay.c - a fuzz corpus as a regression test, without libFuzzer.
 *
 *	replay_<name> PATH...
 *
 * Feeds every file under each PATH (a file, or a directory walked
 * recursively in name order) to the harness's LLVMFuzzerTestOneInput(),
 * each in a buffer of exactly its size so a sanitizer build catches an
 * over-read. A harness reports a finding by crashing or aborting; replay
 * then dies on that input, after printing its name. An empty corpus is an
 * error too: a moved directory must not turn the test into a silent pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define INPUT_MAX (1024 * 1024) /* larger than any -max_len the harnesses run with */

static size_t replayed;

static int
replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *all = NULL, *buf = NULL;
	size_t n = 0;
	int rc = -1;

	if (fp == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if ((all = malloc(INPUT_MAX)) == NULL)
		goto out;
	n = fread(all, 1, INPUT_MAX, fp);
	if (ferror(fp) || n == INPUT_MAX) {
		fprintf(
		    stderr, "replay: %s: unreadable or larger than %d bytes\n", path, INPUT_MAX);
		goto out;
	}
	if ((buf = malloc(n > 0 ? n : 1)) == NULL) /* exactly n bytes: over-reads show */
		goto out;
	memcpy(buf, all, n);
	fprintf(stderr, "replay: %s\n", path); /* the last line names a crashing input */
	LLVMFuzzerTestOneInput(buf, n);
	replayed++;
	rc = 0;
out:
	free(buf);
	free(all);
	fclose(fp);
	return rc;
}

static int replay_path(const char *path);

static int
replay_dir(const char *path)
{
	struct dirent **ents = NULL;
	int n = scandir(path, &ents, NULL, alphasort), rc = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t len = strlen(path) + strlen(name) + 2;
		char *child = malloc(len);

		if (name[0] != '.' && rc == 0) {
			if (child == NULL)
				rc = -1;
			else {
				snprintf(child, len, "%s/%s", path, name);
				rc = replay_path(child);
			}
		}
		free(child);
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static int
replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return replay_dir(path);
	return S_ISREG(st.st_mode) ? replay_file(path) : 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i]) != 0)
			return 1;
	if (replayed == 0) {
		fprintf(stderr, "replay: no input found\n");
		return 1;
	}
	fprintf(stderr, "replay: %zu inputs, no finding\n", replayed);
	return 0;
}

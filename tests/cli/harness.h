/* Running build/dime from the CLI tests and looking at what it did. */
#ifndef DIME_TEST_CLI_HARNESS_H
#define DIME_TEST_CLI_HARNESS_H

#include "helpers.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What one run of dime produced. out and err are NUL-terminated. */
struct dime_result {
	int status; /* exit status, or 128 + signal as a shell says */
	char *out;
	char *err;
};

/* Path of build/dime (or $DIME_BUILD/dime); of a file in the build dir. */
const char *dime_path(void);
const char *build_file(const char *name);

/* Runs `exe` (dime_path() if NULL) with argv (NULL-terminated, argv[0]
 * included) and the test's environment plus `env` (NULL-terminated
 * "KEY=value" entries that win, may be NULL). Gives it 30 s. */
struct dime_result run_exe(const char *exe, const char *const argv[], const char *const env[]);
#define dime_run(...) run_exe(NULL, (const char *const[]){ "dime", __VA_ARGS__, NULL }, NULL)

/* Starts dime without waiting: its pid; output goes to the test's. */
pid_t dime_start(const char *const argv[]);
/* The same with `env` entries added (as for run_exe). */
pid_t dime_start_env(const char *const argv[], const char *const env[]);
/* Waits for a started dime up to `seconds`; its status, or -1 on timeout
 * (then it has been killed). */
int dime_wait(pid_t pid, int seconds);

void dime_result_free(struct dime_result *r);

/* Number of lines in s (a last line without '\n' counts). */
int count_lines(const char *s);

/* A new path under a fresh temporary directory; the file does not exist. */
char *temp_path(const char *name);
void write_file(const char *path, const char *text);
char *read_file_text(const char *path);
bool file_exists(const char *path);

/* Skips the test unless build/libdime-preload.so exists. */
void require_preload(void);

/* Checks that `text` is one valid JSON value (RFC 8259 grammar). */
bool json_valid(const char *text);
/* The number after "key": in text; false if the key is absent or its value
 * is not a plain unsigned integer. Finds the first occurrence. */
bool json_u64(const char *text, const char *key, uint64_t *out);
/* The string after "key": (copied into buf); false if absent. */
bool json_str(const char *text, const char *key, char *buf, size_t size);

/* Asserts a refusal: status 2, one line on stderr starting "dime", that
 * mentions `token`, nothing on stdout. */
void assert_refused(const struct dime_result *r, const char *token);

#endif

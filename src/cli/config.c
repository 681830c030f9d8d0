/* DiME's config file (insert_module.sh -c FILE): `key value` lines, `#`
 * comments, blank lines. Unlike DiME, which skipped a bad line and applied
 * the rest, any error rejects the whole file: a run with half a
 * configuration would measure the wrong thing. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char blanks[] = " \t\r\f\v\n";

/* The next blank-separated token of *s, or NULL. */
static char *token(char **s)
{
	char *t = *s + strspn(*s, blanks);
	if (!*t)
		return NULL;
	char *end = t + strcspn(t, blanks);
	*s = *end ? end + 1 : end;
	*end = 0;
	return t;
}

static void apply_line(const char *path, unsigned line, char *text, struct dime_params *p,
		       bool seen[SET_COUNT])
{
	char *hash = strchr(text, '#');
	if (hash)
		*hash = 0;
	char *key = token(&text);
	if (!key)
		return;
	int s = setting_by_key(key);
	if (s < 0)
		fail("config file %s line %u: unknown key '%s'", shown(path), line, shown(key));
	char *value = token(&text);
	if (!value)
		fail("config file %s line %u: missing value for key: '%s'", shown(path), line,
		     key);
	char *extra = token(&text);
	if (extra)
		fail("config file %s line %u: unexpected text after the value: '%s'",
		     shown(path), line, shown(extra));
	const char *detail;
	if (setting_apply(p, s, value, &detail))
		fail("config file %s line %u: bad value for %s%s%s%s: '%s'", shown(path), line,
		     key, detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
		     shown(value));
	if (seen)
		seen[s] = true;
}

void config_load(const char *path, struct dime_params *p, bool seen[SET_COUNT])
{
	FILE *f = fopen(path, "re");
	if (!f)
		fail("cannot read config file '%s': %s", shown(path), strerror(errno));
	char *text = NULL;
	size_t cap = 0;
	unsigned line = 0;
	errno = 0;
	ssize_t n;
	while ((n = getline(&text, &cap, f)) >= 0) {
		line++;
		/* A NUL byte would hide the rest of the line from the parser. */
		if (strlen(text) != (size_t)n)
			fail("config file %s line %u: NUL byte in line: '%s'", shown(path), line,
			     shown(text));
		apply_line(path, line, text, p, seen);
	}
	if (ferror(f))
		fail("cannot read config file '%s': %s", shown(path),
		     strerror(errno ? errno : EIO));
	free(text);
	fclose(f);
}

/* Option words the way every subcommand takes them: `--name value` or
 * `--name=value`. */
#include "cli.h"

#include <string.h>

bool arg_is(const char *arg, const char *name, const char **value)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n))
		return false;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return true;
	}
	if (!arg[n]) {
		*value = NULL;
		return true;
	}
	return false;
}

const char *arg_value(int argc, char **argv, int *i, const char *name, const char *value)
{
	if (value)
		return value;
	/* "--out -- prog" lost its value rather than naming it "--". */
	if (*i + 1 >= argc || !strcmp(argv[*i + 1], "--"))
		fail("missing value for option: '%s'", name);
	return argv[++*i];
}

void arg_no_value(const char *arg, const char *value)
{
	if (value)
		fail("option takes no value: '%s'", shown(arg));
}

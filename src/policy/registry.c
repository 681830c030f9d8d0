/* Finding a policy by name: the built-ins, or a plug-in loaded from a path
 * (any name with a '/'), checked against the ABI before it is used. */
#define _GNU_SOURCE
#include "policy.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct dime_policy *const builtins[] = {
	&policy_fifo,
	&policy_random,
	&policy_clock,
	&policy_lru,
};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

const char *policy_names(void)
{
	return "fifo, random, clock, lru";
}

static int refuse(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *msg, size_t size, const char *fmt, ...)
{
	if (msg && size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, size, fmt, ap);
		va_end(ap);
		/* One line, whatever dlerror() said. */
		for (char *c = msg; *c; c++)
			if (*c == '\n')
				*c = ' ';
	}
	return -EINVAL;
}

static int load(const char *path, const struct dime_policy **out, char *msg, size_t size)
{
	/* RTLD_NOW: a plug-in with an unresolved symbol fails here, not in a
	 * fault handler. Never closed (see policy.h). */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return refuse(msg, size, "cannot load policy plug-in: %s", dlerror());
	const struct dime_policy *p = dlsym(h, DIME_POLICY_SYMBOL);
	if (!p)
		return refuse(msg, size, "policy plug-in '%s' does not export the symbol %s", path,
			      DIME_POLICY_SYMBOL);
	if (p->abi_version != DIME_POLICY_ABI_VERSION)
		return refuse(msg, size,
			      "policy plug-in '%s' was built for policy ABI version %u; this dime "
			      "has version %u (rebuild it against include/dime/policy.h)",
			      path, p->abi_version, DIME_POLICY_ABI_VERSION);
	if (p->size < sizeof(struct dime_policy))
		return refuse(msg, size,
			      "policy plug-in '%s' has a struct dime_policy of %u bytes; ABI version "
			      "%u needs %zu (rebuild it against include/dime/policy.h)",
			      path, p->size, DIME_POLICY_ABI_VERSION, sizeof(struct dime_policy));
	const char *missing = !p->name ? "name" : !p->init ? "init" : !p->teardown ? "teardown" :
			      !p->page_local ? "page_local" : !p->choose ? "choose" :
			      !p->page_gone ? "page_gone" : NULL;
	if (missing)
		return refuse(msg, size, "policy plug-in '%s' has no %s", path, missing);
	*out = p;
	return 0;
}

int policy_get(const char *name, const struct dime_policy **out, char *msg, size_t size)
{
	if (strchr(name, '/'))
		return load(name, out, msg, size);
	for (size_t i = 0; i < NBUILTINS; i++)
		if (!strcmp(builtins[i]->name, name)) {
			*out = builtins[i];
			return 0;
		}
	return refuse(msg, size, "no such policy: '%s' (built-ins: %s; a plug-in is a path with a '/')",
		      name, policy_names());
}

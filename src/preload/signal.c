/* In signal mode dime's SIGBUS handler must stay installed: the program's
 * own SIGBUS disposition is recorded instead and run for faults that are
 * not dime's (engine/sigbus.c chains to it). */
#define _GNU_SOURCE
#include "preload.h"
#include "../engine/sigbus.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction(void)
{
	static _Atomic(sigaction_fn) fn;
	sigaction_fn f = atomic_load(&fn);
	if (!f) {
		f = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
		atomic_store(&fn, f);
	}
	return f;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig == SIGBUS && sigbus_installed())
		return sigbus_set_program_action(act, old);
	return real_sigaction()(sig, act, old);
}

sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

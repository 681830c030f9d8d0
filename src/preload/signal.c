/* In signal mode dime's SIGBUS handler must stay installed: the program's
 * own SIGBUS disposition is recorded instead and run for faults that are
 * not dime's (engine/sigbus.c chains to it). raise() is here because of
 * that too. */
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

/* A SIGBUS that is not dime's, with the program's action at the default,
 * must end the process as without dime; the chaining raises SIGBUS again
 * for that, as the program itself may. With dime's handler installed it
 * would only come back to the handler, forever (the sigaction(SIG_DFL)
 * above merely records the action), so dime's handler steps aside first:
 * the process is about to die of SIGBUS anyway. */
int raise(int sig)
{
	if (sig == SIGBUS && sigbus_installed()) {
		struct sigaction prog;
		sigbus_set_program_action(NULL, &prog);
		if (!(prog.sa_flags & SA_SIGINFO) && prog.sa_handler == SIG_DFL) {
			struct sigaction dfl;
			memset(&dfl, 0, sizeof(dfl));
			dfl.sa_handler = SIG_DFL;
			real_sigaction()(SIGBUS, &dfl, NULL);
		}
	}
	/* What glibc's raise() does; async-signal-safe. */
	int err = pthread_kill(pthread_self(), sig);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

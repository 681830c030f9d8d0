/* In signal mode dime's SIGBUS handler must stay installed: the program's
 * own SIGBUS disposition is recorded instead and run for faults that are
 * not dime's (engine/sigbus.c chains to it). raise() is here because of
 * that too. And SIGBUS must stay deliverable: a thread that blocks it
 * (worker threads often block every signal, handlers often run with a
 * full sa_mask) would be killed by its first remote fault, so the masks
 * the program sets never include it. A SIGBUS sent to such a thread is
 * then delivered at once instead of left pending: the price. */
#define _GNU_SOURCE
#include "preload.h"
#include "../engine/sigbus.h"

#include <errno.h>
#include <string.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
typedef int (*sigaltstack_fn)(const stack_t *, stack_t *);

static sigaction_fn real_sigaction(void)
{
	static _Atomic(void *) fn;
	return (sigaction_fn)next_symbol("sigaction", &fn);
}

/* The program's SIGBUS action as it set it (what sigaction reports), once
 * it set one; the engine chains to bus_wrapper() for a handler. */
static struct sigaction program_bus;
static bool program_bus_set;

static bool is_handler(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) ||
	       (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN);
}

/* Does around the program's handler what the kernel would have done had
 * it delivered the signal: block sa_mask while it runs, and for
 * SA_RESETHAND go back to the default first (a crash handler re-raises
 * the signal to die of it; it would otherwise come back here forever).
 * SIGBUS itself stays unblocked: the handler may touch remote pages. */
static void bus_wrapper(int sig, siginfo_t *si, void *uc)
{
	struct sigaction act = program_bus;
	if (act.sa_flags & SA_RESETHAND) {
		memset(&program_bus, 0, sizeof(program_bus));
		program_bus.sa_handler = SIG_DFL;
		sigbus_set_program_action(&program_bus, NULL);
	}
	sigset_t block, saved;
	block = act.sa_mask;
	sigdelset(&block, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	if (act.sa_flags & SA_SIGINFO)
		act.sa_sigaction(sig, si, uc);
	else
		act.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static int set_program_bus(const struct sigaction *act, struct sigaction *old)
{
	if (!program_bus_set) {
		/* What was there before dime installed its handler. */
		sigbus_set_program_action(NULL, &program_bus);
		program_bus_set = true;
	}
	if (old)
		*old = program_bus;
	if (!act)
		return 0;
	program_bus = *act;
	struct sigaction chained = *act;
	if (is_handler(act)) {
		chained.sa_sigaction = bus_wrapper;
		chained.sa_flags = SA_SIGINFO;
	}
	return sigbus_set_program_action(&chained, NULL);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!sigbus_installed())
		return real_sigaction()(sig, act, old);
	if (sig == SIGBUS)
		return set_program_bus(act, old);
	if (!act)
		return real_sigaction()(sig, act, old);
	struct sigaction a = *act;
	sigdelset(&a.sa_mask, SIGBUS);
	return real_sigaction()(sig, &a, old);
}

typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);

static sigmask_fn next_fn(const char *name, _Atomic(void *) *cache)
{
	return (sigmask_fn)next_symbol(name, cache);
}

/* The mask to set: without SIGBUS in signal mode. */
static const sigset_t *unblock_bus(int how, const sigset_t *set, sigset_t *copy)
{
	if (!set || how == SIG_UNBLOCK || !sigbus_installed() || !sigismember(set, SIGBUS))
		return set;
	*copy = *set;
	sigdelset(copy, SIGBUS);
	return copy;
}

static _Atomic(void *) next_sigprocmask, next_pthread_sigmask;

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;
	return next_fn("sigprocmask", &next_sigprocmask)(how, unblock_bus(how, set, &copy), old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t copy;
	return next_fn("pthread_sigmask", &next_pthread_sigmask)(how, unblock_bus(how, set, &copy),
								 old);
}

/* Looked up now rather than on first use, which may be in a signal
 * handler, where dlsym() is not safe. */
__attribute__((constructor)) static void resolve_next(void)
{
	real_sigaction();
	next_fn("sigprocmask", &next_sigprocmask);
	next_fn("pthread_sigmask", &next_pthread_sigmask);
}

/* glibc's signal() sets the action without going through sigaction(), so
 * SIGBUS must be caught here too; other signals keep glibc's exact
 * semantics (siginterrupt() and all). */
sighandler_t signal(int sig, sighandler_t handler)
{
	if (sig != SIGBUS || !sigbus_installed()) {
		static _Atomic(void *) fn;
		return ((signal_fn)next_symbol("signal", &fn))(sig, handler);
	}
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	if (set_program_bus(&sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* In signal mode the kernel writes every signal frame of a thread with an
 * alternate stack there, dime's SIGBUS for a remote fault included, and it
 * cannot fault a remote page in itself: the process would die. The pages
 * of the stack are kept local while it is installed. (A thread that exits
 * with its stack installed leaves those pages pinned until unmapped.) */
int sigaltstack(const stack_t *ss, stack_t *old)
{
	static _Atomic(void *) fn;
	sigaltstack_fn next = (sigaltstack_fn)next_symbol("sigaltstack", &fn);
	if (!sigbus_installed() || !ss)
		return next(ss, old);
	stack_t cur;
	bool had = next(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE);
	bool want = !(ss->ss_flags & SS_DISABLE);
	if (want)
		altstack_pin(ss->ss_sp, ss->ss_size, true);
	int rc = next(ss, old);
	if (rc) {
		if (want && !(had && cur.ss_sp == ss->ss_sp))
			altstack_pin(ss->ss_sp, ss->ss_size, false);
		return rc;
	}
	if (had && !(want && cur.ss_sp == ss->ss_sp && cur.ss_size == ss->ss_size))
		altstack_pin(cur.ss_sp, cur.ss_size, false);
	return 0;
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
		if (!is_handler(&prog) && prog.sa_handler == SIG_DFL) {
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

/* fork() from a thread that runs on emulated memory (a coroutine's stack
 * allocated on the heap).
 *
 * glibc's fork and dime's fork handlers run on the forking thread's stack.
 * On an emulated stack another thread's fault can make any page of it
 * remote at any moment, even one of fork()'s own frames: in the parent,
 * dime's prepare and parent handlers take the region's lock there (a fault
 * under it is never resolved: the thread hangs); in the child, glibc and
 * dime's child handler run before the child's regions are registered
 * again, when a remote page reads as zeroes (a frame's canary or return
 * address: the child dies). So such a fork runs, all of it, on a stack of
 * dime's (ownstack.c), and the child is back on the coroutine's stack only
 * once its faults are served. A thread on any other stack calls straight
 * through. */
#define _GNU_SOURCE
#include "preload.h"

#include <unistd.h>

typedef pid_t (*fork_fn)(void);

static uintptr_t fork_call(const uintptr_t *args)
{
	(void)args;
	return (uintptr_t)fork(); /* on dime's stack now: straight through */
}

pid_t fork(void)
{
	OFF_EMULATED_STACK(pid_t, fork_call, 0);
	static _Atomic(void *) real;
	return ((fork_fn)next_symbol("fork", &real))();
}

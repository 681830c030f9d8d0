/* Running dime's code on a stack of dime's when the program's thread runs
 * on emulated memory (a coroutine's stack allocated on the heap, switched
 * to with swapcontext or a library like it).
 *
 * dime's code in the program's thread (mmap, munmap, mremap, madvise,
 * mprotect, sigaltstack, pthread_create; fork, see fork.c) takes the
 * region's lock at times. On an emulated stack, a page of that stack can
 * go remote at any moment (another thread's fault evicts it), and a fault
 * on it while the lock is held waits for a resolution that needs the
 * lock: the thread hangs, and every other thread's faults with it. Even
 * pthread_mutex_lock() touches the stack after it has taken the lock. So
 * such a call runs, all of it, on a per-thread stack dime maps outside the
 * region (off_stack()); only the switch there and back touches the
 * program's stack, with no lock held. A thread on any other stack calls
 * straight through. */
#define _GNU_SOURCE
#include "preload.h"
#include "../engine/sys.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

enum { OWN_STACK_BYTES = 128 * 1024 };

struct own_call {
	uintptr_t (*fn)(const uintptr_t *args);
	uintptr_t args[OFF_STACK_ARGS];
	uintptr_t ret;
	int err;
};

/* At the start of the mapping, above its guard page: the two contexts and
 * the call, which must not be on the emulated stack either (in signal mode
 * the kernel cannot read or write a remote page for swapcontext's signal
 * mask); the stack above them. */
struct own_frame {
	ucontext_t back, there;
	struct own_call call;
};

static __thread struct own_frame *own; /* this thread's, or NULL */
static __thread bool own_stack_busy;   /* a signal handler's call goes straight */

bool on_emulated_stack(void)
{
	return preload_owns(__builtin_frame_address(0));
}

static void run_call(void)
{
	struct own_call *c = &own->call;
	c->ret = c->fn(c->args);
	c->err = errno;
}

void *stack_map(size_t bytes)
{
	size_t ps = engine.page_size;
	char *p = sys_mmap(NULL, ps + bytes, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	syscall(SYS_mprotect, p, ps, PROT_NONE); /* the guard: an overflow faults at once */
	return p + ps;
}

void stack_unmap(void *stack, size_t bytes)
{
	sys_munmap((char *)stack - engine.page_size, engine.page_size + bytes);
}

uintptr_t off_stack(uintptr_t (*fn)(const uintptr_t *args), const uintptr_t *args, size_t nargs)
{
	if (own_stack_busy)
		return fn(args);
	if (!own) {
		own = stack_map(OWN_STACK_BYTES);
		if (!own)
			return fn(args); /* as before: the hang above stays possible */
	}
	size_t frame = (sizeof(struct own_frame) + 63) & ~(size_t)63;
	own->call = (struct own_call){ .fn = fn };
	for (size_t i = 0; i < nargs && i < OFF_STACK_ARGS; i++)
		own->call.args[i] = args[i];
	own_stack_busy = true;
	getcontext(&own->there);
	own->there.uc_stack.ss_sp = (char *)own + frame;
	own->there.uc_stack.ss_size = OWN_STACK_BYTES - frame;
	own->there.uc_link = &own->back;
	makecontext(&own->there, run_call, 0);
	swapcontext(&own->back, &own->there);
	own_stack_busy = false;
	errno = own->call.err;
	return own->call.ret;
}

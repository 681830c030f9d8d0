/* The program's threads on stacks it allocated on its heap
 * (pthread_attr_setstack: language runtimes, thread pools that size their
 * stacks). Such a stack is emulated memory, and three things need its
 * pages local while the thread runs:
 *   - the kernel clears the thread's id word (in glibc's descriptor, at
 *     the top of the stack) at its exit and wakes pthread_join() on it, as
 *     an exiting task, for which userfaultfd refuses to wait
 *     (handle_userfault(): PF_EXITING): on a remote page the write is lost
 *     and the join waits for ever;
 *   - dime's own code in the thread (malloc, mmap, madvise, fork) holds
 *     the region's lock at times, and a fault on its stack then would
 *     wait for a handler that waits for that lock;
 *   - in signal mode the kernel writes dime's SIGBUS frame on the stack.
 * So the stack is pinned (mmap.c, kernel_pin(): not populated, but no page
 * of it leaves once in) from before the thread is created until it is
 * joined or gone: like the stacks glibc allocates, it is not emulated
 * while the thread runs.
 *
 * Signal mode also gives every thread an alternate stack of dime's,
 * outside the region, which the thread installs first thing: a fault on a
 * stack that is emulated and not pinned (a coroutine's) then has somewhere
 * for its SIGBUS frame. glibc runs on the new stack before that, so the
 * top START_BYTES of a heap stack are brought in before the thread starts.
 *
 * A slot of the table below holds one thread's share until the thread is
 * joined (pthread_join() below), or a sweep, made by later
 * pthread_create() calls, finds it gone (the kernel no longer knows its
 * id) and releases it. */
#define _GNU_SOURCE
#include "preload.h"
#include "../engine/sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Threads that may be alive at once with their share set up; more start
 * without it (and are told so once). Sweeps run every SWEEP_EVERY starts
 * and whenever the table is full. */
enum { SLOTS = 4096, SWEEP_EVERY = 32, ALTSTACK_BYTES = 64 * 1024, START_BYTES = 64 * 1024 };

enum { SLOT_FREE, SLOT_TAKEN };

struct slot {
	_Atomic int state;
	void *(*fn)(void *);
	void *arg;
	_Atomic pid_t tid; /* set by the thread once it runs; 0 before */
	pthread_t thread;  /* as pthread_create() returned it, under sweep_lock */
	const void *stack; /* a heap stack, pinned; or NULL */
	size_t stack_len;
	void *altstack; /* dime's (stack_map()), or NULL */
};

/* Taken by the creating thread, released by a sweep; a slot's fields are
 * the thread's from its start until the sweep releases it. */
static struct slot slots[SLOTS];
static unsigned slots_used; /* high-water mark, under sweep_lock */
static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned starts;
static __thread struct slot *self;

static void altstack_install(void *p)
{
	stack_t ss = { .ss_sp = p, .ss_size = ALTSTACK_BYTES };
	syscall(SYS_sigaltstack, &ss, NULL);
}

/* Whether the thread of a taken slot is gone: the kernel does not know its
 * id any more (or it is one of the parent's threads, in a fork()ed child).
 * The kernel forgets a thread after the exit's last write to its memory. */
static bool slot_gone(const struct slot *s)
{
	pid_t tid = atomic_load_explicit(&s->tid, memory_order_acquire);
	if (!tid)
		return false; /* not started yet */
	return syscall(SYS_tgkill, getpid(), tid, 0) < 0 && errno == ESRCH;
}

static void slot_release(struct slot *s)
{
	if (s->stack)
		kernel_pin(s->stack, s->stack_len, false);
	if (s->altstack)
		stack_unmap(s->altstack, ALTSTACK_BYTES);
	*s = (struct slot){ 0 };
	atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
}

/* Releases the slots of threads that are gone. sweep_lock held. */
static void sweep(void)
{
	int saved = errno;
	for (unsigned i = 0; i < slots_used; i++)
		if (atomic_load(&slots[i].state) == SLOT_TAKEN && slot_gone(&slots[i]))
			slot_release(&slots[i]);
	while (slots_used && atomic_load(&slots[slots_used - 1].state) == SLOT_FREE)
		slots_used--;
	errno = saved;
}

static struct slot *slot_take(void)
{
	pthread_mutex_lock(&sweep_lock);
	if (++starts % SWEEP_EVERY == 0)
		sweep();
	struct slot *s = NULL;
	for (int pass = 0; pass < 2 && !s; pass++) {
		for (unsigned i = 0; i < SLOTS; i++) {
			if (atomic_load(&slots[i].state) == SLOT_FREE) {
				s = &slots[i];
				atomic_store(&s->state, SLOT_TAKEN);
				if (i >= slots_used)
					slots_used = i + 1;
				break;
			}
		}
		if (!s && pass == 0)
			sweep();
	}
	pthread_mutex_unlock(&sweep_lock);
	return s;
}

static void *thread_start(void *arg)
{
	struct slot *s = arg;
	self = s;
	if (s->altstack)
		altstack_install(s->altstack);
	atomic_store_explicit(&s->tid, (pid_t)syscall(SYS_gettid), memory_order_release);
	return s->fn(s->arg);
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static _Atomic(void *) real;
	create_fn next = (create_fn)next_symbol("pthread_create", &real);
	void *stack = NULL;
	size_t size = 0;
	if (!preload_ready())
		return next(t, attr, fn, arg);
	bool heap_stack = attr && pthread_attr_getstack(attr, &stack, &size) == 0 && stack &&
			  size && preload_owns(stack);
	if (!heap_stack && !sigbus_installed())
		return next(t, attr, fn, arg); /* nothing to set up */
	struct slot *s = slot_take();
	if (!s) {
		static _Atomic int told;
		if (!atomic_exchange(&told, 1))
			fprintf(stderr, "dime: more than %d threads at once: the others start "
					"without dime's set-up (see README, Limits)\n", SLOTS);
		return next(t, attr, fn, arg);
	}
	s->fn = fn;
	s->arg = arg;
	if (heap_stack) {
		s->stack = stack;
		s->stack_len = size;
		kernel_pin(stack, size, true);
	}
	if (sigbus_installed()) {
		s->altstack = stack_map(ALTSTACK_BYTES);
		/* Pinned: once in, these pages stay until the thread is gone. */
		size_t top = !heap_stack ? 0 : size < START_BYTES ? size : START_BYTES;
		for (size_t off = 0; off < top; off += engine.page_size)
			(void)*(volatile char *)((char *)stack + size - 1 - off);
	}
	int err = next(t, attr, thread_start, s);
	pthread_mutex_lock(&sweep_lock);
	if (err)
		slot_release(s);
	else
		s->thread = *t;
	pthread_mutex_unlock(&sweep_lock);
	return err;
}

/* A joined thread is done with its stack: the join returned because the
 * kernel wrote the exit word, after the exit's last access to the
 * thread's memory, and an exiting thread takes no signals. So its share
 * is released at once, not at a later sweep: a heap stack joins the
 * policy's order again (and can be freed and reused as emulated memory). */
static void joined(pthread_t t)
{
	pthread_mutex_lock(&sweep_lock);
	for (unsigned i = 0; i < slots_used; i++)
		if (atomic_load(&slots[i].state) == SLOT_TAKEN && slots[i].thread == t &&
		    atomic_load(&slots[i].tid)) {
			slot_release(&slots[i]);
			break;
		}
	pthread_mutex_unlock(&sweep_lock);
}

typedef int (*join_fn)(pthread_t, void **);

int pthread_join(pthread_t t, void **ret)
{
	static _Atomic(void *) real;
	int err = ((join_fn)next_symbol("pthread_join", &real))(t, ret);
	if (!err && preload_ready())
		joined(t);
	return err;
}

/* The thread that fork()ed is the child's only one, with a new id. */
static void child_after_fork(void)
{
	pthread_mutex_init(&sweep_lock, NULL);
	if (self)
		atomic_store(&self->tid, (pid_t)syscall(SYS_gettid));
}

void threads_init(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
	/* The main thread, in signal mode, unless it has a stack already. */
	stack_t cur;
	if (sigbus_installed() && syscall(SYS_gettid) == getpid() &&
	    syscall(SYS_sigaltstack, NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
		void *p = stack_map(ALTSTACK_BYTES);
		if (p)
			altstack_install(p);
	}
}

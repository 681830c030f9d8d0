/* The preload library: puts an unmodified program's heap into emulated
 * memory. State shared between its files. */
#ifndef DIME_PRELOAD_H
#define DIME_PRELOAD_H

#include "../engine/internal.h"

#include <stdbool.h>
#include <stddef.h>

enum preload_phase {
	PRELOAD_OFF,  /* nothing done yet */
	PRELOAD_INIT, /* one thread is setting up */
	PRELOAD_ON,   /* the heap is emulated */
};

extern _Atomic int preload_phase;
/* The region that serves malloc and the program's anonymous mappings. */
extern struct region *preload_region;
/* Non-zero while this thread runs dime or mimalloc code: its allocations
 * and mappings are dime's own, never emulated. */
extern __thread int preload_busy;

/* The definition of `name` that the preload's own hides (glibc's), looked
 * up on first use and kept in *cache. dlsym() is not async-signal-safe:
 * what a signal handler may call is looked up at load time instead. */
void *next_symbol(const char *name, _Atomic(void *) *cache);

/* Sets the preload up on first use; returns true when the heap is
 * emulated and this thread may use it. Cheap once set up. */
bool preload_ready_slow(void);
static inline bool preload_ready(void)
{
	return __builtin_expect(atomic_load_explicit(&preload_phase, memory_order_acquire) ==
					PRELOAD_ON, 1) &&
	       !preload_busy;
}

/* True if addr lies in the program-visible part of the preload region. */
static inline bool preload_owns(const void *addr)
{
	struct region *r = preload_region;
	return r && (uintptr_t)addr - r->base < r->size;
}

/* mmap.c: bookkeeping for mappings served from the region. */
int mappings_init(struct region *r);
/* Keeps the pages of a signal stack local (pin) or lets them go again. */
void altstack_pin(const void *sp, size_t size, bool pin);
/* Keeps the pages of [p, p+len) local (pin) for the kernel, which will
 * write there without waiting for dime (thread.c), or lets them go.
 * Counted: each pin is undone by one unpin. */
void kernel_pin(const void *p, size_t len, bool pin);

/* ownstack.c: whether this thread runs on emulated memory (a coroutine's
 * heap stack); and fn(args) run on a stack of dime's, for code that takes
 * the region lock (see there). Returns fn's value, with its errno. */
enum { OFF_STACK_ARGS = 6 };
/* A stack of dime's, outside the region: `bytes` usable, a guard page
 * below; NULL if it cannot be mapped. */
void *stack_map(size_t bytes);
void stack_unmap(void *stack, size_t bytes);
bool on_emulated_stack(void);
uintptr_t off_stack(uintptr_t (*fn)(const uintptr_t *args), const uintptr_t *args, size_t nargs);
/* The start of a function that must run off an emulated stack: calls
 * `call` (a uintptr_t (*)(const uintptr_t *) unpacking the arguments and
 * calling the function again) on dime's stack and returns its value as
 * `type`. */
#define OFF_EMULATED_STACK(type, call, ...)                                         \
	do {                                                                        \
		if (on_emulated_stack()) {                                          \
			const uintptr_t args_[] = { __VA_ARGS__ };                  \
			return (type)off_stack(call, args_, sizeof(args_) / sizeof(args_[0])); \
		}                                                                   \
	} while (0)

/* thread.c: what the kernel writes for the program's threads. */
void threads_init(void);

/* config.c: the run's parameters from DIME_* variables; exits with status
 * 2 and a one-line message on a bad value. */
void config_from_env(struct dime_params *p);

/* instance.c: joins the instance named by DIME_INSTANCE, if any; exits
 * with status 2 and a one-line message if it cannot. */
void preload_instance_join(struct region *r);

#endif

/* The host table: the services a policy may call (see
 * include/dime/policy.h). Each is async-signal-safe: raw mmap/munmap,
 * arithmetic, a clock read. */
#include "../engine/book.h"
#include "../engine/clock.h"
#include "policy.h"

static void *host_alloc(size_t size)
{
	return size ? book_alloc(size) : NULL;
}

static void host_free(void *p, size_t size)
{
	book_free(p, size);
}

/* xorshift64* (Vigna): a few ns, good enough for choosing pages; a zero
 * state (which xorshift would keep) is replaced by a constant. */
static uint64_t host_random(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t host_now_ns(void)
{
	return clock_ticks_to_ns(clock_ticks());
}

const struct dime_policy_host policy_host = {
	.abi_version = DIME_POLICY_ABI_VERSION,
	.size = sizeof(struct dime_policy_host),
	.alloc = host_alloc,
	.free = host_free,
	.random = host_random,
	.now_ns = host_now_ns,
};

/* The malloc family, served by mimalloc from the emulated region (its only
 * arena once the preload is set up; see init.c). Calls made while dime is
 * setting itself up get bootstrap memory, which is never freed. */
#include "preload.h"

#include <errno.h>
#include <mimalloc.h>
#include <string.h>

/* --- bootstrap arena --------------------------------------------------- */

#define BOOT_SIZE (1 << 20)
static _Alignas(64) char boot[BOOT_SIZE];
static _Atomic size_t boot_used;

struct boot_hdr {
	size_t size;
	size_t pad;
};

static bool is_boot(const void *p)
{
	return (const char *)p >= boot && (const char *)p < boot + BOOT_SIZE;
}

static void *boot_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	size_t need = sizeof(struct boot_hdr) + size + align;
	if (size > BOOT_SIZE)
		return NULL;
	size_t at = atomic_fetch_add(&boot_used, need);
	if (at + need > BOOT_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	uintptr_t p = (uintptr_t)boot + at + sizeof(struct boot_hdr);
	p = (p + align - 1) & ~(uintptr_t)(align - 1);
	((struct boot_hdr *)p)[-1].size = size;
	return (void *)p; /* static storage: already zero */
}

static size_t boot_size(const void *p)
{
	return ((const struct boot_hdr *)p)[-1].size;
}

static inline bool heap_ok(void)
{
	return preload_ready() || preload_ready_slow();
}

/* --- the interposed functions ------------------------------------------ */

void *malloc(size_t size)
{
	return heap_ok() ? mi_malloc(size) : boot_alloc(size, 16);
}

void free(void *p)
{
	if (p && !is_boot(p))
		mi_free(p);
}

void *calloc(size_t n, size_t size)
{
	if (heap_ok())
		return mi_calloc(n, size);
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return boot_alloc(total, 16);
}

void *realloc(void *p, size_t size)
{
	if (p && is_boot(p)) {
		void *q = malloc(size);
		if (q) {
			size_t old = boot_size(p);
			memcpy(q, p, old < size ? old : size);
		}
		return q;
	}
	return heap_ok() ? mi_realloc(p, size) : boot_alloc(size, 16);
}

void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	if (heap_ok())
		return mi_posix_memalign(out, align, size);
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = boot_alloc(size, align);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
	return heap_ok() ? mi_aligned_alloc(align, size) : boot_alloc(size, align);
}

void *memalign(size_t align, size_t size)
{
	return heap_ok() ? mi_memalign(align, size) : boot_alloc(size, align);
}

void *valloc(size_t size)
{
	return heap_ok() ? mi_valloc(size) : boot_alloc(size, 4096);
}

void *pvalloc(size_t size)
{
	return heap_ok() ? mi_pvalloc(size) : boot_alloc(size, 4096);
}

size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	return is_boot(p) ? boot_size(p) : mi_usable_size(p);
}

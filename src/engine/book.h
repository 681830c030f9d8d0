/* Bookkeeping memory. dime's own data never lives in emulated memory and
 * never comes from malloc (which the preload serves from emulated memory):
 * it is mapped straight from the kernel, zero-filled, and untouched pages
 * cost nothing. */
#ifndef DIME_BOOK_H
#define DIME_BOOK_H

#include <stddef.h>
#include "sys.h"

static inline void *book_alloc(size_t size)
{
	void *p = sys_mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline void book_free(void *p, size_t size)
{
	if (p)
		sys_munmap(p, size);
}

#endif

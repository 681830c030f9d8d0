/* Heaps on emulated memory, served by mimalloc's arena API. */
#ifndef DIME_HEAP_H
#define DIME_HEAP_H

#include "internal.h"

/* Hands the region to mimalloc as an arena. An exclusive arena serves only
 * dime_malloc() on this region; a shared one (the preload's) serves every
 * mimalloc heap once mimalloc is told to take no memory from the OS. */
void heap_attach(struct region *r, bool exclusive);

/* Regions are aligned so that mimalloc's 32 MiB segments fit. */
#define HEAP_ALIGN ((size_t)64 << 20)

#endif

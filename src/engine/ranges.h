/* Range operations the program asks for on emulated memory (through the
 * preload's munmap, madvise and mremap). */
#ifndef DIME_RANGES_H
#define DIME_RANGES_H

#include "internal.h"

/* Makes [addr, addr+len) read as zeroes again, like MADV_DONTNEED on
 * anonymous memory: local pages stop counting against the budget, remote
 * ones lose their stored bytes. addr and len are page-aligned and inside r. */
void region_discard(struct region *r, uintptr_t addr, size_t len);

/* Moves the pages of [src, src+len) to [dst, dst+len) without touching
 * their bytes, as mremap() would: local pages stay local, remote ones stay
 * remote. The ranges must not overlap; dst must be discarded (untouched).
 * 0 or -errno. */
int region_move(struct region *r, uintptr_t dst, uintptr_t src, size_t len);

#endif

/* mlock and friends. Residency of emulated memory is dime's to decide (as
 * for madvise(MADV_WILLNEED)): locking it is accepted and ignored. The
 * kernel would also populate every page of the region and of its store,
 * tens of gigabytes of address space, through dime's fault handling:
 * mlockall(MCL_CURRENT) would never return. Everything else is locked as
 * the program asked. */
#define _GNU_SOURCE
#include "preload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/* Is [a, e) clear of the region and of its store? */
static bool outside(const struct region *r, uintptr_t a, uintptr_t e)
{
	return (e <= r->base || a >= r->base + r->size) && (e <= r->store || a >= r->store + r->size);
}

/* Applies the lock call `nr` (SYS_mlock, SYS_munlock or SYS_mlock2) to
 * the parts of [addr, addr+len) outside the region. */
static int lock_outside(long nr, const void *addr, size_t len, int flags)
{
	struct region *r = preload_region;
	uintptr_t a = (uintptr_t)addr, e = a + len;
	if (!r || preload_busy || len == 0 || e < a || e <= r->base || a >= r->base + r->size)
		return (int)syscall(nr, addr, len, flags);
	int rc = 0;
	if (a < r->base)
		rc |= (int)syscall(nr, addr, r->base - a, flags);
	if (e > r->base + r->size)
		rc |= (int)syscall(nr, r->base + r->size, e - (r->base + r->size), flags);
	return rc ? -1 : 0;
}

int mlock(const void *addr, size_t len)
{
	return lock_outside(SYS_mlock, addr, len, 0);
}

int mlock2(const void *addr, size_t len, unsigned int flags)
{
	return lock_outside(SYS_mlock2, addr, len, (int)flags);
}

int munlock(const void *addr, size_t len)
{
	return lock_outside(SYS_munlock, addr, len, 0);
}

/* Locks and populates every mapping but dime's region and store, as
 * mlockall(MCL_CURRENT) would: from /proc/self/maps. Errors are ignored,
 * as the kernel's mlockall ignores those of populating. */
static void lock_others(const struct region *r)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			char *end;
			uintptr_t a = strtoul(line, &end, 16), e = *end == '-' ? strtoul(end + 1, NULL, 16) : 0;
			if (e > a && outside(r, a, e))
				syscall(SYS_mlock, a, e - a);
			line = nl + 1;
		}
		have = (size_t)(buf + have - line);
		memmove(buf, line, have);
	}
	close(fd);
}

int mlockall(int flags)
{
	struct region *r = preload_region;
	/* MCL_FUTURE alone only sets how new mappings are made; dime's
	 * region is never new. */
	if (!r || !(flags & MCL_CURRENT))
		return (int)syscall(SYS_mlockall, flags);
	/* Lock what exists without populating anything, unlock dime's, then
	 * populate the rest unless the program asked for on-fault locking. */
	if (syscall(SYS_mlockall, MCL_CURRENT | MCL_ONFAULT))
		return -1;
	syscall(SYS_munlock, r->base, r->size);
	syscall(SYS_munlock, r->store, r->size);
	if (!(flags & MCL_ONFAULT))
		lock_others(r);
	if (flags & MCL_FUTURE)
		return (int)syscall(SYS_mlockall, flags & ~MCL_CURRENT);
	return 0;
}

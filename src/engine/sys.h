/* Raw memory-management system calls for the engine's own use. The preload
 * interposes the libc functions of the same names to serve the program's
 * mappings from emulated memory; the engine's mappings must never take that
 * path, and in a preload even calls inside the library bind to the
 * interposed symbols. */
#ifndef DIME_SYS_H
#define DIME_SYS_H

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return r == -1 ? MAP_FAILED : (void *)r;
}

static inline int sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static inline int sys_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

#endif

/* userfaultfd access: opening, the API handshake, feature detection and the
 * page operations dime uses. Debian 12's headers are Linux 6.1, so constants
 * added later are defined here and detected at run time. */
#ifndef DIME_UFFD_H
#define DIME_UFFD_H

#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

/* What the running kernel offers, probed once per process. */
struct uffd_caps {
	int open_errno;   /* 0, or why no userfaultfd could be opened */
	uint64_t features; /* UFFDIO_API features */
	bool user_mode_only; /* only UFFD_USER_MODE_ONLY opened (unprivileged) */
	bool has_move;     /* UFFDIO_MOVE (Linux >= 6.8) */
	bool has_wp;       /* write-protect on anonymous memory (Linux >= 5.7) */
};

const struct uffd_caps *uffd_caps(void);

/* Opens a userfaultfd with `features` (UFFD_FEATURE_*) enabled. Returns the
 * fd or -errno. */
int uffd_open(uint64_t features);

/* Registers [addr, addr+len) for missing faults, and for write-protect
 * faults too when the engine moves pages by copying (no UFFDIO_MOVE).
 * 0 or -errno. */
int uffd_register(int uffd, uintptr_t addr, size_t len);
/* Registers a region's store as a UFFDIO_MOVE destination (move mode).
 * Sets *copy_in when page-in may also copy from it (see pageio.c).
 * 0 or -errno. */
int uffd_register_store(int uffd, uintptr_t addr, size_t len, bool *copy_in);
int uffd_unregister(int uffd, uintptr_t addr, size_t len);

/* Moves one page src -> dst within the uffd's mm; dst must be registered.
 * Returns 0 or -errno (-EEXIST: dst present, -ENOENT: src absent, -EBUSY:
 * src shared after fork). Retries -EAGAIN. */
int uffd_move(int uffd, uintptr_t dst, uintptr_t src, size_t len);

/* Installs a copy of src at dst (missing page). 0 or -errno (-EEXIST ok). */
int uffd_copy(int uffd, uintptr_t dst, const void *src, size_t len);

/* Maps zeroes at dst (missing page). 0 or -errno. */
int uffd_zeropage(int uffd, uintptr_t dst, size_t len);

/* Sets (protect) or clears write protection on [addr, addr+len); clearing
 * wakes threads waiting on it. 0 or -errno. */
int uffd_writeprotect(int uffd, uintptr_t addr, size_t len, bool protect);

/* Wakes threads waiting on [addr, addr+len). */
int uffd_wake(int uffd, uintptr_t addr, size_t len);

/* One line telling a user how to get userfaultfd access. */
const char *uffd_permission_hint(void);

#endif

/* userfaultfd plumbing. See uffd.h. */
#include "internal.h"
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static struct uffd_caps caps;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

/* Opens a raw userfaultfd: the syscall first, then /dev/userfaultfd (which
 * root or a user given access to the device can use even when
 * vm.unprivileged_userfaultfd is 0). */
static int open_raw(int flags)
{
	int fd = (int)syscall(SYS_userfaultfd, flags);
	if (fd >= 0)
		return fd;
	int err = errno;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		close(dev);
		if (fd >= 0)
			return fd;
	}
	return -err;
}

static int api_handshake(int fd, uint64_t features, uint64_t *offered)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		return -errno;
	if (offered)
		*offered = api.features;
	return 0;
}

static void probe(void)
{
	int fd = open_raw(O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		fd = open_raw(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
		if (fd < 0) {
			caps.open_errno = -fd;
			return;
		}
		caps.user_mode_only = true;
	}
	/* A zero-feature handshake reports everything the kernel offers. */
	if (api_handshake(fd, 0, &caps.features) < 0)
		caps.open_errno = errno;
	close(fd);
	caps.has_move = caps.features & UFFD_FEATURE_MOVE;
	caps.has_wp = caps.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP;
}

const struct uffd_caps *uffd_caps(void)
{
	pthread_once(&caps_once, probe);
	return &caps;
}

int uffd_open(uint64_t features)
{
	const struct uffd_caps *c = uffd_caps();
	if (c->open_errno)
		return -c->open_errno;
	/* Without privilege only user-mode faults can be trapped: kernel
	 * accesses to missing pages would then fail with EFAULT. */
	int flags = O_CLOEXEC | (c->user_mode_only ? UFFD_USER_MODE_ONLY : 0);
	int fd = open_raw(flags);
	if (fd < 0)
		return fd;
	int err = api_handshake(fd, features, NULL);
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

int uffd_register(int uffd, uintptr_t addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			(engine.use_move ? 0 : UFFDIO_REGISTER_MODE_WP),
	};
	return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

int uffd_register_store(int uffd, uintptr_t addr, size_t len, bool *copy_in)
{
	/* A move destination needs only to be registered with the uffd; with
	 * write-protect faults alone (none is ever armed) a kernel read of an
	 * empty slot maps zeroes instead of waiting for a handler, so page-in
	 * may copy from any slot. Kernels without write-protect on anonymous
	 * memory get missing-fault registration and moves only. */
	struct uffdio_register reg = { .range = { .start = addr, .len = len },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	*copy_in = ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
	if (*copy_in)
		return 0;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

int uffd_unregister(int uffd, uintptr_t addr, size_t len)
{
	struct uffdio_range r = { .start = addr, .len = len };
	return ioctl(uffd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

int uffd_move(int uffd, uintptr_t dst, uintptr_t src, size_t len)
{
	for (;;) {
		struct uffdio_move m = { .dst = dst, .src = src, .len = len };
		if (ioctl(uffd, UFFDIO_MOVE, &m) == 0)
			return 0;
		/* EAGAIN: the mm changed under us (e.g. a concurrent mremap);
		 * nothing was moved, try again. */
		if (errno != EAGAIN)
			return -errno;
	}
}

int uffd_copy(int uffd, uintptr_t dst, const void *src, size_t len)
{
	for (;;) {
		struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len };
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

int uffd_zeropage(int uffd, uintptr_t dst, size_t len)
{
	for (;;) {
		struct uffdio_zeropage z = { .range = { .start = dst, .len = len } };
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

int uffd_writeprotect(int uffd, uintptr_t addr, size_t len, bool protect)
{
	for (;;) {
		struct uffdio_writeprotect w = {
			.range = { .start = addr, .len = len },
			.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
		};
		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0)
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
}

int uffd_wake(int uffd, uintptr_t addr, size_t len)
{
	struct uffdio_range r = { .start = addr, .len = len };
	return ioctl(uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

const char *uffd_permission_hint(void)
{
	return "userfaultfd is not permitted: run as root, give this user read-write "
	       "access to /dev/userfaultfd, or set sysctl vm.unprivileged_userfaultfd=1 "
	       "(without these only --mode signal works, and system calls on remote "
	       "pages then fail with EFAULT)";
}

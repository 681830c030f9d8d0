/* The helper thread: page moves done inside the target.
 *
 * The kernel runs UFFDIO_MOVE only in the mm the uffd belongs to (Linux
 * 6.8+, fs/userfaultfd.c userfaultfd_move(): "Do not allow cross-mm
 * moves", EINVAL otherwise); UFFDIO_COPY, ZEROPAGE, WAKE, REGISTER work
 * from any process. So dime-agent starts a thread in the target whose only
 * job is that ioctl: a few dozen instructions (helper-<arch>.S) copied into
 * a mapping of their own, with a stack of their own, started by the
 * target's main thread under libcompel (clone() then a trap back).
 *
 * Protocol, over two pipes created in the target (the agent takes its
 * ends with pidfd_getfd and the target closes them): the agent writes the
 * first 32 bytes of a struct uffdio_move (dst, src, len, mode), the helper
 * answers 16 bytes: the struct's `move` field and the ioctl's return value
 * (0 or -errno). One request at a time (the agent is single-threaded).
 * The helper never touches emulated memory and blocks every signal; it
 * exits when its command pipe reaches end of file, which also happens when
 * the agent dies. */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__aarch64__)
extern const char dime_helper_start[], dime_helper_data[], dime_helper_end[];
#define HAVE_HELPER 1
#endif

/* The data block at the end of the helper's code (helper-<arch>.S). */
struct helper_data {
	uint64_t stack_top;
	int32_t cmd_fd, res_fd, uffd, pad;
	char name[16];
};

enum { HELPER_STACK = 64 << 10 };

static int remote_write(pid_t pid, uintptr_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)addr, len };
	return process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EIO;
}

static int take_fd(struct attach_target *t, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, t->pidfd, fd, 0);
}

int helper_start(struct attach_target *t, struct inject *in)
{
#ifndef HAVE_HELPER
	(void)in;
	fprintf(stderr, "dime: dime insert has no page-move helper for this architecture "
			"(x86_64 and aarch64 only)\n");
	return -ENOTSUP;
#else
	struct attach_helper *h = &t->helper;
	size_t ps = engine.page_size;
	size_t code_len = (size_t)(dime_helper_end - dime_helper_start);
	size_t code_map = (code_len + ps - 1) & ~(ps - 1);
	long ret;
	h->cmd = h->res = -1;
	h->target_cmd = h->target_res = -1;
	if (inject_syscall(in, __NR_mmap, &ret, 0, code_map, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, (unsigned long)-1, 0) || (ret < 0 && ret > -4096))
		goto fail;
	h->code = (uintptr_t)ret;
	if (inject_syscall(in, __NR_mmap, &ret, 0, HELPER_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, (unsigned long)-1, 0) || (ret < 0 && ret > -4096))
		goto fail;
	h->stack = (uintptr_t)ret;
	/* Two pipes: pipe2() writes its two descriptors to the stack. */
	int fds[4];
	if (inject_syscall(in, __NR_pipe2, &ret, h->stack, O_CLOEXEC, 0, 0, 0, 0) || ret ||
	    inject_syscall(in, __NR_pipe2, &ret, h->stack + 8, O_CLOEXEC, 0, 0, 0, 0) || ret ||
	    target_read(t->pid, h->stack, fds, sizeof(fds)))
		goto fail;
	/* fds: command read, command write, result read, result write. */
	h->target_cmd = fds[0];
	h->target_res = fds[3];
	h->cmd = take_fd(t, fds[1]);
	h->res = take_fd(t, fds[2]);
	inject_syscall(in, __NR_close, &ret, (unsigned long)fds[1], 0, 0, 0, 0, 0);
	inject_syscall(in, __NR_close, &ret, (unsigned long)fds[2], 0, 0, 0, 0, 0);
	if (h->cmd < 0 || h->res < 0)
		goto fail;

	char code[4096];
	if (code_len > sizeof(code))
		goto fail;
	memcpy(code, dime_helper_start, code_len);
	struct helper_data d = { .stack_top = h->stack + HELPER_STACK - 64,
				 .cmd_fd = fds[0], .res_fd = fds[3], .uffd = t->target_fd,
				 .name = "dime-helper" };
	memcpy(code + (dime_helper_data - dime_helper_start), &d, sizeof(d));
	if (remote_write(t->pid, h->code, code, code_len) ||
	    inject_syscall(in, __NR_mprotect, &ret, h->code, code_map, PROT_READ | PROT_EXEC, 0, 0,
			   0) ||
	    ret)
		goto fail;
	long tid;
	if (inject_run_at(in, h->code, &tid) || tid <= 0)
		goto fail;
	h->tid = (pid_t)tid;
	return 0;
fail:
	fprintf(stderr, "dime: cannot start dime's helper thread in process %d\n", (int)t->pid);
	helper_stop(t);
	helper_remove(t, in);
	return -EIO;
#endif
}

/* Waits until fd is readable or the target is gone. Messages on the uffd
 * are read meanwhile and kept (agent_pump): the helper's own madvise()
 * waits until its REMOVE event is read. */
static bool wait_readable(struct attach_target *t, int fd)
{
	for (;;) {
		struct pollfd p[3] = { { .fd = fd, .events = POLLIN },
				       { .fd = t->pidfd, .events = POLLIN },
				       { .fd = t->uffd, .events = POLLIN } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (p[0].revents)
			return true;
		if (p[1].revents)
			return false;
		if (p[2].revents)
			agent_pump(t);
	}
}

int helper_move(struct attach_target *t, struct uffdio_move *m)
{
	struct attach_helper *h = &t->helper;
	if (h->cmd < 0)
		return -ESRCH;
	for (;;) {
		int64_t ans[2];
		if (write(h->cmd, m, 32) != 32 || !wait_readable(t, h->res) ||
		    read(h->res, ans, sizeof(ans)) != sizeof(ans))
			return -ESRCH;
		m->move = ans[0];
		int err = (int)ans[1];
		if (err != -EAGAIN || m->move > 0)
			return err;
		/* An event is waiting to be read (mmap_changing): the kernel
		 * refuses moves until it is read (handled or not). */
		agent_pump(t);
	}
}

void helper_discard(struct attach_target *t, uintptr_t addr, size_t len)
{
	struct uffdio_move m = { .dst = addr, .len = len, .mode = (uint64_t)1 << 63 };
	helper_move(t, &m);
}

void helper_stop(struct attach_target *t)
{
	struct attach_helper *h = &t->helper;
	if (h->cmd >= 0)
		close(h->cmd);
	if (h->res >= 0)
		close(h->res);
	h->cmd = h->res = -1;
	if (h->tid <= 0)
		return;
	/* End of file on its command pipe ends the thread. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)t->pid, (int)h->tid);
	for (int i = 0; i < 2000 && !access(path, F_OK); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	h->tid = 0;
}

void helper_remove(struct attach_target *t, struct inject *in)
{
	struct attach_helper *h = &t->helper;
	size_t ps = engine.page_size;
	size_t code_map = ((size_t)4096 + ps - 1) & ~(ps - 1);
	long ret;
	if (h->code)
		inject_syscall(in, __NR_munmap, &ret, h->code, code_map, 0, 0, 0, 0);
	if (h->stack)
		inject_syscall(in, __NR_munmap, &ret, h->stack, HELPER_STACK, 0, 0, 0, 0);
	if (h->target_cmd >= 0)
		inject_syscall(in, __NR_close, &ret, (unsigned long)h->target_cmd, 0, 0, 0, 0, 0);
	if (h->target_res >= 0)
		inject_syscall(in, __NR_close, &ret, (unsigned long)h->target_res, 0, 0, 0, 0, 0);
	h->code = h->stack = 0;
	h->target_cmd = h->target_res = -1;
}

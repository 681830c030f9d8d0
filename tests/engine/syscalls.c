/* In thread mode the kernel's own accesses to remote pages, during system
 * calls, wait for dime like the program's do: right bytes, never EFAULT. */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static const size_t PS = 4096;
enum { LOCAL = 8, BUF_PAGES = 4, SWEEP_PAGES = 64 };

/* Region layout: a 4-page buffer, then pages swept to push it out. */
static struct dime_region *r;
static char *buf;

static void setup(void)
{
	r = test_region((BUF_PAGES + SWEEP_PAGES) * PS, LOCAL, DIME_MODE_THREAD);
	buf = dime_region_base(r);
}

static void teardown(void)
{
	dime_region_destroy(r);
}

/* Makes every buffer page remote (FIFO: the sweep evicts it). */
static void evict_buffer(void)
{
	volatile char *sweep = buf + BUF_PAGES * PS;
	for (size_t i = 0; i < SWEEP_PAGES; i++)
		sweep[i * PS] = 1;
}

static uint64_t remote_faults(void)
{
	struct dime_stats s;
	dime_region_stats(r, &s);
	return s.remote_faults;
}

static void fill(char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seed + i * 7);
}

static void expect_filled(const char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)(seed + i * 7))
			cr_assert_fail("byte %zu differs", i);
}

TestSuite(syscalls, .init = setup, .fini = teardown);

Test(syscalls, write_from_remote_pages)
{
	size_t n = BUF_PAGES * PS;
	fill(buf, n, 1);
	evict_buffer();
	uint64_t before = remote_faults();
	int fd[2];
	cr_assert_eq(pipe2(fd, 0), 0);
	fcntl(fd[1], F_SETPIPE_SZ, (int)n);
	cr_assert_eq(write(fd[1], buf, n), (ssize_t)n);
	cr_expect_geq(remote_faults() - before, BUF_PAGES, "the kernel's reads were faults");
	static char out[BUF_PAGES * 4096];
	cr_assert_eq(read(fd[0], out, n), (ssize_t)n);
	expect_filled(out, n, 1);
	close(fd[0]);
	close(fd[1]);
}

Test(syscalls, read_into_remote_pages)
{
	size_t n = BUF_PAGES * PS;
	fill(buf, n, 2);
	evict_buffer();
	static char in[BUF_PAGES * 4096];
	fill(in, n, 3);
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	fcntl(fd[1], F_SETPIPE_SZ, (int)n);
	cr_assert_eq(write(fd[1], in, n), (ssize_t)n);
	uint64_t before = remote_faults();
	cr_assert_eq(read(fd[0], buf, n), (ssize_t)n);
	cr_expect_geq(remote_faults() - before, BUF_PAGES);
	expect_filled(buf, n, 3);
	close(fd[0]);
	close(fd[1]);
}

Test(syscalls, pread_pwritev_span_local_and_remote)
{
	size_t n = BUF_PAGES * PS;
	FILE *f = tmpfile();
	cr_assert_not_null(f);
	int fd = fileno(f);
	fill(buf, n, 4);
	evict_buffer();
	(void)*(volatile char *)buf; /* first page local again, the rest remote */
	struct iovec iov[2] = { { buf, PS + 100 }, { buf + PS + 100, n - PS - 100 } };
	cr_assert_eq(pwritev(fd, iov, 2, 0), (ssize_t)n);
	memset(buf, 0, n);
	evict_buffer();
	(void)*(volatile char *)(buf + 2 * PS);
	cr_assert_eq(pread(fd, buf, n, 0), (ssize_t)n);
	expect_filled(buf, n, 4);
	fclose(f);
}

Test(syscalls, process_vm_readv_of_remote_pages)
{
	size_t n = BUF_PAGES * PS;
	fill(buf, n, 5);
	evict_buffer();
	static char out[BUF_PAGES * 4096];
	struct iovec local = { out, n }, remote = { buf, n };
	cr_assert_eq(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), (ssize_t)n);
	expect_filled(out, n, 5);
}

static void *futex_waker(void *arg)
{
	_Atomic uint32_t *word = arg;
	usleep(20000);
	atomic_store(word, 1);
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
	return NULL;
}

Test(syscalls, futex_on_a_remote_word)
{
	_Atomic uint32_t *word = (_Atomic uint32_t *)(buf + PS + 64);
	atomic_store(word, 0);
	evict_buffer();
	uint64_t before = remote_faults();
	/* FUTEX_WAIT reads the word in the kernel: it must fault it in and
	 * then sleep, not fail with EFAULT. */
	pthread_t t;
	pthread_create(&t, NULL, futex_waker, (void *)word);
	while (atomic_load(word) == 0) {
		long rc = syscall(SYS_futex, word, FUTEX_WAIT, 0, NULL, NULL, 0);
		cr_assert(rc == 0 || errno == EAGAIN || errno == EINTR, "futex: %s", strerror(errno));
	}
	pthread_join(t, NULL);
	cr_expect_geq(remote_faults() - before, 1);
}

Test(syscalls, buffer_spanning_local_and_remote)
{
	fill(buf, 2 * PS, 6);
	evict_buffer();
	(void)*(volatile char *)buf; /* page 0 local, page 1 remote */
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	cr_assert_eq(write(fd[1], buf + PS - 50, 100), 100);
	char out[100];
	cr_assert_eq(read(fd[0], out, 100), 100);
	for (int i = 0; i < 100; i++)
		cr_expect_eq(out[i], (char)(6 + (PS - 50 + i) * 7));
	close(fd[0]);
	close(fd[1]);
}

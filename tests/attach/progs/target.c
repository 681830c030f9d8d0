/* A program for dime insert to attach to: it fills heap memory (many small
 * malloc blocks in the brk heap, and one large block, an anonymous mmap)
 * with a known pattern, says "ready", then checks its own data over and
 * over and moves heap buffers through a pipe with read()/write(). Each
 * finished pass prints "pass N". Signals drive the rest:
 *   SIGUSR1  fork: the child checks the data, changes its copy, checks it
 *            again and exits 0; the parent checks the child's status and
 *            that its own data did not change ("fork ok")
 *   SIGUSR2  mremap the large block to a new place (it grows by a page),
 *            madvise(MADV_DONTNEED) a scratch block and check it reads as
 *            zeroes ("remap ok")
 *   SIGTERM  a last check, then "done CHECKSUM" and exit 0
 * A second thread checks the small blocks all the while (its faults come
 * concurrently with the main thread's, its stack is covered memory too).
 * Any mismatch prints "BAD ..." on stderr and exits 1. Plain C, no dime. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SMALL = 2048, SMALL_SIZE = 1000, BIG_SIZE = 6 << 20, IO_SIZE = 256 << 10 };

static unsigned char *small[SMALL];
static unsigned char *big;
static size_t big_size = BIG_SIZE;
static unsigned char *scratch;
static volatile sig_atomic_t want_fork, want_remap, want_stop;

static unsigned char pattern(uint64_t block, uint64_t i)
{
	uint64_t x = (block + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
	return (unsigned char)(x >> 56);
}

static void bad(const char *what, uint64_t where)
{
	fprintf(stderr, "BAD %s at %llu (pid %d)\n", what, (unsigned long long)where, (int)getpid());
	exit(1);
}

/* Checks every byte; returns a checksum of everything. */
static uint64_t check_all(void)
{
	uint64_t sum = 0;
	for (int b = 0; b < SMALL; b++)
		for (int i = 0; i < SMALL_SIZE; i++) {
			if (small[b][i] != pattern((uint64_t)b, (uint64_t)i))
				bad("small block", (uint64_t)b);
			sum = sum * 31 + small[b][i];
		}
	for (size_t i = 0; i < BIG_SIZE; i++) {
		if (big[i] != pattern(SMALL, i))
			bad("big block", i);
		sum = sum * 31 + big[i];
	}
	return sum;
}

/* Heap buffers through a pipe: the kernel reads and writes them. The pipe
 * is opened once, before "ready", and kept: the tests compare the
 * process's descriptors before dime insert and after dime detach, and a
 * pipe opened and closed in every pass would be caught open at random
 * (one sample in 30 here). */
static int io_pipe[2];

static void pipe_round(unsigned char *out, unsigned char *in, int round)
{
	const int *p = io_pipe;
	for (size_t i = 0; i < IO_SIZE; i++)
		out[i] = (unsigned char)(i * 7 + (size_t)round);
	size_t done = 0;
	while (done < IO_SIZE) {
		size_t chunk = IO_SIZE - done < 32768 ? IO_SIZE - done : 32768;
		ssize_t w = write(p[1], out + done, chunk);
		if (w <= 0)
			bad("write", done);
		size_t got = 0;
		while (got < (size_t)w) {
			ssize_t r = read(p[0], in + done + got, (size_t)w - got);
			if (r <= 0)
				bad("read", done + got);
			got += (size_t)r;
		}
		done += (size_t)w;
	}
	if (memcmp(out, in, IO_SIZE))
		bad("pipe data", 0);
}

static void do_fork(uint64_t expect)
{
	pid_t c = fork();
	if (c < 0)
		bad("fork", 0);
	if (c == 0) {
		if (check_all() != expect)
			bad("child checksum", 0);
		for (int b = 0; b < SMALL; b += 3)
			small[b][0] ^= 0xff;
		for (int b = 0; b < SMALL; b += 3)
			if (small[b][0] != (pattern((uint64_t)b, 0) ^ 0xff))
				bad("child write", (uint64_t)b);
		_exit(0);
	}
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
		bad("child status", (uint64_t)st);
	if (check_all() != expect)
		bad("parent checksum after fork", 0);
	printf("fork ok\n");
	fflush(stdout);
}

static void do_remap(uint64_t expect)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	/* Growing by a page with a mapping in the way forces a move. */
	void *fence = mmap(big + big_size, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	unsigned char *n = mremap(big, big_size, big_size + ps, MREMAP_MAYMOVE);
	if (n == MAP_FAILED)
		bad("mremap", (uint64_t)errno);
	if (fence != MAP_FAILED)
		munmap(fence, ps);
	big = n;
	big_size += ps;
	if (check_all() != expect)
		bad("checksum after mremap", 0);
	memset(scratch, 0x5a, IO_SIZE);
	if (madvise(scratch, IO_SIZE, MADV_DONTNEED))
		bad("madvise", (uint64_t)errno);
	for (size_t i = 0; i < IO_SIZE; i++)
		if (scratch[i])
			bad("zeroes after MADV_DONTNEED", i);
	printf("remap ok\n");
	fflush(stdout);
}

/* Reads only: the main thread's fork child changes its own copy, never
 * this process's. */
static void *checker(void *arg)
{
	(void)arg;
	for (;;)
		for (int b = 0; b < SMALL; b++)
			for (int i = 0; i < SMALL_SIZE; i += 97)
				if (small[b][i] != pattern((uint64_t)b, (uint64_t)i))
					bad("small block (checker thread)", (uint64_t)b);
	return NULL;
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_fork = 1;
	else if (sig == SIGUSR2)
		want_remap = 1;
	else
		want_stop = 1;
}

int main(void)
{
	for (int b = 0; b < SMALL; b++) {
		small[b] = malloc(SMALL_SIZE);
		if (!small[b])
			bad("malloc", 0);
		for (int i = 0; i < SMALL_SIZE; i++)
			small[b][i] = pattern((uint64_t)b, (uint64_t)i);
	}
	/* Page-aligned, so that mremap can move it. */
	big = mmap(NULL, BIG_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *out = malloc(IO_SIZE), *in = malloc(IO_SIZE);
	scratch = mmap(NULL, IO_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED || !out || !in || scratch == MAP_FAILED)
		bad("allocation", 0);
	if (pipe(io_pipe))
		bad("pipe", 0);
	for (size_t i = 0; i < BIG_SIZE; i++)
		big[i] = pattern(SMALL, i);
	pthread_t th;
	if (pthread_create(&th, NULL, checker, NULL))
		bad("pthread_create", 0);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	uint64_t expect = check_all();
	printf("ready %llu %p %p\n", (unsigned long long)expect, (void *)small[0], (void *)big);
	fflush(stdout);
	for (int pass = 1; !want_stop; pass++) {
		if (check_all() != expect)
			bad("checksum", (uint64_t)pass);
		pipe_round(out, in, pass);
		if (want_fork) {
			want_fork = 0;
			do_fork(expect);
		}
		if (want_remap) {
			want_remap = 0;
			do_remap(expect);
		}
		printf("pass %d\n", pass);
		fflush(stdout);
	}
	uint64_t last = check_all();
	printf("done %llu\n", (unsigned long long)last);
	return last == expect ? 0 : 1;
}

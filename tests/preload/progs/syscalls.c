/* The kernel's own accesses to remote heap pages during system calls: each
 * call gets a buffer whose pages were just made remote and must complete
 * with the right bytes and count, never EFAULT (thread mode). */
#include "common.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#define NPAGES 16
#define LEN (NPAGES * PAGE)

static struct sweeper sw;
static int file_fd;
/* Not emulated (static): where results are compared from. */
static uint8_t plain[LEN];

static void file_reset(void)
{
	SYS_OK(ftruncate(file_fd, 0), "ftruncate");
	SYS_OK(lseek(file_fd, 0, SEEK_SET), "lseek");
}

static void full(long got, size_t want, const char *what)
{
	if (got < 0)
		fail("%s on a remote buffer: %s", what, strerror(errno));
	if ((size_t)got != want)
		fail("%s on a remote buffer: %ld bytes, want %zu", what, got, want);
}

/* write() and read() between a file and remote pages. */
static void file_read_write(uint8_t *a, uint8_t *b)
{
	fill(a, LEN, 1);
	evict_all(&sw);
	need_remote(&sw, a, LEN, "write() source");
	file_reset();
	full(write(file_fd, a, LEN), LEN, "write()");
	full(pread(file_fd, plain, LEN, 0), LEN, "pread() into a static buffer");
	verify(plain, LEN, 1, "file after write() from remote pages");

	memset(b, 0xee, LEN);
	evict_all(&sw);
	need_remote(&sw, b, LEN, "read() destination");
	SYS_OK(lseek(file_fd, 0, SEEK_SET), "lseek");
	full(read(file_fd, b, LEN), LEN, "read()");
	verify(b, LEN, 1, "read() into remote pages");
}

/* pread/pwrite at an offset; preadv/pwritev with the iovec array itself on
 * a remote page too. */
static void file_positional(uint8_t *a, uint8_t *b)
{
	file_reset();
	fill(a, LEN, 2);
	evict_all(&sw);
	need_remote(&sw, a, LEN, "pwrite() source");
	full(pwrite(file_fd, a, LEN, 3 * PAGE + 5), LEN, "pwrite()");
	memset(b, 0, LEN);
	evict_all(&sw);
	need_remote(&sw, b, LEN, "pread() destination");
	full(pread(file_fd, b, LEN, 3 * PAGE + 5), LEN, "pread()");
	verify(b, LEN, 2, "pread() into remote pages");

	struct iovec *iov = heap_pages(PAGE);
	file_reset();
	fill(a, LEN, 3);
	iov[0] = (struct iovec){ a, LEN / 2 + 100 };
	iov[1] = (struct iovec){ a + LEN / 2 + 100, LEN / 2 - 100 };
	evict_all(&sw);
	need_remote(&sw, a, LEN, "pwritev() source");
	need_remote(&sw, iov, sizeof(*iov), "pwritev() iovec array");
	full(pwritev(file_fd, iov, 2, PAGE), LEN, "pwritev()");
	full(pread(file_fd, plain, LEN, PAGE), LEN, "pread() into a static buffer");
	verify(plain, LEN, 3, "file after pwritev() from remote pages");

	memset(b, 0, LEN);
	iov[0] = (struct iovec){ b, 7 };
	iov[1] = (struct iovec){ b + 7, LEN - 7 };
	evict_all(&sw);
	need_remote(&sw, b, LEN, "preadv() destination");
	need_remote(&sw, iov, sizeof(*iov), "preadv() iovec array");
	full(preadv(file_fd, iov, 2, PAGE), LEN, "preadv()");
	verify(b, LEN, 3, "preadv() into remote pages");
	free(iov);
}

/* Pipes and sockets: both directions through remote pages, the kernel's
 * buffer in between. */
static void pipe_and_socket(uint8_t *a, uint8_t *b)
{
	enum { CHUNK = 8 * PAGE }; /* fits the default pipe buffer */
	int p[2];
	SYS_OK(pipe(p), "pipe");
	fill(a, CHUNK, 4);
	memset(b, 0, CHUNK);
	evict_all(&sw);
	need_remote(&sw, a, CHUNK, "pipe write() source");
	need_remote(&sw, b, CHUNK, "pipe read() destination");
	full(write(p[1], a, CHUNK), CHUNK, "write() to a pipe");
	full(read(p[0], b, CHUNK), CHUNK, "read() from a pipe");
	verify(b, CHUNK, 4, "pipe read() into remote pages");
	close(p[0]);
	close(p[1]);

	int s[2];
	SYS_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, s), "socketpair");
	fill(a, CHUNK, 5);
	memset(b, 0, CHUNK);
	evict_all(&sw);
	need_remote(&sw, a, CHUNK, "send() source");
	need_remote(&sw, b, CHUNK, "recv() destination");
	full(send(s[0], a, CHUNK, 0), CHUNK, "send()");
	full(recv(s[1], b, CHUNK, MSG_WAITALL), CHUNK, "recv()");
	verify(b, CHUNK, 5, "recv() into remote pages");
	close(s[0]);
	close(s[1]);
}

/* /dev/zero: the kernel clears remote pages (clear_user). */
static void dev_zero(uint8_t *b)
{
	int z = (int)SYS_OK(open("/dev/zero", O_RDONLY), "open /dev/zero");
	memset(b, 0x5a, LEN);
	evict_all(&sw);
	need_remote(&sw, b, LEN, "/dev/zero read() destination");
	full(read(z, b, LEN), LEN, "read() from /dev/zero");
	verify_zero(b, LEN, "read() from /dev/zero into remote pages");
	close(z);
}

/* process_vm_readv/writev: the kernel copies between two remote buffers of
 * this very process, through get_user_pages on the "remote process" side. */
static void process_vm(uint8_t *a, uint8_t *b)
{
	fill(a, LEN, 6);
	memset(b, 0, LEN);
	evict_all(&sw);
	need_remote(&sw, a, LEN, "process_vm_readv() source");
	need_remote(&sw, b, LEN, "process_vm_readv() destination");
	struct iovec local = { b, LEN }, remote = { a, LEN };
	full(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), LEN, "process_vm_readv()");
	verify(b, LEN, 6, "process_vm_readv() into remote pages");

	fill(b, LEN, 7);
	memset(a, 0, LEN);
	evict_all(&sw);
	need_remote(&sw, a, LEN, "process_vm_writev() destination");
	need_remote(&sw, b, LEN, "process_vm_writev() source");
	local = (struct iovec){ b, LEN };
	remote = (struct iovec){ a, LEN };
	full(process_vm_writev(getpid(), &local, 1, &remote, 1, 0), LEN, "process_vm_writev()");
	verify(a, LEN, 7, "process_vm_writev() into remote pages");
}

/* A buffer across two pages, one local and one remote, both orders. */
static void spanning(uint8_t *a)
{
	enum { OFF = PAGE - 1000, N = 2000 };
	for (int remote_first = 0; remote_first < 2; remote_first++) {
		const char *what = remote_first ? "remote|local" : "local|remote";
		/* read() into the span. */
		file_reset();
		fill(plain, N, 8);
		full(write(file_fd, plain, N), N, "write() from a static buffer");
		memset(a, 0x77, 2 * PAGE);
		evict_all(&sw);
		need_remote(&sw, a, 2 * PAGE, what);
		a[remote_first ? PAGE : 0] = 0x77; /* makes that page local again */
		need_local(a + (remote_first ? PAGE : 0), PAGE, what);
		SYS_OK(lseek(file_fd, 0, SEEK_SET), "lseek");
		long got = read(file_fd, a + OFF, N);
		if (got != N)
			fail("read() into a %s span: %ld (%s), want %d", what, got,
			     got < 0 ? strerror(errno) : "short", N);
		verify(a + OFF, N, 8, "read() into a span");

		/* write() out of the span. */
		fill(a + OFF, N, 9);
		evict_all(&sw);
		need_remote(&sw, a, 2 * PAGE, what);
		(void)*(volatile uint8_t *)(a + (remote_first ? PAGE : 0));
		need_local(a + (remote_first ? PAGE : 0), PAGE, what);
		file_reset();
		got = write(file_fd, a + OFF, N);
		if (got != N)
			fail("write() from a %s span: %ld (%s), want %d", what, got,
			     got < 0 ? strerror(errno) : "short", N);
		full(pread(file_fd, plain, N, 0), N, "pread() into a static buffer");
		verify(plain, N, 9, "file after write() from a span");
	}
}

/* Calls whose result the kernel stores into a remote heap structure. */
static void small_results(void)
{
	struct stat *st = heap_pages(PAGE);
	char *cwd = heap_pages(PAGE);
	struct timespec *ts = heap_pages(PAGE);
	memset(st, 0xff, sizeof(*st));
	memset(cwd, 0xff, PAGE);
	evict_all(&sw);
	need_remote(&sw, st, sizeof(*st), "fstat() result");
	need_remote(&sw, cwd, PAGE, "getcwd() result");
	need_remote(&sw, ts, sizeof(*ts), "clock_gettime() result");
	SYS_OK(fstat(file_fd, st), "fstat() into a remote page");
	CHECK(S_ISREG(st->st_mode), "fstat() into a remote page: wrong mode %o", st->st_mode);
	CHECK(getcwd(cwd, PAGE), "getcwd() into a remote page: %s", strerror(errno));
	char here[PATH_MAX];
	CHECK(getcwd(here, sizeof(here)) && strcmp(here, cwd) == 0,
	      "getcwd() into a remote page gave '%s'", cwd);
	/* Through the vDSO in user mode, and the system call in kernel mode. */
	SYS_OK(clock_gettime(CLOCK_MONOTONIC, ts), "clock_gettime() into a remote page");
	CHECK(ts->tv_sec || ts->tv_nsec, "clock_gettime(): zero time");
	evict_all(&sw);
	SYS_OK(syscall(SYS_clock_gettime, CLOCK_REALTIME, ts), "clock_gettime syscall");
	CHECK(ts->tv_sec > 1000000000, "clock_gettime syscall into a remote page: %ld",
	      (long)ts->tv_sec);
	free(st);
	free(cwd);
	free(ts);
}

/* stdio: FILE and its buffer on the heap (glibc mallocs both), plus a
 * buffer of ours installed with setvbuf; data in remote pages. */
static void stdio(uint8_t *a, uint8_t *b)
{
	enum { BIG = 256 * PAGE };
	uint8_t *src = heap_pages(BIG), *dst = heap_pages(BIG);
	for (int own_buffer = 0; own_buffer < 2; own_buffer++) {
		FILE *f = tmpfile();
		CHECK(f, "tmpfile: %s", strerror(errno));
		need_emulated(f, "FILE from tmpfile()");
		char *vbuf = NULL;
		if (own_buffer) {
			vbuf = heap_pages(16 * PAGE);
			CHECK(setvbuf(f, vbuf, _IOFBF, 16 * PAGE) == 0, "setvbuf failed");
		}
		fill(src, BIG, 10 + own_buffer);
		/* Chunks of odd sizes, evicting in between so that the FILE,
		 * its buffer and the data are remote when stdio copies and
		 * flushes. */
		for (size_t at = 0; at < BIG;) {
			size_t n = BIG - at < 10007 ? BIG - at : 10007;
			evict_all(&sw);
			CHECK(fwrite(src + at, 1, n, f) == n, "fwrite: %s", strerror(errno));
			at += n;
		}
		evict_all(&sw);
		CHECK(fflush(f) == 0, "fflush: %s", strerror(errno));
		rewind(f);
		memset(dst, 0, BIG);
		for (size_t at = 0; at < BIG;) {
			size_t n = BIG - at < 8191 ? BIG - at : 8191;
			evict_all(&sw);
			CHECK(fread(dst + at, 1, n, f) == n, "fread: %s", ferror(f) ? "error" : "EOF");
			at += n;
		}
		verify(dst, BIG, 10 + own_buffer, own_buffer ? "fread() through a heap setvbuf buffer"
							  : "fread() through stdio's buffer");
		/* fprintf/fgets through the same buffers. */
		rewind(f);
		evict_all(&sw);
		CHECK(fprintf(f, "line %d %s\n", 42, "x") > 0, "fprintf failed");
		rewind(f);
		char *line = (char *)a;
		evict_all(&sw);
		CHECK(fgets(line, 64, f) && strcmp(line, "line 42 x\n") == 0, "fgets gave '%.64s'",
		      line);
		fclose(f);
		free(vbuf);
	}
	(void)b;
	free(src);
	free(dst);
}

int main(void)
{
	prog_name = "syscalls";
	char path[] = "/tmp/dime-syscalls-XXXXXX";
	file_fd = (int)SYS_OK(mkstemp(path), "mkstemp");
	unlink(path);
	uint8_t *a = heap_pages(LEN), *b = heap_pages(LEN);

	file_read_write(a, b);
	file_positional(a, b);
	pipe_and_socket(a, b);
	dev_zero(b);
	process_vm(a, b);
	spanning(a);
	small_results();
	stdio(a, b);
	free(a);
	free(b);
	return 0;
}

/* The run's shared stats page: one struct run_stats in a memfd that every
 * emulated process of the run finds through DIME_STATS_FD and adds its
 * counters into. A memfd rather than a file: nothing to clean up, and it
 * dies with the last process that holds it. */
#define _GNU_SOURCE
#include "cli.h"
#include "../engine/counters.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct run_stats *stats_page_create(int *fd_out)
{
	size_t size = (size_t)sysconf(_SC_PAGESIZE);
	/* Not close-on-exec: the program must inherit it. */
	int fd = memfd_create("dime-stats", 0);
	if (fd < 0)
		fail("cannot create the stats page: %s", strerror(errno));
	if (ftruncate(fd, (off_t)size))
		fail("cannot size the stats page: %s", strerror(errno));
	struct run_stats *st = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (st == MAP_FAILED)
		fail("cannot map the stats page: %s", strerror(errno));
	/* A fresh memfd reads as zeroes: only the magic needs setting. */
	st->magic = DIME_RUN_STATS_MAGIC;
	*fd_out = fd;
	return st;
}

void run_result_read(struct run_result *res, const struct run_stats *page)
{
	counters_read(&page->total, &res->stats);
	res->processes = atomic_load(&page->processes);
}

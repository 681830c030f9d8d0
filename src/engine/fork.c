/* fork() and emulated memory.
 *
 * fork() copies the region and its store copy-on-write, so the child's
 * bytes are right, but without UFFD_FEATURE_EVENT_FORK the kernel drops the
 * child's userfaultfd registration, and the handler threads do not exist in
 * the child. The child handler therefore opens a new userfaultfd,
 * registers every region again, starts its own handlers and rebuilds page
 * states from its page tables (the snapshot may have caught a page in the
 * middle of a move; pages move atomically, so the page tables are the
 * truth).
 *
 * Between the return from fork() and that handler, a missing page in the
 * child would read as zeroes. glibc itself runs code there: it resets the
 * lock of every stdio FILE, which lives in the program's heap. The prepare
 * handler therefore pins those pages local (the policy passes them over)
 * and touches them, until the fork is done.
 * pthread_atfork runs child handlers in registration order and dime
 * registers at start-up, so its child handler runs before the program's.
 */
#include "fork.h"
#include "internal.h"
#include "uffd.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* glibc's list of open FILEs (exported, used by its own fork code). */
extern FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

/* Pins the page holding p local and touches it so that it is. */
static void pin_and_touch(const volatile void *p)
{
	struct region *r = p ? region_lookup_get((uintptr_t)p) : NULL;
	if (!r)
		return;
	if ((uintptr_t)p - r->base < r->size) {
		size_t pg = ((uintptr_t)p - r->base) >> engine.page_shift;
		pthread_mutex_lock(&r->lock);
		if (!region_pinned(r, pg) && r->npinned < (int)(sizeof(r->pinned) / sizeof(r->pinned[0])))
			r->pinned[r->npinned++] = pg;
		pthread_mutex_unlock(&r->lock);
		(void)*(const volatile char *)p;
	}
	region_put(r);
}

static void unpin_all(void)
{
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = atomic_load(&engine.regions[i]);
		if (!r)
			continue;
		pthread_mutex_lock(&r->lock);
		r->npinned = 0;
		pthread_mutex_unlock(&r->lock);
	}
}

static void prepare(void)
{
	pthread_mutex_lock(&engine.lock);
	_IO_list_lock();
	for (FILE *f = _IO_list_all; f; f = f->_chain) {
		pin_and_touch(f);
		pin_and_touch((const char *)f + sizeof(*f) - 1);
		pin_and_touch(f->_lock);
	}
	_IO_list_unlock();
}

static void parent(void)
{
	unpin_all();
	pthread_mutex_unlock(&engine.lock);
}

static void child(void)
{
	pthread_mutex_init(&engine.lock, NULL);
	for (size_t i = 0; i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
		struct region *r = atomic_load(&engine.regions[i]);
		if (r)
			r->npinned = 0; /* the child's own pages are not pinned */
	}
	/* An open pagemap shows the mm of the process that opened it. */
	close(engine.pagemap_fd);
	engine.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (int m = 0; m < 2; m++) {
		struct server *s = &engine.servers[m];
		if (s->uffd < 0)
			continue;
		/* The inherited descriptor is the parent's. */
		close(s->uffd);
		s->uffd = -1;
		s->calibrated = true; /* same machine: keep the parent's costs */
		/* Regions registered before any dime thread of the child
		 * runs: glibc's thread start-up reads the locale, which may
		 * live in the emulated heap, and a page touched unregistered
		 * would read as zeroes (server.c, serve_until_running). */
		int err = server_open(s);
		for (size_t i = 0; !err && i < sizeof(engine.regions) / sizeof(engine.regions[0]); i++) {
			struct region *r = atomic_load(&engine.regions[i]);
			if (!r || r->server != s)
				continue;
			err = region_register(r, s->uffd);
			if (!err)
				err = region_rebuild(r);
		}
		if (!err)
			err = server_run(s);
		if (err) {
			/* Remote pages would read as zeroes: never go on. */
			fprintf(stderr, "dime: cannot emulate memory in fork()ed child %d: %s\n",
				getpid(), dime_strerror(err));
			_exit(127);
		}
	}
}

void fork_handlers_install(void)
{
	pthread_atfork(prepare, parent, child);
}

/* Attaching to a running process and detaching from it. See attach.h.
 *
 * Attach: the target creates a userfaultfd and maps the store images
 * (inject.c); the agent takes a copy of the descriptor (pidfd_getfd),
 * registers the covered ranges and images, and reads the page tables
 * (/proc/PID/pagemap): every page present (or swapped out) is local, the
 * rest untouched. Pages beyond the budget then move to the store, oldest
 * first in the policy's order (address order at attach).
 *
 * The target keeps its own descriptor of the uffd. If the agent dies, the
 * ranges stay registered and faults on remote pages wait (killably) instead
 * of reading zeroes, and `dime detach` can take the descriptor from the
 * target again and put every page back (target_detach() needs nothing but
 * the page tables, the covered ranges and the store's place).
 *
 * Detach: every page whose bytes are in the store moves back, faults and
 * events that come meanwhile are served, then everything is unregistered
 * and the target unmaps the store and closes its descriptor. */
#define _GNU_SOURCE
#include "attach.h"
#include "../control/control.h"
#include "../engine/instance.h"
#include "../engine/policy-call.h"
#include "../engine/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define HAS_BYTES(e) ((e) & (3ull << 62))

/* What the agent needs to hear from the target's uffd. */
#define ATTACH_FEATURES                                                                  \
	(UFFD_FEATURE_MOVE | UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EVENT_FORK |          \
	 UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP)

int target_read(pid_t pid, uintptr_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? -errno : -EIO;
}

static const void *mm_read(const struct region_mm *mm, uintptr_t addr, size_t len)
{
	struct attach_target *t = (struct attach_target *)((char *)mm - offsetof(struct attach_target, mm));
	return target_read(t->pid, addr, t->buf, len) ? NULL : t->buf;
}

static int mm_move(const struct region_mm *mm, struct uffdio_move *m)
{
	struct attach_target *t = (struct attach_target *)((char *)mm - offsetof(struct attach_target, mm));
	return helper_move(t, m);
}

int target_move_back(struct attach_target *t, uintptr_t page, uintptr_t slot)
{
	size_t ps = engine.page_size;
	struct uffdio_move m = { .dst = page, .src = slot, .len = ps };
	int err = helper_move(t, &m);
	if (err == 0 || err == -EEXIST || err == -ENOENT)
		return err;
	/* No helper (recovering from a dead agent), or the page is shared
	 * with a fork()ed relative: copy it; the stale store copy goes with
	 * the store. */
	if (target_read(t->pid, slot, t->buf, ps))
		return -EIO;
	return uffd_copy(t->uffd, page, t->buf, ps);
}

static void mm_discard(const struct region_mm *mm, uintptr_t addr, size_t len)
{
	struct attach_target *t = (struct attach_target *)((char *)mm - offsetof(struct attach_target, mm));
	helper_discard(t, addr, len);
}

void target_zero_fill(struct attach_target *t, int uffd, uintptr_t page, bool write)
{
	(void)t;
	int err = write ? uffd_copy(uffd, page, engine.zero_page, engine.page_size)
			: uffd_zeropage(uffd, page, engine.page_size);
	if (err && err != -EEXIST)
		uffd_wake(uffd, page, engine.page_size);
}

void target_fault(struct attach_target *t, const struct uffd_msg *m, uint64_t t_seen)
{
	uintptr_t addr = m->arg.pagefault.address & ~(uintptr_t)(engine.page_size - 1);
	bool write = m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE;
	struct region *r = t->region;
	if (r && vmas_find(t, addr)) {
		fault_resolve(r, (addr - r->base) >> engine.page_shift, write, t_seen, 0, 0);
		return;
	}
	/* Registered but not emulated (a store image, or memory a mapping
	 * grew by in place): what the kernel would map. */
	target_zero_fill(t, t->uffd, addr, write);
}

/* Reads pagemap entries of n pages from addr. */
static int pagemap(int fd, uintptr_t addr, size_t n, uint64_t *out)
{
	ssize_t got = pread(fd, out, n * 8, (off_t)(addr >> engine.page_shift) * 8);
	return got == (ssize_t)(n * 8) ? 0 : -EIO;
}

static int open_pagemap(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* The store images: covered ranges merged where they touch. */
static int images_build(struct attach_target *t)
{
	t->images = calloc(t->nranges, sizeof(*t->images));
	if (!t->images)
		return -ENOMEM;
	t->nimages = 0;
	for (size_t i = 0; i < t->nranges; i++) {
		uintptr_t lo = t->ranges[i].start + t->delta, hi = t->ranges[i].end + t->delta;
		if (t->nimages && t->images[t->nimages - 1].end == lo) {
			t->images[t->nimages - 1].end = hi;
			continue;
		}
		t->images[t->nimages++] = (struct attach_range){ .start = lo, .end = hi, .name = "store" };
	}
	return 0;
}

static void unmap_images(struct inject *in, struct attach_target *t, size_t n)
{
	long ret;
	for (size_t i = 0; i < n; i++)
		if (inject_syscall(in, __NR_munmap, &ret, t->images[i].start,
				   t->images[i].end - t->images[i].start, 0, 0, 0, 0) == 0 && ret)
			agent_log(t, "dime: munmap of the store in process %d failed: %s\n",
				  (int)t->pid, strerror((int)-ret));
}

/* In the target: a userfaultfd, the store images; the agent's copy of the
 * descriptor in t->uffd. */
static int inject_setup(struct attach_target *t)
{
	struct inject *in;
	int err = inject_begin(t->pid, &in);
	if (err)
		return err;
	long fd = -1, ret;
	err = -EIO;
	if (inject_syscall(in, __NR_userfaultfd, &fd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0))
		goto out;
	if (fd < 0) {
		err = (int)fd;
		fprintf(stderr, "dime: process %d cannot create a userfaultfd: %s (%s)\n", (int)t->pid,
			strerror((int)-fd),
			"as root, or with sysctl vm.unprivileged_userfaultfd=1");
		goto out;
	}
	size_t mapped = 0;
	for (; mapped < t->nimages; mapped++) {
		struct attach_range *im = &t->images[mapped];
		if (inject_syscall(in, __NR_mmap, &ret, im->start, im->end - im->start,
				   PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
				   (unsigned long)-1, 0) ||
		    (uintptr_t)ret != im->start) {
			fprintf(stderr, "dime: cannot map the store in process %d at %#lx: %s\n",
				(int)t->pid, (unsigned long)im->start,
				ret < 0 && ret > -4096 ? strerror((int)-ret) : "placed elsewhere");
			if (ret > 0 && (uintptr_t)ret != im->start)
				inject_syscall(in, __NR_munmap, &ret, (unsigned long)ret,
					       im->end - im->start, 0, 0, 0, 0);
			break;
		}
	}
	if (mapped < t->nimages) {
		unmap_images(in, t, mapped);
		inject_syscall(in, __NR_close, &ret, (unsigned long)fd, 0, 0, 0, 0, 0);
		goto out;
	}
	t->uffd = (int)syscall(SYS_pidfd_getfd, t->pidfd, (int)fd, 0);
	if (t->uffd < 0) {
		err = -errno;
		fprintf(stderr, "dime: cannot take the userfaultfd of process %d: %s\n", (int)t->pid,
			strerror(errno));
		unmap_images(in, t, mapped);
		inject_syscall(in, __NR_close, &ret, (unsigned long)fd, 0, 0, 0, 0, 0);
		goto out;
	}
	t->target_fd = (int)fd;
	err = helper_start(t, in);
	if (err) {
		unmap_images(in, t, mapped);
		inject_syscall(in, __NR_close, &ret, (unsigned long)fd, 0, 0, 0, 0, 0);
		close(t->uffd);
		t->uffd = t->target_fd = -1;
	}
out:
	if (inject_end(in) && !err)
		err = -EIO;
	return err;
}

/* Page states from the page tables: every page with bytes is local and
 * takes its place in the instance's order (address order); then what
 * exceeds the instance's budget leaves, oldest first. A page that cannot
 * move (shared copy-on-write with a relative) stays local (fault.c). */
static int adopt_pages(struct attach_target *t, uint64_t *evicted, uint64_t *stuck)
{
	enum { CHUNK = 4096 };
	static uint64_t e[CHUNK];
	struct region *r = t->region;
	size_t ps = engine.page_size;
	int fd = open_pagemap(t->pid);
	if (fd < 0)
		return -errno;
	int err = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < t->nranges && !err; i++) {
		for (uintptr_t a = t->ranges[i].start; a < t->ranges[i].end; a += CHUNK * ps) {
			size_t n = (t->ranges[i].end - a) / ps;
			n = n < CHUNK ? n : CHUNK;
			if (pagemap(fd, a, n, e)) {
				err = -EIO;
				break;
			}
			for (size_t k = 0; k < n; k++) {
				if (!HAS_BYTES(e[k]))
					continue;
				size_t pg = (a - r->base) / ps + k;
				r->state[pg] = PAGE_LOCAL;
				pol_local(r, pg, DIME_PAGE_RETURNED);
				instance_ticket(r, pg);
				r->local_count++;
				atomic_store(&r->touched_end, pg + 1);
			}
		}
	}
	close(fd);
	uint64_t local = r->local_count;
	uint64_t over = instance_admit(r);
	pthread_mutex_unlock(&r->lock);
	/* Counted as they end up (a page that cannot move is added back by
	 * fault.c): the peak is never the count before the evictions. */
	RCTR_LOCAL_ADD(r, local - over, local - over);
	if (over) {
		RCTR_ADD(r, evictions, over);
		fault_drain(r);
	}
	*evicted = local - r->local_count;
	*stuck = over > *evicted ? over - *evicted : 0;
	return err;
}

static void report_attach(struct attach_target *t, FILE *f, uint64_t evicted, uint64_t stuck)
{
	struct region *r = t->region;
	size_t ps = engine.page_size;
	fprintf(f, "dime: process %d is under emulation\n", (int)t->pid);
	uint64_t pages = 0;
	for (size_t i = 0; i < t->nranges; i++) {
		struct attach_range *c = &t->ranges[i];
		size_t first = (c->start - r->base) / ps, n = (c->end - c->start) / ps;
		uint64_t local = 0, remote = 0;
		for (size_t k = 0; k < n; k++) {
			local += r->state[first + k] == PAGE_LOCAL;
			remote += r->state[first + k] == PAGE_REMOTE;
		}
		pages += n;
		fprintf(f, "  covered     %012lx-%012lx %-12s %8zu pages: %llu local, %llu remote\n",
			(unsigned long)c->start, (unsigned long)c->end, c->name, n,
			(unsigned long long)local, (unsigned long long)remote);
	}
	for (size_t i = 0; i < t->nskips; i++)
		fprintf(f, "  not covered %012lx-%012lx %s\n", (unsigned long)t->skips[i].start,
			(unsigned long)t->skips[i].end, t->skips[i].why);
	int inst = atomic_load(&t->emul.self->instance);
	fprintf(f,
		"  %zu ranges, %llu pages: %llu local, %llu made remote now; instance %d, budget "
		"%llu local pages shared with its other processes\n",
		t->nranges, (unsigned long long)pages, (unsigned long long)r->local_count,
		(unsigned long long)evicted, inst, (unsigned long long)r->params.local_npages);
	if (stuck)
		fprintf(f, "  %llu pages over the budget could not move (shared copy-on-write "
			   "with a related process); they leave when written\n",
			(unsigned long long)stuck);
	fprintf(f, "  fetch %llu ns (latency %llu ns, bandwidth %llu bit/s, policy %s)\n",
		(unsigned long long)dime_fetch_ns(&r->params, ps),
		(unsigned long long)r->params.latency_ns,
		(unsigned long long)r->params.bandwidth_bps, r->params.policy);
	uint64_t floor = clock_ticks_to_ns(t->server.costs.floor);
	if (dime_fetch_ns(&r->params, ps) < floor)
		fprintf(f, "  warning: below this machine's floor of %llu ns: remote faults will take "
			   "about that\n",
			(unsigned long long)floor);
	fprintf(f, "  not emulated: memory the process maps from now on, fork children (they "
		   "get all their pages back at fork)\n");
}

static int register_all(struct attach_target *t)
{
	for (size_t i = 0; i < t->nimages; i++) {
		int err = uffd_register(t->uffd, t->images[i].start,
					t->images[i].end - t->images[i].start);
		if (err)
			return err;
	}
	for (size_t i = 0; i < t->nranges;) {
		struct attach_range *c = &t->ranges[i];
		int err = uffd_register(t->uffd, c->start, c->end - c->start);
		if (!err) {
			i++;
			continue;
		}
		/* The mapping changed since it was read (the process runs). */
		agent_log(t, "dime: left out %#lx-%#lx: it changed during insert (%s)\n",
			  (unsigned long)c->start, (unsigned long)c->end, strerror(-err));
		vmas_uncover(t, c->start, c->end);
	}
	return 0;
}

int target_attach(struct attach_target *t, FILE *report)
{
	t->target_fd = -1;
	t->uffd = -1;
	const struct uffd_caps *caps = uffd_caps();
	if (caps->open_errno && caps->open_errno != EPERM) {
		fprintf(stderr, "dime: %s\n", dime_strerror(-caps->open_errno));
		return -caps->open_errno;
	}
	if (!caps->open_errno && !caps->has_move) {
		fprintf(stderr, "dime: dime insert needs UFFDIO_MOVE (Linux 6.8 or later): this "
				"kernel has no way to move another process's pages\n");
		return -ENOTSUP;
	}
	engine.use_move = true;
	int err = vmas_scan(t);
	if (err) {
		fprintf(stderr, "dime: cannot read the mappings of process %d: %s%s\n", (int)t->pid,
			strerror(-err),
			err == -EACCES || err == -EPERM
				? " (dime insert needs ptrace access: the same user with "
				  "kernel.yama.ptrace_scope 0, or root)"
				: "");
		return err;
	}
	if (!t->nranges) {
		fprintf(stderr, "dime: process %d has no anonymous private memory to cover\n",
			(int)t->pid);
		return -ENOENT;
	}
	if ((err = vmas_place_store(t)) || (err = images_build(t))) {
		fprintf(stderr, "dime: no room for the store in the address space of process %d\n",
			(int)t->pid);
		return err;
	}
	t->buf = book_alloc(engine.page_size);
	if (!t->buf)
		return -ENOMEM;
	if ((err = inject_setup(t)))
		return err;
	struct uffdio_api api = { .api = UFFD_API, .features = ATTACH_FEATURES };
	if (ioctl(t->uffd, UFFDIO_API, &api) < 0) {
		err = -errno;
		fprintf(stderr, "dime: userfaultfd of process %d lacks features dime needs: %s\n",
			(int)t->pid, strerror(errno));
		goto undo;
	}
	if ((err = register_all(t))) {
		fprintf(stderr, "dime: cannot register the store in process %d: %s\n", (int)t->pid,
			strerror(-err));
		goto undo;
	}
	t->server = (struct server){ .mode = DIME_MODE_THREAD, .uffd = t->uffd,
				     .costs = engine.servers[DIME_MODE_THREAD].costs,
				     .calibrated = true };
	t->mm = (struct region_mm){ .read = mm_read, .discard = mm_discard, .move = mm_move };
	uintptr_t base = t->ranges[0].start, end = t->ranges[t->nranges - 1].end;
	struct dime_params p = t->emul.params;
	p.size = end - base;
	err = region_adopt(&p, &t->server, base, base + t->delta, end - base, &t->mm, &t->region);
	if (err) {
		fprintf(stderr, "dime: cannot set up the region: %s\n", strerror(-err));
		goto undo;
	}
	t->region->ctr = &t->emul.own;
	if ((err = member_join(t))) {
		fprintf(stderr, "dime: cannot join the instance: %s\n", strerror(-err));
		goto undo;
	}
	child_known_init(t);
	uint64_t evicted = 0, stuck = 0;
	if ((err = adopt_pages(t, &evicted, &stuck))) {
		fprintf(stderr, "dime: cannot read the page tables of process %d\n", (int)t->pid);
		goto undo;
	}
	report_attach(t, report, evicted, stuck);
	return 0;
undo:
	member_leave(t);
	target_detach(t, NULL);
	return err;
}

/* Moves every page of the covered ranges whose bytes are in the store back
 * into place. Returns how many moved. */
static uint64_t restore_pass(struct attach_target *t, int fd)
{
	enum { CHUNK = 1024 };
	static uint64_t b[CHUNK], s[CHUNK];
	size_t ps = engine.page_size;
	uint64_t moved = 0;
	for (size_t i = 0; i < t->nranges; i++) {
		for (uintptr_t a = t->ranges[i].start; a < t->ranges[i].end; a += CHUNK * ps) {
			size_t n = (t->ranges[i].end - a) / ps;
			n = n < CHUNK ? n : CHUNK;
			if (pagemap(fd, a, n, b) || pagemap(fd, a + t->delta, n, s))
				continue;
			for (size_t k = 0; k < n; k++) {
				if (HAS_BYTES(b[k]) || !HAS_BYTES(s[k]))
					continue;
				uintptr_t page = a + k * ps, slot = page + t->delta;
				int err = target_move_back(t, page, slot);
				if (!err)
					moved++;
				if (t->region && !err)
					t->region->state[(page - t->region->base) / ps] = PAGE_LOCAL;
			}
		}
	}
	return moved;
}

/* Serves what the target's uffd holds while detaching: faults get their
 * page back (or zeroes), events are handled as usual. Returns how many
 * messages there were. */
static int drain(struct attach_target *t, int fd)
{
	int seen = 0;
	for (;; seen++) {
		agent_pump(t);
		if (t->pending_head == t->npending) {
			t->pending_head = t->npending = 0;
			return seen;
		}
		struct uffd_msg m = t->pending[t->pending_head++];
		if (m.event != UFFD_EVENT_PAGEFAULT) {
			events_handle(t, &m);
			continue;
		}
		uintptr_t page = m.arg.pagefault.address & ~(uintptr_t)(engine.page_size - 1);
		uint64_t s = 0;
		if (vmas_find(t, page) && !pagemap(fd, page + t->delta, 1, &s) && HAS_BYTES(s) &&
		    !target_move_back(t, page, page + t->delta))
			continue;
		target_zero_fill(t, t->uffd, page, m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	}
}

int target_detach(struct attach_target *t, FILE *report)
{
	uint64_t moved = 0;
	int fd = open_pagemap(t->pid);
	if (t->uffd >= 0 && fd >= 0) {
		/* Until a pass finds nothing to move and nothing came in. */
		for (int round = 0; round < 100; round++) {
			uint64_t m = restore_pass(t, fd);
			moved += m;
			if (!drain(t, fd) && !m)
				break;
		}
		for (size_t i = 0; i < t->nranges; i++)
			uffd_unregister(t->uffd, t->ranges[i].start, t->ranges[i].end - t->ranges[i].start);
		for (size_t i = 0; i < t->nimages; i++)
			uffd_unregister(t->uffd, t->images[i].start, t->images[i].end - t->images[i].start);
		/* Events raised before the unregistering (a fork, say). */
		drain(t, fd);
	}
	if (fd >= 0)
		close(fd);
	helper_stop(t);
	int err = 0;
	struct inject *in;
	if (t->target_fd >= 0 || t->nimages) {
		err = inject_begin(t->pid, &in);
		if (!err) {
			long ret;
			helper_remove(t, in);
			unmap_images(in, t, t->nimages);
			if (t->target_fd >= 0)
				inject_syscall(in, __NR_close, &ret, (unsigned long)t->target_fd, 0, 0, 0, 0, 0);
			err = inject_end(in);
		}
	}
	if (t->uffd >= 0)
		close(t->uffd);
	t->uffd = -1;
	if (report) {
		fprintf(report, "dime: process %d detached: %llu pages moved back, all pages in place\n",
			(int)t->pid, (unsigned long long)moved);
		target_report_stats(t, report);
	}
	if (t->region)
		region_forget(t->region);
	t->region = NULL;
	return err;
}

void target_report_stats(const struct attach_target *t, FILE *f)
{
	struct dime_stats s;
	counters_read(&t->emul.own, &s);
	fprintf(f, "remote_faults %llu\n", (unsigned long long)s.remote_faults);
	fprintf(f, "first_touch_faults %llu\n", (unsigned long long)s.first_touch_faults);
	fprintf(f, "evictions %llu\n", (unsigned long long)s.evictions);
	fprintf(f, "local_pages %llu\n", (unsigned long long)s.local_pages);
	fprintf(f, "local_pages_peak %llu\n", (unsigned long long)s.local_pages_peak);
	fprintf(f, "injected_delay_ns %llu\n", (unsigned long long)s.injected_delay_ns);
	fprintf(f, "handling_ns %llu\n", (unsigned long long)s.handling_ns);
}

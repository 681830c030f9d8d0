/* fork() of the target. The child gets a copy of every mapping, the store
 * images included, and (UFFD_FEATURE_EVENT_FORK) its own uffd with the
 * same registrations, handed to the agent in the FORK message. Its remote
 * pages' bytes are in its copy of the store; without the agent it would
 * read zeroes there. The child leaves emulation at once: each page whose
 * bytes are in the store is copied into place (a plain copy: pages shared
 * copy-on-write with the parent cannot be moved), then the child's ranges
 * are unregistered and its uffd closed. The child keeps its copy of the
 * store mapping (its pages are shared with the parent's until either side
 * changes them); it holds no bytes the child uses.
 *
 * The FORK message does not say which process the child is: the kernel
 * builds the child's memory before giving it a pid. The parent's fork()
 * goes on once the message is read, and other forks of the target wait
 * until theirs is read, so exactly one new child is on its way: the one
 * that appears among the parent's children, does not share the parent's
 * memory (vfork, posix_spawn) and has the store mapped. */
#define _GNU_SOURCE
#include "attach.h"
#include "../engine/uffd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HAS_BYTES(e) ((e) & (3ull << 62))

static bool known(const struct attach_target *t, pid_t pid)
{
	for (size_t i = 0; i < t->nknown; i++)
		if (t->known[i] == pid)
			return true;
	return false;
}

static void remember(struct attach_target *t, pid_t pid)
{
	if (known(t, pid))
		return;
	if (t->nknown == t->known_cap) {
		size_t cap = t->known_cap ? 2 * t->known_cap : 64;
		pid_t *k = realloc(t->known, cap * sizeof(*k));
		if (!k)
			return;
		t->known = k;
		t->known_cap = cap;
	}
	t->known[t->nknown++] = pid;
}

/* Calls fn for every child of every thread of pid. Stops when fn returns
 * a pid > 0 and returns it. */
static pid_t each_child(struct attach_target *t, pid_t pid,
			pid_t (*fn)(struct attach_target *t, pid_t parent, pid_t child))
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	pid_t found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char cpath[320];
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, e->d_name);
		FILE *f = fopen(cpath, "re");
		if (!f)
			continue;
		int c;
		while (!found && fscanf(f, "%d", &c) == 1) {
			pid_t r = fn(t, pid, c);
			if (r > 0)
				found = r;
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

static pid_t note(struct attach_target *t, pid_t parent, pid_t child)
{
	(void)parent;
	remember(t, child);
	return 0;
}

void child_known_init(struct attach_target *t)
{
	each_child(t, t->pid, note);
}

/* Whether process pid has the store's first image mapped. */
static bool has_store(const struct attach_target *t, pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool hit = false;
	unsigned long lo, hi;
	uintptr_t want = t->images[0].start;
	while (!hit && fgets(line, sizeof(line), f))
		hit = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= want && want < hi;
	fclose(f);
	return hit;
}

static pid_t candidate(struct attach_target *t, pid_t parent, pid_t child)
{
	if (known(t, child))
		return 0;
	/* Shares the parent's memory (vfork, posix_spawn): not a fork. */
	if (syscall(SYS_kcmp, parent, child, KCMP_VM, 0, 0) == 0) {
		remember(t, child);
		return 0;
	}
	if (!has_store(t, child))
		return 0; /* exec'd already, or not ours: looked at again */
	remember(t, child);
	return child;
}

/* The new child of parent, waiting up to 2 s for it to get its pid. */
static pid_t find_child(struct attach_target *t, pid_t parent)
{
	for (int i = 0; i < 2000; i++) {
		pid_t c = each_child(t, parent, candidate);
		if (c > 0)
			return c;
		if (c < 0)
			return -1; /* the parent is gone */
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Copies the pages of [lo, hi) in the child whose bytes are in its store
 * copy (and not in place) into place. */
static uint64_t fill(struct attach_target *t, pid_t child, int pm, int cuffd, uintptr_t lo,
		     uintptr_t hi)
{
	enum { CHUNK = 512 };
	uint64_t b[CHUNK], s[CHUNK], copied = 0;
	size_t ps = engine.page_size;
	for (uintptr_t a = lo; a < hi; a += CHUNK * ps) {
		size_t n = (hi - a) / ps;
		n = n < CHUNK ? n : CHUNK;
		off_t ob = (off_t)(a / ps) * 8, os = (off_t)((a + t->delta) / ps) * 8;
		if (pread(pm, b, n * 8, ob) != (ssize_t)(n * 8) ||
		    pread(pm, s, n * 8, os) != (ssize_t)(n * 8))
			return copied;
		for (size_t k = 0; k < n; k++) {
			if (HAS_BYTES(b[k]) || !HAS_BYTES(s[k]))
				continue;
			uintptr_t page = a + k * ps;
			int err = target_read(child, page + t->delta, t->buf, ps);
			if (!err)
				err = uffd_copy(cuffd, page, t->buf, ps);
			if (err == -ESRCH)
				return copied; /* the child is gone */
			if (!err)
				copied++;
		}
	}
	return copied;
}

/* Reads what the child's uffd holds: faults wait for fill() or the
 * unregistering (either wakes them), a REMAP needs its pages copied to
 * their new place, a FORK is the grandchild's. */
static void child_drain(struct attach_target *t, pid_t child, int pm, int cuffd)
{
	struct uffd_msg m[16];
	for (;;) {
		ssize_t n = read(cuffd, m, sizeof(m));
		if (n <= 0)
			return;
		for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++) {
			if (m[i].event == UFFD_EVENT_FORK) {
				child_settle(t, child, (int)m[i].arg.fork.ufd);
			} else if (m[i].event == UFFD_EVENT_REMAP) {
				/* The bytes stayed at the old place's image. */
				intptr_t shift = (intptr_t)m[i].arg.remap.to - (intptr_t)m[i].arg.remap.from;
				struct attach_target moved = *t;
				moved.delta = t->delta - shift;
				fill(&moved, child, pm, cuffd, m[i].arg.remap.to,
				     m[i].arg.remap.to + m[i].arg.remap.len);
			}
		}
	}
}

void child_settle(struct attach_target *t, pid_t parent, int cuffd)
{
	/* Its messages are read without blocking. */
	fcntl(cuffd, F_SETFL, fcntl(cuffd, F_GETFL) | O_NONBLOCK);
	pid_t child = find_child(t, parent);
	if (child <= 0) {
		/* The fork failed or the parent died: no child to serve. */
		agent_log(t, "dime: fork of process %d: no child found\n", (int)parent);
		close(cuffd);
		return;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)child);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	uint64_t copied = 0;
	if (pm >= 0) {
		for (size_t i = 0; i < t->nranges; i++)
			copied += fill(t, child, pm, cuffd, t->ranges[i].start, t->ranges[i].end);
		child_drain(t, child, pm, cuffd);
	}
	for (size_t i = 0; i < t->nranges; i++)
		uffd_unregister(cuffd, t->ranges[i].start, t->ranges[i].end - t->ranges[i].start);
	for (size_t i = 0; i < t->nimages; i++)
		uffd_unregister(cuffd, t->images[i].start, t->images[i].end - t->images[i].start);
	if (pm >= 0) {
		child_drain(t, child, pm, cuffd);
		close(pm);
	}
	close(cuffd);
	agent_log(t, "dime: fork child %d of %d: %llu pages copied back, no longer emulated\n",
		  (int)child, (int)parent, (unsigned long long)copied);
}

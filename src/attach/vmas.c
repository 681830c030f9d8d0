/* Which of the target's mappings dime covers, and where their store goes.
 *
 * Covered: private anonymous read-write mappings, that is the brk heap,
 * anonymous mmap()s and thread stacks. Left out, with the reason in the
 * report: the main stack (it grows down; userfaultfd cannot follow its
 * growth), file and shared mappings, mlock()ed, hugetlb and special
 * mappings, mappings the target registered with its own userfaultfd, and
 * MADV_WIPEONFORK / MADV_DONTFORK ones (a fork child must not get their
 * bytes back from the store). */
#include "attach.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Room for one more covered range. */
static int ranges_reserve(struct attach_target *t)
{
	if (t->nranges < t->cap)
		return 0;
	size_t cap = t->cap ? 2 * t->cap : 64;
	struct attach_range *r = realloc(t->ranges, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	t->ranges = r;
	t->cap = cap;
	return 0;
}

static int add_range(struct attach_target *t, uintptr_t lo, uintptr_t hi, const char *name)
{
	if (t->nranges && t->ranges[t->nranges - 1].end == lo &&
	    !strcmp(t->ranges[t->nranges - 1].name, name)) {
		t->ranges[t->nranges - 1].end = hi;
		return 0;
	}
	if (ranges_reserve(t))
		return -ENOMEM;
	struct attach_range *r = &t->ranges[t->nranges++];
	r->start = lo;
	r->end = hi;
	snprintf(r->name, sizeof(r->name), "%s", name);
	return 0;
}

static int add_skip(struct attach_target *t, uintptr_t lo, uintptr_t hi, const char *why)
{
	if (t->nskips == t->skip_cap) {
		size_t cap = t->skip_cap ? 2 * t->skip_cap : 32;
		struct attach_skip *s = realloc(t->skips, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		t->skips = s;
		t->skip_cap = cap;
	}
	t->skips[t->nskips++] = (struct attach_skip){ lo, hi, why };
	return 0;
}

static bool has_flag(const char *flags, const char *f)
{
	for (const char *p = flags; (p = strstr(p, f)); p += 2)
		if ((p == flags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return true;
	return false;
}

/* Why the mapping cannot be covered, or NULL. Only writable private
 * mappings are considered at all (the rest is code and read-only data). */
static const char *why_not(const char *perms, unsigned long ino, const char *path,
			   const char *flags)
{
	if (!strcmp(path, "[stack]") || has_flag(flags, "gd"))
		return "main stack (grows down)";
	if (perms[3] != 'p' || has_flag(flags, "sh"))
		return "shared mapping";
	if (ino || (path[0] && path[0] != '[') || !strncmp(path, "[anon_shmem", 11))
		return "file mapping";
	if (path[0] == '[' && strcmp(path, "[heap]") && strncmp(path, "[anon:", 6))
		return "special mapping";
	if (has_flag(flags, "lo"))
		return "mlock()ed";
	if (has_flag(flags, "ht"))
		return "hugetlb";
	if (has_flag(flags, "io") || has_flag(flags, "pf"))
		return "device mapping";
	if (has_flag(flags, "um") || has_flag(flags, "uw") || has_flag(flags, "ui"))
		return "registered with the program's own userfaultfd";
	if (has_flag(flags, "wf") || has_flag(flags, "dc"))
		return "MADV_WIPEONFORK or MADV_DONTFORK";
	return NULL;
}

int vmas_scan(struct attach_target *t)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)t->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[4096], perms[8] = "", name[4096] = "";
	unsigned long lo = 0, hi = 0, ino = 0;
	bool have = false;
	int err = 0;
	while (!err && fgets(line, sizeof(line), f)) {
		unsigned long a, b, i;
		char p[8];
		int at = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %n", &a, &b, p, &i, &at) == 4 && at) {
			lo = a, hi = b, ino = i;
			snprintf(perms, sizeof(perms), "%s", p);
			snprintf(name, sizeof(name), "%s", line + at);
			name[strcspn(name, "\n")] = 0;
			have = true;
			continue;
		}
		if (!have || strncmp(line, "VmFlags:", 8))
			continue;
		have = false;
		if (perms[0] != 'r' || perms[1] != 'w')
			continue;
		const char *why = why_not(perms, ino, name, line + 8);
		if (why)
			err = add_skip(t, lo, hi, why);
		else
			err = add_range(t, lo, hi, name[0] ? name : "anonymous");
	}
	fclose(f);
	return err;
}

/* Whether [lo, hi) meets any mapping of the target. */
static bool overlaps_any(pid_t pid, uintptr_t lo, uintptr_t hi)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true;
	bool hit = false;
	unsigned long a, b;
	while (!hit && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo)
			hit = true;
	fclose(f);
	return hit;
}

int vmas_place_store(struct attach_target *t)
{
	/* Below the covered ranges first: on x86_64 and aarch64 the heap sits
	 * low and mappings high, with terabytes free below each. */
	static const int shifts[] = { 44, 43, 45, 42, 41, 40, 39, 38, 36 };
	const uintptr_t lowest = 1ul << 32;
	if (!t->nranges)
		return -ENOENT;
	uintptr_t top = t->ranges[t->nranges - 1].end;
	for (size_t s = 0; s < sizeof(shifts) / sizeof(shifts[0]); s++) {
		for (int sign = -1; sign <= 1; sign += 2) {
			intptr_t d = sign * ((intptr_t)1 << shifts[s]);
			if (sign < 0 && t->ranges[0].start < lowest + ((uintptr_t)1 << shifts[s]))
				continue;
			/* Positive distances only inside the user address
			 * space this process has (the target's is the same
			 * size: same kernel, same architecture). */
			if (sign > 0 && top + ((uintptr_t)1 << shifts[s]) > (uintptr_t)1 << 47)
				continue;
			bool ok = true;
			for (size_t i = 0; ok && i < t->nranges; i++)
				ok = !overlaps_any(t->pid, t->ranges[i].start + d, t->ranges[i].end + d) &&
				     !vmas_find(t, t->ranges[i].start + d) &&
				     !vmas_find(t, t->ranges[i].end + d - 1);
			if (ok) {
				t->delta = d;
				return 0;
			}
		}
	}
	return -ENOSPC;
}

const struct attach_range *vmas_find(const struct attach_target *t, uintptr_t addr)
{
	size_t lo = 0, hi = t->nranges;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < t->ranges[mid].start)
			hi = mid;
		else if (addr >= t->ranges[mid].end)
			lo = mid + 1;
		else
			return &t->ranges[mid];
	}
	return NULL;
}

bool vmas_in_store(const struct attach_target *t, uintptr_t addr)
{
	for (size_t i = 0; i < t->nimages; i++)
		if (addr >= t->images[i].start && addr < t->images[i].end)
			return true;
	return false;
}

void vmas_uncover(struct attach_target *t, uintptr_t start, uintptr_t end)
{
	for (size_t i = 0; i < t->nranges; i++) {
		struct attach_range *r = &t->ranges[i];
		if (r->end <= start || r->start >= end)
			continue;
		if (r->start < start && r->end > end) {
			/* A hole in the middle: split in two. Without room
			 * for the second half the whole range stays covered:
			 * the hole is unmapped, so nothing faults there. */
			struct attach_range tail = *r;
			tail.start = end;
			if (ranges_reserve(t))
				return;
			r = &t->ranges[i];
			r->end = start;
			memmove(&t->ranges[i + 2], &t->ranges[i + 1],
				(t->nranges - i - 1) * sizeof(*r));
			t->ranges[i + 1] = tail;
			t->nranges++;
			return;
		}
		if (r->start < start) {
			r->end = start;
		} else if (r->end > end) {
			r->start = end;
		} else {
			memmove(r, r + 1, (t->nranges - i - 1) * sizeof(*r));
			t->nranges--;
			i--;
		}
	}
}

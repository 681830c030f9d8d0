/* The instance table file: creation, mapping, the robust lock, instances.
 * See table.h for the layout and the locking rules. */
#define _GNU_SOURCE
#include "control.h"
#include "../engine/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TABLE_FILE "table"

/* A fresh table: zeroes (from ftruncate) plus the lock and the header. The
 * magic goes last, so a table without it is one whose creator died. */
static int table_init(struct ctl_table *t)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	int err = pthread_mutex_init(&t->lock, &a);
	pthread_mutexattr_destroy(&a);
	if (err)
		return -err;
	t->version = CTL_VERSION;
	t->size = sizeof(*t);
	atomic_thread_fence(memory_order_release);
	t->magic = CTL_MAGIC;
	return 0;
}

/* One attempt at opening the table: the table, or NULL with msg set, or
 * NULL with *again set when the file was replaced under us (retry). */
static struct ctl_table *open_once(int dfd, const char *dir, char msg[CTL_MSG], bool *again)
{
	struct ctl_table *t = NULL;
	*again = false;
	int fd = openat(dfd, TABLE_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(msg, CTL_MSG, "cannot open the instance table '%s/%s': %s", dir,
			 TABLE_FILE, strerror(errno));
		return NULL;
	}
	/* Creation, first initialisation and replacement are serialised by
	 * flock; after that the robust mutex inside takes over. */
	flock(fd, LOCK_EX);
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(msg, CTL_MSG, "instance table '%s/%s' is not this user's regular file",
			 dir, TABLE_FILE);
		goto out;
	}
	if (st.st_nlink == 0) {
		*again = true; /* replaced while we waited for the lock */
		goto out;
	}
	bool fresh = st.st_size == 0;
	if (fresh && ftruncate(fd, sizeof(*t))) {
		snprintf(msg, CTL_MSG, "cannot size the instance table '%s/%s': %s", dir,
			 TABLE_FILE, strerror(errno));
		goto out;
	}
	void *p = MAP_FAILED;
	if (fresh || st.st_size == (off_t)sizeof(*t))
		p = sys_mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	t = p == MAP_FAILED ? NULL : p;
	if (t && t->magic == 0) {
		int err = table_init(t);
		if (err) {
			snprintf(msg, CTL_MSG, "cannot set up the instance table lock: %s",
				 strerror(-err));
			sys_munmap(t, sizeof(*t));
			t = NULL;
		}
	} else if (!t || t->magic != CTL_MAGIC || t->version != CTL_VERSION ||
		   t->size != sizeof(*t)) {
		/* Another dime's layout (an upgrade while a table existed): its
		 * processes keep their mapping, new ones get a new table. */
		if (t)
			sys_munmap(t, sizeof(*t));
		t = NULL;
		if (unlinkat(dfd, TABLE_FILE, 0))
			snprintf(msg, CTL_MSG,
				 "instance table '%s/%s' has another layout and cannot be replaced: %s",
				 dir, TABLE_FILE, strerror(errno));
		else
			*again = true;
	}
out:
	flock(fd, LOCK_UN);
	close(fd);
	return t;
}

struct ctl_table *ctl_table_open_at(const char *dir, char msg[CTL_MSG])
{
	int dfd = ctl_dir_check_open(dir, msg);
	if (dfd < 0)
		return NULL;
	struct ctl_table *t = NULL;
	bool again = true;
	for (int i = 0; i < 4 && !t && again; i++)
		t = open_once(dfd, dir, msg, &again);
	if (!t && again)
		snprintf(msg, CTL_MSG, "cannot open the instance table '%s/%s': it keeps changing",
			 dir, TABLE_FILE);
	close(dfd);
	return t;
}

/* What a holder killed inside a change can leave: parameters with an odd
 * sequence number (every field holds a valid value, old or new: values are
 * checked before the change starts). Member removal is idempotent
 * (members.c) and instances are published by the count, last. */
static void repair(struct ctl_table *t)
{
	for (int i = 0; i < CTL_MAX_INSTANCES; i++) {
		uint32_t s = atomic_load(&t->inst[i].params.seq);
		if (s & 1)
			atomic_store(&t->inst[i].params.seq, s + 1);
	}
}

void ctl_lock(struct ctl_table *t)
{
	int err = pthread_mutex_lock(&t->lock);
	if (err == EOWNERDEAD) {
		repair(t);
		pthread_mutex_consistent(&t->lock);
	}
}

void ctl_unlock(struct ctl_table *t)
{
	pthread_mutex_unlock(&t->lock);
}

int ctl_instance_add(struct ctl_table *t, uint64_t latency, uint64_t bandwidth,
		     uint64_t local_npages, uint32_t flags)
{
	uint32_t n = atomic_load(&t->ninstances);
	if (n >= CTL_MAX_INSTANCES)
		return -1;
	struct ctl_instance *in = &t->inst[n];
	uint32_t seq = atomic_load(&in->params.seq);
	memset(in, 0, sizeof(*in));
	/* A reader that cached the old row's sequence must see a change. */
	atomic_store(&in->params.seq, seq + 2 - (seq & 1));
	ctl_params_write(&in->params, latency, bandwidth, local_npages);
	struct dime_params d;
	dime_params_init(&d);
	strcpy(in->policy, d.policy);
	in->flags = flags;
	atomic_store_explicit(&t->ninstances, n + 1, memory_order_release);
	return (int)n;
}

static bool instance_has_members(const struct ctl_table *t, int id)
{
	for (int i = 0; i < CTL_MAX_MEMBERS; i++)
		if (atomic_load(&t->mem[i].pid) && atomic_load(&t->mem[i].instance) == id)
			return true;
	return false;
}

bool ctl_instance_busy(const struct ctl_table *t, int id)
{
	const struct ctl_instance *in = &t->inst[id];
	return instance_has_members(t, id) ||
	       (in->owner_pid && ctl_proc_start_time(in->owner_pid) == in->owner_start);
}

void ctl_instances_trim(struct ctl_table *t)
{
	for (uint32_t n = atomic_load(&t->ninstances); n > 0; n--) {
		struct ctl_instance *in = &t->inst[n - 1];
		if (!(in->flags & CTL_INST_AUTO) || instance_has_members(t, (int)n - 1))
			return;
		if (in->owner_pid && ctl_proc_start_time(in->owner_pid) == in->owner_start)
			return;
		atomic_store_explicit(&t->ninstances, n - 1, memory_order_release);
	}
}

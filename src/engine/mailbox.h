/* A handler thread's mailbox (thread mode): faults that another handler
 * read from the userfaultfd for this one to serve, and the eventfd that
 * wakes it when it sleeps.
 *
 * Every handler reads the one userfaultfd, and a read takes whatever is
 * queued, also the fault of a thread on another CPU. Served from here, its
 * wake-up would cross vCPUs (45-60 us on this kind of VM); left in the
 * mailbox of that CPU's handler, it is served there (server.c). */
#ifndef DIME_MAILBOX_H
#define DIME_MAILBOX_H

#include "uffd.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { MAILBOX_CAP = 16 };

struct mail {
	struct uffd_msg msg;
	uint64_t t_seen; /* ticks: when the handler that posted it read it */
};

/* Posters take `lock`; the owner takes the mail under it too. No post is
 * lost to a sleeping owner: mailbox_sleep() publishes `sleeping` before it
 * looks at `n` a last time, mailbox_post() publishes `n` before it looks
 * at `sleeping` (both sequentially consistent), so one of them sees the
 * other and the owner either finds the mail or is woken through `efd`. */
struct mailbox {
	pthread_mutex_t lock;
	bool closed;           /* its owner is gone: posts fail (under lock) */
	_Atomic unsigned n;
	_Atomic bool sleeping;
	int efd;
	struct mail mail[MAILBOX_CAP];
};

/* 0 or -errno (no eventfd). */
int mailbox_init(struct mailbox *mb);
/* Closes the eventfd of a mailbox whose owner is gone (a fork()ed child
 * starting its own handlers). */
void mailbox_close(struct mailbox *mb);

/* Leaves m for the owner, wakes it if it sleeps; false if the mailbox is
 * full or shut (the caller serves m itself). Any thread. */
bool mailbox_post(struct mailbox *mb, const struct uffd_msg *m, uint64_t t_seen);
/* Wakes the owner if it sleeps, with or without mail. Any thread. */
void mailbox_kick(struct mailbox *mb);

static inline bool mailbox_has(struct mailbox *mb)
{
	return atomic_load_explicit(&mb->n, memory_order_relaxed) != 0;
}

/* Owner only: moves the mail to out (MAILBOX_CAP entries), returns how
 * many. */
unsigned mailbox_take(struct mailbox *mb, struct mail *out);
/* Owner only, as it stops (or for an owner that never started): no post
 * succeeds from now on; the mail still there is moved to out, for the
 * caller to serve. */
unsigned mailbox_shut(struct mailbox *mb, struct mail *out);

/* Owner only: sleeps until mail, a kick, or (uffd >= 0) a message on the
 * userfaultfd, at most timeout_ms (-1: no limit). Returns poll()'s result
 * (> 0 at once if mail is there), or -2 when the userfaultfd went away. */
int mailbox_sleep(struct mailbox *mb, int uffd, int timeout_ms);

#endif

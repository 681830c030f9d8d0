/* A handler thread's mailbox: see mailbox.h. */
#include "mailbox.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int mailbox_init(struct mailbox *mb)
{
	pthread_mutex_init(&mb->lock, NULL);
	mb->closed = false;
	atomic_store(&mb->n, 0);
	atomic_store(&mb->sleeping, false);
	mb->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return mb->efd < 0 ? -errno : 0;
}

void mailbox_close(struct mailbox *mb)
{
	if (mb->efd >= 0)
		close(mb->efd);
	mb->efd = -1;
}

void mailbox_kick(struct mailbox *mb)
{
	uint64_t one = 1;
	/* Cannot fail short of the counter's 2^64 - 2 limit; a kick that
	 * finds the counter set already needs nothing more. */
	ssize_t n = write(mb->efd, &one, sizeof(one));
	(void)n;
}

bool mailbox_post(struct mailbox *mb, const struct uffd_msg *m, uint64_t t_seen)
{
	pthread_mutex_lock(&mb->lock);
	unsigned n = atomic_load_explicit(&mb->n, memory_order_relaxed);
	bool room = n < MAILBOX_CAP && !mb->closed;
	if (room) {
		mb->mail[n] = (struct mail){ *m, t_seen };
		atomic_store(&mb->n, n + 1);
	}
	pthread_mutex_unlock(&mb->lock);
	if (room && atomic_load(&mb->sleeping))
		mailbox_kick(mb);
	return room;
}

unsigned mailbox_take(struct mailbox *mb, struct mail *out)
{
	if (!mailbox_has(mb))
		return 0;
	pthread_mutex_lock(&mb->lock);
	unsigned n = atomic_load_explicit(&mb->n, memory_order_relaxed);
	memcpy(out, mb->mail, n * sizeof(*out));
	atomic_store_explicit(&mb->n, 0, memory_order_relaxed);
	pthread_mutex_unlock(&mb->lock);
	return n;
}

unsigned mailbox_shut(struct mailbox *mb, struct mail *out)
{
	pthread_mutex_lock(&mb->lock);
	mb->closed = true;
	unsigned n = atomic_load_explicit(&mb->n, memory_order_relaxed);
	memcpy(out, mb->mail, n * sizeof(*out));
	atomic_store_explicit(&mb->n, 0, memory_order_relaxed);
	pthread_mutex_unlock(&mb->lock);
	return n;
}

int mailbox_sleep(struct mailbox *mb, int uffd, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = mb->efd, .events = POLLIN },
			       { .fd = uffd, .events = POLLIN } };
	atomic_store(&mb->sleeping, true);
	if (atomic_load(&mb->n)) {
		atomic_store(&mb->sleeping, false);
		return 1;
	}
	int ready = poll(p, uffd >= 0 ? 2 : 1, timeout_ms);
	atomic_store(&mb->sleeping, false);
	if (ready > 0 && (p[0].revents & POLLIN)) {
		uint64_t v;
		ssize_t n = read(mb->efd, &v, sizeof(v)); /* EAGAIN if already drained */
		(void)n;
	}
	if (uffd >= 0 && (p[1].revents & (POLLERR | POLLNVAL)))
		return -2;
	return ready;
}

/* futex on words in remote pages, and pthread mutexes and condition
 * variables in malloc'd memory while every thread keeps evicting. glibc
 * aborts on an unexpected EFAULT from futex, so a kernel access that dime
 * failed to serve shows up here. */
#include "common.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts,
		  _Atomic uint32_t *uaddr2, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

static struct sweeper main_sw;

/* --- one waiter on a remote word ----------------------------------------- */

struct waiter {
	_Atomic uint32_t *word;
	int op;                /* FUTEX_WAIT or FUTEX_WAIT_PRIVATE */
	struct timespec *ts;   /* on the heap as well: remote when read */
	_Atomic int state;     /* 1 about to wait, 2 woken */
	long rc;
	int err;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	atomic_store(&w->state, 1);
	/* The kernel reads *word (remote) and *ts (remote) to decide. */
	do {
		w->rc = futex(w->word, w->op, 0, w->ts, NULL, 0);
		w->err = errno;
	} while (w->rc < 0 && w->err == EINTR);
	atomic_store(&w->state, 2);
	return NULL;
}

static void wait_wake(int op, const char *name)
{
	_Atomic uint32_t *word = heap_pages(PAGE);
	struct waiter *w = heap_pages(PAGE);
	struct timespec *ts = heap_pages(PAGE);
	atomic_store(word, 0);
	*ts = (struct timespec){ .tv_sec = 20 }; /* a hang becomes a failure */
	*w = (struct waiter){ .word = word, .op = op, .ts = ts };
	evict_all(&main_sw);
	need_remote(&main_sw, (const void *)word, 4, "futex word");
	need_remote(&main_sw, ts, sizeof(*ts), "futex timeout");
	/* The waiter's own accesses to w would make it local: only the word
	 * and the timeout have to be remote when the kernel reads them. */
	pthread_t t;
	CHECK(pthread_create(&t, NULL, wait_main, w) == 0, "pthread_create");
	while (atomic_load(&w->state) == 0)
		;
	/* Give it time to block, then make the word remote again under the
	 * sleeping waiter; the store below faults it back in. */
	usleep(100 * 1000);
	CHECK(atomic_load(&w->state) == 1, "%s: the waiter returned early: rc %ld, %s", name, w->rc,
	      strerror(w->err));
	evict_all(&main_sw);
	need_remote(&main_sw, (const void *)word, 4, "futex word while waiting");
	atomic_store(word, 1);
	long n;
	/* Wake until the waiter is gone (it might not have blocked yet). */
	do {
		n = futex(word, op == FUTEX_WAIT ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		CHECK(n >= 0, "%s: FUTEX_WAKE: %s", name, strerror(errno));
		usleep(1000);
	} while (atomic_load(&w->state) != 2);
	pthread_join(t, NULL);
	/* 0 when woken; EAGAIN if it saw the 1 before sleeping. */
	CHECK(w->rc == 0 || w->err == EAGAIN, "%s on a remote word: %s", name, strerror(w->err));
	CHECK(atomic_load(word) == 1, "%s: the word changed to %u", name, atomic_load(word));

	/* A value that differs: EAGAIN at once, read from a remote page. */
	evict_all(&main_sw);
	need_remote(&main_sw, (const void *)word, 4, "futex word");
	long rc = futex(word, op, 0, ts, NULL, 0);
	CHECK(rc < 0 && errno == EAGAIN, "%s with a stale value on a remote word: rc %ld, %s", name,
	      rc, rc < 0 ? strerror(errno) : "no error");
	free((void *)word);
	free(w);
	free(ts);
}

/* FUTEX_WAKE_OP: the kernel itself does an atomic read-modify-write of a
 * remote word. */
static void wake_op(void)
{
	_Atomic uint32_t *words = heap_pages(2 * PAGE);
	_Atomic uint32_t *w1 = words, *w2 = words + PAGE / 4;
	atomic_store(w1, 0);
	atomic_store(w2, 40);
	evict_all(&main_sw);
	need_remote(&main_sw, (const void *)words, 2 * PAGE, "FUTEX_WAKE_OP words");
	/* *w2 += 2; wake waiters on w1 (none) and on w2 if old *w2 > 0. */
	long rc = futex(w1, FUTEX_WAKE_OP_PRIVATE, 1, (const struct timespec *)(uintptr_t)1, w2,
			FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_GT, 0));
	CHECK(rc >= 0, "FUTEX_WAKE_OP on a remote word: %s", strerror(errno));
	CHECK(atomic_load(w2) == 42, "FUTEX_WAKE_OP on a remote word left %u, want 42",
	      atomic_load(w2));
	free(words);
}

/* FUTEX_LOCK_PI/UNLOCK_PI: the kernel writes the owner's tid into a
 * remote word itself. */
static void lock_pi(void)
{
	_Atomic uint32_t *word = heap_pages(PAGE);
	atomic_store(word, 0);
	evict_all(&main_sw);
	need_remote(&main_sw, (const void *)word, 4, "FUTEX_LOCK_PI word");
	long rc = futex(word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0);
	CHECK(rc == 0, "FUTEX_LOCK_PI on a remote word: %s", strerror(errno));
	uint32_t tid = (uint32_t)gettid();
	CHECK((atomic_load(word) & FUTEX_TID_MASK) == tid, "FUTEX_LOCK_PI: word %#x, want tid %u",
	      atomic_load(word), tid);
	evict_all(&main_sw);
	need_remote(&main_sw, (const void *)word, 4, "FUTEX_UNLOCK_PI word");
	rc = futex(word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0);
	CHECK(rc == 0, "FUTEX_UNLOCK_PI on a remote word: %s", strerror(errno));
	CHECK(atomic_load(word) == 0, "FUTEX_UNLOCK_PI: word %#x, want 0", atomic_load(word));
	free((void *)word);
}

/* --- mutex + condition variable queue ------------------------------------ */

enum { PRODUCERS = 2, CONSUMERS = 2, ITEMS = 3000, QCAP = 16, EVICT_EVERY = 64 };

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	uint32_t items[QCAP];
	unsigned head, count, producers_left;
	/* Far from the lock, on pages of their own. */
	uint8_t *seen; /* ITEMS * PRODUCERS flags */
};

static struct queue *q;

static void *producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct sweeper sw = { 0 };
	for (unsigned i = 0; i < ITEMS; i++) {
		if (i % EVICT_EVERY == 0)
			sweep_pages(&sw, 96);
		pthread_mutex_lock(&q->lock);
		while (q->count == QCAP)
			pthread_cond_wait(&q->not_full, &q->lock);
		q->items[(q->head + q->count) % QCAP] = id * ITEMS + i;
		q->count++;
		pthread_cond_signal(&q->not_empty);
		pthread_mutex_unlock(&q->lock);
	}
	pthread_mutex_lock(&q->lock);
	q->producers_left--;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	struct sweeper sw = { 0 };
	for (unsigned n = 0;; n++) {
		if (n % EVICT_EVERY == 0)
			sweep_pages(&sw, 96);
		pthread_mutex_lock(&q->lock);
		while (q->count == 0 && q->producers_left)
			pthread_cond_wait(&q->not_empty, &q->lock);
		if (q->count == 0) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		uint32_t v = q->items[q->head];
		q->head = (q->head + 1) % QCAP;
		q->count--;
		pthread_cond_signal(&q->not_full);
		pthread_mutex_unlock(&q->lock);
		if (v >= PRODUCERS * ITEMS)
			fail("queue: item %u out of range", v);
		if (q->seen[v]++)
			fail("queue: item %u received twice", v);
	}
}

static void mutex_condvar(void)
{
	q = heap_pages(sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->head = q->count = 0;
	q->producers_left = PRODUCERS;
	q->seen = calloc(PRODUCERS * ITEMS, 1);
	CHECK(q->seen, "calloc");
	evict_all(&main_sw);
	need_remote(&main_sw, q, sizeof(*q), "queue with mutex and condvars");
	pthread_t t[PRODUCERS + CONSUMERS];
	for (int i = 0; i < CONSUMERS; i++)
		CHECK(pthread_create(&t[i], NULL, consumer, NULL) == 0, "pthread_create");
	for (int i = 0; i < PRODUCERS; i++)
		CHECK(pthread_create(&t[CONSUMERS + i], NULL, producer, (void *)(uintptr_t)i) == 0,
		      "pthread_create");
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		pthread_join(t[i], NULL);
	for (unsigned v = 0; v < PRODUCERS * ITEMS; v++)
		CHECK(q->seen[v] == 1, "queue: item %u received %u times", v, q->seen[v]);
	free(q->seen);
	free(q);
}

/* --- priority-inheritance mutex ------------------------------------------ */

enum { PI_THREADS = 4, PI_ROUNDS = 2000 };

struct pi_shared {
	pthread_mutex_t lock;
	uint64_t counter;
};
static struct pi_shared *pi;

static void *pi_main(void *arg)
{
	(void)arg;
	struct sweeper sw = { 0 };
	for (int i = 0; i < PI_ROUNDS; i++) {
		if (i % 16 == 0)
			sweep_pages(&sw, 96);
		int err = pthread_mutex_lock(&pi->lock);
		CHECK(!err, "PI mutex lock: %s", strerror(err));
		pi->counter++;
		err = pthread_mutex_unlock(&pi->lock);
		CHECK(!err, "PI mutex unlock: %s", strerror(err));
	}
	return NULL;
}

/* Contended PI mutexes go through FUTEX_LOCK_PI/UNLOCK_PI, where the
 * kernel updates the word itself. */
static void pi_mutex(void)
{
	pi = heap_pages(sizeof(*pi));
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	CHECK(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT) == 0, "setprotocol");
	pthread_mutex_init(&pi->lock, &a);
	pi->counter = 0;
	pthread_t t[PI_THREADS];
	for (int i = 0; i < PI_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, pi_main, NULL) == 0, "pthread_create");
	for (int i = 0; i < PI_THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(pi->counter == PI_THREADS * PI_ROUNDS, "PI mutex: counter %llu, want %d",
	      (unsigned long long)pi->counter, PI_THREADS * PI_ROUNDS);
	free(pi);
}

int main(int argc, char **argv)
{
	prog_name = "futex";
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "wait")) {
		wait_wake(FUTEX_WAIT_PRIVATE, "FUTEX_WAIT_PRIVATE");
		wait_wake(FUTEX_WAIT, "FUTEX_WAIT (shared key)");
	} else if (!strcmp(what, "wake-op")) {
		wake_op();
	} else if (!strcmp(what, "lock-pi")) {
		lock_pi();
	} else if (!strcmp(what, "condvar")) {
		mutex_condvar();
	} else if (!strcmp(what, "pi")) {
		pi_mutex();
	} else {
		fail("usage: futex wait|wake-op|lock-pi|condvar|pi");
	}
	return 0;
}

/* The zram baseline's side in the measured process: the temporary memory
 * cgroup that bench/zram-baseline.sh created (cgroup v2 or v1), named by
 * DIME_BENCH_CGROUP (its directory) and DIME_BENCH_CGROUP_V (2 or 1).
 * The script owns the cgroup and the zram swap device and removes both;
 * this side only joins the cgroup and sets its limit. */
#ifndef DIME_BENCH_MEMCG_H
#define DIME_BENCH_MEMCG_H

struct bench_memcg {
	const char *dir;
	int v2;
};

/* 0, or -1 when the environment names no cgroup. */
int bench_memcg_from_env(struct bench_memcg *cg);

/* Lifts the limit (what a previous case left), makes swap unlimited and
 * moves the calling process in. Its pages from now on are charged there. */
int bench_memcg_join(const struct bench_memcg *cg);

/* Bytes charged to the cgroup now, or -1. */
long long bench_memcg_usage(const struct bench_memcg *cg);

/* Sets the memory limit (v2 memory.max, v1 memory.limit_in_bytes). */
int bench_memcg_limit(const struct bench_memcg *cg, long long bytes);

/* Processes the cgroup's OOM killer has killed so far (v2 memory.events,
 * v1 memory.oom_control: oom_kill), or -1. */
long long bench_memcg_oom_kills(const struct bench_memcg *cg);

#endif

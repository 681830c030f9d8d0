/* Joining and limiting the zram baseline's memory cgroup (see memcg.h). */
#define _GNU_SOURCE
#include "memcg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int put_file(const struct bench_memcg *cg, const char *name, const char *value)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", cg->dir, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "dimebench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ssize_t len = (ssize_t)strlen(value);
	ssize_t w = write(fd, value, (size_t)len);
	int err = errno;
	close(fd);
	if (w != len) {
		fprintf(stderr, "dimebench: writing %s to %s: %s\n", value, path, strerror(err));
		return -1;
	}
	return 0;
}

int bench_memcg_from_env(struct bench_memcg *cg)
{
	const char *dir = getenv("DIME_BENCH_CGROUP"), *v = getenv("DIME_BENCH_CGROUP_V");
	if (!dir || !*dir || !v)
		return -1;
	cg->dir = dir;
	cg->v2 = !strcmp(v, "2");
	return 0;
}

int bench_memcg_join(const struct bench_memcg *cg)
{
	if (cg->v2) {
		if (put_file(cg, "memory.max", "max") || put_file(cg, "memory.swap.max", "max"))
			return -1;
	} else if (put_file(cg, "memory.limit_in_bytes", "-1")) {
		/* v1: memory.memsw.limit_in_bytes stays unlimited (the script
		 * leaves it so): swap is unlimited. */
		return -1;
	}
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	return put_file(cg, "cgroup.procs", pid);
}

long long bench_memcg_usage(const struct bench_memcg *cg)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", cg->dir,
		 cg->v2 ? "memory.current" : "memory.usage_in_bytes");
	FILE *f = fopen(path, "re");
	long long v = -1;
	if (!f || fscanf(f, "%lld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

int bench_memcg_limit(const struct bench_memcg *cg, long long bytes)
{
	char v[32];
	snprintf(v, sizeof(v), "%lld", bytes);
	return put_file(cg, cg->v2 ? "memory.max" : "memory.limit_in_bytes", v);
}

long long bench_memcg_oom_kills(const struct bench_memcg *cg)
{
	char path[4096], key[64];
	long long v, kills = -1;
	snprintf(path, sizeof(path), "%s/%s", cg->dir,
		 cg->v2 ? "memory.events" : "memory.oom_control");
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &v) == 2)
		if (!strcmp(key, "oom_kill"))
			kills = v;
	fclose(f);
	return kills;
}

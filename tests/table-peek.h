/* The instance table of a control directory, mapped read-only: looking at
 * it runs no sweep of dead members, as any dime command would, so a test
 * sees what the running processes themselves did. */
#pragma once

#include "helpers.h"
#include "../src/control/table.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static inline const struct ctl_table *table_peek_at(const char *dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/table", dir);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s", path);
	void *p = mmap(NULL, sizeof(struct ctl_table), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static inline const struct ctl_member *member_peek(const struct ctl_table *t, pid_t pid)
{
	for (int i = 0; i < CTL_MAX_MEMBERS; i++)
		if (atomic_load(&t->mem[i].pid) == pid)
			return &t->mem[i];
	return NULL;
}

/* The pid list of one instance's row in `dime config`'s printed table
 * (DiME's layout, header line first): up to max pids, their count. */
static inline int table_text_row_pids(char *text, int instance, int *pids, int max)
{
	int n = 0;
	for (char *line = strchr(text, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
		/* DiME's columns: the pid list starts after five of them. */
		enum { PIDS_AT = 11 + 1 + 10 + 1 + 13 + 1 + 12 + 1 + 16 + 1 };
		char *p = line + 1;
		int id;
		if (sscanf(p, "%d", &id) != 1 || id != instance)
			continue;
		p += PIDS_AT;
		while (n < max && *p >= '0' && *p <= '9') {
			pids[n++] = (int)strtol(p, &p, 10);
			if (*p == ',')
				p++;
		}
	}
	return n;
}

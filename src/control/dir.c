/* The per-user control directory that holds the instance table.
 *
 * Anyone who can write the table can change another user's emulation, so
 * the directory must be this user's alone: created 0700, and an existing
 * one is refused if it is a symlink (someone could point it elsewhere in
 * /tmp), not a directory, owned by someone else or open to group/others. */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void dir_path(char *path, size_t size)
{
	const char *env = getenv("DIME_CONTROL_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		snprintf(path, size, "%s", env);
	else if (xdg && *xdg == '/')
		snprintf(path, size, "%s/dime", xdg);
	else if (geteuid() == 0)
		snprintf(path, size, "/run/dime");
	else
		snprintf(path, size, "/tmp/dime-%u", (unsigned)geteuid());
}

int ctl_dir_check_open(const char *path, char msg[CTL_MSG])
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat st;
		if (!lstat(path, &st) && S_ISLNK(st.st_mode))
			snprintf(msg, CTL_MSG, "control directory '%s' is a symlink; refusing it", path);
		else
			snprintf(msg, CTL_MSG, "cannot open control directory '%s': %s", path,
				 strerror(e == ELOOP ? EMLINK : e));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(msg, CTL_MSG,
			 "control directory '%s' must belong to uid %u with mode 0700; refusing it",
			 path, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

int ctl_dir_open(char *path, size_t size, char msg[CTL_MSG])
{
	dir_path(path, size);
	if (mkdir(path, 0700) && errno != EEXIST) {
		snprintf(msg, CTL_MSG, "cannot create control directory '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	return ctl_dir_check_open(path, msg);
}

struct ctl_table *ctl_table_open(char msg[CTL_MSG])
{
	char path[PATH_MAX];
	int fd = ctl_dir_open(path, sizeof(path), msg);
	if (fd < 0)
		return NULL;
	close(fd);
	return ctl_table_open_at(path, msg);
}

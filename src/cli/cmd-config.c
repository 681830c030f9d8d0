/* dime config [WRITE...]: DiME's /proc/dime_config. Without arguments it
 * prints the instance table; with them it applies DiME's write grammar
 * (src/control/grammar.c), all or nothing. */
#include "cli.h"
#include "../control/control.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

void config_usage(FILE *f)
{
	fputs("usage: dime config ['instance_id=N [latency_ns=N] [bandwidth_bps=N]\n"
	      "                     [local_npages=N] [page_fault_count=N] [pid=P,P,...]\n"
	      "                     [policy=NAME|PATH]']\n"
	      "\n"
	      "Without arguments, prints the instances as DiME's /proc/dime_config did:\n"
	      "instance_id latency_ns bandwidth_bps local_npages page_fault_count pid.\n"
	      "With them, applies DiME's write grammar, all or nothing:\n"
	      "    instance_id       mandatory; equal to the number of instances, it\n"
	      "                      creates one (dime's defaults, then the given keys)\n"
	      "    latency_ns, bandwidth_bps, local_npages\n"
	      "                      change the instance's parameters; running processes\n"
	      "                      take them at their next fault (a lower local_npages\n"
	      "                      evicts down to it)\n"
	      "    page_fault_count  sets the count (0 resets it)\n"
	      "    pid               the instance's processes: each must run under dime;\n"
	      "                      listing one moves it here (if it runs this\n"
	      "                      instance's policy)\n"
	      "    policy            the replacement policy its processes run: fifo\n"
	      "                      (default), random, clock, lru, or a plug-in .so (a\n"
	      "                      path with a '/'); changes only while the instance\n"
	      "                      has no processes; shown by dime stats\n"
	      "\n"
	      "The table lives in the control directory: $DIME_CONTROL_DIR, else\n"
	      "$XDG_RUNTIME_DIR/dime, else /run/dime (root) or /tmp/dime-$UID.\n",
	      f);
}

struct ctl_table *control_table(char *dir, size_t size)
{
	char msg[CTL_MSG];
	int fd = ctl_dir_open(dir, size, msg);
	if (fd < 0)
		fail("%s", msg);
	close(fd);
	struct ctl_table *t = ctl_table_open_at(dir, msg);
	if (!t)
		fail("%s", msg);
	return t;
}

int cmd_config(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		config_usage(stdout);
		return 0;
	}
	if (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "--"))
		fail("unknown option: '%s'", shown(argv[1]));
	int first = argc >= 2 && !strcmp(argv[1], "--") ? 2 : 1;
	char dir[PATH_MAX];
	struct ctl_table *t = control_table(dir, sizeof(dir));
	if (first >= argc) {
		ctl_config_print(t, stdout);
		return fflush(stdout) ? 1 : 0;
	}
	/* Several arguments are one write, as if joined by blanks. */
	size_t len = 1;
	for (int i = first; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *text = calloc(1, len);
	if (!text)
		fail("out of memory");
	for (int i = first; i < argc; i++) {
		strcat(text, argv[i]);
		strcat(text, " ");
	}
	char msg[CTL_MSG];
	if (ctl_config_write(t, text, msg))
		fail("config: %s", msg);
	free(text);
	return 0;
}

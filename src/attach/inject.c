/* System calls run by the target itself, through CRIU's libcompel: it
 * seizes the target's main thread with ptrace, saves its registers, runs
 * the call at a syscall instruction in the target's code and restores
 * everything (compel_cure). Other threads of the target keep running: the
 * calls dime makes (userfaultfd, mmap, munmap, close) act on the whole
 * process either way.
 *
 * Never run while registered ranges of the target may fault: a thread
 * waiting for the agent inside a system call only stops once served, and
 * the agent would be waiting for it to stop. target.c calls these before
 * registering anything and after unregistering everything. */
#include "attach.h"

#include <compel/infect.h>
#include <compel/log.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct inject {
	pid_t pid;
	int state; /* the task state compel_stop_task() found */
	struct parasite_ctl *ctl;
};

static void compel_log(unsigned int lvl, const char *fmt, va_list ap)
{
	if (lvl > COMPEL_LOG_ERROR)
		return;
	fputs("dime: compel: ", stderr);
	vfprintf(stderr, fmt, ap);
}

int inject_begin(pid_t pid, struct inject **out)
{
	static bool logging;
	if (!logging) {
		compel_log_init(compel_log, COMPEL_LOG_ERROR);
		logging = true;
	}
	struct inject *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->pid = pid;
	errno = 0;
	in->state = compel_stop_task(pid);
	if (in->state < 0) {
		int err = errno ? errno : EPERM;
		fprintf(stderr,
			"dime: cannot stop process %d with ptrace: %s (dime insert needs the same "
			"user and kernel.yama.ptrace_scope 0, or root / CAP_SYS_PTRACE)\n",
			(int)pid, strerror(err));
		free(in);
		return -err;
	}
	in->ctl = compel_prepare(pid);
	if (!in->ctl) {
		fprintf(stderr, "dime: cannot prepare process %d for system calls (libcompel)\n",
			(int)pid);
		compel_resume_task(pid, in->state, in->state);
		free(in);
		return -EIO;
	}
	*out = in;
	return 0;
}

int inject_syscall(struct inject *in, long nr, long *ret, unsigned long a1, unsigned long a2,
		   unsigned long a3, unsigned long a4, unsigned long a5, unsigned long a6)
{
	if (compel_syscall(in->ctl, (int)nr, ret, a1, a2, a3, a4, a5, a6) < 0) {
		fprintf(stderr, "dime: cannot run system call %ld in process %d\n", nr, (int)in->pid);
		return -1;
	}
	return 0;
}

int inject_run_at(struct inject *in, uintptr_t ip, long *ret)
{
	user_regs_struct_t regs;
	if (compel_run_at(in->ctl, ip, &regs) < 0) {
		fprintf(stderr, "dime: cannot run code in process %d\n", (int)in->pid);
		return -1;
	}
	*ret = (long)REG_RES(regs);
	return 0;
}

int inject_end(struct inject *in)
{
	int err = 0;
	if (compel_cure(in->ctl) < 0) {
		fprintf(stderr, "dime: cannot restore process %d after system calls\n", (int)in->pid);
		err = -EIO;
	}
	if (compel_resume_task(in->pid, in->state, in->state) < 0 && !err)
		err = -EIO;
	free(in);
	return err;
}

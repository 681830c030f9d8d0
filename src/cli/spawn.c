/* Starting the run's program and waiting for it, the way a shell does.
 *
 * vfork, not fork: by the time the program starts, dime has started the
 * engine (the userfaultfd check), and the engine's pthread_atfork child
 * handler would open a userfaultfd and start handler threads in the child
 * only for exec to throw them away. vfork runs no atfork handlers and
 * copies nothing. The child only resets signals, execs, and on failure
 * writes errno into a close-on-exec pipe: EOF on the pipe means the exec
 * succeeded.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

static bool handled[NFORWARDED];
static volatile pid_t child;

static void forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* Signals from the terminal (SI_KERNEL) reach the program's process
	 * group, which is dime's, directly: forwarding them would deliver
	 * them twice. Forward what someone sent to dime alone. */
	if (si->si_code == SI_KERNEL)
		return;
	if (child > 0)
		kill(child, sig);
}

static void forwarded_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaddset(set, forwarded[i]);
}

void signals_block(void)
{
	/* Before the engine starts its threads, so that they inherit the
	 * mask and the signals can only arrive in this thread, once the
	 * child's pid is known. */
	sigset_t set;
	forwarded_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void handlers_install(void)
{
	for (size_t i = 0; i < NFORWARDED; i++) {
		struct sigaction old;
		/* Ignored (nohup, a background job): leave it so; the program
		 * inherits the disposition as it would from a shell. */
		if (sigaction(forwarded[i], NULL, &old) || old.sa_handler == SIG_IGN)
			continue;
		struct sigaction sa = { .sa_sigaction = forward,
					.sa_flags = SA_SIGINFO | SA_RESTART };
		sigemptyset(&sa.sa_mask);
		handled[i] = !sigaction(forwarded[i], &sa, NULL);
	}
}

struct exec_args {
	char *const *argv;
	char *const *envp;
	int errfd;
};

static void __attribute__((noreturn)) exec_child(const struct exec_args *a)
{
	/* The child runs in dime's memory until exec: dime's handlers must
	 * not run here. Reset them, then take the mask dime started with
	 * (the forwarded signals unblocked, as they were before). */
	for (size_t i = 0; i < NFORWARDED; i++)
		if (handled[i])
			signal(forwarded[i], SIG_DFL);
	sigset_t set;
	forwarded_set(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	execvpe(a->argv[0], a->argv, a->envp);
	int err = errno;
	ssize_t n = write(a->errfd, &err, sizeof(err));
	(void)n;
	_exit(EXIT_NOEXEC);
}

static pid_t start(const struct exec_args *a)
{
	pid_t pid = vfork();
	if (pid == 0)
		exec_child(a);
	return pid;
}

int spawn_wait(char *const argv[], char *const envp[], bool *ran)
{
	int pipefd[2];
	*ran = false;
	if (pipe2(pipefd, O_CLOEXEC))
		fail("cannot create a pipe: %s", strerror(errno));
	handlers_install();
	struct exec_args a = { .argv = argv, .envp = envp, .errfd = pipefd[1] };
	pid_t pid = start(&a);
	if (pid < 0)
		fail("cannot start a process: %s", strerror(errno));
	child = pid;
	close(pipefd[1]);
	sigset_t set;
	forwarded_set(&set);
	/* Signals that came while dime was starting: the program did not
	 * exist then, not even for the terminal, so it gets them all. */
	siginfo_t si;
	int sig;
	while ((sig = sigtimedwait(&set, &si, &(struct timespec){ 0 })) > 0)
		kill(pid, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	int err = 0;
	ssize_t n;
	do
		n = read(pipefd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fail("cannot wait for the program: %s", strerror(errno));
	child = 0;
	if (n == sizeof(err)) {
		fprintf(stderr, "dime run: cannot execute '%s': %s\n", shown(argv[0]),
			strerror(err));
		return EXIT_NOEXEC;
	}
	*ran = true;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

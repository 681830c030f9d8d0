/* dime: the command line. Subcommands dispatch from a table, as in git.c;
 * each lives in its own file and brings its usage text.
 *
 * Adding a subcommand: its function and usage in a new file, an entry in
 * `commands`, and tests in tests/cli.
 */
#include "cli.h"

#include <string.h>

static int cmd_help(int argc, char **argv);
static void help_usage(FILE *f);

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	void (*usage)(FILE *f);
	const char *summary;
} commands[] = {
	{ "run", cmd_run, run_usage,
	  "run a program with its heap in emulated disaggregated memory" },
	{ "config", cmd_config, config_usage,
	  "show or change the instances (DiME's /proc/dime_config)" },
	{ "stats", cmd_stats, stats_usage,
	  "show the counters of each instance and of its processes" },
	{ "sweep", cmd_sweep, sweep_usage,
	  "run a command over a grid of local memory, latency and bandwidth; CSV and plots" },
	{ "insert", cmd_insert, insert_usage,
	  "bring running processes under emulation (DiME's insert_module.sh)" },
	{ "detach", cmd_detach, detach_usage, "end the emulation of inserted processes" },
	{ "help", cmd_help, help_usage, "show the help of dime or of a subcommand" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("usage: dime [--version] [-h | --help] COMMAND [ARGS...]\n"
	      "\n"
	      "Emulates disaggregated memory in user space: a program's heap behaves as if\n"
	      "only part of it were local and the rest came over a link of given latency\n"
	      "and bandwidth.\n"
	      "\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "    %-8s %s\n", commands[i].name, commands[i].summary);
	fputs("\nSee 'dime help COMMAND' or 'dime COMMAND --help' for a command's options.\n", f);
}

static void help_usage(FILE *f)
{
	fputs("usage: dime help [COMMAND]\n"
	      "\n"
	      "Shows the help of dime, or of COMMAND.\n",
	      f);
}

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		help_usage(stdout);
		return 0;
	}
	if (argc > 2)
		fail("too many arguments: '%s'", shown(argv[2]));
	const struct command *c = command_find(argv[1]);
	if (!c)
		fail("unknown subcommand: '%s'", shown(argv[1]));
	c->usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		fail("no subcommand given (see 'dime --help')");
	const char *arg = argv[1];
	if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(arg, "--version")) {
		puts("dime " DIME_VERSION);
		return 0;
	}
	if (arg[0] == '-')
		fail("unknown option: '%s'", shown(arg));
	const struct command *c = command_find(arg);
	if (!c)
		fail("unknown subcommand: '%s'", shown(arg));
	return c->fn(argc - 1, argv + 1);
}

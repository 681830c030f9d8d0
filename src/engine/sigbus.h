/* Signal mode's SIGBUS handler and its chaining to the program's own. */
#ifndef DIME_SIGBUS_H
#define DIME_SIGBUS_H

#include <signal.h>
#include <stdbool.h>

/* Runs the program's SIGBUS disposition for a fault that is not dime's. */
void sigbus_chain(int sig, siginfo_t *si, void *uc);
/* Records (act) and reports (old) the program's SIGBUS action while dime's
 * handler stays installed; the preload's sigaction() goes through this. */
int sigbus_set_program_action(const struct sigaction *act, struct sigaction *old);
bool sigbus_installed(void);

#endif

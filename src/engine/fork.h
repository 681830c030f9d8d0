/* fork(): the child gets its own emulated copy. See fork.c. */
#ifndef DIME_FORK_H
#define DIME_FORK_H

void fork_handlers_install(void);

#endif

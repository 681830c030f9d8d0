/* The CLI tests of the control plane run dime with a control directory of
 * their own (DIME_CONTROL_DIR), so parallel runs never share a table. */
#ifndef DIME_TEST_CLI_CONTROL_H
#define DIME_TEST_CLI_CONTROL_H

#include "harness.h"

/* A fresh control directory for this test; the environment entry for it. */
const char *const *control_env(void);
/* Runs dime with argv (NULL-terminated, "dime" first) in that directory. */
struct dime_result ctl_run(const char *const argv[]);
#define CTL(...) ctl_run((const char *const[]){ "dime", __VA_ARGS__, NULL })
/* `dime config`'s output, asserting success and a quiet stderr. */
char *ctl_table_text(void);

#endif

/* Region life cycle inside the engine (engine.lock held by callers). */
#ifndef DIME_REGION_H
#define DIME_REGION_H

#include "internal.h"

/* Maps, registers with s->uffd and publishes a region. 0 or -errno. */
int region_new(const struct dime_params *p, struct server *s, struct region **out);
/* Unpublishes, unregisters and unmaps a region. */
void region_delete(struct region *r);

#endif

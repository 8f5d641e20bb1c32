/* timer.h - the loop's timer heap (see timer.c). */
#ifndef CORONET_TIMER_H
#define CORONET_TIMER_H

#include "loop.h"

/* timer_add: arm t at t->deadline; 0, or -1 when out of memory. */
int timer_add(loop *lp, task *t);
/* timer_remove: disarm t if armed. */
void timer_remove(loop *lp, task *t);
/* timer_update: restore heap order after t->deadline changed (t armed). */
void timer_update(loop *lp, task *t);
/* timer_first: the armed task with the earliest deadline, or NULL. */
task *timer_first(loop *lp);

#endif

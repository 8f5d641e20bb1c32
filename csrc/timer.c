/* timer.c - the loop's timer heap: a binary min-heap of parked tasks keyed
 * on their absolute deadline. Each task records its heap index, so moving
 * or removing one is O(log n) and needs no search. */
#include <stdlib.h>
#include "loop.h"
#include "timer.h"

static int timer_less(task *a, task *b) { return a->deadline < b->deadline; }

static void timer_place(loop *lp, int i, task *t) {
    lp->heap[i] = t;
    t->heap_idx = i;
}

static void timer_up(loop *lp, int i) {
    task *t = lp->heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!timer_less(t, lp->heap[parent])) break;
        timer_place(lp, i, lp->heap[parent]);
        i = parent;
    }
    timer_place(lp, i, t);
}

static void timer_down(loop *lp, int i) {
    task *t = lp->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= lp->nheap) break;
        if (c + 1 < lp->nheap && timer_less(lp->heap[c + 1], lp->heap[c])) c++;
        if (!timer_less(lp->heap[c], t)) break;
        timer_place(lp, i, lp->heap[c]);
        i = c;
    }
    timer_place(lp, i, t);
}

int timer_add(loop *lp, task *t) {
    if (lp->nheap == lp->capheap) {
        int cap = lp->capheap ? 2 * lp->capheap : 64;
        task **h = realloc(lp->heap, (size_t)cap * sizeof *h);
        if (!h) return -1;
        lp->heap = h;
        lp->capheap = cap;
    }
    timer_place(lp, lp->nheap++, t);
    timer_up(lp, t->heap_idx);
    return 0;
}

void timer_remove(loop *lp, task *t) {
    int i = t->heap_idx;
    if (i < 0) return;
    t->heap_idx = -1;
    task *last = lp->heap[--lp->nheap];
    if (i == lp->nheap) return;
    timer_place(lp, i, last);
    timer_up(lp, i);
    timer_down(lp, last->heap_idx);
}

void timer_update(loop *lp, task *t) {
    timer_up(lp, t->heap_idx);
    timer_down(lp, t->heap_idx);
}

task *timer_first(loop *lp) {
    return lp->nheap ? lp->heap[0] : NULL;
}

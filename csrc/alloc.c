/* alloc.c - a bounded cache of freed Lua blocks, by exact size, in front
 * of the state's allocator (see alloc.h).
 *
 * Why: a server's objects die in bursts (the collector frees a few hundred
 * conns' coroutines, tasks and strings in one sweep), which overflows
 * glibc's per-size caches, so most frees and the mallocs after them take
 * malloc's slow paths: under wrk -c100 with Connection: close, 12 blocks a
 * request cost about 130 instructions each (docs/performance.md, the ninth
 * round). Here a free of a block of at most ALLOC_MAX bytes is a push on
 * the list of its exact size and the next allocation of that size a pop.
 * Larger blocks up to ALLOC_LARGE_MAX (a 4 KiB read's string, a 64 KiB
 * one's) go to ALLOC_SLOTS lists picked by a hash of their size, each
 * holding blocks of one size at a time, under a cap of their own: past
 * malloc's per-size caches, glibc sorts and coalesces every such block,
 * about 500 instructions an echo4k round trip (docs/performance.md, the
 * twelfth round).
 *
 * What it keeps true: every block is one the wrapped allocator made, of
 * exactly the size Lua asked for; a cached block is handed out only for
 * that same size, and goes back to the wrapped allocator with that size.
 * So an allocator that counts bytes (a memory limit) stays exact, except
 * for the cached bytes, which are bounded and flushed to it when it fails. */
#include <stddef.h>
#include <stdint.h>
#include "alloc.h"
#include "class.h"

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ALLOC_HIDE(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ALLOC_SHOW(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define ALLOC_LINK(p) ASAN_UNPOISON_MEMORY_REGION((p), sizeof(void *))
#elif __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
/* The requests cost a dozen instructions each natively, and more under
 * callgrind, which would count them: they are made only under memcheck,
 * which answers -1 to one (natively and under other tools it is 0).
 * memcheck's leak check reads only accessible words, so a cached block's
 * link stays visible and the rest is no-access: hidden links would have
 * a process that exits without lua_close (os.exit, a forked worker)
 * report every cached block after a list's first as definitely lost. */
static int alloc_under_valgrind;
#define ALLOC_HIDE(p, n) \
    (alloc_under_valgrind ? (void)VALGRIND_MAKE_MEM_NOACCESS((char *)(p) + sizeof(void *), \
                                                             (n) - sizeof(void *)) \
                          : (void)0)
#define ALLOC_SHOW(p, n) \
    (alloc_under_valgrind ? (void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)) : (void)0)
#define ALLOC_PROBE() \
    (alloc_under_valgrind = VALGRIND_MAKE_MEM_DEFINED(&alloc_under_valgrind, sizeof(int)) != 0)
#endif
#endif
#ifndef ALLOC_PROBE
#define ALLOC_PROBE() ((void)0)
#endif
#ifndef ALLOC_HIDE      /* neither ASan nor memcheck to tell */
#define ALLOC_HIDE(p, n) ((void)(p), (void)(n))
#define ALLOC_SHOW(p, n) ((void)(p), (void)(n))
#endif
#ifndef ALLOC_LINK      /* only ASan hides a cached block's link */
#define ALLOC_LINK(p) ((void)(p))
#endif

enum {
    ALLOC_MIN = sizeof(void *),   /* a cached block holds its list's link */
    ALLOC_MAX = 1024,             /* a coroutine's first stack is 720 bytes */
    ALLOC_CAP = 512 * 1024,      /* bytes held at most in the lists */
    ALLOC_LARGE_MAX = 65536 + 256, /* a 64 KiB string, with its header */
    ALLOC_LARGE_CAP = 256 * 1024,  /* bytes held at most in the slots */
    ALLOC_SLOTS = 16              /* a power of 2 */
};

/* A slot: freed blocks of one size above ALLOC_MAX (size is stale once
 * head is NULL, and the next free of any size hashed here claims it). */
typedef struct alloc_slot {
    size_t size;
    void *head;
} alloc_slot;

typedef struct alloc_cache {
    lua_Alloc f;                  /* the allocator it wraps, and its ud */
    void *ud;
    size_t small_bytes;           /* bytes held in the lists */
    size_t large_bytes;           /* bytes held in the slots */
    void *head[ALLOC_MAX + 1];    /* freed blocks of each size, linked through their first word */
    alloc_slot slot[ALLOC_SLOTS];
} alloc_cache;

/* alloc_slot_of: the slot for blocks of n bytes (n > ALLOC_MAX). */
static alloc_slot *alloc_slot_of(alloc_cache *a, size_t n) {
    return &a->slot[((uint32_t)n * 0x9E3779B1u) >> 28 & (ALLOC_SLOTS - 1)];
}

/* alloc_push, alloc_pop: a block of n bytes onto and off the list at
 * *head, counted in *held (its tier's bytes). */
static void alloc_push(void **head, size_t *held, void *p, size_t n) {
    *(void **)p = *head;
    *head = p;
    *held += n;
    ALLOC_HIDE(p, n);
}

static void *alloc_pop(void **head, size_t *held, size_t n) {
    void *p = *head;
    ALLOC_LINK(p);                /* the link, as it was written */
    *head = *(void **)p;
    ALLOC_SHOW(p, n);             /* as fresh memory: undefined */
    *held -= n;
    return p;
}

/* alloc_flush: give every cached block back to the wrapped allocator. */
static void alloc_flush(alloc_cache *a) {
    for (size_t n = ALLOC_MIN; n <= ALLOC_MAX; n++)
        while (a->head[n]) a->f(a->ud, alloc_pop(&a->head[n], &a->small_bytes, n), n, 0);
    for (alloc_slot *s = a->slot; s < a->slot + ALLOC_SLOTS; s++)
        while (s->head) a->f(a->ud, alloc_pop(&s->head, &a->large_bytes, s->size), s->size, 0);
}

/* alloc_keep: whether a free of p (osize bytes) went into the cache. */
static int alloc_keep(alloc_cache *a, void *p, size_t osize) {
    if (osize <= ALLOC_MAX) {
        if (osize < ALLOC_MIN || a->small_bytes + osize > ALLOC_CAP) return 0;
        alloc_push(&a->head[osize], &a->small_bytes, p, osize);
        return 1;
    }
    alloc_slot *s = alloc_slot_of(a, osize);
    if (osize > ALLOC_LARGE_MAX || a->large_bytes + osize > ALLOC_LARGE_CAP ||
        (s->head && s->size != osize))
        return 0;
    s->size = osize;
    alloc_push(&s->head, &a->large_bytes, p, osize);
    return 1;
}

/* The lua_Alloc: p NULL is a new block (osize is then its type, passed
 * on), nsize 0 a free, anything else a resize, which is the wrapped
 * allocator's. */
static void *alloc_cached(void *ud, void *p, size_t osize, size_t nsize) {
    alloc_cache *a = ud;
    if (nsize == 0) {
        if (p && alloc_keep(a, p, osize)) return NULL;
        return a->f(a->ud, p, osize, 0);
    }
    if (!p) {
        if (nsize <= ALLOC_MAX) {
            if (a->head[nsize]) return alloc_pop(&a->head[nsize], &a->small_bytes, nsize);
        } else if (nsize <= ALLOC_LARGE_MAX) {
            alloc_slot *s = alloc_slot_of(a, nsize);
            if (s->head && s->size == nsize) return alloc_pop(&s->head, &a->large_bytes, nsize);
        }
    }
    void *q = a->f(a->ud, p, osize, nsize);
    if (!q && (a->small_bytes || a->large_bytes)) {   /* out of memory: the cache may be enough */
        alloc_flush(a);
        q = a->f(a->ud, p, osize, nsize);
    }
    return q;
}

static const char ALLOC_KEY = 0;  /* registry: the userdata whose __gc removes the cache */

/* Run at lua_close (class_at_close), before any object is freed, so the
 * frees after this one go straight to the wrapped allocator. */
static int alloc_sentinel_gc(lua_State *L) {
    void *ud;
    if (lua_getallocf(L, &ud) != alloc_cached) return 0;   /* replaced after us: leave it */
    alloc_cache *a = ud;
    lua_setallocf(L, a->f, a->ud);
    alloc_flush(a);
    a->f(a->ud, a, sizeof *a, 0);
    return 0;
}

void alloc_open(lua_State *L) {
    void *oud;
    lua_Alloc of = lua_getallocf(L, &oud);
    if (of == alloc_cached) return;
    ALLOC_PROBE();
    alloc_cache *a = of(oud, NULL, 0, sizeof *a);
    if (!a) return;               /* run without the cache */
    *a = (alloc_cache){.f = of, .ud = oud};
    class_at_close(L, &ALLOC_KEY, alloc_sentinel_gc);
    lua_setallocf(L, alloc_cached, a);
}

size_t alloc_cached_bytes(lua_State *L) {
    void *ud;
    if (lua_getallocf(L, &ud) != alloc_cached) return 0;
    alloc_cache *a = ud;
    return a->small_bytes + a->large_bytes;
}

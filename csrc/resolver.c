/* resolver.c - the c-ares resolver. A channel (one per net.dns resolver)
 * is driven by the coronet loop: c-ares reports its sockets through
 * sock_state_cb and the loop serves them itself (handle.on_event), and a
 * loop hook runs c-ares's timeouts. A lookup parks its task; the c-ares
 * callback only stores the answer and wakes the task, and the result is
 * built when the task resumes (dnsresult.c), outside any c-ares call.
 *
 * Cancellation: c-ares has no per-query cancel, and ares_cancel or
 * ares_destroy called from inside a callback is a double free in 1.18.1.
 * So a ctx or deadline wakes the task at once and marks its request
 * abandoned; the request stays on the channel's list until c-ares calls
 * back, which then frees it and drops the answer. ares_destroy runs only
 * from close and __gc, never from a callback or the loop's dispatch.
 *
 * Attempts are retried here, one c-ares try each, so every try waits the
 * configured timeout (c-ares doubles it from one try to the next). At most
 * max_inflight queries are out at once; more wait in a FIFO queue, so a
 * burst of lookups doesn't overflow the server's or our UDP buffer. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <sys/stat.h>
#include <ares.h>
#include "lauxlib.h"
#include "modules.h"
#include "addr.h"
#include "class.h"
#include "errors.h"
#include "loop.h"
#include "resolver.h"

#define DNSCHAN_MT "coronet.dns.channel"
#define DNS_TCP_DRAIN 64        /* bound on re-reads of a TCP socket per event */

/* QUEUED: waiting for a slot; PENDING: c-ares runs it; DONE: answered,
 * its task not yet resumed; ABANDONED: c-ares runs it, nobody waits. */
enum { REQ_QUEUED, REQ_PENDING, REQ_DONE, REQ_ABANDONED };

static const char *const dns_kinds[] = {"host", "ip", "cname", "mx", "txt", "srv", "ns",
                                        "ptr", NULL};
static const int dns_qtypes[] = {0, 0, 0, ns_t_mx, ns_t_txt, ns_t_srv, ns_t_ns, 0};

struct dnschan;

/* dnssock: a socket c-ares opened, registered with the loop. Freed only
 * after the loop's dispatch (see dnschan_reap): a batch of events may
 * still name one that c-ares closed earlier in the same batch. */
typedef struct dnssock {
    handle h;                   /* first: the loop hands us &h */
    struct dnschan *ch;
    struct dnssock *next;       /* in ch->socks, or ch->dead once closed */
    int fd;
    uint8_t want_w, tcp, closed;
} dnssock;

/* dnsreq: one lookup, from its start until its task consumed it or, if
 * abandoned, until c-ares called back. */
typedef struct dnsreq {
    struct dnsreq *prev, *next; /* in ch->reqs */
    struct dnsreq *qnext;       /* in ch's queue while QUEUED */
    struct dnschan *ch;
    task *waiter;               /* the parked task, or NULL */
    uint8_t kind, state, weight, attempt;
    int family;                 /* host, ip: 0, 4 or 6 */
    int status;                 /* ARES_* once done */
    struct ares_addrinfo *ai;   /* host, ip, cname */
    unsigned char *abuf;        /* mx, txt, srv, ns, ptr: a copy of the answer */
    int alen;
    ipaddr addr;                /* ptr: the address */
    char *name;                 /* the name queried (ptr: the reverse name) */
} dnsreq;

typedef struct dnschan {
    ares_channel ares;          /* NULL once closed */
    loop *lp;
    loop_hook hook;
    dnssock *socks, *dead;
    dnsreq *reqs;               /* every live request */
    dnsreq *qhead, *qtail;      /* QUEUED requests, oldest first */
    int npending;               /* PENDING or ABANDONED: c-ares still runs them */
    int inflight;               /* their weight: queries on the wire */
    int max_inflight;
    int nwaiting;               /* with a parked task */
    int nabandoned, nqueued, nsocks;
    int attempts;
    int nservers;               /* at least 1 */
    int finalizing;             /* __gc: wake nobody, free everything */
    double try_timeout;         /* seconds per try */
    double next_check;          /* when c-ares's timeouts must next be run */
} dnschan;

/* ---- requests ------------------------------------------------------- */

static dnsreq *req_new(dnschan *ch, int kind) {
    dnsreq *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->ch = ch;
    r->kind = (uint8_t)kind;
    r->next = ch->reqs;
    if (ch->reqs) ch->reqs->prev = r;
    ch->reqs = r;
    return r;
}

/* Drop what an earlier try left, before a retry. */
static void req_clear(dnsreq *r) {
    if (r->ai) ares_freeaddrinfo(r->ai);
    free(r->abuf);
    r->ai = NULL;
    r->abuf = NULL;
    r->alen = 0;
}

static void req_free(dnsreq *r) {
    dnschan *ch = r->ch;
    if (r->prev) r->prev->next = r->next;
    else ch->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    req_clear(r);
    free(r->name);
    free(r);
}

static void req_wake(dnsreq *r) {
    dnschan *ch = r->ch;
    if (!r->waiter) return;
    task *t = r->waiter;
    r->waiter = NULL;
    ch->nwaiting--;
    if (!ch->finalizing) task_wake(t, WAKE_READY);
}

/* A c-ares callback's common end: record status, then free the request
 * if its task gave up on it, else wake the task (never resume it here). */
static void req_finish(dnsreq *r, int status) {
    dnschan *ch = r->ch;
    ch->npending--;
    ch->inflight -= r->weight;
    r->status = status;
    if (r->state == REQ_ABANDONED) {
        ch->nabandoned--;
        req_free(r);
        return;
    }
    r->state = REQ_DONE;
    req_wake(r);
}

static void req_unqueue(dnsreq *r) {
    dnschan *ch = r->ch;
    dnsreq **p = &ch->qhead, *prev = NULL;
    while (*p != r) {
        prev = *p;
        p = &(*p)->qnext;
    }
    *p = r->qnext;
    if (ch->qtail == r) ch->qtail = prev;
    r->qnext = NULL;
    ch->nqueued--;
}

/* The task stops waiting for r (ctx, deadline): free it now unless c-ares
 * still runs it, then leave it for the callback. */
static void req_abandon(dnsreq *r) {
    dnschan *ch = r->ch;
    if (r->waiter) {
        r->waiter = NULL;
        ch->nwaiting--;
    }
    if (r->state == REQ_QUEUED) req_unqueue(r);
    if (r->state != REQ_PENDING) {
        req_free(r);
        return;
    }
    r->state = REQ_ABANDONED;
    ch->nabandoned++;
}

static void dns_addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai) {
    dnsreq *r = arg;
    (void)timeouts;
    if (r->state == REQ_ABANDONED) {
        if (ai) ares_freeaddrinfo(ai);
    } else {
        r->ai = ai;
    }
    req_finish(r, status);
}

static void dns_query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
    dnsreq *r = arg;
    (void)timeouts;
    if (status == ARES_SUCCESS && r->state != REQ_ABANDONED && abuf && alen > 0) {
        r->abuf = malloc((size_t)alen);
        if (r->abuf) {
            memcpy(r->abuf, abuf, (size_t)alen);
            r->alen = alen;
        } else {
            status = ARES_ENOMEM;
        }
    }
    req_finish(r, status);
}

/* ---- starting queries ----------------------------------------------- */

static void dnschan_soon(dnschan *ch, double now) {
    double t = now + ch->try_timeout;
    if (ch->next_check <= 0 || t < ch->next_check) ch->next_check = t;
}

/* Hand r to c-ares; its callback may run before this returns. */
static void dnschan_submit(dnschan *ch, dnsreq *r) {
    r->state = REQ_PENDING;
    ch->npending++;
    ch->inflight += r->weight;
    dnschan_soon(ch, loop_now());
    if (r->kind == DNS_PTR) {            /* not ares_gethostbyaddr: it turns every failure into ENOTFOUND */
        ares_query(ch->ares, r->name, ns_c_in, ns_t_ptr, dns_query_cb, r);
    } else if (r->kind <= DNS_CNAME) {
        struct ares_addrinfo_hints hints = {ARES_AI_NOSORT, AF_UNSPEC, 0, 0};
        if (r->family == 4) hints.ai_family = AF_INET;
        if (r->family == 6) hints.ai_family = AF_INET6;
        if (r->kind == DNS_CNAME) hints.ai_flags |= ARES_AI_CANONNAME;
        ares_getaddrinfo(ch->ares, r->name, NULL, &hints, dns_addrinfo_cb, r);
    } else {
        ares_search(ch->ares, r->name, ns_c_in, dns_qtypes[r->kind], dns_query_cb, r);
    }
}

/* Start queued requests while there is room (always one when none is out). */
static void dnschan_pump(dnschan *ch) {
    while (ch->qhead && ch->ares &&
           (ch->inflight == 0 || ch->inflight + ch->qhead->weight <= ch->max_inflight)) {
        dnsreq *r = ch->qhead;
        req_unqueue(r);
        dnschan_submit(ch, r);
    }
}

/* Start r now, or queue it behind the others. */
static void dnschan_start(dnschan *ch, dnsreq *r) {
    r->status = 0;
    r->state = REQ_QUEUED;
    r->qnext = NULL;
    if (ch->qtail) ch->qtail->qnext = r;
    else ch->qhead = r;
    ch->qtail = r;
    ch->nqueued++;
    dnschan_pump(ch);
}

/* ---- sockets: c-ares's fds in the coronet poller -------------------- */

static int dns_fd_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* on_event for a c-ares socket. The poller is edge-triggered, and c-ares
 * reads a TCP answer's length and its body in separate calls, so a TCP
 * socket is re-read while it stays readable. */
static void dnssock_event(handle *h, int what) {
    dnssock *s = (dnssock *)h;
    dnschan *ch = s->ch;
    if (s->closed || !ch->ares) return;
    ares_socket_t rfd = (what & POLLER_IN) ? s->fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (what & POLLER_OUT) && s->want_w ? s->fd : ARES_SOCKET_BAD;
    if (rfd == ARES_SOCKET_BAD && wfd == ARES_SOCKET_BAD) return;
    ares_process_fd(ch->ares, rfd, wfd);
    for (int i = 0; i < DNS_TCP_DRAIN && s->tcp && !s->closed && dns_fd_readable(s->fd); i++)
        ares_process_fd(ch->ares, s->fd, ARES_SOCKET_BAD);
    dnschan_soon(ch, loop_now());            /* c-ares may have sent a retry */
}

static dnssock *dnssock_find(dnschan *ch, int fd) {
    for (dnssock *s = ch->socks; s; s = s->next)
        if (s->fd == fd) return s;
    return NULL;
}

static void dnssock_close(dnschan *ch, dnssock *s) {
    dnssock **p = &ch->socks;
    while (*p != s) p = &(*p)->next;
    *p = s->next;
    handle_unwatch(&s->h);
    s->closed = 1;
    s->next = ch->dead;
    ch->dead = s;
    ch->nsocks--;
}

static void dnssock_open(dnschan *ch, int fd, int w) {
    dnssock *s = calloc(1, sizeof *s);
    if (!s) return;                          /* unwatched: its query times out */
    int type = 0;
    socklen_t n = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n);
    s->ch = ch;
    s->fd = fd;
    s->tcp = type == SOCK_STREAM;
    s->want_w = (uint8_t)w;
    if (handle_watch(&s->h, ch->lp, fd, dnssock_event)) {
        free(s);
        return;
    }
    s->next = ch->socks;
    ch->socks = s;
    ch->nsocks++;
}

/* c-ares's sock_state_cb: r = w = 0 comes just before it closes fd. */
static void dnschan_sock_state(void *data, ares_socket_t fd, int r, int w) {
    dnschan *ch = data;
    dnssock *s = dnssock_find(ch, fd);
    if (!r && !w) {
        if (s) dnssock_close(ch, s);
        return;
    }
    if (!s) {
        dnssock_open(ch, fd, w);
        return;
    }
    if (w && !s->want_w) {
        /* re-register: an edge-triggered poller reports a socket that is
         * already writable only when it is added */
        handle_unwatch(&s->h);
        handle_watch(&s->h, ch->lp, fd, dnssock_event); /* on failure its query times out */
    }
    s->want_w = (uint8_t)w;
}

/* Free the sockets c-ares closed; only between dispatches. */
static void dnschan_reap(dnschan *ch) {
    while (ch->dead) {
        dnssock *s = ch->dead;
        ch->dead = s->next;
        free(s);
    }
}

/* ---- the loop hook -------------------------------------------------- */

#define DNSCHAN_OF(hk) ((dnschan *)((char *)(hk) - offsetof(dnschan, hook)))

/* The absolute time of c-ares's next timeout (exact: walks its queries). */
static double dnschan_timeout_at(dnschan *ch, double now) {
    struct timeval tv, *tp = ares_timeout(ch->ares, NULL, &tv);
    if (!tp) return now + 3600;
    return now + (double)tp->tv_sec + (double)tp->tv_usec * 1e-6;
}

static double dnschan_next_deadline(loop_hook *hk) {
    dnschan *ch = DNSCHAN_OF(hk);
    if (!ch->ares || !ch->npending) return 0;
    ch->next_check = dnschan_timeout_at(ch, loop_now());
    return ch->next_check;
}

/* After each dispatch: run c-ares's timeouts when due, start queued
 * requests, free the sockets c-ares closed. */
static void dnschan_tick(loop_hook *hk, double now) {
    dnschan *ch = DNSCHAN_OF(hk);
    if (ch->ares && ch->npending && now >= ch->next_check) {
        ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        ch->next_check = ch->npending ? dnschan_timeout_at(ch, loop_now()) : 0;
    }
    dnschan_pump(ch);
    dnschan_reap(ch);
}

static int dnschan_busy(loop_hook *hk) {
    return DNSCHAN_OF(hk)->nwaiting > 0;
}

/* ---- the channel ------------------------------------------------------ */

static dnschan *dnschan_check(lua_State *L) {
    return luaL_checkudata(L, 1, DNSCHAN_MT);
}

/* Destroy the c-ares channel (never from a callback). Queries end with
 * ARES_EDESTRUCTION and queued requests with it too: their tasks wake and
 * report "closed", unless this is __gc, when no task can run again and
 * every request is freed. */
static void dnschan_release(dnschan *ch, int finalizing) {
    if (!ch->ares) return;
    ch->finalizing = finalizing;
    ares_destroy(ch->ares);
    ch->ares = NULL;
    loop_remove_hook(ch->lp, &ch->hook);
    while (ch->qhead) {
        dnsreq *r = ch->qhead;
        req_unqueue(r);
        r->state = REQ_DONE;
        r->status = ARES_EDESTRUCTION;
        req_wake(r);
    }
    while (ch->socks) dnssock_close(ch, ch->socks);
    dnschan_reap(ch);
    while (finalizing && ch->reqs) req_free(ch->reqs);
}

static int dnschan_gc(lua_State *L) {
    dnschan_release(dnschan_check(L), 1);
    return 0;
}

/* ch:close() -> true | nil, ErrClosed: lookups in flight fail "closed". */
static int dnschan_close(lua_State *L) {
    dnschan *ch = dnschan_check(L);
    if (!ch->ares) {
        operr e = {"close", NULL, NULL, NULL, NULL, NULL, 0};
        return errors_fail(L, &e, ERR_CLOSED);
    }
    dnschan_release(ch, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/* The search list option as a char * array (strings stay in the table). */
static int dnschan_domains(lua_State *L, int idx, const char **out, int max) {
    int n = (int)luaL_len(L, idx);
    luaL_argcheck(L, n <= max, 1, "search: too many domains");
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        out[i] = luaL_checkstring(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

static int dnschan_optint(lua_State *L, const char *k, int def) {
    lua_getfield(L, 1, k);
    int v = lua_isnil(L, -1) ? def : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

static int dnschan_nservers(dnschan *ch) {
    struct ares_addr_port_node *list = NULL;
    int n = 0;
    if (ares_get_servers_ports(ch->ares, &list) == ARES_SUCCESS)
        for (struct ares_addr_port_node *p = list; p; p = p->next) n++;
    ares_free_data(list);
    return n;
}

/* Fill the ares_options from the option table at 1; returns the mask. */
static int dnschan_options(lua_State *L, struct ares_options *o, const char **domains,
                           double timeout) {
    static char lookups[] = "b";             /* hosts files are read in Lua */
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
    o->timeout = (int)(timeout * 1000 + 0.5);
    if (o->timeout < 1) o->timeout = 1;
    o->tries = 1;                            /* attempts are retried by the task */
    o->lookups = lookups;
    o->ndots = dnschan_optint(L, "ndots", -1);
    if (o->ndots >= 0) mask |= ARES_OPT_NDOTS;
    lua_getfield(L, 1, "rotate");
    if (!lua_isnil(L, -1)) mask |= lua_toboolean(L, -1) ? ARES_OPT_ROTATE : ARES_OPT_NOROTATE;
    lua_getfield(L, 1, "search");
    if (lua_istable(L, -1)) {
        o->ndomains = dnschan_domains(L, lua_gettop(L), domains, 16);
        o->domains = (char **)domains;
        mask |= ARES_OPT_DOMAINS;
    }
    lua_pop(L, 2);
    o->socket_receive_buffer_size = dnschan_optint(L, "rcvbuf", 0);
    if (o->socket_receive_buffer_size > 0) mask |= ARES_OPT_SOCK_RCVBUF;
    return mask;
}

/* Make ch's c-ares channel and set its servers (csv, unless NULL). */
static int dnschan_init(dnschan *ch, struct ares_options *o, int mask, const char *csv) {
    int st = ares_init_options(&ch->ares, o, mask);
    if (st != ARES_SUCCESS) {
        ch->ares = NULL;
        return st;
    }
    if (csv && (st = ares_set_servers_ports_csv(ch->ares, csv)) != ARES_SUCCESS) {
        ares_destroy(ch->ares);              /* no query yet: no callback runs */
        ch->ares = NULL;
    }
    return st;
}

/* core.dns_channel{servers =, timeout =, attempts =, rotate =, search =,
 * ndots =, rcvbuf =, max_inflight =} -> channel | nil, code, detail: a
 * c-ares channel configured from /etc/resolv.conf, then from the options.
 * servers is c-ares's CSV ("127.0.0.1:5353,[::1]:53"); timeout is seconds
 * per try, attempts the tries per server. */
static int dns_channel(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "timeout");
    double timeout = luaL_optnumber(L, -1, 5);
    lua_getfield(L, 1, "servers");
    const char *csv = lua_tostring(L, -1);      /* stays on the stack */
    luaL_argcheck(L, timeout > 0, 1, "timeout must be positive");
    int attempts = dnschan_optint(L, "attempts", 2);
    int max_inflight = dnschan_optint(L, "max_inflight", 128);
    luaL_argcheck(L, attempts >= 1 && attempts <= 255, 1, "attempts must be 1..255");
    luaL_argcheck(L, max_inflight >= 1, 1, "max_inflight must be positive");
    const char *domains[16];
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = dnschan_options(L, &o, domains, timeout);
    dnschan *ch = lua_newuserdatauv(L, sizeof *ch, 0);
    memset(ch, 0, sizeof *ch);
    luaL_setmetatable(L, DNSCHAN_MT);
    ch->lp = loop_get(L);
    o.sock_state_cb = dnschan_sock_state;
    o.sock_state_cb_data = ch;
    int st = dnschan_init(ch, &o, mask, csv);
    if (st == ARES_SUCCESS && dnschan_nservers(ch) == 1) {
        /* A single server leaves nothing to fail over to: let its SERVFAIL
         * and REFUSED answers through, or c-ares 1.18 reports both as
         * "could not contact DNS servers". */
        ares_destroy(ch->ares);
        o.flags |= ARES_FLAG_NOCHECKRESP;
        st = dnschan_init(ch, &o, mask | ARES_OPT_FLAGS, csv);
    }
    if (st != ARES_SUCCESS) return dns_fail(L, csv ? "badserver" : "init", ares_strerror(st));
    ch->try_timeout = o.timeout / 1000.0;
    ch->attempts = attempts;
    ch->nservers = dnschan_nservers(ch);
    if (ch->nservers < 1) ch->nservers = 1;
    ch->max_inflight = max_inflight;
    ch->hook.next_deadline = dnschan_next_deadline;
    ch->hook.tick = dnschan_tick;
    ch->hook.busy = dnschan_busy;
    loop_add_hook(ch->lp, &ch->hook);
    return 1;
}

/* ch:server() -> "ip:port" | nil: the first server, for error messages. */
static int dnschan_server(lua_State *L) {
    dnschan *ch = dnschan_check(L);
    struct ares_addr_port_node *list = NULL;
    if (!ch->ares || ares_get_servers_ports(ch->ares, &list) != ARES_SUCCESS || !list) {
        ares_free_data(list);
        return 0;
    }
    char ip[INET6_ADDRSTRLEN];
    int port = list->udp_port ? list->udp_port : NAMESERVER_PORT;
    inet_ntop(list->family, &list->addr, ip, sizeof ip);
    if (list->family == AF_INET6) lua_pushfstring(L, "[%s]:%d", ip, port);
    else lua_pushfstring(L, "%s:%d", ip, port);
    ares_free_data(list);
    return 1;
}

static void dnschan_setint(lua_State *L, const char *k, int v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* ch:stats() -> {pending, queued, waiting, abandoned, sockets, requests}. */
static int dnschan_stats(lua_State *L) {
    dnschan *ch = dnschan_check(L);
    int nreq = 0;
    for (dnsreq *r = ch->reqs; r; r = r->next) nreq++;
    lua_createtable(L, 0, 6);
    dnschan_setint(L, "pending", ch->npending);
    dnschan_setint(L, "queued", ch->nqueued);
    dnschan_setint(L, "waiting", ch->nwaiting);
    dnschan_setint(L, "abandoned", ch->nabandoned);
    dnschan_setint(L, "sockets", ch->nsocks);
    dnschan_setint(L, "requests", nreq);
    return 1;
}

/* ---- lookups -------------------------------------------------------- */

static int dns_push_result(lua_State *L, const dnsreq *r) {
    if (r->status != ARES_SUCCESS) return dns_fail(L, dns_code(r->status), NULL);
    switch (r->kind) {
    case DNS_HOST: return dns_push_ai(L, r->ai, 0);
    case DNS_IP: return dns_push_ai(L, r->ai, 1);
    case DNS_CNAME: return dns_push_canon(L, r->ai, r->name);
    default: return dns_push_answer(L, r->kind, r->abuf, r->alen, &r->addr);
    }
}

static int dnschan_lookup_k(lua_State *L, int status, lua_KContext kctx);

/* Park until r is done (stack: 5 deadline, 6 ctx or nil). */
static int dnschan_wait(lua_State *L, dnsreq *r) {
    if (r->state == REQ_DONE) return dnschan_lookup_k(L, LUA_OK, (lua_KContext)r);
    task *t = task_current(L);
    r->waiter = t;
    r->ch->nwaiting++;
    return task_park_ctx(L, t, NULL, lua_tonumber(L, 5), PARK_LOOKUP, lua_isnil(L, 6) ? 0 : 6,
                         (lua_KContext)r, dnschan_lookup_k);
}

static int dnschan_lookup_k(lua_State *L, int status, lua_KContext kctx) {
    dnsreq *r = (dnsreq *)kctx;
    dnschan *ch = r->ch;
    int ctxidx = lua_isnil(L, 6) ? 0 : 6;
    int cause = task_resume_cause(L, task_current(L), status, ctxidx);
    if (cause) {
        req_abandon(r);
        return dns_fail(L, cause == ERR_CTX ? "ctx" : "timeout", NULL);
    }
    if (r->status == ARES_ETIMEOUT && ++r->attempt < ch->attempts && ch->ares) {
        req_clear(r);                            /* the next attempt */
        dnschan_start(ch, r);
        return dnschan_wait(L, r);
    }
    int n = dns_push_result(L, r);
    req_free(r);
    return n;
}

/* Make the request for the arguments (kind at 2, name or Addr at 3). */
static dnsreq *dnschan_request(lua_State *L, dnschan *ch, int kind) {
    dnsreq *r = req_new(ch, kind);
    if (!r) return NULL;
    r->family = (int)luaL_optinteger(L, 4, 0);
    r->weight = kind <= DNS_CNAME && r->family == 0 ? 2 : 1;  /* A and AAAA */
    char rev[DNS_REVERSE_LEN];
    if (kind == DNS_PTR) {
        r->addr = *ipaddr_test(L, 3);
        dns_reverse_name(&r->addr, rev);
    }
    if (!(r->name = strdup(kind == DNS_PTR ? rev : lua_tostring(L, 3)))) {
        req_free(r);
        return NULL;
    }
    return r;
}

/* ch:_lookup(kind, name, family, deadline, ctx) -> result(s) | nil, code:
 * kind is "host", "ip" (family 0, 4 or 6), "cname", "mx", "txt", "srv",
 * "ns" (name a string) or "ptr" (name a net.ip Addr). The wait ends at
 * the answer, after attempts tries of timeout each per server (a bound
 * counted from the call, so it holds while the lookup waits in the queue
 * behind max_inflight too), at the deadline (absolute, 0: none) or when
 * ctx ends, whichever comes first. */
static int dnschan_lookup(lua_State *L) {
    dnschan *ch = dnschan_check(L);
    int kind = luaL_checkoption(L, 2, NULL, dns_kinds);
    size_t len = 0;
    if (kind == DNS_PTR) luaL_argcheck(L, ipaddr_test(L, 3) != NULL, 3, "net.ip Addr expected");
    else luaL_checklstring(L, 3, &len);
    task *t = task_current(L);
    if (!t) return loop_block(L, dnschan_lookup, lua_gettop(L));
    lua_settop(L, 6);
    int ctxidx = ctx_find(L, 6);
    if (!ctxidx) {
        lua_pushnil(L);
        lua_replace(L, 6);
    }
    /* The documented bound, timeout x attempts x #servers from now, holds
     * for a lookup queued behind max_inflight too, not only on the wire. */
    double dl = luaL_optnumber(L, 5, 0);
    double bound = loop_now() + ch->try_timeout * ch->attempts * ch->nservers;
    lua_pushnumber(L, dl > 0 && dl < bound ? dl : bound);
    lua_replace(L, 5);
    if (ctx_ended(L, ctxidx)) return dns_fail(L, "ctx", NULL);
    if (!ch->ares) return dns_fail(L, "closed", NULL);
    if (kind != DNS_PTR && strlen(lua_tostring(L, 3)) != len) return dns_fail(L, "badname", NULL);
    if (handle_deadline_passed(lua_tonumber(L, 5))) return dns_fail(L, "timeout", NULL);
    dnsreq *r = dnschan_request(L, ch, kind);
    if (!r) return dns_fail(L, "nomem", NULL);
    dnschan_start(ch, r);
    return dnschan_wait(L, r);
}

/* ---- helpers without a channel -------------------------------------- */

/* core.dns_port(service, proto) -> port | nil: /etc/services. */
static int dns_port(lua_State *L) {
    const char *service = luaL_checkstring(L, 1), *proto = luaL_checkstring(L, 2);
    struct servent se, *res = NULL;
    char buf[1024];
    if (getservbyname_r(service, proto, &se, buf, sizeof buf, &res) != 0 || !res) return 0;
    lua_pushinteger(L, ntohs((uint16_t)res->s_port));
    return 1;
}

/* core.dns_stat(path) -> mtime, size | nil: for the hosts file cache. */
static int dns_stat(lua_State *L) {
    struct stat st;
    if (stat(luaL_checkstring(L, 1), &st) < 0) return 0;
    lua_pushnumber(L, (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9);
    lua_pushinteger(L, (lua_Integer)st.st_size);
    return 2;
}

static const luaL_Reg dnschan_methods[] = {
    {"_lookup", dnschan_lookup},
    {"close", dnschan_close},
    {"server", dnschan_server},
    {"stats", dnschan_stats},
    {NULL, NULL}
};

static const luaL_Reg dnschan_meta[] = {
    {"__close", dnschan_close},
    {"__gc", dnschan_gc},
    {NULL, NULL}
};

static const luaL_Reg resolver_funcs[] = {
    {"dns_channel", dns_channel},
    {"dns_port", dns_port},
    {"dns_stat", dns_stat},
    {NULL, NULL}
};

/* resolver_open: register the channel type and add the resolver
 * functions (c-ares and system) to the core table on top of the stack. */
int resolver_open(lua_State *L) {
    static int ares_ready;
    if (!ares_ready) ares_ready = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
    class_register(L, DNSCHAN_MT, dnschan_meta, dnschan_methods);
    luaL_setfuncs(L, resolver_funcs, 0);
    return sysresolve_open(L);
}

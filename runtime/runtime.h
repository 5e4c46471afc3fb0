/*
** runtime.h: what runtime/ offers to bindings/.  Nothing here is part of
** the public contract (that is gilua.h); runtime/'s own structures are in
** internal.h, which bindings never include.
**
** The rules every binding follows:
** - Every function here is called with the GIL held, unless its comment
**   says otherwise.
** - A binding never blocks with the GIL held: it tries first, and waits
**   only through this header (gilua__wait, gilua__wait_for, gilua__sleep,
**   gilua__poll, or a gilua_block region), which owns the deadline, the
**   release and re-take of the GIL, and what an interrupt does.
** - Any allocation may run a finalizer, and a finalizer may let go of the
**   GIL: a binding never leaves its own state half-updated across an
**   allocation or a call into Lua.
*/
#ifndef GILUA_RUNTIME_H
#define GILUA_RUNTIME_H

#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"
#include "gilua.h"

#define GILUA_HIDDEN __attribute__((visibility("hidden")))

#define GILUA_FOREVER INT64_MAX        /* a deadline that never comes */
#define GILUA_TIMEOUT_MAX 9223372036.0 /* seconds, as CPython on Linux */

typedef struct gilua_universe gilua_universe;

/* Why a thread let go of the GIL (statistics and traces use these). */
typedef enum gilua_reason {
  GILUA_DROP_SWITCH,  /* forced: the switch interval ran out for a waiter */
  GILUA_DROP_SLEEP,   /* time.sleep */
  GILUA_DROP_WAIT,    /* a lock, condition, queue or event wait */
  GILUA_DROP_JOIN,    /* Thread:join */
  GILUA_DROP_IO,      /* a blocking I/O call */
  GILUA_DROP_HOST,    /* GILUA_BEGIN_ALLOW_THREADS in host code */
  GILUA_DROP_EXIT,    /* the thread ended */
  GILUA_DROP_YIELD,   /* time.sleep(0): a yield, not a wait */
  GILUA_DROP_PREEMPT, /* forced: a thread back from a wait asked (fair) */
  GILUA_DROP_COUNT
} gilua_reason;

/* {====================================================================
** Universes and the calling thread
** ===================================================================== */

GILUA_HIDDEN gilua_universe *gilua__universe(lua_State *L);
/* A new state with a universe around it (no library opened); NULL when
** out of memory.  The calling thread is its main thread, holding the GIL. */
GILUA_HIDDEN lua_State *gilua__universe_new(void);
/* Makes a universe around a state made by someone else (threading.so). */
GILUA_HIDDEN gilua_universe *gilua__universe_attach(lua_State *L, int borrowed);
/* From now on only the caller runs Lua (threading.so's exit). */
GILUA_HIDDEN void gilua__universe_freeze(lua_State *L);
/* The calling OS thread's tstate in L's universe; aborts if it has none. */
GILUA_HIDDEN gilua_tstate *gilua__self(lua_State *L);
/* The universe's main thread. */
GILUA_HIDDEN gilua_tstate *gilua__main(gilua_universe *u);
/* Whether the universe was made around a state gilua did not create (the
** stock lua5.4 loading threading.so). */
GILUA_HIDDEN int gilua__borrowed(gilua_universe *u);
/* Whether the universe is closing: only the caller still runs Lua (a
** finalizer run by lua_close). */
GILUA_HIDDEN int gilua__closing(lua_State *L);
/* Thread.stack_size's setting (0: the system default). */
GILUA_HIDDEN size_t gilua__stack_size(gilua_universe *u);
GILUA_HIDDEN void gilua__set_stack_size(gilua_universe *u, size_t bytes);
/* The next number N of a "Thread-N" name. */
GILUA_HIDDEN lua_Integer gilua__next_name(gilua_universe *u);

/* Registers the function on the top (popped) to run once when the
** program ends, before its threads are joined (the executors' shutdown). */
GILUA_HIDDEN void gilua__atexit(lua_State *L);

/* }==================================================================== */

/* {====================================================================
** Clock
** ===================================================================== */

/* Monotonic nanoseconds.  Any thread, no GIL needed. */
GILUA_HIDDEN int64_t gilua__now(void);
/* The deadline 'seconds' from now; < 0 (or beyond 30 years): forever. */
GILUA_HIDDEN int64_t gilua__deadline(double seconds);

/* }==================================================================== */

/* {====================================================================
** Waiting
**
** Every wait follows one of three rules for an interrupt (Ctrl-C or
** gilua_interrupt, delivered to the main thread):
**   GILUA_RAISE  raise "interrupted!" now (after the wait has undone
**                everything it did);
**   GILUA_DEFER  return GILUA_EINTR and leave the interrupt pending: the
**                caller cleans up, then raises with gilua__check_interrupt
**                (or the hook raises at the next Lua instruction);
**   GILUA_NOINTR keep waiting; the interrupt stays pending.
** Results: 0 (woken, ready), GILUA_ETIMEDOUT, GILUA_EINTR (DEFER only),
** GILUA_ECLOSED (a handle the wait used was closed meanwhile).  A wait
** that could never end, because the universe is closing and no other
** thread runs any more (a finalizer run by lua_close), raises at once,
** as CPython's join and acquire do at finalization (gh-123940).
** ===================================================================== */

enum { GILUA_RAISE = 0, GILUA_DEFER = 1, GILUA_NOINTR = 2 };
enum { GILUA_ETIMEDOUT = 1, GILUA_EINTR, GILUA_ECLOSED, GILUA_ESHUTDOWN };

/* A queue of threads waiting for something guarded by the GIL.  A waiter
** lives on the stack of the thread that waits; queues are touched only
** with the GIL held.  'notified' is also read by the waiter while it
** parks without the GIL, hence atomic.  Bindings never touch the fields. */
typedef struct gilua_waiter {
  gilua_tstate *ts;
  struct gilua_waiter *prev, *next;
  atomic_int notified;
} gilua_waiter;

typedef struct gilua_waitq {
  gilua_waiter *head, *tail;
} gilua_waitq;

#define GILUA_WAITQ_INIT                                                       \
  { NULL, NULL }
GILUA_HIDDEN int gilua__waitq_empty(const gilua_waitq *q);

/* Queues the caller on q, lets go of the GIL until notified or the
** deadline, and takes it back.  0 when notified. */
GILUA_HIDDEN int gilua__wait(lua_State *L, gilua_waitq *q, int64_t deadline,
                             gilua_reason why, int intr);
/* Waits on q until ready(ud) holds (0) or the deadline passes
** (GILUA_ETIMEDOUT; ready is looked at once more first).  ready() is
** called with the GIL held and must not touch the Lua stack. */
GILUA_HIDDEN int gilua__wait_for(lua_State *L, gilua_waitq *q, int64_t deadline,
                                 gilua_reason why, int intr,
                                 int (*ready)(void *ud), void *ud);
/* Wakes up to n waiters of q (all when n < 0), oldest first; how many. */
GILUA_HIDDEN int gilua__notify(gilua_waitq *q, int n);
/* Sleeps without the GIL; 0, or GILUA_EINTR (DEFER). */
GILUA_HIDDEN int gilua__sleep(lua_State *L, double seconds, int intr);
/* Raises "interrupted!" if an interrupt is pending for the caller. */
GILUA_HIDDEN void gilua__check_interrupt(lua_State *L);

/* }==================================================================== */

/* {====================================================================
** Handles used without the GIL (files, sockets)
**
** A thread that uses a handle without the GIL is 'busy' on it.  close()
** from another thread marks the handle closing, wakes every busy thread
** (their polls end at once), waits until they have all left, and only
** then frees the resource; the woken threads return the closed result.
** ===================================================================== */

typedef struct gilua_handle {
  int busy;                /* threads using it without the GIL (GIL) */
  atomic_int closing;      /* close has begun: users leave at once */
  gilua_waitq users, idle; /* the busy threads; closers waiting for them */
} gilua_handle;

GILUA_HIDDEN void gilua__handle_init(gilua_handle *h);
/* Marks h closing, wakes its users and waits until none is left. */
GILUA_HIDDEN void gilua__handle_close(lua_State *L, gilua_handle *h);
GILUA_HIDDEN int gilua__handle_closing(gilua_handle *h);

/*
** A region where the calling thread blocks without the GIL, optionally
** busy on a handle:
**
**   gilua_block b;
**   gilua__block_begin(L, &b, h, GILUA_DROP_IO);
**     r = gilua__block_poll(&b, fds, n, deadline);   -- no Lua API here
**   gilua__block_end(&b);
**
** Inside the region there is no Lua API call and no Lua-owned memory
** (other threads run the collector meanwhile); errno is preserved by
** begin and end.
*/
typedef struct gilua_block {
  gilua_tstate *ts;
  gilua_handle *h;
  gilua_waiter w; /* the thread's place among h's users */
  int intr;       /* the interrupt rule of its polls (GILUA_RAISE) */
} gilua_block;

GILUA_HIDDEN void gilua__block_begin(lua_State *L, gilua_block *b,
                                     gilua_handle *h, gilua_reason why);
GILUA_HIDDEN void gilua__block_end(gilua_block *b);
/* No GIL: polls fds and the thread's wake-up; 0 when an fd is ready,
** GILUA_ETIMEDOUT, GILUA_EINTR (interrupt pending) or GILUA_ECLOSED. */
GILUA_HIDDEN int gilua__block_poll(gilua_block *b, struct pollfd *fds, int n,
                                   int64_t deadline);
/* No GIL: the fd that becomes readable when the thread must stop waiting
** (for pollers of their own, such as libcurl's), and the check to make
** when it does: 0 (a spurious wake-up, consumed), GILUA_EINTR or
** GILUA_ECLOSED. */
GILUA_HIDDEN int gilua__block_wakefd(gilua_block *b);
GILUA_HIDDEN int gilua__block_check(gilua_block *b);

/* The whole region for one poll: 0 when an fd is ready, GILUA_ETIMEDOUT,
** GILUA_ECLOSED, or the interrupt rule's result. */
GILUA_HIDDEN int gilua__poll(lua_State *L, gilua_handle *h, struct pollfd *fds,
                             int n, int64_t deadline, int intr);

/* }==================================================================== */

/* {====================================================================
** Threads
**
** A thread is NEW (made, not started), RUNNING (its OS thread exists and
** it is listed by enumerate) or DONE (its body has returned or failed).
** ===================================================================== */

typedef enum gilua_thstate {
  GILUA_TS_NEW,
  GILUA_TS_RUNNING,
  GILUA_TS_DONE
} gilua_thstate;

/* What a started OS thread runs, GIL held, on its own Lua thread 'co',
** with its Thread object (gilua__thread_pushobj) anchored. */
typedef void (*gilua_body)(lua_State *co, gilua_tstate *ts);

/* A NEW thread of L's universe named 'name'; NULL when out of memory.
** The caller's reference is given back with gilua__thread_unref. */
GILUA_HIDDEN gilua_tstate *gilua__thread_new(lua_State *L, const char *name,
                                             int daemon);
GILUA_HIDDEN void gilua__thread_unref(gilua_tstate *ts);
/* Starts ts, named 'name' in the statistics: anchors the object at 'obj'
** and a new Lua thread, makes the OS thread, and returns once it has
** begun to run (interrupts pending meanwhile are left pending).  0, or an
** errno value (ts is NEW again): ESHUTDOWN once the universe is closing. */
GILUA_HIDDEN int gilua__thread_start(lua_State *L, gilua_tstate *ts, int obj,
                                     const char *name, gilua_body body);
/* Waits until ts is DONE (1) or the deadline passes (0). */
GILUA_HIDDEN int gilua__thread_join(lua_State *L, gilua_tstate *ts,
                                    int64_t deadline);
GILUA_HIDDEN gilua_thstate gilua__thread_state(gilua_tstate *ts);
GILUA_HIDDEN int gilua__thread_daemon(gilua_tstate *ts);
GILUA_HIDDEN lua_Integer gilua__thread_ident(gilua_tstate *ts);
GILUA_HIDDEN lua_Integer gilua__thread_native_id(gilua_tstate *ts);
GILUA_HIDDEN int gilua__thread_is_main(gilua_tstate *ts);
/* The Thread object of ts (pushed: nil when it has none); giving one to
** a thread that has none (the main thread, a host thread). */
GILUA_HIDDEN int gilua__thread_pushobj(lua_State *L, gilua_tstate *ts);
GILUA_HIDDEN void gilua__thread_setobj(lua_State *L, gilua_tstate *ts, int obj);
/* Pushes an array of the Thread objects of the running threads, oldest
** first; returns how many. */
GILUA_HIDDEN int gilua__thread_list(lua_State *L);

/* }==================================================================== */

/* {====================================================================
** Coroutines and hooks (the switch requests arm the running coroutine)
** ===================================================================== */

/* Makes 'co' the coroutine the calling OS thread runs (NULL: none). */
GILUA_HIDDEN void gilua__set_running(lua_State *L, lua_State *co);
/* Runs 'f' (a lua_CFunction called on L itself) while no switch request
** can arm 'target', the GIL's own hook on it first replaced by the
** user's; returns f's result.  Then the user's hook on 'target' is
** recorded (when 'record') and pending requests re-arm.  For
** debug.sethook/gethook. */
GILUA_HIDDEN int gilua__call_unhooked(lua_State *L, lua_State *target,
                                      lua_CFunction f, int record);

/* }==================================================================== */

/* {====================================================================
** The GIL lab: statistics and traces
** ===================================================================== */

/* A copy of one thread's statistics. */
typedef struct gilua_statrec {
  char name[64];
  long id; /* the trace's track number */
  int alive;
  unsigned long long acquisitions;
  unsigned long long preemptions; /* holders it asked to step aside (fair) */
  int64_t charge_ns;              /* the GIL time charged to it (fair) */
  unsigned long long releases[GILUA_DROP_COUNT];
  int64_t wait_ns, max_wait_ns, held_ns;
} gilua_statrec;

typedef struct gilua_stats {
  gilua_statrec total; /* every thread since the last reset */
  const char *policy;  /* "fifo" or "fair" */
  unsigned long switches;
  int64_t elapsed_ns;
  double interval;
  int n;               /* records below: live threads and recent ended ones */
  gilua_statrec *recs; /* malloc'd, oldest first */
  long folded;         /* ended threads counted in 'total' only */
} gilua_stats;

/* Copies the statistics into 's' (s->recs malloc'd; free it); 0, or
** ENOMEM.  No Lua allocation happens during the copy. */
GILUA_HIDDEN int gilua__stats_get(lua_State *L, gilua_stats *s);
/* Zeroes the statistics and forgets threads that ended. */
GILUA_HIDDEN void gilua__stats_reset(lua_State *L);
GILUA_HIDDEN const char *gilua__reason_name(gilua_reason why);
/* Starts tracing to 'path'; 0, or an errno value. */
GILUA_HIDDEN int gilua__trace_start(lua_State *L, const char *path);
/* Stops the trace; whether one was running. */
GILUA_HIDDEN int gilua__trace_stop(lua_State *L);

/* }==================================================================== */

#endif

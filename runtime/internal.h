/*
** internal.h: the private interface between runtime/ and bindings/.
** Nothing here is part of the public contract (that is gilua.h).
*/
#ifndef GILUA_INTERNAL_H
#define GILUA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"
#include "gilua.h"

#define GILUA_HIDDEN __attribute__((visibility("hidden")))

#define GILUA_FOREVER INT64_MAX        /* a deadline that never comes */
#define GILUA_TIMEOUT_MAX 9223372036.0 /* seconds, as CPython on Linux */

typedef struct gilua_universe gilua_universe;
typedef struct gilua_waiter gilua_waiter;

/* Why a thread let go of the GIL (statistics and traces use these). */
typedef enum gilua_reason {
  GILUA_R_SWITCH, /* forced: the switch interval ran out for a waiter */
  GILUA_R_SLEEP,  /* time.sleep */
  GILUA_R_WAIT,   /* a lock, condition, queue or event wait */
  GILUA_R_JOIN,   /* Thread:join */
  GILUA_R_IO,     /* a blocking I/O call */
  GILUA_R_HOST,   /* GILUA_BEGIN_ALLOW_THREADS in host code */
  GILUA_R_EXIT,   /* the thread ended */
  GILUA_R_COUNT
} gilua_reason;

/*
** The life of a thread.  NEW: a Thread object exists, no OS thread yet;
** only start() and attribute changes are allowed.  RUNNING: the OS thread
** exists (it may be waiting for the GIL); it is listed by enumerate().
** DONE: its body has returned or failed; joins return at once.
*/
typedef enum gilua_thstate {
  GILUA_TS_NEW,
  GILUA_TS_RUNNING,
  GILUA_TS_DONE
} gilua_thstate;

/* A waiter lives on the stack of the thread that waits; lists of waiters
** are only touched with the GIL held.  'notified' is also read by the
** waiter while it parks without the GIL, hence atomic. */
struct gilua_waiter {
  gilua_tstate *ts;
  gilua_waiter *prev, *next;
  atomic_int notified;
};

typedef struct gilua_waitq {
  gilua_waiter *head, *tail;
} gilua_waitq;

/* GIL statistics of one thread; kept by the universe (also after the
** thread ends, until reset_stats) and updated by the thread itself while
** it holds the GIL. */
typedef struct gilua_tstats {
  char name[64];
  long id; /* the trace's track number */
  int ended;
  int traced; /* its name is in the current trace */
  unsigned long long acquisitions;
  unsigned long long releases[GILUA_R_COUNT];
  int64_t wait_ns, max_wait_ns, held_ns;
  struct gilua_tstats *next;
} gilua_tstats;

typedef struct gilua_trace gilua_trace;

/* One per OS thread attached to a universe. */
struct gilua_tstate {
  gilua_universe *u;
  lua_State *L; /* this OS thread's own Lua thread */

  /* Switch and interrupt requests.  'running' is the coroutine executing
  ** on this OS thread now; hooks are per coroutine, so a request must arm
  ** that one.  Both 'running' and the arming are guarded by hook_mu. */
  pthread_mutex_t hook_mu;
  lua_State *running;
  atomic_int drop_req;  /* a waiter wants the GIL (seq_cst) */
  atomic_int interrupt; /* gilua_interrupt() was called (seq_cst) */

  /* The GIL queue (guarded by the GIL's mutex). */
  pthread_cond_t gil_cv;
  gilua_tstate *gil_next;
  int gil_queued;

  /* The parker: blocking waits without the GIL sleep here. */
  pthread_mutex_t park_mu;
  pthread_cond_t park_cv;
  int permit;

  /* Identity and life (fields below are guarded by the GIL). */
  pthread_t thread;
  atomic_long native_id; /* 0 until the OS thread has published it */
  gilua_thstate state;
  int started; /* the OS thread has taken the GIL once (GIL) */
  int daemon;
  int is_main;
  int foreign;                  /* attached through gilua_ensure */
  int ensure_depth;             /* nesting of gilua_ensure */
  int ensure_took;              /* the outermost ensure took the GIL */
  gilua_tstate *prev_current;   /* gilua__current before gilua_ensure */
  gilua_waitq joiners;          /* threads blocked in join() on this one */
  gilua_tstate *prev, *next;    /* the universe's list of live threads */
  int ref_obj, ref_co;          /* registry references while running */
  void (*body)(gilua_tstate *); /* what the OS thread runs */
  gilua_tstats *st;             /* its GIL statistics */
  int64_t t_req, t_acq, t_drop; /* when it last asked, got, let go */
  gilua_reason last_drop;       /* why it last let go */
  atomic_int refs;              /* the Thread object and the OS thread */
};

typedef struct gilua_gil {
  pthread_mutex_t mu;
  gilua_tstate *holder;      /* NULL when free */
  atomic_int busy;           /* holder != NULL, for spinning readers */
  int spin;                  /* spin before queueing (more than 1 CPU) */
  gilua_tstate *head, *tail; /* threads waiting, in policy order */
  unsigned long switches;    /* changes of holder, ever */
  gilua_tstate *last;        /* the previous holder (compared only) */
  int64_t head_since;        /* when the head began waiting its turn */
  atomic_llong interval_ns;  /* the switch interval */
  gilua_tstate *finalizer;   /* set by gilua_close: nobody else runs */
  uint32_t rng;              /* picks where a forced switch lands */
} gilua_gil;

struct gilua_universe {
  gilua_gil gil;
  lua_State *L; /* the main Lua state */
  gilua_tstate *main;
  gilua_tstate *live; /* list of RUNNING threads (GIL) */
  pthread_mutex_t mu; /* guards os_threads and exit_cv */
  pthread_cond_t exit_cv;
  int os_threads;             /* OS threads started and not yet exited */
  size_t stack_size;          /* 0: the system default */
  lua_Integer name_seq;       /* for "Thread-N" (GIL) */
  double interval;            /* the switch interval as set, in seconds (GIL) */
  atomic_int user_hooks;      /* debug.sethook has been used */
  gilua_tstats *stats;        /* every thread's statistics (GIL) */
  long next_id;               /* for gilua_tstats.id (GIL) */
  int64_t stats_since;        /* when the statistics were last reset */
  gilua_trace *_Atomic trace; /* the trace being recorded, or NULL */
  gilua_trace *trace_mem;     /* kept until the universe goes */
};

/* runtime/clock and errors */
GILUA_HIDDEN int64_t gilua__now(void);
GILUA_HIDDEN int64_t gilua__deadline(double seconds); /* < 0: forever */
GILUA_HIDDEN void gilua__fatal(const char *what, int err);
GILUA_HIDDEN void gilua__mutex_init(pthread_mutex_t *m);
GILUA_HIDDEN void gilua__cond_init(pthread_cond_t *c);

/* runtime/gil.c */
GILUA_HIDDEN void gilua__gil_init(gilua_gil *g);
GILUA_HIDDEN void gilua__cpu_relax(void);
#define PARK_SPIN_NS 20000 /* how long a waiter watches its flag */
GILUA_HIDDEN void gilua__gil_take(gilua_tstate *ts);
GILUA_HIDDEN void gilua__gil_drop(gilua_tstate *ts, gilua_reason why);
GILUA_HIDDEN int gilua__gil_held(gilua_tstate *ts);
GILUA_HIDDEN void gilua__set_running(gilua_tstate *ts, lua_State *co);
GILUA_HIDDEN void gilua__hook_lock(gilua_tstate *ts);
GILUA_HIDDEN void gilua__hook_unlock(gilua_tstate *ts);
GILUA_HIDDEN void gilua__restore_user_hook(gilua_tstate *ts, lua_State *L);
GILUA_HIDDEN void gilua__arm(gilua_tstate *target);
GILUA_HIDDEN void gilua__hook(lua_State *L, lua_Debug *ar);
GILUA_HIDDEN void gilua__finalize(gilua_tstate *ts);
/* Address used as the registry key of the table coroutine -> {hook, mask,
** count} of hooks the user set with debug.sethook. */
GILUA_HIDDEN extern const char gilua__userhooks;

/* runtime/trace.c */
GILUA_HIDDEN gilua_tstats *gilua__stats_new(gilua_universe *u,
                                            const char *name);
GILUA_HIDDEN void gilua__trace_span(gilua_tstate *ts, int kind,
                                    gilua_reason why, int64_t t0, int64_t t1);
GILUA_HIDDEN int gilua__trace_start(gilua_universe *u, const char *path);
GILUA_HIDDEN int gilua__trace_stop(gilua_universe *u);
GILUA_HIDDEN const char *gilua__reason_name(gilua_reason why);
enum { GILUA_SPAN_HOLD, GILUA_SPAN_WAIT, GILUA_SPAN_BLOCKED };

/* runtime/thread.c */
GILUA_HIDDEN gilua_tstate *gilua__tstate_new(gilua_universe *u);
GILUA_HIDDEN void gilua__tstate_decref(gilua_tstate *ts);
GILUA_HIDDEN int gilua__spawn(gilua_tstate *ts);
GILUA_HIDDEN void gilua__link(gilua_tstate *ts);
GILUA_HIDDEN void gilua__unlink(gilua_tstate *ts);
GILUA_HIDDEN int gilua__park(gilua_tstate *ts, int64_t deadline,
                             atomic_int *flag);
GILUA_HIDDEN void gilua__unpark(gilua_tstate *ts);
GILUA_HIDDEN int gilua__wait(gilua_tstate *ts, gilua_waitq *q, int64_t deadline,
                             gilua_reason why);
GILUA_HIDDEN int gilua__notify(gilua_waitq *q, int n);
GILUA_HIDDEN int gilua__sleep(gilua_tstate *ts, double seconds);

/*
** A region where the calling thread blocks without the GIL, in bindings:
**   GILUA__BLOCKING(L, GILUA_R_IO)  n = recv(...);  GILUA__END_BLOCKING()
** No Lua API call and no Lua-owned memory inside (other threads may run
** the collector meanwhile); errno is preserved by the GIL functions.
*/
#define GILUA__BLOCKING(L, why)                                                \
  {                                                                            \
    gilua_tstate *gilua_ts_ = gilua__self(L);                                  \
    gilua__gil_drop(gilua_ts_, why);
#define GILUA__END_BLOCKING()                                                  \
  gilua__gil_take(gilua_ts_);                                                  \
  }

/* runtime/universe.c */
GILUA_HIDDEN gilua_universe *gilua__universe(lua_State *L);
GILUA_HIDDEN gilua_tstate *gilua__self(lua_State *L);
GILUA_HIDDEN extern _Thread_local gilua_tstate *gilua__current;
GILUA_HIDDEN int gilua__interrupted(lua_State *L);
GILUA_HIDDEN void gilua__openlibs(lua_State *L);
GILUA_HIDDEN void gilua__atexit(lua_State *L);
GILUA_HIDDEN void gilua__exit_sentinel(lua_State *L);

/* A Lock or an RLock (bindings/lock.c); every field is guarded by the GIL. */
typedef struct gilua_lockobj {
  const void *tag;     /* which type it is, for the fast type check */
  int rlock;           /* an RLock */
  int locked;          /* held (an RLock: held at least once) */
  gilua_tstate *owner; /* who acquired it */
  lua_Integer count;   /* the RLock's recursion depth */
  gilua_waitq waiters;
} gilua_lockobj;

/* bindings/: module openers and cross-file helpers */
GILUA_HIDDEN void gilua__errvalue(lua_State *L, const void *key,
                                  const char *name);
GILUA_HIDDEN int gilua__raise(lua_State *L, const void *key, const char *name);
GILUA_HIDDEN int gilua__newlock(lua_State *L, int rlock);
GILUA_HIDDEN void gilua__open_condition(lua_State *L);
GILUA_HIDDEN void gilua__open_semaphore(lua_State *L);
GILUA_HIDDEN void gilua__open_event(lua_State *L);
GILUA_HIDDEN void gilua__open_barrier(lua_State *L);
GILUA_HIDDEN void gilua__open_timer(lua_State *L);
GILUA_HIDDEN void gilua__open_local(lua_State *L);
GILUA_HIDDEN void gilua__open_gil(lua_State *L);
GILUA_HIDDEN int gilua__event_new(lua_State *L);
GILUA_HIDDEN int gilua__current_thread(lua_State *L);
GILUA_HIDDEN gilua_lockobj *gilua__tolock(lua_State *L, int idx);
GILUA_HIDDEN int gilua__lock_acquire(lua_State *L, gilua_lockobj *lk,
                                     int blocking, double timeout);
GILUA_HIDDEN void gilua__lock_release(lua_State *L, gilua_lockobj *lk);
GILUA_HIDDEN int gilua__lock_owned(lua_State *L, gilua_lockobj *lk);
GILUA_HIDDEN lua_Integer gilua__lock_save(lua_State *L, gilua_lockobj *lk);
GILUA_HIDDEN int gilua__lock_restore(lua_State *L, gilua_lockobj *lk,
                                     lua_Integer count);
GILUA_HIDDEN int gilua__open_threading(lua_State *L);
GILUA_HIDDEN int gilua__open_time(lua_State *L);
GILUA_HIDDEN int gilua__open_queue(lua_State *L);
GILUA_HIDDEN int gilua__open_io(lua_State *L);
GILUA_HIDDEN int gilua__open_socket(lua_State *L);
GILUA_HIDDEN int gilua__open_http(lua_State *L);
GILUA_HIDDEN int gilua__open_futures(lua_State *L);
GILUA_HIDDEN void gilua__open_thread(lua_State *L);
GILUA_HIDDEN void gilua__open_lock(lua_State *L);
GILUA_HIDDEN void gilua__open_base(lua_State *L);
GILUA_HIDDEN void gilua__thread_main_object(lua_State *L, gilua_tstate *ts);
GILUA_HIDDEN int gilua__push_thread(lua_State *L, gilua_tstate *ts);
GILUA_HIDDEN double gilua__checktimeout(lua_State *L, int arg, int blocking,
                                        const char *fname);

#endif

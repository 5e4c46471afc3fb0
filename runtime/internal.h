/*
** internal.h: runtime/'s own structures and functions.  Only files in
** runtime/ include it; bindings/ see runtime.h.  Each field says what
** guards it.
*/
#ifndef GILUA_INTERNAL_H
#define GILUA_INTERNAL_H

#include <assert.h>
#include <pthread.h>

#include "runtime.h"

typedef struct gilua_trace gilua_trace;

/* {====================================================================
** Checked pthread calls (runtime/sys.c).  A failure here is a bug:
** it aborts naming the call.  Debug builds make every mutex
** error-checking, so misuse is reported rather than dropped.
** ===================================================================== */

GILUA_HIDDEN void gilua__fatal(const char *what, int err);
GILUA_HIDDEN void gilua__mutex_init(pthread_mutex_t *m);
GILUA_HIDDEN void gilua__mutex_destroy(pthread_mutex_t *m);
GILUA_HIDDEN void gilua__cond_init(pthread_cond_t *c);
GILUA_HIDDEN void gilua__cond_destroy(pthread_cond_t *c);
GILUA_HIDDEN void gilua__mutex_lock(pthread_mutex_t *m);
GILUA_HIDDEN void gilua__mutex_unlock(pthread_mutex_t *m);
GILUA_HIDDEN void gilua__cond_signal(pthread_cond_t *c);
GILUA_HIDDEN void gilua__cond_broadcast(pthread_cond_t *c);
/* Waits on c until signalled or 'deadline'; 0 or ETIMEDOUT. */
GILUA_HIDDEN int gilua__cv_wait_until(pthread_cond_t *c, pthread_mutex_t *m,
                                      int64_t deadline);
GILUA_HIDDEN void gilua__cpu_relax(void);

/* }==================================================================== */

/* GIL statistics of one thread, kept by the universe and updated by the
** thread itself while it holds the GIL (gilua__stats_reset, also under
** the GIL, zeroes them). */
typedef struct gilua_tstats {
  gilua_statrec r;
  int traced; /* its name is in the current trace (trace's mutex) */
  struct gilua_tstats *prev, *next; /* in u->stats, or in u->ended */
} gilua_tstats;

/* How a tstate came to the universe. */
enum { GILUA_TK_MAIN, GILUA_TK_THREAD, GILUA_TK_HOST };

/* One per OS thread attached to a universe. */
struct gilua_tstate {
  gilua_universe *u;
  lua_State *L; /* this OS thread's own Lua thread (GIL) */

  /* Switch and interrupt requests.  'running' is the coroutine executing
  ** on this OS thread now; hooks are per coroutine, so a request must arm
  ** that one.  Both 'running' and the arming are guarded by hook_mu. */
  pthread_mutex_t hook_mu;
  lua_State *running;
  atomic_int drop_req;  /* a waiter wants the GIL: DROP_SWITCH or
                        ** DROP_PREEMPT + 1, else 0 (seq_cst) */
  atomic_int interrupt; /* gilua_interrupt() was called (seq_cst) */

  /* The GIL queue and the fair policy's books (guarded by the GIL's
  ** mutex).  vrt: the GIL time charged to the thread (ns); slice_start:
  ** when it last got the GIL, stamped at the hand-off. */
  pthread_cond_t gil_cv;
  gilua_tstate *gil_next;
  int gil_queued;
  int placed;   /* vrt has been given a start */
  int requeued; /* its forced drop put it back in the queue (fair) */
  int64_t vrt, slice_start;

  /* The parker: waits without the GIL sleep on park_cv; I/O waits poll
  ** wakefd (an eventfd made on first use, -1 before) beside their fds. */
  pthread_mutex_t park_mu;
  pthread_cond_t park_cv;
  atomic_int wakefd;

  /* Identity and life: the fields below are guarded by the GIL. */
  pthread_t thread;
  atomic_long native_id; /* 0 until the OS thread has published it */
  gilua_thstate state;
  int kind;    /* GILUA_TK_* */
  int started; /* the OS thread has taken the GIL once */
  int daemon;
  int ensure_depth;           /* nesting of gilua_ensure */
  int ensure_took;            /* the outermost ensure took the GIL */
  gilua_tstate *prev_current; /* gilua__current before gilua_ensure */
  gilua_waitq joiners;        /* threads blocked in join() on this one */
  gilua_waitq starters;       /* the thread in start(), until 'started' */
  gilua_tstate *prev, *next;  /* the universe's list of live threads */
  int ref_obj, ref_co;        /* registry: its Thread object, its Lua thread */
  gilua_body body;            /* what the OS thread runs */
  gilua_tstats *st;           /* its GIL statistics */
  int64_t t_req, t_acq, t_drop; /* when it last asked, got, let go */
  gilua_reason last_drop;       /* why it last let go */
  atomic_int refs;              /* the creator's, and the OS thread's */
};

enum { GILUA_POLICY_FIFO, GILUA_POLICY_FAIR };

typedef struct gilua_gil {
  pthread_mutex_t mu;
  int policy;                /* GILUA_POLICY_* */
  int spin_handoff;          /* 3 or more CPUs: a preempter may spin */
  int64_t min_vrt;           /* the least charge among runnable threads */
  unsigned long preemptions; /* ever */
  gilua_tstate *holder;      /* NULL when free */
  atomic_int busy;           /* holder != NULL, for spinning readers */
  int spin;                  /* spin before queueing (more than 1 CPU) */
  gilua_tstate *head, *tail; /* threads waiting, in policy order */
  int nqueued;               /* how many */
  unsigned long switches;    /* changes of holder, ever */
  gilua_tstate *last;        /* the previous holder (compared only) */
  int64_t head_since;        /* when the head began waiting its turn */
  atomic_llong interval_ns;  /* the switch interval */
  gilua_tstate *closer;      /* set by gilua__gil_freeze: nobody else runs */
  atomic_int frozen;         /* closer != NULL, read without the mutex */
  uint32_t rng;              /* picks where a forced switch lands */
} gilua_gil;

struct gilua_universe {
  gilua_gil gil;
  lua_State *L; /* the main Lua state */
  gilua_tstate *main;
  gilua_tstate *live; /* list of RUNNING threads (GIL) */
  int borrowed;       /* made around a state gilua did not create */
  pthread_mutex_t mu; /* guards os_threads and exit_cv */
  pthread_cond_t exit_cv;
  int os_threads;        /* OS threads started and not yet exited */
  size_t stack_size;     /* 0: the system default (GIL) */
  lua_Integer name_seq;  /* for "Thread-N" (GIL) */
  double interval;       /* the switch interval as set, in seconds (GIL) */
  atomic_int user_hooks; /* debug.sethook has been used */
  gilua_tstats *stats;   /* statistics of the live threads (GIL) */
  gilua_tstats *ended, *ended_tail; /* of recently ended ones, oldest first */
  int ended_kept;                   /* how many are in that list (GIL) */
  gilua_statrec folded;             /* ended threads no longer listed (GIL) */
  long folded_threads;              /* how many were folded (GIL) */
  long next_id;                     /* for the statistics' ids (GIL) */
  int64_t stats_since;              /* when the statistics were last reset */
  gilua_trace *_Atomic trace;       /* the trace being recorded, or NULL */
  gilua_trace *trace_mem;           /* kept until the universe goes */
};

/* Debug builds check the GIL discipline where it matters. */
#ifndef NDEBUG
GILUA_HIDDEN int gilua__gil_held(gilua_tstate *ts);
GILUA_HIDDEN int gilua__gil_held_here(gilua_universe *u);
#define GILUA_ASSERT_HELD(ts) assert(gilua__gil_held(ts))
#define GILUA_ASSERT_NOT_HELD(ts) assert(!gilua__gil_held(ts))
#define GILUA_ASSERT_HELD_HERE(u) assert(gilua__gil_held_here(u))
#else
#define GILUA_ASSERT_HELD(ts) ((void)0)
#define GILUA_ASSERT_NOT_HELD(ts) ((void)0)
#define GILUA_ASSERT_HELD_HERE(u) ((void)0)
#endif

/* runtime/gil.c */
GILUA_HIDDEN void gilua__gil_init(gilua_gil *g);
GILUA_HIDDEN void gilua__gil_take(gilua_tstate *ts);
GILUA_HIDDEN void gilua__gil_drop(gilua_tstate *ts, gilua_reason why);
GILUA_HIDDEN int gilua__gil_owner(gilua_tstate *ts); /* holder == ts */
GILUA_HIDDEN int gilua__gil_setpolicy(gilua_gil *g, const char *name);
GILUA_HIDDEN const char *gilua__gil_policy(gilua_gil *g);
GILUA_HIDDEN void gilua__gil_freeze(gilua_tstate *ts);
GILUA_HIDDEN int gilua__request_interrupt(gilua_tstate *ts);
GILUA_HIDDEN void gilua__hook_fn(lua_State *L, lua_Debug *ar);
GILUA_HIDDEN void gilua__running_set(gilua_tstate *ts, lua_State *co);
/* Address used as the registry key of the table coroutine -> {hook, mask,
** count} of hooks the user set with debug.sethook. */
GILUA_HIDDEN extern const char gilua__userhooks;

/* runtime/wait.c */
#define PARK_SPIN_NS 20000 /* how long a waiter watches its flag */
GILUA_HIDDEN int gilua__park(gilua_tstate *ts, int64_t deadline,
                             atomic_int *flag, int intr);
GILUA_HIDDEN void gilua__unpark(gilua_tstate *ts);
GILUA_HIDDEN void gilua__wake(gilua_tstate *ts);
GILUA_HIDDEN int gilua__wait_ts(gilua_tstate *ts, gilua_waitq *q,
                                int64_t deadline, gilua_reason why, int intr);
GILUA_HIDDEN void gilua__wakefd_close(gilua_tstate *ts);

/* runtime/thread.c */
GILUA_HIDDEN gilua_tstate *gilua__tstate_attach(gilua_universe *u, int kind,
                                                const char *name);
GILUA_HIDDEN void gilua__tstate_decref(gilua_tstate *ts);
GILUA_HIDDEN void gilua__link(gilua_tstate *ts);
GILUA_HIDDEN void gilua__unlink(gilua_tstate *ts);
GILUA_HIDDEN void gilua__thread_exit(gilua_tstate *ts, gilua_reason why);

/* runtime/trace.c */
GILUA_HIDDEN gilua_tstats *gilua__stats_new(gilua_universe *u,
                                            const char *name);
GILUA_HIDDEN void gilua__stats_ended(gilua_universe *u, gilua_tstats *st);
GILUA_HIDDEN void gilua__stats_forget(gilua_universe *u, gilua_tstats *st);
GILUA_HIDDEN void gilua__stats_free(gilua_universe *u);
GILUA_HIDDEN void gilua__trace_span(gilua_tstate *ts, int kind,
                                    gilua_reason why, int64_t t0, int64_t t1);
GILUA_HIDDEN int gilua__trace_stop_u(gilua_universe *u);
enum { GILUA_SPAN_HOLD, GILUA_SPAN_WAIT, GILUA_SPAN_BLOCKED };

/* runtime/universe.c */
GILUA_HIDDEN extern _Thread_local gilua_tstate *gilua__current;

#endif

/*
** gil.c: the global interpreter lock of one universe.
**
** ==== What the GIL guards ====
** A universe is one Lua state shared by several OS threads.  Lua itself is
** not thread-safe, so exactly one OS thread at a time may call the Lua API
** on any lua_State of the universe: the holder of the GIL.  The GIL is held
** by default and let go explicitly (a) around every blocking call, which
** always goes through runtime/wait.c (gilua__wait and gilua__wait_for for
** waits on GIL-guarded state, gilua__sleep, gilua__poll and gilua_block
** regions for I/O) or through the public GILUA_BEGIN_ALLOW_THREADS pair
** for host code, and (b) when a waiter asks the holder to step aside
** because the switch interval ran out.  Debug builds assert at each of
** these entries that the caller holds the GIL.
**
** ==== States ====
** The GIL is either free (holder == NULL, and then nobody is queued) or
** held by one tstate, with zero or more tstates queued in 'head..tail'.
** Every field is guarded by g->mu.  A queued thread sleeps on its own
** condition variable (ts->gil_cv), so the one that gets the GIL next is
** woken alone: no thundering herd.
**
** ==== The hand-off ====
** Taking: a thread that finds the GIL free takes it at once.  Otherwise it
** joins the queue where the policy puts it and sleeps until the GIL is
** handed to it.  Dropping: the holder hands the GIL directly to the thread
** the policy picks (g->holder = next) and wakes it; if nobody waits, the
** GIL becomes free.  Because the GIL is handed over rather than released
** for grabs, a holder that drops and immediately asks again can never win
** it back ahead of the threads already waiting (CPython needs its
** FORCE_SWITCHING dance for that; here it is a consequence).
**
** A thread that finds the GIL held while nobody is queued spins for up to
** 50 us before it queues (when the process may use more than one CPU): hand-offs
** between threads that wake each other (a lock, an event, a future) then
** cost one wake-up instead of two.  'busy' mirrors 'holder != NULL' for
** that spin, which reads it without the mutex (relaxed: it only decides
** when to look again under the mutex).
**
** ==== The fairness rule (the switch interval) ====
** The thread at the head of the queue sleeps at most one switch interval.
** If it wakes up still waiting and the holder has not changed since it
** began its turn, it asks the holder to drop: it sets holder->drop_req and
** arms a count hook on the coroutine the holder is running.  The VM
** notices a new hook at its next back jump or call (it caches the flag, as
** CPython checks its eval breaker only there); the hook then fires after
** a random 1 to 8 instructions, so that the switch can land between any
** two instructions, and the holder drops (handing the GIL to the head)
** and queues again at the tail.  So a
** thread that has waited longer than the interval gets the GIL, two
** spinning threads alternate every interval, and a thread back from sleep
** runs within about one interval.  A holder inside a long C function
** cannot be preempted (as in CPython); the head then re-asks every
** interval.  Who goes next, and who may ask sooner, is decided in one
** place, the policy section below, with two policies: fifo (what this
** paragraph describes; CPython's) and fair (charged by GIL time, with
** preemption by threads back from a wait, against the convoy effect).
**
** ==== Hooks are per coroutine ====
** lua_sethook() applies to one lua_State.  Each tstate records the
** coroutine it is executing in ts->running (coroutine.resume, wrap and
** close are wrapped to keep it current, see bindings/base.c, which calls
** gilua__set_running), and a
** request arms that coroutine.  The switch of 'running' and the arming
** both happen under ts->hook_mu, and enter/leave re-arm the new coroutine
** when a request is pending, so a request is never lost to a coroutine
** switch, and a coroutine is never armed after it could have been freed
** (it is 'running', hence reachable, for as long as hook_mu is held).
** The hook, when it fires, first restores whatever hook the user had set
** on that coroutine with debug.sethook (recorded by the debug.sethook
** wrapper), so user hooks lose at most one event.
**
** ==== Intentional races ====
** 1. lua_sethook() from a waiter writes L->hook, L->hookmask, the counts
**    and the 'trap' flag of each active CallInfo of a coroutine that the
**    holder is executing at that very moment.  This is the use Lua's
**    ldebug.c documents for signal handlers: hookmask and trap are
**    sig_atomic_t, pointers are assumed atomic, 'hook' is checked before
**    it is called, and a stale count causes at most one wrong hook call.
**    Across threads the writes are unordered but each is a single aligned
**    store, and the holder reads them at its next instruction boundary; in
**    the worst case it notices one instruction late.  The walk of the
**    active CallInfo list is safe because those frames stay allocated
**    while they are active, and hook_mu keeps the coroutine 'running'
**    (not collectable) during the walk.  The one theoretical window, the
**    holder returning from a frame and a GC step shrinking the CallInfo
**    list during the few nanoseconds of the walk, needs a full GC
**    traversal of that thread to complete inside the walk; we accept it,
**    as every Lua GIL built on hooks does.  liblua is not built with
**    ThreadSanitizer, so no suppression is needed for it.
** 2. ts->drop_req and ts->interrupt are seq_cst atomics.  A requester
**    stores the flag and then reads 'running' under hook_mu; the holder
**    switches 'running' under hook_mu and then reads the flag.  One of
**    the two always sees the other's write, so the right coroutine is
**    armed (maybe both: a spare hook call is harmless).
*/

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

const char gilua__userhooks = 0;

/* How long a thread that finds the GIL held, and nobody queued, spins
** before it queues and sleeps. */
#define GIL_SPIN_NS 50000

#define mlock gilua__mutex_lock
#define munlock gilua__mutex_unlock

/* {====================================================================
** The scheduling policy: who gets the GIL next, and who may ask for it
** at once.  Everything that decides an order lives here (g->mu held).
**
** fifo: first come, first served; the head asks the holder to step
** aside after one switch interval.  CPython's behaviour.
**
** fair: each thread is charged the GIL time it holds (vrt, ns); the
** queue is sorted by charge, so CPU-bound threads, whose charges grow
** alike, still rotate on the interval as under fifo.  A thread back from
** a real wait is placed at most 'credit' (half an interval, and never
** more than its time away) behind the least charge among the runnable
** threads (min_vrt), as CFS places a sleeper: its charge becomes
** max(its own, min_vrt - credit), credit being half an interval.  So it
** gains at most its real deficit, never more than half an interval: a
** CPU-bound thread that blocks briefly gains nothing (its charge is not
** behind), a long sleeper half an interval, not its whole sleep, and an
** I/O thread, which holds the GIL little, keeps a deficit to use.  (A
** credit capped by the time away, tried first, brought the convoy back:
** min_vrt follows the lone spinner, and a 30 us absence earned 30 us,
** never the granularity a preemption needs.)  If then the holder's
** charge runs ahead of its own by more than a granularity (a tenth of
** the interval), it asks the holder to step aside at once: that removes
** the convoy, where an I/O thread waits a whole interval after each call.
** Each such preemption is charged to the thread that asked (PREEMPT_NS),
** so many tiny blocking calls cannot take more than a fair share from a
** spinner.  A yield (sleep(0)) keeps its honest charge, gets no credit,
** and may preempt only a holder that has run a granularity, so a tight
** sleep(0) loop costs a spinner at most one hand-off per granularity.
** Wake-ups by a lock, an event, a condition, a queue or a future get the
** credit and go to the front by charge, but do not preempt their waker,
** which usually blocks microseconds later (Go's runnext).
**
** Charges alone order shares but do not bound waits (eight echo threads,
** always a little behind, kept a spinner waiting 130 ms), so two more
** rules: the head's slice is a period of two intervals shared among the
** threads queued (never under the granularity; with two threads, the
** interval), and at a hand-off that is not a preemption's, a thread that
** has waited more than half an interval goes first (BFS's expired
** deadlines).  A preemption's hand-off goes to the thread that asked; a
** thread back from I/O that finds an interval switch pending turns it
** into its own preemption.
**
** The races this adds: none across threads, because every charge, every
** slice start and min_vrt are read and written under g->mu; the slice
** start is stamped at the hand-off, by the dropper, so a waiter never
** reads a stale one (the research prototype's bug: a slice start read
** before the new holder wrote it made a charge of minutes).  A forced
** drop re-queues the dropper in the same critical section, and its take
** finds it queued (or already given the GIL back): in between it would be
** runnable but neither holding nor queued, invisible to min_vrt, which
** then ran past its charge (measured: a server next to four spinners
** waited 10 ms instead of 0.3).
** ===================================================================== */

#define PREEMPT_NS 20000 /* what a preemption costs: charged to its maker */

static int64_t interval_ns(gilua_gil *g) {
  return atomic_load(&g->interval_ns);
}

/* The holder's charge, counting its current slice. */
static int64_t charge_now(gilua_tstate *h, int64_t now) {
  return h->vrt + (now - h->slice_start);
}

/* How long the head waits before it asks the holder to step aside: the
** interval (fifo); fair: a period of two intervals shared among the
** threads that want the GIL, never less than the granularity, so that
** none waits much more than two intervals however many compete (with
** two, the slice is the interval, as under fifo). */
static int64_t policy_slice(gilua_gil *g) {
  int64_t iv = interval_ns(g);
  if (g->policy != GILUA_POLICY_FAIR || g->nqueued <= 1)
    return iv;
  int64_t slice = 2 * iv / (g->nqueued + 1);
  return slice < iv / 10 ? iv / 10 : slice;
}

/* Puts 'ts' in the queue of threads waiting for the GIL. */
static void policy_enqueue(gilua_gil *g, gilua_tstate *ts) {
  ts->gil_next = NULL;
  ts->gil_queued = 1;
  g->nqueued++;
  if (g->policy == GILUA_POLICY_FAIR && g->head && ts->vrt < g->tail->vrt) {
    /* sorted by charge, stable: after every thread charged as much */
    gilua_tstate **p = &g->head;
    while (*p && (*p)->vrt <= ts->vrt)
      p = &(*p)->gil_next;
    ts->gil_next = *p;
    if (p == &g->head)
      g->head_since = gilua__now(); /* a new head starts its turn */
    *p = ts;
    return;
  }
  if (g->tail)
    g->tail->gil_next = ts;
  else {
    g->head = ts;
    g->head_since = gilua__now();
  }
  g->tail = ts;
}

/* fair: the thread that has waited longest, if that is more than half an
** interval: it goes first, whatever its charge, so that charges bound
** shares but never starve anyone (BFS's expired deadlines). */
static gilua_tstate **policy_expired(gilua_gil *g, int64_t now) {
  gilua_tstate **best = NULL;
  int64_t limit = now - interval_ns(g) / 2;
  for (gilua_tstate **p = &g->head; *p; p = &(*p)->gil_next)
    if ((*p)->t_req < limit && (best == NULL || (*p)->t_req < (*best)->t_req))
      best = p;
  return best;
}

/* Removes and returns the thread the GIL goes to, or NULL; 'why' the
** holder let go (a preemption's hand-off goes to the one that asked). */
static gilua_tstate *policy_next(gilua_gil *g, gilua_reason why) {
  gilua_tstate *ts = g->head;
  if (ts && g->policy == GILUA_POLICY_FAIR && ts->gil_next &&
      why != GILUA_DROP_PREEMPT) {
    gilua_tstate **p = policy_expired(g, gilua__now());
    if (p && *p != ts) { /* unlink the starving one from the middle */
      gilua_tstate *prev = NULL;
      for (gilua_tstate *q = g->head; q != *p; q = q->gil_next)
        prev = q;
      ts = *p;
      prev->gil_next = ts->gil_next;
      if (g->tail == ts)
        g->tail = prev;
      ts->gil_next = NULL;
      ts->gil_queued = 0;
      g->nqueued--;
      return ts; /* the head keeps its turn */
    }
  }
  if (ts) {
    g->head = ts->gil_next;
    if (g->head == NULL)
      g->tail = NULL;
    ts->gil_next = NULL;
    ts->gil_queued = 0;
    g->nqueued--;
    g->head_since = gilua__now(); /* the new head starts its turn now */
  }
  return ts;
}

/* fair: gives ts, about to ask for the GIL, its place in the books. */
static void policy_place(gilua_gil *g, gilua_tstate *ts, int64_t now) {
  if (g->policy != GILUA_POLICY_FAIR)
    return;
  /* min_vrt follows the least charge among the runnable threads, and
  ** never passes the largest */
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  if (g->holder) {
    lo = hi = charge_now(g->holder, now);
  }

  if (g->head) {
    if (g->head->vrt < lo)
      lo = g->head->vrt;
    if (g->tail->vrt > hi)
      hi = g->tail->vrt;
  }
  if (lo != INT64_MAX) {
    if (lo > g->min_vrt)
      g->min_vrt = lo;
    if (g->min_vrt > hi)
      g->min_vrt = hi;
  }
  if (!ts->placed) { /* a new thread starts level with the others */
    ts->placed = 1;
    ts->vrt = g->min_vrt;
    return;
  }
  switch (ts->last_drop) {
  case GILUA_DROP_SWITCH: /* it was running: its charge is honest */
  case GILUA_DROP_PREEMPT:
  case GILUA_DROP_YIELD:
    return;
  default: /* back from a wait: at most half an interval of deficit */
    if (ts->vrt < g->min_vrt - interval_ns(g) / 2)
      ts->vrt = g->min_vrt - interval_ns(g) / 2;
  }
}

/* fair: whether ts, placed, may ask the holder to step aside at once. */
static int policy_preempts(gilua_gil *g, gilua_tstate *ts, int64_t now) {
  gilua_tstate *h = g->holder;
  /* a pending interval switch may become a preemption (so that its
  ** hand-off comes to us); another thread's preemption may not */
  if (g->policy != GILUA_POLICY_FAIR || h == NULL || h == ts ||
      atomic_load(&h->drop_req) == GILUA_DROP_PREEMPT + 1)
    return 0;
  int64_t gran = interval_ns(g) / 10, ran = now - h->slice_start;
  switch (ts->last_drop) {
  case GILUA_DROP_IO:
  case GILUA_DROP_SLEEP:
  case GILUA_DROP_HOST:
    break;
  case GILUA_DROP_YIELD:
    if (ran < gran)
      return 0;
    break;
  default: /* lock, event, queue, join wake-ups: they do not preempt */
    return 0;
  }
  return charge_now(h, now) - ts->vrt > gran;
}

/* fair: when a head waiting for the GIL may preempt the holder (the
** charge and slice conditions of policy_preempts), or GILUA_FOREVER. */
static int64_t policy_preempt_due(gilua_gil *g, gilua_tstate *ts) {
  gilua_tstate *h = g->holder;
  if (g->policy != GILUA_POLICY_FAIR || h == NULL || h == ts)
    return GILUA_FOREVER;
  int64_t gran = interval_ns(g) / 10, after = ts->vrt + gran - h->vrt;
  switch (ts->last_drop) {
  case GILUA_DROP_YIELD:
    if (after < gran)
      after = gran;
    break;
  case GILUA_DROP_IO:
  case GILUA_DROP_SLEEP:
  case GILUA_DROP_HOST:
    break;
  default:
    return GILUA_FOREVER;
  }
  return h->slice_start + (after > 0 ? after : 0) + 1;
}

/* }==================================================================== */

void gilua__gil_init(gilua_gil *g) {
  gilua__mutex_init(&g->mu);
  g->holder = g->head = g->tail = NULL;
  g->nqueued = 0;
  atomic_init(&g->busy, 0);
  cpu_set_t cpus; /* the CPUs this process may run on, not the machine's */
  g->spin = sched_getaffinity(0, sizeof cpus, &cpus) == 0
                ? CPU_COUNT(&cpus) > 1
                : sysconf(_SC_NPROCESSORS_ONLN) > 1;
  g->switches = 0;
  g->head_since = 0;
  atomic_init(&g->interval_ns, 5000000); /* 0.005 s, as CPython */
  g->closer = NULL;
  atomic_init(&g->frozen, 0);
  g->policy = GILUA_POLICY_FIFO;
  g->spin_handoff = sched_getaffinity(0, sizeof cpus, &cpus) == 0
                        ? CPU_COUNT(&cpus) >= 3
                        : sysconf(_SC_NPROCESSORS_ONLN) >= 3;
  g->min_vrt = 0;
  g->preemptions = 0;
  /* where forced switches land must differ from run to run */
  g->rng = (uint32_t)gilua__now() ^ (uint32_t)(uintptr_t)g;
}

/* Parks the calling thread for good: the universe is being closed and
** this (daemon) thread must never run Lua again.  (g->mu held.) */
static void park_for_good(gilua_gil *g, gilua_tstate *ts) {
  for (;;)
    gilua__cv_wait_until(&ts->gil_cv, &g->mu, GILUA_FOREVER);
}

/* Sets the GIL's hook on the coroutine 'target' is running, under its
** hook_mu, to fire after 'count' instructions. */
static void arm(gilua_tstate *target, int count) {
  mlock(&target->hook_mu);
  if (target->running)
    lua_sethook(target->running, gilua__hook_fn, LUA_MASKCOUNT, count);
  munlock(&target->hook_mu);
}

/*
** How many instructions a switch request waits, once noticed.  The VM
** only notices a new hook at back jumps and calls (it caches the 'trap'
** flag, as CPython checks its eval breaker), so a count of 1 would always
** switch at the top of a loop body.  A small random count moves the
** switch to any instruction, so that an unsynchronised read-modify-write
** can be cut in the middle, as the tutorials promise.  (g->mu held.)
*/
static int switch_count(gilua_gil *g) {
  uint32_t x = g->rng ? g->rng : 2463534242u; /* xorshift32 */
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  g->rng = x;
  return 1 + (int)(x % 8);
}

/* Asks the holder to step aside for ts at once (fair), charged to ts. */
static void preempt(gilua_gil *g, gilua_tstate *ts) {
  gilua_tstate *h = g->holder;
  atomic_store(&h->drop_req, GILUA_DROP_PREEMPT + 1);
  arm(h, switch_count(g));
  ts->vrt += PREEMPT_NS;
  g->preemptions++;
  if (ts->st)
    ts->st->r.preemptions++;
}

#ifdef GILUA_NO_LAB
/* A build without the GIL lab, to measure what it costs (bench/). */
#define account_take(ts, w) ((void)(w))
#else
/* Accounts for a take that just succeeded (ts holds the GIL); 'waited'
** says whether it had to wait at all (else no clock is read again). */
static void account_take(gilua_tstate *ts, int waited_at_all) {
  int64_t now = waited_at_all ? gilua__now() : ts->t_req;
  int64_t waited = now - ts->t_req;
  gilua_tstats *st = ts->st;
  ts->t_acq = now;
  if (st) {
    st->r.acquisitions++;
    st->r.wait_ns += waited;
    if (waited > st->r.max_wait_ns)
      st->r.max_wait_ns = waited;
  }
  if (atomic_load_explicit(&ts->u->trace, memory_order_relaxed) && waited > 0)
    gilua__trace_span(ts, GILUA_SPAN_WAIT, GILUA_DROP_SWITCH, ts->t_req, now);
}
#endif

void gilua__gil_take(gilua_tstate *ts) {
  gilua_gil *g = &ts->u->gil;
  int saved_errno = errno;
  ts->t_req = gilua__now();
#ifndef GILUA_NO_LAB
  if (atomic_load_explicit(&ts->u->trace, memory_order_relaxed) &&
      ts->t_drop > 0 && ts->last_drop != GILUA_DROP_SWITCH)
    gilua__trace_span(ts, GILUA_SPAN_BLOCKED, ts->last_drop, ts->t_drop,
                      ts->t_req);
#endif
  int spun = 0, preempted = 0;
  mlock(&g->mu);
  int requeued = ts->requeued; /* fair: its forced drop queued it again */
  ts->requeued = 0;
  if (requeued && g->holder == ts) { /* and handed it back already */
    munlock(&g->mu);
    account_take(ts, 1);
    errno = saved_errno;
    return;
  }
  if (g->holder == ts)
    gilua__fatal("gilua__gil_take (the caller holds the GIL)", EDEADLK);
  if (g->closer && g->closer != ts)
    park_for_good(g, ts);
  if (requeued)
    goto queued;
  policy_place(g, ts, ts->t_req);
  if (policy_preempts(g, ts, ts->t_req)) {
    /* ask the holder to step aside now; the hand-off comes to us, so no
    ** spin for a free GIL, and the request is charged to us */
    preempt(g, ts);
    preempted = 1;
  }
  /* fair: a thread made to step aside is CPU-bound and queues at once,
  ** so that its charge counts in the books of those it waits behind */
  int forced =
      ts->last_drop == GILUA_DROP_SWITCH || ts->last_drop == GILUA_DROP_PREEMPT;
  if (g->holder != NULL && g->head == NULL && g->spin &&
      (g->policy == GILUA_POLICY_FIFO ||
       (!forced && (!preempted || g->spin_handoff)))) {
    spun = 1;
    /* Nobody queues, so the GIL goes to whoever asks first once the
    ** holder lets go.  A thread just woken (a lock released, a result
    ** ready) usually finds its waker about to block: spinning a few
    ** microseconds saves a sleep and a second wake-up. */
    munlock(&g->mu);
    int64_t until = ts->t_req + GIL_SPIN_NS;
    for (int i = 1; atomic_load_explicit(&g->busy, memory_order_relaxed); i++)
      if ((i & 63) == 0 && gilua__now() > until)
        break;
      else
        gilua__cpu_relax();
    mlock(&g->mu);
    if (g->closer && g->closer != ts)
      park_for_good(g, ts); /* the universe began closing meanwhile */
  }
  if (g->holder == NULL && (g->head == NULL || g->closer == ts)) {
    g->holder = ts; /* free: take it */
    ts->slice_start = gilua__now();
    atomic_store_explicit(&g->busy, 1, memory_order_relaxed);
    if (g->last != ts) {
      g->switches++;
      g->last = ts;
    }
    munlock(&g->mu);
    account_take(ts, spun);
    errno = saved_errno;
    return;
  }
  policy_enqueue(g, ts);
queued:;
  gilua_tstate *refused = NULL; /* the holder whose preemption was refused */
  while (g->holder != ts) {
    if (g->head == ts) {
      unsigned long seen = g->switches;
      int64_t due = g->head_since + policy_slice(g);
      /* fair: wake up too when this head may preempt the holder */
      int64_t pdue = preempted || refused == g->holder
                         ? GILUA_FOREVER
                         : policy_preempt_due(g, ts);
      int r =
          gilua__cv_wait_until(&ts->gil_cv, &g->mu, pdue < due ? pdue : due);
      if (g->closer)
        park_for_good(g, ts);
      if (r == ETIMEDOUT && pdue < due && g->holder != ts &&
          g->holder != NULL && g->switches == seen) {
        if (policy_preempts(g, ts, gilua__now())) {
          preempt(g, ts);
          preempted = 1;
        } else {
          refused = g->holder; /* a request is pending: the interval rules */
        }
        continue;
      }
      if (r == ETIMEDOUT && g->holder != ts && g->holder != NULL &&
          g->switches == seen) {
        /* waited a whole slice and nobody switched: ask the holder
        ** (unless a preemption request is already pending) */
        gilua_tstate *h = g->holder;
        int none = 0;
        atomic_compare_exchange_strong(&h->drop_req, &none,
                                       GILUA_DROP_SWITCH + 1);
        arm(h, switch_count(g));
        g->head_since = gilua__now(); /* ask again a slice later */
      }
    } else {
      gilua__cv_wait_until(&ts->gil_cv, &g->mu, GILUA_FOREVER);
      if (g->closer)
        park_for_good(g, ts);
    }
  }
  munlock(&g->mu);
  account_take(ts, 1);
  errno = saved_errno;
}

void gilua__gil_drop(gilua_tstate *ts, gilua_reason why) {
  gilua_gil *g = &ts->u->gil;
  int64_t now = gilua__now();
#ifndef GILUA_NO_LAB
  /* the statistics are the holder's own: kept out of the critical section */
  if (ts->st) {
    ts->st->r.held_ns += now - ts->t_acq;
    ts->st->r.releases[why]++;
  }
  if (atomic_load_explicit(&ts->u->trace, memory_order_relaxed))
    gilua__trace_span(ts, GILUA_SPAN_HOLD, why, ts->t_acq, now);
#endif
  ts->t_drop = now; /* the policy's placement reads these two */
  ts->last_drop = why;
  mlock(&g->mu);
  if (g->holder != ts) {
    munlock(&g->mu);
    gilua__fatal("gilua__gil_drop (the caller does not hold the GIL)", EPERM);
  }
  atomic_store(&ts->drop_req, 0);
  ts->vrt += now - ts->slice_start; /* charged under g->mu */

  if (ts->st)
    ts->st->r.charge_ns = ts->vrt;
  /* once the universe is closing, the closer never hands the GIL on */
  gilua_tstate *next = g->closer ? NULL : policy_next(g, why);
  if (g->policy == GILUA_POLICY_FAIR && next && !g->closer &&
      (why == GILUA_DROP_SWITCH || why == GILUA_DROP_PREEMPT)) {
    policy_enqueue(g, ts); /* drop and re-queue in one step: a thread made
    ** to step aside stays in the books while it comes back (its take
    ** finds it queued, or already given the GIL back) */
    ts->requeued = 1;
  }
  g->holder = next;
  atomic_store_explicit(&g->busy, next != NULL, memory_order_relaxed);
  if (next) {
    next->slice_start = now; /* stamped by the dropper: never stale */
    g->switches++;
    g->last = next;
    gilua__cond_signal(&next->gil_cv);
    if (g->head) /* the new head starts timing its turn */
      gilua__cond_signal(&g->head->gil_cv);
  }
  munlock(&g->mu);
}

int gilua__gil_setpolicy(gilua_gil *g, const char *name) {
  int p;
  if (strcmp(name, "fifo") == 0)
    p = GILUA_POLICY_FIFO;
  else if (strcmp(name, "fair") == 0)
    p = GILUA_POLICY_FAIR;
  else
    return -1;
  mlock(&g->mu);
  g->policy = p;
  munlock(&g->mu);
  return 0;
}

const char *gilua__gil_policy(gilua_gil *g) {
  mlock(&g->mu);
  int p = g->policy;
  munlock(&g->mu);
  return p == GILUA_POLICY_FAIR ? "fair" : "fifo";
}

int gilua__gil_owner(gilua_tstate *ts) {
  gilua_gil *g = &ts->u->gil;
  mlock(&g->mu);
  int held = (g->holder == ts);
  munlock(&g->mu);
  return held;
}

#ifndef NDEBUG
int gilua__gil_held(gilua_tstate *ts) { return gilua__gil_owner(ts); }

/* Whether the calling OS thread holds u's GIL, whatever its tstate. */
int gilua__gil_held_here(gilua_universe *u) {
  mlock(&u->gil.mu);
  int held =
      u->gil.holder && pthread_equal(u->gil.holder->thread, pthread_self());
  munlock(&u->gil.mu);
  return held;
}
#endif

/* From now on only 'ts' runs Lua: every other thread parks for good the
** next time it wants the GIL, and nobody may arm ts's hook any more. */
void gilua__gil_freeze(gilua_tstate *ts) {
  gilua_gil *g = &ts->u->gil;
  mlock(&g->mu);
  g->closer = ts;
  atomic_store(&g->frozen, 1);
  munlock(&g->mu);
  mlock(&ts->hook_mu);
  ts->running = NULL;
  atomic_store(&ts->drop_req, 0);
  munlock(&ts->hook_mu);
}

/* {====================================================================
** Coroutine tracking, the hook, and interrupts
** ===================================================================== */

/* Puts back on L the hook the user set, or none.  Caller holds hook_mu
** and the GIL (it reads the registry). */
static void restore_user_hook(gilua_tstate *ts, lua_State *L) {
  lua_Hook h = NULL;
  int mask = 0, count = 0;
  if (atomic_load(&ts->u->user_hooks)) {
    /* raw accesses only: nothing here may allocate or raise */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &gilua__userhooks) == LUA_TTABLE) {
      lua_pushthread(L);
      if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_rawgeti(L, -1, 1);
        h = (lua_Hook)lua_touserdata(L, -1);
        lua_rawgeti(L, -2, 2);
        mask = (int)lua_tointeger(L, -1);
        lua_rawgeti(L, -3, 3);
        count = (int)lua_tointeger(L, -1);
        lua_pop(L, 3);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_sethook(L, h, mask, count);
}

/* Makes 'co' (or NULL: nothing may be armed) the coroutine that requests
** arm, and arms it at once if a request is pending. */
void gilua__running_set(gilua_tstate *ts, lua_State *co) {
  mlock(&ts->hook_mu);
  ts->running = co;
  if (co && (atomic_load(&ts->drop_req) || atomic_load(&ts->interrupt)))
    lua_sethook(co, gilua__hook_fn, LUA_MASKCOUNT, 1);
  munlock(&ts->hook_mu);
}

void gilua__set_running(lua_State *L, lua_State *co) {
  gilua__running_set(gilua__self(L), co);
}

/* Remembers the hook the user set on 'co' (NULL: none). */
static void record_hook(lua_State *L, lua_State *co, lua_Hook h, int mask,
                        int count) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &gilua__userhooks) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &gilua__userhooks);
  }
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  if (h == NULL) {
    lua_pushnil(L);
  } else {
    lua_createtable(L, 3, 0);
    lua_pushlightuserdata(L, (void *)h);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, mask);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, count);
    lua_rawseti(L, -2, 3);
  }
  lua_rawset(L, -3);
  lua_pop(L, 1);
  atomic_store(&gilua__universe(L)->user_hooks, 1);
}

/*
** 'running' is NULL while f runs, so no request can arm the caller's
** coroutine; should f run out of memory, preemption of this thread
** resumes at its next coroutine switch.
*/
int gilua__call_unhooked(lua_State *L, lua_State *target, lua_CFunction f,
                         int record) {
  gilua_tstate *ts = gilua__self(L);
  lua_State *saved = ts->running;
  mlock(&ts->hook_mu);
  ts->running = NULL;
  if (lua_gethook(target) == gilua__hook_fn)
    restore_user_hook(ts, target);
  munlock(&ts->hook_mu);
  int n = f(L);
  lua_Hook h = lua_gethook(target);
  int mask = lua_gethookmask(target), count = lua_gethookcount(target);
  gilua__running_set(ts, saved); /* re-arms if a request came meanwhile */
  if (record) {
    int top = lua_gettop(L);
    record_hook(L, target, h, mask, count);
    lua_settop(L, top);
  }
  return n;
}

void gilua__hook_fn(lua_State *L, lua_Debug *ar) {
  gilua_tstate *ts = gilua__self(L);
  (void)ar;
  mlock(&ts->hook_mu);
  restore_user_hook(ts, L);
  munlock(&ts->hook_mu);
  if (ts->kind == GILUA_TK_MAIN && atomic_exchange(&ts->interrupt, 0))
    luaL_error(L, "interrupted!");
  int req = atomic_load(&ts->drop_req);
  if (req) {
    gilua__gil_drop(ts, (gilua_reason)(req - 1)); /* SWITCH or PREEMPT */
    gilua__gil_take(ts);
  }
}

/* Any thread, no GIL: raises "interrupted!" in ts (the main thread) at
** its next instruction, and ends a wait it is blocked in.  Returns
** whether an interrupt was already pending (not yet raised). */
int gilua__request_interrupt(gilua_tstate *ts) {
  int was = atomic_exchange(&ts->interrupt, 1);
  arm(ts, 1);
  gilua__unpark(ts);
  gilua__wake(ts);
  return was;
}

/* }==================================================================== */

/*
** thread.c: OS threads, parking, and wait queues.
**
** ==== The life of an OS thread ====
** gilua__spawn() starts a detached pthread for a tstate whose 'body' is
** set (bindings/thread.c sets it to "run the Thread object").  The body
** takes the GIL, runs Lua, marks the tstate DONE, wakes its joiners and
** drops the GIL for the last time; after that the OS thread touches only
** its own tstate reference and the universe's exit counter.  A tstate is
** reference counted: one reference for the Thread object (dropped by its
** __gc) and one for the OS thread (dropped when the body returns).
**
** ==== Parking ====
** A thread that must wait without the GIL (sleep, join, lock) sleeps on
** its own mutex and monotonic condition variable.  Whoever wakes it sets
** the waiter's flag first, then signals under park_mu, so a wake-up that
** happens between the waiter's check and its sleep is never lost.  The
** deadline is absolute, so it survives spurious wake-ups unchanged.
**
** A waiter with a flag to watch spins on it for up to PARK_SPIN_NS before
** it sleeps: ping-pong hand-offs (a future's result, an event) then skip
** the scheduler entirely.
**
** ==== Wait queues ====
** Every blocking primitive (Lock, RLock, join, and those built later) is a
** GIL-protected state plus a gilua_waitq.  The pattern is always: try with
** the GIL held; if that fails, queue a waiter, drop the GIL, park, take the
** GIL, look again.  Queues are only touched with the GIL held, so they
** need no lock of their own.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "internal.h"

gilua_tstate *gilua__tstate_new(gilua_universe *u) {
  gilua_tstate *ts = calloc(1, sizeof *ts);
  if (ts == NULL)
    return NULL;
  ts->u = u;
  gilua__mutex_init(&ts->hook_mu);
  gilua__mutex_init(&ts->park_mu);
  gilua__cond_init(&ts->park_cv);
  gilua__cond_init(&ts->gil_cv);
  atomic_init(&ts->drop_req, 0);
  atomic_init(&ts->interrupt, 0);
  atomic_init(&ts->native_id, 0);
  atomic_init(&ts->refs, 1);
  ts->state = GILUA_TS_NEW;
  ts->ref_obj = ts->ref_co = LUA_NOREF;
  return ts;
}

void gilua__tstate_decref(gilua_tstate *ts) {
  if (atomic_fetch_sub(&ts->refs, 1) == 1) {
    pthread_mutex_destroy(&ts->hook_mu);
    pthread_mutex_destroy(&ts->park_mu);
    pthread_cond_destroy(&ts->park_cv);
    pthread_cond_destroy(&ts->gil_cv);
    free(ts);
  }
}

static void *os_main(void *arg) {
  gilua_tstate *ts = arg;
  gilua_universe *u = ts->u;
  gilua__current = ts;
  atomic_store(&ts->native_id, (long)syscall(SYS_gettid));
  /* Linux lets timed waits end up to 50 us late by default, which can
  ** reorder two sleeps that end 50 us apart: ask for precise wake-ups */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  ts->body(ts); /* returns without the GIL */
  gilua__current = NULL;
  gilua__tstate_decref(ts);
  pthread_mutex_lock(&u->mu);
  u->os_threads--;
  pthread_cond_broadcast(&u->exit_cv);
  pthread_mutex_unlock(&u->mu);
  return NULL;
}

int gilua__spawn(gilua_tstate *ts) {
  gilua_universe *u = ts->u;
  pthread_attr_t a;
  int r = pthread_attr_init(&a);
  if (r != 0)
    return -r;
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (u->stack_size > 0 && (r = pthread_attr_setstacksize(&a, u->stack_size)))
    goto done;
  atomic_fetch_add(&ts->refs, 1); /* the OS thread's reference */
  pthread_mutex_lock(&u->mu);
  u->os_threads++;
  pthread_mutex_unlock(&u->mu);
  r = pthread_create(&ts->thread, &a, os_main, ts);
  if (r != 0) {
    pthread_mutex_lock(&u->mu);
    u->os_threads--;
    pthread_mutex_unlock(&u->mu);
    atomic_fetch_sub(&ts->refs, 1);
  }
done:
  pthread_attr_destroy(&a);
  return -r;
}

void gilua__link(gilua_tstate *ts) {
  gilua_universe *u = ts->u;
  ts->prev = NULL;
  ts->next = u->live;
  if (u->live)
    u->live->prev = ts;
  u->live = ts;
}

void gilua__unlink(gilua_tstate *ts) {
  gilua_universe *u = ts->u;
  if (ts->prev)
    ts->prev->next = ts->next;
  else if (u->live == ts)
    u->live = ts->next;
  if (ts->next)
    ts->next->prev = ts->prev;
  ts->prev = ts->next = NULL;
}

/* {====================================================================
** Parking
** ===================================================================== */

int gilua__park(gilua_tstate *ts, int64_t deadline, atomic_int *flag) {
  int r;
  if (flag && ts->u->gil.spin) {
    /* A wake-up often comes within microseconds (a hand-off between two
    ** threads): watch the flag briefly before sleeping on the condition
    ** variable, which costs a scheduler round trip to wake from. */
    int64_t until = gilua__now() + PARK_SPIN_NS;
    for (int i = 1; !atomic_load_explicit(flag, memory_order_acquire); i++) {
      if ((i & 63) == 0 && gilua__now() > until)
        break;
      gilua__cpu_relax();
    }
  }
  pthread_mutex_lock(&ts->park_mu);
  for (;;) {
    if (flag && atomic_load(flag)) {
      r = 0;
      break;
    }
    if (ts->is_main && atomic_load(&ts->interrupt)) {
      r = EINTR;
      break;
    }
    ts->permit = 0;
    if (deadline != GILUA_FOREVER && gilua__now() >= deadline) {
      r = ETIMEDOUT;
      break;
    }
    if (deadline == GILUA_FOREVER) {
      pthread_cond_wait(&ts->park_cv, &ts->park_mu);
    } else {
      struct timespec t;
      t.tv_sec = (time_t)(deadline / 1000000000);
      t.tv_nsec = (long)(deadline % 1000000000);
      pthread_cond_timedwait(&ts->park_cv, &ts->park_mu, &t);
    }
  }
  pthread_mutex_unlock(&ts->park_mu);
  return r;
}

void gilua__unpark(gilua_tstate *ts) {
  pthread_mutex_lock(&ts->park_mu);
  ts->permit = 1;
  pthread_cond_signal(&ts->park_cv);
  pthread_mutex_unlock(&ts->park_mu);
}

int gilua__sleep(gilua_tstate *ts, double seconds) {
  int64_t deadline = gilua__deadline(seconds);
  gilua__gil_drop(ts, GILUA_R_SLEEP);
  int r = gilua__park(ts, deadline, NULL);
  gilua__gil_take(ts);
  return r == EINTR ? EINTR : 0;
}

/* }==================================================================== */

/* {====================================================================
** Wait queues (GIL held on entry and on return)
** ===================================================================== */

static void waitq_remove(gilua_waitq *q, gilua_waiter *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  w->prev = w->next = NULL;
}

/*
** Queues the caller on q, drops the GIL, parks until notified, the
** deadline, or an interrupt, and takes the GIL back.  Returns 0 when
** notified (the notifier has already dequeued us), else ETIMEDOUT or EINTR
** (and we dequeue ourselves).
*/
int gilua__wait(gilua_tstate *ts, gilua_waitq *q, int64_t deadline,
                gilua_reason why) {
  gilua_waiter w;
  w.ts = ts;
  w.next = NULL;
  w.prev = q->tail;
  atomic_init(&w.notified, 0);
  if (q->tail)
    q->tail->next = &w;
  else
    q->head = &w;
  q->tail = &w;
  gilua__gil_drop(ts, why);
  int r = gilua__park(ts, deadline, &w.notified);
  gilua__gil_take(ts);
  if (atomic_load(&w.notified))
    return 0;
  waitq_remove(q, &w);
  return r == 0 ? ETIMEDOUT : r;
}

/* Wakes up to n waiters (all when n < 0), oldest first; returns how many. */
int gilua__notify(gilua_waitq *q, int n) {
  int k = 0;
  while (q->head && (n < 0 || k < n)) {
    gilua_waiter *w = q->head;
    gilua_tstate *ts = w->ts;
    waitq_remove(q, w);
    atomic_store(&w->notified, 1); /* w may vanish once this is seen */
    gilua__unpark(ts);
    k++;
  }
  return k;
}

/* }==================================================================== */

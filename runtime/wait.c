/*
** wait.c: every blocking wait of the runtime, in one place.
**
** ==== The one rule ====
** A binding that must wait never releases the GIL itself: it tries with
** the GIL held, and when that fails it calls one of the functions here,
** which own the deadline (absolute, so it survives spurious wake-ups
** unchanged), the release and re-take of the GIL, and what an interrupt
** does.  The interrupt rule is the caller's choice (runtime.h): raise at
** once, return GILUA_EINTR and leave the interrupt pending, or ignore it
** and keep waiting.  Only the main thread is ever interrupted.
**
** ==== Parking ====
** A thread that waits without the GIL for GIL-guarded state (a lock, a
** queue, a join) sleeps on its own mutex and monotonic condition
** variable.  Whoever wakes it sets the waiter's flag first, then signals
** under park_mu, so a wake-up between the waiter's check and its sleep is
** never lost.  A waiter with a flag to watch spins on it for up to
** PARK_SPIN_NS before it sleeps: ping-pong hand-offs (a future's result,
** an event) then skip the scheduler entirely.
**
** ==== Wait queues ====
** Every blocking primitive is GIL-protected state plus a gilua_waitq.
** Queues are only touched with the GIL held, so they need no lock of
** their own.  A notifier dequeues the waiter before it sets the flag; a
** waiter that gives up (deadline, interrupt) dequeues itself.
**
** ==== I/O waits and the wake-up fd ====
** A thread blocked in poll() cannot be woken through its condition
** variable, so each thread also has an eventfd, made the first time it
** waits for I/O, that its polls watch beside their own descriptors.
** gilua_interrupt() writes it (after setting the interrupt flag, seq_cst:
** a thread that makes its eventfd after the interrupter looked for it
** sees the flag before it polls), and so does the close of a handle the
** thread is using.  A wake-up that finds nothing to do is consumed and
** the poll goes on.
**
** ==== Handles ====
** A file or socket used by a thread that released the GIL is 'busy'.
** Its close() (GIL held) sets 'closing', wakes every busy thread through
** its eventfd, and waits on 'idle' until the last one has left; only then
** is the descriptor closed, so no thread ever polls or reads a closed (or
** reused) descriptor.  The woken threads see 'closing' and return
** GILUA_ECLOSED, which the bindings turn into their closed result.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "internal.h"

/* Whether an interrupt is pending for ts and the rule says to look. */
static int interrupted(gilua_tstate *ts, int intr) {
  return intr != GILUA_NOINTR && ts->kind == GILUA_TK_MAIN &&
         atomic_load(&ts->interrupt);
}

/* {====================================================================
** Parking (no GIL)
** ===================================================================== */

int gilua__park(gilua_tstate *ts, int64_t deadline, atomic_int *flag,
                int intr) {
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
  gilua__mutex_lock(&ts->park_mu);
  for (;;) {
    if (flag && atomic_load(flag)) {
      r = 0;
      break;
    }
    if (interrupted(ts, intr)) {
      r = GILUA_EINTR;
      break;
    }
    if (deadline != GILUA_FOREVER && gilua__now() >= deadline) {
      r = GILUA_ETIMEDOUT;
      break;
    }
    gilua__cv_wait_until(&ts->park_cv, &ts->park_mu, deadline);
  }
  gilua__mutex_unlock(&ts->park_mu);
  return r;
}

void gilua__unpark(gilua_tstate *ts) {
  gilua__mutex_lock(&ts->park_mu);
  gilua__cond_signal(&ts->park_cv);
  gilua__mutex_unlock(&ts->park_mu);
}

/* }==================================================================== */

/* {====================================================================
** Wait queues (GIL held on entry and on return)
** ===================================================================== */

int gilua__waitq_empty(const gilua_waitq *q) { return q->head == NULL; }

static void waitq_add(gilua_waitq *q, gilua_waiter *w, gilua_tstate *ts) {
  w->ts = ts;
  w->next = NULL;
  w->prev = q->tail;
  atomic_init(&w->notified, 0);
  if (q->tail)
    q->tail->next = w;
  else
    q->head = w;
  q->tail = w;
}

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

static int passed(int64_t deadline) {
  return deadline != GILUA_FOREVER && gilua__now() >= deadline;
}

int gilua__wait_ts(gilua_tstate *ts, gilua_waitq *q, int64_t deadline,
                   gilua_reason why, int intr) {
  GILUA_ASSERT_HELD(ts);
  if (interrupted(ts, intr))
    return GILUA_EINTR;
  if (atomic_load(&ts->u->gil.frozen)) /* nobody else runs: never woken */
    return GILUA_ESHUTDOWN;
  if (passed(deadline)) /* a zero timeout keeps the GIL */
    return GILUA_ETIMEDOUT;
  gilua_waiter w;
  waitq_add(q, &w, ts);
  gilua__gil_drop(ts, why);
  int r = gilua__park(ts, deadline, &w.notified, intr);
  gilua__gil_take(ts);
  if (atomic_load(&w.notified))
    return 0; /* the notifier dequeued us */
  waitq_remove(q, &w);
  return r == 0 ? GILUA_ETIMEDOUT : r;
}

void gilua__check_interrupt(lua_State *L) {
  gilua_tstate *ts = gilua__self(L);
  if (ts->kind == GILUA_TK_MAIN && atomic_exchange(&ts->interrupt, 0))
    luaL_error(L, "interrupted!");
}

/* The interrupt rule, applied to a wait's result; a wait at interpreter
** shutdown (a finalizer run by lua_close) raises whatever the rule. */
static int apply(lua_State *L, int r, int intr) {
  if (r == GILUA_EINTR && intr == GILUA_RAISE)
    gilua__check_interrupt(L);
  if (r == GILUA_ESHUTDOWN) {
    lua_Debug ar; /* name the function that would wait */
    const char *name = "?";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name)
      name = ar.name;
    luaL_error(L,
               "%s: cannot wait at interpreter shutdown (no other thread "
               "runs any more)",
               name);
  }
  return r;
}

int gilua__wait(lua_State *L, gilua_waitq *q, int64_t deadline,
                gilua_reason why, int intr) {
  return apply(L, gilua__wait_ts(gilua__self(L), q, deadline, why, intr), intr);
}

int gilua__wait_for(lua_State *L, gilua_waitq *q, int64_t deadline,
                    gilua_reason why, int intr, int (*ready)(void *ud),
                    void *ud) {
  gilua_tstate *ts = gilua__self(L);
  for (;;) {
    if (ready(ud))
      return 0;
    int r = gilua__wait_ts(ts, q, deadline, why, intr);
    if (r != 0 && !ready(ud))
      return apply(L, r, intr);
  }
}

/* Wakes up to n waiters (all when n < 0), oldest first; returns how many. */
int gilua__notify(gilua_waitq *q, int n) {
  int k = 0;
  while (q->head && (n < 0 || k < n)) {
    gilua_waiter *w = q->head;
    gilua_tstate *ts = w->ts;
    GILUA_ASSERT_HELD_HERE(ts->u);
    waitq_remove(q, w);
    atomic_store(&w->notified, 1); /* w may vanish once this is seen */
    gilua__unpark(ts);
    k++;
  }
  return k;
}

int gilua__sleep(lua_State *L, double seconds, int intr) {
  gilua_tstate *ts = gilua__self(L);
  GILUA_ASSERT_HELD(ts);
  if (interrupted(ts, intr))
    return apply(L, GILUA_EINTR, intr);
  if (atomic_load(&ts->u->gil.frozen)) /* a finalizer at exit: no-one else */
    return 0;
  int64_t deadline = gilua__deadline(seconds);
  /* sleep(0) is a yield: to the policy, not a wait */
  gilua__gil_drop(ts, seconds > 0 ? GILUA_DROP_SLEEP : GILUA_DROP_YIELD);
  int r = gilua__park(ts, deadline, NULL, intr);
  gilua__gil_take(ts);
  return apply(L, r == GILUA_EINTR ? r : 0, intr);
}

/* }==================================================================== */

/* {====================================================================
** The wake-up fd
** ===================================================================== */

/* The calling thread's eventfd, made on first use; -1 if none could be
** made (then only the deadline ends its polls). */
static int wakefd(gilua_tstate *ts) {
  int fd = atomic_load(&ts->wakefd);
  if (fd < 0) {
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_store(&ts->wakefd, fd);
  }
  return fd;
}

/* Any thread: makes ts's current or next poll return. */
void gilua__wake(gilua_tstate *ts) {
  int fd = atomic_load(&ts->wakefd);
  if (fd >= 0) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already non-zero */
  }
}

void gilua__wakefd_close(gilua_tstate *ts) {
  int fd = atomic_exchange(&ts->wakefd, -1);
  if (fd >= 0)
    close(fd);
}

/* }==================================================================== */

/* {====================================================================
** Handles and blocking regions
** ===================================================================== */

void gilua__handle_init(gilua_handle *h) {
  h->busy = 0;
  atomic_init(&h->closing, 0);
  h->users.head = h->users.tail = NULL;
  h->idle.head = h->idle.tail = NULL;
}

int gilua__handle_closing(gilua_handle *h) { return atomic_load(&h->closing); }

void gilua__handle_close(lua_State *L, gilua_handle *h) {
  gilua_tstate *self = gilua__self(L);
  atomic_store(&h->closing, 1);
  for (gilua_waiter *w = h->users.head; w; w = w->next)
    gilua__wake(w->ts);
  while (h->busy > 0)
    gilua__wait_ts(self, &h->idle, GILUA_FOREVER, GILUA_DROP_IO, GILUA_NOINTR);
}

void gilua__block_begin(lua_State *L, gilua_block *b, gilua_handle *h,
                        gilua_reason why) {
  gilua_tstate *ts = gilua__self(L);
  GILUA_ASSERT_HELD(ts);
  b->ts = ts;
  b->h = h;
  b->intr = GILUA_RAISE;
  wakefd(ts);
  if (h) {
    h->busy++;
    waitq_add(&h->users, &b->w, ts);
  }
  gilua__gil_drop(ts, why);
}

void gilua__block_end(gilua_block *b) {
  gilua__gil_take(b->ts);
  gilua_handle *h = b->h;
  if (h) {
    waitq_remove(&h->users, &b->w);
    if (--h->busy == 0 && atomic_load(&h->closing))
      gilua__notify(&h->idle, -1);
  }
}

int gilua__block_wakefd(gilua_block *b) { return atomic_load(&b->ts->wakefd); }

/* Why the thread of b must stop waiting, or 0. */
static int must_stop(gilua_block *b) {
  if (b->h && atomic_load(&b->h->closing))
    return GILUA_ECLOSED;
  if (interrupted(b->ts, b->intr))
    return GILUA_EINTR;
  return 0;
}

/* Reads the eventfd's counter back to zero. */
static void drain(int fd) {
  uint64_t v;
  ssize_t r = read(fd, &v, sizeof v);
  (void)r;
}

int gilua__block_check(gilua_block *b) {
  GILUA_ASSERT_NOT_HELD(b->ts);
  int r = must_stop(b);
  if (r == 0 && atomic_load(&b->ts->wakefd) >= 0)
    drain(atomic_load(&b->ts->wakefd));
  return r;
}

int gilua__block_poll(gilua_block *b, struct pollfd *fds, int n,
                      int64_t deadline) {
  struct pollfd small[9], *p = small;
  int wfd = gilua__block_wakefd(b);
  if (n + 1 > (int)(sizeof small / sizeof small[0])) {
    p = malloc(sizeof *p * (size_t)(n + 1));
    if (p == NULL)
      return 0; /* let the operation itself report the failure */
  }
  int r;
  for (;;) {
    if ((r = must_stop(b)) != 0)
      break;
    int ms = -1;
    if (deadline != GILUA_FOREVER) {
      int64_t left = deadline - gilua__now();
      if (left <= 0) {
        r = GILUA_ETIMEDOUT;
        break;
      }
      ms = left / 1000000 >= INT32_MAX ? INT32_MAX
                                       : (int)((left + 999999) / 1000000);
    }
    memcpy(p, fds, sizeof *p * (size_t)n);
    p[n].fd = wfd; /* a negative fd is ignored by poll */
    p[n].events = POLLIN;
    p[n].revents = 0;
    int k = poll(p, (nfds_t)(n + 1), ms);
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      r = 0; /* EFAULT, ENOMEM: the operation will fail and say why */
      break;
    }
    if (p[n].revents & POLLIN)
      drain(wfd); /* then look again at why we were woken */
    if (k > (p[n].revents != 0)) {
      for (int i = 0; i < n; i++)
        fds[i].revents = p[i].revents;
      r = 0;
      break;
    }
  }
  if (p != small)
    free(p);
  return r;
}

int gilua__poll(lua_State *L, gilua_handle *h, struct pollfd *fds, int n,
                int64_t deadline, int intr) {
  gilua_block b;
  if (h && atomic_load(&h->closing))
    return GILUA_ECLOSED;
  gilua__block_begin(L, &b, h, GILUA_DROP_IO);
  b.intr = intr;
  int r = gilua__block_poll(&b, fds, n, deadline);
  gilua__block_end(&b);
  return apply(L, r, intr);
}

/* }==================================================================== */

/*
** sys.c: the clock and the checked pthread calls the runtime is built on.
**
** libuv's rule: a pthread call that can only fail through a bug (a mutex
** that is not locked, a destroyed condition variable) is checked, and a
** failure aborts with the name of the call.  Debug builds make every mutex
** PTHREAD_MUTEX_ERRORCHECK, so such a bug is reported where it happens.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int64_t gilua__now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t gilua__deadline(double seconds) {
  if (!(seconds >= 0) || seconds > 1e9) /* -1 means forever; so do 30 years */
    return GILUA_FOREVER;
  return gilua__now() + (int64_t)(seconds * 1e9);
}

void gilua__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

void gilua__fatal(const char *what, int err) {
  fprintf(stderr, "gilua: fatal: %s failed: %s\n", what, strerror(err));
  fflush(stderr);
  abort();
}

#define CHECK(call, name)                                                      \
  do {                                                                         \
    int r_ = (call);                                                           \
    if (r_ != 0)                                                               \
      gilua__fatal(name, r_);                                                  \
  } while (0)

void gilua__mutex_init(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  CHECK(pthread_mutexattr_init(&a), "pthread_mutexattr_init");
#ifndef NDEBUG
  CHECK(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK),
        "pthread_mutexattr_settype");
#endif
  CHECK(pthread_mutex_init(m, &a), "pthread_mutex_init");
  pthread_mutexattr_destroy(&a);
}

void gilua__mutex_destroy(pthread_mutex_t *m) {
  CHECK(pthread_mutex_destroy(m), "pthread_mutex_destroy");
}

void gilua__cond_init(pthread_cond_t *c) {
  pthread_condattr_t a;
  CHECK(pthread_condattr_init(&a), "pthread_condattr_init");
  CHECK(pthread_condattr_setclock(&a, CLOCK_MONOTONIC),
        "pthread_condattr_setclock");
  CHECK(pthread_cond_init(c, &a), "pthread_cond_init");
  pthread_condattr_destroy(&a);
}

void gilua__cond_destroy(pthread_cond_t *c) {
  CHECK(pthread_cond_destroy(c), "pthread_cond_destroy");
}

void gilua__mutex_lock(pthread_mutex_t *m) {
  CHECK(pthread_mutex_lock(m), "pthread_mutex_lock");
}

void gilua__mutex_unlock(pthread_mutex_t *m) {
  CHECK(pthread_mutex_unlock(m), "pthread_mutex_unlock");
}

void gilua__cond_signal(pthread_cond_t *c) {
  CHECK(pthread_cond_signal(c), "pthread_cond_signal");
}

void gilua__cond_broadcast(pthread_cond_t *c) {
  CHECK(pthread_cond_broadcast(c), "pthread_cond_broadcast");
}

int gilua__cv_wait_until(pthread_cond_t *c, pthread_mutex_t *m,
                         int64_t deadline) {
  int r;
  if (deadline == GILUA_FOREVER) {
    r = pthread_cond_wait(c, m);
  } else {
    struct timespec t;
    t.tv_sec = (time_t)(deadline / 1000000000);
    t.tv_nsec = (long)(deadline % 1000000000);
    r = pthread_cond_timedwait(c, m, &t);
  }
  if (r != 0 && r != ETIMEDOUT)
    gilua__fatal("pthread_cond_wait", r);
  return r;
}

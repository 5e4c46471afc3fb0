/*
** ctest.h: a tiny harness for the C tests.  Each test case runs in a
** child process of its own under a timeout, so one crash or hang fails
** that case only.  Output is TAP; the exit status is 0 only if every case
** passed.
*/
#ifndef CTEST_H
#define CTEST_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ASSERT(c)                                                              \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,     \
              #c);                                                             \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define ASSERT_EQ(a, b)                                                        \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_) {                                                            \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
              __LINE__, #a, #b, a_, b_);                                       \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define ASSERT_STR(a, b)                                                       \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (a_ == NULL || strcmp(a_, b_) != 0) {                                   \
      fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,  \
              __LINE__, #a, #b, a_ ? a_ : "(null)", b_);                       \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

typedef struct {
  const char *name;
  void (*fn)(void);
  int timeout; /* seconds */
} ctest_case;

static inline double ctest_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline int ctest_run(const ctest_case *cases) {
  int n = 0, failed = 0;
  while (cases[n].name)
    n++;
  printf("1..%d\n", n);
  fflush(stdout);
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(cases[i].timeout);
      cases[i].fn();
      fflush(NULL);
      _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok) {
      failed++;
      if (WIFSIGNALED(st))
        printf("# killed by signal %d%s\n", WTERMSIG(st),
               WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
    }
    printf("%sok %d - %s\n", ok ? "" : "not ", i + 1, cases[i].name);
    fflush(stdout);
  }
  printf("# %d passed, %d failed\n", n - failed, failed);
  return failed ? 1 : 0;
}

#endif

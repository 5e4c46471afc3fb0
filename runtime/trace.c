/*
** trace.c: GIL statistics records and the GIL trace.
**
** Statistics: each thread has a record, updated by the thread itself
** while it holds the GIL.  Records of live threads are in u->stats; when
** a thread ends its record moves to u->ended, which keeps the most recent
** KEEP_ENDED; older ones are folded into u->folded, so totals stay right
** and a program that starts a million threads keeps a bounded list.
** gilua__stats_get copies everything into C memory first: building the
** Lua tables allocates, an allocation may run a finalizer, and a
** finalizer may let go of the GIL (and another thread reset the stats).
**
** A trace is Chrome trace-event JSON (Perfetto and chrome://tracing load
** it): one track per thread, named after it, and complete ("X") events for
** every span in which a thread held the GIL (with why it let go), waited
** for it, or was blocked in a call without it.  The GIL code reports each
** span as it ends; the text goes to an in-memory buffer under the trace's
** own mutex and out to the file when the buffer fills and at the end.
** The closing "]}" is written by trace_stop, by gilua_close, and, should
** the process exit without either (os.exit), by an atexit handler, so the
** file is valid JSON however the program ends.  The list of open traces
** for that handler is the only process-wide state here; it is touched only
** when a trace starts or stops.
*/

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FLUSH_AT (1 << 20) /* bytes of pending text */

struct gilua_trace {
  pthread_mutex_t mu;
  int active;
  FILE *f;
  int64_t t0; /* the trace's time 0 */
  int events; /* events written so far */
  char *buf;
  size_t len, cap;
  gilua_trace *next_open; /* the process's list of open traces */
};

static const char *const reason_names[GILUA_DROP_COUNT] = {
    "switch", "sleep", "wait",  "join",   "io",
    "host",   "exit",  "yield", "preempt"};

const char *gilua__reason_name(gilua_reason why) { return reason_names[why]; }

#define KEEP_ENDED 64 /* ended threads whose records are still listed */

static void list_add(gilua_tstats **head, gilua_tstats **tail,
                     gilua_tstats *st) {
  st->next = NULL;
  st->prev = tail ? *tail : NULL;
  if (tail) { /* at the end */
    if (*tail)
      (*tail)->next = st;
    else
      *head = st;
    *tail = st;
  } else { /* at the front */
    st->next = *head;
    if (*head)
      (*head)->prev = st;
    *head = st;
  }
}

static void list_del(gilua_tstats **head, gilua_tstats **tail,
                     gilua_tstats *st) {
  if (st->prev)
    st->prev->next = st->next;
  else
    *head = st->next;
  if (st->next)
    st->next->prev = st->prev;
  else if (tail)
    *tail = st->prev;
  st->prev = st->next = NULL;
}

gilua_tstats *gilua__stats_new(gilua_universe *u, const char *name) {
  gilua_tstats *st = calloc(1, sizeof *st);
  if (st == NULL)
    return NULL;
  snprintf(st->r.name, sizeof st->r.name, "%s", name);
  st->r.id = ++u->next_id;
  st->r.alive = 1;
  list_add(&u->stats, NULL, st);
  return st;
}

static void fold(gilua_statrec *into, const gilua_statrec *r) {
  into->acquisitions += r->acquisitions;
  into->preemptions += r->preemptions;
  for (int i = 0; i < GILUA_DROP_COUNT; i++)
    into->releases[i] += r->releases[i];
  into->wait_ns += r->wait_ns;
  into->held_ns += r->held_ns;
  if (r->max_wait_ns > into->max_wait_ns)
    into->max_wait_ns = r->max_wait_ns;
}

/* The thread of st has ended (GIL held; it still drops the GIL once more,
** so st itself stays allocated until a later call folds it). */
void gilua__stats_ended(gilua_universe *u, gilua_tstats *st) {
  st->r.alive = 0;
  list_del(&u->stats, NULL, st);
  list_add(&u->ended, &u->ended_tail, st);
  if (++u->ended_kept > KEEP_ENDED) {
    gilua_tstats *old = u->ended;
    list_del(&u->ended, &u->ended_tail, old);
    u->ended_kept--;
    fold(&u->folded, &old->r);
    u->folded_threads++;
    free(old);
  }
}

/* st belongs to a thread that never ran: it goes without a trace. */
void gilua__stats_forget(gilua_universe *u, gilua_tstats *st) {
  list_del(&u->stats, NULL, st);
  free(st);
}

void gilua__stats_free(gilua_universe *u) {
  while (u->stats) {
    gilua_tstats *st = u->stats;
    u->stats = st->next;
    free(st);
  }
  while (u->ended) {
    gilua_tstats *st = u->ended;
    u->ended = st->next;
    free(st);
  }
  u->ended_tail = NULL;
  free(u->trace_mem); /* stopped by now; its mutex is idle */
  u->trace_mem = NULL;
}

static int by_id(const void *a, const void *b) {
  long x = ((const gilua_statrec *)a)->id, y = ((const gilua_statrec *)b)->id;
  return (x > y) - (x < y);
}

int gilua__stats_get(lua_State *L, gilua_stats *s) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstate *self = gilua__self(L);
  int n = 0;
  for (gilua_tstats *st = u->stats; st; st = st->next)
    n++;
  n += u->ended_kept;
  memset(s, 0, sizeof *s);
  s->recs = malloc(sizeof *s->recs * (size_t)(n ? n : 1));
  if (s->recs == NULL)
    return ENOMEM;
  int64_t now = gilua__now();
  for (gilua_tstats *st = u->stats; st; st = st->next)
    s->recs[s->n++] = st->r;
  for (gilua_tstats *st = u->ended; st; st = st->next)
    s->recs[s->n++] = st->r;
  s->total = u->folded;
  for (int i = 0; i < s->n; i++) {
    if (self->st && s->recs[i].id == self->st->r.id)
      s->recs[i].held_ns += now - self->t_acq; /* the caller's hold so far */
    fold(&s->total, &s->recs[i]);
  }
  qsort(s->recs, (size_t)s->n, sizeof *s->recs, by_id);
  gilua__mutex_lock(&u->gil.mu);
  s->switches = u->gil.switches;
  s->policy = u->gil.policy == GILUA_POLICY_FAIR ? "fair" : "fifo";
  gilua__mutex_unlock(&u->gil.mu);
  s->elapsed_ns = now - u->stats_since;
  s->interval = u->interval;
  s->folded = u->folded_threads;
  return 0;
}

void gilua__stats_reset(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  while (u->ended) {
    gilua_tstats *st = u->ended;
    u->ended = st->next;
    free(st);
  }
  u->ended_tail = NULL;
  u->ended_kept = 0;
  memset(&u->folded, 0, sizeof u->folded);
  u->folded_threads = 0;
  for (gilua_tstats *st = u->stats; st; st = st->next) {
    st->r.acquisitions = st->r.preemptions = 0;
    memset(st->r.releases, 0, sizeof st->r.releases);
    st->r.wait_ns = st->r.max_wait_ns = st->r.held_ns = 0;
  }
  gilua_tstate *self = gilua__self(L);
  u->stats_since = self->t_acq = gilua__now();
}

/* {====================================================================
** Open traces, closed at exit if nobody else did
** ===================================================================== */

static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;
static gilua_trace *open_traces;

static void finish(gilua_trace *tr);

static void close_all_at_exit(void) {
  gilua__mutex_lock(&open_mu);
  for (gilua_trace *tr = open_traces; tr; tr = tr->next_open) {
    gilua__mutex_lock(&tr->mu);
    if (tr->active)
      finish(tr);
    gilua__mutex_unlock(&tr->mu);
  }
  open_traces = NULL;
  gilua__mutex_unlock(&open_mu);
}

static void register_atexit(void) { atexit(close_all_at_exit); }

static void open_add(gilua_trace *tr) {
  pthread_once(&atexit_once, register_atexit);
  gilua__mutex_lock(&open_mu);
  tr->next_open = open_traces;
  open_traces = tr;
  gilua__mutex_unlock(&open_mu);
}

static void open_remove(gilua_trace *tr) {
  gilua__mutex_lock(&open_mu);
  for (gilua_trace **p = &open_traces; *p; p = &(*p)->next_open)
    if (*p == tr) {
      *p = tr->next_open;
      break;
    }
  gilua__mutex_unlock(&open_mu);
}

/* }==================================================================== */

/* {====================================================================
** Writing (tr->mu held)
** ===================================================================== */

static void flush(gilua_trace *tr) {
  if (tr->len > 0 && tr->f)
    fwrite(tr->buf, 1, tr->len, tr->f);
  tr->len = 0;
}

static void emit(gilua_trace *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(gilua_trace *tr, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    size_t room = tr->cap - tr->len;
    va_start(ap, fmt);
    int n = vsnprintf(tr->buf + tr->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
      return;
    if ((size_t)n < room) {
      tr->len += (size_t)n;
      break;
    }
    flush(tr);
    if ((size_t)n >= tr->cap) { /* a huge event: grow */
      char *nb = realloc(tr->buf, (size_t)n + 1);
      if (nb == NULL)
        return;
      tr->buf = nb;
      tr->cap = (size_t)n + 1;
    }
  }
  if (tr->len >= FLUSH_AT)
    flush(tr);
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void json_escape(char *out, size_t size, const char *s) {
  size_t k = 0;
  for (; *s && k + 7 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[k++] = '\\';
      out[k++] = (char)c;
    } else if (c < 0x20) {
      k += (size_t)snprintf(out + k, size - k, "\\u%04x", c);
    } else {
      out[k++] = (char)c;
    }
  }
  out[k] = '\0';
}

static void event_sep(gilua_trace *tr) {
  emit(tr, tr->events++ ? ",\n" : "\n");
}

static void name_track(gilua_trace *tr, gilua_tstats *st) {
  char name[sizeof st->r.name * 6 + 1];
  json_escape(name, sizeof name, st->r.name);
  event_sep(tr);
  emit(tr,
       "{\"ph\":\"M\",\"pid\":1,\"tid\":%ld,\"name\":\"thread_name\","
       "\"args\":{\"name\":\"%s\"}}",
       st->r.id, name);
  event_sep(tr);
  emit(tr,
       "{\"ph\":\"M\",\"pid\":1,\"tid\":%ld,\"name\":\"thread_sort_index\","
       "\"args\":{\"sort_index\":%ld}}",
       st->r.id, st->r.id);
  st->traced = 1;
}

static void finish(gilua_trace *tr) {
  emit(tr, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":"
           "\"gilua " GILUA_VERSION "\"}}\n");
  flush(tr);
  if (tr->f)
    fclose(tr->f);
  tr->f = NULL;
  tr->active = 0;
}

/* }==================================================================== */

void gilua__trace_span(gilua_tstate *ts, int kind, gilua_reason why, int64_t t0,
                       int64_t t1) {
  gilua_trace *tr = atomic_load(&ts->u->trace);
  gilua_tstats *st = ts->st;
  if (tr == NULL || st == NULL)
    return;
  gilua__mutex_lock(&tr->mu);
  if (tr->active) {
    if (t0 < tr->t0)
      t0 = tr->t0; /* began before the trace did */
    if (!st->traced)
      name_track(tr, st);
    double ts_us = (double)(t0 - tr->t0) / 1e3;
    double dur_us = (double)(t1 - t0) / 1e3;
    event_sep(tr);
    switch (kind) {
    case GILUA_SPAN_HOLD:
      emit(tr,
           "{\"ph\":\"X\",\"pid\":1,\"tid\":%ld,\"ts\":%.3f,\"dur\":%.3f,"
           "\"name\":\"holds the GIL\",\"cat\":\"hold\","
           "\"args\":{\"released\":\"%s\"}}",
           st->r.id, ts_us, dur_us, reason_names[why]);
      break;
    case GILUA_SPAN_WAIT:
      emit(tr,
           "{\"ph\":\"X\",\"pid\":1,\"tid\":%ld,\"ts\":%.3f,\"dur\":%.3f,"
           "\"name\":\"waits for the GIL\",\"cat\":\"wait\"}",
           st->r.id, ts_us, dur_us);
      break;
    default:
      emit(tr,
           "{\"ph\":\"X\",\"pid\":1,\"tid\":%ld,\"ts\":%.3f,\"dur\":%.3f,"
           "\"name\":\"blocked: %s\",\"cat\":\"blocked\","
           "\"args\":{\"call\":\"%s\"}}",
           st->r.id, ts_us, dur_us, reason_names[why], reason_names[why]);
    }
  }
  gilua__mutex_unlock(&tr->mu);
}

/* Starts tracing to 'path' (GIL held); 0, or an errno value. */
int gilua__trace_start(lua_State *L, const char *path) {
  gilua_universe *u = gilua__universe(L);
  gilua_trace *tr = u->trace_mem;
  if (tr == NULL) {
    tr = calloc(1, sizeof *tr);
    if (tr == NULL)
      return ENOMEM;
    gilua__mutex_init(&tr->mu);
    u->trace_mem = tr;
  }
  gilua__trace_stop_u(u);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return errno;
  gilua__mutex_lock(&tr->mu);
  if (tr->buf == NULL) {
    tr->cap = FLUSH_AT + 4096;
    tr->buf = malloc(tr->cap);
    if (tr->buf == NULL) {
      gilua__mutex_unlock(&tr->mu);
      fclose(f);
      return ENOMEM;
    }
  }
  tr->f = f;
  tr->len = 0;
  tr->events = 0;
  tr->t0 = gilua__now();
  tr->active = 1;
  emit(tr, "{\"traceEvents\":[");
  for (gilua_tstats *st = u->stats; st; st = st->next)
    st->traced = 0;
  for (gilua_tstats *st = u->ended; st; st = st->next)
    st->traced = 0;
  gilua__mutex_unlock(&tr->mu);
  open_add(tr);
  atomic_store(&u->trace, tr);
  return 0;
}

int gilua__trace_stop(lua_State *L) {
  return gilua__trace_stop_u(gilua__universe(L));
}

/* Stops the trace, if one runs, and completes its file. */
int gilua__trace_stop_u(gilua_universe *u) {
  gilua_trace *tr = u->trace_mem;
  if (tr == NULL)
    return 0;
  atomic_store(&u->trace, NULL);
  gilua__mutex_lock(&tr->mu);
  int was = tr->active;
  if (was)
    finish(tr);
  gilua__mutex_unlock(&tr->mu);
  if (was)
    open_remove(tr);
  return was;
}

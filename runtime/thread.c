/*
** thread.c: the life of a thread, as named transitions.
**
** ==== States ====
** A tstate is attached to one universe (gilua__tstate_attach) as the main
** thread, a started thread, or a host thread that came through
** gilua_ensure.  A started thread is NEW until gilua__thread_start, then
** RUNNING (listed in u->live, seen by enumerate) until its body returns,
** then DONE.  The main and host threads are RUNNING from attach to close
** or release.
**
** ==== A started thread ====
** gilua__thread_start (GIL held) anchors the Thread object and a fresh
** Lua thread in the registry, links the tstate and creates a detached OS
** thread, then waits on 'starters' until the new thread has taken the
** GIL once: start() returns after the thread has begun to run, as in
** Python (the tutorials' output order depends on it).  The OS thread:
**   enter  take the GIL, mark 'started', wake the starter;
**   body   the binding's function (bindings/thread.c calls self:run());
**   exit   mark DONE, unlink, wake the joiners, drop both registry
**          references, and let go of the GIL for the last time.
** After that it touches only its own tstate reference and the universe's
** exit counter.
**
** ==== References ====
** A tstate is reference counted: the creator (the Thread object, dropped
** by its __gc), the OS thread while it runs, and each joiner while it
** waits, so a joiner never reads freed memory, whatever order the object
** is collected in.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "internal.h"

gilua_tstate *gilua__tstate_attach(gilua_universe *u, int kind,
                                   const char *name) {
  gilua_tstate *ts = calloc(1, sizeof *ts);
  if (ts == NULL)
    return NULL;
  ts->u = u;
  ts->kind = kind;
  gilua__mutex_init(&ts->hook_mu);
  gilua__mutex_init(&ts->park_mu);
  gilua__cond_init(&ts->park_cv);
  gilua__cond_init(&ts->gil_cv);
  atomic_init(&ts->drop_req, 0);
  atomic_init(&ts->interrupt, 0);
  atomic_init(&ts->native_id, 0);
  atomic_init(&ts->wakefd, -1);
  atomic_init(&ts->refs, 1);
  ts->state = GILUA_TS_NEW;
  ts->ref_obj = ts->ref_co = LUA_NOREF;
  if (kind != GILUA_TK_THREAD) { /* running from now on, in this thread */
    ts->state = GILUA_TS_RUNNING;
    ts->thread = pthread_self();
    atomic_store(&ts->native_id, (long)syscall(SYS_gettid));
    if (name) /* a host thread makes its record once it holds the GIL */
      ts->st = gilua__stats_new(u, name);
  }
  return ts;
}

void gilua__tstate_decref(gilua_tstate *ts) {
  if (atomic_fetch_sub(&ts->refs, 1) == 1) {
    gilua__mutex_destroy(&ts->hook_mu);
    gilua__mutex_destroy(&ts->park_mu);
    gilua__cond_destroy(&ts->park_cv);
    gilua__cond_destroy(&ts->gil_cv);
    gilua__wakefd_close(ts);
    free(ts);
  }
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
** Started threads
** ===================================================================== */

gilua_tstate *gilua__thread_new(lua_State *L, const char *name, int daemon) {
  gilua_tstate *ts =
      gilua__tstate_attach(gilua__universe(L), GILUA_TK_THREAD, name);
  if (ts)
    ts->daemon = daemon;
  return ts;
}

void gilua__thread_unref(gilua_tstate *ts) { gilua__tstate_decref(ts); }

/* The end of a thread's life (GIL held; lets go of it for good). */
void gilua__thread_exit(gilua_tstate *ts, gilua_reason why) {
  GILUA_ASSERT_HELD(ts);
  lua_State *co = ts->L;
  ts->state = GILUA_TS_DONE;
  gilua__unlink(ts);
  if (ts->st)
    gilua__stats_ended(ts->u, ts->st);
  gilua__notify(&ts->joiners, -1);
  if (co)
    lua_settop(co, 0);
  gilua__running_set(ts, NULL);
  /* no allocation from here on: co is about to become garbage */
  if (co) {
    luaL_unref(co, LUA_REGISTRYINDEX, ts->ref_obj);
    luaL_unref(co, LUA_REGISTRYINDEX, ts->ref_co);
  }
  ts->ref_obj = ts->ref_co = LUA_NOREF;
  gilua__gil_drop(ts, why);
}

static void *os_main(void *arg) {
  gilua_tstate *ts = arg;
  gilua_universe *u = ts->u;
  gilua__current = ts;
  atomic_store(&ts->native_id, (long)syscall(SYS_gettid));
  /* Linux lets timed waits end up to 50 us late by default, which can
  ** reorder two sleeps that end 50 us apart: ask for precise wake-ups */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  gilua__gil_take(ts); /* enter */
  ts->started = 1;
  gilua__notify(&ts->starters, -1);
  ts->body(ts->L, ts);
  gilua__thread_exit(ts, GILUA_DROP_EXIT);
  gilua__current = NULL;
  gilua__tstate_decref(ts);
  gilua__mutex_lock(&u->mu);
  u->os_threads--;
  gilua__cond_broadcast(&u->exit_cv);
  gilua__mutex_unlock(&u->mu);
  return NULL;
}

/* Creates the detached OS thread of ts; 0 or an errno value. */
static int spawn(gilua_tstate *ts) {
  gilua_universe *u = ts->u;
  pthread_attr_t a;
  int r = pthread_attr_init(&a);
  if (r != 0)
    return r;
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (u->stack_size > 0 && (r = pthread_attr_setstacksize(&a, u->stack_size)))
    goto done;
  atomic_fetch_add(&ts->refs, 1); /* the OS thread's reference */
  gilua__mutex_lock(&u->mu);
  u->os_threads++;
  gilua__mutex_unlock(&u->mu);
  r = pthread_create(&ts->thread, &a, os_main, ts);
  if (r != 0) {
    gilua__mutex_lock(&u->mu);
    u->os_threads--;
    gilua__mutex_unlock(&u->mu);
    atomic_fetch_sub(&ts->refs, 1);
  }
done:
  pthread_attr_destroy(&a);
  return r;
}

/* The allocations of a start, protected: a memory error leaves ts NEW.
** Arguments: the Thread object, ts. */
static int anchor(lua_State *L) {
  gilua_tstate *ts = lua_touserdata(L, 2);
  lua_State *co = lua_newthread(L);
  ts->ref_co = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 1);
  ts->ref_obj = luaL_ref(L, LUA_REGISTRYINDEX);
  ts->L = co;
  return 0;
}

static int is_started(void *ud) { return ((gilua_tstate *)ud)->started; }

int gilua__thread_start(lua_State *L, gilua_tstate *ts, int obj,
                        const char *name, gilua_body body) {
  gilua_universe *u = ts->u;
  GILUA_ASSERT_HELD_HERE(u);
  if (ts->state != GILUA_TS_NEW)
    return EALREADY;
  if (atomic_load(&u->gil.frozen))
    return ESHUTDOWN; /* it could never run */
  /* Claimed now: an allocation below may run a finalizer that lets go of
  ** the GIL, and another thread must not start ts meanwhile. */
  ts->state = GILUA_TS_RUNNING;
  obj = lua_absindex(L, obj);
  lua_pushcfunction(L, anchor);
  lua_pushvalue(L, obj);
  lua_pushlightuserdata(L, ts);
  int r = lua_pcall(L, 2, 0, 0) == LUA_OK ? 0 : ENOMEM;
  if (r != 0)
    lua_pop(L, 1);
  if (r == 0 && (ts->st = gilua__stats_new(u, name)) == NULL)
    r = ENOMEM;
  if (r == 0) {
    ts->body = body;
    ts->running = ts->L;
    gilua__link(ts);
    if ((r = spawn(ts)) != 0)
      gilua__unlink(ts);
  }
  if (r != 0) {
    if (ts->st) {
      gilua__stats_forget(u, ts->st); /* it never ran */
      ts->st = NULL;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, ts->ref_obj);
    luaL_unref(L, LUA_REGISTRYINDEX, ts->ref_co);
    ts->ref_obj = ts->ref_co = LUA_NOREF;
    ts->L = ts->running = NULL;
    ts->state = GILUA_TS_NEW;
    return r;
  }
  /* the thread takes the GIL as soon as we wait: it runs until it blocks */
  gilua__wait_for(L, &ts->starters, GILUA_FOREVER, GILUA_DROP_JOIN,
                  GILUA_NOINTR, is_started, ts);
  return 0;
}

static int is_done(void *ud) {
  return ((gilua_tstate *)ud)->state == GILUA_TS_DONE;
}

int gilua__thread_join(lua_State *L, gilua_tstate *ts, int64_t deadline) {
  atomic_fetch_add(&ts->refs, 1); /* ts outlives this wait */
  int r = gilua__wait_for(L, &ts->joiners, deadline, GILUA_DROP_JOIN,
                          GILUA_DEFER, is_done, ts);
  int done = ts->state == GILUA_TS_DONE;
  gilua__tstate_decref(ts);
  if (r == GILUA_EINTR)
    gilua__check_interrupt(L);
  return done;
}

gilua_thstate gilua__thread_state(gilua_tstate *ts) { return ts->state; }
int gilua__thread_daemon(gilua_tstate *ts) { return ts->daemon; }
int gilua__thread_is_main(gilua_tstate *ts) {
  return ts->kind == GILUA_TK_MAIN;
}

lua_Integer gilua__thread_ident(gilua_tstate *ts) {
  return (lua_Integer)ts->thread;
}

lua_Integer gilua__thread_native_id(gilua_tstate *ts) {
  return (lua_Integer)atomic_load(&ts->native_id);
}

int gilua__thread_pushobj(lua_State *L, gilua_tstate *ts) {
  if (ts->ref_obj == LUA_NOREF) {
    lua_pushnil(L);
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ts->ref_obj);
  return 1;
}

void gilua__thread_setobj(lua_State *L, gilua_tstate *ts, int obj) {
  lua_pushvalue(L, obj);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  atomic_fetch_add(&ts->refs, 1); /* the object's reference */
  ts->ref_obj = ref;
}

static int count_objects(gilua_universe *u) {
  int n = 0;
  for (gilua_tstate *ts = u->live; ts; ts = ts->next)
    n += ts->ref_obj != LUA_NOREF;
  return n;
}

int gilua__thread_list(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  for (;;) {
    int n = count_objects(u);
    lua_createtable(L, n, 0); /* may run finalizers: count again */
    if (count_objects(u) != n) {
      lua_pop(L, 1);
      continue;
    }
    /* no allocation below: the array part has room for all n */
    int i = n;
    for (gilua_tstate *ts = u->live; ts; ts = ts->next)
      if (ts->ref_obj != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ts->ref_obj);
        lua_rawseti(L, -2, i--);
      }
    return n;
  }
}

/* }==================================================================== */

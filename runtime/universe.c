/*
** universe.c: creating and closing universes, and the embedding API.
**
** A universe is found from any of its lua_States through the extra space
** of the main state (lua_newthread copies it into every coroutine), so no
** process-wide table is needed: two universes share nothing.  The tstate
** of the calling OS thread is a thread-local pointer, checked against the
** universe (an OS thread may, through gilua_ensure, belong to several).
**
** This file makes universes but opens no library: bindings/init.c does
** (as Lua's linit.c), so runtime/ depends on nothing in bindings/.  It is
** the one file compiled twice: with GILUA_MODULE (threading.so, loaded by
** a lua5.4 that gilua did not build) the state's extra space is not ours,
** and the universe is found in the registry instead.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lualib.h"
#include "internal.h"

_Thread_local gilua_tstate *gilua__current;

const char *gilua_version(void) { return GILUA_VERSION; }

#ifndef GILUA_MODULE
gilua_universe *gilua__universe(lua_State *L) {
  return *(gilua_universe **)lua_getextraspace(L);
}

static void set_universe(lua_State *L, gilua_universe *u) {
  *(gilua_universe **)lua_getextraspace(L) = u;
}
#else
static const char UNIVERSE = 0;

gilua_universe *gilua__universe(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &UNIVERSE);
  gilua_universe *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
}

static void set_universe(lua_State *L, gilua_universe *u) {
  lua_pushlightuserdata(L, u);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &UNIVERSE);
}
#endif

gilua_tstate *gilua__self(lua_State *L) {
  gilua_tstate *ts = gilua__current;
  gilua_universe *u = gilua__universe(L);
  if (ts && ts->u == u)
    return ts;
  /* an OS thread attached to several universes: look it up (GIL held) */
  for (ts = u->live; ts; ts = ts->next)
    if (pthread_equal(ts->thread, pthread_self()))
      return ts;
  fprintf(stderr, "gilua: Lua called from a thread that holds no GIL\n");
  abort();
}

gilua_tstate *gilua__main(gilua_universe *u) { return u->main; }
int gilua__closing(lua_State *L) {
  return atomic_load(&gilua__universe(L)->gil.frozen);
}
int gilua__borrowed(gilua_universe *u) { return u->borrowed; }
size_t gilua__stack_size(gilua_universe *u) { return u->stack_size; }
void gilua__set_stack_size(gilua_universe *u, size_t n) { u->stack_size = n; }
lua_Integer gilua__next_name(gilua_universe *u) { return ++u->name_seq; }

/*
** Makes a universe around L, whose calling OS thread becomes the main
** thread and takes the GIL; NULL when out of memory.  'borrowed': L was
** made by someone else (threading.so).
*/
gilua_universe *gilua__universe_attach(lua_State *L, int borrowed) {
  gilua_universe *u = calloc(1, sizeof *u);
  if (u == NULL)
    return NULL;
  gilua__gil_init(&u->gil);
  gilua__mutex_init(&u->mu);
  gilua__cond_init(&u->exit_cv);
  u->interval = 0.005;
  u->L = L;
  u->borrowed = borrowed;
  u->stats_since = gilua__now();
  gilua_tstate *ts = gilua__tstate_attach(u, GILUA_TK_MAIN, "MainThread");
  if (ts == NULL) {
    gilua__mutex_destroy(&u->gil.mu);
    gilua__mutex_destroy(&u->mu);
    gilua__cond_destroy(&u->exit_cv);
    free(u);
    return NULL;
  }
  set_universe(L, u);
  ts->L = ts->running = L;
  u->main = ts;
  gilua__link(ts);
  gilua__current = ts;
  gilua__gil_take(ts);
  return u;
}

lua_State *gilua__universe_new(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  if (gilua__universe_attach(L, 0) == NULL) {
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Finds a live non-daemon thread other than the caller, or NULL. */
static gilua_tstate *nondaemon(gilua_universe *u, gilua_tstate *self) {
  for (gilua_tstate *t = u->live; t; t = t->next)
    if (t != self && !t->daemon && t->kind == GILUA_TK_THREAD &&
        t->state == GILUA_TS_RUNNING)
      return t;
  return NULL;
}

static const char ATEXIT = 0; /* registry: functions run before joining */

void gilua__atexit(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ATEXIT) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ATEXIT);
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, luaL_len(L, -2) + 1);
  lua_pop(L, 1);
}

/* Runs the exit hooks (once), then joins every non-daemon thread,
** including those started meanwhile. */
int gilua_waitthreads(lua_State *L) {
  gilua_tstate *self = gilua__self(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ATEXIT) == LUA_TTABLE) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ATEXIT);
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      lua_call(L, 0, 0);
    }
  }
  lua_pop(L, 1);
  gilua_tstate *m = self->u->main;
  if (self == m && m->state == GILUA_TS_RUNNING) {
    /* the main chunk has ended: main_thread():join() returns, as in
    ** CPython's threading._shutdown */
    m->state = GILUA_TS_DONE;
    gilua__notify(&m->joiners, -1);
  }
  gilua_tstate *t;
  while ((t = nondaemon(self->u, self)) != NULL)
    gilua__thread_join(L, t, GILUA_FOREVER);
  return 0;
}

/* Ends the universe's Lua life: from now on only the calling thread runs
** Lua, and no trace is recorded.  (threading.so's exit sentinel.) */
void gilua__universe_freeze(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua__trace_stop_u(u);
  gilua__gil_freeze(u->main);
}

int gilua_close(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstate *ts = u->main;
  int failed = 0;
  if (gilua__current != ts || !gilua__gil_owner(ts)) {
    fprintf(stderr, "gilua: gilua_close must be called from the universe's "
                    "main thread, holding the GIL\n");
    abort();
  }
  L = u->L;
  lua_pushcfunction(L, gilua_waitthreads);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
    failed = 1;
  }
  /* Daemon threads still running will park for good the next time they
  ** ask for the GIL; threads that have ended may still be on their way
  ** out of their OS thread: wait for those. */
  int stuck = 0;
  for (gilua_tstate *t = u->live; t; t = t->next)
    stuck +=
        (t != ts && t->kind == GILUA_TK_THREAD && t->state == GILUA_TS_RUNNING);
  gilua__trace_stop_u(u);
  gilua__gil_freeze(ts);
  lua_close(L);
  gilua__unlink(ts);
  if (gilua__current == ts)
    gilua__current = NULL;
  /* Daemon threads may still sleep on the universe's mutexes: then it
  ** must outlive this call, and is left for the process exit to reclaim. */
  gilua__mutex_lock(&u->mu);
  while (u->os_threads > stuck)
    gilua__cv_wait_until(&u->exit_cv, &u->mu, GILUA_FOREVER);
  int orphans = u->os_threads;
  gilua__mutex_unlock(&u->mu);
  if (orphans == 0) {
    gilua__stats_free(u);
    gilua__tstate_decref(ts);
    gilua__mutex_destroy(&u->mu);
    gilua__cond_destroy(&u->exit_cv);
    gilua__mutex_destroy(&u->gil.mu);
    free(u);
  }
  return failed;
}

gilua_tstate *gilua_unlock(lua_State *L) {
  gilua_tstate *ts = gilua__self(L);
  gilua__gil_drop(ts, GILUA_DROP_HOST);
  return ts;
}

void gilua_lock(gilua_tstate *ts) { gilua__gil_take(ts); }

int gilua_interrupt(lua_State *L) {
  return gilua__request_interrupt(gilua__universe(L)->main);
}

int gilua_setswitchinterval(lua_State *L, double seconds) {
  gilua_universe *u = gilua__universe(L);
  if (!(seconds > 0))
    return -1;
  double ns = seconds * 1e9;
  if (ns < 1)
    ns = 1;
  if (ns > 1e18)
    ns = 1e18;
  u->interval = seconds;
  atomic_store(&u->gil.interval_ns, (long long)ns);
  return 0;
}

double gilua_getswitchinterval(lua_State *L) {
  return gilua__universe(L)->interval;
}

int gilua_setswitchpolicy(lua_State *L, const char *name) {
  return gilua__gil_setpolicy(&gilua__universe(L)->gil, name);
}

const char *gilua_getswitchpolicy(lua_State *L) {
  return gilua__gil_policy(&gilua__universe(L)->gil);
}

/* {====================================================================
** Host threads: gilua_ensure / gilua_release
** ===================================================================== */

lua_State *gilua_ensure(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstate *ts = gilua__current;
  if (ts && ts->u == u) { /* already attached: nest */
    if (ts->ensure_depth++ == 0 && ts->kind != GILUA_TK_HOST) {
      ts->ensure_took = !gilua__gil_owner(ts);
      if (ts->ensure_took)
        gilua__gil_take(ts);
    }
    return ts->L;
  }
  char name[32];
  ts = gilua__tstate_attach(u, GILUA_TK_HOST, NULL);
  if (ts == NULL)
    return NULL;
  ts->daemon = 1;
  gilua__gil_take(ts);
  snprintf(name, sizeof name, "Dummy-%ld", u->next_id + 1);
  ts->st = gilua__stats_new(u, name);
  /* the main state's stack is only borrowed for one slot, GIL held */
  lua_State *T = lua_newthread(u->L);
  ts->ref_co = luaL_ref(u->L, LUA_REGISTRYINDEX);
  ts->L = T;
  gilua__running_set(ts, T);
  gilua__link(ts);
  ts->ensure_depth = 1;
  ts->prev_current = gilua__current;
  gilua__current = ts;
  return T;
}

void gilua_release(lua_State *T) {
  gilua_tstate *ts = gilua__self(T);
  if (ts->ensure_depth <= 0) {
    fprintf(stderr, "gilua: gilua_release without a matching gilua_ensure\n");
    abort();
  }
  if (--ts->ensure_depth > 0)
    return;
  if (ts->kind != GILUA_TK_HOST) { /* a thread of the universe: undo ensure */
    if (ts->ensure_took)
      gilua__gil_drop(ts, GILUA_DROP_HOST);
    return;
  }
  gilua__current = ts->prev_current;
  gilua__thread_exit(ts, GILUA_DROP_HOST);
  gilua__tstate_decref(ts);
}

/* }==================================================================== */

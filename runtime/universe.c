/*
** universe.c: creating and closing universes, and the embedding API.
**
** A universe is found from any of its lua_States through the extra space
** of the main state (lua_newthread copies it into every coroutine), so no
** process-wide table is needed: two universes share nothing.  The tstate
** of the calling OS thread is a thread-local pointer, checked against the
** universe (an OS thread may, through gilua_ensure, belong to several).
*/

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "lualib.h"
#include "internal.h"

_Thread_local gilua_tstate *gilua__current;

const char *gilua_version(void) { return GILUA_VERSION; }

#ifndef GILUA_MODULE
gilua_universe *gilua__universe(lua_State *L) {
  return *(gilua_universe **)lua_getextraspace(L);
}
#else
/* In threading.so the state was made by someone else: its coroutines'
** extra space is not ours, so the universe is found in the registry. */
static const char UNIVERSE = 0;

gilua_universe *gilua__universe(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &UNIVERSE);
  gilua_universe *u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
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

/* Raises "interrupted!" if an interrupt is pending for L's thread. */
int gilua__interrupted(lua_State *L) {
  gilua_tstate *ts = gilua__self(L);
  if (atomic_exchange(&ts->interrupt, 0))
    return luaL_error(L, "interrupted!");
  return 0;
}

/* Lua's standard libraries, in luaL_openlibs' order, with gilua's io. */
static int openall(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_LOADLIBNAME, luaopen_package},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_IOLIBNAME, gilua__open_io},
                                  {LUA_OSLIBNAME, luaopen_os},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {LUA_DBLIBNAME, luaopen_debug},
                                  {NULL, NULL}};
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  gilua__openlibs(L);
  return 0;
}

/* Makes a universe around L, whose calling OS thread becomes the main
** thread and takes the GIL; NULL when out of memory. */
static gilua_universe *attach(lua_State *L) {
  gilua_universe *u = calloc(1, sizeof *u);
  if (u == NULL)
    return NULL;
  gilua__gil_init(&u->gil);
  gilua__mutex_init(&u->mu);
  gilua__cond_init(&u->exit_cv);
  u->interval = 0.005;
  u->L = L;
#ifndef GILUA_MODULE
  *(gilua_universe **)lua_getextraspace(L) = u;
#else
  lua_pushlightuserdata(L, u);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &UNIVERSE);
#endif
  gilua_tstate *ts = gilua__tstate_new(u);
  if (ts == NULL) {
    free(u);
    return NULL;
  }
  ts->L = ts->running = L;
  ts->is_main = 1;
  u->stats_since = gilua__now();
  ts->st = gilua__stats_new(u, "MainThread");
  ts->state = GILUA_TS_RUNNING;
  ts->thread = pthread_self();
  atomic_store(&ts->native_id, (long)syscall(SYS_gettid));
  u->main = ts;
  gilua__link(ts);
  gilua__current = ts;
  gilua__gil_take(ts);
  return u;
}

lua_State *gilua_newstatex(unsigned flags) {
  lua_State *L = luaL_newstate();
  if (L == NULL)
    return NULL;
  if (attach(L) == NULL) {
    lua_close(L);
    return NULL;
  }
  if (flags & GILUA_NOENV) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, openall);
  int status = lua_pcall(L, 0, 0, 0);
  lua_gc(L, LUA_GCRESTART);
  if (status != LUA_OK) {
    gilua_close(L);
    return NULL;
  }
  return L;
}

lua_State *gilua_newstate(void) { return gilua_newstatex(0); }

/* Finds a live non-daemon thread other than the caller, or NULL. */
static gilua_tstate *nondaemon(gilua_universe *u, gilua_tstate *self) {
  for (gilua_tstate *t = u->live; t; t = t->next)
    if (t != self && !t->daemon && !t->foreign && t->state == GILUA_TS_RUNNING)
      return t;
  return NULL;
}

static const char ATEXIT = 0; /* registry: functions run before joining */

/* Registers the function on the top (popped) to run when the program
** ends, before its threads are joined (the executors' shutdown). */
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
  gilua_tstate *t;
  while ((t = nondaemon(self->u, self)) != NULL) {
    if (gilua__wait(self, &t->joiners, GILUA_FOREVER, GILUA_R_JOIN) == EINTR)
      atomic_store(&self->interrupt, 1);
    gilua__interrupted(L);
  }
  return 0;
}

int gilua_close(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstate *ts = u->main;
  int failed = 0;
#ifndef NDEBUG
  if (gilua__current != ts || !gilua__gil_held(ts)) {
    fprintf(stderr, "gilua: gilua_close must be called from the universe's "
                    "main thread, holding the GIL\n");
    abort();
  }
#endif
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
    stuck += (t != ts && !t->foreign && t->state == GILUA_TS_RUNNING);
  gilua__trace_stop(u);
  gilua__finalize(ts);
  lua_close(L);
  gilua__unlink(ts);
  if (gilua__current == ts)
    gilua__current = NULL;
  /* Daemon threads may still sleep on the universe's mutexes: then it
  ** must outlive this call, and is left for the process exit to reclaim. */
  pthread_mutex_lock(&u->mu);
  while (u->os_threads > stuck)
    pthread_cond_wait(&u->exit_cv, &u->mu);
  int orphans = u->os_threads;
  pthread_mutex_unlock(&u->mu);
  if (orphans == 0) {
    while (u->stats) {
      gilua_tstats *st = u->stats;
      u->stats = st->next;
      free(st);
    }
    free(u->trace_mem); /* stopped above; its mutex is idle */
    gilua__tstate_decref(ts);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->exit_cv);
    pthread_mutex_destroy(&u->gil.mu);
    free(u);
  }
  return failed;
}

gilua_tstate *gilua_unlock(lua_State *L) {
  gilua_tstate *ts = gilua__self(L);
  gilua__gil_drop(ts, GILUA_R_HOST);
  return ts;
}

void gilua_lock(gilua_tstate *ts) { gilua__gil_take(ts); }

void gilua_interrupt(lua_State *L) {
  gilua_tstate *m = gilua__universe(L)->main;
  atomic_store(&m->interrupt, 1);
  gilua__arm(m);
  gilua__unpark(m);
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

/* {====================================================================
** Host threads: gilua_ensure / gilua_release
** ===================================================================== */

lua_State *gilua_ensure(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstate *ts = gilua__current;
  if (ts && ts->u == u) { /* already attached: nest */
    if (ts->ensure_depth++ == 0 && !ts->foreign) {
      ts->ensure_took = !gilua__gil_held(ts);
      if (ts->ensure_took)
        gilua__gil_take(ts);
    }
    return ts->L;
  }
  ts = gilua__tstate_new(u);
  if (ts == NULL)
    return NULL;
  ts->foreign = 1;
  ts->daemon = 1;
  ts->thread = pthread_self();
  ts->state = GILUA_TS_RUNNING;
  atomic_store(&ts->native_id, (long)syscall(SYS_gettid));
  gilua__gil_take(ts);
  char name[32];
  snprintf(name, sizeof name, "Dummy-%ld", u->next_id + 1);
  ts->st = gilua__stats_new(u, name);
  /* the main state's stack is only borrowed for one slot, GIL held */
  lua_State *T = lua_newthread(u->L);
  ts->ref_co = luaL_ref(u->L, LUA_REGISTRYINDEX);
  ts->L = T;
  gilua__set_running(ts, T);
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
  if (!ts->foreign) { /* a thread of the universe: undo what ensure did */
    if (ts->ensure_took)
      gilua__gil_drop(ts, GILUA_R_HOST);
    return;
  }
  gilua__unlink(ts);
  gilua__set_running(ts, NULL);
  if (ts->st)
    ts->st->ended = 1;
  luaL_unref(T, LUA_REGISTRYINDEX, ts->ref_co);
  gilua__current = ts->prev_current;
  gilua__gil_drop(ts, GILUA_R_HOST);
  gilua__tstate_decref(ts);
}

/* }==================================================================== */

/* Makes gilua's modules available to require() and replaces the standard
** functions that must know about threads (bindings/base.c). */
void gilua__openlibs(lua_State *L) {
  static const luaL_Reg modules[] = {{"threading", gilua__open_threading},
                                     {"time", gilua__open_time},
                                     {"queue", gilua__open_queue},
                                     {"futures", gilua__open_futures},
                                     {"socket", gilua__open_socket},
                                     {"http", gilua__open_http},
                                     {NULL, NULL}};
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  luaL_setfuncs(L, modules, 0);
  lua_pop(L, 1);
  gilua__open_base(L);
}

#ifdef GILUA_MODULE
/* {====================================================================
** threading.so: gilua's modules in a Lua that gilua did not make (the
** stock lua5.4 program).  require("threading") makes the universe around
** that state; the calling OS thread becomes its main thread.  At
** lua_close, an "exit sentinel" (the last object marked for finalization
** when the last thread started, so its finalizer runs before those of
** older objects) waits for the non-daemon threads, then parks the rest.
** ===================================================================== */

static const char SENTINEL = 0;

static int sentinel_gc(lua_State *L) {
  int *live = lua_touserdata(L, 1);
  if (!*live)
    return 0; /* replaced by a newer sentinel */
  lua_pushcfunction(L, gilua_waitthreads);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  gilua_universe *u = gilua__universe(L);
  gilua__trace_stop(u);
  gilua__finalize(u->main);
  return 0;
}

void gilua__exit_sentinel(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SENTINEL) == LUA_TUSERDATA)
    *(int *)lua_touserdata(L, -1) = 0;
  lua_pop(L, 1);
  int *live = lua_newuserdatauv(L, sizeof *live, 0);
  *live = 1;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINEL);
}

GILUA_API int luaopen_threading(lua_State *L) {
  if (gilua__universe(L) == NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *M = lua_tothread(L, -1);
    lua_pop(L, 1);
    gilua_universe *u = attach(M);
    if (u == NULL)
      return luaL_error(L, "threading: not enough memory");
    gilua__set_running(u->main, L);
    gilua__openlibs(L);
    gilua__exit_sentinel(L);
  }
  return gilua__open_threading(L);
}

/* }==================================================================== */
#else
void gilua__exit_sentinel(lua_State *L) { (void)L; }
#endif

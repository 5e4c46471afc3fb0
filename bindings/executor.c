/*
** executor.c: futures.ThreadPoolExecutor.
**
** The executor the user holds is a small handle on a 'core' (a userdata
** of its own) that keeps the pending futures in a ring and the workers'
** Thread objects.  Workers are non-daemon Threads (named PREFIX_i),
** created lazily, at most max_workers, an idle one reused before a new
** one is made; each refers to the core only, so when the user's handle
** is collected without shutdown() its __gc shuts the core down and the
** idle workers end, as Python's do once their executor is collected.  At
** the end of the program an exit hook shuts every executor down without
** cancelling, so queued work completes before the process exits.
**
** A worker whose initializer fails breaks the pool: every pending future
** fails with futures.BrokenExecutor, and so does every later submit().
** A worker that cannot be started leaves its future queued for the next.
*/

#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "bindings.h"

#define EXECUTOR "futures.ThreadPoolExecutor"
#define CORE "futures.executor_core"

typedef struct executorobj {
  lua_Integer max_workers;
  lua_Integer nworkers;
  lua_Integer idle; /* idle workers not yet woken by a submit */
  int shutdown;
  int broken;
  gilua_ring ring;  /* the pending futures */
  gilua_waitq work; /* idle workers */
} executorobj;

enum { EX_RING = 1, EX_THREADS, EX_PREFIX, EX_INIT, EX_INITARGS };

static const char BROKEN = 0;
static const char EXECUTORS = 0; /* registry: live cores, for the exit */

static int raise_broken(lua_State *L) {
  return gilua__raise(L, &BROKEN, "futures.BrokenExecutor");
}

/* Checks the executor at index 1 and pushes its core; returns the core. */
static executorobj *check_executor(lua_State *L) {
  luaL_checkudata(L, 1, EXECUTOR);
  lua_getiuservalue(L, 1, 1);
  return lua_touserdata(L, -1);
}

/* Fails (broken) or cancels every pending future of the core at 'exi'. */
static void drain(lua_State *L, executorobj *ex, int exi, int broken) {
  while (ex->ring.count > 0) {
    gilua__ring_pop(L, &ex->ring, exi, EX_RING);
    if (broken) {
      gilua__errvalue(L, &BROKEN, "futures.BrokenExecutor");
      gilua__future_fail(L, -2);
    } else {
      gilua__future_cancel(L, -1);
    }
    lua_pop(L, 1);
  }
}

/* Runs the initializer with its arguments (protected by the caller). */
static int call_initializer(lua_State *L) {
  int exi = lua_upvalueindex(1);
  lua_getiuservalue(L, exi, EX_INIT);
  lua_Integer n = 0;
  if (lua_getiuservalue(L, exi, EX_INITARGS) == LUA_TTABLE) {
    int args = lua_gettop(L);
    n = gilua__arglen(L, args, "ThreadPoolExecutor: 'initargs'");
    gilua__pushargs(L, args, n);
    lua_remove(L, args);
  } else {
    lua_pop(L, 1);
  }
  lua_call(L, (int)n, 0);
  return 0;
}

/* The body of a worker thread: upvalue 1 is its core. */
static int worker(lua_State *L) {
  int exi = lua_upvalueindex(1);
  executorobj *ex = lua_touserdata(L, exi);
  if (lua_getiuservalue(L, exi, EX_INIT) != LUA_TNIL) {
    lua_pushvalue(L, exi);
    lua_pushcclosure(L, call_initializer, 1);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      lua_pushfstring(L, "Exception in initializer: %s\n",
                      lua_isstring(L, -1) ? lua_tostring(L, -1)
                                          : luaL_typename(L, -1));
      gilua__write_stderr(L, lua_tostring(L, -1));
      ex->broken = 1; /* the pool is unusable: fail everything pending */
      drain(L, ex, exi, 1);
      ex->nworkers--;
      gilua__notify(&ex->work, -1);
      return 0;
    }
  }
  lua_settop(L, 0);
  for (;;) {
    if (ex->ring.count == 0) {
      if (ex->shutdown || ex->broken)
        break;
      /* counted idle until submit() wakes us; woken, we may find the work
      ** taken by a busy worker: then we count ourselves idle again */
      ex->idle++;
      gilua__wait(L, &ex->work, GILUA_FOREVER, GILUA_DROP_WAIT, GILUA_NOINTR);
      continue;
    }
    gilua__ring_pop(L, &ex->ring, exi, EX_RING);
    gilua__future_run(L, lua_gettop(L));
    lua_settop(L, 0);
  }
  ex->nworkers--;
  return 0;
}

/* Starts one more worker thread for the core at 'exi'; raises if it
** cannot (the future stays queued for the next worker). */
static void add_worker(lua_State *L, executorobj *ex, int exi) {
  int top = lua_gettop(L);
  luaL_requiref(L, "threading", gilua__open_threading, 0);
  lua_getfield(L, -1, "Thread");
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, exi);
  lua_pushcclosure(L, worker, 1);
  lua_setfield(L, -2, "target");
  lua_getiuservalue(L, exi, EX_THREADS);
  lua_Integer index = luaL_len(L, -1);
  lua_getiuservalue(L, exi, EX_PREFIX);
  lua_pushfstring(L, "%s_%I", lua_tostring(L, -1), index);
  lua_setfield(L, -4, "name");
  lua_pop(L, 2);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "daemon");
  lua_call(L, 1, 1); /* Thread{...} */
  int t = lua_gettop(L);
  lua_getfield(L, t, "start");
  lua_pushvalue(L, t);
  ex->nworkers++; /* counted before it runs: it may end at once */
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    ex->nworkers--;
    lua_error(L);
  }
  lua_getiuservalue(L, exi, EX_THREADS);
  lua_pushvalue(L, t);
  lua_rawseti(L, -2, luaL_len(L, -2) + 1);
  lua_settop(L, top);
}

/* The number of CPUs the process may use. */
static long cpu_count(void) {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
    return CPU_COUNT(&cpus);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

/* futures.ThreadPoolExecutor([max_workers]) or ({max_workers =,
** thread_name_prefix =, initializer =, initargs =}) -> executor */
static int executor_new(lua_State *L) {
  lua_settop(L, 1);
  if (lua_istable(L, 1)) { /* keyword arguments */
    lua_getfield(L, 1, "max_workers");
    lua_getfield(L, 1, "thread_name_prefix");
    lua_getfield(L, 1, "initializer");
    lua_getfield(L, 1, "initargs");
    lua_remove(L, 1);
  }
  lua_settop(L, 4);
  lua_Integer max_workers = luaL_optinteger(L, 1, 0);
  if (!lua_isnil(L, 1) && max_workers <= 0)
    return luaL_argerror(L, 1, "max_workers must be greater than 0");
  if (max_workers == 0) { /* Python's default */
    max_workers = cpu_count() + 4;
    if (max_workers > 32)
      max_workers = 32;
  }
  if (!lua_isnil(L, 2))
    luaL_checkstring(L, 2);
  if (!lua_isnil(L, 3))
    gilua__checkcallable(L, 3);
  if (!lua_isnil(L, 4))
    luaL_checktype(L, 4, LUA_TTABLE);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &EXECUTORS); /* made by the opener */
  int registry = lua_gettop(L);
  lua_getfield(L, registry, "seq");
  lua_Integer seq = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushinteger(L, seq + 1);
  lua_setfield(L, registry, "seq");
  executorobj *ex = lua_newuserdatauv(L, sizeof *ex, 5);
  memset(ex, 0, sizeof *ex);
  ex->max_workers = max_workers;
  int exi = lua_gettop(L);
  luaL_setmetatable(L, CORE);
  gilua__ring_init(L, &ex->ring, exi, EX_RING);
  lua_newtable(L);
  lua_setiuservalue(L, exi, EX_THREADS);
  if (lua_isnil(L, 2))
    lua_pushfstring(L, "ThreadPoolExecutor-%I", seq);
  else
    lua_pushvalue(L, 2);
  lua_setiuservalue(L, exi, EX_PREFIX);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, exi, EX_INIT);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, exi, EX_INITARGS);
  lua_pushvalue(L, exi); /* registered with weak keys, for the exit hook */
  lua_pushboolean(L, 1);
  lua_rawset(L, registry);
  lua_newuserdatauv(L, 1, 1); /* the handle */
  lua_pushvalue(L, exi);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, EXECUTOR);
  return 1;
}

/* ex:submit(fn, ...) -> Future */
static int executor_submit(lua_State *L) {
  executorobj *ex = check_executor(L);
  int exi = lua_gettop(L);
  gilua__checkcallable(L, 2);
  if (ex->broken)
    return raise_broken(L);
  if (ex->shutdown)
    return luaL_error(L, "ThreadPoolExecutor:submit: cannot schedule new "
                         "futures after shutdown");
  int n = exi - 3; /* f's arguments: 3 .. exi - 1 */
  gilua__future_new(L);
  int fut = lua_gettop(L);
  lua_createtable(L, n + 1, 1);
  for (int i = 0; i <= n; i++) {
    lua_pushvalue(L, 2 + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  gilua__future_setwork(L, fut);
  lua_pushvalue(L, fut);
  gilua__ring_push(L, &ex->ring, exi, EX_RING);
  if (ex->idle > 0) { /* wake an idle worker, once */
    ex->idle--;
    gilua__notify(&ex->work, 1);
  } else if (ex->nworkers < ex->max_workers) {
    add_worker(L, ex, exi);
  }
  lua_settop(L, fut);
  return 1;
}

/* Joins every worker thread of the core at 'exi'. */
static void join_workers(lua_State *L, int exi) {
  lua_getiuservalue(L, exi, EX_THREADS);
  int threads = lua_gettop(L);
  lua_Integer n = luaL_len(L, threads);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, threads, i);
    lua_getfield(L, -1, "join");
    lua_insert(L, -2);
    lua_call(L, 1, 0);
  }
  lua_pop(L, 1);
}

static void shutdown(lua_State *L, executorobj *ex, int exi, int cancel) {
  ex->shutdown = 1;
  if (cancel)
    drain(L, ex, exi, 0);
  gilua__notify(&ex->work, -1);
}

/* ex:shutdown([wait = true [, cancel_futures = false]]) */
static int executor_shutdown(lua_State *L) {
  static const char *const kw[] = {"wait", "cancel_futures", NULL};
  gilua__kwargs(L, 2, kw);
  lua_settop(L, 3);
  executorobj *ex = check_executor(L);
  int wait = lua_isnil(L, 2) || lua_toboolean(L, 2);
  shutdown(L, ex, 4, lua_toboolean(L, 3));
  if (wait)
    join_workers(L, 4);
  return 0;
}

static int with_shutdown(lua_State *L) {
  lua_settop(L, 1);
  return executor_shutdown(L);
}

static int with_nothing(lua_State *L) {
  (void)L;
  return 0;
}

/* ex:with(function(ex) ... end) -> its results; shutdown(true) after */
static int executor_with(lua_State *L) {
  luaL_checkudata(L, 1, EXECUTOR);
  gilua__checkcallable(L, 2);
  lua_settop(L, 2);
  lua_pushvalue(L, 1);
  return gilua__with(L, with_nothing, with_shutdown);
}

/* ex:map(f, items [, more items ...] [, timeout [, chunksize]]) -> array
** of results in the order of items; raises the first failed call's error */
static int executor_map(lua_State *L) {
  check_executor(L);
  lua_pop(L, 1);
  gilua__checkcallable(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int top = 3; /* the last list of items */
  while (lua_istable(L, top + 1))
    top++;
  int64_t deadline = gilua__optdeadline(L, top + 1, 1);
  if (!lua_isnoneornil(L, top + 2)) /* threads take items one by one */
    luaL_argcheck(L, luaL_checkinteger(L, top + 2) >= 1, top + 2,
                  "chunksize must be >= 1");
  lua_settop(L, top);
  int nlists = top - 2;
  lua_Integer n = -1;
  for (int k = 3; k <= top; k++) {
    luaL_checktype(L, k, LUA_TTABLE);
    lua_Integer len = luaL_len(L, k);
    if (n < 0 || len < n)
      n = len; /* Python's zip: the shortest */
  }
  luaL_argcheck(L, n <= GILUA_MAXARGS, 3, "too many items");
  lua_createtable(L, (int)n, 0); /* the futures */
  int futs = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushcfunction(L, executor_submit);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    for (int k = 3; k <= top; k++)
      lua_geti(L, k, i);
    lua_call(L, 2 + nlists, 1);
    lua_rawseti(L, futs, i);
  }
  lua_createtable(L, (int)n, 0); /* the results */
  int results = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, futs, i);
    int64_t now = gilua__now();
    lua_pushcfunction(L, gilua__future_result);
    lua_pushvalue(L, -2);
    if (deadline == GILUA_FOREVER)
      lua_pushnil(L);
    else
      lua_pushnumber(L, deadline > now ? (deadline - now) * 1e-9 : 0);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
      for (lua_Integer j = i; j <= n; j++) { /* the rest never start */
        lua_rawgeti(L, futs, j);
        gilua__future_cancel(L, lua_gettop(L));
        lua_pop(L, 1);
      }
      return lua_error(L);
    }
    lua_rawseti(L, results, i);
    lua_pop(L, 1);
  }
  return 1;
}

static int executor_close(lua_State *L) {
  lua_settop(L, 1);
  return executor_shutdown(L);
}

/* A handle collected without shutdown(): the workers end once idle. */
static int executor_gc(lua_State *L) {
  luaL_checkudata(L, 1, EXECUTOR);
  lua_getiuservalue(L, 1, 1);
  executorobj *ex = lua_touserdata(L, -1);
  if (ex) {
    ex->shutdown = 1;
    gilua__notify(&ex->work, -1);
  }
  return 0;
}

static int executor_tostring(lua_State *L) {
  executorobj *ex = check_executor(L);
  lua_pushfstring(L, EXECUTOR " (%I of %I workers, %I pending%s%s): %p",
                  ex->nworkers, ex->max_workers, ex->ring.count,
                  ex->shutdown ? ", shut down" : "",
                  ex->broken ? ", broken" : "", ex);
  return 1;
}

/* The exit hook: shut every executor down, without waiting, so that its
** workers finish what is queued and end. */
static int executors_atexit(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &EXECUTORS) != LUA_TTABLE)
    return 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TUSERDATA) {
      executorobj *ex = lua_touserdata(L, -1);
      ex->shutdown = 1;
      gilua__notify(&ex->work, -1);
    }
  }
  return 0;
}

static const luaL_Reg executor_methods[] = {{"submit", executor_submit},
                                            {"map", executor_map},
                                            {"shutdown", executor_shutdown},
                                            {"with", executor_with},
                                            {NULL, NULL}};

static const luaL_Reg executor_meta[] = {{"__close", executor_close},
                                         {"__gc", executor_gc},
                                         {"__tostring", executor_tostring},
                                         {NULL, NULL}};

/* Adds ThreadPoolExecutor and BrokenExecutor to the module on the top. */
void gilua__open_executor(lua_State *L) {
  gilua__newclass(L, EXECUTOR, executor_methods, executor_meta);
  gilua__newclass(L, CORE, NULL, NULL);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &EXECUTORS) == LUA_TNIL) {
    gilua__weaktable(L, "k");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &EXECUTORS);
    lua_pushcfunction(L, executors_atexit);
    gilua__atexit(L);
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, executor_new);
  lua_setfield(L, -2, "ThreadPoolExecutor");
  gilua__errvalue(L, &BROKEN, "futures.BrokenExecutor");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "BrokenExecutor");
  lua_setfield(L, -2, "BrokenThreadPool");
}

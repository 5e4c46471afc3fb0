/*
** futures.c: the futures module: Future, ThreadPoolExecutor, wait,
** as_completed (Python's concurrent.futures).
**
** A Future is GIL-guarded state plus a wait queue for result() and
** exception().  Its user values hold the work while it is pending (1:
** {fn, args..., n}), then its outcome (2: {results..., n} or the error
** value) and its callbacks (3).  futures.wait() and as_completed() must
** wake when any of many futures completes: every completion notifies one
** per-universe "hub" wait queue, and its waiters look again at their
** futures (each completion also gets a sequence number, so as_completed
** yields in completion order).
**
** An executor keeps pending futures in a ring (user value 1) and runs
** them on worker Threads (named PREFIX_i) created lazily, at most
** max_workers, an idle one reused before a new one is made.  Workers are
** non-daemon; at the end of the program an exit hook shuts every executor
** down without cancelling, so queued work completes before the process
** exits, as in Python.
*/

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define FUTURE "futures.Future"
#define EXECUTOR "futures.ThreadPoolExecutor"

enum { PENDING, RUNNING, CANCELLED, FINISHED };
static const char *const statenames[] = {"pending", "running", "cancelled",
                                         "finished"};

enum { UV_WORK = 1, UV_OUTCOME, UV_CALLBACKS };

typedef struct hubobj {
  gilua_waitq waiters;
  lua_Integer seq; /* completions so far */
} hubobj;

typedef struct futureobj {
  int state;
  int failed;          /* finished with an error */
  lua_Integer doneseq; /* when it completed, for as_completed */
  hubobj *hub;
  gilua_waitq waiters;
} futureobj;

static const char TIMEOUT = 0, CANCELLED_KEY = 0, BROKEN = 0, INVALID = 0,
                  HUB = 0;

static int raise_timeout(lua_State *L) {
  return gilua__raise(L, &TIMEOUT, "futures.TimeoutError");
}
static int raise_cancelled(lua_State *L) {
  return gilua__raise(L, &CANCELLED_KEY, "futures.CancelledError");
}
static int raise_broken(lua_State *L) {
  return gilua__raise(L, &BROKEN, "futures.BrokenExecutor");
}

static futureobj *check_future(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, FUTURE);
}

static hubobj *get_hub(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &HUB) == LUA_TNIL) {
    lua_pop(L, 1);
    hubobj *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HUB);
  }
  hubobj *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

/* Pushes a new pending Future. */
static futureobj *new_future(lua_State *L) {
  hubobj *hub = get_hub(L);
  futureobj *f = lua_newuserdatauv(L, sizeof *f, 3);
  memset(f, 0, sizeof *f);
  f->state = PENDING;
  f->hub = hub;
  luaL_setmetatable(L, FUTURE);
  return f;
}

static int isdone(futureobj *f) {
  return f->state == CANCELLED || f->state == FINISHED;
}

/* {====================================================================
** Completion
** ===================================================================== */

/* Writes one line to stderr with the GIL released. */
static void write_line(lua_State *L, const char *s) {
  gilua_tstate *ts = gilua__self(L);
  gilua__gil_drop(ts, GILUA_R_IO);
  fputs(s, stderr);
  fflush(stderr);
  gilua__gil_take(ts);
}

/* Calls cb(future); an error is reported and does not stop the others. */
static void run_callback(lua_State *L, int fut, int cb) {
  lua_pushvalue(L, cb);
  lua_pushvalue(L, fut);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = luaL_tolstring(L, -1, NULL);
    write_line(L, lua_pushfstring(L, "exception calling callback for %s: %s\n",
                                  luaL_tolstring(L, fut, NULL), msg));
    lua_pop(L, 4);
  }
}

/* Marks the future at 'fut' done: wakes its waiters and the hub, then
** runs its callbacks in the order they were added. */
static void complete(lua_State *L, int fut) {
  futureobj *f = lua_touserdata(L, fut);
  fut = lua_absindex(L, fut);
  f->doneseq = ++f->hub->seq;
  gilua__notify(&f->waiters, -1);
  gilua__notify(&f->hub->waiters, -1);
  lua_pushnil(L);
  lua_setiuservalue(L, fut, UV_WORK);
  if (lua_getiuservalue(L, fut, UV_CALLBACKS) == LUA_TTABLE) {
    int cbs = lua_gettop(L);
    lua_pushnil(L);
    lua_setiuservalue(L, fut, UV_CALLBACKS);
    lua_Integer n = luaL_len(L, cbs);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, cbs, i);
      run_callback(L, fut, lua_gettop(L));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* Cancels a pending future; returns 0 if it is running or finished. */
static int cancel(lua_State *L, int fut) {
  futureobj *f = lua_touserdata(L, fut);
  if (f->state == RUNNING || f->state == FINISHED)
    return 0;
  if (f->state == PENDING) {
    f->state = CANCELLED;
    complete(L, fut);
  }
  return 1;
}

/* Runs the work of the future at 'fut' (a worker calls this). */
static void run_future(lua_State *L, int fut) {
  futureobj *f = lua_touserdata(L, fut);
  fut = lua_absindex(L, fut);
  if (f->state != PENDING)
    return; /* cancelled meanwhile */
  f->state = RUNNING;
  int base = lua_gettop(L);
  lua_getiuservalue(L, fut, UV_WORK);
  int work = base + 1;
  lua_getfield(L, work, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n + 2, "too many arguments");
  for (int i = 1; i <= n + 1; i++)
    lua_rawgeti(L, work, i);
  int status = lua_pcall(L, n, LUA_MULTRET, 0);
  if (status == LUA_OK) {
    int nres = lua_gettop(L) - work;
    lua_createtable(L, nres, 1);
    for (int i = 1; i <= nres; i++) {
      lua_pushvalue(L, work + i);
      lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, nres);
    lua_setfield(L, -2, "n");
  } else {
    f->failed = 1;
  }
  lua_setiuservalue(L, fut, UV_OUTCOME);
  f->state = FINISHED;
  lua_settop(L, base);
  complete(L, fut);
}

/* }==================================================================== */

/* {====================================================================
** Future methods
** ===================================================================== */

/* Waits until the future is done or 'timeout' (< 0: forever) passes;
** raises futures.TimeoutError then, futures.CancelledError if cancelled. */
static void wait_done(lua_State *L, futureobj *f, double timeout) {
  int64_t deadline = gilua__deadline(timeout);
  while (!isdone(f)) {
    int r = gilua__wait(gilua__self(L), &f->waiters, deadline, GILUA_R_WAIT);
    if (r == EINTR)
      gilua__interrupted(L);
    if (r == ETIMEDOUT && !isdone(f))
      raise_timeout(L);
  }
  if (f->state == CANCELLED)
    raise_cancelled(L);
}

/* fut:result([timeout]) -> all of f's results; re-raises f's error */
static int future_result(lua_State *L) {
  futureobj *f = check_future(L, 1);
  double timeout = gilua__checktimeout(L, 2, 1, "Future:result");
  wait_done(L, f, timeout);
  lua_getiuservalue(L, 1, UV_OUTCOME);
  if (f->failed)
    return lua_error(L);
  int outcome = lua_gettop(L);
  lua_getfield(L, outcome, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, outcome, i);
  return n;
}

/* fut:exception([timeout]) -> f's error value, or nil */
static int future_exception(lua_State *L) {
  futureobj *f = check_future(L, 1);
  double timeout = gilua__checktimeout(L, 2, 1, "Future:exception");
  wait_done(L, f, timeout);
  if (!f->failed)
    return 0;
  lua_getiuservalue(L, 1, UV_OUTCOME);
  return 1;
}

static int future_done(lua_State *L) {
  lua_pushboolean(L, isdone(check_future(L, 1)));
  return 1;
}

static int future_running(lua_State *L) {
  lua_pushboolean(L, check_future(L, 1)->state == RUNNING);
  return 1;
}

static int future_cancelled(lua_State *L) {
  lua_pushboolean(L, check_future(L, 1)->state == CANCELLED);
  return 1;
}

/* fut:cancel() -> boolean */
static int future_cancel(lua_State *L) {
  check_future(L, 1);
  lua_pushboolean(L, cancel(L, 1));
  return 1;
}

/* fut:add_done_callback(fn): fn(fut) once done; at once if already done */
static int future_add_done_callback(lua_State *L) {
  futureobj *f = check_future(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  if (isdone(f)) {
    run_callback(L, 1, 2);
    return 0;
  }
  if (lua_getiuservalue(L, 1, UV_CALLBACKS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, UV_CALLBACKS);
  }
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, luaL_len(L, -2) + 1);
  return 0;
}

static int future_tostring(lua_State *L) {
  futureobj *f = check_future(L, 1);
  lua_pushfstring(L, FUTURE " (%s%s): %p", statenames[f->state],
                  f->failed ? ", raised" : "", f);
  return 1;
}

/* }==================================================================== */

/* {====================================================================
** ThreadPoolExecutor
** ===================================================================== */

typedef struct executorobj {
  lua_Integer max_workers;
  lua_Integer nworkers;
  lua_Integer idle; /* idle workers not yet woken by a submit */
  int shutdown;
  int broken;
  lua_Integer count, head, cap; /* the ring of pending futures */
  gilua_waitq work;             /* idle workers */
} executorobj;

enum { EX_RING = 1, EX_THREADS, EX_PREFIX, EX_INIT, EX_INITARGS };

static executorobj *check_executor(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, EXECUTOR);
}

/* Appends the future on the top (popped) to ex's ring (ex at 'exi'). */
static void ring_push(lua_State *L, executorobj *ex, int exi) {
  lua_getiuservalue(L, exi, EX_RING);
  int ring = lua_gettop(L);
  if (ex->count == ex->cap) {
    lua_Integer ncap = ex->cap * 2;
    lua_createtable(L, (int)ncap, 0);
    for (lua_Integer k = 0; k < ex->count; k++) {
      lua_rawgeti(L, ring, (ex->head + k) % ex->cap + 1);
      lua_rawseti(L, -2, k + 1);
    }
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, exi, EX_RING);
    lua_replace(L, ring);
    ex->head = 0;
    ex->cap = ncap;
  }
  lua_pushvalue(L, ring - 1);
  lua_rawseti(L, ring, (ex->head + ex->count) % ex->cap + 1);
  ex->count++;
  lua_pop(L, 2);
}

/* Pushes the oldest pending future and removes it from the ring. */
static void ring_pop(lua_State *L, executorobj *ex, int exi) {
  lua_getiuservalue(L, exi, EX_RING);
  lua_rawgeti(L, -1, ex->head + 1);
  lua_pushnil(L);
  lua_rawseti(L, -3, ex->head + 1);
  lua_remove(L, -2);
  ex->head = (ex->head + 1) % ex->cap;
  ex->count--;
}

/* Cancels every pending future (shutdown with cancel_futures, or a
** broken pool, which fails them instead). */
static void drain(lua_State *L, executorobj *ex, int exi, int broken) {
  while (ex->count > 0) {
    ring_pop(L, ex, exi);
    int fut = lua_gettop(L);
    futureobj *f = lua_touserdata(L, fut);
    if (broken && f->state == PENDING) {
      f->state = FINISHED;
      f->failed = 1;
      gilua__errvalue(L, &BROKEN, "futures.BrokenExecutor");
      lua_setiuservalue(L, fut, UV_OUTCOME);
      complete(L, fut);
    } else {
      cancel(L, fut);
    }
    lua_pop(L, 1);
  }
}

/* The body of a worker thread: upvalue 1 is its executor. */
static int worker(lua_State *L) {
  int exi = lua_upvalueindex(1);
  executorobj *ex = lua_touserdata(L, exi);
  gilua_tstate *self = gilua__self(L);
  if (lua_getiuservalue(L, exi, EX_INIT) != LUA_TNIL) {
    lua_getiuservalue(L, exi, EX_INITARGS);
    int n = 0;
    if (lua_istable(L, -1)) {
      int args = lua_gettop(L);
      n = (int)luaL_len(L, args);
      luaL_checkstack(L, n, "too many initargs");
      for (int i = 1; i <= n; i++)
        lua_geti(L, args, i);
      lua_remove(L, args);
    } else {
      lua_pop(L, 1);
    }
    if (lua_pcall(L, n, 0, 0) != LUA_OK) {
      write_line(L, lua_pushfstring(L, "Exception in initializer: %s\n",
                                    luaL_tolstring(L, -1, NULL)));
      ex->broken = 1; /* the pool is unusable: fail everything pending */
      drain(L, ex, exi, 1);
      ex->nworkers--;
      gilua__notify(&ex->work, -1);
      return 0;
    }
  } else {
    lua_pop(L, 1);
  }
  for (;;) {
    while (ex->count == 0) {
      if (ex->shutdown || ex->broken) {
        ex->nworkers--;
        return 0;
      }
      ex->idle++; /* submit() takes this back when it wakes us */
      gilua__wait(self, &ex->work, GILUA_FOREVER, GILUA_R_WAIT);
    }
    ring_pop(L, ex, exi);
    run_future(L, lua_gettop(L));
    lua_settop(L, 0);
  }
}

/* Starts one more worker thread. */
static void add_worker(lua_State *L, executorobj *ex, int exi) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "threading");
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
  lua_getiuservalue(L, exi, EX_THREADS);
  lua_pushvalue(L, t);
  lua_rawseti(L, -2, luaL_len(L, -2) + 1);
  lua_pop(L, 1);
  ex->nworkers++;
  lua_getfield(L, t, "start");
  lua_pushvalue(L, t);
  lua_call(L, 1, 0);
  lua_pop(L, 3);
}

static const char EXECUTORS = 0; /* registry: live executors, for exit */

/* futures.ThreadPoolExecutor([max_workers]) or ({max_workers =,
** thread_name_prefix =, initializer =, initargs =}) -> executor */
static int executor_new(lua_State *L) {
  lua_Integer max_workers = 0;
  lua_settop(L, 1);
  lua_pushnil(L); /* 2: prefix */
  lua_pushnil(L); /* 3: initializer */
  lua_pushnil(L); /* 4: initargs */
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "max_workers");
    max_workers = luaL_optinteger(L, -1, 0);
    if (!lua_isnil(L, -1) && max_workers <= 0)
      return luaL_error(L, "ThreadPoolExecutor: max_workers must be greater "
                           "than 0");
    lua_getfield(L, 1, "thread_name_prefix");
    lua_replace(L, 2);
    lua_getfield(L, 1, "initializer");
    lua_replace(L, 3);
    lua_getfield(L, 1, "initargs");
    lua_replace(L, 4);
    lua_settop(L, 4);
  } else if (!lua_isnil(L, 1)) {
    max_workers = luaL_checkinteger(L, 1);
    if (max_workers <= 0)
      return luaL_error(L, "ThreadPoolExecutor: max_workers must be greater "
                           "than 0");
  }
  if (max_workers == 0) { /* Python's default */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    max_workers = (ncpu > 0 ? ncpu : 1) + 4;
    if (max_workers > 32)
      max_workers = 32;
  }
  if (!lua_isnil(L, 3) && lua_type(L, 3) != LUA_TFUNCTION)
    luaL_error(L, "ThreadPoolExecutor: initializer must be a function");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &EXECUTORS); /* made by the opener */
  int registry = lua_gettop(L);
  lua_getfield(L, registry, "seq");
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushinteger(L, n + 1);
  lua_setfield(L, registry, "seq");
  executorobj *ex = lua_newuserdatauv(L, sizeof *ex, 5);
  memset(ex, 0, sizeof *ex);
  ex->max_workers = max_workers;
  ex->cap = 16;
  int exi = lua_gettop(L);
  luaL_setmetatable(L, EXECUTOR);
  lua_createtable(L, 16, 0);
  lua_setiuservalue(L, exi, EX_RING);
  lua_newtable(L);
  lua_setiuservalue(L, exi, EX_THREADS);
  if (lua_isnil(L, 2))
    lua_pushfstring(L, "ThreadPoolExecutor-%I", n);
  else
    luaL_tolstring(L, 2, NULL);
  lua_setiuservalue(L, exi, EX_PREFIX);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, exi, EX_INIT);
  lua_pushvalue(L, 4);
  lua_setiuservalue(L, exi, EX_INITARGS);
  lua_pushvalue(L, exi); /* registered with weak keys, for the exit hook */
  lua_pushboolean(L, 1);
  lua_rawset(L, registry);
  return 1;
}

/* ex:submit(fn, ...) -> Future */
static int executor_submit(lua_State *L) {
  executorobj *ex = check_executor(L, 1);
  luaL_checkany(L, 2);
  if (ex->broken)
    return raise_broken(L);
  if (ex->shutdown)
    return luaL_error(L, "ThreadPoolExecutor:submit: cannot schedule new "
                         "futures after shutdown");
  int n = lua_gettop(L) - 2;
  new_future(L);
  int fut = lua_gettop(L);
  lua_createtable(L, n + 1, 1);
  for (int i = 0; i <= n; i++) {
    lua_pushvalue(L, 2 + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  lua_setiuservalue(L, fut, UV_WORK);
  lua_pushvalue(L, fut);
  ring_push(L, ex, 1);
  if (ex->idle > 0) { /* wake an idle worker, once */
    ex->idle--;
    gilua__notify(&ex->work, 1);
  } else if (ex->nworkers < ex->max_workers)
    add_worker(L, ex, 1);
  lua_settop(L, fut);
  return 1;
}

/* Joins every worker thread of the executor at 'exi'. */
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

/* ex:shutdown([wait = true [, cancel_futures = false]]) */
static int executor_shutdown(lua_State *L) {
  executorobj *ex = check_executor(L, 1);
  int wait = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  int cancel_futures = lua_toboolean(L, 3);
  lua_settop(L, 1);
  ex->shutdown = 1;
  if (cancel_futures)
    drain(L, ex, 1, 0);
  gilua__notify(&ex->work, -1);
  if (wait)
    join_workers(L, 1);
  return 0;
}

static int with_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  int top = lua_gettop(L);
  lua_pushcfunction(L, executor_shutdown);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  lua_settop(L, top);
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L);
  return top - 1;
}

/* ex:with(function(ex) ... end) -> its results; shutdown(true) after */
static int executor_with(lua_State *L) {
  check_executor(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lua_pushvalue(L, 1);
  int status = lua_pcallk(L, 1, LUA_MULTRET, 0, 0, with_done);
  return with_done(L, status, 0);
}

/* ex:map(f, items [, more items ...] [, timeout]) -> array of results */
static int executor_map(lua_State *L) {
  check_executor(L, 1);
  luaL_checkany(L, 2);
  int top = lua_gettop(L);
  double timeout = -1;
  if (top >= 3 && !lua_istable(L, top)) {
    timeout = gilua__checktimeout(L, top, 1, "ThreadPoolExecutor:map");
    top--;
  }
  int64_t deadline = gilua__deadline(timeout);
  int nlists = top - 2;
  luaL_argcheck(L, nlists >= 1, 3, "table expected");
  lua_Integer n = -1;
  for (int k = 3; k <= top; k++) {
    luaL_checktype(L, k, LUA_TTABLE);
    lua_Integer len = luaL_len(L, k);
    if (n < 0 || len < n)
      n = len; /* Python's zip: the shortest */
  }
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
    lua_pushcfunction(L, future_result);
    lua_pushvalue(L, -2);
    if (deadline == GILUA_FOREVER)
      lua_pushnil(L);
    else
      lua_pushnumber(L, deadline > now ? (deadline - now) * 1e-9 : 0);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
      for (lua_Integer j = i; j <= n; j++) { /* the rest never start */
        lua_rawgeti(L, futs, j);
        cancel(L, lua_gettop(L));
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

static int executor_tostring(lua_State *L) {
  executorobj *ex = check_executor(L, 1);
  lua_pushfstring(L, EXECUTOR " (%I of %I workers, %I pending%s): %p",
                  ex->nworkers, ex->max_workers, ex->count,
                  ex->shutdown ? ", shut down" : "", ex);
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

/* }==================================================================== */

/* {====================================================================
** futures.wait and futures.as_completed
** ===================================================================== */

enum { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
static const char *const whens[] = {"FIRST_COMPLETED", "FIRST_EXCEPTION",
                                    "ALL_COMPLETED", NULL};

/* Pushes an array of the distinct futures of the table at 'idx'. */
static int distinct(lua_State *L, int idx) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  lua_newtable(L); /* seen */
  lua_createtable(L, (int)n, 0);
  int k = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    check_future(L, -1);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_pushboolean(L, 1);
      lua_rawset(L, -5);
      lua_rawseti(L, -2, ++k);
    } else {
      lua_pop(L, 2);
    }
  }
  lua_remove(L, -2);
  return k;
}

/* Waits on the hub until something completes or 'deadline'. */
static int wait_hub(lua_State *L, hubobj *hub, int64_t deadline) {
  int r = gilua__wait(gilua__self(L), &hub->waiters, deadline, GILUA_R_WAIT);
  if (r == EINTR)
    gilua__interrupted(L);
  return r != ETIMEDOUT;
}

/* futures.wait(fs [, timeout [, return_when]]) -> done, not_done */
static int futures_wait(lua_State *L) {
  double timeout = gilua__checktimeout(L, 2, 1, "futures.wait");
  int when = luaL_checkoption(L, 3, "ALL_COMPLETED", whens);
  lua_settop(L, 1);
  int n = distinct(L, 1);
  int fs = lua_gettop(L);
  hubobj *hub = get_hub(L);
  int64_t deadline = gilua__deadline(timeout);
  for (;;) {
    int ndone = 0, failed = 0;
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, fs, i);
      futureobj *f = lua_touserdata(L, -1);
      ndone += isdone(f);
      failed |= f->failed;
      lua_pop(L, 1);
    }
    int enough = ndone == n || (when == FIRST_COMPLETED && ndone > 0) ||
                 (when == FIRST_EXCEPTION && failed);
    if (enough || !wait_hub(L, hub, deadline))
      break;
  }
  lua_newtable(L);
  lua_newtable(L);
  int nd = 0, nn = 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, fs, i);
    int d = isdone(lua_touserdata(L, -1));
    lua_rawseti(L, d ? fs + 1 : fs + 2, d ? ++nd : ++nn);
  }
  return 2;
}

/* The iterator of as_completed: upvalues 1, the futures not yet given;
** 2, the deadline (a number of monotonic ns, or nil); 3, the total. */
static int as_completed_next(lua_State *L) {
  int fs = lua_upvalueindex(1);
  hubobj *hub = get_hub(L);
  int64_t deadline = lua_isnil(L, lua_upvalueindex(2))
                         ? GILUA_FOREVER
                         : (int64_t)lua_tointeger(L, lua_upvalueindex(2));
  for (;;) {
    lua_Integer n = luaL_len(L, fs), best = 0, bestseq = 0;
    if (n == 0)
      return 0;
    for (lua_Integer i = 1; i <= n; i++) { /* the earliest completed */
      lua_rawgeti(L, fs, i);
      futureobj *f = lua_touserdata(L, -1);
      if (isdone(f) && (best == 0 || f->doneseq < bestseq)) {
        best = i;
        bestseq = f->doneseq;
      }
      lua_pop(L, 1);
    }
    if (best > 0) {
      lua_rawgeti(L, fs, best);
      lua_rawgeti(L, fs, n); /* swap-remove: order kept by doneseq */
      lua_rawseti(L, fs, best);
      lua_pushnil(L);
      lua_rawseti(L, fs, n);
      return 1;
    }
    if (!wait_hub(L, hub, deadline))
      return raise_timeout(L);
  }
}

/* futures.as_completed(fs [, timeout]) -> iterator over the futures, in
** the order they complete (those already done first) */
static int futures_as_completed(lua_State *L) {
  double timeout = gilua__checktimeout(L, 2, 1, "futures.as_completed");
  lua_settop(L, 1);
  int n = distinct(L, 1);
  if (timeout >= 0)
    lua_pushinteger(L, (lua_Integer)gilua__deadline(timeout));
  else
    lua_pushnil(L);
  lua_pushinteger(L, n);
  lua_pushcclosure(L, as_completed_next, 3);
  return 1;
}

/* }==================================================================== */

static const luaL_Reg future_methods[] = {
    {"result", future_result},
    {"exception", future_exception},
    {"done", future_done},
    {"running", future_running},
    {"cancelled", future_cancelled},
    {"cancel", future_cancel},
    {"add_done_callback", future_add_done_callback},
    {NULL, NULL}};

static const luaL_Reg executor_methods[] = {{"submit", executor_submit},
                                            {"map", executor_map},
                                            {"shutdown", executor_shutdown},
                                            {"with", executor_with},
                                            {NULL, NULL}};

static const luaL_Reg futures_funcs[] = {{"ThreadPoolExecutor", executor_new},
                                         {"wait", futures_wait},
                                         {"as_completed", futures_as_completed},
                                         {NULL, NULL}};

static void createmeta(lua_State *L, const char *tname, const luaL_Reg *m,
                       lua_CFunction tostring) {
  luaL_newmetatable(L, tname);
  lua_newtable(L);
  luaL_setfuncs(L, m, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, tostring);
  lua_setfield(L, -2, "__tostring");
}

int gilua__open_futures(lua_State *L) {
  luaL_requiref(L, "threading", gilua__open_threading, 0);
  int threading = lua_gettop(L);
  createmeta(L, FUTURE, future_methods, future_tostring);
  lua_pop(L, 1);
  createmeta(L, EXECUTOR, executor_methods, executor_tostring);
  lua_pushcfunction(L, executor_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &EXECUTORS) == LUA_TNIL) {
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &EXECUTORS);
    lua_pushcfunction(L, executors_atexit);
    gilua__atexit(L);
  }
  lua_pop(L, 1);
  luaL_newlib(L, futures_funcs);
  for (int i = 0; whens[i]; i++) {
    lua_pushstring(L, whens[i]);
    lua_setfield(L, -2, whens[i]);
  }
  gilua__errvalue(L, &TIMEOUT, "futures.TimeoutError");
  lua_setfield(L, -2, "TimeoutError");
  gilua__errvalue(L, &CANCELLED_KEY, "futures.CancelledError");
  lua_setfield(L, -2, "CancelledError");
  gilua__errvalue(L, &BROKEN, "futures.BrokenExecutor");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "BrokenExecutor");
  lua_setfield(L, -2, "BrokenThreadPool");
  gilua__errvalue(L, &INVALID, "futures.InvalidStateError");
  lua_setfield(L, -2, "InvalidStateError");
  lua_getfield(L, -1, "ThreadPoolExecutor");
  lua_setfield(L, threading, "ThreadPool");
  return 1;
}

/*
** future.c: futures.Future, futures.wait and futures.as_completed.
**
** A Future is GIL-guarded state plus a wait queue for result() and
** exception().  Its user values hold the work while it is pending (1:
** {fn, args..., n}), then its outcome (2: {results..., n} or the error
** value), its callbacks (3) and, when it failed, the worker's traceback
** (4).  futures.wait() and as_completed() must wake when any of many
** futures completes: every completion notifies one per-universe "hub"
** wait queue, and its waiters look again at their futures (each
** completion also gets a sequence number, so as_completed yields in
** completion order).
**
** States are CPython's: a future cancelled while it waits in an
** executor's queue is CANCELLED (done, cancelled) but futures.wait and
** as_completed count it only once a worker has taken it out of the queue
** and "notified" it (CANCELLED_AND_NOTIFIED).
*/

#include <string.h>

#include "bindings.h"

#define FUTURE "futures.Future"

enum { PENDING, RUNNING, CANCELLED, NOTIFIED, FINISHED };
static const char *const statenames[] = {"pending", "running", "cancelled",
                                         "cancelled", "finished"};

enum { UV_WORK = 1, UV_OUTCOME, UV_CALLBACKS, UV_TRACEBACK };

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

static const char *const KW_TIMEOUT[] = {"timeout", NULL};
static const char TIMEOUT = 0, CANCELLED_KEY = 0, HUB = 0, TBKEY = 0;

static int raise_timeout(lua_State *L) {
  return gilua__raise(L, &TIMEOUT, "futures.TimeoutError");
}
static int raise_cancelled(lua_State *L) {
  return gilua__raise(L, &CANCELLED_KEY, "futures.CancelledError");
}

static futureobj *check_future(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, FUTURE);
}

static hubobj *get_hub(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &HUB) == LUA_TNIL) {
    lua_pop(L, 1);
    hubobj *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HUB);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HUB);
  }
  hubobj *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

int gilua__future_new(lua_State *L) {
  hubobj *hub = get_hub(L);
  futureobj *f = lua_newuserdatauv(L, sizeof *f, 4);
  memset(f, 0, sizeof *f);
  f->state = PENDING;
  f->hub = hub;
  luaL_setmetatable(L, FUTURE);
  return 1;
}

void gilua__future_setwork(lua_State *L, int idx) {
  lua_setiuservalue(L, idx < 0 ? idx - 1 : idx, UV_WORK);
}

static int isdone(futureobj *f) { return f->state >= CANCELLED; }

/* Counted by futures.wait and as_completed. */
static int isnotified(futureobj *f) {
  return f->state == NOTIFIED || f->state == FINISHED;
}

/* {====================================================================
** Completion
** ===================================================================== */

/* Calls cb(future); an error is reported and does not stop the others. */
static void run_callback(lua_State *L, int fut, int cb) {
  int top = lua_gettop(L);
  lua_pushvalue(L, cb);
  lua_pushvalue(L, fut);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = gilua__describe(L, -1);
    const char *who = gilua__describe(L, fut);
    gilua__write_stderr(L, lua_pushfstring(L,
                                           "exception calling callback "
                                           "for %s: %s\n",
                                           who, msg));
  }
  lua_settop(L, top);
}

/* Wakes the future's waiters and the hub, then runs its callbacks in the
** order they were added. */
static void complete(lua_State *L, int fut) {
  fut = lua_absindex(L, fut);
  futureobj *f = lua_touserdata(L, fut);
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

int gilua__future_cancel(lua_State *L, int fut) {
  futureobj *f = lua_touserdata(L, fut);
  if (f->state == RUNNING || f->state == FINISHED)
    return 0;
  if (f->state == PENDING) {
    f->state = CANCELLED;
    gilua__notify(&f->waiters, -1); /* result() raises CancelledError */
    lua_pushnil(L);
    lua_setiuservalue(L, fut < 0 ? fut - 1 : fut, UV_WORK);
    complete(L, fut);
  }
  return 1;
}

void gilua__future_fail(lua_State *L, int fut) {
  fut = lua_absindex(L, fut);
  futureobj *f = lua_touserdata(L, fut);
  if (f->state != PENDING) {
    lua_pop(L, 1);
    return;
  }
  f->state = FINISHED;
  f->failed = 1;
  lua_setiuservalue(L, fut, UV_OUTCOME);
  complete(L, fut);
}

/* Message handler of a future's work: keeps the error value unchanged
** and its traceback beside it. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  lua_createtable(L, 2, 1);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 2);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &TBKEY);
  return 1;
}

void gilua__future_run(lua_State *L, int fut) {
  fut = lua_absindex(L, fut);
  futureobj *f = lua_touserdata(L, fut);
  if (f->state == CANCELLED) { /* taken out of the queue: notify */
    f->state = NOTIFIED;
    f->doneseq = ++f->hub->seq;
    gilua__notify(&f->hub->waiters, -1);
    return;
  }
  if (f->state != PENDING)
    return;
  f->state = RUNNING;
  int base = lua_gettop(L);
  lua_pushcfunction(L, msghandler);
  lua_getiuservalue(L, fut, UV_WORK);
  int work = base + 2;
  lua_Integer n = gilua__arglen(L, work, "Future: work");
  luaL_checkstack(L, (int)n + 2, "too many arguments");
  for (lua_Integer i = 1; i <= n + 1; i++)
    lua_rawgeti(L, work, i);
  int status = lua_pcall(L, (int)n, LUA_MULTRET, base + 1);
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
    int box = lua_gettop(L);
    if (lua_type(L, box) == LUA_TTABLE &&
        lua_rawgetp(L, box, &TBKEY) == LUA_TBOOLEAN) {
      lua_pop(L, 1);
      lua_rawgeti(L, box, 2);
      lua_setiuservalue(L, fut, UV_TRACEBACK);
      lua_rawgeti(L, box, 1); /* the value, unchanged */
    } else {                  /* a memory error: no handler ran */
      lua_settop(L, box);
      lua_pushvalue(L, box);
    }
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

static int future_isdone(void *ud) { return isdone(ud); }

/* Waits until the future is done or the deadline; raises
** futures.TimeoutError then, futures.CancelledError if cancelled. */
static void wait_done(lua_State *L, futureobj *f, int64_t deadline) {
  if (gilua__wait_for(L, &f->waiters, deadline, GILUA_DROP_WAIT, GILUA_RAISE,
                      future_isdone, f) != 0)
    raise_timeout(L);
  if (f->state == CANCELLED || f->state == NOTIFIED)
    raise_cancelled(L);
}

/* fut:result([timeout]) -> all of f's results; re-raises f's error (a
** string error with the worker's traceback appended) */
int gilua__future_result(lua_State *L) {
  futureobj *f = check_future(L, 1);
  gilua__kwargs(L, 2, KW_TIMEOUT);
  wait_done(L, f, gilua__optdeadline(L, 2, 1));
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, UV_OUTCOME);
  if (f->failed) {
    if (lua_type(L, 2) == LUA_TSTRING &&
        lua_getiuservalue(L, 1, UV_TRACEBACK) == LUA_TSTRING) {
      lua_pushliteral(L, "\n[the worker's ");
      lua_pushvalue(L, -2);
      lua_pushliteral(L, "]");
      lua_concat(L, 3);
      lua_remove(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  int outcome = lua_gettop(L);
  lua_Integer n = gilua__arglen(L, outcome, "Future:result");
  gilua__pushargs(L, outcome, n);
  return (int)n;
}

/* fut:exception([timeout]) -> f's error value (unchanged), or nil */
static int future_exception(lua_State *L) {
  futureobj *f = check_future(L, 1);
  gilua__kwargs(L, 2, KW_TIMEOUT);
  wait_done(L, f, gilua__optdeadline(L, 2, 1));
  if (!f->failed)
    return 0;
  lua_getiuservalue(L, 1, UV_OUTCOME);
  return 1;
}

/* fut:traceback() -> the worker's traceback of f's error, or nil */
static int future_traceback(lua_State *L) {
  futureobj *f = check_future(L, 1);
  if (!f->failed)
    return 0;
  lua_getiuservalue(L, 1, UV_TRACEBACK);
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
  int st = check_future(L, 1)->state;
  lua_pushboolean(L, st == CANCELLED || st == NOTIFIED);
  return 1;
}

/* fut:cancel() -> boolean */
static int future_cancel(lua_State *L) {
  check_future(L, 1);
  lua_pushboolean(L, gilua__future_cancel(L, 1));
  return 1;
}

/* fut:add_done_callback(fn): fn(fut) once done; at once if already done */
static int future_add_done_callback(lua_State *L) {
  futureobj *f = check_future(L, 1);
  gilua__checkcallable(L, 2);
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

/* As CPython's repr: the state, and what it returned or raised. */
static int future_tostring(lua_State *L) {
  futureobj *f = check_future(L, 1);
  if (f->state != FINISHED) {
    lua_pushfstring(L, FUTURE " (%s): %p", statenames[f->state], f);
    return 1;
  }
  lua_getiuservalue(L, 1, UV_OUTCOME);
  if (f->failed) {
    const char *what = gilua__describe(L, -1);
    lua_pushfstring(L, FUTURE " (finished, raised %s): %p", what, f);
  } else {
    lua_rawgeti(L, -1, 1);
    const char *what = gilua__describe(L, -1);
    lua_pushfstring(L, FUTURE " (finished, returned %s): %p", what, f);
  }
  return 1;
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
  luaL_argcheck(L, n >= 0 && n <= GILUA_MAXARGS, idx, "too many futures");
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
  return gilua__wait(L, &hub->waiters, deadline, GILUA_DROP_WAIT,
                     GILUA_RAISE) == 0;
}

/* futures.wait(fs [, timeout [, return_when]]) -> done, not_done */
static int futures_wait(lua_State *L) {
  static const char *const kw[] = {"timeout", "return_when", NULL};
  gilua__kwargs(L, 2, kw);
  int64_t deadline = gilua__optdeadline(L, 2, 1);
  int when = luaL_checkoption(L, 3, "ALL_COMPLETED", whens);
  lua_settop(L, 1);
  int n = distinct(L, 1);
  int fs = lua_gettop(L);
  hubobj *hub = get_hub(L);
  for (;;) {
    int ndone = 0, failed = 0;
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, fs, i);
      futureobj *f = lua_touserdata(L, -1);
      ndone += isnotified(f);
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
    int d = isnotified(lua_touserdata(L, -1));
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
      if (isnotified(f) && (best == 0 || f->doneseq < bestseq)) {
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
    if (!wait_hub(L, hub, deadline)) {
      gilua__errvalue(L, &TIMEOUT, "futures.TimeoutError");
      return lua_error(L);
    }
  }
}

/* futures.as_completed(fs [, timeout]) -> iterator over the futures, in
** the order they complete (those already done first) */
static int futures_as_completed(lua_State *L) {
  gilua__kwargs(L, 2, KW_TIMEOUT);
  double timeout = gilua__opttimeout(L, 2, 1);
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
    {"result", gilua__future_result},
    {"exception", future_exception},
    {"traceback", future_traceback},
    {"done", future_done},
    {"running", future_running},
    {"cancelled", future_cancelled},
    {"cancel", future_cancel},
    {"add_done_callback", future_add_done_callback},
    {NULL, NULL}};

static const luaL_Reg future_meta[] = {{"__tostring", future_tostring},
                                       {NULL, NULL}};

static const luaL_Reg funcs[] = {{"wait", futures_wait},
                                 {"as_completed", futures_as_completed},
                                 {NULL, NULL}};

/* Adds Future's class, wait, as_completed and the error values to the
** futures module on the top. */
void gilua__open_future(lua_State *L) {
  gilua__newclass(L, FUTURE, future_methods, future_meta);
  luaL_setfuncs(L, funcs, 0);
  for (int i = 0; whens[i]; i++) {
    lua_pushstring(L, whens[i]);
    lua_setfield(L, -2, whens[i]);
  }
  gilua__errvalue(L, &TIMEOUT, "futures.TimeoutError");
  lua_setfield(L, -2, "TimeoutError");
  gilua__errvalue(L, &CANCELLED_KEY, "futures.CancelledError");
  lua_setfield(L, -2, "CancelledError");
}

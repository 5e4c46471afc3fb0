/*
** lock.c: threading.Lock and threading.RLock.
**
** Both are plain state guarded by the GIL plus a wait queue: acquiring
** first tries with the GIL held and only queues, drops the GIL and parks
** when the lock is really taken.  Release wakes the oldest waiter, which
** retries when it has the GIL again; a thread that asks in the meantime
** may get the lock first (no hand-off, as in CPython: throughput over
** order).  A Lock may be released by any thread; an RLock only by its
** owner, as many times as it was acquired.
*/

#include <errno.h>

#include "internal.h"

#define LOCK "threading.Lock"
#define RLOCK "threading.RLock"

typedef struct lockobj {
  int locked;          /* held (an RLock: held at least once) */
  gilua_tstate *owner; /* the RLock's owner */
  lua_Integer count;   /* the RLock's recursion depth */
  gilua_waitq waiters;
} lockobj;

/* Checks the timeout argument of 'fname': nil or -1 (forever), else a
** number of seconds in [0, TIMEOUT_MAX]; returns it, -1 for forever. */
double gilua__checktimeout(lua_State *L, int arg, int blocking,
                           const char *fname) {
  if (lua_isnoneornil(L, arg))
    return -1;
  lua_Number t = luaL_checknumber(L, arg);
  if (!blocking) {
    if (t != -1)
      luaL_error(L, "%s: can't specify a timeout for a non-blocking call",
                 fname);
    return -1;
  }
  if (t == -1)
    return -1;
  if (!(t >= 0))
    luaL_error(L, "%s: timeout value must be a non-negative number", fname);
  if (t > GILUA_TIMEOUT_MAX)
    luaL_error(L, "%s: timeout value is too large", fname);
  return t;
}

static lockobj *newlock(lua_State *L, const char *tname) {
  lockobj *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->locked = 0;
  lk->owner = NULL;
  lk->count = 0;
  lk->waiters.head = lk->waiters.tail = NULL;
  luaL_setmetatable(L, tname);
  return lk;
}

/* threading.Lock() -> lock */
static int lock_new(lua_State *L) {
  newlock(L, LOCK);
  return 1;
}

/* threading.RLock() -> rlock */
static int rlock_new(lua_State *L) {
  newlock(L, RLOCK);
  return 1;
}

/* Takes lk for 'self', waiting up to 'timeout' (< 0: forever). */
static int acquire(lua_State *L, lockobj *lk, int rlock, int blocking,
                   double timeout) {
  gilua_tstate *self = gilua__self(L);
  if (rlock && lk->locked && lk->owner == self) {
    lk->count++;
    return 1;
  }
  if (lk->locked) {
    if (!blocking)
      return 0;
    int64_t deadline = gilua__deadline(timeout);
    while (lk->locked) {
      int r = gilua__wait(self, &lk->waiters, deadline, GILUA_R_WAIT);
      if (!lk->locked)
        break;
      if (r == EINTR)
        gilua__interrupted(L);
      if (r == ETIMEDOUT)
        return 0;
    }
  }
  lk->locked = 1;
  lk->owner = self;
  lk->count = 1;
  return 1;
}

static void release(lua_State *L, lockobj *lk, int rlock) {
  if (rlock) {
    if (!lk->locked || lk->owner != gilua__self(L))
      luaL_error(L, "RLock:release: cannot release un-acquired lock");
    if (--lk->count > 0)
      return;
  } else if (!lk->locked) {
    luaL_error(L, "Lock:release: release unlocked lock");
  }
  lk->locked = 0;
  lk->owner = NULL;
  lk->count = 0;
  gilua__notify(&lk->waiters, 1);
}

/* lock:acquire([blocking [, timeout]]) -> boolean
** (also lock:acquire{blocking = b, timeout = t}) */
static int acquire_method(lua_State *L, const char *tname, int rlock) {
  lockobj *lk = luaL_checkudata(L, 1, tname);
  int blocking = 1;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "blocking");
    lua_getfield(L, 2, "timeout");
    lua_remove(L, 2);
  }
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    blocking = lua_toboolean(L, 2);
  }
  double timeout = gilua__checktimeout(
      L, 3, blocking, rlock ? "RLock:acquire" : "Lock:acquire");
  lua_pushboolean(L, acquire(L, lk, rlock, blocking, timeout));
  return 1;
}

static int lock_acquire(lua_State *L) { return acquire_method(L, LOCK, 0); }
static int rlock_acquire(lua_State *L) { return acquire_method(L, RLOCK, 1); }

/* lock:release() */
static int lock_release(lua_State *L) {
  release(L, luaL_checkudata(L, 1, LOCK), 0);
  return 0;
}

static int rlock_release(lua_State *L) {
  release(L, luaL_checkudata(L, 1, RLOCK), 1);
  return 0;
}

/* lock:locked() -> boolean */
static int lock_locked(lua_State *L) {
  lockobj *lk = luaL_testudata(L, 1, LOCK);
  if (lk == NULL)
    lk = luaL_checkudata(L, 1, RLOCK);
  lua_pushboolean(L, lk->locked);
  return 1;
}

/* Continuation of with(): releases, then returns f's results or
** re-raises its error. */
static int with_done(lua_State *L, int status, lua_KContext rlock) {
  release(L, lua_touserdata(L, 1), (int)rlock);
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L);
  return lua_gettop(L) - 1;
}

static int with_method(lua_State *L, const char *tname, int rlock) {
  lockobj *lk = luaL_checkudata(L, 1, tname);
  luaL_checkany(L, 2);
  acquire(L, lk, rlock, 1, -1);
  int status =
      lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, rlock, with_done);
  return with_done(L, status, rlock);
}

/* lock:with(f, ...) -> f's results; released even if f errors */
static int lock_with(lua_State *L) { return with_method(L, LOCK, 0); }
static int rlock_with(lua_State *L) { return with_method(L, RLOCK, 1); }

/* lock:guard() -> lock, acquired; `local _ <close> = lock:guard()` releases
** it when the variable goes out of scope */
static int lock_guard(lua_State *L) {
  acquire(L, luaL_checkudata(L, 1, LOCK), 0, 1, -1);
  lua_settop(L, 1);
  return 1;
}

static int rlock_guard(lua_State *L) {
  acquire(L, luaL_checkudata(L, 1, RLOCK), 1, 1, -1);
  lua_settop(L, 1);
  return 1;
}

static int lock_tostring(lua_State *L) {
  lockobj *lk = luaL_testudata(L, 1, LOCK);
  if (lk) {
    lua_pushfstring(L, LOCK " (%s): %p", lk->locked ? "locked" : "unlocked",
                    lk);
    return 1;
  }
  lk = luaL_checkudata(L, 1, RLOCK);
  if (lk->locked)
    lua_pushfstring(L, RLOCK " (locked, count %I): %p", lk->count, lk);
  else
    lua_pushfstring(L, RLOCK " (unlocked): %p", lk);
  return 1;
}

static const luaL_Reg lock_methods[] = {
    {"acquire", lock_acquire}, {"release", lock_release},
    {"locked", lock_locked},   {"with", lock_with},
    {"guard", lock_guard},     {NULL, NULL}};

static const luaL_Reg rlock_methods[] = {
    {"acquire", rlock_acquire}, {"release", rlock_release},
    {"locked", lock_locked},    {"with", rlock_with},
    {"guard", rlock_guard},     {NULL, NULL}};

static void createmeta(lua_State *L, const char *tname, const luaL_Reg *methods,
                       lua_CFunction release) {
  luaL_newmetatable(L, tname);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, release);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, lock_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

/* Adds Lock and RLock to the module table on the top. */
void gilua__open_lock(lua_State *L) {
  createmeta(L, LOCK, lock_methods, lock_release);
  createmeta(L, RLOCK, rlock_methods, rlock_release);
  lua_pushcfunction(L, lock_new);
  lua_setfield(L, -2, "Lock");
  lua_pushcfunction(L, rlock_new);
  lua_setfield(L, -2, "RLock");
}

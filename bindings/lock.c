/*
** lock.c: threading.Lock and threading.RLock.
**
** Both are plain state guarded by the GIL plus a wait queue: acquiring
** first tries with the GIL held and only queues, drops the GIL and parks
** when the lock is really taken.  Release wakes the oldest waiter, which
** retries when it has the GIL again; a thread that asks in the meantime
** may get the lock first (no hand-off, as in CPython: throughput over
** order).  A Lock may be released by any thread; an RLock only by its
** owner, as many times as it was acquired.  Condition (condition.c) uses
** the save/restore pair to let go of a lock completely while it waits.
*/

#include <errno.h>

#include "internal.h"

#define LOCK "threading.Lock"
#define RLOCK "threading.RLock"

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

gilua_lockobj *gilua__tolock(lua_State *L, int idx) {
  gilua_lockobj *lk = luaL_testudata(L, idx, LOCK);
  return lk ? lk : luaL_testudata(L, idx, RLOCK);
}

/* Tags the constructors write into every Lock and RLock.  Lua code cannot
** make a full userdata, so a userdata of the right size carrying the tag
** is one of ours: the check costs two comparisons instead of a registry
** lookup (the uncontended acquire/release pair is a hot path). */
static const char LOCK_TAG = 0, RLOCK_TAG = 0;

static gilua_lockobj *check_lock(lua_State *L, int rlock) {
  gilua_lockobj *lk = lua_touserdata(L, 1);
  if (lk == NULL || lua_rawlen(L, 1) != sizeof *lk ||
      lk->tag != (rlock ? (const void *)&RLOCK_TAG : (const void *)&LOCK_TAG))
    luaL_typeerror(L, 1, rlock ? RLOCK : LOCK);
  return lk;
}

int gilua__newlock(lua_State *L, int rlock) {
  gilua_lockobj *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->tag = rlock ? (const void *)&RLOCK_TAG : (const void *)&LOCK_TAG;
  lk->rlock = rlock;
  lk->locked = 0;
  lk->owner = NULL;
  lk->count = 0;
  lk->waiters.head = lk->waiters.tail = NULL;
  luaL_setmetatable(L, rlock ? RLOCK : LOCK);
  return 1;
}

/* threading.Lock() -> lock */
static int lock_new(lua_State *L) { return gilua__newlock(L, 0); }

/* threading.RLock() -> rlock */
static int rlock_new(lua_State *L) { return gilua__newlock(L, 1); }

/* Takes lk, waiting up to 'timeout' (< 0: forever) when 'blocking'. */
int gilua__lock_acquire(lua_State *L, gilua_lockobj *lk, int blocking,
                        double timeout) {
  gilua_tstate *self = gilua__self(L);
  if (lk->rlock && lk->locked && lk->owner == self) {
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

static void unlock(gilua_lockobj *lk) {
  lk->locked = 0;
  lk->owner = NULL;
  lk->count = 0;
  gilua__notify(&lk->waiters, 1);
}

void gilua__lock_release(lua_State *L, gilua_lockobj *lk) {
  if (lk->rlock) {
    if (!lk->locked || lk->owner != gilua__self(L))
      luaL_error(L, "RLock:release: cannot release un-acquired lock");
    if (--lk->count > 0)
      return;
  } else if (!lk->locked) {
    luaL_error(L, "Lock:release: release unlocked lock");
  }
  unlock(lk);
}

/* Held by the caller (an RLock), or held at all (a Lock, as CPython). */
int gilua__lock_owned(lua_State *L, gilua_lockobj *lk) {
  return lk->locked && (!lk->rlock || lk->owner == gilua__self(L));
}

/* Releases lk completely; returns the depth to give to restore. */
lua_Integer gilua__lock_save(lua_State *L, gilua_lockobj *lk) {
  lua_Integer count = lk->count;
  (void)L;
  unlock(lk);
  return count;
}

/* Takes lk back at depth 'count', waiting as long as it takes; returns 1
** if an interrupt came meanwhile (it is left pending). */
int gilua__lock_restore(lua_State *L, gilua_lockobj *lk, lua_Integer count) {
  gilua_tstate *self = gilua__self(L);
  int interrupted = 0;
  while (lk->locked)
    if (gilua__wait(self, &lk->waiters, GILUA_FOREVER, GILUA_R_WAIT) == EINTR)
      interrupted = 1;
  lk->locked = 1;
  lk->owner = self;
  lk->count = count;
  if (interrupted)
    atomic_store(&self->interrupt, 1);
  return interrupted;
}

/* lock:acquire([blocking [, timeout]]) -> boolean
** (also lock:acquire{blocking = b, timeout = t}) */
static int acquire_method(lua_State *L, int rlock) {
  gilua_lockobj *lk = check_lock(L, rlock);
  if (!rlock && !lk->locked && lua_gettop(L) == 1) { /* the common case */
    lk->locked = 1;
    lk->count = 1;
    lua_pushboolean(L, 1);
    return 1;
  }
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
  lua_pushboolean(L, gilua__lock_acquire(L, lk, blocking, timeout));
  return 1;
}

static int lock_acquire(lua_State *L) { return acquire_method(L, 0); }
static int rlock_acquire(lua_State *L) { return acquire_method(L, 1); }

/* lock:release() */
static int lock_release(lua_State *L) {
  gilua_lockobj *lk = check_lock(L, 0);
  if (!lk->locked)
    return luaL_error(L, "Lock:release: release unlocked lock");
  lk->locked = 0;
  lk->owner = NULL;
  lk->count = 0;
  if (lk->waiters.head)
    gilua__notify(&lk->waiters, 1);
  return 0;
}

static int rlock_release(lua_State *L) {
  gilua__lock_release(L, check_lock(L, 1));
  return 0;
}

/* lock:locked() -> boolean */
static int lock_locked(lua_State *L) {
  gilua_lockobj *lk = gilua__tolock(L, 1);
  luaL_argexpected(L, lk != NULL, 1, LOCK);
  lua_pushboolean(L, lk->locked);
  return 1;
}

/* Continuation of with(): releases, then returns f's results or
** re-raises its error. */
static int with_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  gilua__lock_release(L, lua_touserdata(L, 1));
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L);
  return lua_gettop(L) - 1;
}

static int with_method(lua_State *L, int rlock) {
  gilua_lockobj *lk = check_lock(L, rlock);
  luaL_checkany(L, 2);
  gilua__lock_acquire(L, lk, 1, -1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, with_done);
  return with_done(L, status, 0);
}

/* lock:with(f, ...) -> f's results; released even if f errors */
static int lock_with(lua_State *L) { return with_method(L, 0); }
static int rlock_with(lua_State *L) { return with_method(L, 1); }

/* lock:guard() -> lock, acquired; `local _ <close> = lock:guard()` releases
** it when the variable goes out of scope */
static int guard_method(lua_State *L, int rlock) {
  gilua__lock_acquire(L, check_lock(L, rlock), 1, -1);
  lua_settop(L, 1);
  return 1;
}

static int lock_guard(lua_State *L) { return guard_method(L, 0); }
static int rlock_guard(lua_State *L) { return guard_method(L, 1); }

static int lock_tostring(lua_State *L) {
  gilua_lockobj *lk = gilua__tolock(L, 1);
  luaL_argexpected(L, lk != NULL, 1, LOCK);
  if (!lk->locked)
    lua_pushfstring(L, "%s (unlocked): %p", lk->rlock ? RLOCK : LOCK, lk);
  else if (lk->rlock)
    lua_pushfstring(L, RLOCK " (locked, count %I): %p", lk->count, lk);
  else
    lua_pushfstring(L, LOCK " (locked): %p", lk);
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

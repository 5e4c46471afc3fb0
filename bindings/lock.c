/*
** lock.c: threading.Lock and threading.RLock.
**
** Both are plain state guarded by the GIL plus a wait queue: acquiring
** first tries with the GIL held and only queues, drops the GIL and parks
** when the lock is really taken.  Release wakes the oldest waiter, which
** retries when it has the GIL again; a thread that asks in the meantime
** may get the lock first (no hand-off, as in CPython: throughput over
** order).  A Lock may be released by any thread; an RLock only by its
** owner, as many times as it was acquired.  Condition (condition.c) lets
** go of a lock completely while it waits through the release_save /
** acquire_restore pair, and never sees the fields below.
*/

#include "bindings.h"

#define LOCK "threading.Lock"
#define RLOCK "threading.RLock"

/* Every field is guarded by the GIL. */
struct gilua_lockobj {
  const void *tag;     /* which type it is, for the fast type check */
  int rlock;           /* an RLock */
  int locked;          /* held (an RLock: held at least once) */
  gilua_tstate *owner; /* who acquired it (an RLock) */
  lua_Integer count;   /* the RLock's recursion depth */
  gilua_waitq waiters;
};

/* Tags the constructors write into every Lock and RLock.  Lua code cannot
** make a full userdata, so a userdata of the right size carrying the tag
** is one of ours: the check costs two comparisons instead of a registry
** lookup (the uncontended acquire/release pair is a hot path). */
static const char LOCK_TAG = 0, RLOCK_TAG = 0;

static gilua_lockobj *test_lock(lua_State *L, int idx, int rlock) {
  gilua_lockobj *lk = lua_touserdata(L, idx);
  if (lk == NULL || lua_rawlen(L, idx) != sizeof *lk ||
      lk->tag != (rlock ? (const void *)&RLOCK_TAG : (const void *)&LOCK_TAG))
    return NULL;
  return lk;
}

static gilua_lockobj *check_lock(lua_State *L, int rlock) {
  gilua_lockobj *lk = test_lock(L, 1, rlock);
  if (lk == NULL)
    luaL_typeerror(L, 1, rlock ? RLOCK : LOCK);
  return lk;
}

gilua_lockobj *gilua__tolock(lua_State *L, int idx) {
  gilua_lockobj *lk = test_lock(L, idx, 0);
  return lk ? lk : test_lock(L, idx, 1);
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

static int is_free(void *ud) { return !((gilua_lockobj *)ud)->locked; }

/* Takes lk, waiting until the deadline when 'blocking'. */
static int acquire(lua_State *L, gilua_lockobj *lk, int blocking,
                   int64_t deadline, int intr) {
  gilua_tstate *self = gilua__self(L);
  if (lk->rlock && lk->locked && lk->owner == self) {
    lk->count++;
    return 1;
  }
  if (lk->locked &&
      (!blocking || gilua__wait_for(L, &lk->waiters, deadline, GILUA_DROP_WAIT,
                                    intr, is_free, lk) != 0))
    return 0;
  lk->locked = 1;
  lk->owner = self;
  lk->count = 1;
  return 1;
}

static void unlock(gilua_lockobj *lk) {
  lk->locked = 0;
  lk->owner = NULL;
  lk->count = 0;
  if (lk->waiters.head)
    gilua__notify(&lk->waiters, 1);
}

static void release(lua_State *L, gilua_lockobj *lk) {
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

/* {====================================================================
** The protocol Condition uses
** ===================================================================== */

/* Held by the caller (an RLock), or held at all (a Lock, as CPython). */
int gilua__lock_is_owned(lua_State *L, gilua_lockobj *lk) {
  return lk->locked && (!lk->rlock || lk->owner == gilua__self(L));
}

int gilua__lock_is_locked(gilua_lockobj *lk) { return lk->locked; }

lua_Integer gilua__lock_release_save(lua_State *L, gilua_lockobj *lk) {
  lua_Integer count = lk->count;
  (void)L;
  unlock(lk);
  return count;
}

void gilua__lock_acquire_restore(lua_State *L, gilua_lockobj *lk,
                                 lua_Integer saved) {
  acquire(L, lk, 1, GILUA_FOREVER, GILUA_NOINTR);
  lk->count = saved;
}

/* }==================================================================== */

/* {====================================================================
** Methods
** ===================================================================== */

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
  static const char *const kw[] = {"blocking", "timeout", NULL};
  gilua__kwargs(L, 2, kw);
  int blocking = gilua__optboolean(L, 2, 1);
  int64_t deadline = gilua__optdeadline(L, 3, blocking);
  lua_pushboolean(L, acquire(L, lk, blocking, deadline, GILUA_RAISE));
  return 1;
}

static int lock_acquire(lua_State *L) { return acquire_method(L, 0); }
static int rlock_acquire(lua_State *L) { return acquire_method(L, 1); }

/* lock:release() */
static int lock_release(lua_State *L) {
  gilua_lockobj *lk = check_lock(L, 0);
  if (!lk->locked)
    return luaL_error(L, "Lock:release: release unlocked lock");
  unlock(lk);
  return 0;
}

static int rlock_release(lua_State *L) {
  release(L, check_lock(L, 1));
  return 0;
}

/* lock:locked() -> boolean */
static int lock_locked(lua_State *L) {
  gilua_lockobj *lk = gilua__tolock(L, 1);
  luaL_argexpected(L, lk != NULL, 1, LOCK);
  lua_pushboolean(L, lk->locked);
  return 1;
}

static int with_acquire(lua_State *L) {
  acquire(L, gilua__tolock(L, 1), 1, GILUA_FOREVER, GILUA_RAISE);
  return 0;
}

static int with_release(lua_State *L) {
  release(L, gilua__tolock(L, 1));
  return 0;
}

/* lock:with(f, ...) -> f's results; released even if f errors */
static int lock_with(lua_State *L) {
  check_lock(L, 0);
  return gilua__with(L, with_acquire, with_release);
}

static int rlock_with(lua_State *L) {
  check_lock(L, 1);
  return gilua__with(L, with_acquire, with_release);
}

/* lock:guard() -> lock, acquired; `local _ <close> = lock:guard()` releases
** it when the variable goes out of scope */
static int guard_method(lua_State *L, int rlock) {
  acquire(L, check_lock(L, rlock), 1, GILUA_FOREVER, GILUA_RAISE);
  lua_settop(L, 1);
  return 1;
}

static int lock_guard(lua_State *L) { return guard_method(L, 0); }
static int rlock_guard(lua_State *L) { return guard_method(L, 1); }

/* As CPython's repr: state, and an RLock's owner and depth. */
static int lock_tostring(lua_State *L) {
  gilua_lockobj *lk = gilua__tolock(L, 1);
  luaL_argexpected(L, lk != NULL, 1, LOCK);
  if (!lk->locked)
    lua_pushfstring(L, "%s (unlocked): %p", lk->rlock ? RLOCK : LOCK, lk);
  else if (lk->rlock)
    lua_pushfstring(L, RLOCK " (locked, owner %I, count %I): %p",
                    gilua__thread_ident(lk->owner), lk->count, lk);
  else
    lua_pushfstring(L, LOCK " (locked): %p", lk);
  return 1;
}

/* }==================================================================== */

static const luaL_Reg lock_methods[] = {
    {"acquire", lock_acquire}, {"release", lock_release},
    {"locked", lock_locked},   {"with", lock_with},
    {"guard", lock_guard},     {NULL, NULL}};

static const luaL_Reg rlock_methods[] = {
    {"acquire", rlock_acquire}, {"release", rlock_release},
    {"locked", lock_locked},    {"with", rlock_with},
    {"guard", rlock_guard},     {NULL, NULL}};

static const luaL_Reg lock_meta[] = {
    {"__close", lock_release}, {"__tostring", lock_tostring}, {NULL, NULL}};

static const luaL_Reg rlock_meta[] = {
    {"__close", rlock_release}, {"__tostring", lock_tostring}, {NULL, NULL}};

/* Adds Lock and RLock to the module table on the top. */
void gilua__open_lock(lua_State *L) {
  gilua__newclass(L, LOCK, lock_methods, lock_meta);
  gilua__newclass(L, RLOCK, rlock_methods, rlock_meta);
  lua_pushcfunction(L, lock_new);
  lua_setfield(L, -2, "Lock");
  lua_pushcfunction(L, rlock_new);
  lua_setfield(L, -2, "RLock");
}

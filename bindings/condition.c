/*
** condition.c: threading.Condition.
**
** A condition is a lock (uservalue 1, an RLock unless one is given) and a
** wait queue.  wait() queues the caller and lets go of the lock completely
** (even an RLock held several times) with the GIL held throughout, so a
** notify() cannot slip in between; it then parks, and takes the lock back
** at the same depth before it returns, whatever happened.
*/

#include "bindings.h"

#define COND "threading.Condition"

typedef struct condobj {
  gilua_lockobj *lk;
  gilua_waitq waiters;
} condobj;

static condobj *check_cond(lua_State *L) { return luaL_checkudata(L, 1, COND); }

/* threading.Condition([lock]) -> condition */
static int cond_new(lua_State *L) {
  gilua_lockobj *lk;
  if (lua_isnoneornil(L, 1)) {
    gilua__newlock(L, 1);
    lk = lua_touserdata(L, -1);
  } else {
    lk = gilua__tolock(L, 1);
    luaL_argexpected(L, lk != NULL, 1, "threading.Lock or threading.RLock");
    lua_pushvalue(L, 1);
  }
  condobj *c = lua_newuserdatauv(L, sizeof *c, 1);
  c->lk = lk;
  c->waiters.head = c->waiters.tail = NULL;
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, COND);
  return 1;
}

/* Calls the lock's method 'name' with the condition's arguments. */
static int delegate(lua_State *L, const char *name) {
  check_cond(L);
  lua_getiuservalue(L, 1, 1);
  lua_replace(L, 1);
  lua_getfield(L, 1, name);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* cond:acquire(...), cond:release(), cond:locked(): the lock's own */
static int cond_acquire(lua_State *L) { return delegate(L, "acquire"); }
static int cond_release(lua_State *L) { return delegate(L, "release"); }
static int cond_locked(lua_State *L) { return delegate(L, "locked"); }
/* cond:with(f, ...) and cond:guard(): the lock's own */
static int cond_with(lua_State *L) { return delegate(L, "with"); }
static int cond_guard(lua_State *L) { return delegate(L, "guard"); }

/* Waits on c until notified or the deadline; the lock is released
** meanwhile and held again on return, also when an interrupt ends the
** wait (it is raised once the lock is back).  Returns 1 if notified. */
static int wait_notified(lua_State *L, condobj *c, int64_t deadline) {
  lua_Integer saved = gilua__lock_release_save(L, c->lk);
  int r = gilua__wait(L, &c->waiters, deadline, GILUA_DROP_WAIT, GILUA_DEFER);
  gilua__lock_acquire_restore(L, c->lk, saved);
  if (r == GILUA_EINTR)
    gilua__check_interrupt(L);
  return r == 0;
}

static void check_owned(lua_State *L, condobj *c, const char *what) {
  if (!gilua__lock_is_owned(L, c->lk))
    luaL_error(L, "Condition:%s: cannot %s on un-acquired lock", what, what);
}

/* cond:wait([timeout]) -> boolean: false only when the timeout expired */
static int cond_wait(lua_State *L) {
  condobj *c = check_cond(L);
  static const char *const kw[] = {"timeout", NULL};
  gilua__kwargs(L, 2, kw);
  int64_t deadline = gilua__optdeadline(L, 2, 1);
  check_owned(L, c, "wait");
  lua_pushboolean(L, wait_notified(L, c, deadline));
  return 1;
}

/* cond:wait_for(predicate [, timeout]) -> the predicate's last result */
static int cond_wait_for(lua_State *L) {
  condobj *c = check_cond(L);
  static const char *const kw[] = {"timeout", NULL};
  gilua__kwargs(L, 3, kw);
  gilua__checkcallable(L, 2);
  int64_t deadline = gilua__optdeadline(L, 3, 1);
  check_owned(L, c, "wait");
  for (;;) {
    lua_settop(L, 3);
    lua_pushvalue(L, 2);
    lua_call(L, 0, 1);
    if (lua_toboolean(L, -1))
      return 1;
    if (deadline != GILUA_FOREVER && gilua__now() >= deadline)
      return 1; /* its false result */
    wait_notified(L, c, deadline);
  }
}

/* cond:notify([n = 1]) */
static int cond_notify(lua_State *L) {
  condobj *c = check_cond(L);
  static const char *const kw[] = {"n", NULL};
  gilua__kwargs(L, 2, kw);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, n >= 0, 2, "n must be non-negative");
  check_owned(L, c, "notify");
  if (n > 0)
    gilua__notify(&c->waiters, n > INT32_MAX ? INT32_MAX : (int)n);
  return 0;
}

/* cond:notify_all() */
static int cond_notify_all(lua_State *L) {
  condobj *c = check_cond(L);
  check_owned(L, c, "notify");
  gilua__notify(&c->waiters, -1);
  return 0;
}

static int count_waiting(condobj *c) {
  int n = 0;
  for (gilua_waiter *w = c->waiters.head; w; w = w->next)
    n++;
  return n;
}

static int cond_tostring(lua_State *L) {
  condobj *c = check_cond(L);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, COND " (%s, %d waiting): %p", luaL_tolstring(L, -1, NULL),
                  count_waiting(c), c);
  return 1;
}

static int cond_close(lua_State *L) {
  lua_settop(L, 1);
  return delegate(L, "release");
}

static const luaL_Reg cond_methods[] = {
    {"acquire", cond_acquire},       {"release", cond_release},
    {"locked", cond_locked},         {"with", cond_with},
    {"guard", cond_guard},           {"wait", cond_wait},
    {"wait_for", cond_wait_for},     {"notify", cond_notify},
    {"notify_all", cond_notify_all}, {NULL, NULL}};

static const luaL_Reg cond_meta[] = {
    {"__tostring", cond_tostring}, {"__close", cond_close}, {NULL, NULL}};

/* Adds Condition to the module table on the top. */
void gilua__open_condition(lua_State *L) {
  gilua__newclass(L, COND, cond_methods, cond_meta);
  lua_pushcfunction(L, cond_new);
  lua_setfield(L, -2, "Condition");
}

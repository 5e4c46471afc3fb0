/*
** semaphore.c: threading.Semaphore and threading.BoundedSemaphore.
**
** A counter guarded by the GIL and a wait queue.  release(n) wakes n
** waiters; each retries when it has the GIL again, so a thread that asks
** in between may take a unit first, and the woken one waits again: no
** unit is ever lost or counted twice.
*/

#include "bindings.h"

#define SEM "threading.Semaphore"
#define BSEM "threading.BoundedSemaphore"

typedef struct semobj {
  lua_Integer value;
  lua_Integer initial;
  int bounded;
  gilua_waitq waiters;
} semobj;

static semobj *check_sem(lua_State *L) {
  semobj *s = luaL_testudata(L, 1, SEM);
  if (s == NULL)
    s = luaL_checkudata(L, 1, BSEM);
  return s;
}

static int newsem(lua_State *L, int bounded) {
  static const char *const kw[] = {"value", NULL};
  gilua__kwargs(L, 1, kw);
  lua_Integer v = luaL_optinteger(L, 1, 1);
  if (v < 0)
    return luaL_argerror(L, 1, "semaphore initial value must be >= 0");
  semobj *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->value = s->initial = v;
  s->bounded = bounded;
  s->waiters.head = s->waiters.tail = NULL;
  luaL_setmetatable(L, bounded ? BSEM : SEM);
  return 1;
}

/* threading.Semaphore([value = 1]) */
static int sem_new(lua_State *L) { return newsem(L, 0); }
/* threading.BoundedSemaphore([value = 1]) */
static int bsem_new(lua_State *L) { return newsem(L, 1); }

static int has_value(void *ud) { return ((semobj *)ud)->value > 0; }

static int acquire(lua_State *L, semobj *s, int blocking, int64_t deadline) {
  if (s->value == 0 &&
      (!blocking || gilua__wait_for(L, &s->waiters, deadline, GILUA_DROP_WAIT,
                                    GILUA_RAISE, has_value, s) != 0))
    return 0;
  s->value--;
  return 1;
}

/* sem:acquire([blocking [, timeout]]) -> boolean
** (also sem:acquire{blocking = b, timeout = t}) */
static int sem_acquire(lua_State *L) {
  semobj *s = check_sem(L);
  static const char *const kw[] = {"blocking", "timeout", NULL};
  gilua__kwargs(L, 2, kw);
  int blocking = gilua__optboolean(L, 2, 1);
  int64_t deadline = gilua__optdeadline(L, 3, blocking);
  lua_pushboolean(L, acquire(L, s, blocking, deadline));
  return 1;
}

static void release(lua_State *L, semobj *s, lua_Integer n) {
  const char *who = s->bounded ? "BoundedSemaphore" : "Semaphore";
  if (n < 1)
    luaL_error(L, "%s:release: n must be one or more", who);
  if (s->bounded && n > s->initial - s->value)
    luaL_error(L, "%s:release: Semaphore released too many times", who);
  if (n > LUA_MAXINTEGER - s->value)
    luaL_error(L, "%s:release: value would overflow", who);
  s->value += n;
  gilua__notify(&s->waiters, n > INT32_MAX ? INT32_MAX : (int)n);
}

/* sem:release([n = 1]) */
static int sem_release(lua_State *L) {
  semobj *s = check_sem(L);
  release(L, s, luaL_optinteger(L, 2, 1));
  return 0;
}

static int with_acquire(lua_State *L) {
  acquire(L, lua_touserdata(L, 1), 1, GILUA_FOREVER);
  return 0;
}

static int with_release(lua_State *L) {
  release(L, lua_touserdata(L, 1), 1);
  return 0;
}

/* sem:with(f, ...) -> f's results; released even if f errors */
static int sem_with(lua_State *L) {
  check_sem(L);
  return gilua__with(L, with_acquire, with_release);
}

/* sem:guard() -> sem, acquired; released when a <close> variable ends */
static int sem_guard(lua_State *L) {
  acquire(L, check_sem(L), 1, GILUA_FOREVER);
  lua_settop(L, 1);
  return 1;
}

static int sem_close(lua_State *L) {
  release(L, check_sem(L), 1);
  return 0;
}

static int sem_tostring(lua_State *L) {
  semobj *s = check_sem(L);
  if (s->bounded) /* as CPython's repr: value=1/3 */
    lua_pushfstring(L, BSEM " (value %I of %I): %p", s->value, s->initial, s);
  else
    lua_pushfstring(L, SEM " (value %I): %p", s->value, s);
  return 1;
}

static const luaL_Reg sem_methods[] = {{"acquire", sem_acquire},
                                       {"release", sem_release},
                                       {"with", sem_with},
                                       {"guard", sem_guard},
                                       {NULL, NULL}};

static const luaL_Reg sem_meta[] = {
    {"__tostring", sem_tostring}, {"__close", sem_close}, {NULL, NULL}};

/* Adds Semaphore and BoundedSemaphore to the module table on the top. */
void gilua__open_semaphore(lua_State *L) {
  gilua__newclass(L, SEM, sem_methods, sem_meta);
  gilua__newclass(L, BSEM, sem_methods, sem_meta);
  lua_pushcfunction(L, sem_new);
  lua_setfield(L, -2, "Semaphore");
  lua_pushcfunction(L, bsem_new);
  lua_setfield(L, -2, "BoundedSemaphore");
}

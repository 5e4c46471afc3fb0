/*
** semaphore.c: threading.Semaphore and threading.BoundedSemaphore.
**
** A counter guarded by the GIL and a wait queue.  release(n) wakes n
** waiters; each retries when it has the GIL again, so a thread that asks
** in between may take a unit first, and the woken one waits again: no
** unit is ever lost or counted twice.
*/

#include <errno.h>

#include "internal.h"

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
  lua_Integer v = luaL_optinteger(L, 1, 1);
  if (v < 0)
    return luaL_error(L, "%s: semaphore initial value must be >= 0",
                      bounded ? "BoundedSemaphore" : "Semaphore");
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

static int acquire(lua_State *L, semobj *s, int blocking, double timeout) {
  if (s->value == 0) {
    if (!blocking)
      return 0;
    gilua_tstate *self = gilua__self(L);
    int64_t deadline = gilua__deadline(timeout);
    while (s->value == 0) {
      int r = gilua__wait(self, &s->waiters, deadline, GILUA_R_WAIT);
      if (s->value > 0)
        break;
      if (r == EINTR)
        gilua__interrupted(L);
      if (r == ETIMEDOUT)
        return 0;
    }
  }
  s->value--;
  return 1;
}

/* sem:acquire([blocking [, timeout]]) -> boolean */
static int sem_acquire(lua_State *L) {
  semobj *s = check_sem(L);
  int blocking = 1;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    blocking = lua_toboolean(L, 2);
  }
  double timeout = gilua__checktimeout(L, 3, blocking, "Semaphore:acquire");
  lua_pushboolean(L, acquire(L, s, blocking, timeout));
  return 1;
}

static void release(lua_State *L, semobj *s, lua_Integer n) {
  if (n < 1)
    luaL_error(L, "Semaphore:release: n must be one or more");
  if (s->bounded && s->value + n > s->initial)
    luaL_error(L, "BoundedSemaphore:release: Semaphore released too many "
                  "times");
  s->value += n;
  gilua__notify(&s->waiters, n > INT32_MAX ? INT32_MAX : (int)n);
}

/* sem:release([n = 1]) */
static int sem_release(lua_State *L) {
  semobj *s = check_sem(L);
  release(L, s, luaL_optinteger(L, 2, 1));
  return 0;
}

static int with_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  release(L, lua_touserdata(L, 1), 1);
  if (status != LUA_OK && status != LUA_YIELD)
    return lua_error(L);
  return lua_gettop(L) - 1;
}

/* sem:with(f, ...) -> f's results; released even if f errors */
static int sem_with(lua_State *L) {
  semobj *s = check_sem(L);
  luaL_checkany(L, 2);
  acquire(L, s, 1, -1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, with_done);
  return with_done(L, status, 0);
}

/* sem:guard() -> sem, acquired; released when a <close> variable ends */
static int sem_guard(lua_State *L) {
  acquire(L, check_sem(L), 1, -1);
  lua_settop(L, 1);
  return 1;
}

static int sem_close(lua_State *L) {
  release(L, check_sem(L), 1);
  return 0;
}

static int sem_tostring(lua_State *L) {
  semobj *s = check_sem(L);
  lua_pushfstring(L, "%s (value %I): %p", s->bounded ? BSEM : SEM, s->value, s);
  return 1;
}

static const luaL_Reg sem_methods[] = {{"acquire", sem_acquire},
                                       {"release", sem_release},
                                       {"with", sem_with},
                                       {"guard", sem_guard},
                                       {NULL, NULL}};

static void createmeta(lua_State *L, const char *tname) {
  luaL_newmetatable(L, tname);
  lua_newtable(L);
  luaL_setfuncs(L, sem_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sem_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, sem_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

/* Adds Semaphore and BoundedSemaphore to the module table on the top. */
void gilua__open_semaphore(lua_State *L) {
  createmeta(L, SEM);
  createmeta(L, BSEM);
  lua_pushcfunction(L, sem_new);
  lua_setfield(L, -2, "Semaphore");
  lua_pushcfunction(L, bsem_new);
  lua_setfield(L, -2, "BoundedSemaphore");
}

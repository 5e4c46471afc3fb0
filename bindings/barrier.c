/*
** barrier.c: threading.Barrier.
**
** 'parties' threads meet in wait(); the last one to arrive runs the action
** (before anyone leaves), starts a new generation and wakes the others.
** Each wait() belongs to a generation; a generation ends either tripped
** (every waiter returns its index) or broken (by abort(), reset(), a
** timeout, an interrupt or a failing action: its waiters raise
** threading.BrokenBarrierError).  How each generation ended is kept in a
** 64-bit history, indexed by the generation number, so a waiter that
** wakes late still learns the fate of its own generation.
*/

#include <string.h>

#include "bindings.h"

#define BARRIER "threading.Barrier"

typedef struct barrierobj {
  lua_Integer parties;
  lua_Integer count; /* waiting in the current generation */
  double timeout;    /* the default, < 0: none */
  uint64_t gen;      /* the current generation */
  uint64_t broke;    /* bit g % 64: generation g ended broken */
  int broken;        /* broken until reset() */
  gilua_waitq waiters;
} barrierobj;

static const char BROKEN = 0; /* registry key of BrokenBarrierError */

static barrierobj *check_barrier(lua_State *L) {
  return luaL_checkudata(L, 1, BARRIER);
}

static uint64_t bit(uint64_t gen) { return (uint64_t)1 << (gen % 64); }

/* Ends the current generation, broken or tripped, and wakes its waiters. */
static void end_generation(barrierobj *b, int broken) {
  if (broken)
    b->broke |= bit(b->gen);
  else
    b->broke &= ~bit(b->gen);
  b->gen++;
  b->count = 0;
  gilua__notify(&b->waiters, -1);
}

static int raise_broken(lua_State *L) {
  return gilua__raise(L, &BROKEN, "threading.BrokenBarrierError");
}

/* threading.Barrier(parties [, action [, timeout]]) -> barrier
** (also threading.Barrier{parties =, action =, timeout =}) */
static int barrier_new(lua_State *L) {
  static const char *const kw[] = {"parties", "action", "timeout", NULL};
  gilua__kwargs(L, 1, kw);
  lua_Integer parties = luaL_checkinteger(L, 1);
  luaL_argcheck(L, parties >= 1, 1, "parties must be at least 1");
  if (!lua_isnoneornil(L, 2))
    gilua__checkcallable(L, 2);
  lua_settop(L, 3);
  double timeout = gilua__opttimeout(L, 3, 1);
  barrierobj *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->parties = parties;
  b->count = 0;
  b->timeout = timeout;
  b->gen = 0;
  b->broke = 0;
  b->broken = 0;
  b->waiters.head = b->waiters.tail = NULL;
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, BARRIER);
  return 1;
}

/* barrier:wait([timeout]) -> index in 0..parties-1 */
static int barrier_wait(lua_State *L) {
  barrierobj *b = check_barrier(L);
  static const char *const kw[] = {"timeout", NULL};
  gilua__kwargs(L, 2, kw);
  double timeout =
      lua_isnoneornil(L, 2) ? b->timeout : gilua__opttimeout(L, 2, 1);
  if (b->broken)
    return raise_broken(L);
  uint64_t gen = b->gen;
  lua_Integer index = b->count++;
  if (b->count == b->parties) { /* the last one: run the action, trip */
    if (lua_getiuservalue(L, 1, 1) != LUA_TNIL &&
        lua_pcall(L, 0, 0, 0) != LUA_OK) {
      b->broken = 1;
      end_generation(b, 1);
      return lua_error(L); /* this thread gets the action's error */
    }
    end_generation(b, 0);
    lua_pushinteger(L, index);
    return 1;
  }
  int64_t deadline = gilua__deadline(timeout);
  while (b->gen == gen) {
    int r = gilua__wait(L, &b->waiters, deadline, GILUA_DROP_WAIT, GILUA_DEFER);
    if (b->gen != gen)
      break;
    if (r != 0) { /* timed out or interrupted: nobody passes */
      b->broken = 1;
      end_generation(b, 1);
      gilua__check_interrupt(L);
      return raise_broken(L);
    }
  }
  if (b->broke & bit(gen))
    return raise_broken(L);
  lua_pushinteger(L, index);
  return 1;
}

/* barrier:reset(): waiters get BrokenBarrierError; usable again */
static int barrier_reset(lua_State *L) {
  barrierobj *b = check_barrier(L);
  if (b->count > 0)
    end_generation(b, 1);
  b->broken = 0;
  return 0;
}

/* barrier:abort(): broken until reset() */
static int barrier_abort(lua_State *L) {
  barrierobj *b = check_barrier(L);
  b->broken = 1;
  end_generation(b, 1);
  return 0;
}

/* barrier.parties, barrier.n_waiting, barrier.broken; methods */
static int barrier_index(lua_State *L) {
  barrierobj *b = check_barrier(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "parties") == 0)
    lua_pushinteger(L, b->parties);
  else if (strcmp(k, "n_waiting") == 0)
    lua_pushinteger(L, b->broken ? 0 : b->count);
  else if (strcmp(k, "broken") == 0)
    lua_pushboolean(L, b->broken);
  else
    lua_getfield(L, lua_upvalueindex(1), k);
  return 1;
}

static int barrier_tostring(lua_State *L) {
  barrierobj *b = check_barrier(L);
  lua_pushfstring(L, BARRIER " (%I of %I waiting%s): %p", b->count, b->parties,
                  b->broken ? ", broken" : "", b);
  return 1;
}

static const luaL_Reg barrier_methods[] = {{"wait", barrier_wait},
                                           {"reset", barrier_reset},
                                           {"abort", barrier_abort},
                                           {NULL, NULL}};

static const luaL_Reg barrier_meta[] = {
    {"__index", barrier_index}, {"__tostring", barrier_tostring}, {NULL, NULL}};

/* Adds Barrier and BrokenBarrierError to the module table on the top. */
void gilua__open_barrier(lua_State *L) {
  gilua__newclass(L, BARRIER, barrier_methods, barrier_meta);
  lua_pushcfunction(L, barrier_new);
  lua_setfield(L, -2, "Barrier");
  gilua__errvalue(L, &BROKEN, "threading.BrokenBarrierError");
  lua_setfield(L, -2, "BrokenBarrierError");
}

/*
** time.c: the time module (SPEC section 2).
*/

#include <time.h>

#include "bindings.h"

static lua_Number clock_seconds(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec * 1e-9;
}

/* time.sleep(seconds): releases the GIL while it sleeps */
static int time_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "sleep length must be non-negative");
  luaL_argcheck(L, s <= GILUA_TIMEOUT_MAX, 1, "sleep length is too large");
  gilua__sleep(L, s, GILUA_RAISE);
  return 0;
}

/* time.time() -> float seconds since the epoch */
static int time_time(lua_State *L) {
  lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
  return 1;
}

/* time.monotonic() -> float seconds, never goes back */
static int time_monotonic(lua_State *L) {
  lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
  return 1;
}

/* time.perf_counter() -> float seconds, highest resolution (the monotonic
** clock in nanoseconds; since boot, so a double keeps sub-microsecond
** precision) */
static int time_perf_counter(lua_State *L) {
  lua_pushnumber(L, (lua_Number)gilua__now() * 1e-9);
  return 1;
}

static const luaL_Reg time_funcs[] = {{"sleep", time_sleep},
                                      {"time", time_time},
                                      {"monotonic", time_monotonic},
                                      {"perf_counter", time_perf_counter},
                                      {NULL, NULL}};

int gilua__open_time(lua_State *L) {
  luaL_newlib(L, time_funcs);
  return 1;
}

/* A monotonic clock for the stock lua5.4, which has none (os.clock is CPU
** time, os.time whole seconds): monoclock.perf_counter() is
** clock_gettime(CLOCK_MONOTONIC) in float seconds, the clock gilua's
** time.perf_counter reads. bench/run.py builds it into a temporary folder
** and points LUA_CPATH at it for lua5.4; by hand:
**   cc -O2 -shared -fPIC $(pkg-config --cflags lua5.4) -o monoclock.so \
**     monoclock.c
*/
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

static int perf_counter(lua_State *L) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec * 1e-9);
  return 1;
}

int luaopen_monoclock(lua_State *L) {
  static const luaL_Reg funcs[] = {{"perf_counter", perf_counter},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}

/*
** timer.c: threading.Timer, a Thread subclass that calls a function after
** an interval unless cancel() comes first.  Its fields are Python's:
** interval, ["function"], args, finished (an Event).
*/

#include "bindings.h"

/* Timer.init(self, interval, f, ...) */
static int timer_init(lua_State *L) {
  if (lua_gettop(L) == 2 && lua_istable(L, 2)) { /* Timer{interval =,
    function =, args = {...}} */
    lua_getfield(L, 2, "interval");
    lua_getfield(L, 2, "function");
    if (lua_getfield(L, 2, "args") == LUA_TTABLE) {
      int args = lua_gettop(L);
      gilua__pushargs(L, args, gilua__arglen(L, args, "Timer: 'args'"));
      lua_remove(L, args);
    } else {
      lua_pop(L, 1);
    }
    lua_remove(L, 2);
  }
  lua_Number interval = luaL_checknumber(L, 2);
  luaL_argcheck(L, interval >= 0, 2, "interval must be non-negative");
  gilua__checkcallable(L, 3);
  int n = lua_gettop(L);
  lua_pushvalue(L, 2);
  lua_setfield(L, 1, "interval");
  lua_pushvalue(L, 3);
  lua_setfield(L, 1, "function");
  lua_createtable(L, n - 3, 1); /* a fresh table: timers never share args */
  for (int i = 4; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i - 3);
  }
  lua_pushinteger(L, n - 3);
  lua_setfield(L, -2, "n");
  lua_setfield(L, 1, "args");
  gilua__event_new(L);
  lua_setfield(L, 1, "finished");
  return 0;
}

/* timer:run(): waits out the interval, then calls the function unless
** cancelled */
static int timer_run(lua_State *L) {
  lua_settop(L, 1);
  lua_getfield(L, 1, "finished");
  lua_getfield(L, 2, "wait");
  lua_pushvalue(L, 2);
  lua_getfield(L, 1, "interval");
  lua_call(L, 2, 0);
  lua_getfield(L, 2, "is_set");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  if (!lua_toboolean(L, -1)) {
    lua_getfield(L, 1, "function");
    lua_Integer n = 0;
    if (lua_getfield(L, 1, "args") == LUA_TTABLE) {
      int args = lua_gettop(L);
      n = gilua__arglen(L, args, "Timer:run: 'args'");
      gilua__pushargs(L, args, n);
      lua_remove(L, args);
    } else {
      lua_pop(L, 1);
    }
    lua_call(L, (int)n, 0);
  }
  lua_settop(L, 2);
  lua_getfield(L, 2, "set");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 0);
  return 0;
}

/* timer:cancel(): stops it if it is still waiting */
static int timer_cancel(lua_State *L) {
  luaL_checkany(L, 1);
  lua_getfield(L, 1, "finished");
  lua_getfield(L, -1, "set");
  lua_insert(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

static const luaL_Reg timer_methods[] = {{"init", timer_init},
                                         {"run", timer_run},
                                         {"cancel", timer_cancel},
                                         {NULL, NULL}};

/* Adds Timer (made with Thread:extend()) to the module table on the top. */
void gilua__open_timer(lua_State *L) {
  lua_getfield(L, -1, "Thread");
  lua_getfield(L, -1, "extend");
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  luaL_setfuncs(L, timer_methods, 0);
  gilua__nameclass(L, "threading.Timer", -1);
  lua_setfield(L, -2, "Timer");
}

/*
** local.c: threading.thread_local([init]), also threading["local"].
**
** Fields read and written on the object are per thread.  Each object keeps
** a table with weak keys from Thread object to that thread's fields, so a
** thread's fields go away with its Thread object.  The optional init
** function runs once in each thread, on its first use of the object (the
** way a Python subclass's __init__ does).
*/

#include "bindings.h"

#define LOCAL "threading.local"

/* threading.thread_local([init]) -> object */
static int local_new(lua_State *L) {
  if (!lua_isnoneornil(L, 1) && !gilua__iscallable(L, 1))
    luaL_typeerror(L, 1, "callable or nil");
  lua_settop(L, 1);
  lua_newuserdatauv(L, 1, 2);
  gilua__weaktable(L, "k");
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 2);
  luaL_setmetatable(L, LOCAL);
  return 1;
}

/* Pushes the calling thread's field table of the object at index 1. */
static void fields(lua_State *L) {
  luaL_checkudata(L, 1, LOCAL);
  lua_getiuservalue(L, 1, 1);
  gilua__current_thread(L);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) != LUA_TNIL) {
    lua_replace(L, -3);
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_insert(L, -2); /* perthread, fields, thread */
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);
  if (lua_getiuservalue(L, 1, 2) != LUA_TNIL) { /* first use here */
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
  } else {
    lua_pop(L, 1);
  }
}

static int local_index(lua_State *L) {
  fields(L);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int local_newindex(lua_State *L) {
  fields(L);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int fields_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1))
    return 2;
  lua_pushnil(L);
  return 1;
}

/* pairs(data): this thread's fields, as Python's vars(local) */
static int local_pairs(lua_State *L) {
  fields(L);
  lua_pushcfunction(L, fields_next);
  lua_insert(L, -2);
  lua_pushnil(L);
  return 3;
}

static int local_tostring(lua_State *L) {
  lua_pushfstring(L, LOCAL ": %p", luaL_checkudata(L, 1, LOCAL));
  return 1;
}

/* Adds thread_local (and "local") to the module table on the top. */
void gilua__open_local(lua_State *L) {
  static const luaL_Reg meta[] = {{"__index", local_index},
                                  {"__newindex", local_newindex},
                                  {"__pairs", local_pairs},
                                  {"__tostring", local_tostring},
                                  {NULL, NULL}};
  gilua__newclass(L, LOCAL, NULL, meta);
  lua_pushcfunction(L, local_new);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "thread_local");
  lua_setfield(L, -2, "local");
}

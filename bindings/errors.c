/*
** errors.c: the named error values (threading.BrokenBarrierError,
** queue.Empty, queue.Full, queue.ShutDown, futures.TimeoutError, ...).
** Each is one unique table raised with error(value), so that
** `err == queue.Empty` holds after a pcall; tostring gives its dotted
** name.  C code finds a value through a registry key of its own.
*/

#include "internal.h"

static int errvalue_tostring(lua_State *L) {
  luaL_getmetafield(L, 1, "__name");
  return 1;
}

/* Pushes the error value registered under 'key', creating it (named
** 'name') on first use. */
void gilua__errvalue(lua_State *L, const void *key, const char *name) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_createtable(L, 0, 3);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushcfunction(L, errvalue_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable"); /* nobody changes what it is */
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Raises the error value registered under 'key'. */
int gilua__raise(lua_State *L, const void *key, const char *name) {
  gilua__errvalue(L, key, name);
  return lua_error(L);
}

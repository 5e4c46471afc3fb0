/*
** errors.c: the named error values (threading.BrokenBarrierError,
** queue.Empty, queue.Full, queue.ShutDown, futures.TimeoutError, ...).
** Each is one unique table raised with error(value), so that
** `err == queue.Empty` holds after a pcall; tostring gives its dotted
** name.  C code finds a value through a registry key of its own.
**
** An error that carries a message of its own (http.TimeoutError with
** curl's text) is raised as an instance: a table {name =, message =}
** whose __eq makes it equal to its named value, so `err ==
** http.TimeoutError` holds as well, and tostring gives "name: message".
*/

#include "bindings.h"

static const char MESSAGE = 0; /* the raw key of an instance's message */
static const char META = 0;    /* the named value's metatable, in it */

static int errvalue_tostring(lua_State *L) {
  int m = lua_rawgetp(L, 1, &MESSAGE);
  luaL_getmetafield(L, 1, "__name");
  if (m == LUA_TSTRING)
    lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), lua_tostring(L, -2));
  return 1;
}

/* Instances equal their named value: the same metatable (one per name). */
static int errvalue_eq(lua_State *L) {
  lua_pushboolean(L, lua_getmetatable(L, 1) && lua_getmetatable(L, 2) &&
                         lua_rawequal(L, -1, -2));
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
  lua_pushcfunction(L, errvalue_eq);
  lua_setfield(L, -2, "__eq");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable"); /* nobody changes what it is */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, &META);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Raises an instance of the named value 'key' carrying 'msg'. */
int gilua__raise_msg(lua_State *L, const void *key, const char *name,
                     const char *msg) {
  lua_pushstring(L, msg);
  gilua__errvalue(L, key, name);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "message");
  lua_pushvalue(L, -3);
  lua_rawsetp(L, -2, &MESSAGE);
  lua_rawgetp(L, -2, &META); /* the named value's metatable */
  lua_setmetatable(L, -2);
  return lua_error(L);
}

/* Raises the error value registered under 'key'. */
int gilua__raise(lua_State *L, const void *key, const char *name) {
  gilua__errvalue(L, key, name);
  return lua_error(L);
}

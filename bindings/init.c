/*
** init.c: which libraries a universe gets (Lua's linit.c), gilua_newstate,
** and threading.so's entry point for a lua5.4 that gilua did not build.
*/

#include <stdio.h>

#include "lualib.h"
#include "bindings.h"

/* gilua's modules, found by require(). */
static const luaL_Reg modules[] = {{"threading", gilua__open_threading},
                                   {"time", gilua__open_time},
                                   {"queue", gilua__open_queue},
                                   {"futures", gilua__open_futures},
                                   {"socket", gilua__open_socket},
                                   {"http", gilua__open_http},
                                   {NULL, NULL}};

/* Puts gilua's modules in package.preload and replaces the standard
** functions that must know about threads (base.c). */
static void openmodules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  luaL_setfuncs(L, modules, 0);
  lua_pop(L, 1);
  gilua__open_base(L);
}

/* Lua's standard libraries, in luaL_openlibs' order, with gilua's io. */
static int openall(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_LOADLIBNAME, luaopen_package},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_IOLIBNAME, gilua__open_io},
                                  {LUA_OSLIBNAME, luaopen_os},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {LUA_DBLIBNAME, luaopen_debug},
                                  {NULL, NULL}};
  for (const luaL_Reg *lib = libs; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  openmodules(L);
  return 0;
}

lua_State *gilua_newstatex(unsigned flags) {
  lua_State *L = gilua__universe_new();
  if (L == NULL)
    return NULL;
  if (flags & GILUA_NOENV) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, openall);
  int status = lua_pcall(L, 0, 0, 0);
  lua_gc(L, LUA_GCRESTART);
  if (status != LUA_OK) {
    gilua_close(L);
    return NULL;
  }
  return L;
}

lua_State *gilua_newstate(void) { return gilua_newstatex(0); }

/* {====================================================================
** threading.so: gilua's modules in a Lua that gilua did not make (the
** stock lua5.4 program).  require("threading") makes the universe around
** that state; the calling OS thread becomes its main thread.  At
** lua_close, an "exit sentinel" (the last object marked for finalization
** when the last thread started, so its finalizer runs before those of
** older objects) waits for the non-daemon threads, then parks the rest.
** ===================================================================== */

static const char SENTINEL = 0;

static int sentinel_gc(lua_State *L) {
  int *live = lua_touserdata(L, 1);
  if (!*live)
    return 0; /* replaced by a newer sentinel */
  lua_pushcfunction(L, gilua_waitthreads);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  gilua__universe_freeze(L);
  return 0;
}

void gilua__exit_sentinel(lua_State *L) {
  if (!gilua__borrowed(gilua__universe(L)))
    return; /* gilua_close does this work */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SENTINEL) == LUA_TUSERDATA)
    *(int *)lua_touserdata(L, -1) = 0;
  lua_pop(L, 1);
  int *live = lua_newuserdatauv(L, sizeof *live, 0);
  *live = 1;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SENTINEL);
}

GILUA_API int luaopen_threading(lua_State *L) {
  if (gilua__universe(L) == NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *M = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (gilua__universe_attach(M, 1) == NULL)
      return gilua__nomem(L);
    gilua__set_running(L, L);
    openmodules(L);
    gilua__exit_sentinel(L);
  }
  return gilua__open_threading(L);
}

/* }==================================================================== */

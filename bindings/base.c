/*
** base.c: the standard functions gilua replaces.
**
** print: builds the whole line first and writes it with one call, so
** lines from different threads never interleave; the flush that follows
** (as Lua's print does) runs with the GIL released.
** os.execute: releases the GIL while the command runs.
** coroutine.resume/wrap/close: same behaviour as Lua's own, but they keep
** the thread's 'running' coroutine current, so that a switch request arms
** the coroutine that actually runs (hooks are per coroutine in 5.4).
** debug.sethook/gethook: record the user's hooks so that the GIL's own hook
** can put them back, and never report the GIL's hook as the user's.
*/

#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* print(...): one fwrite per call, GIL released around it */
static int base_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *line = lua_tolstring(L, -1, &len);
  gilua_tstate *ts = gilua__self(L);
  if (ftrylockfile(stdout) == 0) {
    /* into stdio's buffer with the GIL held, so lines keep the order in
    ** which threads printed them; only the flush may wait */
    fwrite_unlocked(line, 1, len, stdout);
    funlockfile(stdout);
    if (__fpending(stdout) > 0) {
      gilua__gil_drop(ts, GILUA_R_IO);
      fflush(stdout);
      gilua__gil_take(ts);
    }
  } else { /* another thread is writing: wait for it without the GIL */
    gilua__gil_drop(ts, GILUA_R_IO);
    fwrite(line, 1, len, stdout);
    fflush(stdout);
    gilua__gil_take(ts);
  }
  return 0;
}

/* os.execute([command]): the GIL is released while the command runs */
static int os_execute(lua_State *L) {
  const char *cmd = luaL_optstring(L, 1, NULL);
  char *copy = NULL;
  if (cmd && (copy = strdup(cmd)) == NULL)
    return luaL_error(L, "not enough memory");
  int stat;
  errno = 0;
  GILUA__BLOCKING(L, GILUA_R_IO)
    stat = system(copy);
  GILUA__END_BLOCKING()
  int saved = errno;
  free(copy);
  errno = saved;
  if (cmd != NULL)
    return luaL_execresult(L, stat);
  lua_pushboolean(L, stat); /* is a shell available? */
  return 1;
}

/* {====================================================================
** Coroutines
** ===================================================================== */

enum { CO_RUNNING, CO_DEAD, CO_SUSPENDED, CO_NORMAL };
static const char *const co_statname[] = {"running", "dead", "suspended",
                                          "normal"};

static int co_status(lua_State *L, lua_State *co) {
  if (L == co)
    return CO_RUNNING;
  switch (lua_status(co)) {
  case LUA_YIELD:
    return CO_SUSPENDED;
  case LUA_OK: {
    lua_Debug ar;
    if (lua_getstack(co, 0, &ar)) /* it has frames: it resumed another */
      return CO_NORMAL;
    return lua_gettop(co) == 0 ? CO_DEAD : CO_SUSPENDED;
  }
  default: /* it died with an error */
    return CO_DEAD;
  }
}

static lua_State *check_co(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
  return co;
}

/* Resumes co with narg values from L's top; leaves its results (>= 0
** returned) or an error message (-1 returned) on L's top. */
static int resume_co(lua_State *L, lua_State *co, int narg) {
  int nres;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  int st = co_status(L, co);
  if (st != CO_SUSPENDED) {
    lua_pushstring(L, st == CO_DEAD ? "cannot resume dead coroutine"
                                    : "cannot resume non-suspended coroutine");
    return -1;
  }
  lua_xmove(L, co, narg);
  gilua_tstate *ts = gilua__self(L);
  gilua__set_running(ts, co);
  int status = lua_resume(co, L, narg, &nres);
  gilua__set_running(ts, L);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); /* the error object */
  return -1;
}

/* Closes co's pending to-be-closed variables (they run on co). */
static int reset_co(lua_State *L, lua_State *co) {
  gilua_tstate *ts = gilua__self(L);
  gilua__set_running(ts, co);
  int status = lua_resetthread(co);
  gilua__set_running(ts, L);
  return status;
}

/* coroutine.resume(co, ...) -> true, ... | false, error */
static int co_resume(lua_State *L) {
  lua_State *co = check_co(L);
  int r = resume_co(L, co, lua_gettop(L) - 1);
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

static int co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int r = resume_co(L, co, lua_gettop(L));
  if (r >= 0)
    return r;
  int status = lua_status(co);
  if (status != LUA_OK && status != LUA_YIELD) { /* it died: close it */
    status = reset_co(L, co);
    lua_xmove(co, L, 1);
  }
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1); /* add the caller's position, as Lua does */
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* coroutine.wrap(f) -> function */
static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_wrapped, 1);
  return 1;
}

/* coroutine.close(co) -> true | false, error */
static int co_close(lua_State *L) {
  lua_State *co = check_co(L);
  int st = co_status(L, co);
  if (st != CO_DEAD && st != CO_SUSPENDED)
    return luaL_error(L, "cannot close a %s coroutine", co_statname[st]);
  if (reset_co(L, co) == LUA_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 2;
}

/* }==================================================================== */

/* {====================================================================
** debug.sethook / debug.gethook
** ===================================================================== */

/* Remembers the hook the user set on 'co' (NULL: none). */
static void record_hook(lua_State *L, lua_State *co, lua_Hook h, int mask,
                        int count) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &gilua__userhooks) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &gilua__userhooks);
  }
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  if (h == NULL) {
    lua_pushnil(L);
  } else {
    lua_createtable(L, 3, 0);
    lua_pushlightuserdata(L, (void *)h);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, mask);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, count);
    lua_rawseti(L, -2, 3);
  }
  lua_rawset(L, -3);
  lua_pop(L, 1);
  atomic_store(&gilua__universe(L)->user_hooks, 1);
}

/*
** Runs the original function (upvalue 1) directly, as a C function on
** this very frame (so that hooks see no extra call), while no request can
** arm the caller's coroutine: 'running' is NULL meanwhile, and the GIL's
** hook, if armed on 'target', is first replaced by the user's.  With
** 'record', remembers the hook the original left on 'target'.  Argument
** errors are raised before anything changes; should the original run out
** of memory, preemption of this thread resumes at its next coroutine
** switch.
*/
static int call_unarmed(lua_State *L, lua_State *target, int record) {
  lua_CFunction orig = lua_tocfunction(L, lua_upvalueindex(1));
  gilua_tstate *ts = gilua__self(L);
  lua_State *saved = ts->running;
  gilua__hook_lock(ts);
  ts->running = NULL;
  if (lua_gethook(target) == gilua__hook)
    gilua__restore_user_hook(ts, target);
  gilua__hook_unlock(ts);
  int n = orig(L);
  lua_Hook h = lua_gethook(target);
  int mask = lua_gethookmask(target), count = lua_gethookcount(target);
  gilua__set_running(ts, saved); /* re-arms if a request came meanwhile */
  if (record) {
    int top = lua_gettop(L);
    record_hook(L, target, h, mask, count);
    lua_settop(L, top);
  }
  return n;
}

static lua_State *hook_target(lua_State *L) {
  return lua_type(L, 1) == LUA_TTHREAD ? lua_tothread(L, 1) : L;
}

/* debug.sethook([thread,] hook, mask [, count]) */
static int db_sethook(lua_State *L) {
  int arg = lua_type(L, 1) == LUA_TTHREAD;
  if (!lua_isnoneornil(L, arg + 1)) { /* the checks the original makes */
    luaL_checkstring(L, arg + 2);
    luaL_checktype(L, arg + 1, LUA_TFUNCTION);
    luaL_optinteger(L, arg + 3, 0);
  }
  return call_unarmed(L, hook_target(L), 1);
}

/* debug.gethook([thread]) -> hook, mask, count */
static int db_gethook(lua_State *L) {
  return call_unarmed(L, hook_target(L), 0);
}

/* }==================================================================== */

/* Replaces t[name] (t on the top) by f with the old value as upvalue. */
static void wrap_field(lua_State *L, const char *name, lua_CFunction f) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}

void gilua__open_base(lua_State *L) {
  static const luaL_Reg co_funcs[] = {{"resume", co_resume},
                                      {"wrap", co_wrap},
                                      {"close", co_close},
                                      {NULL, NULL}};
  lua_pushcfunction(L, base_print);
  lua_setglobal(L, "print");
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE)
    luaL_setfuncs(L, co_funcs, 0);
  lua_pop(L, 1);
  if (lua_getglobal(L, "os") == LUA_TTABLE) {
    lua_pushcfunction(L, os_execute);
    lua_setfield(L, -2, "execute");
  }
  lua_pop(L, 1);
  if (lua_getglobal(L, "debug") == LUA_TTABLE) {
    wrap_field(L, "sethook", db_sethook);
    wrap_field(L, "gethook", db_gethook);
  }
  lua_pop(L, 1);
}

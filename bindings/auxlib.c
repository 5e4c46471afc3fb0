/*
** auxlib.c: the binding toolkit, built only on the Lua API and
** runtime.h (as Lua's lauxlib is built only on lua.h): the checks every
** binding makes the same way, the class builder, with(), the boxed C
** buffer and the FIFO ring.
**
** Errors: argument errors go through luaL_argerror, so Lua names the
** function ("bad argument #1 to 'acquire' (...)"); state errors are raised
** by the bindings as "Type:method: what went wrong", in CPython's words.
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings.h"

/* {====================================================================
** Argument checks
** ===================================================================== */

int gilua__iscallable(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TFUNCTION)
    return 1;
  if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL)
    return 0;
  lua_pop(L, 1);
  return 1;
}

void gilua__checkcallable(lua_State *L, int arg) {
  if (!gilua__iscallable(L, arg))
    luaL_typeerror(L, arg, "callable");
}

double gilua__opttimeout(lua_State *L, int arg, int blocking) {
  if (lua_isnoneornil(L, arg))
    return -1;
  lua_Number t = luaL_checknumber(L, arg);
  if (t == -1)
    return -1;
  if (!blocking)
    luaL_argerror(L, arg, "can't specify a timeout for a non-blocking call");
  if (!(t >= 0)) /* NaN too */
    luaL_argerror(L, arg, "timeout value must be a non-negative number");
  if (t > GILUA_TIMEOUT_MAX)
    luaL_argerror(L, arg, "timeout value is too large");
  return t;
}

int64_t gilua__optdeadline(lua_State *L, int arg, int blocking) {
  return gilua__deadline(gilua__opttimeout(L, arg, blocking));
}

int gilua__optboolean(lua_State *L, int arg, int def) {
  if (lua_isnoneornil(L, arg))
    return def;
  luaL_checktype(L, arg, LUA_TBOOLEAN);
  return lua_toboolean(L, arg);
}

lua_Integer gilua__arglen(lua_State *L, int idx, const char *what) {
  lua_Integer n;
  idx = lua_absindex(L, idx);
  if (lua_getfield(L, idx, "n") != LUA_TNIL) {
    int isint;
    n = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_error(L, "%s: field 'n' must be an integer", what);
  } else {
    lua_len(L, idx); /* may call __len */
    int isint;
    n = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_error(L, "%s: length must be an integer", what);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (n < 0 || n > GILUA_MAXARGS)
    luaL_error(L, "%s: length %I out of range (0 to %d)", what, n,
               GILUA_MAXARGS);
  return n;
}

int gilua__kwargs(lua_State *L, int arg, const char *const names[]) {
  if (lua_gettop(L) != arg || lua_type(L, arg) != LUA_TTABLE)
    return 0;
  int n = 0;
  while (names[n])
    n++;
  luaL_checkstack(L, n, NULL);
  for (int i = 0; i < n; i++)
    lua_getfield(L, arg, names[i]);
  lua_remove(L, arg);
  return 1;
}

void gilua__pushargs(lua_State *L, int idx, lua_Integer n) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, (int)n, "too many arguments");
  for (lua_Integer i = 1; i <= n; i++)
    lua_geti(L, idx, i);
}

/* }==================================================================== */

/* {====================================================================
** Classes and with()
** ===================================================================== */

void gilua__nameclass(lua_State *L, const char *tname, int methods) {
  methods = lua_absindex(L, methods);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, methods);
  lua_setfield(L, -2, tname);
  lua_pop(L, 1);
}

/* Whether 'meta' has an __index of its own. */
static int own_index(const luaL_Reg *meta) {
  for (; meta && meta->name; meta++)
    if (strcmp(meta->name, "__index") == 0)
      return 1;
  return 0;
}

void gilua__newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                     const luaL_Reg *meta) {
  luaL_newmetatable(L, tname); /* sets __name */
  int own = own_index(meta);
  if (methods) {
    /* __index first: the key looked up on every method call takes its
    ** main position in the metatable's hash part */
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    if (strchr(tname, '.'))
      gilua__nameclass(L, tname, -1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, own ? "methods" : "__index");
  } else {
    lua_pushnil(L);
  }
  if (meta) { /* the methods table is their upvalue 1 */
    luaL_setfuncs(L, meta, 1);
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

int gilua__with(lua_State *L, lua_CFunction acquire, lua_CFunction release) {
  gilua__checkcallable(L, 2);
  int top = lua_gettop(L);
  lua_pushcfunction(L, acquire);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  /* no continuation: a yield inside f raises here, and the lock is let
  ** go by the thread that took it */
  int status = lua_pcall(L, top - 2, LUA_MULTRET, 0);
  int nres = lua_gettop(L) - 1;
  lua_pushcfunction(L, release);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  if (status != LUA_OK)
    return lua_error(L);
  return nres;
}

/* }==================================================================== */

/* {====================================================================
** Small things
** ===================================================================== */

void gilua__write_stderr(lua_State *L, const char *s) {
  char *copy = strdup(s); /* no Lua memory is read without the GIL */
  if (copy == NULL) {
    fputs(s, stderr);
    fflush(stderr);
    return;
  }
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  fputs(copy, stderr);
  fflush(stderr);
  gilua__block_end(&b);
  free(copy);
}

void gilua__weaktable(lua_State *L, const char *mode) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

static int tolstring(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

const char *gilua__describe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, tolstring);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(a %s value whose __tostring failed)",
                    luaL_typename(L, idx));
  }
  return lua_tostring(L, -1);
}

int gilua__nomem(lua_State *L) {
  lua_pushliteral(L, "not enough memory");
  return lua_error(L);
}

/* }==================================================================== */

/* {====================================================================
** The boxed buffer
** ===================================================================== */

#define BOX "gilua.box"

static int box_gc(lua_State *L) {
  gilua_box *b = luaL_checkudata(L, 1, BOX);
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

gilua_box *gilua__box_new(lua_State *L) {
  gilua_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->len = b->cap = 0;
  if (luaL_newmetatable(L, BOX)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return b;
}

char *gilua__box_grow(gilua_box *b, size_t need) {
  if (need <= b->cap)
    return b->p;
  size_t ncap = b->cap ? b->cap : 128;
  while (ncap < need)
    ncap = ncap > (size_t)-1 / 2 ? need : ncap * 2;
  char *np = realloc(b->p, ncap);
  if (np == NULL)
    return NULL;
  b->p = np;
  b->cap = ncap;
  return np;
}

/* }==================================================================== */

/* {====================================================================
** The FIFO ring
** ===================================================================== */

void gilua__ring_init(lua_State *L, gilua_ring *r, int obj, int uv) {
  obj = lua_absindex(L, obj);
  r->head = r->count = 0;
  r->cap = 16;
  lua_createtable(L, (int)r->cap, 0);
  lua_setiuservalue(L, obj, uv);
}

void gilua__ring_push(lua_State *L, gilua_ring *r, int obj, int uv) {
  obj = lua_absindex(L, obj);
  for (;;) {
    if (r->count < r->cap) { /* no allocation from here on */
      lua_getiuservalue(L, obj, uv);
      lua_pushvalue(L, -2);
      lua_rawseti(L, -2, (r->head + r->count) % r->cap + 1);
      r->count++;
      lua_pop(L, 2);
      return;
    }
    lua_Integer ncap = r->cap * 2;
    if (ncap > INT32_MAX)
      luaL_error(L, "queue too large");
    lua_createtable(L, (int)ncap, 0); /* may run a finalizer */
    if (r->count < r->cap || r->cap * 2 != ncap) {
      lua_pop(L, 1); /* the ring changed meanwhile: look again */
      continue;
    }
    lua_getiuservalue(L, obj, uv);
    for (lua_Integer k = 0; k < r->count; k++) {
      lua_rawgeti(L, -1, (r->head + k) % r->cap + 1);
      lua_rawseti(L, -3, k + 1);
    }
    lua_pop(L, 1);
    lua_setiuservalue(L, obj, uv);
    r->head = 0;
    r->cap = ncap;
  }
}

void gilua__ring_pop(lua_State *L, gilua_ring *r, int obj, int uv) {
  obj = lua_absindex(L, obj);
  lua_getiuservalue(L, obj, uv);
  lua_rawgeti(L, -1, r->head + 1);
  lua_pushnil(L);
  lua_rawseti(L, -3, r->head + 1);
  lua_remove(L, -2);
  r->head = (r->head + 1) % r->cap;
  r->count--;
}

/* }==================================================================== */

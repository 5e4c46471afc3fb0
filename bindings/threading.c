/*
** threading.c: the threading module: its functions, and the classes
** defined in thread.c (Thread) and lock.c (Lock, RLock).
*/

#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "internal.h"

/* Below this, Lua's own C recursion limit (200 levels) could overflow the
** C stack; smaller requests are raised to it. */
#define MIN_STACK (256 * 1024)

/* threading.current_thread() -> Thread */
int gilua__current_thread(lua_State *L) {
  gilua_tstate *ts = gilua__self(L);
  if (ts->ref_obj == LUA_NOREF) { /* a host thread: give it an object */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "threading");
    gilua__thread_main_object(L, ts);
    lua_pop(L, 2);
  }
  gilua__push_thread(L, ts);
  return 1;
}

/* threading.main_thread() -> Thread */
static int threading_main_thread(lua_State *L) {
  gilua__push_thread(L, gilua__universe(L)->main);
  return 1;
}

/* threading.enumerate() -> array of the live Threads, oldest first */
static int threading_enumerate(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  int n = 0;
  for (gilua_tstate *ts = u->live; ts; ts = ts->next)
    n += ts->ref_obj != LUA_NOREF;
  lua_createtable(L, n, 0);
  int i = n;
  for (gilua_tstate *ts = u->live; ts; ts = ts->next)
    if (ts->ref_obj != LUA_NOREF) {
      gilua__push_thread(L, ts);
      lua_rawseti(L, -2, i--);
    }
  return 1;
}

/* threading.active_count() -> integer */
static int threading_active_count(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  lua_Integer n = 0;
  for (gilua_tstate *ts = u->live; ts; ts = ts->next)
    n += ts->ref_obj != LUA_NOREF;
  lua_pushinteger(L, n);
  return 1;
}

/* threading.get_ident() -> integer */
static int threading_get_ident(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)pthread_self());
  return 1;
}

/* threading.get_native_id() -> integer (the kernel's thread id) */
static int threading_get_native_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)syscall(SYS_gettid));
  return 1;
}

/* threading.setswitchinterval(seconds) */
static int threading_setswitchinterval(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, gilua_setswitchinterval(L, s) == 0, 1,
                "switch interval must be strictly positive");
  return 0;
}

/* threading.getswitchinterval() -> seconds */
static int threading_getswitchinterval(lua_State *L) {
  lua_pushnumber(L, gilua_getswitchinterval(L));
  return 1;
}

/* threading.stack_size([bytes]) -> the previous setting (0: default) */
static int threading_stack_size(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  size_t old = u->stack_size;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n != 0 && n < 32768)
      return luaL_error(L, "threading.stack_size: size not valid: %I bytes", n);
    luaL_argcheck(L, n <= ((lua_Integer)1 << 40), 1, "size too large");
    u->stack_size = n == 0 ? 0 : (n < MIN_STACK ? MIN_STACK : (size_t)n);
    if (n != 0)
      u->stack_size = (u->stack_size + 4095) & ~(size_t)4095;
  }
  lua_pushinteger(L, (lua_Integer)old);
  return 1;
}

static const luaL_Reg threading_funcs[] = {
    {"current_thread", gilua__current_thread},
    {"main_thread", threading_main_thread},
    {"enumerate", threading_enumerate},
    {"active_count", threading_active_count},
    {"get_ident", threading_get_ident},
    {"get_native_id", threading_get_native_id},
    {"setswitchinterval", threading_setswitchinterval},
    {"getswitchinterval", threading_getswitchinterval},
    {"stack_size", threading_stack_size},
    {NULL, NULL}};

/* threading.ThreadPool: loads the futures module, which sets it */
static int threading_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING &&
      strcmp(lua_tostring(L, 2), "ThreadPool") == 0) {
    luaL_requiref(L, "futures", gilua__open_futures, 0);
    lua_getfield(L, -1, "ThreadPoolExecutor");
    return 1;
  }
  return 0;
}

int gilua__open_threading(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  luaL_newlib(L, threading_funcs);
  lua_pushnumber(L, GILUA_TIMEOUT_MAX);
  lua_setfield(L, -2, "TIMEOUT_MAX");
  gilua__open_thread(L);
  gilua__open_lock(L);
  gilua__open_condition(L);
  gilua__open_semaphore(L);
  gilua__open_event(L);
  gilua__open_barrier(L);
  gilua__open_timer(L);
  gilua__open_local(L);
  gilua__open_gil(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, threading_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  if (u->main->ref_obj == LUA_NOREF)
    gilua__thread_main_object(L, u->main);
  return 1;
}

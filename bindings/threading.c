/*
** threading.c: the threading module: its functions, and the classes
** defined in thread.c (Thread) and lock.c (Lock, RLock).
*/

#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "bindings.h"

/* Below this, Lua's own C recursion limit (200 levels of gsub, format,
** sort, the parser, gilua's with()) could overflow the C stack: 256 KiB
** did, 512 KiB was measured enough, twice that is kept.  Smaller requests
** are raised to it. */
#define MIN_STACK (1024 * 1024)

/* threading.current_thread() -> Thread */
int gilua__current_thread(lua_State *L) {
  gilua_tstate *ts = gilua__self(L);
  if (!gilua__thread_pushobj(L, ts)) { /* a host thread: give it one */
    lua_pop(L, 1);
    luaL_requiref(L, "threading", gilua__open_threading, 0);
    gilua__thread_object(L, ts);
    gilua__thread_pushobj(L, ts);
  }
  return 1;
}

/* threading.main_thread() -> Thread */
static int threading_main_thread(lua_State *L) {
  gilua__thread_pushobj(L, gilua__main(gilua__universe(L)));
  return 1;
}

/* threading.enumerate() -> array of the live Threads, oldest first */
static int threading_enumerate(lua_State *L) {
  gilua__thread_list(L);
  return 1;
}

/* threading.active_count() -> integer */
static int threading_active_count(lua_State *L) {
  lua_pushinteger(L, gilua__thread_list(L));
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

/* threading.setswitchpolicy("fair" | "fifo") */
static int threading_setswitchpolicy(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, gilua_setswitchpolicy(L, name) == 0, 1,
                "unknown policy (\"fair\" or \"fifo\")");
  return 0;
}

/* threading.getswitchpolicy() -> "fair" | "fifo" */
static int threading_getswitchpolicy(lua_State *L) {
  lua_pushstring(L, gilua_getswitchpolicy(L));
  return 1;
}

/* threading.stack_size([bytes]) -> the previous setting (0: default) */
static int threading_stack_size(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  size_t old = gilua__stack_size(u);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n != 0 && n < 32768)
      return luaL_argerror(L, 1, "size not valid (0 or at least 32768)");
    luaL_argcheck(L, n <= ((lua_Integer)1 << 40), 1, "size too large");
    size_t sz = n == 0 ? 0 : (n < MIN_STACK ? MIN_STACK : (size_t)n);
    gilua__set_stack_size(u, n == 0 ? 0 : (sz + 4095) & ~(size_t)4095);
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
    {"setswitchpolicy", threading_setswitchpolicy},
    {"getswitchpolicy", threading_getswitchpolicy},
    {NULL, NULL}};

/* threading.ThreadPool: futures.ThreadPoolExecutor, loaded on first use */
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
  gilua_tstate *main = gilua__main(gilua__universe(L));
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
  if (!gilua__thread_pushobj(L, main)) {
    lua_pop(L, 1);
    gilua__thread_object(L, main);
  } else {
    lua_pop(L, 1);
  }
  return 1;
}

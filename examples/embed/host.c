/*
** host.c: a small program that embeds gilua.
**
** It registers a C function that blocks with the GIL released, runs Lua
** threads that call it at the same time, and calls back into Lua from
** threads of its own through gilua_ensure/gilua_release.
**
**   make && ./host
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <gilua.h>

/* host_sleep(seconds): blocks without holding the GIL */
static int host_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "must be non-negative");
  GILUA_BEGIN_ALLOW_THREADS(L)
    usleep((useconds_t)(s * 1e6));
  GILUA_END_ALLOW_THREADS(L)
  return 0;
}

static lua_State *universe;

/* A host thread: calls the Lua function greet(name) five times. */
static void *host_thread(void *arg) {
  for (int i = 0; i < 5; i++) {
    lua_State *T = gilua_ensure(universe);
    lua_getglobal(T, "greet");
    lua_pushstring(T, (const char *)arg);
    if (lua_pcall(T, 1, 0, 0) != LUA_OK) {
      fprintf(stderr, "greet failed: %s\n", lua_tostring(T, -1));
      lua_pop(T, 1);
    }
    gilua_release(T);
    usleep(10000); /* host work, no GIL held */
  }
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  printf("gilua %s\n", gilua_version());
  lua_State *L = universe = gilua_newstate();
  if (L == NULL)
    return 1;
  lua_register(L, "host_sleep", host_sleep);
  double t0 = now();
  if (luaL_dostring(L, "local threading = require('threading')\n"
                       "local ts = {}\n"
                       "for i = 1, 3 do\n"
                       "  ts[i] = threading.Thread(host_sleep, 0.2)\n"
                       "  ts[i]:start()\n"
                       "end\n"
                       "for i = 1, 3 do ts[i]:join() end\n"
                       "greetings = {}\n"
                       "function greet(name)\n"
                       "  greetings[#greetings + 1] = name\n"
                       "end") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  printf("3 Lua threads x 0.2 s in host_sleep took %.2f s\n", now() - t0);
  pthread_t a, b;
  GILUA_BEGIN_ALLOW_THREADS(L)
    pthread_create(&a, NULL, host_thread, "alpha");
    pthread_create(&b, NULL, host_thread, "beta");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
  GILUA_END_ALLOW_THREADS(L)
  if (luaL_dostring(L, "print('greetings from host threads: ' .. #greetings)"))
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
  return gilua_close(L);
}

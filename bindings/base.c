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

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/pidfd.h>
#include <sys/wait.h>

#include "bindings.h"

extern char **environ;

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
  if (ftrylockfile(stdout) == 0) {
    /* into stdio's buffer with the GIL held, so lines keep the order in
    ** which threads printed them; only the flush may wait */
    fwrite_unlocked(line, 1, len, stdout);
    funlockfile(stdout);
    if (__fpending(stdout) > 0) {
      gilua_block blk;
      gilua__block_begin(L, &blk, NULL, GILUA_DROP_IO);
      fflush(stdout);
      gilua__block_end(&blk);
    }
    return 0;
  }
  /* another thread is writing: wait for it without the GIL, on a copy */
  gilua_box *box = gilua__box_new(L);
  if (gilua__box_grow(box, len) == NULL)
    return gilua__nomem(L);
  memcpy(box->p, line, len);
  gilua_block blk;
  gilua__block_begin(L, &blk, NULL, GILUA_DROP_IO);
  fwrite(box->p, 1, len, stdout);
  fflush(stdout);
  gilua__block_end(&blk);
  return 0;
}

/* {====================================================================
** os.execute: the command runs in /bin/sh -c, as system() runs it, but
** the wait for it is a poll on a pidfd, so it releases the GIL and an
** interrupt ends it: the child then gets SIGINT (it usually got one from
** the terminal already), a quarter of a second to end, then SIGKILL, and
** is always reaped (as CPython's subprocess does on KeyboardInterrupt).
** The child stays in the caller's process group, so that an interactive
** command keeps the terminal; the shell's own children get Ctrl-C from
** the terminal, not from us.
** ===================================================================== */

/* Waits for the child pid (a pidfd when there is one); its status, or
** -1 with errno.  Interrupts are raised once the child is gone. */
static int wait_child(lua_State *L, pid_t pid) {
  int pfd = pidfd_open(pid, 0);
  int r = 0;
  if (pfd >= 0) {
    struct pollfd p = {pfd, POLLIN, 0};
    r = gilua__poll(L, NULL, &p, 1, GILUA_FOREVER, GILUA_DEFER);
    if (r == GILUA_EINTR) {
      kill(pid, SIGINT);
      p.revents = 0;
      if (poll(&p, 1, 250) == 0)
        kill(pid, SIGKILL);
    }
    close(pfd);
  }
  int stat, w;
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  do
    w = waitpid(pid, &stat, 0);
  while (w < 0 && errno == EINTR);
  gilua__block_end(&b);
  if (r == GILUA_EINTR)
    gilua__check_interrupt(L);
  return w < 0 ? -1 : stat;
}

/* os.execute([command]) -> as Lua's: true|fail, "exit"|"signal", code */
static int os_execute(lua_State *L) {
  const char *cmd = luaL_optstring(L, 1, NULL);
  if (cmd == NULL) { /* is a shell available? */
    lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
    return 1;
  }
  posix_spawnattr_t attr;
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGINT);
  sigaddset(&dfl, SIGQUIT);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char *argv[] = {"sh", "-c", (char *)cmd, NULL};
  pid_t pid;
  fflush(NULL); /* as system(): what was written goes out first */
  int err = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  int stat = err ? (errno = err, -1) : wait_child(L, pid);
  return luaL_execresult(L, stat);
}

/* }==================================================================== */

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
  gilua__set_running(L, co);
  int status = lua_resume(co, L, narg, &nres);
  gilua__set_running(L, L);
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
  gilua__set_running(L, co);
  int status = lua_resetthread(co);
  gilua__set_running(L, L);
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

/* The original debug.sethook/gethook (upvalue 1), run as a C function on
** this very frame, so that hooks see no extra call. */
static int call_orig(lua_State *L) {
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
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
  return gilua__call_unhooked(L, hook_target(L), call_orig, 1);
}

/* debug.gethook([thread]) -> hook, mask, count */
static int db_gethook(lua_State *L) {
  return gilua__call_unhooked(L, hook_target(L), call_orig, 0);
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

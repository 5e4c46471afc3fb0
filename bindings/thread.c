/*
** thread.c: threading.Thread.
**
** A Thread object is a full userdata (metatable "threading.Thread") with
** three user values: 1, a table of its attributes (name and whatever a
** subclass stores on self); 2, its class; 3, {target, args...} given to
** the constructor.  Reading a field looks at the computed fields (daemon,
** ident, native_id), then the attributes, then the class chain, so a
** subclass made with Thread:extend() overrides run() and init() as in
** Python.  The OS thread runs self:run() on a Lua thread of its own,
** under lua_pcall with a traceback handler; an error that escapes goes to
** threading.excepthook.
*/

#include <errno.h>
#include <string.h>

#include "bindings.h"

#define THREAD "threading.Thread"
#define UV_ATTRS 1
#define UV_CLASS 2
#define UV_CALL 3

typedef struct threadobj {
  gilua_tstate *ts; /* NULL until started (or made for a running thread) */
  int daemon;
  int dead; /* finalized: no method works any more */
} threadobj;

static threadobj *check_thread(lua_State *L, int idx) {
  threadobj *t = luaL_checkudata(L, idx, THREAD);
  if (t->dead)
    luaL_error(L, "Thread: the thread object was finalized");
  return t;
}

/* Creates an instance of class 'cls' (at index cls) with default fields. */
static threadobj *new_instance(lua_State *L, int cls, const char *name) {
  gilua_universe *u = gilua__universe(L);
  int daemon = gilua__thread_daemon(gilua__self(L)); /* the creator's */
  lua_Integer seq = name ? 0 : gilua__next_name(u);
  threadobj *t = lua_newuserdatauv(L, sizeof *t, 3);
  t->ts = NULL;
  t->daemon = daemon;
  t->dead = 0;
  luaL_setmetatable(L, THREAD);
  lua_createtable(L, 0, 2);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushfstring(L, "Thread-%I", seq);
  lua_setfield(L, -2, "name");
  lua_setiuservalue(L, -2, UV_ATTRS);
  lua_pushvalue(L, cls);
  lua_setiuservalue(L, -2, UV_CLASS);
  return t;
}

/* Gives 'ts' (the main thread or a host thread) a Thread object. */
void gilua__thread_object(lua_State *L, gilua_tstate *ts) {
  lua_getfield(L, -1, "Thread"); /* the module is on the top */
  int cls = lua_gettop(L);
  threadobj *t =
      new_instance(L, cls, gilua__thread_is_main(ts) ? "MainThread" : NULL);
  t->ts = ts;
  t->daemon = gilua__thread_daemon(ts);
  gilua__thread_setobj(L, ts, -1);
  lua_pop(L, 2);
}

/* {====================================================================
** Running a thread
** ===================================================================== */

static const char TBKEY = 0; /* marks a {value, traceback} error box */

static int tostring_meta(lua_State *L) {
  luaL_callmeta(L, 1, "__tostring");
  return 1;
}

/* Message handler: boxes the error (unchanged) with its traceback; an
** error value whose __tostring fails is described by its type. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    lua_pushcfunction(L, tostring_meta);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  lua_createtable(L, 2, 1);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 2);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &TBKEY);
  return 1;
}

/* The default excepthook: threading.__excepthook__(args) */
static int thread_excepthook(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "thread");
  const char *name = "?";
  if (lua_type(L, -1) == LUA_TUSERDATA) {
    lua_getfield(L, -1, "name");
    name = gilua__describe(L, -1);
  }
  lua_getfield(L, 1, "traceback");
  const char *tb = lua_tostring(L, -1);
  if (tb == NULL) {
    lua_getfield(L, 1, "exc_value");
    tb = gilua__describe(L, -1);
  }
  lua_pushfstring(L, "Exception in thread %s:\n%s\n", name, tb);
  gilua__write_stderr(L, lua_tostring(L, -1));
  return 0;
}

/* Pushes the traceback of an error object (a box from msghandler, or any
** other value) as a string. */
static const char *error_text(lua_State *L, int err, int part) {
  if (lua_type(L, err) == LUA_TTABLE &&
      lua_rawgetp(L, err, &TBKEY) == LUA_TBOOLEAN) {
    lua_pop(L, 1);
    lua_rawgeti(L, err, part);
    return part == 2 ? lua_tostring(L, -1) : NULL;
  }
  if (lua_type(L, err) == LUA_TTABLE)
    lua_pop(L, 1);
  if (part == 2)
    return gilua__describe(L, err);
  lua_pushvalue(L, err);
  return NULL;
}

/* report(err, thread): hands an error that escaped a thread to
** threading.excepthook(args); a hook that fails is reported, then the
** default hook reports the original error. */
static int report(lua_State *L) {
  lua_createtable(L, 0, 4);
  int args = lua_gettop(L);
  error_text(L, 1, 1);
  lua_pushstring(L, luaL_typename(L, -1));
  lua_setfield(L, args, "exc_type");
  lua_setfield(L, args, "exc_value");
  error_text(L, 1, 2);
  lua_setfield(L, args, "traceback");
  lua_pushvalue(L, 2);
  lua_setfield(L, args, "thread");
  lua_pushcfunction(L, msghandler);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "threading");
  lua_getfield(L, -1, "excepthook");
  lua_replace(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, args);
  if (lua_pcall(L, 1, 0, -3) != LUA_OK) {
    const char *tb = error_text(L, lua_gettop(L), 2);
    gilua__write_stderr(
        L, lua_pushfstring(L, "Exception in threading.excepthook:\n%s\n", tb));
    lua_pushcfunction(L, thread_excepthook);
    lua_pushvalue(L, args);
    lua_call(L, 1, 0);
  }
  return 0;
}

/* run(self): what the OS thread calls under lua_pcall */
static int call_run(lua_State *L) {
  lua_getfield(L, 1, "run");
  lua_insert(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

/* The body of every OS thread started by Thread:start(): the runtime
** has entered the thread (GIL held) and exits it when this returns. */
static void thread_body(lua_State *co, gilua_tstate *ts) {
  lua_settop(co, 0);
  lua_pushcfunction(co, msghandler);
  lua_pushcfunction(co, call_run);
  gilua__thread_pushobj(co, ts);
  if (lua_pcall(co, 1, 0, 1) != LUA_OK) {
    lua_pushcfunction(co, report);
    lua_insert(co, -2);
    gilua__thread_pushobj(co, ts);
    if (lua_pcall(co, 2, 0, 0) != LUA_OK)
      gilua__write_stderr(co, "gilua: could not report an error in a "
                              "thread\n");
  }
}

/* }==================================================================== */

/* {====================================================================
** Methods
** ===================================================================== */

/* thread:start() */
static int thread_start(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  if (t->ts)
    return luaL_error(L, "Thread:start: threads can only be started once");
  lua_getfield(L, 1, "name"); /* anything that may raise comes first */
  const char *name = luaL_tolstring(L, -1, NULL);
  gilua_tstate *ts = gilua__thread_new(L, name, t->daemon);
  if (ts == NULL)
    return luaL_error(L, "Thread:start: can't start new thread (no memory)");
  if (t->ts) { /* started by another thread while we allocated */
    gilua__thread_unref(ts);
    return luaL_error(L, "Thread:start: threads can only be started once");
  }
  t->ts = ts;
  int r = gilua__thread_start(L, ts, 1, name, thread_body);
  lua_pop(L, 2); /* the name was used */
  if (r != 0) {
    t->ts = NULL;
    gilua__thread_unref(ts);
    if (r == ESHUTDOWN) /* CPython's words */
      return luaL_error(L, "Thread:start: can't create new thread at "
                           "interpreter shutdown");
    return luaL_error(L, "Thread:start: can't start new thread (%s)",
                      strerror(r));
  }
  gilua__exit_sentinel(L);   /* threading.so: keep exit's wait ahead */
  gilua__check_interrupt(L); /* one that came while it started */
  return 0;
}

/* thread:run(): calls the target with its arguments */
static int thread_run(lua_State *L) {
  check_thread(L, 1);
  if (lua_getiuservalue(L, 1, UV_CALL) != LUA_TTABLE)
    return 0; /* no target: nothing to do */
  int call = lua_gettop(L);
  if (lua_rawgeti(L, call, 1) == LUA_TNIL)
    return 0; /* Thread{name = ...}: nothing to do, as in Python */
  lua_Integer n = gilua__arglen(L, call, "Thread:run: 'args'");
  luaL_checkstack(L, (int)n, "too many arguments");
  for (lua_Integer i = 2; i <= n + 1; i++)
    lua_rawgeti(L, call, i);
  lua_call(L, (int)n, 0);
  return 0;
}

/* thread:join([timeout]) -> boolean: true once the thread has ended */
static int thread_join(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  if (t->ts == NULL)
    return luaL_error(L,
                      "Thread:join: cannot join thread before it is started");
  if (t->ts == gilua__self(L))
    return luaL_error(L, "Thread:join: cannot join current thread");
  if (gilua__thread_state(t->ts) != GILUA_TS_DONE && gilua__closing(L))
    return luaL_error(L, "Thread:join: cannot join thread at interpreter "
                         "shutdown");
  static const char *const kw[] = {"timeout", NULL};
  gilua__kwargs(L, 2, kw);
  int64_t deadline = gilua__optdeadline(L, 2, 1);
  lua_pushboolean(L, gilua__thread_join(L, t->ts, deadline));
  return 1;
}

/* thread:is_alive() -> boolean */
static int thread_is_alive(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  lua_pushboolean(L, t->ts && gilua__thread_state(t->ts) == GILUA_TS_RUNNING);
  return 1;
}

/* Thread.init(self, f, ...) or Thread.init(self, {target =, args =, name =,
** daemon =}): what the constructor does with its arguments */
static int thread_init(lua_State *L) {
  check_thread(L, 1);
  int top = lua_gettop(L);
  if (top < 2)
    return 0;
  int t2 = lua_type(L, 2);
  if (t2 == LUA_TTABLE && !luaL_getmetafield(L, 2, "__call")) {
    lua_createtable(L, 0, 1); /* the call box: {target, args..., n = } */
    int call = lua_gettop(L);
    if (lua_getfield(L, 2, "target") != LUA_TNIL && !gilua__iscallable(L, -1))
      return luaL_error(L, "Thread: 'target' must be callable, got %s",
                        luaL_typename(L, -1));
    lua_rawseti(L, call, 1);
    lua_Integer n = 0;
    int at = lua_getfield(L, 2, "args");
    if (at == LUA_TTABLE) {
      n = gilua__arglen(L, -1, "Thread: 'args'");
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        lua_rawseti(L, call, i + 1);
      }
    } else if (at != LUA_TNIL) {
      return luaL_error(L, "Thread: 'args' must be a table, got %s",
                        luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_setfield(L, call, "n");
    lua_setiuservalue(L, 1, UV_CALL);
    if (lua_getfield(L, 2, "name") != LUA_TNIL) {
      luaL_tolstring(L, -1, NULL); /* Python converts names to strings */
      lua_setfield(L, 1, "name");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "daemon") != LUA_TNIL) {
      lua_setfield(L, 1, "daemon");
    } else
      lua_pop(L, 1);
    return 0;
  }
  if (t2 != LUA_TTABLE && !gilua__iscallable(L, 2))
    luaL_typeerror(L, 2, "function or table");
  lua_createtable(L, top - 1, 1); /* Thread(f, ...) */
  for (int i = 2; i <= top; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i - 1);
  }
  lua_pushinteger(L, top - 2);
  lua_setfield(L, -2, "n");
  lua_setiuservalue(L, 1, UV_CALL);
  return 0;
}

/* Class(...) -> instance: creates it and calls Class.init(self, ...) */
static int class_call(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = lua_gettop(L) - 1;
  new_instance(L, 1, NULL);
  lua_replace(L, 1); /* the class is still the instance's user value */
  lua_getiuservalue(L, 1, UV_CLASS);
  lua_getfield(L, -1, "init");
  lua_remove(L, -2);
  lua_insert(L, 2);
  lua_pushvalue(L, 1);
  lua_insert(L, 3);
  lua_call(L, n + 1, 0);
  lua_settop(L, 1);
  return 1;
}

/* Thread:extend() -> a subclass */
static int thread_extend(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, class_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "super");
  return 1;
}

/* }==================================================================== */

/* {====================================================================
** Metamethods
** ===================================================================== */

static int thread_index(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && lua_type(L, 2) == LUA_TSTRING) {
    if (strcmp(k, "daemon") == 0) {
      lua_pushboolean(L, t->daemon);
      return 1;
    }
    if (strcmp(k, "ident") == 0) {
      if (t->ts)
        lua_pushinteger(L, gilua__thread_ident(t->ts));
      else
        lua_pushnil(L);
      return 1;
    }
    if (strcmp(k, "native_id") == 0) {
      if (t->ts) /* published before start() returned */
        lua_pushinteger(L, gilua__thread_native_id(t->ts));
      else
        lua_pushnil(L);
      return 1;
    }
  }
  lua_getiuservalue(L, 1, UV_ATTRS);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL)
    return 1;
  lua_getiuservalue(L, 1, UV_CLASS);
  lua_pushvalue(L, 2);
  lua_gettable(L, -2);
  return 1;
}

static int thread_newindex(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && lua_type(L, 2) == LUA_TSTRING) {
    if (strcmp(k, "daemon") == 0) {
      if (t->ts)
        return luaL_error(
            L, "Thread.daemon: cannot set daemon status of active thread");
      t->daemon = lua_toboolean(L, 3);
      return 0;
    }
    if (strcmp(k, "ident") == 0 || strcmp(k, "native_id") == 0)
      return luaL_error(L, "Thread.%s is read-only", k);
  }
  lua_getiuservalue(L, 1, UV_ATTRS);
  lua_insert(L, 2);
  lua_rawset(L, 2);
  return 0;
}

static int thread_tostring(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  lua_getfield(L, 1, "name");
  const char *name = luaL_tolstring(L, -1, NULL);
  const char *status = "initial";
  if (t->ts)
    status =
        gilua__thread_state(t->ts) == GILUA_TS_DONE ? "stopped" : "started";
  if (t->ts) /* as CPython's repr: the ident once started */
    lua_pushfstring(L, "<Thread(%s, %s%s %I)>", name, status,
                    t->daemon ? " daemon" : "", gilua__thread_ident(t->ts));
  else
    lua_pushfstring(L, "<Thread(%s, %s%s)>", name, status,
                    t->daemon ? " daemon" : "");
  return 1;
}

/* Also when called by hand: the object is dead for good afterwards. */
static int thread_gc(lua_State *L) {
  threadobj *t = luaL_checkudata(L, 1, THREAD);
  if (!t->dead) {
    t->dead = 1;
    if (t->ts)
      gilua__thread_unref(t->ts);
    t->ts = NULL;
  }
  return 0;
}

/* }==================================================================== */

static const luaL_Reg thread_methods[] = {{"start", thread_start},
                                          {"run", thread_run},
                                          {"join", thread_join},
                                          {"is_alive", thread_is_alive},
                                          {"init", thread_init},
                                          {"extend", thread_extend},
                                          {NULL, NULL}};

static const luaL_Reg thread_meta[] = {{"__index", thread_index},
                                       {"__newindex", thread_newindex},
                                       {"__tostring", thread_tostring},
                                       {"__gc", thread_gc},
                                       {NULL, NULL}};

/* Adds the Thread class and the default excepthook to the module on top. */
void gilua__open_thread(lua_State *L) {
  luaL_newmetatable(L, THREAD);
  luaL_setfuncs(L, thread_meta, 0);
  lua_pop(L, 1);
  luaL_newlib(L, thread_methods); /* the class */
  gilua__nameclass(L, THREAD, -1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, class_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "Thread");
  lua_pushcfunction(L, thread_excepthook);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "excepthook");
  lua_setfield(L, -2, "__excepthook__");
}

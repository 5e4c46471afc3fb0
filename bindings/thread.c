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
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define THREAD "threading.Thread"
#define UV_ATTRS 1
#define UV_CLASS 2
#define UV_CALL 3

typedef struct threadobj {
  gilua_tstate *ts; /* NULL until started */
  int daemon;
} threadobj;

static threadobj *check_thread(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, THREAD);
}

/* Creates an instance of class 'cls' (at index cls) with default fields. */
static threadobj *new_instance(lua_State *L, int cls, const char *name) {
  gilua_universe *u = gilua__universe(L);
  threadobj *t = lua_newuserdatauv(L, sizeof *t, 3);
  t->ts = NULL;
  t->daemon = gilua__self(L)->daemon; /* inherited from the creator */
  luaL_setmetatable(L, THREAD);
  lua_createtable(L, 0, 2);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushfstring(L, "Thread-%I", ++u->name_seq);
  lua_setfield(L, -2, "name");
  lua_setiuservalue(L, -2, UV_ATTRS);
  lua_pushvalue(L, cls);
  lua_setiuservalue(L, -2, UV_CLASS);
  return t;
}

/* The Thread object of 'ts' (pushed), or nil if it has none. */
int gilua__push_thread(lua_State *L, gilua_tstate *ts) {
  if (ts->ref_obj == LUA_NOREF) {
    lua_pushnil(L);
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ts->ref_obj);
  return 1;
}

/* Gives 'ts' (the main thread or a host thread) a Thread object. */
void gilua__thread_main_object(lua_State *L, gilua_tstate *ts) {
  lua_getfield(L, -1, "Thread"); /* the module is on the top */
  int cls = lua_gettop(L);
  threadobj *t = new_instance(L, cls, ts->is_main ? "MainThread" : NULL);
  t->ts = ts;
  t->daemon = ts->daemon;
  atomic_fetch_add(&ts->refs, 1);
  ts->ref_obj = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
}

/* {====================================================================
** Running a thread
** ===================================================================== */

static const char TBKEY = 0; /* marks a {value, traceback} error box */

/* Message handler: boxes the error with its traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
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

/* Writes s as one piece, so that concurrent reports never interleave. */
static void write_stderr(lua_State *L, const char *s) {
  size_t len = strlen(s);
  gilua_tstate *ts = gilua__self(L);
  gilua__gil_drop(ts, GILUA_R_IO);
  fwrite(s, 1, len, stderr);
  fflush(stderr);
  gilua__gil_take(ts);
}

/* The default excepthook: threading.__excepthook__(args) */
static int thread_excepthook(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "thread");
  const char *name = "?";
  if (lua_type(L, -1) == LUA_TUSERDATA) {
    lua_getfield(L, -1, "name");
    name = luaL_tolstring(L, -1, NULL);
  }
  lua_getfield(L, 1, "traceback");
  const char *tb = lua_tostring(L, -1);
  if (tb == NULL) {
    lua_getfield(L, 1, "exc_value");
    tb = luaL_tolstring(L, -1, NULL);
  }
  lua_pushfstring(L, "Exception in thread %s:\n%s\n", name, tb);
  write_stderr(L, lua_tostring(L, -1));
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
  lua_pushvalue(L, err);
  return part == 2 ? luaL_tolstring(L, -1, NULL) : NULL;
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
    write_stderr(
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

/* The body of every OS thread started by Thread:start(). */
static void thread_body(gilua_tstate *ts) {
  gilua__gil_take(ts);
  ts->started = 1; /* start() returns once the thread has run */
  gilua__notify(&ts->joiners, -1);
  lua_State *co = ts->L;
  lua_settop(co, 0);
  lua_pushcfunction(co, msghandler);
  lua_pushcfunction(co, call_run);
  gilua__push_thread(co, ts);
  if (lua_pcall(co, 1, 0, 1) != LUA_OK) {
    lua_pushcfunction(co, report);
    lua_insert(co, -2);
    gilua__push_thread(co, ts);
    if (lua_pcall(co, 2, 0, 0) != LUA_OK)
      fputs("gilua: could not report an error in a thread\n", stderr);
  }
  ts->state = GILUA_TS_DONE;
  if (ts->st)
    ts->st->ended = 1;
  gilua__unlink(ts);
  gilua__notify(&ts->joiners, -1);
  lua_settop(co, 0);
  gilua__set_running(ts, NULL);
  /* no allocation from here on: co is about to become garbage */
  luaL_unref(co, LUA_REGISTRYINDEX, ts->ref_obj);
  luaL_unref(co, LUA_REGISTRYINDEX, ts->ref_co);
  ts->ref_obj = ts->ref_co = LUA_NOREF;
  gilua__gil_drop(ts, GILUA_R_EXIT);
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
  gilua_universe *u = gilua__universe(L);
  lua_getfield(L, 1, "name"); /* anything that may raise comes first */
  const char *name = luaL_tolstring(L, -1, NULL);
  gilua_tstate *ts = gilua__tstate_new(u);
  if (ts == NULL)
    return luaL_error(L, "Thread:start: can't start new thread (no memory)");
  ts->st = gilua__stats_new(u, name);
  lua_pop(L, 2);
  lua_State *co = lua_newthread(L);
  ts->ref_co = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 1);
  ts->ref_obj = luaL_ref(L, LUA_REGISTRYINDEX);
  ts->L = ts->running = co;
  ts->daemon = t->daemon;
  ts->body = thread_body;
  ts->state = GILUA_TS_RUNNING;
  t->ts = ts;
  gilua__link(ts);
  int r = gilua__spawn(ts);
  if (r != 0) {
    gilua__unlink(ts);
    luaL_unref(L, LUA_REGISTRYINDEX, ts->ref_obj);
    luaL_unref(L, LUA_REGISTRYINDEX, ts->ref_co);
    t->ts = NULL;
    gilua__tstate_decref(ts);
    return luaL_error(L, "Thread:start: can't start new thread (%s)",
                      strerror(-r));
  }
  gilua__exit_sentinel(L); /* threading.so: keep exit's wait ahead */
  /* As in Python, wait until the thread has started: it then runs until
  ** it blocks, and output comes in the order the tutorials show. */
  gilua_tstate *self = gilua__self(L);
  int interrupted = 0;
  while (!ts->started)
    if (gilua__wait(self, &ts->joiners, GILUA_FOREVER, GILUA_R_JOIN) == EINTR)
      interrupted = 1;
  if (interrupted) {
    atomic_store(&self->interrupt, 1);
    gilua__interrupted(L);
  }
  return 0;
}

/* thread:run(): calls the target with its arguments */
static int thread_run(lua_State *L) {
  check_thread(L, 1);
  if (lua_getiuservalue(L, 1, UV_CALL) != LUA_TTABLE)
    return 0; /* no target: nothing to do */
  int call = lua_gettop(L);
  lua_getfield(L, call, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n + 1, "too many arguments");
  for (int i = 1; i <= n + 1; i++)
    lua_rawgeti(L, call, i);
  lua_call(L, n, 0);
  return 0;
}

/* thread:join([timeout]) -> boolean: true once the thread has ended */
static int thread_join(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  if (t->ts == NULL)
    return luaL_error(L,
                      "Thread:join: cannot join thread before it is started");
  gilua_tstate *self = gilua__self(L);
  if (t->ts == self)
    return luaL_error(L, "Thread:join: cannot join current thread");
  double timeout = gilua__checktimeout(L, 2, 1, "Thread:join");
  gilua_tstate *ts = t->ts;
  int64_t deadline = gilua__deadline(timeout);
  while (ts->state != GILUA_TS_DONE) {
    int r = gilua__wait(self, &ts->joiners, deadline, GILUA_R_JOIN);
    if (r == EINTR)
      gilua__interrupted(L);
    if (r == ETIMEDOUT)
      break;
  }
  lua_pushboolean(L, ts->state == GILUA_TS_DONE);
  return 1;
}

/* thread:is_alive() -> boolean */
static int thread_is_alive(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  lua_pushboolean(L, t->ts && t->ts->state == GILUA_TS_RUNNING);
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
    if (lua_getfield(L, 2, "target") != LUA_TNIL &&
        lua_type(L, -1) != LUA_TFUNCTION && !luaL_getmetafield(L, -1, "__call"))
      return luaL_error(L, "Thread: 'target' must be callable, got %s",
                        luaL_typename(L, -1));
    lua_settop(L, call + 1);
    lua_rawseti(L, call, 1);
    lua_Integer n = 0;
    int at = lua_getfield(L, 2, "args");
    if (at == LUA_TTABLE) {
      lua_getfield(L, -1, "n");
      n = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : luaL_len(L, -2);
      lua_pop(L, 1);
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
  if (t2 != LUA_TFUNCTION && t2 != LUA_TTABLE &&
      !luaL_getmetafield(L, 2, "__call"))
    luaL_typeerror(L, 2, "function or table");
  lua_settop(L, top);
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
        lua_pushinteger(L, (lua_Integer)t->ts->thread);
      else
        lua_pushnil(L);
      return 1;
    }
    if (strcmp(k, "native_id") == 0) {
      if (t->ts) {
        long id;
        while ((id = atomic_load(&t->ts->native_id)) == 0)
          sched_yield(); /* the new thread publishes it first thing */
        lua_pushinteger(L, id);
      } else
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
    status = t->ts->state == GILUA_TS_DONE ? "stopped" : "started";
  lua_pushfstring(L, "<Thread(%s, %s%s)>", name, status,
                  t->daemon ? " daemon" : "");
  return 1;
}

static int thread_gc(lua_State *L) {
  threadobj *t = check_thread(L, 1);
  if (t->ts) {
    gilua__tstate_decref(t->ts);
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

/*
** gil.c: threading.gil, the GIL lab: statistics, traces, timelines.
**
**   threading.gil.stats() -> table        threading.gil.reset_stats()
**   threading.gil.trace_start(file)       threading.gil.trace_stop()
**   threading.gil.report() -> string      (what --gil-stats prints)
**   threading.gil.timeline(trace, svg [, title])  (renders a trace)
*/

#include <stdlib.h>
#include <string.h>

#include "bindings.h"

static void push_releases(lua_State *L, const unsigned long long *r) {
  lua_createtable(L, 0, GILUA_DROP_COUNT);
  for (int i = 0; i < GILUA_DROP_COUNT; i++) {
    lua_pushinteger(L, (lua_Integer)r[i]);
    lua_setfield(L, -2, gilua__reason_name(i));
  }
}

/* The fields a thread's record and the totals share. */
static void push_counts(lua_State *L, const gilua_statrec *r) {
  lua_pushinteger(L, (lua_Integer)r->acquisitions);
  lua_setfield(L, -2, "acquisitions");
  lua_pushinteger(L, (lua_Integer)r->releases[GILUA_DROP_SWITCH]);
  lua_setfield(L, -2, "forced_switches");
  lua_pushinteger(L, (lua_Integer)r->preemptions);
  lua_setfield(L, -2, "preemptions");
  lua_pushinteger(L, (lua_Integer)r->releases[GILUA_DROP_PREEMPT]);
  lua_setfield(L, -2, "preempted");
  push_releases(L, r->releases);
  lua_setfield(L, -2, "releases");
  lua_pushnumber(L, r->wait_ns * 1e-9);
  lua_setfield(L, -2, "wait_seconds");
  lua_pushnumber(L, r->max_wait_ns * 1e-9);
  lua_setfield(L, -2, "longest_wait_seconds");
  lua_pushnumber(L, r->held_ns * 1e-9);
  lua_setfield(L, -2, "held_seconds");
}

/* Builds the stats table from the copy in s (on the top: its box). */
static int push_stats(lua_State *L) {
  gilua_stats *s = lua_touserdata(L, 1);
  lua_createtable(L, 0, 12);
  push_counts(L, &s->total);
  lua_pushinteger(L, (lua_Integer)s->switches);
  lua_setfield(L, -2, "switches");
  lua_pushnumber(L, s->elapsed_ns * 1e-9);
  lua_setfield(L, -2, "elapsed_seconds");
  lua_pushnumber(L, s->interval);
  lua_setfield(L, -2, "interval");
  lua_pushstring(L, s->policy);
  lua_setfield(L, -2, "policy");
  lua_pushinteger(L, s->folded);
  lua_setfield(L, -2, "ended_threads_folded");
  lua_createtable(L, s->n, 0); /* threads, oldest first */
  lua_createtable(L, 0, s->n); /* by_name */
  for (int i = 0; i < s->n; i++) {
    const gilua_statrec *r = &s->recs[i];
    lua_createtable(L, 0, 10);
    lua_pushstring(L, r->name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, r->id);
    lua_setfield(L, -2, "id");
    lua_pushboolean(L, r->alive);
    lua_setfield(L, -2, "alive");
    lua_pushnumber(L, r->charge_ns * 1e-9);
    lua_setfield(L, -2, "charge_seconds");
    push_counts(L, r);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, r->name);
    lua_rawseti(L, -3, i + 1);
  }
  lua_setfield(L, -3, "by_name");
  lua_setfield(L, -2, "threads");
  return 1;
}

/* threading.gil.stats() -> {acquisitions, switches, forced_switches,
** releases = {reason = n}, wait_seconds, longest_wait_seconds,
** held_seconds, elapsed_seconds, interval, ended_threads_folded,
** threads = {...}, by_name = {...}} */
static int gil_stats(lua_State *L) {
  gilua_stats s;
  if (gilua__stats_get(L, &s) != 0)
    return gilua__nomem(L);
  /* the copy is C memory: whatever building the tables runs (a finalizer
  ** that lets go of the GIL, another thread's reset_stats) leaves it be */
  lua_pushcfunction(L, push_stats);
  lua_pushlightuserdata(L, &s);
  int status = lua_pcall(L, 1, 1, 0);
  free(s.recs);
  if (status != LUA_OK)
    return lua_error(L);
  return 1;
}

/* threading.gil.reset_stats(): zero, and forget threads that ended */
static int gil_reset_stats(lua_State *L) {
  gilua__stats_reset(L);
  return 0;
}

/* threading.gil.trace_start(file): records the GIL's hand-offs */
static int gil_trace_start(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int err = gilua__trace_start(L, path);
  if (err != 0)
    return luaL_error(L, "threading.gil.trace_start: cannot open '%s': %s",
                      path, strerror(err));
  return 0;
}

/* threading.gil.trace_stop() -> boolean: whether a trace was running */
static int gil_trace_stop(lua_State *L) {
  lua_pushboolean(L, gilua__trace_stop(L));
  return 1;
}

static const char TIMELINE = 0; /* registry: the compiled renderer */

/* The renderer is Lua (bindings/timeline.lua), compiled into the binary. */
static const char timeline_src[] = {
#include "timeline_lua.h"
    0};

/* Pushes the timeline module (a table of functions). */
static void push_timeline(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &TIMELINE) != LUA_TNIL)
    return;
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, timeline_src, sizeof timeline_src - 1,
                      "=timeline.lua") != LUA_OK)
    lua_error(L);
  lua_call(L, 0, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &TIMELINE);
}

/* Calls timeline module function 'name' with this call's arguments. */
static int call_timeline(lua_State *L, const char *name) {
  int n = lua_gettop(L);
  push_timeline(L);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* threading.gil.timeline(trace_file, svg_file [, title]): draws a trace */
static int gil_timeline(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  luaL_optstring(L, 3, NULL);
  return call_timeline(L, "render");
}

/* threading.gil.report([stats]) -> string: the stats as a table of text */
static int gil_report(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    gil_stats(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  return call_timeline(L, "report");
}

static const luaL_Reg gil_funcs[] = {{"stats", gil_stats},
                                     {"reset_stats", gil_reset_stats},
                                     {"trace_start", gil_trace_start},
                                     {"trace_stop", gil_trace_stop},
                                     {"timeline", gil_timeline},
                                     {"report", gil_report},
                                     {NULL, NULL}};

/* Adds threading.gil to the module table on the top. */
void gilua__open_gil(lua_State *L) {
  luaL_newlib(L, gil_funcs);
  gilua__nameclass(L, "threading.gil", -1); /* errors name its functions */
  lua_setfield(L, -2, "gil");
}

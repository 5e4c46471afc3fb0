/*
** gil.c: threading.gil, the GIL lab: statistics, traces, timelines.
**
**   threading.gil.stats() -> table        threading.gil.reset_stats()
**   threading.gil.trace_start(file)       threading.gil.trace_stop()
**   threading.gil.report() -> string      (what --gil-stats prints)
**   threading.gil.timeline(trace, svg [, title])  (renders a trace)
*/

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void push_releases(lua_State *L, const unsigned long long *r) {
  lua_createtable(L, 0, GILUA_R_COUNT);
  for (int i = 0; i < GILUA_R_COUNT; i++) {
    lua_pushinteger(L, (lua_Integer)r[i]);
    lua_setfield(L, -2, gilua__reason_name(i));
  }
}

static void push_record(lua_State *L, gilua_tstats *st) {
  lua_createtable(L, 0, 10);
  lua_pushstring(L, st->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, st->id);
  lua_setfield(L, -2, "id");
  lua_pushboolean(L, !st->ended);
  lua_setfield(L, -2, "alive");
  lua_pushinteger(L, (lua_Integer)st->acquisitions);
  lua_setfield(L, -2, "acquisitions");
  lua_pushinteger(L, (lua_Integer)st->releases[GILUA_R_SWITCH]);
  lua_setfield(L, -2, "forced_switches");
  push_releases(L, st->releases);
  lua_setfield(L, -2, "releases");
  lua_pushnumber(L, st->wait_ns * 1e-9);
  lua_setfield(L, -2, "wait_seconds");
  lua_pushnumber(L, st->max_wait_ns * 1e-9);
  lua_setfield(L, -2, "longest_wait_seconds");
  lua_pushnumber(L, st->held_ns * 1e-9);
  lua_setfield(L, -2, "held_seconds");
}

/* threading.gil.stats() -> {acquisitions, switches, forced_switches,
** releases = {reason = n}, wait_seconds, longest_wait_seconds,
** held_seconds, elapsed_seconds, interval, threads = {...}, by_name} */
static int gil_stats(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstate *self = gilua__self(L);
  unsigned long long acq = 0, rel[GILUA_R_COUNT] = {0};
  int64_t wait = 0, maxwait = 0, held = 0;
  int n = 0;
  /* the caller's current hold counts up to now */
  int64_t now = gilua__now();
  int64_t extra = self->st ? now - self->t_acq : 0;
  for (gilua_tstats *st = u->stats; st; st = st->next, n++) {
    acq += st->acquisitions;
    for (int i = 0; i < GILUA_R_COUNT; i++)
      rel[i] += st->releases[i];
    wait += st->wait_ns;
    held += st->held_ns + (st == self->st ? extra : 0);
    if (st->max_wait_ns > maxwait)
      maxwait = st->max_wait_ns;
  }
  lua_createtable(L, 0, 12);
  lua_pushinteger(L, (lua_Integer)acq);
  lua_setfield(L, -2, "acquisitions");
  lua_pushinteger(L, (lua_Integer)u->gil.switches);
  lua_setfield(L, -2, "switches");
  lua_pushinteger(L, (lua_Integer)rel[GILUA_R_SWITCH]);
  lua_setfield(L, -2, "forced_switches");
  push_releases(L, rel);
  lua_setfield(L, -2, "releases");
  lua_pushnumber(L, wait * 1e-9);
  lua_setfield(L, -2, "wait_seconds");
  lua_pushnumber(L, maxwait * 1e-9);
  lua_setfield(L, -2, "longest_wait_seconds");
  lua_pushnumber(L, held * 1e-9);
  lua_setfield(L, -2, "held_seconds");
  lua_pushnumber(L, (now - u->stats_since) * 1e-9);
  lua_setfield(L, -2, "elapsed_seconds");
  lua_pushnumber(L, u->interval);
  lua_setfield(L, -2, "interval");
  lua_createtable(L, n, 0); /* threads, oldest first */
  lua_createtable(L, 0, n); /* by_name */
  int i = n;
  for (gilua_tstats *st = u->stats; st; st = st->next, i--) {
    push_record(L, st);
    if (st == self->st) {
      lua_pushnumber(L, (st->held_ns + extra) * 1e-9);
      lua_setfield(L, -2, "held_seconds");
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, st->name);
    lua_rawseti(L, -3, i);
  }
  lua_setfield(L, -3, "by_name");
  lua_setfield(L, -2, "threads");
  return 1;
}

/* threading.gil.reset_stats(): zero, and forget threads that ended */
static int gil_reset_stats(lua_State *L) {
  gilua_universe *u = gilua__universe(L);
  gilua_tstats **p = &u->stats;
  while (*p) {
    gilua_tstats *st = *p;
    if (st->ended) {
      *p = st->next;
      free(st);
      continue;
    }
    st->acquisitions = 0;
    memset(st->releases, 0, sizeof st->releases);
    st->wait_ns = st->max_wait_ns = st->held_ns = 0;
    p = &st->next;
  }
  gilua_tstate *self = gilua__self(L);
  u->stats_since = self->t_acq = gilua__now();
  return 0;
}

/* threading.gil.trace_start(file): records the GIL's hand-offs */
static int gil_trace_start(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int err = gilua__trace_start(gilua__universe(L), path);
  if (err != 0)
    return luaL_error(L, "threading.gil.trace_start: cannot open '%s': %s",
                      path, strerror(err));
  return 0;
}

/* threading.gil.trace_stop() -> boolean: whether a trace was running */
static int gil_trace_stop(lua_State *L) {
  lua_pushboolean(L, gilua__trace_stop(gilua__universe(L)));
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
  lua_setfield(L, -2, "gil");
}

/*
** event.c: threading.Event.  A flag guarded by the GIL and a wait queue;
** set() wakes every waiter, and a woken waiter returns true even if the
** flag was cleared again before it ran (as CPython, issue 13502).
*/

#include "bindings.h"

#define EVENT "threading.Event"

typedef struct eventobj {
  int flag;
  gilua_waitq waiters;
} eventobj;

static eventobj *check_event(lua_State *L) {
  return luaL_checkudata(L, 1, EVENT);
}

/* threading.Event() -> event */
int gilua__event_new(lua_State *L) {
  eventobj *e = lua_newuserdatauv(L, sizeof *e, 0);
  e->flag = 0;
  e->waiters.head = e->waiters.tail = NULL;
  luaL_setmetatable(L, EVENT);
  return 1;
}

/* event:set() */
static int event_set(lua_State *L) {
  eventobj *e = check_event(L);
  e->flag = 1;
  gilua__notify(&e->waiters, -1);
  return 0;
}

/* event:clear() */
static int event_clear(lua_State *L) {
  check_event(L)->flag = 0;
  return 0;
}

/* event:is_set() -> boolean */
static int event_is_set(lua_State *L) {
  lua_pushboolean(L, check_event(L)->flag);
  return 1;
}

/* event:wait([timeout]) -> boolean: the flag, true if set() woke us */
static int event_wait(lua_State *L) {
  eventobj *e = check_event(L);
  static const char *const kw[] = {"timeout", NULL};
  gilua__kwargs(L, 2, kw);
  int64_t deadline = gilua__optdeadline(L, 2, 1);
  int result = e->flag;
  if (!result) {
    int r = gilua__wait(L, &e->waiters, deadline, GILUA_DROP_WAIT, GILUA_RAISE);
    result = (r == 0) || e->flag;
  }
  lua_pushboolean(L, result);
  return 1;
}

static int event_tostring(lua_State *L) {
  eventobj *e = check_event(L);
  lua_pushfstring(L, EVENT " (%s): %p", e->flag ? "set" : "unset", e);
  return 1;
}

static const luaL_Reg event_methods[] = {{"set", event_set},
                                         {"clear", event_clear},
                                         {"is_set", event_is_set},
                                         {"wait", event_wait},
                                         {NULL, NULL}};

static const luaL_Reg event_meta[] = {{"__tostring", event_tostring},
                                      {NULL, NULL}};

/* Adds Event to the module table on the top. */
void gilua__open_event(lua_State *L) {
  gilua__newclass(L, EVENT, event_methods, event_meta);
  lua_pushcfunction(L, gilua__event_new);
  lua_setfield(L, -2, "Event");
}

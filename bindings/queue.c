/*
** queue.c: the queue module: Queue, LifoQueue, PriorityQueue, SimpleQueue.
**
** Items live in a Lua table (user value 1) used as a ring (FIFO, the
** shared gilua_ring), a stack (LIFO) or a binary heap (priority); the
** counters beside it are guarded by the GIL, and three wait queues stand
** for Python's three conditions (not_empty, not_full, all_tasks_done).
** nil is an item like any other: the count, not the table, says how many
** there are.
**
** Any allocation may run a finalizer that lets go of the GIL, so the
** table never grows while the queue is half-updated: room is made first
** (a bigger table, copied without allocating), then the item is stored
** in a slot that exists.
**
** Priority order is Python's: numbers and strings with '<', tables with
** an __lt metamethod by it, other tables (arrays such as {priority,
** data}) element by element, the shorter first when one is a prefix of
** the other; anything else raises "'<' not supported".  A comparison may
** run Lua code (an __lt), and so a thread switch: while a priority queue
** compares, it is 'busy' and other threads wait to change it.  A put or a
** get first finds where things go by comparing only, then moves them
** without calling Lua, so a comparison that raises changes nothing.
*/

#include <string.h>

#include "bindings.h"

#define QUEUE "queue.Queue"
#define SIMPLE "queue.SimpleQueue"

enum { FIFO, LIFO, PRIO };
enum { ALIVE, SHUTDOWN, IMMEDIATE };

typedef struct queueobj {
  int kind;
  int simple;             /* a SimpleQueue: no maxsize, no task tracking */
  int state;              /* ALIVE, SHUTDOWN, IMMEDIATE */
  int busy;               /* a priority queue comparing (it may switch) */
  lua_Integer maxsize;    /* <= 0: unbounded */
  lua_Integer count;      /* items in the queue */
  lua_Integer cap;        /* LIFO, PRIO: slots in the table */
  gilua_ring ring;        /* FIFO */
  lua_Integer unfinished; /* put() minus task_done() */
  gilua_waitq not_empty, not_full, all_done, idle;
} queueobj;

static const char EMPTY = 0, FULL = 0, SHUTDOWN_KEY = 0;

static int raise_empty(lua_State *L) {
  return gilua__raise(L, &EMPTY, "queue.Empty");
}
static int raise_full(lua_State *L) {
  return gilua__raise(L, &FULL, "queue.Full");
}
static int raise_shutdown(lua_State *L) {
  return gilua__raise(L, &SHUTDOWN_KEY, "queue.ShutDown");
}

static queueobj *check_queue(lua_State *L) {
  queueobj *q = luaL_testudata(L, 1, QUEUE);
  return q ? q : luaL_checkudata(L, 1, SIMPLE);
}

static const char *qname(queueobj *q) {
  static const char *const kinds[] = {"Queue", "LifoQueue", "PriorityQueue"};
  return q->simple ? "SimpleQueue" : kinds[q->kind];
}

static int newqueue(lua_State *L, int kind, int simple) {
  static const char *const kw[] = {"maxsize", NULL};
  gilua__kwargs(L, 1, kw);
  lua_Integer maxsize = simple ? 0 : luaL_optinteger(L, 1, 0);
  queueobj *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  q->kind = kind;
  q->simple = simple;
  q->maxsize = maxsize;
  if (kind == FIFO) {
    gilua__ring_init(L, &q->ring, -1, 1);
  } else {
    q->cap = 16;
    lua_createtable(L, 16, 0);
    lua_setiuservalue(L, -2, 1);
  }
  luaL_setmetatable(L, simple ? SIMPLE : QUEUE);
  return 1;
}

/* queue.Queue([maxsize]), LifoQueue, PriorityQueue, SimpleQueue() */
static int queue_new(lua_State *L) { return newqueue(L, FIFO, 0); }
static int lifo_new(lua_State *L) { return newqueue(L, LIFO, 0); }
static int prio_new(lua_State *L) { return newqueue(L, PRIO, 0); }
static int simple_new(lua_State *L) { return newqueue(L, FIFO, 1); }

/* {====================================================================
** Storage: LIFO and PRIO keep items at [1, count] of the table at 'items'
** ===================================================================== */

/* Makes room for one more item in the table (user value 1 of the queue
** at index 1), then pushes the table. */
static void reserve(lua_State *L, queueobj *q) {
  while (q->count >= q->cap) {
    lua_Integer ncap = q->cap * 2;
    if (ncap > INT32_MAX)
      luaL_error(L, "%s:put: queue too large", qname(q));
    lua_createtable(L, (int)ncap, 0); /* may run a finalizer */
    if (q->count < q->cap || q->cap * 2 != ncap) {
      lua_pop(L, 1); /* the queue changed meanwhile: look again */
      continue;
    }
    lua_getiuservalue(L, 1, 1);
    for (lua_Integer k = 1; k <= q->count; k++) {
      lua_rawgeti(L, -1, k);
      lua_rawseti(L, -3, k);
    }
    lua_pop(L, 1);
    lua_setiuservalue(L, 1, 1);
    q->cap = ncap;
  }
  lua_getiuservalue(L, 1, 1);
}

/* Python's '<' for priority queues: is the value at a less than at b? */
static int pyless(lua_State *L, int a, int b, int depth) {
  int top = lua_gettop(L);
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  int ta = lua_type(L, a), tb = lua_type(L, b);
  if (ta == LUA_TTABLE && tb == LUA_TTABLE &&
      luaL_getmetafield(L, a, "__lt") == LUA_TNIL &&
      luaL_getmetafield(L, b, "__lt") == LUA_TNIL) {
    if (depth > 100)
      luaL_error(L, "PriorityQueue: items nest too deeply to compare");
    for (lua_Integer i = 1;; i++) {
      int ea = lua_geti(L, a, i), eb = lua_geti(L, b, i);
      if (ea == LUA_TNIL || eb == LUA_TNIL) {
        lua_pop(L, 2);
        return ea == LUA_TNIL && eb != LUA_TNIL; /* a prefix of b */
      }
      if (!lua_compare(L, -2, -1, LUA_OPEQ)) {
        int r = pyless(L, -2, -1, depth + 1);
        lua_pop(L, 2);
        return r;
      }
      lua_pop(L, 2);
    }
  }
  lua_settop(L, top); /* any __lt found above */
  int comparable = (ta == tb && (ta == LUA_TNUMBER || ta == LUA_TSTRING)) ||
                   ((ta == LUA_TTABLE || ta == LUA_TUSERDATA) &&
                    luaL_getmetafield(L, a, "__lt") != LUA_TNIL) ||
                   ((tb == LUA_TTABLE || tb == LUA_TUSERDATA) &&
                    luaL_getmetafield(L, b, "__lt") != LUA_TNIL);
  if (!comparable)
    luaL_error(L,
               "PriorityQueue: '<' not supported between instances of '%s' "
               "and '%s'",
               luaL_typename(L, a), luaL_typename(L, b));
  lua_settop(L, top);
  return lua_compare(L, a, b, LUA_OPLT);
}

static int less_at(lua_State *L, int items, lua_Integer i, lua_Integer j) {
  lua_rawgeti(L, items, i);
  lua_rawgeti(L, items, j);
  int r = pyless(L, -2, -1, 0);
  lua_pop(L, 2);
  return r;
}

/* The comparisons of a heap operation, under lua_pcall: (items, count,
** op) -> the new item's place (op "put": the item is at count + 1), or
** the path of the last item down from the root (op "get", written into
** the array of upvalue 1's light userdata; returns its length). */
static int plan(lua_State *L) {
  int items = 1;
  lua_Integer n = lua_tointeger(L, 2);
  lua_Integer *path = lua_touserdata(L, 4);
  if (*lua_tostring(L, 3) == 'p') {
    lua_Integer i = n + 1;
    while (i > 1 && less_at(L, items, n + 1, i / 2))
      i /= 2;
    lua_pushinteger(L, i);
    return 1;
  }
  /* get: the last item (at n) sifts down a heap of n - 1 items */
  lua_Integer i = 1, len = 0;
  for (;;) {
    lua_Integer l = 2 * i, r = l + 1, m;
    if (l > n - 1)
      break;
    m = (r <= n - 1 && less_at(L, items, r, l)) ? r : l;
    if (!less_at(L, items, m, n))
      break;
    path[len++] = m;
    i = m;
  }
  lua_pushinteger(L, len);
  return 1;
}

/* Runs plan() with the queue busy; raises its error, if any. */
static lua_Integer run_plan(lua_State *L, queueobj *q, int items,
                            const char *op, lua_Integer *path) {
  q->busy = 1;
  lua_pushcfunction(L, plan);
  lua_pushvalue(L, items);
  lua_pushinteger(L, q->count);
  lua_pushstring(L, op);
  lua_pushlightuserdata(L, path);
  int status = lua_pcall(L, 4, 1, 0);
  q->busy = 0;
  gilua__notify(&q->idle, -1);
  if (status != LUA_OK)
    return -1; /* the error is on the top */
  lua_Integer r = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return r;
}

/* Adds the value at 'v'; 0, or -1 with an error on the top (nothing
** changed). */
static int push_item(lua_State *L, queueobj *q, int v) {
  if (q->kind == FIFO) {
    lua_pushvalue(L, v);
    gilua__ring_push(L, &q->ring, 1, 1);
    q->count++;
    return 0;
  }
  reserve(L, q);
  int items = lua_gettop(L);
  lua_Integer n = q->count;
  lua_pushvalue(L, v);
  lua_rawseti(L, items, n + 1);
  if (q->kind == LIFO) {
    q->count++;
    lua_pop(L, 1);
    return 0;
  }
  lua_Integer at = run_plan(L, q, items, "put", NULL);
  if (at < 0) {
    lua_pushnil(L);
    lua_rawseti(L, items, n + 1); /* take it back out */
    return -1;
  }
  for (lua_Integer j = n + 1; j > at; j /= 2) { /* no Lua code from here */
    lua_rawgeti(L, items, j / 2);
    lua_rawseti(L, items, j);
  }
  lua_pushvalue(L, v);
  lua_rawseti(L, items, at);
  q->count++;
  lua_pop(L, 1);
  return 0;
}

/* Removes the next item and pushes it; 0, or -1 with an error on the top
** (nothing changed). */
static int pop_item(lua_State *L, queueobj *q) {
  if (q->kind == FIFO) {
    gilua__ring_pop(L, &q->ring, 1, 1);
    q->count--;
    return 0;
  }
  lua_getiuservalue(L, 1, 1);
  int items = lua_gettop(L);
  lua_Integer n = q->count;
  if (q->kind == LIFO) {
    lua_rawgeti(L, items, n);
    lua_pushnil(L);
    lua_rawseti(L, items, n);
    q->count--;
    lua_remove(L, items);
    return 0;
  }
  lua_Integer path[64];
  lua_Integer len = run_plan(L, q, items, "get", path);
  if (len < 0) {
    lua_remove(L, items);
    return -1;
  }
  lua_rawgeti(L, items, 1); /* the result */
  lua_Integer cur = 1;      /* no Lua code from here */
  for (lua_Integer k = 0; k < len; k++) {
    lua_rawgeti(L, items, path[k]);
    lua_rawseti(L, items, cur);
    cur = path[k];
  }
  if (cur != n) {
    lua_rawgeti(L, items, n);
    lua_rawseti(L, items, cur);
  }
  lua_pushnil(L);
  lua_rawseti(L, items, n);
  q->count--;
  lua_remove(L, items);
  return 0;
}

/* }==================================================================== */

static int has_room(void *ud) {
  queueobj *q = ud;
  return q->state != ALIVE || q->maxsize <= 0 || q->count < q->maxsize;
}

static int has_item(void *ud) {
  queueobj *q = ud;
  return q->state != ALIVE || q->count > 0;
}

static int not_busy(void *ud) { return !((queueobj *)ud)->busy; }

/* Waits until no comparison runs. */
static void wait_idle(lua_State *L, queueobj *q, int64_t deadline) {
  gilua__wait_for(L, &q->idle, deadline, GILUA_DROP_WAIT, GILUA_RAISE, not_busy,
                  q);
}

/* Reads Python's (block, timeout) at 'arg' and 'arg' + 1, or a table
** {block =, timeout =} at 'arg'; returns the deadline. */
static int64_t block_args(lua_State *L, int arg, int *block) {
  static const char *const kw[] = {"block", "timeout", NULL};
  gilua__kwargs(L, arg, kw);
  *block = gilua__optboolean(L, arg, 1);
  return gilua__optdeadline(L, arg + 1, *block);
}

/* Puts the value at index 2. */
static int do_put(lua_State *L, queueobj *q, int block, int64_t deadline) {
  for (;;) {
    if (q->state != ALIVE)
      return raise_shutdown(L);
    if (!has_room(q)) {
      if (!block || gilua__wait_for(L, &q->not_full, deadline, GILUA_DROP_WAIT,
                                    GILUA_RAISE, has_room, q) != 0)
        return raise_full(L);
      continue;
    }
    if (q->busy) { /* a comparison runs: brief, whatever the timeout */
      wait_idle(L, q, GILUA_FOREVER);
      continue;
    }
    break;
  }
  if (push_item(L, q, 2) != 0)
    return lua_error(L);
  q->unfinished++;
  gilua__notify(&q->not_empty, 1);
  return 0;
}

static int do_get(lua_State *L, queueobj *q, int block, int64_t deadline) {
  for (;;) {
    if (q->count == 0) {
      if (q->state != ALIVE)
        return raise_shutdown(L);
      if (!block || gilua__wait_for(L, &q->not_empty, deadline, GILUA_DROP_WAIT,
                                    GILUA_RAISE, has_item, q) != 0)
        return raise_empty(L);
      continue;
    }
    if (q->busy) { /* a comparison runs: brief, whatever the timeout */
      wait_idle(L, q, GILUA_FOREVER);
      continue;
    }
    break;
  }
  if (pop_item(L, q) != 0)
    return lua_error(L);
  if (q->maxsize > 0)
    gilua__notify(&q->not_full, 1);
  return 1;
}

/* q:put(item [, block [, timeout]]); raises queue.Full, queue.ShutDown */
static int queue_put(lua_State *L) {
  queueobj *q = check_queue(L);
  luaL_checkany(L, 2); /* nil is an item, but it must be given */
  int block;
  int64_t deadline = block_args(L, 3, &block);
  lua_settop(L, 2);
  return do_put(L, q, block, deadline);
}

/* q:get([block [, timeout]]) -> item; raises queue.Empty, queue.ShutDown */
static int queue_get(lua_State *L) {
  queueobj *q = check_queue(L);
  int block;
  int64_t deadline = block_args(L, 2, &block);
  lua_settop(L, 1);
  return do_get(L, q, block, deadline);
}

/* q:put_nowait(item) */
static int queue_put_nowait(lua_State *L) {
  queueobj *q = check_queue(L);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  return do_put(L, q, 0, 0);
}

/* q:get_nowait() -> item */
static int queue_get_nowait(lua_State *L) {
  queueobj *q = check_queue(L);
  lua_settop(L, 1);
  return do_get(L, q, 0, 0);
}

/* q:task_done() */
static int queue_task_done(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  if (q->unfinished <= 0)
    return luaL_error(L, "%s:task_done: task_done() called too many times",
                      qname(q));
  if (--q->unfinished == 0)
    gilua__notify(&q->all_done, -1);
  return 0;
}

static int all_done(void *ud) { return ((queueobj *)ud)->unfinished <= 0; }

/* q:join(): until every item put has been task_done() */
static int queue_join(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  gilua__wait_for(L, &q->all_done, GILUA_FOREVER, GILUA_DROP_WAIT, GILUA_RAISE,
                  all_done, q);
  return 0;
}

/* q:qsize(), q:empty(), q:full() */
static int queue_qsize(lua_State *L) {
  lua_pushinteger(L, check_queue(L)->count);
  return 1;
}

static int queue_empty(lua_State *L) {
  lua_pushboolean(L, check_queue(L)->count == 0);
  return 1;
}

static int queue_full(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  lua_pushboolean(L, q->maxsize > 0 && q->count >= q->maxsize);
  return 1;
}

/* q:shutdown([immediate = false]) */
static int queue_shutdown(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  static const char *const kw[] = {"immediate", NULL};
  gilua__kwargs(L, 2, kw);
  int immediate = lua_toboolean(L, 2);
  lua_settop(L, 1);
  if (q->state == ALIVE)
    q->state = SHUTDOWN;
  if (immediate) {
    wait_idle(L, q, GILUA_FOREVER);
    q->state = IMMEDIATE;
    lua_Integer n = q->count;
    if (q->kind == FIFO) /* no comparison needed to drop everything */
      gilua__ring_init(L, &q->ring, 1, 1);
    else {
      lua_createtable(L, (int)q->cap, 0);
      lua_setiuservalue(L, 1, 1);
    }
    q->count = 0;
    q->unfinished = n > q->unfinished ? 0 : q->unfinished - n;
    if (q->unfinished == 0)
      gilua__notify(&q->all_done, -1);
  }
  gilua__notify(&q->not_empty, -1);
  gilua__notify(&q->not_full, -1);
  return 0;
}

/* q.maxsize (settable), q.is_shutdown, q.unfinished_tasks; methods */
static int queue_index(lua_State *L) {
  queueobj *q = check_queue(L);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1; /* a method: the common case */
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "maxsize") == 0 && !q->simple)
    lua_pushinteger(L, q->maxsize);
  else if (k && strcmp(k, "is_shutdown") == 0 && !q->simple)
    lua_pushboolean(L, q->state != ALIVE);
  else if (k && strcmp(k, "unfinished_tasks") == 0 && !q->simple)
    lua_pushinteger(L, q->unfinished);
  else
    lua_pushnil(L);
  return 1;
}

static int queue_newindex(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  const char *k = lua_tostring(L, 2);
  if (k == NULL || strcmp(k, "maxsize") != 0)
    return luaL_error(L, "%s: cannot set field '%s'", qname(q), k ? k : "?");
  q->maxsize = luaL_checkinteger(L, 3);
  gilua__notify(&q->not_full, -1); /* it may have grown */
  return 0;
}

static int queue_tostring(lua_State *L) {
  queueobj *q = check_queue(L);
  lua_pushfstring(L, "queue.%s (%I items%s): %p", qname(q), q->count,
                  q->state != ALIVE ? ", shut down" : "", q);
  return 1;
}

static const luaL_Reg queue_methods[] = {{"put", queue_put},
                                         {"get", queue_get},
                                         {"put_nowait", queue_put_nowait},
                                         {"get_nowait", queue_get_nowait},
                                         {"task_done", queue_task_done},
                                         {"join", queue_join},
                                         {"qsize", queue_qsize},
                                         {"empty", queue_empty},
                                         {"full", queue_full},
                                         {"shutdown", queue_shutdown},
                                         {NULL, NULL}};

static const luaL_Reg simple_methods[] = {{"put", queue_put},
                                          {"get", queue_get},
                                          {"put_nowait", queue_put_nowait},
                                          {"get_nowait", queue_get_nowait},
                                          {"qsize", queue_qsize},
                                          {"empty", queue_empty},
                                          {NULL, NULL}};

static const luaL_Reg queue_meta[] = {{"__index", queue_index},
                                      {"__newindex", queue_newindex},
                                      {"__tostring", queue_tostring},
                                      {NULL, NULL}};

static const luaL_Reg queue_funcs[] = {{"Queue", queue_new},
                                       {"LifoQueue", lifo_new},
                                       {"PriorityQueue", prio_new},
                                       {"SimpleQueue", simple_new},
                                       {NULL, NULL}};

int gilua__open_queue(lua_State *L) {
  gilua__newclass(L, QUEUE, queue_methods, queue_meta);
  gilua__newclass(L, SIMPLE, simple_methods, queue_meta);
  luaL_newlib(L, queue_funcs);
  gilua__errvalue(L, &EMPTY, "queue.Empty");
  lua_setfield(L, -2, "Empty");
  gilua__errvalue(L, &FULL, "queue.Full");
  lua_setfield(L, -2, "Full");
  gilua__errvalue(L, &SHUTDOWN_KEY, "queue.ShutDown");
  lua_setfield(L, -2, "ShutDown");
  return 1;
}

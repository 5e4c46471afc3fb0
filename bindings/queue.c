/*
** queue.c: the queue module: Queue, LifoQueue, PriorityQueue, SimpleQueue.
**
** Items live in a Lua table (user value 1) used as a ring buffer (FIFO),
** a stack (LIFO) or a binary heap (priority); the counters beside it are
** guarded by the GIL, and three wait queues stand for Python's three
** conditions (not_empty, not_full, all_tasks_done).  nil is an item like
** any other: the count, not the table, says how many there are.
**
** Priority order is Python's: numbers and strings with '<', tables with
** an __lt metamethod by it, other tables (arrays such as {priority,
** data}) element by element, the shorter first when one is a prefix of
** the other.
*/

#include <errno.h>
#include <string.h>

#include "internal.h"

#define QUEUE "queue.Queue"
#define SIMPLE "queue.SimpleQueue"

enum { FIFO, LIFO, PRIO };
enum { ALIVE, SHUTDOWN, IMMEDIATE };

typedef struct queueobj {
  int kind;
  int simple;             /* a SimpleQueue: no maxsize, no task tracking */
  int state;              /* ALIVE, SHUTDOWN, IMMEDIATE */
  lua_Integer maxsize;    /* <= 0: unbounded */
  lua_Integer count;      /* items in the queue */
  lua_Integer cap;        /* slots in the table (FIFO ring) */
  lua_Integer head;       /* FIFO: slot of the oldest item, 0-based */
  lua_Integer unfinished; /* put() minus task_done() */
  gilua_waitq not_empty, not_full, all_done;
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

static queueobj *newqueue(lua_State *L, int kind, int simple) {
  lua_Integer maxsize = simple ? 0 : luaL_optinteger(L, 1, 0);
  queueobj *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  q->kind = kind;
  q->simple = simple;
  q->maxsize = maxsize;
  q->cap = 16;
  lua_createtable(L, 16, 0);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, simple ? SIMPLE : QUEUE);
  return q;
}

/* queue.Queue([maxsize]), LifoQueue, PriorityQueue, SimpleQueue() */
static int queue_new(lua_State *L) {
  newqueue(L, FIFO, 0);
  return 1;
}
static int lifo_new(lua_State *L) {
  newqueue(L, LIFO, 0);
  return 1;
}
static int prio_new(lua_State *L) {
  newqueue(L, PRIO, 0);
  return 1;
}
static int simple_new(lua_State *L) {
  newqueue(L, FIFO, 1);
  return 1;
}

/* {====================================================================
** Storage: the items table is at index 'items' on the stack
** ===================================================================== */

/* Python's '<' for priority queues: is the value at a less than at b? */
static int pyless(lua_State *L, int a, int b, int depth) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  int ta = lua_type(L, a), tb = lua_type(L, b);
  if (ta == LUA_TTABLE && tb == LUA_TTABLE &&
      !luaL_getmetafield(L, a, "__lt")) {
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
  if (ta == LUA_TTABLE)
    lua_pop(L, 1); /* the __lt found */
  if (ta != tb && !(ta == LUA_TTABLE || tb == LUA_TTABLE ||
                    ta == LUA_TUSERDATA || tb == LUA_TUSERDATA))
    luaL_error(L, "PriorityQueue: '<' not supported between %s and %s",
               luaL_typename(L, a), luaL_typename(L, b));
  return lua_compare(L, a, b, LUA_OPLT);
}

/* heap[i] < heap[j]? */
static int heapless(lua_State *L, int items, lua_Integer i, lua_Integer j) {
  lua_rawgeti(L, items, i);
  lua_rawgeti(L, items, j);
  int r = pyless(L, -2, -1, 0);
  lua_pop(L, 2);
  return r;
}

static void heapswap(lua_State *L, int items, lua_Integer i, lua_Integer j) {
  lua_rawgeti(L, items, i);
  lua_rawgeti(L, items, j);
  lua_rawseti(L, items, i);
  lua_rawseti(L, items, j);
}

/* Grows the FIFO ring, keeping the order. */
static void grow(lua_State *L, queueobj *q, int items) {
  lua_Integer ncap = q->cap * 2;
  lua_createtable(L, (int)(ncap > INT32_MAX ? INT32_MAX : ncap), 0);
  for (lua_Integer k = 0; k < q->count; k++) {
    lua_rawgeti(L, items, (q->head + k) % q->cap + 1);
    lua_rawseti(L, -2, k + 1);
  }
  lua_copy(L, -1, items);
  lua_pop(L, 1);
  lua_pushvalue(L, items);
  lua_setiuservalue(L, 1, 1);
  q->head = 0;
  q->cap = ncap;
}

/* Adds the value on the top (popped). */
static void push_item(lua_State *L, queueobj *q, int items) {
  switch (q->kind) {
  case FIFO:
    if (q->count == q->cap) {
      grow(L, q, items);
    }
    lua_rawseti(L, items, (q->head + q->count) % q->cap + 1);
    q->count++;
    break;
  case LIFO:
    lua_rawseti(L, items, ++q->count);
    break;
  default: { /* sift up */
    lua_Integer i = ++q->count;
    lua_rawseti(L, items, i);
    while (i > 1 && heapless(L, items, i, i / 2)) {
      heapswap(L, items, i, i / 2);
      i /= 2;
    }
  }
  }
}

/* Removes the next item and pushes it. */
static void pop_item(lua_State *L, queueobj *q, int items) {
  switch (q->kind) {
  case FIFO:
    lua_rawgeti(L, items, q->head + 1);
    lua_pushnil(L);
    lua_rawseti(L, items, q->head + 1);
    q->head = (q->head + 1) % q->cap;
    q->count--;
    break;
  case LIFO:
    lua_rawgeti(L, items, q->count);
    lua_pushnil(L);
    lua_rawseti(L, items, q->count--);
    break;
  default: { /* the root; the last leaf goes to the root, sift down */
    lua_rawgeti(L, items, 1);
    lua_Integer n = q->count--;
    lua_rawgeti(L, items, n);
    lua_rawseti(L, items, 1);
    lua_pushnil(L);
    lua_rawseti(L, items, n);
    lua_Integer i = 1;
    for (;;) {
      lua_Integer l = 2 * i, r = l + 1, m = i;
      if (l <= q->count && heapless(L, items, l, m))
        m = l;
      if (r <= q->count && heapless(L, items, r, m))
        m = r;
      if (m == i)
        break;
      heapswap(L, items, i, m);
      i = m;
    }
  }
  }
}

/* }==================================================================== */

/* Reads (block, timeout) at 'arg', 'arg'+1: Python's put/get arguments. */
static int64_t block_args(lua_State *L, int arg, int *block,
                          const char *fname) {
  *block = 1;
  if (!lua_isnoneornil(L, arg)) {
    luaL_checktype(L, arg, LUA_TBOOLEAN);
    *block = lua_toboolean(L, arg);
  }
  if (lua_isnoneornil(L, arg + 1))
    return GILUA_FOREVER;
  lua_Number t = luaL_checknumber(L, arg + 1);
  if (!(t >= 0))
    luaL_error(L, "%s: 'timeout' must be a non-negative number", fname);
  return gilua__deadline(t > GILUA_TIMEOUT_MAX ? -1 : t);
}

/* Waits on wq until woken or 'deadline'; raises on an interrupt; returns
** 0 when the deadline passed. */
static int wait_on(lua_State *L, gilua_waitq *wq, int64_t deadline) {
  int r = gilua__wait(gilua__self(L), wq, deadline, GILUA_R_WAIT);
  if (r == EINTR)
    gilua__interrupted(L);
  return r != ETIMEDOUT;
}

static int do_put(lua_State *L, queueobj *q, int block, int64_t deadline) {
  if (q->state != ALIVE)
    return raise_shutdown(L);
  while (q->maxsize > 0 && q->count >= q->maxsize) {
    if (!block || !wait_on(L, &q->not_full, deadline)) {
      if (q->state != ALIVE)
        return raise_shutdown(L);
      if (q->maxsize > 0 && q->count >= q->maxsize)
        return raise_full(L);
    }
    if (q->state != ALIVE)
      return raise_shutdown(L);
  }
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  push_item(L, q, lua_gettop(L) - 1);
  q->unfinished++;
  gilua__notify(&q->not_empty, 1);
  return 0;
}

static int do_get(lua_State *L, queueobj *q, int block, int64_t deadline) {
  while (q->count == 0) {
    if (q->state != ALIVE)
      return raise_shutdown(L);
    if (!block || !wait_on(L, &q->not_empty, deadline)) {
      if (q->count > 0)
        break;
      if (q->state != ALIVE)
        return raise_shutdown(L);
      return raise_empty(L);
    }
  }
  lua_getiuservalue(L, 1, 1);
  pop_item(L, q, lua_gettop(L));
  if (q->maxsize > 0)
    gilua__notify(&q->not_full, 1);
  return 1;
}

/* q:put(item [, block [, timeout]]); raises queue.Full, queue.ShutDown */
static int queue_put(lua_State *L) {
  queueobj *q = check_queue(L);
  luaL_checkany(L, 2); /* nil is an item, but it must be given */
  int block;
  int64_t deadline = block_args(L, 3, &block, "Queue:put");
  lua_settop(L, 2);
  return do_put(L, q, block, deadline);
}

/* q:get([block [, timeout]]) -> item; raises queue.Empty, queue.ShutDown */
static int queue_get(lua_State *L) {
  queueobj *q = check_queue(L);
  int block;
  int64_t deadline = block_args(L, 2, &block, "Queue:get");
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
    return luaL_error(L, "Queue:task_done: task_done() called too many times");
  if (--q->unfinished == 0)
    gilua__notify(&q->all_done, -1);
  return 0;
}

/* q:join(): until every item put has been task_done() */
static int queue_join(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  while (q->unfinished > 0)
    wait_on(L, &q->all_done, GILUA_FOREVER);
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
  int immediate = lua_toboolean(L, 2);
  if (q->state == ALIVE)
    q->state = SHUTDOWN;
  if (immediate) {
    q->state = IMMEDIATE;
    lua_getiuservalue(L, 1, 1);
    int items = lua_gettop(L);
    while (q->count > 0) {
      pop_item(L, q, items);
      lua_pop(L, 1);
      if (q->unfinished > 0)
        q->unfinished--;
    }
    if (q->unfinished == 0)
      gilua__notify(&q->all_done, -1);
  }
  gilua__notify(&q->not_empty, -1);
  gilua__notify(&q->not_full, -1);
  return 0;
}

/* q.maxsize (settable), q.is_shutdown; methods */
static int queue_index(lua_State *L) {
  queueobj *q = check_queue(L);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "maxsize") == 0 && !q->simple)
    lua_pushinteger(L, q->maxsize);
  else if (k && strcmp(k, "is_shutdown") == 0 && !q->simple)
    lua_pushboolean(L, q->state != ALIVE);
  else {
    luaL_getmetafield(L, 1, "methods");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
  }
  return 1;
}

static int queue_newindex(lua_State *L) {
  queueobj *q = luaL_checkudata(L, 1, QUEUE);
  const char *k = lua_tostring(L, 2);
  if (k == NULL || strcmp(k, "maxsize") != 0)
    return luaL_error(L, "Queue: cannot set field '%s'", k ? k : "?");
  q->maxsize = luaL_checkinteger(L, 3);
  gilua__notify(&q->not_full, -1); /* it may have grown */
  return 0;
}

static int queue_tostring(lua_State *L) {
  queueobj *q = check_queue(L);
  static const char *const kinds[] = {"Queue", "LifoQueue", "PriorityQueue"};
  lua_pushfstring(L, "queue.%s (%I items%s): %p",
                  q->simple ? "SimpleQueue" : kinds[q->kind], q->count,
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

static void createmeta(lua_State *L, const char *tname,
                       const luaL_Reg *methods) {
  luaL_newmetatable(L, tname);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, queue_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, queue_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, queue_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

static const luaL_Reg queue_funcs[] = {{"Queue", queue_new},
                                       {"LifoQueue", lifo_new},
                                       {"PriorityQueue", prio_new},
                                       {"SimpleQueue", simple_new},
                                       {NULL, NULL}};

int gilua__open_queue(lua_State *L) {
  createmeta(L, QUEUE, queue_methods);
  createmeta(L, SIMPLE, simple_methods);
  luaL_newlib(L, queue_funcs);
  gilua__errvalue(L, &EMPTY, "queue.Empty");
  lua_setfield(L, -2, "Empty");
  gilua__errvalue(L, &FULL, "queue.Full");
  lua_setfield(L, -2, "Full");
  gilua__errvalue(L, &SHUTDOWN_KEY, "queue.ShutDown");
  lua_setfield(L, -2, "ShutDown");
  return 1;
}

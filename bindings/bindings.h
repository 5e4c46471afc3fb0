/*
** bindings.h: what the files of bindings/ share: the module openers, the
** toolkit of auxlib.c (built only on the Lua API and runtime.h), and the
** few functions one binding offers another.  Each has a one-line
** contract; all are called with the GIL held.
*/
#ifndef GILUA_BINDINGS_H
#define GILUA_BINDINGS_H

#include "runtime.h"

/* Most values a length taken from user data (args.n, #initargs) may
** have: more would not fit on a Lua stack anyway. */
#define GILUA_MAXARGS 1000000

/* {====================================================================
** From auxlib.c: the binding toolkit
** ===================================================================== */

/* Whether the value at idx can be called (a function, or __call). */
GILUA_HIDDEN int gilua__iscallable(lua_State *L, int idx);
/* Raises "bad argument" unless the argument is callable. */
GILUA_HIDDEN void gilua__checkcallable(lua_State *L, int arg);
/* The one timeout rule.  Argument 'arg': nil, none or -1 mean no limit
** (returns < 0); else a number in [0, TIMEOUT_MAX], or "bad argument"
** (negative, NaN, too large).  With !blocking, a timeout is an error. */
GILUA_HIDDEN double gilua__opttimeout(lua_State *L, int arg, int blocking);
/* gilua__opttimeout as a deadline. */
GILUA_HIDDEN int64_t gilua__optdeadline(lua_State *L, int arg, int blocking);
/* An optional boolean argument (nil or none: 'def'); raises otherwise. */
GILUA_HIDDEN int gilua__optboolean(lua_State *L, int arg, int def);
/* The length of the array at idx for an argument list: its field n if it
** is a number, else #t; raises unless 0 <= n <= GILUA_MAXARGS. */
GILUA_HIDDEN lua_Integer gilua__arglen(lua_State *L, int idx,
                                       const char *what);
/* Python's keyword arguments: when the last argument, at 'arg', is a
** table, replaces it by its fields 'names' (NULL-terminated), in order,
** so f{timeout = 1} is f(1).  Returns whether it did. */
GILUA_HIDDEN int gilua__kwargs(lua_State *L, int arg,
                               const char *const names[]);
/* Pushes t[1..n] of the array at idx (after luaL_checkstack). */
GILUA_HIDDEN void gilua__pushargs(lua_State *L, int idx, lua_Integer n);

/* Makes the metatable 'tname' with __index = the methods and the given
** metamethods ('meta' may be NULL); leaves nothing on the stack.  A
** metamethod __index in 'meta' replaces the methods table, which is then
** stored as the metatable's field "methods"; every metamethod gets the
** methods table as its upvalue 1 (so an __index looks there first). */
GILUA_HIDDEN void gilua__newclass(lua_State *L, const char *tname,
                                  const luaL_Reg *methods,
                                  const luaL_Reg *meta);
/* Lets argument errors name the methods of the table at 'methods'
** ("bad argument #1 to 'threading.Lock.acquire'") when the call site
** gives no name: luaL_argerror then finds them in package.loaded, under
** 'tname', as it finds a module's functions.  newclass does it for
** every type whose name has a dot. */
GILUA_HIDDEN void gilua__nameclass(lua_State *L, const char *tname,
                                   int methods);
/* obj:with(f, ...): calls acquire(obj) first; calls f(...); then
** release(obj) whether f raised or not; returns f's results or re-raises.
** f may not yield (the lock would be let go by whoever resumed it). */
GILUA_HIDDEN int gilua__with(lua_State *L, lua_CFunction acquire,
                             lua_CFunction release);

/* Writes s to stderr in one piece, without the GIL. */
GILUA_HIDDEN void gilua__write_stderr(lua_State *L, const char *s);
/* Pushes a new empty table with weak keys ("k"), values ("v") or both. */
GILUA_HIDDEN void gilua__weaktable(lua_State *L, const char *mode);
/* Pushes tostring(v) of the value at idx, never raising (a __tostring
** that fails gives a description of the type); returns it. */
GILUA_HIDDEN const char *gilua__describe(lua_State *L, int idx);
/* Raises Lua's own memory error. */
GILUA_HIDDEN int gilua__nomem(lua_State *L);

/* A C buffer owned by a userdata (pushed): freed by its __gc or
** __close, so memory that lives across a release region never leaks
** when an error is raised.  gilua__box_grow keeps the contents; NULL
** when out of memory (the old block stays). */
typedef struct gilua_box {
  char *p;
  size_t len, cap;
} gilua_box;
GILUA_HIDDEN gilua_box *gilua__box_new(lua_State *L);
GILUA_HIDDEN char *gilua__box_grow(gilua_box *b, size_t need);

/* A FIFO ring in a Lua table (a user value of the object at 'obj'):
** pushing grows the table without ever leaving the ring half-updated,
** whatever a finalizer run by the allocation does to it meanwhile. */
typedef struct gilua_ring {
  lua_Integer head, count, cap;
} gilua_ring;
GILUA_HIDDEN void gilua__ring_init(lua_State *L, gilua_ring *r, int obj,
                                   int uv);
/* Appends the value on the top (popped). */
GILUA_HIDDEN void gilua__ring_push(lua_State *L, gilua_ring *r, int obj,
                                   int uv);
/* Removes the oldest value and pushes it (count > 0). */
GILUA_HIDDEN void gilua__ring_pop(lua_State *L, gilua_ring *r, int obj,
                                  int uv);

/* }==================================================================== */

/* From errors.c: named error values, compared with == after a pcall */
GILUA_HIDDEN void gilua__errvalue(lua_State *L, const void *key,
                                  const char *name);
GILUA_HIDDEN int gilua__raise(lua_State *L, const void *key, const char *name);
/* Raises an instance of that value carrying 'msg' (== the value). */
GILUA_HIDDEN int gilua__raise_msg(lua_State *L, const void *key,
                                  const char *name, const char *msg);

/* From lock.c: the protocol Condition uses (as CPython's _release_save,
** _acquire_restore and _is_owned); the lock's fields stay private. */
typedef struct gilua_lockobj gilua_lockobj;
GILUA_HIDDEN int gilua__newlock(lua_State *L, int rlock);
GILUA_HIDDEN gilua_lockobj *gilua__tolock(lua_State *L, int idx);
GILUA_HIDDEN int gilua__lock_is_owned(lua_State *L, gilua_lockobj *lk);
GILUA_HIDDEN int gilua__lock_is_locked(gilua_lockobj *lk);
/* Lets go of lk completely; returns what acquire_restore needs. */
GILUA_HIDDEN lua_Integer gilua__lock_release_save(lua_State *L,
                                                  gilua_lockobj *lk);
/* Takes lk back at the saved depth, however long that takes; an
** interrupt meanwhile stays pending. */
GILUA_HIDDEN void gilua__lock_acquire_restore(lua_State *L, gilua_lockobj *lk,
                                              lua_Integer saved);

/* From event.c */
GILUA_HIDDEN int gilua__event_new(lua_State *L); /* threading.Event() */

/* From thread.c */
GILUA_HIDDEN int gilua__current_thread(lua_State *L); /* current_thread() */
/* Gives the main thread (or a host thread) its Thread object; the
** threading module is on the top. */
GILUA_HIDDEN void gilua__thread_object(lua_State *L, gilua_tstate *ts);

/* From future.c: what the executors need of a Future */
GILUA_HIDDEN int gilua__future_new(lua_State *L); /* pushes a pending one */
/* Runs the work {f, args..., n} stored in the pending future at idx. */
GILUA_HIDDEN void gilua__future_run(lua_State *L, int idx);
/* Cancels the future at idx if it has not started; whether it is
** cancelled (or was). */
GILUA_HIDDEN int gilua__future_cancel(lua_State *L, int idx);
/* Fails the pending future at idx with the error value on the top. */
GILUA_HIDDEN void gilua__future_fail(lua_State *L, int idx);
/* Sets the future's work: the table on the top (popped). */
GILUA_HIDDEN void gilua__future_setwork(lua_State *L, int idx);
GILUA_HIDDEN int gilua__future_result(lua_State *L); /* fut:result() */

/* Module and library openers (init.c has the list) */
GILUA_HIDDEN int gilua__open_threading(lua_State *L);
GILUA_HIDDEN int gilua__open_time(lua_State *L);
GILUA_HIDDEN int gilua__open_queue(lua_State *L);
GILUA_HIDDEN int gilua__open_io(lua_State *L);
GILUA_HIDDEN int gilua__open_socket(lua_State *L);
GILUA_HIDDEN int gilua__open_http(lua_State *L);
GILUA_HIDDEN int gilua__open_futures(lua_State *L);
GILUA_HIDDEN void gilua__open_base(lua_State *L);
/* Parts of the threading module, each adding to the table on the top. */
GILUA_HIDDEN void gilua__open_thread(lua_State *L);
GILUA_HIDDEN void gilua__open_lock(lua_State *L);
GILUA_HIDDEN void gilua__open_condition(lua_State *L);
GILUA_HIDDEN void gilua__open_semaphore(lua_State *L);
GILUA_HIDDEN void gilua__open_event(lua_State *L);
GILUA_HIDDEN void gilua__open_barrier(lua_State *L);
GILUA_HIDDEN void gilua__open_timer(lua_State *L);
GILUA_HIDDEN void gilua__open_local(lua_State *L);
GILUA_HIDDEN void gilua__open_gil(lua_State *L);
/* Parts of the futures module. */
GILUA_HIDDEN void gilua__open_future(lua_State *L);
GILUA_HIDDEN void gilua__open_executor(lua_State *L);

/* From init.c: threading.so's exit; a no-op in universes gilua made. */
GILUA_HIDDEN void gilua__exit_sentinel(lua_State *L);

#endif

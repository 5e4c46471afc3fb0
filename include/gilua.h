/*
** gilua.h: the embedding API of gilua, a Lua 5.4 runtime whose threads are
** real OS threads sharing one Lua universe under a global interpreter lock.
**
** Vocabulary used in the contracts below:
**   universe  everything one gilua_newstate() created: a lua_State, its
**             coroutines, its OS threads and its own GIL.  Universes are
**             independent: two of them run Lua in parallel.
**   GIL       the universe's global interpreter lock.  Only the OS thread
**             holding it may call the Lua API on any lua_State of the
**             universe.
*/
#ifndef GILUA_H
#define GILUA_H

#include "lua.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GILUA_BUILDING)
#define GILUA_API __attribute__((visibility("default")))
#else
#define GILUA_API extern
#endif

#define GILUA_VERSION_MAJOR 0
#define GILUA_VERSION_MINOR 1
#define GILUA_VERSION_PATCH 0
#define GILUA_VERSION "0.1.0"
#define GILUA_VERSION_NUM                                                      \
  (GILUA_VERSION_MAJOR * 10000 + GILUA_VERSION_MINOR * 100 +                   \
   GILUA_VERSION_PATCH)

/* Flags for gilua_newstatex(). */
#define GILUA_NOENV 1 /* ignore LUA_PATH/LUA_CPATH (the program's -E) */

/*
** Returns the version of the library actually linked, "MAJOR.MINOR.PATCH".
** Any thread, no GIL needed; never fails.
*/
GILUA_API const char *gilua_version(void);

/*
** Creates a new universe: a Lua state with the standard libraries opened
** and gilua's modules (threading, time, ...) available to require().  The
** calling OS thread becomes the universe's main thread and holds its GIL
** on return.  Returns NULL when memory or a thread resource is exhausted.
** gilua_newstatex() takes GILUA_* flags; gilua_newstate() is flags 0.
*/
GILUA_API lua_State *gilua_newstate(void);
GILUA_API lua_State *gilua_newstatex(unsigned flags);

/*
** Waits for every non-daemon thread of the universe, then closes the Lua
** state.  Daemon threads still running are abandoned: they never run Lua
** again (each one parks for good the next time it asks for the GIL).
** Call from the universe's main thread, holding the GIL.  L is invalid
** afterwards.  Returns 0, or 1 when an error escaped while waiting (for
** example a SIGINT delivered through gilua_interrupt); the error has been
** written to stderr.
*/
GILUA_API int gilua_close(lua_State *L);

/*
** Runs the universe's exit hooks once (they shut the thread pools down, so
** that queued work completes), then waits until every non-daemon thread
** has ended, including threads started meanwhile.  A lua_CFunction: call
** it with lua_pcall from the main thread (GIL held); it raises
** "interrupted!" when gilua_interrupt() is called meanwhile.
** gilua_close() calls it too.
*/
GILUA_API int gilua_waitthreads(lua_State *L);

/*
** Gives up the GIL so other threads can run while host code blocks, and
** takes it back.  Use as a pair of braces in one function:
**
**   GILUA_BEGIN_ALLOW_THREADS(L)
**     n = read(fd, buf, sizeof buf);    -- no Lua API call in here
**   GILUA_END_ALLOW_THREADS(L)
**
** The calling thread must hold the GIL.  errno is preserved across the
** end of the region.  Regions do not nest.  gilua_unlock()/gilua_lock()
** are the functions behind the macros.
*/
typedef struct gilua_tstate gilua_tstate;
GILUA_API gilua_tstate *gilua_unlock(lua_State *L);
GILUA_API void gilua_lock(gilua_tstate *ts);

#define GILUA_BEGIN_ALLOW_THREADS(L)                                           \
  {                                                                            \
    gilua_tstate *gilua_save_ = gilua_unlock(L);
#define GILUA_END_ALLOW_THREADS(L)                                             \
  gilua_lock(gilua_save_);                                                     \
  (void)(L);                                                                   \
  }

/*
** From any OS thread of the process (including threads the host created):
** takes L's GIL and returns a Lua thread (coroutine) reserved for the
** calling OS thread, on which the host may push values and call Lua.
** L is any lua_State of the universe.  Nests: a thread that already holds
** the GIL gets the same Lua thread back, and each call must be matched by
** one gilua_release().  Returns NULL when memory is exhausted.
*/
GILUA_API lua_State *gilua_ensure(lua_State *L);

/*
** Gives back what the matching gilua_ensure() took: the outermost release
** lets go of the GIL.  T is the value gilua_ensure() returned.  Calling it
** without a matching ensure aborts with a message in debug builds.
*/
GILUA_API void gilua_release(lua_State *T);

/*
** Raises the error "interrupted!" in the universe's main thread: at its
** next Lua instruction, or at once if it is blocked in a gilua wait (sleep,
** join, a lock, a queue, a socket, a pipe, an HTTP transfer, a child
** process).  Returns 1 if an interrupt was already pending (delivered but
** not yet raised: the main thread is inside a long C call that does not
** wait through gilua), else 0; a program's second Ctrl-C may then take the
** default action, as lua.c does.  Any OS thread, no GIL needed, but never
** while or after gilua_close() runs for that universe; not from a signal
** handler (a signal handler should wake a thread that calls this).
*/
GILUA_API int gilua_interrupt(lua_State *L);

/*
** The switch interval in seconds: how long a thread may keep the GIL while
** another waits for it.  Strictly positive.  Any thread that holds the GIL.
** gilua_setswitchinterval returns 0, or -1 for a value that is not > 0.
*/
GILUA_API int gilua_setswitchinterval(lua_State *L, double seconds);
GILUA_API double gilua_getswitchinterval(lua_State *L);

/*
** The GIL's scheduling policy, per universe: "fifo" (CPython's: the
** thread that waited longest goes next; an I/O thread waits up to an
** interval after each blocking call) or "fair" (each thread is charged
** the GIL time it holds, the least charged goes next, and a thread back
** from a real wait may ask a holder that ran more than its share to step
** aside at once).  Any thread that holds the GIL.  gilua_setswitchpolicy
** returns 0, or -1 for an unknown name.
*/
GILUA_API int gilua_setswitchpolicy(lua_State *L, const char *name);
GILUA_API const char *gilua_getswitchpolicy(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif

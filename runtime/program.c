/*
** program.c: the gilua program.  It behaves as the stock lua5.4 program
** (options, LUA_INIT, the arg table, the interactive prompt, messages and
** exit statuses) and adds --switch-interval.  It is one more client of
** gilua.h: it creates a universe, runs the script in it, and closes it,
** which waits for the non-daemon threads.
**
** SIGINT: while Lua code runs, the signal handler (which may only do
** async-signal-safe things) writes a byte to a pipe; a watcher thread
** reads it and calls gilua_interrupt(), which raises "interrupted!" in the
** main thread, at its next instruction or at once if it is blocked in a
** gilua wait (a lock, a sleep, a socket, a pipe, an HTTP transfer...).  A
** second SIGINT while the first is still pending (the main thread is in
** a long C call that does not wait through gilua) gets the default
** action, as in lua.c.  Outside Lua code (the prompt, the final clean-up)
** SIGINT keeps its default action too.  Ctrl-C while the program waits
** for its non-daemon threads at exit ends it at once with status 130, as
** CPython's does.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/prctl.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lauxlib.h"
#include "lualib.h"
#include "gilua.h"

static const char *progname = "gilua";

/* The GIL lab's options */
static int gil_stats;            /* --gil-stats */
static const char *gil_trace;    /* --gil-trace=FILE */
static const char *gil_timeline; /* --gil-timeline=FILE.svg */
static char gil_tmptrace[64];    /* the trace behind a timeline alone */
static const char *gil_script;   /* what ran, for the timeline title */
static const char *gil_policy;   /* --gil-policy=fair|fifo */

/* {====================================================================
** Interrupts
** ===================================================================== */

static lua_State *interruptible; /* the universe to interrupt (intr_mu) */
static pthread_mutex_t intr_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int in_call; /* Lua code is running */
static int sigpipe[2] = {-1, -1};

static void on_sigint(int sig) {
  if (!atomic_load(&in_call)) { /* nothing to interrupt: default action */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  int saved = errno;
  char c = 1;
  ssize_t r = write(sigpipe[1], &c, 1);
  (void)r;
  errno = saved;
}

static void *watch_sigint(void *arg) {
  char c;
  (void)arg;
  for (;;) {
    ssize_t r = read(sigpipe[0], &c, 1);
    if (r == 1 && atomic_load(&in_call)) {
      pthread_mutex_lock(&intr_mu); /* the universe lives while held */
      int pending = interruptible && gilua_interrupt(interruptible);
      pthread_mutex_unlock(&intr_mu);
      if (pending) { /* the first is still pending: the default action */
        signal(SIGINT, SIG_DFL);
        kill(getpid(), SIGINT);
      }
    } else if (r < 0 && errno != EINTR) {
      return NULL;
    }
  }
}

static void setup_sigint(lua_State *L) {
  pthread_t t;
  sigset_t all, old;
  interruptible = L;
  if (pipe(sigpipe) != 0)
    return;
  sigfillset(&all); /* the watcher takes no signals */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (pthread_create(&t, NULL, watch_sigint, NULL) == 0)
    pthread_detach(t);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* }==================================================================== */

/* {====================================================================
** Messages and calls
** ===================================================================== */

static void print_usage(const char *badoption) {
  if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
  else
    fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n"
          "  --switch-interval=SECONDS\n"
          "            set the GIL switch interval (default 0.005)\n"
          "  --gil-policy=fair|fifo\n"
          "            set the GIL's scheduling policy\n"
          "  --gil-stats  print the GIL statistics to stderr at exit\n"
          "  --gil-trace=FILE\n"
          "            record the GIL's hand-offs (Chrome trace JSON)\n"
          "  --gil-timeline=FILE.svg\n"
          "            draw them as an SVG timeline at exit\n",
          progname);
  fflush(stderr);
}

static void message(const char *pname, const char *msg) {
  if (pname)
    fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Writes the error on the top, if any, and pops it. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    message(progname, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* Adds a traceback to a message; a non-string error object becomes its
** __tostring, or a description of its type. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1; /* that is the message */
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls the function below the narg arguments on the top, with the
** message handler, while SIGINT interrupts. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  atomic_store(&in_call, 1);
  int status = lua_pcall(L, narg, nres, base);
  atomic_store(&in_call, 0);
  lua_remove(L, base);
  return status;
}

static void print_version(void) {
  fputs(LUA_COPYRIGHT "\n", stdout);
  fflush(stdout);
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK)
    status = docall(L, 0, 0);
  return report(L, status);
}

static int dofile(lua_State *L, const char *name) {
  return dochunk(L, luaL_loadfile(L, name));
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod: mod = require("mod"); -l g=mod: g = require("mod") */
static int dolibrary(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *modname = eq ? eq + 1 : spec;
  lua_pushlstring(L, spec, eq ? (size_t)(eq - spec) : strlen(spec));
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = docall(L, 1, 1);
  if (status == LUA_OK)
    lua_setglobal(L, lua_tostring(L, -2));
  lua_remove(L, status == LUA_OK ? -1 : -2); /* the global's name */
  return report(L, status);
}

/* Pushes arg[1], ..., arg[#arg]; returns how many. */
static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -(n + 1));
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

/* }==================================================================== */

/* {====================================================================
** The interactive prompt
** ===================================================================== */

static const char *get_prompt(lua_State *L, int firstline) {
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL)
    return firstline ? "> " : ">> ";
  const char *p = luaL_tolstring(L, -1, NULL);
  lua_remove(L, -2);
  return p;
}

/* Reads one line with the GIL released, so that threads keep running
** while the user types.  Pushes it and returns 1, or 0 at end of input. */
static int pushline(lua_State *L, int firstline) {
  const char *prmt = get_prompt(L, firstline);
  char *b;
  GILUA_BEGIN_ALLOW_THREADS(L)
    b = readline(prmt);
  GILUA_END_ALLOW_THREADS(L)
  lua_pop(L, 1); /* the prompt */
  if (b == NULL)
    return 0;
  size_t l = strlen(b);
  if (l > 0 && b[l - 1] == '\n')
    b[--l] = '\0';
  if (firstline && b[0] == '=') /* "=expr" means "return expr" */
    lua_pushfstring(L, "return %s", b + 1);
  else
    lua_pushlstring(L, b, l);
  free(b);
  return 1;
}

static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    const char *eof = "<eof>";
    size_t leof = strlen(eof);
    if (lmsg >= leof && strcmp(msg + lmsg - leof, eof) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Tries the line as an expression: "return LINE". */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK) {
    lua_remove(L, -2); /* the modified line */
    if (line[0] != '\0')
      add_history(line);
  } else {
    lua_pop(L, 2);
  }
  return status;
}

/* Reads more lines while the statement is incomplete. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0)) {
      add_history(line);
      return status;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* Reads a statement; returns -1 at end of input. */
static int loadline(lua_State *L) {
  lua_settop(L, 0);
  if (!pushline(L, 1))
    return -1;
  int status = addreturn(L);
  if (status != LUA_OK)
    status = multiline(L);
  lua_remove(L, 1); /* the line */
  return status;
}

static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      message(progname, lua_pushfstring(L, "error calling 'print' (%s)",
                                        lua_tostring(L, -1)));
  }
}

static void repl(lua_State *L) {
  const char *saved = progname;
  progname = NULL; /* errors at the prompt carry no program name */
  int status;
  while ((status = loadline(L)) != -1) {
    if (status == LUA_OK)
      status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      print_results(L);
    else
      report(L, status);
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
  progname = saved;
}

/* }==================================================================== */

/* {====================================================================
** Arguments
** ===================================================================== */

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_BIGE = 16 };

/*
** Scans the options; returns the HAS_ flags and sets *first to the index
** of the script (argc if none) or, on error, of the bad option.
*/
static int collectargs(char **argv, int argc, int *first, double *interval) {
  int args = 0;
  int i;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    *first = i;
    if (strcmp(a, "--gil-stats") == 0) {
      gil_stats = 1;
      continue;
    }
    if (strncmp(a, "--gil-trace=", 12) == 0 && a[12]) {
      gil_trace = a + 12;
      continue;
    }
    if (strncmp(a, "--gil-timeline=", 15) == 0 && a[15]) {
      gil_timeline = a + 15;
      continue;
    }
    if (strncmp(a, "--gil-policy=", 13) == 0) {
      gil_policy = a + 13;
      if (strcmp(gil_policy, "fair") != 0 && strcmp(gil_policy, "fifo") != 0)
        return -2;
      continue;
    }
    if (strncmp(a, "--switch-interval=", 18) == 0) {
      char *end;
      *interval = strtod(a + 18, &end);
      if (end == a + 18 || *end != '\0' || !(*interval > 0))
        return -1;
      continue;
    }
    switch (a[1]) {
    case '-': /* '--' */
      if (a[2] != '\0')
        return HAS_ERROR;
      *first = i + 1;
      return args;
    case '\0': /* '-': the script is stdin */
      return args;
    case 'E':
      if (a[2] != '\0')
        return HAS_ERROR;
      args |= HAS_BIGE;
      break;
    case 'W':
      if (a[2] != '\0')
        return HAS_ERROR;
      break;
    case 'i':
      args |= HAS_I; /* -i implies -v */
      /* fall through */
    case 'v':
      if (a[2] != '\0')
        return HAS_ERROR;
      args |= HAS_V;
      break;
    case 'e':
      args |= HAS_E;
      /* fall through */
    case 'l':
      if (a[2] == '\0') { /* the argument is the next word */
        i++;
        if (i >= argc || argv[i][0] == '-')
          return HAS_ERROR;
      }
      break;
    default:
      return HAS_ERROR;
    }
  }
  *first = i;
  return args;
}

/* Runs -e, -l and -W in order; returns 0 on the first error. */
static int runargs(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    switch (option) {
    case 'e':
    case 'l': {
      const char *extra = argv[i] + 2;
      if (*extra == '\0')
        extra = argv[++i];
      int status = option == 'e' ? dostring(L, extra, "=(command line)")
                                 : dolibrary(L, extra);
      if (status != LUA_OK)
        return 0;
      break;
    }
    case 'W':
      lua_warning(L, "@on", 0);
      break;
    }
  }
  return 1;
}

static int handle_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL)
    return LUA_OK;
  if (init[0] == '@')
    return dofile(L, init + 1);
  return dostring(L, init, name);
}

static void createargtable(lua_State *L, char **argv, int argc, int script) {
  if (script == argc)
    script = 0; /* no script: arg[0] is the program */
  lua_createtable(L, argc - (script + 1), script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* }==================================================================== */

/* {====================================================================
** The GIL lab: a trace over the whole run, stats and a timeline at exit
** ===================================================================== */

/* Pushes threading.gil. */
static void push_gil(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "threading");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "gil");
  lua_remove(L, -2);
}

static int gil_begin(lua_State *L) {
  const char *path = gil_trace;
  if (path == NULL) { /* a timeline alone: trace to a temporary file */
    strcpy(gil_tmptrace, "/tmp/gilua-trace-XXXXXX");
    int fd = mkstemp(gil_tmptrace);
    if (fd < 0)
      return luaL_error(L, "cannot create a temporary trace file");
    close(fd);
    path = gil_tmptrace;
  }
  push_gil(L);
  lua_getfield(L, -1, "trace_start");
  lua_pushstring(L, path);
  lua_call(L, 1, 0);
  return 0;
}

static int gil_end(lua_State *L) {
  push_gil(L);
  int gil = lua_gettop(L);
  if (gil_trace || gil_timeline) {
    lua_getfield(L, gil, "trace_stop");
    lua_call(L, 0, 0);
  }
  if (gil_timeline) {
    lua_getfield(L, gil, "timeline");
    lua_pushstring(L, gil_trace ? gil_trace : gil_tmptrace);
    lua_pushstring(L, gil_timeline);
    lua_pushfstring(L, "GIL timeline: %s", gil_script);
    lua_call(L, 3, 0);
    if (!gil_trace)
      remove(gil_tmptrace);
    fprintf(stderr, "%s: GIL timeline written to %s\n", progname, gil_timeline);
  }
  if (gil_stats) {
    lua_getfield(L, gil, "report");
    lua_call(L, 0, 1);
    fputs(lua_tostring(L, -1), stderr);
    fflush(stderr);
  }
  return 0;
}

/* os.exit(...) with the lab on: the statistics, trace and timeline are
** written first, then the original os.exit (upvalue 1) runs. */
static int lab_exit(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushcfunction(L, gil_end);
  report(L, docall(L, 0, 0));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static void wrap_exit(lua_State *L) {
  lua_getglobal(L, "os");
  lua_getfield(L, -1, "exit");
  lua_pushcclosure(L, lab_exit, 1);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
}

/* }==================================================================== */

typedef struct {
  int argc;
  char **argv;
  int args;
  int script;
} progargs;

static int pmain(lua_State *L) {
  progargs *p = lua_touserdata(L, 1);
  char **argv = p->argv;
  luaL_checkversion(L);
  if (p->args & HAS_V)
    print_version();
  if (gil_trace || gil_timeline) {
    lua_pushcfunction(L, gil_begin);
    if (report(L, docall(L, 0, 0)) != LUA_OK)
      return 0;
  }
  if (gil_stats || gil_trace || gil_timeline)
    wrap_exit(L);
  createargtable(L, argv, p->argc, p->script);
  lua_gc(L, LUA_GCGEN, 0, 0); /* as lua.c: generational mode */
  if (!(p->args & HAS_BIGE) && handle_luainit(L) != LUA_OK)
    return 0;
  if (!runargs(L, argv, p->script))
    return 0;
  if (p->script < p->argc && handle_script(L, argv + p->script) != LUA_OK)
    return 0;
  if (p->args & HAS_I) {
    repl(L);
  } else if (p->script == p->argc && !(p->args & (HAS_E | HAS_V))) {
    if (isatty(0)) {
      print_version();
      repl(L);
    } else if (dofile(L, NULL) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  progargs p;
  double interval = 0;
  if (argv[0] && argv[0][0])
    progname = argv[0];
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* as gilua's own threads */
  p.argc = argc;
  p.argv = argv;
  p.script = argc;
  p.args = collectargs(argv, argc, &p.script, &interval);
  if (p.args == -1) {
    fprintf(stderr,
            "%s: bad value in '%s' (a number of seconds > 0 expected)\n",
            progname, argv[p.script]);
    return EXIT_FAILURE;
  }
  if (p.args == -2) {
    fprintf(stderr, "%s: bad value in '%s' (fair or fifo expected)\n", progname,
            argv[p.script]);
    return EXIT_FAILURE;
  }
  if (p.args & HAS_ERROR) {
    print_usage(argv[p.script]);
    return EXIT_FAILURE;
  }
  gil_script = p.script < argc ? argv[p.script] : "(command line)";
  lua_State *L = gilua_newstatex((p.args & HAS_BIGE) ? GILUA_NOENV : 0);
  if (L == NULL) {
    message(progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  if (interval > 0)
    gilua_setswitchinterval(L, interval);
  if (gil_policy)
    gilua_setswitchpolicy(L, gil_policy);
  setup_sigint(L);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &p);
  int status = lua_pcall(L, 1, 1, 0);
  int ok = lua_toboolean(L, -1);
  report(L, status);
  lua_settop(L, 0);
  /* the process waits for its non-daemon threads; Ctrl-C ends it */
  lua_pushcfunction(L, gilua_waitthreads);
  int waited = report(L, docall(L, 0, 0));
  if (gil_stats || gil_trace || gil_timeline) {
    lua_pushcfunction(L, gil_end);
    if (report(L, docall(L, 0, 0)) != LUA_OK)
      ok = 0;
  }
  if (waited != LUA_OK) { /* the threads still run: do not wait again */
    fflush(NULL);
    exit(130);
  }
  pthread_mutex_lock(&intr_mu); /* no interrupt may reach a closing state */
  interruptible = NULL;
  pthread_mutex_unlock(&intr_mu);
  gilua_close(L);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}

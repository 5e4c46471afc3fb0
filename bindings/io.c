/*
** io.c: the io library, with the behaviour of Lua 5.4's own (results,
** `nil, message, errno` failures, formats, buffering, closing rules), but
** letting go of the GIL whenever an operation may wait.
**
** Try before you release: an operation that stdio can satisfy from its
** buffer (a line already read ahead, bytes that fit in the output buffer)
** runs at once with the GIL held, under ftrylockfile(); only one that must
** reach the operating system releases the GIL.  Then it runs entirely in C
** under flockfile() (so one io.write call is never split by another
** thread's) on buffers of its own: no Lua memory is touched without the
** GIL.  A file in use by a thread that released the GIL is 'busy'; close()
** waits until it is not, so a FILE* is never freed under a reader.
**
** Files are luaL_Stream userdata ("FILE*"), extended with the busy count;
** a luaL_Stream made by another library (without it) is used with the GIL
** held throughout, as the stock library would.
*/

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lualib.h"
#include "internal.h"

#define IO_INPUT "_IO_input"
#define IO_OUTPUT "_IO_output"
#define MAXARGLINE 250
#define MAXLENNUM 200

typedef struct iofile {
  luaL_Stream s;
  int busy; /* threads using f without the GIL (GIL) */
  gilua_waitq idle;
} iofile;

#define isclosed(p) ((p)->closef == NULL)

/* {====================================================================
** Handles
** ===================================================================== */

static luaL_Stream *tostream(lua_State *L) {
  return luaL_checkudata(L, 1, LUA_FILEHANDLE);
}

/* The extension of a stream, if it has one. */
static iofile *ext(lua_State *L, int idx) {
  return lua_rawlen(L, idx) >= sizeof(iofile) ? lua_touserdata(L, idx) : NULL;
}

static FILE *tofile(lua_State *L) {
  luaL_Stream *p = tostream(L);
  if (isclosed(p))
    luaL_error(L, "attempt to use a closed file");
  return p->f;
}

static luaL_Stream *newprefile(lua_State *L) {
  iofile *p = lua_newuserdatauv(L, sizeof(iofile), 0);
  p->s.f = NULL;
  p->s.closef = NULL; /* closed until it is opened */
  p->busy = 0;
  p->idle.head = p->idle.tail = NULL;
  luaL_setmetatable(L, LUA_FILEHANDLE);
  return &p->s;
}

/* Waits until no thread uses the file at 'idx' without the GIL. */
static void wait_idle(lua_State *L, int idx) {
  iofile *x = ext(L, idx);
  while (x && x->busy > 0)
    gilua__wait(gilua__self(L), &x->idle, GILUA_FOREVER, GILUA_R_IO);
}

static int aux_close(lua_State *L) {
  luaL_Stream *p = tostream(L);
  wait_idle(L, 1);
  lua_CFunction cf = p->closef;
  p->closef = NULL; /* mark it closed */
  return (*cf)(L);
}

static int io_fclose(lua_State *L) {
  luaL_Stream *p = tostream(L);
  FILE *f = p->f;
  int res;
  GILUA__BLOCKING(L, GILUA_R_IO)
    res = fclose(f); /* may flush to a slow reader */
  GILUA__END_BLOCKING()
  return luaL_fileresult(L, res == 0, NULL);
}

static int io_noclose(lua_State *L) {
  luaL_Stream *p = tostream(L);
  p->closef = &io_noclose; /* keep it open */
  luaL_pushfail(L);
  lua_pushliteral(L, "cannot close standard file");
  return 2;
}

static int io_pclose(lua_State *L) {
  luaL_Stream *p = tostream(L);
  FILE *f = p->f;
  int stat;
  errno = 0;
  GILUA__BLOCKING(L, GILUA_R_IO)
    stat = pclose(f); /* waits for the child */
  GILUA__END_BLOCKING()
  return luaL_execresult(L, stat);
}

/* file:close() -> true | fail, message, errno */
static int f_close(lua_State *L) {
  tofile(L);
  return aux_close(L);
}

/* io.close([file]) */
static int io_close(lua_State *L) {
  if (lua_isnone(L, 1))
    lua_getfield(L, LUA_REGISTRYINDEX, IO_OUTPUT);
  return f_close(L);
}

static int f_gc(lua_State *L) {
  luaL_Stream *p = tostream(L);
  iofile *x = ext(L, 1);
  /* a busy file at lua_close belongs to an abandoned daemon: leave it */
  if (!isclosed(p) && p->f != NULL && !(x && x->busy > 0))
    aux_close(L);
  return 0;
}

static int f_tostring(lua_State *L) {
  luaL_Stream *p = tostream(L);
  if (isclosed(p))
    lua_pushliteral(L, "file (closed)");
  else
    lua_pushfstring(L, "file (%p)", p->f);
  return 1;
}

static int checkmode(const char *mode) {
  if (*mode == '\0' || strchr("rwa", *mode) == NULL)
    return 0;
  mode++;
  if (*mode == '+')
    mode++;
  return strspn(mode, "b") == strlen(mode);
}

/* fopen, without the GIL if the path is a FIFO (opening one waits for
** the other end). */
static FILE *open_file(lua_State *L, const char *name, const char *mode) {
  struct stat st;
  if (stat(name, &st) == 0 && S_ISFIFO(st.st_mode)) {
    size_t len = strlen(name) + 1;
    char *copy = malloc(len + strlen(mode) + 1);
    if (copy == NULL)
      luaL_error(L, "not enough memory");
    memcpy(copy, name, len);
    strcpy(copy + len, mode);
    FILE *f;
    GILUA__BLOCKING(L, GILUA_R_IO)
      f = fopen(copy, copy + len);
    GILUA__END_BLOCKING()
    int saved = errno;
    free(copy);
    errno = saved;
    return f;
  }
  return fopen(name, mode);
}

/* io.open(filename [, mode]) -> file | fail, message, errno */
static int io_open(lua_State *L) {
  const char *filename = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  luaL_Stream *p = newprefile(L);
  luaL_argcheck(L, checkmode(mode), 2, "invalid mode");
  p->f = open_file(L, filename, mode);
  if (p->f == NULL)
    return luaL_fileresult(L, 0, filename);
  p->closef = &io_fclose;
  return 1;
}

/* io.popen(prog [, mode]) -> file | fail, message, errno */
static int io_popen(lua_State *L) {
  const char *prog = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  luaL_Stream *p = newprefile(L);
  luaL_argcheck(L, (mode[0] == 'r' || mode[0] == 'w') && mode[1] == '\0', 2,
                "invalid mode");
  char *copy = strdup(prog);
  if (copy == NULL)
    return luaL_error(L, "not enough memory");
  FILE *f;
  GILUA__BLOCKING(L, GILUA_R_IO)
    fflush(NULL);
    f = popen(copy, mode[0] == 'r' ? "r" : "w");
  GILUA__END_BLOCKING()
  int saved = errno;
  free(copy);
  errno = saved;
  p->f = f;
  if (f == NULL)
    return luaL_fileresult(L, 0, prog);
  p->closef = &io_pclose;
  return 1;
}

/* io.tmpfile() -> file */
static int io_tmpfile(lua_State *L) {
  luaL_Stream *p = newprefile(L);
  p->f = tmpfile();
  if (p->f == NULL)
    return luaL_fileresult(L, 0, NULL);
  p->closef = &io_fclose;
  return 1;
}

/* io.type(obj) -> "file" | "closed file" | fail */
static int io_type(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_Stream *p = luaL_testudata(L, 1, LUA_FILEHANDLE);
  if (p == NULL)
    luaL_pushfail(L);
  else if (isclosed(p))
    lua_pushliteral(L, "closed file");
  else
    lua_pushliteral(L, "file");
  return 1;
}

static FILE *getiofile(lua_State *L, const char *findex) {
  lua_getfield(L, LUA_REGISTRYINDEX, findex);
  luaL_Stream *p = lua_touserdata(L, -1);
  if (isclosed(p))
    luaL_error(L, "default %s file is closed", findex + strlen("_IO_"));
  return p->f;
}

static void opencheckfile(lua_State *L, const char *name, const char *mode) {
  luaL_Stream *p = newprefile(L);
  p->f = open_file(L, name, mode);
  if (p->f == NULL)
    luaL_error(L, "cannot open file '%s' (%s)", name, strerror(errno));
  p->closef = &io_fclose;
}

static int g_iofile(lua_State *L, const char *f, const char *mode) {
  if (!lua_isnoneornil(L, 1)) {
    const char *filename = lua_tostring(L, 1);
    if (filename)
      opencheckfile(L, filename, mode);
    else {
      tofile(L);
      lua_pushvalue(L, 1);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, f);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, f);
  return 1;
}

/* io.input([file | name]) -> file */
static int io_input(lua_State *L) { return g_iofile(L, IO_INPUT, "r"); }

/* io.output([file | name]) -> file */
static int io_output(lua_State *L) { return g_iofile(L, IO_OUTPUT, "w"); }

/* }==================================================================== */

/* {====================================================================
** Reading.  Each format is one operation done in C into a buffer of its
** own, either at once (GIL held, the data already buffered by stdio) or
** with the GIL released.
** ===================================================================== */

enum { OP_LINE, OP_LINEKEEP, OP_ALL, OP_CHARS, OP_EOF, OP_NUMBER };

typedef struct rdop {
  int op;
  size_t n;   /* OP_CHARS: how many */
  char *buf;  /* the result, malloc'd */
  size_t len; /* bytes in buf */
  size_t cap;
  int ok;    /* the format succeeded */
  int err;   /* errno, if ferror after it */
  int nomem; /* ran out of memory */
  char decp; /* the locale's decimal point */
} rdop;

static int addbytes(rdop *r, const char *p, size_t n) {
  if (n == 0)
    return 1;
  if (r->len + n > r->cap) {
    size_t ncap = r->cap ? r->cap : 128;
    while (ncap < r->len + n)
      ncap *= 2;
    char *nb = realloc(r->buf, ncap);
    if (nb == NULL) {
      r->nomem = 1;
      return 0;
    }
    r->buf = nb;
    r->cap = ncap;
  }
  memcpy(r->buf + r->len, p, n);
  r->len += n;
  return 1;
}

static int addc(rdop *r, int c) {
  char ch = (char)c;
  return addbytes(r, &ch, 1);
}

/* Reading a numeral the way Lua's own reader does: at most MAXLENNUM
** characters of [sign] [0x] digits [point digits] [exponent [sign]
** digits]; past the limit the numeral is invalid. */
typedef struct numeral {
  FILE *f;
  int c;   /* the look-ahead */
  int n;   /* characters kept */
  int bad; /* too long */
  char text[MAXLENNUM + 1];
} numeral;

static int keep(numeral *s) {
  if (s->n >= MAXLENNUM) {
    s->bad = 1;
    return 0;
  }
  s->text[s->n++] = (char)s->c;
  s->c = getc_unlocked(s->f);
  return 1;
}

static int keep_either(numeral *s, int a, int b) {
  return (s->c == a || s->c == b) ? keep(s) : 0;
}

static int keep_digits(numeral *s, int hex) {
  int k = 0;
  while ((hex ? isxdigit(s->c) : isdigit(s->c)) && keep(s))
    k++;
  return k;
}

static void read_numeral(FILE *f, rdop *r) {
  numeral s;
  int count = 0, hex = 0;
  s.f = f;
  s.n = 0;
  s.bad = 0;
  do
    s.c = getc_unlocked(f);
  while (isspace(s.c));
  keep_either(&s, '-', '+');
  if (keep_either(&s, '0', '0')) {
    if (keep_either(&s, 'x', 'X'))
      hex = 1;
    else
      count = 1;
  }
  count += keep_digits(&s, hex);
  if (keep_either(&s, r->decp, '.'))
    count += keep_digits(&s, hex);
  if (count > 0 &&
      (hex ? keep_either(&s, 'p', 'P') : keep_either(&s, 'e', 'E'))) {
    keep_either(&s, '-', '+');
    keep_digits(&s, 0);
  }
  ungetc(s.c, f);
  if (s.bad)
    s.n = 0; /* invalid: an empty text converts to nothing */
  addbytes(r, s.text, (size_t)s.n);
  r->ok = 1;
}

/* Performs r on f; f is locked by the caller. */
static void perform(FILE *f, rdop *r) {
  int c = 0;
  switch (r->op) {
  case OP_LINE:
  case OP_LINEKEEP:
    while ((c = getc_unlocked(f)) != EOF && c != '\n')
      if (!addc(r, c))
        return;
    if (c == '\n' && r->op == OP_LINEKEEP)
      addc(r, c);
    r->ok = (c == '\n' || r->len > 0);
    break;
  case OP_ALL: {
    char chunk[BUFSIZ];
    size_t nr;
    do {
      nr = fread_unlocked(chunk, 1, sizeof chunk, f);
      if (!addbytes(r, chunk, nr))
        return;
    } while (nr == sizeof chunk);
    r->ok = 1;
    break;
  }
  case OP_CHARS: {
    char *nb = realloc(r->buf, r->n);
    if (nb == NULL && r->n > 0) {
      r->nomem = 1;
      return;
    }
    r->buf = nb;
    r->cap = r->n;
    r->len = fread_unlocked(r->buf, 1, r->n, f);
    r->ok = r->len > 0;
    break;
  }
  case OP_EOF:
    c = getc_unlocked(f);
    ungetc(c, f);
    r->ok = (c != EOF);
    break;
  case OP_NUMBER:
    read_numeral(f, r);
    break;
  }
  r->err = ferror_unlocked(f) ? (errno ? errno : EIO) : 0;
}

/* Can r be done from what stdio has buffered, without a system call? */
static int buffered(FILE *f, rdop *r) {
  if (!__freading(f))
    return 0;
  size_t avail = (size_t)(f->_IO_read_end - f->_IO_read_ptr);
  switch (r->op) {
  case OP_LINE:
  case OP_LINEKEEP:
    return avail > 0 && memchr(f->_IO_read_ptr, '\n', avail) != NULL;
  case OP_CHARS:
    return r->n <= avail;
  case OP_EOF:
    return avail > 0;
  default:
    return 0;
  }
}

/* Runs one read operation on the file at 'fidx'. */
static void run_read(lua_State *L, FILE *f, int fidx, rdop *r, int first) {
  iofile *x = ext(L, fidx);
  if (ftrylockfile(f) == 0) {
    if (x == NULL || buffered(f, r)) { /* at once, GIL held */
      if (first)
        clearerr_unlocked(f);
      perform(f, r);
      funlockfile(f);
      return;
    }
    funlockfile(f);
  } else if (x == NULL) { /* a foreign stream: as the stock library */
    flockfile(f);
    if (first)
      clearerr_unlocked(f);
    perform(f, r);
    funlockfile(f);
    return;
  }
  x->busy++;
  GILUA__BLOCKING(L, GILUA_R_IO)
    flockfile(f);
    if (first)
      clearerr_unlocked(f);
    perform(f, r);
    funlockfile(f);
  GILUA__END_BLOCKING()
  if (--x->busy == 0)
    gilua__notify(&x->idle, -1);
}

/* Pushes the result of r; returns whether the format succeeded. */
static int push_read(lua_State *L, rdop *r) {
  if (r->op == OP_EOF) {
    lua_pushliteral(L, "");
    return r->ok;
  }
  if (r->op == OP_NUMBER) {
    if (addc(r, '\0') && lua_stringtonumber(L, r->buf))
      return 1;
    lua_pushnil(L);
    return 0;
  }
  lua_pushlstring(L, r->buf ? r->buf : "", r->len);
  return r->ok;
}

static int g_read(lua_State *L, FILE *f, int fidx, int first) {
  int nargs = lua_gettop(L) - 1;
  int n, success = 1, err = 0;
  rdop r;
  memset(&r, 0, sizeof r);
  r.decp = localeconv()->decimal_point[0];
  if (nargs == 0) { /* no formats: a line */
    r.op = OP_LINE;
    run_read(L, f, fidx, &r, 1);
    if (r.nomem) {
      free(r.buf);
      return luaL_error(L, "not enough memory");
    }
    success = push_read(L, &r);
    err = r.err;
    n = first + 1;
  } else {
    luaL_checkstack(L, nargs + LUA_MINSTACK, "too many arguments");
    for (n = first; nargs-- && success; n++) {
      r.len = 0;
      r.ok = 0;
      if (lua_type(L, n) == LUA_TNUMBER) {
        int isint;
        size_t l = (size_t)lua_tointegerx(L, n, &isint);
        if (!isint) { /* raise as Lua does, without leaking the buffer */
          free(r.buf);
          luaL_checkinteger(L, n);
        }
        r.op = (l == 0) ? OP_EOF : OP_CHARS;
        r.n = l;
      } else {
        const char *p = lua_tostring(L, n);
        if (p == NULL) {
          free(r.buf);
          luaL_checkstring(L, n);
        }
        if (*p == '*')
          p++; /* the optional '*' of Lua 5.2 */
        switch (*p) {
        case 'n':
          r.op = OP_NUMBER;
          break;
        case 'l':
          r.op = OP_LINE;
          break;
        case 'L':
          r.op = OP_LINEKEEP;
          break;
        case 'a':
          r.op = OP_ALL;
          break;
        default:
          free(r.buf);
          return luaL_argerror(L, n, "invalid format");
        }
      }
      run_read(L, f, fidx, &r, n == first);
      if (r.nomem) {
        free(r.buf);
        return luaL_error(L, "not enough memory");
      }
      success = push_read(L, &r);
      if (r.err)
        err = r.err;
    }
  }
  free(r.buf);
  if (err) {
    errno = err;
    return luaL_fileresult(L, 0, NULL);
  }
  if (!success) {
    lua_pop(L, 1);
    luaL_pushfail(L);
  }
  return n - first;
}

/* io.read(...): the formats are at 1.., the file goes on the top */
static int io_read(lua_State *L) {
  FILE *f = getiofile(L, IO_INPUT);
  return g_read(L, f, lua_gettop(L), 1);
}

/* file:read(...) */
static int f_read(lua_State *L) { return g_read(L, tofile(L), 1, 2); }

/* The iterator of lines(): upvalues 1 the file, 2 the number of formats,
** 3 whether to close the file at the end, then the formats. */
static int io_readline(lua_State *L) {
  luaL_Stream *p = lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, lua_upvalueindex(2));
  if (isclosed(p))
    return luaL_error(L, "file is already closed");
  lua_settop(L, 1);
  luaL_checkstack(L, n, "too many arguments");
  for (int i = 1; i <= n; i++)
    lua_pushvalue(L, lua_upvalueindex(3 + i));
  n = g_read(L, p->f, lua_upvalueindex(1), 2);
  if (lua_toboolean(L, -n))
    return n;
  if (n > 1) /* an error, with its message */
    return luaL_error(L, "%s", lua_tostring(L, -n + 1));
  if (lua_toboolean(L, lua_upvalueindex(3))) { /* close at the end */
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    aux_close(L);
  }
  return 0;
}

static void aux_lines(lua_State *L, int toclose) {
  int n = lua_gettop(L) - 1;
  luaL_argcheck(L, n <= MAXARGLINE, MAXARGLINE + 2, "too many arguments");
  lua_pushvalue(L, 1);
  lua_pushinteger(L, n);
  lua_pushboolean(L, toclose);
  lua_rotate(L, 2, 3);
  lua_pushcclosure(L, io_readline, 3 + n);
}

/* file:lines(...) -> iterator */
static int f_lines(lua_State *L) {
  tofile(L);
  aux_lines(L, 0);
  return 1;
}

/* io.lines([filename, ...]) -> iterator [, nil, nil, file] */
static int io_lines(lua_State *L) {
  int toclose;
  if (lua_isnone(L, 1))
    lua_pushnil(L);
  if (lua_isnil(L, 1)) { /* the default input */
    lua_getfield(L, LUA_REGISTRYINDEX, IO_INPUT);
    lua_replace(L, 1);
    tofile(L);
    toclose = 0;
  } else {
    const char *filename = luaL_checkstring(L, 1);
    opencheckfile(L, filename, "r");
    lua_replace(L, 1);
    toclose = 1;
  }
  aux_lines(L, toclose);
  if (!toclose)
    return 1;
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 1); /* the file, as a to-be-closed value */
  return 4;
}

/* }==================================================================== */

/* {====================================================================
** Writing
** ===================================================================== */

/* Writes the arguments from 'arg' on to f; the file to return is on the
** top.  All of one call's output goes out under one lock. */
static int g_write(lua_State *L, FILE *f, int fidx, int arg) {
  int nargs = lua_gettop(L) - arg; /* the top is the file */
  size_t total = 0;
  int newline = 0;
  for (int i = 0; i < nargs; i++) { /* numbers become strings first */
    int idx = arg + i;
    if (lua_type(L, idx) == LUA_TNUMBER) {
      char num[64];
      int len = lua_isinteger(L, idx)
                    ? snprintf(num, sizeof num, LUA_INTEGER_FMT,
                               (LUAI_UACINT)lua_tointeger(L, idx))
                    : snprintf(num, sizeof num, LUA_NUMBER_FMT,
                               (LUAI_UACNUMBER)lua_tonumber(L, idx));
      lua_pushlstring(L, num, (size_t)len);
      lua_replace(L, idx);
    }
    size_t l;
    const char *s = luaL_checklstring(L, idx, &l);
    total += l;
    newline |= (memchr(s, '\n', l) != NULL);
  }
  iofile *x = ext(L, fidx);
  int status = 1;
  if (ftrylockfile(f) == 0) {
    size_t size = __fbufsize(f);
    int fits = __fwriting(f) && size > 0 && __fpending(f) + total < size &&
               !(__flbf(f) && newline);
    if (fits || x == NULL) { /* into stdio's buffer, GIL held */
      for (int i = 0; i < nargs; i++) {
        size_t l;
        const char *s = lua_tolstring(L, arg + i, &l);
        status = status && fwrite_unlocked(s, 1, l, f) == l;
      }
      funlockfile(f);
      goto done;
    }
    funlockfile(f);
  }
  char *buf = malloc(total ? total : 1);
  if (buf == NULL)
    return luaL_error(L, "not enough memory");
  char *q = buf;
  for (int i = 0; i < nargs; i++) {
    size_t l;
    const char *s = lua_tolstring(L, arg + i, &l);
    memcpy(q, s, l);
    q += l;
  }
  if (x)
    x->busy++;
  int saved;
  GILUA__BLOCKING(L, GILUA_R_IO)
    flockfile(f);
    status = fwrite_unlocked(buf, 1, total, f) == total;
    saved = errno;
    funlockfile(f);
  GILUA__END_BLOCKING()
  free(buf);
  errno = saved;
  if (x && --x->busy == 0)
    gilua__notify(&x->idle, -1);
done:
  if (status) {
    lua_settop(L, arg + nargs); /* the file is on the top */
    return 1;
  }
  return luaL_fileresult(L, status, NULL);
}

/* io.write(...) -> the default output | fail, message, errno */
static int io_write(lua_State *L) {
  FILE *f = getiofile(L, IO_OUTPUT);
  return g_write(L, f, lua_gettop(L), 1);
}

/* file:write(...) -> file | fail, message, errno */
static int f_write(lua_State *L) {
  FILE *f = tofile(L);
  lua_pushvalue(L, 1); /* the result */
  return g_write(L, f, 1, 2);
}

/* Runs fflush, fseeko or setvbuf on the file at 'fidx' without the GIL
** when it may have to write out its buffer. */
enum { DO_FLUSH, DO_SEEK, DO_SETVBUF };

typedef struct fileop {
  int what;
  off_t offset;
  int whence;
  int mode;
  size_t size;
  off_t pos; /* DO_SEEK: the position after */
} fileop;

static int do_fileop(FILE *f, fileop *o) {
  switch (o->what) {
  case DO_FLUSH:
    return fflush(f);
  case DO_SEEK:
    if (fseeko(f, o->offset, o->whence) != 0)
      return -1;
    o->pos = ftello(f);
    return 0;
  default:
    return setvbuf(f, NULL, o->mode, o->size);
  }
}

static int run_fileop(lua_State *L, FILE *f, int fidx, fileop *o) {
  iofile *x = ext(L, fidx);
  int res;
  if (x == NULL || __fpending(f) == 0)
    return do_fileop(f, o); /* nothing to write out: at once */
  x->busy++;
  GILUA__BLOCKING(L, GILUA_R_IO)
    res = do_fileop(f, o);
  GILUA__END_BLOCKING()
  int saved = errno;
  if (--x->busy == 0)
    gilua__notify(&x->idle, -1);
  errno = saved;
  return res;
}

/* file:seek([whence [, offset]]) -> position | fail, message, errno */
static int f_seek(lua_State *L) {
  static const int mode[] = {SEEK_SET, SEEK_CUR, SEEK_END};
  static const char *const modenames[] = {"set", "cur", "end", NULL};
  FILE *f = tofile(L);
  int op = luaL_checkoption(L, 2, "cur", modenames);
  lua_Integer p3 = luaL_optinteger(L, 3, 0);
  off_t offset = (off_t)p3;
  luaL_argcheck(L, (lua_Integer)offset == p3, 3,
                "not an integer in proper range");
  fileop o = {DO_SEEK, offset, mode[op], 0, 0, 0};
  if (run_fileop(L, f, 1, &o) != 0)
    return luaL_fileresult(L, 0, NULL);
  lua_pushinteger(L, (lua_Integer)o.pos);
  return 1;
}

/* file:setvbuf(mode [, size]) -> true | fail, message, errno */
static int f_setvbuf(lua_State *L) {
  static const int mode[] = {_IONBF, _IOFBF, _IOLBF};
  static const char *const modenames[] = {"no", "full", "line", NULL};
  FILE *f = tofile(L);
  int op = luaL_checkoption(L, 2, NULL, modenames);
  lua_Integer sz = luaL_optinteger(L, 3, LUAL_BUFFERSIZE);
  fileop o = {DO_SETVBUF, 0, 0, mode[op], (size_t)sz, 0};
  int res = run_fileop(L, f, 1, &o);
  return luaL_fileresult(L, res == 0, NULL);
}

static int flush_at(lua_State *L, FILE *f, int fidx) {
  fileop o = {DO_FLUSH, 0, 0, 0, 0, 0};
  errno = 0;
  return luaL_fileresult(L, run_fileop(L, f, fidx, &o) == 0, NULL);
}

/* file:flush() -> true | fail, message, errno */
static int f_flush(lua_State *L) { return flush_at(L, tofile(L), 1); }

/* io.flush() -> true | fail, message, errno */
static int io_flush(lua_State *L) {
  FILE *f = getiofile(L, IO_OUTPUT);
  return flush_at(L, f, lua_gettop(L));
}

/* }==================================================================== */

static const luaL_Reg iolib[] = {
    {"close", io_close}, {"flush", io_flush}, {"input", io_input},
    {"lines", io_lines}, {"open", io_open},   {"output", io_output},
    {"popen", io_popen}, {"read", io_read},   {"tmpfile", io_tmpfile},
    {"type", io_type},   {"write", io_write}, {NULL, NULL}};

static const luaL_Reg meth[] = {{"read", f_read},       {"write", f_write},
                                {"lines", f_lines},     {"flush", f_flush},
                                {"seek", f_seek},       {"close", f_close},
                                {"setvbuf", f_setvbuf}, {NULL, NULL}};

static const luaL_Reg metameth[] = {{"__index", NULL},
                                    {"__gc", f_gc},
                                    {"__close", f_gc},
                                    {"__tostring", f_tostring},
                                    {NULL, NULL}};

static void createmeta(lua_State *L) {
  luaL_newmetatable(L, LUA_FILEHANDLE);
  luaL_setfuncs(L, metameth, 0);
  luaL_newlibtable(L, meth);
  luaL_setfuncs(L, meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static void createstdfile(lua_State *L, FILE *f, const char *k,
                          const char *fname) {
  luaL_Stream *p = newprefile(L);
  p->f = f;
  p->closef = &io_noclose;
  if (k != NULL) {
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, k);
  }
  lua_setfield(L, -2, fname);
}

/* The io library (it replaces Lua's own; see gilua__openlibs). */
int gilua__open_io(lua_State *L) {
  luaL_newlib(L, iolib);
  createmeta(L);
  createstdfile(L, stdin, IO_INPUT, "stdin");
  createstdfile(L, stdout, IO_OUTPUT, "stdout");
  createstdfile(L, stderr, NULL, "stderr");
  return 1;
}

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
** thread's) on buffers of its own (boxed: an error never leaks them): no
** Lua memory is touched without the GIL.
**
** Files are luaL_Stream userdata ("FILE*") extended with a tag and a
** gilua_handle (runtime.h): a thread using the file without the GIL is
** busy on it, and close() from another thread wakes it and waits until it
** has left, so a FILE* is never freed under a reader.  A read from
** something that may block (a pipe, a FIFO, a terminal, a socket) polls
** before each refill of stdio's buffer, beside the thread's wake-up, so
** Ctrl-C and close() end it; the woken read returns the closed error.  A
** luaL_Stream made by another library (without the tag) is used with the
** GIL held throughout, as the stock library would.
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
#include <sys/uio.h>
#include <unistd.h>

#include "lualib.h"
#include "bindings.h"

#define IO_INPUT "_IO_input"
#define IO_OUTPUT "_IO_output"
#define MAXARGLINE 250
#define MAXLENNUM 200

/* glibc's stdio, peeked at (as liolib.c's l_getc): the bytes already
** read ahead, and whether a write fits in the buffer without a flush. */
#define l_readptr(f) ((f)->_IO_read_ptr)
#define l_readavail(f) ((size_t)((f)->_IO_read_end - (f)->_IO_read_ptr))
#define l_readskip(f, n) ((f)->_IO_read_ptr += (n))
#define l_writefits(f, n, nl)                                                  \
  (__fwriting(f) && __fbufsize(f) > 0 &&                                       \
   __fpending(f) + (n) < __fbufsize(f) && !(__flbf(f) && (nl)))

static const char IOTAG = 0; /* marks gilua's own file handles */

typedef struct iofile {
  luaL_Stream s;
  const void *tag; /* &IOTAG */
  int mayblock;    /* reads may wait (not a regular file or block device) */
  gilua_handle h;
} iofile;

#define isclosed(p) ((p)->closef == NULL)

/* {====================================================================
** Handles
** ===================================================================== */

static luaL_Stream *tostream(lua_State *L) {
  return luaL_checkudata(L, 1, LUA_FILEHANDLE);
}

/* gilua's extension of the stream at idx, or NULL for a foreign one. */
static iofile *toiofile(lua_State *L, int idx) {
  iofile *x = lua_touserdata(L, idx);
  return lua_rawlen(L, idx) == sizeof(iofile) && x->tag == &IOTAG ? x : NULL;
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
  p->tag = &IOTAG;
  p->mayblock = 0;
  gilua__handle_init(&p->h);
  luaL_setmetatable(L, LUA_FILEHANDLE);
  return &p->s;
}

/* Records whether reads of the new file at the top may wait. */
static void set_mayblock(lua_State *L, FILE *f) {
  iofile *x = toiofile(L, -1);
  struct stat st;
  if (x && f)
    x->mayblock = !(fstat(fileno(f), &st) == 0 &&
                    (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)));
}

static int aux_close(lua_State *L) {
  luaL_Stream *p = tostream(L);
  iofile *x = toiofile(L, 1);
  if (x) /* wake the threads using it, and wait until they have left */
    gilua__handle_close(L, &x->h);
  lua_CFunction cf = p->closef;
  if (cf == NULL) /* closed by another thread meanwhile */
    return luaL_fileresult(L, 0, NULL);
  p->closef = NULL; /* mark it closed */
  return (*cf)(L);
}

/* Runs f(fp) without the GIL (closing: nobody else uses the file now). */
static int unlocked_op(lua_State *L, int (*f)(FILE *), FILE *fp) {
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  int res = f(fp);
  gilua__block_end(&b);
  return res;
}

static int io_fclose(lua_State *L) {
  luaL_Stream *p = tostream(L);
  int res = unlocked_op(L, fclose, p->f); /* may flush to a slow reader */
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
  errno = 0;
  int stat = unlocked_op(L, pclose, p->f); /* waits for the child */
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
  iofile *x = toiofile(L, 1);
  /* a busy file at lua_close belongs to an abandoned daemon: leave it */
  if (!isclosed(p) && p->f != NULL && !(x && x->h.busy > 0))
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
** the other end); the name and mode are copied for the wait. */
static FILE *open_file(lua_State *L, const char *name, const char *mode) {
  struct stat st;
  if (!(stat(name, &st) == 0 && S_ISFIFO(st.st_mode)))
    return fopen(name, mode);
  size_t len = strlen(name) + 1;
  gilua_box *box = gilua__box_new(L);
  if (gilua__box_grow(box, len + strlen(mode) + 1) == NULL)
    gilua__nomem(L);
  memcpy(box->p, name, len);
  strcpy(box->p + len, mode);
  FILE *f;
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  f = fopen(box->p, box->p + len);
  gilua__block_end(&b);
  lua_pop(L, 1); /* the box: collected later */
  return f;
}

/* io.open(filename [, mode]) -> file | fail, message, errno */
static int io_open(lua_State *L) {
  const char *filename = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  luaL_argcheck(L, checkmode(mode), 2, "invalid mode");
  luaL_Stream *p = newprefile(L);
  FILE *f = open_file(L, filename, mode);
  if (f == NULL)
    return luaL_fileresult(L, 0, filename);
  p->f = f;
  p->closef = &io_fclose;
  set_mayblock(L, f);
  return 1;
}

static FILE *do_popen(const char *prog, const char *mode) {
  fflush(NULL);
  return popen(prog, mode);
}

/* io.popen(prog [, mode]) -> file | fail, message, errno */
static int io_popen(lua_State *L) {
  const char *prog = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  luaL_argcheck(L, (mode[0] == 'r' || mode[0] == 'w') && mode[1] == '\0', 2,
                "invalid mode");
  luaL_Stream *p = newprefile(L);
  gilua_box *box = gilua__box_new(L);
  size_t len = strlen(prog) + 1;
  if (gilua__box_grow(box, len) == NULL)
    return gilua__nomem(L);
  memcpy(box->p, prog, len);
  FILE *f;
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  f = do_popen(box->p, mode[0] == 'r' ? "r" : "w");
  gilua__block_end(&b);
  lua_pop(L, 1); /* the box */
  if (f == NULL)
    return luaL_fileresult(L, 0, prog);
  p->f = f;
  p->closef = &io_pclose;
  set_mayblock(L, f);
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
  FILE *f = open_file(L, name, mode);
  if (f == NULL)
    luaL_error(L, "cannot open file '%s' (%s)", name, strerror(errno));
  p->f = f;
  p->closef = &io_fclose;
  set_mayblock(L, f);
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

#define STOP_RELEASE (-1)

typedef struct rdop {
  int op;
  size_t n;         /* OP_CHARS: how many */
  gilua_box *out;   /* the result (boxed C memory) */
  int ok;           /* the format succeeded */
  int err;          /* errno, if ferror after it */
  int nomem;        /* ran out of memory */
  int stop;         /* GILUA_EINTR, GILUA_ECLOSED: woken while waiting;
                    ** STOP_RELEASE: the next refill would wait */
  int probe;        /* GIL held: refill only what the page cache has */
  char decp;        /* the locale's decimal point */
  gilua_block *blk; /* set when reads may wait: poll before refills */
} rdop;

static int addbytes(rdop *r, const char *p, size_t n) {
  if (n == 0)
    return 1;
  if (gilua__box_grow(r->out, r->out->len + n) == NULL) {
    r->nomem = 1;
    return 0;
  }
  memcpy(r->out->p + r->out->len, p, n);
  r->out->len += n;
  return 1;
}

static int addc(rdop *r, int c) {
  char ch = (char)c;
  return addbytes(r, &ch, 1);
}

/* Whether a getc may go ahead: stdio has bytes, or (a file whose reads
** may wait) poll says there are some, or an end.  0 when the thread was
** woken to stop (r->stop says why). */
static int can_read(FILE *f, rdop *r) {
  if (l_readavail(f) > 0)
    return 1;
  if (r->probe) { /* try before you release: is the next byte cached? */
    int fd = fileno(f);
    off_t off = lseek(fd, 0, SEEK_CUR);
    char c;
    struct iovec v = {&c, 1};
    if (off >= 0 && preadv2(fd, &v, 1, off, RWF_NOWAIT) >= 0)
      return 1; /* cached, or the end: the refill will not wait */
    r->stop = STOP_RELEASE;
    return 0;
  }
  if (r->blk == NULL)
    return 1;
  struct pollfd p = {fileno(f), POLLIN, 0};
  int w = gilua__block_poll(r->blk, &p, 1, GILUA_FOREVER);
  if (w != 0)
    r->stop = w;
  return w == 0;
}

/* Reads one character, waiting as can_read does; EOF when stopped. */
static int next_char(FILE *f, rdop *r) {
  return can_read(f, r) ? getc_unlocked(f) : EOF;
}

/* Reads up to n bytes into r->out; how many.  Memory grows with what
** arrives, so read(2^53) on a small file allocates the file's size.  A
** file whose reads may wait takes what each refill brings instead of
** insisting on n. */
static size_t read_bytes(FILE *f, rdop *r, size_t n) {
  size_t got = 0;
  while (got < n) {
    if (r->blk == NULL && !r->probe) { /* a regular file: in chunks */
      size_t want =
          n - got < LUAL_BUFFERSIZE * 16 ? n - got : LUAL_BUFFERSIZE * 16;
      if (gilua__box_grow(r->out, r->out->len + want) == NULL) {
        r->nomem = 1;
        break;
      }
      size_t k = fread_unlocked(r->out->p + r->out->len, 1, want, f);
      r->out->len += k;
      got += k;
      if (k < want)
        break;
      continue;
    }
    size_t avail = l_readavail(f);
    if (avail == 0) {
      int c = next_char(f, r); /* one refill */
      if (c == EOF || !addc(r, c))
        break;
      got++;
      continue;
    }
    size_t k = avail < n - got ? avail : n - got;
    if (!addbytes(r, l_readptr(f), k))
      break;
    l_readskip(f, k);
    got += k;
  }
  return got;
}

/* Reading a numeral the way Lua's own reader does: at most MAXLENNUM
** characters of [sign] [0x] digits [point digits] [exponent [sign]
** digits]; past the limit the numeral is invalid. */
typedef struct numeral {
  FILE *f;
  rdop *r;
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
  s->c = next_char(s->f, s->r);
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
  s.r = r;
  s.n = 0;
  s.bad = 0;
  do
    s.c = next_char(f, r);
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
    for (;;) { /* what stdio holds, in spans; a refill when it is empty */
      size_t avail = l_readavail(f);
      if (avail > 0) {
        const char *p = l_readptr(f), *nl = memchr(p, '\n', avail);
        size_t k = nl ? (size_t)(nl - p) : avail;
        if (!addbytes(r, p, k))
          return;
        l_readskip(f, k + (nl != NULL));
        if (nl) {
          c = '\n';
          break;
        }
        continue;
      }
      if ((c = next_char(f, r)) == EOF || c == '\n')
        break;
      if (!addc(r, c))
        return;
    }
    if (c == '\n' && r->op == OP_LINEKEEP)
      addc(r, c);
    r->ok = (c == '\n' || r->out->len > 0);
    break;
  case OP_ALL:
    while (read_bytes(f, r, LUAL_BUFFERSIZE) > 0 && !r->nomem)
      ;
    r->ok = 1;
    break;
  case OP_CHARS: /* (a continued read has some already) */
    read_bytes(f, r, r->n - r->out->len);
    r->ok = r->out->len > 0;
    break;
  case OP_EOF:
    c = next_char(f, r);
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
  size_t avail = l_readavail(f);
  switch (r->op) {
  case OP_LINE:
  case OP_LINEKEEP:
    return avail > 0 && memchr(l_readptr(f), '\n', avail) != NULL;
  case OP_CHARS:
    return r->n <= avail;
  case OP_EOF:
    return avail > 0;
  default:
    return 0;
  }
}

/* The common case: what r asks for is already in stdio's buffer (a line
** read ahead).  It is copied out under the file's lock into 'out' (no Lua
** allocation meanwhile: a finalizer might read the same file), and the
** length is returned; -1 when the fast path does not apply. */
static long read_buffered(FILE *f, rdop *r, int first, char *out, size_t size) {
  long len = -1;
  if (r->op != OP_LINE && r->op != OP_LINEKEEP && r->op != OP_CHARS)
    return -1;
  if (ftrylockfile(f) != 0)
    return -1;
  if (buffered(f, r)) {
    const char *p = l_readptr(f);
    size_t n = r->n, skip;
    if (r->op != OP_CHARS) {
      n = (size_t)((const char *)memchr(p, '\n', l_readavail(f)) - p);
      skip = n + 1;
      if (r->op == OP_LINEKEEP)
        n++;
    } else {
      skip = n;
    }
    if (n <= size) {
      if (first)
        clearerr_unlocked(f);
      memcpy(out, p, n);
      l_readskip(f, skip);
      len = (long)n;
    }
  }
  funlockfile(f);
  return len;
}

/* Runs one read operation on the file at 'fidx'. */
static void run_read(lua_State *L, FILE *f, int fidx, rdop *r, int first) {
  iofile *x = toiofile(L, fidx);
  if (x && !x->mayblock && r->op != OP_NUMBER && ftrylockfile(f) == 0) {
    /* a regular file: with the GIL held while the page cache has the
    ** data, which costs a system call instead of two GIL hand-offs */
    if (first)
      clearerr_unlocked(f);
    r->probe = 1;
    perform(f, r);
    r->probe = 0;
    funlockfile(f);
    if (r->stop != STOP_RELEASE)
      return;
    r->stop = 0; /* the rest waits for the disk: without the GIL */
    first = 0;
  }
  if (x == NULL ||
      (ftrylockfile(f) == 0 && (buffered(f, r) || (funlockfile(f), 0)))) {
    /* at once, GIL held: from the buffer, or a foreign stream */
    if (x == NULL)
      flockfile(f);
    if (first)
      clearerr_unlocked(f);
    perform(f, r);
    funlockfile(f);
    return;
  }
  gilua_block b;
  gilua__block_begin(L, &b, &x->h, GILUA_DROP_IO);
  r->blk = x->mayblock ? &b : NULL;
  flockfile(f);
  if (first)
    clearerr_unlocked(f);
  if (gilua__block_check(&b) == 0) /* closed or interrupted already? */
    perform(f, r);
  else
    r->stop = gilua__block_check(&b);
  funlockfile(f);
  gilua__block_end(&b);
  r->blk = NULL;
}

/* Pushes the result of r; returns whether the format succeeded. */
static int push_read(lua_State *L, rdop *r) {
  if (r->op == OP_EOF) {
    lua_pushliteral(L, "");
    return r->ok;
  }
  if (r->op == OP_NUMBER) {
    if (addc(r, '\0') && lua_stringtonumber(L, r->out->p))
      return 1;
    lua_pushnil(L);
    return 0;
  }
  lua_pushlstring(L, r->out->p ? r->out->p : "", r->out->len);
  return r->ok;
}

/* Parses the format at 'n' into r. */
static void read_format(lua_State *L, int n, rdop *r) {
  if (lua_type(L, n) == LUA_TNUMBER) {
    size_t l = (size_t)luaL_checkinteger(L, n);
    r->op = (l == 0) ? OP_EOF : OP_CHARS;
    r->n = l;
    return;
  }
  const char *p = luaL_checkstring(L, n);
  if (*p == '*')
    p++; /* the optional '*' of Lua 5.2 */
  switch (*p) {
  case 'n':
    r->op = OP_NUMBER;
    break;
  case 'l':
    r->op = OP_LINE;
    break;
  case 'L':
    r->op = OP_LINEKEEP;
    break;
  case 'a':
    r->op = OP_ALL;
    break;
  default:
    luaL_argerror(L, n, "invalid format");
  }
}

static int g_read(lua_State *L, FILE *f, int fidx, int first) {
  int nargs = lua_gettop(L) - 1;
  int k, success = 1, err = 0;
  fidx = lua_absindex(L, fidx);
  rdop r;
  memset(&r, 0, sizeof r);
  luaL_checkstack(L, nargs + LUA_MINSTACK, "too many arguments");
  lua_pushnil(L);       /* the box, made when first needed */
  lua_insert(L, first); /* the formats move up one, and so may fidx */
  if (fidx >= first)
    fidx++;
  int nformats = nargs;
  for (k = 0; k < (nformats ? nformats : 1) && success; k++) {
    r.ok = 0;
    if (nformats == 0)
      r.op = OP_LINE; /* no formats: a line */
    else
      read_format(L, first + 1 + k, &r);
    if (toiofile(L, fidx)) { /* (foreign streams: as the stock library) */
      char line[LUAL_BUFFERSIZE];
      long n = read_buffered(f, &r, k == 0, line, sizeof line);
      if (n >= 0) {
        lua_pushlstring(L, line, (size_t)n);
        continue;
      }
    }
    if (r.out == NULL) { /* freed by the collector, whatever happens */
      r.out = gilua__box_new(L);
      lua_replace(L, first);
    }
    if (r.op == OP_NUMBER)
      r.decp = localeconv()->decimal_point[0];
    r.out->len = 0;
    run_read(L, f, fidx, &r, k == 0);
    if (r.stop == GILUA_EINTR)
      gilua__check_interrupt(L);
    if (r.stop == GILUA_ECLOSED) {
      errno = EBADF; /* closed by another thread while we read */
      return luaL_fileresult(L, 0, NULL);
    }
    if (r.nomem)
      return gilua__nomem(L);
    success = push_read(L, &r);
    if (r.err)
      err = r.err;
  }
  if (err) {
    errno = err;
    return luaL_fileresult(L, 0, NULL);
  }
  if (!success) {
    lua_pop(L, 1);
    luaL_pushfail(L);
  }
  return k;
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
  iofile *x = toiofile(L, fidx);
  int status = 1;
  if (x == NULL || ftrylockfile(f) == 0) {
    if (x == NULL) /* a foreign stream: as the stock library, GIL held */
      flockfile(f);
    if (x == NULL || l_writefits(f, total, newline)) {
      for (int i = 0; i < nargs; i++) { /* into stdio's buffer */
        size_t l;
        const char *s = lua_tolstring(L, arg + i, &l);
        status = status && fwrite_unlocked(s, 1, l, f) == l;
      }
      funlockfile(f);
      goto done;
    }
    funlockfile(f);
  }
  gilua_box *box = gilua__box_new(L); /* one piece, written without the GIL */
  if (gilua__box_grow(box, total ? total : 1) == NULL)
    return gilua__nomem(L);
  char *q = box->p;
  for (int i = 0; i < nargs; i++) {
    size_t l;
    const char *s = lua_tolstring(L, arg + i, &l);
    memcpy(q, s, l);
    q += l;
  }
  int saved;
  gilua_block b;
  gilua__block_begin(L, &b, &x->h, GILUA_DROP_IO);
  flockfile(f);
  status = fwrite_unlocked(box->p, 1, total, f) == total;
  saved = errno;
  funlockfile(f);
  gilua__block_end(&b);
  errno = saved;
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
  iofile *x = toiofile(L, fidx);
  if (x == NULL || __fpending(f) == 0)
    return do_fileop(f, o); /* nothing to write out: at once */
  gilua_block b;
  gilua__block_begin(L, &b, &x->h, GILUA_DROP_IO);
  int res = do_fileop(f, o);
  gilua__block_end(&b); /* keeps errno */
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

static const luaL_Reg metameth[] = {{"__gc", f_gc},
                                    {"__close", f_gc},
                                    {"__tostring", f_tostring},
                                    {NULL, NULL}};

static void createmeta(lua_State *L) {
  gilua__newclass(L, LUA_FILEHANDLE, meth, metameth);
}

static void createstdfile(lua_State *L, FILE *f, const char *k,
                          const char *fname) {
  luaL_Stream *p = newprefile(L);
  p->f = f;
  p->closef = &io_noclose;
  set_mayblock(L, f);
  if (k != NULL) {
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, k);
  }
  lua_setfield(L, -2, fname);
}

/* The io library (it replaces Lua's own; see init.c). */
int gilua__open_io(lua_State *L) {
  luaL_newlib(L, iolib);
  createmeta(L);
  createstdfile(L, stdin, IO_INPUT, "stdin");
  createstdfile(L, stdout, IO_OUTPUT, "stdout");
  createstdfile(L, stderr, NULL, "stderr");
  return 1;
}

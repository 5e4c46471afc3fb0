/*
** socket.c: the socket module, the TCP core of LuaSocket's API, written
** from its documentation: socket.bind/connect/tcp/tcp6/select/gettime/
** sleep, and master, server and client objects.
**
** Sockets are non-blocking underneath.  Every operation is first tried
** with the GIL held; only when it would block (EAGAIN, EINPROGRESS) does
** the thread release the GIL and poll() for at most the time left.  A
** receive that finds data ready never lets go of the GIL: that is what
** keeps an echo server from waiting a switch interval per request (the
** convoy effect).  Received bytes go through a C buffer of the socket's
** own, so patterns ("*l", "*a", counts) never lose data between calls.
*/

#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bindings.h"

#define TCP "socket.tcp"

enum { MASTER, CLIENT, SERVER };
static const char *const kindnames[] = {"master", "client", "server"};

typedef struct sockobj {
  gilua_handle h; /* threads waiting on it without the GIL */
  int fd;
  int kind;
  int family;
  double block; /* seconds per blocking step; < 0: no limit */
  double total; /* seconds per call; < 0: no limit */
  char *buf;    /* received, not yet returned: buf[pos..len) */
  size_t pos, len, cap;
} sockobj;

/* {====================================================================
** Helpers
** ===================================================================== */

static sockobj *check_sock(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, TCP);
}

static sockobj *check_kind(lua_State *L, int kind) {
  sockobj *s = check_sock(L, 1);
  if (s->kind != kind)
    luaL_error(L, "socket: tcp{%s} expected, got tcp{%s}", kindnames[kind],
               kindnames[s->kind]);
  return s;
}

static sockobj *check_open(lua_State *L, int idx) {
  sockobj *s = check_sock(L, idx);
  if (s->fd < 0)
    luaL_error(L, "socket: attempt to use a closed socket");
  return s;
}

static sockobj *newsock(lua_State *L, int kind, int family, int fd) {
  sockobj *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  gilua__handle_init(&s->h);
  s->fd = fd;
  s->kind = kind;
  s->family = family;
  s->block = s->total = -1;
  luaL_setmetatable(L, TCP);
  return s;
}

static const char *errstr(int err) {
  switch (err) {
  case ETIMEDOUT:
    return "timeout";
  case EADDRINUSE:
    return "address already in use";
  case ECONNREFUSED:
    return "connection refused";
  case ECONNRESET:
  case EPIPE:
    return "closed";
  case EISCONN:
    return "already connected";
  case EACCES:
    return "permission denied";
  case ENETUNREACH:
    return "network is unreachable";
  case EHOSTUNREACH:
    return "host is unreachable";
  default:
    return strerror(err);
  }
}

static int fail(lua_State *L, const char *msg) {
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  return 2;
}

/* The deadline of one call, from the socket's timeouts. */
static int64_t call_deadline(sockobj *s) {
  return s->total >= 0 ? gilua__deadline(s->total) : GILUA_FOREVER;
}

/* Waits without the GIL until fd is ready for 'events', the block timeout
** or the call's deadline, or the socket is closed by another thread;
** returns 0, ETIMEDOUT, EPIPE (closed) or, with GILUA_DEFER, EINTR. */
static int wait_fd(lua_State *L, sockobj *s, short events, int64_t deadline,
                   int intr) {
  int64_t until = deadline;
  if (s->block >= 0) {
    int64_t b = gilua__deadline(s->block);
    if (b < until)
      until = b;
  }
  struct pollfd p = {s->fd, events, 0};
  int r = gilua__poll(L, &s->h, &p, 1, until, intr);
  if (r == GILUA_EINTR)
    return EINTR;
  if (r == GILUA_ECLOSED || s->fd < 0)
    return EPIPE;
  return r == GILUA_ETIMEDOUT ? ETIMEDOUT : 0;
}

/* Resolves host:port without the GIL; 0 or an error message pushed. */
static int resolve(lua_State *L, const char *host, const char *port,
                   int passive, int family, struct addrinfo **res) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  if (host && strcmp(host, "*") == 0)
    host = NULL;
  char *h = host ? strdup(host) : NULL, *p = strdup(port);
  if ((host && h == NULL) || p == NULL) {
    free(h);
    free(p);
    lua_pushliteral(L, "not enough memory");
    return -1;
  }
  int r;
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  r = getaddrinfo(h, p, &hints, res);
  gilua__block_end(&b);
  free(h);
  free(p);
  if (r != 0) {
    lua_pushstring(L, r == EAI_NONAME ? "host not found" : gai_strerror(r));
    return -1;
  }
  return 0;
}

/* }==================================================================== */

/* {====================================================================
** Creating, binding, connecting
** ===================================================================== */

static int open_fd(sockobj *s, int family) {
  if (s->fd >= 0)
    return 0;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno;
  s->fd = fd;
  s->family = family;
  return 0;
}

/* Binds s to host:port (first address that works); NULL or an error. */
static const char *do_bind(lua_State *L, sockobj *s, const char *host,
                           const char *port) {
  struct addrinfo *res, *ai;
  if (resolve(L, host, port, 1, s->fd >= 0 ? s->family : AF_UNSPEC, &res))
    return lua_tostring(L, -1);
  int err = EADDRNOTAVAIL;
  for (ai = res; ai; ai = ai->ai_next) {
    int opened = s->fd < 0;
    if ((err = open_fd(s, ai->ai_family)) != 0)
      continue;
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      err = 0;
      break;
    }
    err = errno;
    if (opened) {
      close(s->fd);
      s->fd = -1;
    }
  }
  freeaddrinfo(res);
  return err ? errstr(err) : NULL;
}

/* Connects s to host:port, waiting (without the GIL) up to the timeouts. */
static const char *do_connect(lua_State *L, sockobj *s, const char *host,
                              const char *port) {
  struct addrinfo *res, *ai;
  if (resolve(L, host, port, 0, s->fd >= 0 ? s->family : AF_UNSPEC, &res))
    return lua_tostring(L, -1);
  int64_t deadline = call_deadline(s);
  int err = ECONNREFUSED;
  for (ai = res; ai; ai = ai->ai_next) {
    int opened = s->fd < 0;
    if ((err = open_fd(s, ai->ai_family)) != 0)
      continue;
    if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      err = 0;
      break;
    }
    err = errno;
    if (err == EINPROGRESS) {
      err = wait_fd(L, s, POLLOUT, deadline, GILUA_DEFER);
      if (err == 0) {
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
      if (err == 0)
        break;
    }
    if (opened) {
      close(s->fd);
      s->fd = -1;
    }
    if (err == ETIMEDOUT || err == EINTR || err == EPIPE)
      break;
  }
  freeaddrinfo(res);
  if (err == EINTR)
    gilua__check_interrupt(L);
  if (err == 0)
    s->kind = CLIENT;
  return err ? errstr(err) : NULL;
}

static const char *portstr(lua_State *L, int idx, char *buf, size_t size) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer p = luaL_checkinteger(L, idx);
    luaL_argcheck(L, p >= 0 && p <= 65535, idx, "port out of range");
    snprintf(buf, size, "%lld", (long long)p);
    return buf;
  }
  return luaL_checkstring(L, idx);
}

/* socket.tcp() / socket.tcp6() -> master */
static int sock_tcp(lua_State *L) {
  newsock(L, MASTER, AF_UNSPEC, -1);
  return 1;
}

static int sock_tcp6(lua_State *L) {
  sockobj *s = newsock(L, MASTER, AF_INET6, -1);
  int err = open_fd(s, AF_INET6);
  if (err)
    return fail(L, errstr(err));
  return 1;
}

/* socket.bind(host, port [, backlog]) -> server | nil, err */
static int sock_bind(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  char pb[16];
  const char *port = portstr(L, 2, pb, sizeof pb);
  int backlog = (int)luaL_optinteger(L, 3, 32);
  lua_settop(L, 3);
  sockobj *s = newsock(L, MASTER, AF_UNSPEC, -1);
  int idx = lua_gettop(L);
  const char *err = do_bind(L, s, host, port);
  if (err)
    return fail(L, err);
  if (listen(s->fd, backlog) != 0)
    return fail(L, errstr(errno));
  s->kind = SERVER;
  lua_settop(L, idx);
  return 1;
}

/* socket.connect(host, port [, locaddr [, locport]]) -> client | nil, err */
static int sock_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  char pb[16], lb[16];
  const char *port = portstr(L, 2, pb, sizeof pb);
  lua_settop(L, 4);
  sockobj *s = newsock(L, MASTER, AF_UNSPEC, -1);
  int top = lua_gettop(L);
  if (!lua_isnoneornil(L, 3)) {
    const char *lport =
        lua_isnoneornil(L, 4) ? "0" : portstr(L, 4, lb, sizeof lb);
    const char *err = do_bind(L, s, luaL_checkstring(L, 3), lport);
    if (err)
      return fail(L, err);
  }
  const char *err = do_connect(L, s, host, port);
  if (err)
    return fail(L, err);
  lua_settop(L, top);
  return 1;
}

/* master:bind(host, port) -> 1 | nil, err */
static int tcp_bind(lua_State *L) {
  sockobj *s = check_kind(L, MASTER);
  char pb[16];
  const char *err =
      do_bind(L, s, luaL_checkstring(L, 2), portstr(L, 3, pb, sizeof pb));
  if (err)
    return fail(L, err);
  lua_pushinteger(L, 1);
  return 1;
}

/* master:listen([backlog]) -> 1 | nil, err */
static int tcp_listen(lua_State *L) {
  sockobj *s = check_kind(L, MASTER);
  int backlog = (int)luaL_optinteger(L, 2, 32);
  int err = open_fd(s, AF_INET);
  if (err || listen(s->fd, backlog) != 0)
    return fail(L, errstr(err ? err : errno));
  s->kind = SERVER;
  lua_pushinteger(L, 1);
  return 1;
}

/* master:connect(host, port) -> 1 | nil, err */
static int tcp_connect(lua_State *L) {
  sockobj *s = check_kind(L, MASTER);
  char pb[16];
  const char *err =
      do_connect(L, s, luaL_checkstring(L, 2), portstr(L, 3, pb, sizeof pb));
  if (err)
    return fail(L, err);
  lua_pushinteger(L, 1);
  return 1;
}

/* server:accept() -> client | nil, err */
static int tcp_accept(lua_State *L) {
  sockobj *s = check_kind(L, SERVER);
  check_open(L, 1);
  int64_t deadline = call_deadline(s);
  for (;;) {
    int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      newsock(L, CLIENT, s->family, fd);
      return 1;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return fail(L, errstr(errno));
    int w = wait_fd(L, s, POLLIN, deadline, GILUA_RAISE);
    if (w == ETIMEDOUT)
      return fail(L, "timeout");
    if (w == EPIPE)
      return fail(L, "closed");
  }
}

/* }==================================================================== */

/* {====================================================================
** Sending and receiving
** ===================================================================== */

/* client:send(data [, i [, j]]) -> last index sent | nil, err, last sent */
static int tcp_send(lua_State *L) {
  sockobj *s = check_kind(L, CLIENT);
  check_open(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, -1);
  if (i < 0)
    i = (lua_Integer)len + i + 1;
  if (i < 1)
    i = 1;
  if (j < 0)
    j = (lua_Integer)len + j + 1;
  if (j > (lua_Integer)len)
    j = (lua_Integer)len;
  size_t sent = 0, want = j >= i ? (size_t)(j - i + 1) : 0;
  const char *p = data + i - 1;
  int64_t deadline = call_deadline(s);
  const char *err = NULL;
  while (sent < want) {
    ssize_t n = send(s->fd, p + sent, want - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int w = wait_fd(L, s, POLLOUT, deadline, GILUA_RAISE);
      if (w != 0) { /* timed out, or closed by another thread */
        err = w == ETIMEDOUT ? "timeout" : "closed";
        break;
      }
      continue;
    }
    err = errstr(n < 0 ? errno : EPIPE);
    break;
  }
  if (err) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    lua_pushinteger(L, i - 1 + (lua_Integer)sent);
    return 3;
  }
  lua_pushinteger(L, i - 1 + (lua_Integer)sent);
  return 1;
}

/* Reads more into s's buffer; 0, ETIMEDOUT, EPIPE (closed) or errno. */
static int fill(lua_State *L, sockobj *s, int64_t deadline) {
  if (s->pos > 0 && s->pos == s->len)
    s->pos = s->len = 0;
  if (s->cap - s->len < 4096) {
    if (s->pos > 0) { /* compact */
      memmove(s->buf, s->buf + s->pos, s->len - s->pos);
      s->len -= s->pos;
      s->pos = 0;
    }
    if (s->cap - s->len < 4096) {
      size_t ncap = s->cap ? s->cap * 2 : 8192;
      char *nb = realloc(s->buf, ncap);
      if (nb == NULL)
        gilua__nomem(L);
      s->buf = nb;
      s->cap = ncap;
    }
  }
  for (;;) {
    ssize_t n = recv(s->fd, s->buf + s->len, s->cap - s->len, 0);
    if (n > 0) {
      s->len += (size_t)n;
      return 0;
    }
    if (n == 0)
      return EPIPE;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return errno;
    int w = wait_fd(L, s, POLLIN, deadline, GILUA_RAISE);
    if (w != 0)
      return w;
  }
}

/* Pushes buf[pos, pos+n) (CRs dropped if 'nocr') and consumes it plus
** 'skip' more bytes. */
static void take(lua_State *L, sockobj *s, size_t n, size_t skip, int nocr) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *p = s->buf + s->pos;
  if (nocr) {
    for (size_t k = 0; k < n; k++)
      if (p[k] != '\r')
        luaL_addchar(&b, p[k]);
  } else {
    luaL_addlstring(&b, p, n);
  }
  luaL_pushresult(&b);
  s->pos += n + skip;
}

/* client:receive([pattern [, prefix]]) -> data | nil, err, partial */
static int tcp_receive(lua_State *L) {
  sockobj *s = check_kind(L, CLIENT);
  check_open(L, 1);
  const char *prefix = luaL_optstring(L, 3, "");
  lua_Integer count = -1;
  int mode = 'l';
  if (lua_type(L, 2) == LUA_TNUMBER) {
    count = luaL_checkinteger(L, 2);
    luaL_argcheck(L, count >= 0, 2, "invalid receive pattern");
    mode = 'n';
  } else if (!lua_isnoneornil(L, 2)) {
    const char *p = luaL_checkstring(L, 2);
    if (*p == '*')
      p++;
    luaL_argcheck(L, *p == 'l' || *p == 'a', 2, "invalid receive pattern");
    mode = *p;
  }
  lua_settop(L, 3);
  int64_t deadline = call_deadline(s);
  int err = 0;
  for (;;) {
    size_t avail = s->len - s->pos;
    if (mode == 'l') {
      char *nl = avail ? memchr(s->buf + s->pos, '\n', avail) : NULL;
      if (nl) {
        lua_pushstring(L, prefix);
        take(L, s, (size_t)(nl - (s->buf + s->pos)), 1, 1);
        lua_concat(L, 2);
        return 1;
      }
    } else if (mode == 'n' && avail >= (size_t)count) {
      lua_pushstring(L, prefix);
      take(L, s, (size_t)count, 0, 0);
      lua_concat(L, 2);
      return 1;
    }
    if ((err = fill(L, s, deadline)) != 0)
      break;
  }
  /* closed, timed out or failed: what was read is the partial result */
  size_t avail = s->len - s->pos;
  if (mode == 'a' && err == EPIPE) {
    lua_pushstring(L, prefix);
    take(L, s, avail, 0, 0);
    lua_concat(L, 2);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushstring(L, err == EPIPE ? "closed" : errstr(err));
  lua_pushstring(L, prefix);
  take(L, s, avail, 0, mode == 'l');
  lua_concat(L, 2);
  return 3;
}

/* }==================================================================== */

/* {====================================================================
** Options, names, closing
** ===================================================================== */

/* sock:settimeout(seconds [, "b" | "t"]) -> 1 */
static int tcp_settimeout(lua_State *L) {
  sockobj *s = check_sock(L, 1);
  double t = lua_isnoneornil(L, 2) ? -1 : luaL_checknumber(L, 2);
  const char *mode = luaL_optstring(L, 3, "b");
  switch (*mode) {
  case 'b':
    s->block = t;
    break;
  case 'r':
  case 't':
    s->total = t;
    break;
  default:
    return luaL_argerror(L, 3, "invalid timeout mode");
  }
  lua_pushinteger(L, 1);
  return 1;
}

/* sock:setoption(name, value) -> 1 | nil, err */
static int tcp_setoption(lua_State *L) {
  sockobj *s = check_open(L, 1);
  static const char *const names[] = {"tcp-nodelay", "reuseaddr", "keepalive",
                                      NULL};
  int opt = luaL_checkoption(L, 2, NULL, names);
  int v = lua_toboolean(L, 3);
  int level = opt == 0 ? IPPROTO_TCP : SOL_SOCKET;
  int name = opt == 0 ? TCP_NODELAY : opt == 1 ? SO_REUSEADDR : SO_KEEPALIVE;
  if (setsockopt(s->fd, level, name, &v, sizeof v) != 0)
    return fail(L, errstr(errno));
  lua_pushinteger(L, 1);
  return 1;
}

static int push_addr(lua_State *L, struct sockaddr_storage *ss) {
  char host[INET6_ADDRSTRLEN];
  int port;
  if (ss->ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  lua_pushstring(L, ss->ss_family == AF_INET6 ? "inet6" : "inet");
  return 3;
}

/* Pushes the local (or the peer's) address of s: ip, port, family. */
static int sock_name(lua_State *L, int peer) {
  sockobj *s = check_open(L, 1);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &len)
               : getsockname(s->fd, (struct sockaddr *)&ss, &len);
  if (r != 0)
    return fail(L, errstr(errno));
  return push_addr(L, &ss);
}

/* sock:getsockname() -> ip, port, family */
static int tcp_getsockname(lua_State *L) { return sock_name(L, 0); }

/* client:getpeername() -> ip, port, family */
static int tcp_getpeername(lua_State *L) { return sock_name(L, 1); }

/* client:shutdown(["both" | "send" | "receive"]) -> 1 */
static int tcp_shutdown(lua_State *L) {
  sockobj *s = check_open(L, 1);
  static const char *const hows[] = {"receive", "send", "both", NULL};
  static const int how[] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
  shutdown(s->fd, how[luaL_checkoption(L, 2, "both", hows)]);
  lua_pushinteger(L, 1);
  return 1;
}

static void closesock(sockobj *s) {
  if (s->fd >= 0)
    close(s->fd);
  s->fd = -1;
  free(s->buf);
  s->buf = NULL;
  s->pos = s->len = s->cap = 0;
}

/* Closes s: threads blocked on it are woken (the shutdown ends their
** polls too) and return "closed"; the descriptor goes once they left. */
static void close_woken(lua_State *L, sockobj *s) {
  if (s->fd >= 0 && s->h.busy > 0)
    shutdown(s->fd, SHUT_RDWR);
  gilua__handle_close(L, &s->h);
  closesock(s);
}

/* sock:close() -> 1 */
static int tcp_close(lua_State *L) {
  close_woken(L, check_sock(L, 1));
  lua_pushinteger(L, 1);
  return 1;
}

/* sock:getfd() -> integer; sock:dirty() -> boolean */
static int tcp_getfd(lua_State *L) {
  lua_pushinteger(L, check_sock(L, 1)->fd);
  return 1;
}

static int tcp_dirty(lua_State *L) {
  sockobj *s = check_sock(L, 1);
  lua_pushboolean(L, s->len > s->pos);
  return 1;
}

static int tcp_gc(lua_State *L) {
  sockobj *s = check_sock(L, 1);
  if (s->h.busy == 0) /* else an abandoned daemon uses it at lua_close */
    closesock(s);
  return 0;
}

static int tcp_tostring(lua_State *L) {
  sockobj *s = check_sock(L, 1);
  lua_pushfstring(L, "tcp{%s}: %p%s", kindnames[s->kind], s,
                  s->fd < 0 ? " (closed)" : "");
  return 1;
}

/* }==================================================================== */

/* {====================================================================
** socket.select, gettime, sleep
** ===================================================================== */

/* Adds the sockets of table 'idx' to the poll set. */
static int collect(lua_State *L, int idx, struct pollfd *p, int n, int max,
                   short events, int *ready) {
  if (lua_isnoneornil(L, idx))
    return n;
  luaL_checktype(L, idx, LUA_TTABLE);
  for (lua_Integer i = 1;; i++) {
    if (lua_geti(L, idx, i) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    sockobj *s = luaL_testudata(L, -1, TCP);
    lua_pop(L, 1);
    if (s == NULL || s->fd < 0 || n >= max)
      continue;
    p[n].fd = s->fd;
    p[n].events = events;
    p[n].revents = 0;
    if (events == POLLIN && s->len > s->pos)
      *ready = 1; /* buffered data: readable now */
    n++;
  }
  return n;
}

/* Pushes the sockets of table 'idx' that poll reported ready. */
static void ready_set(lua_State *L, int idx, struct pollfd *p, int n) {
  lua_newtable(L);
  if (lua_isnoneornil(L, idx))
    return;
  int k = 0;
  for (lua_Integer i = 1;; i++) {
    if (lua_geti(L, idx, i) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    sockobj *s = luaL_testudata(L, -1, TCP);
    int ok = 0;
    if (s && s->fd >= 0) {
      if (p[0].events == POLLIN && s->len > s->pos)
        ok = 1;
      for (int j = 0; j < n && !ok; j++)
        ok = p[j].fd == s->fd &&
             (p[j].revents & (p[j].events | POLLHUP | POLLERR));
    }
    if (ok) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, ++k);
      lua_pushinteger(L, k);
      lua_rawset(L, -3);
    } else {
      lua_pop(L, 1);
    }
  }
}

/* socket.select(recvt, sendt [, timeout]) -> readable, writable [, err] */
static int sock_select(lua_State *L) {
  double t = luaL_optnumber(L, 3, -1);
  luaL_argcheck(L, t == t, 3, "timeout must be a number, not NaN");
  enum { MAXS = 1024 };
  struct pollfd *p = lua_newuserdatauv(L, sizeof(struct pollfd) * 2 * MAXS, 0);
  int ready = 0;
  int nr = collect(L, 1, p, 0, MAXS, POLLIN, &ready);
  int nw = collect(L, 2, p + MAXS, 0, MAXS, POLLOUT, &ready);
  /* one array for poll, in C memory: the reads, then the writes */
  gilua_box *box = gilua__box_new(L);
  struct pollfd *all = (struct pollfd *)gilua__box_grow(
      box, sizeof *all * (size_t)(nr + nw + 1));
  if (all == NULL)
    return gilua__nomem(L);
  memcpy(all, p, sizeof *all * (size_t)nr);
  memcpy(all + nr, p + MAXS, sizeof *all * (size_t)nw);
  int64_t deadline = ready ? 0 : t < 0 ? GILUA_FOREVER : gilua__deadline(t);
  int r = 0;
  if (!ready)
    r = gilua__poll(L, NULL, all, nr + nw, deadline, GILUA_RAISE) == 0;
  memcpy(p, all, sizeof *all * (size_t)nr);
  memcpy(p + MAXS, all + nr, sizeof *all * (size_t)nw);
  if (nr > 0)
    p[0].events = POLLIN;
  ready_set(L, 1, p, nr);
  ready_set(L, 2, p + MAXS, nw);
  if (r == 0 && !ready) {
    lua_pushliteral(L, "timeout");
    return 3;
  }
  return 2;
}

/* socket.gettime() -> seconds since the epoch */
static int sock_gettime(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}

/* socket.sleep(seconds): releases the GIL */
static int sock_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  if (s > 0)
    gilua__sleep(L, s > GILUA_TIMEOUT_MAX ? GILUA_TIMEOUT_MAX : s, GILUA_RAISE);
  return 0;
}

/* }==================================================================== */

static const luaL_Reg tcp_methods[] = {{"accept", tcp_accept},
                                       {"bind", tcp_bind},
                                       {"close", tcp_close},
                                       {"connect", tcp_connect},
                                       {"dirty", tcp_dirty},
                                       {"getfd", tcp_getfd},
                                       {"getpeername", tcp_getpeername},
                                       {"getsockname", tcp_getsockname},
                                       {"listen", tcp_listen},
                                       {"receive", tcp_receive},
                                       {"send", tcp_send},
                                       {"setoption", tcp_setoption},
                                       {"settimeout", tcp_settimeout},
                                       {"shutdown", tcp_shutdown},
                                       {NULL, NULL}};

static const luaL_Reg socket_funcs[] = {
    {"bind", sock_bind},     {"connect", sock_connect},
    {"tcp", sock_tcp},       {"tcp6", sock_tcp6},
    {"select", sock_select}, {"gettime", sock_gettime},
    {"sleep", sock_sleep},   {NULL, NULL}};

int gilua__open_socket(lua_State *L) {
  luaL_newmetatable(L, TCP);
  lua_newtable(L);
  luaL_setfuncs(L, tcp_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, tcp_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tcp_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, tcp_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, socket_funcs);
  lua_pushliteral(L, "gilua socket 1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}

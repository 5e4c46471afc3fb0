/*
** http.c: the http module over libcurl.
**
**   http.get(url [, {headers = {...}, timeout = s, connect_timeout = s,
**                    follow_redirects = b, verify = b}])
**   http.request{method =, url =, body =, headers =, timeout =, ...}
**   -> {status = n, body = s, headers = {lowercased-name = value}}
**   http.timeout, http.connect_timeout: the defaults, in seconds
**   (false: no limit)
**
** Each option is read once, with the GIL, into C memory (a boxed blob)
** before anything else is allocated, so a table whose __index answers
** differently the second time cannot make the C side disagree with what
** was checked.  Only http and https are allowed, for redirects too.  The
** transfer runs without the GIL on libcurl's multi interface, polling the
** thread's wake-up fd beside curl's own, so Ctrl-C ends it at once.
** libcurl's callbacks only append to malloc'd buffers; the Lua table is
** built afterwards.  curl_global_init runs once per process
** (pthread_once): it is process-wide by libcurl's own design.
**
** Failures raise http.TimeoutError, http.ConnectionError (refused,
** unknown host, reset, TLS) or http.Error (anything else), each carrying
** curl's message and comparing == to its named value; a response with
** any status (404 too) is a result, not an error.
*/

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "bindings.h"

#define DEFAULT_TIMEOUT 60.0
#define DEFAULT_CONNECT_TIMEOUT 10.0

static const char TIMEOUT = 0, CONNECTION = 0, ERROR = 0;

typedef struct membuf {
  char *p;
  size_t len, cap;
  int nomem;
} membuf;

static size_t append(membuf *m, const char *data, size_t n) {
  if (m->len + n + 1 > m->cap) {
    size_t ncap = m->cap ? m->cap : 4096;
    while (ncap < m->len + n + 1)
      ncap *= 2;
    char *np = realloc(m->p, ncap);
    if (np == NULL) {
      m->nomem = 1;
      return 0; /* makes curl fail the transfer */
    }
    m->p = np;
    m->cap = ncap;
  }
  memcpy(m->p + m->len, data, n);
  m->len += n;
  m->p[m->len] = '\0';
  return n;
}

static size_t on_data(char *data, size_t size, size_t n, void *ud) {
  return append(ud, data, size * n);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* The request, all in C: pointers into one boxed blob. */
typedef struct request {
  const char *url, *method, *body, *headers; /* headers: "k: v\0k: v\0\0" */
  size_t bodylen;
  double timeout, connect_timeout; /* <= 0: no limit */
  int follow, verify;
} request;

/* {====================================================================
** Reading the options (GIL held; may raise; nothing allocated in C yet)
** ===================================================================== */

enum {
  O_URL = 1,
  O_METHOD,
  O_BODY,
  O_HEADERS,
  O_TIMEOUT,
  O_CTIMEOUT,
  O_FOLLOW,
  O_VERIFY,
  O_N
};
static const char *const optnames[] = {
    NULL,      "url",     "method",          "body",
    "headers", "timeout", "connect_timeout", "follow_redirects",
    "verify"};

/* A number of seconds, false for no limit, or the module's default. */
static double seconds(lua_State *L, int v, const char *fname, const char *opt,
                      double def) {
  if (lua_isnil(L, v))
    return def;
  if (lua_isboolean(L, v) && !lua_toboolean(L, v))
    return 0;
  if (!lua_isnumber(L, v) || !(lua_tonumber(L, v) >= 0))
    luaL_error(L, "%s: '%s' must be a non-negative number or false", fname,
               opt);
  return lua_tonumber(L, v);
}

static double module_default(lua_State *L, const char *field, double def) {
  lua_getfield(L, lua_upvalueindex(1), field);
  double d = seconds(L, -1, "http", field, def);
  lua_pop(L, 1);
  return d;
}

/* Reads the options table at 'opts' (or nil) once: its values go to the
** stack slots base+O_* (base + O_URL is the url, already there), checked;
** the header lines become one string.  Then copies everything into one
** boxed blob and fills r.  The box stays on the stack. */
static void read_options(lua_State *L, int opts, int base, request *r,
                         const char *fname) {
  luaL_checkstack(L, O_N + 4, NULL);
  for (int i = O_METHOD; i < O_N; i++) {
    if (lua_isnil(L, opts))
      lua_pushnil(L);
    else
      lua_getfield(L, opts, optnames[i]); /* once each */
    lua_replace(L, base + i);
  }
  if (!lua_isstring(L, base + O_URL))
    luaL_error(L, "%s: 'url' must be a string", fname);
  for (int i = O_METHOD; i <= O_BODY; i++)
    if (!lua_isnil(L, base + i) && !lua_isstring(L, base + i))
      luaL_error(L, "%s: '%s' must be a string", fname, optnames[i]);
  if (!lua_isnil(L, base + O_HEADERS) && !lua_istable(L, base + O_HEADERS))
    luaL_error(L, "%s: 'headers' must be a table", fname);
  r->timeout = seconds(L, base + O_TIMEOUT, fname, "timeout",
                       module_default(L, "timeout", DEFAULT_TIMEOUT));
  r->connect_timeout =
      seconds(L, base + O_CTIMEOUT, fname, "connect_timeout",
              module_default(L, "connect_timeout", DEFAULT_CONNECT_TIMEOUT));
  r->follow =
      lua_isnil(L, base + O_FOLLOW) || lua_toboolean(L, base + O_FOLLOW);
  r->verify =
      lua_isnil(L, base + O_VERIFY) || lua_toboolean(L, base + O_VERIFY);
  lua_newtable(L); /* "name: value" for each header, each read once */
  int lines = lua_gettop(L), nl = 0;
  if (lua_istable(L, base + O_HEADERS)) {
    lua_pushnil(L);
    while (lua_next(L, base + O_HEADERS)) {
      if (!lua_isstring(L, -1) || !lua_isstring(L, -2))
        luaL_error(L, "%s: header names and values must be strings", fname);
      lua_pushvalue(L, -2); /* a copy of the key: lua_tolstring converts */
      const char *k = lua_tostring(L, -1), *v = lua_tostring(L, -2);
      if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n"))
        luaL_error(L, "%s: a header name or value contains a line break",
                   fname);
      lua_pushfstring(L, "%s: %s", k, v);
      lua_rawseti(L, lines, ++nl);
      lua_pop(L, 2);
    }
  }
  luaL_Buffer hb;
  luaL_buffinit(L, &hb);
  for (int i = 1; i <= nl; i++) {
    lua_rawgeti(L, lines, i);
    luaL_addvalue(&hb);
    luaL_addchar(&hb, '\0');
  }
  luaL_pushresult(&hb);
  size_t lens[O_HEADERS + 1], total = 0;
  const char *src[O_HEADERS + 1];
  for (int i = O_URL; i <= O_HEADERS; i++) {
    src[i] = i == O_HEADERS ? lua_tolstring(L, -1, &lens[i])
                            : lua_tolstring(L, base + i, &lens[i]);
    total += (src[i] ? lens[i] : 0) + 2;
  }
  gilua_box *box = gilua__box_new(L);
  if (gilua__box_grow(box, total) == NULL)
    gilua__nomem(L);
  char *q = box->p;
  const char **dst[O_HEADERS + 1] = {NULL, &r->url, &r->method, &r->body,
                                     &r->headers};
  for (int i = O_URL; i <= O_HEADERS; i++) {
    *dst[i] = NULL;
    if (src[i] == NULL || (i == O_HEADERS && lens[i] == 0))
      continue;
    memcpy(q, src[i], lens[i]);
    q[lens[i]] = q[lens[i] + 1] = '\0';
    *dst[i] = q;
    q += lens[i] + 2;
  }
  r->bodylen = src[O_BODY] ? lens[O_BODY] : 0;
}

/* Only http and https: file://, ftp:// and the rest are refused. */
static void check_scheme(lua_State *L, const char *url, const char *fname) {
  if (strncasecmp(url, "http://", 7) != 0 &&
      strncasecmp(url, "https://", 8) != 0)
    luaL_error(L, "%s: URL scheme not supported in '%s' (only http and https)",
               fname, url);
}

/* }==================================================================== */

/* Parses the last response's header block into a table on the top. */
static void push_headers(lua_State *L, const char *h) {
  lua_newtable(L);
  if (h == NULL)
    return;
  const char *last = h, *p; /* after redirects, only the final response */
  for (p = h; (p = strstr(p, "\r\n\r\n")) != NULL; p += 4)
    if (p[4] != '\0')
      last = p + 4;
  for (p = last; *p;) {
    const char *eol = strstr(p, "\r\n");
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    const char *colon = memchr(p, ':', n);
    if (colon) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *q = p; q < colon; q++)
        luaL_addchar(&b, (char)tolower((unsigned char)*q));
      luaL_pushresult(&b);
      const char *v = colon + 1;
      while (v < p + n && (*v == ' ' || *v == '\t'))
        v++;
      lua_pushlstring(L, v, (size_t)(p + n - v));
      lua_rawset(L, -3);
    }
    if (!eol)
      break;
    p = eol + 2;
  }
}

/* Runs the transfer of c without the GIL; curl's result, or
** CURLE_ABORTED_BY_CALLBACK when an interrupt stopped it (*intr set). */
static CURLcode transfer(lua_State *L, CURL *c, int *intr) {
  CURLM *m = curl_multi_init();
  *intr = 0;
  if (m == NULL)
    return CURLE_OUT_OF_MEMORY;
  CURLcode rc = CURLE_OK;
  curl_multi_add_handle(m, c);
  gilua_block b;
  gilua__block_begin(L, &b, NULL, GILUA_DROP_IO);
  int wfd = gilua__block_wakefd(&b), running = 1;
  *intr = 0;
  for (;;) {
    if (curl_multi_perform(m, &running) != CURLM_OK || !running)
      break;
    struct curl_waitfd w = {wfd, CURL_WAIT_POLLIN, 0};
    curl_multi_poll(m, &w, wfd >= 0 ? 1 : 0, 1000, NULL);
    if (w.revents && gilua__block_check(&b) != 0) {
      *intr = 1;
      rc = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
  }
  if (!*intr) {
    int left;
    CURLMsg *msg;
    rc = CURLE_GOT_NOTHING;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
      if (msg->msg == CURLMSG_DONE)
        rc = msg->data.result;
  }
  curl_multi_remove_handle(m, c);
  curl_multi_cleanup(m);
  gilua__block_end(&b);
  return rc;
}

/* Raises the named error for a failed transfer. */
static int raise_curl(lua_State *L, CURLcode rc, const char *errbuf,
                      const char *fname) {
  const char *text = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  lua_pushfstring(L, "%s: %s", fname, text);
  const char *msg = lua_tostring(L, -1);
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return gilua__raise_msg(L, &TIMEOUT, "http.TimeoutError", msg);
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
    return gilua__raise_msg(L, &CONNECTION, "http.ConnectionError", msg);
  default:
    return gilua__raise_msg(L, &ERROR, "http.Error", msg);
  }
}

static int perform(lua_State *L, request *r, const char *fname) {
  check_scheme(L, r->url, fname);
  pthread_once(&curl_once, curl_init);
  /* no Lua error from here until everything of curl's is freed */
  CURL *c = curl_easy_init();
  struct curl_slist *hl = NULL;
  int nomem = c == NULL;
  for (const char *h = r->headers; h && *h && !nomem; h += strlen(h) + 1) {
    struct curl_slist *n = curl_slist_append(hl, h);
    nomem = n == NULL;
    hl = n ? n : hl;
  }
  if (nomem) {
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return gilua__nomem(L);
  }
  membuf body = {0}, head = {0};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, r->url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, (long)r->follow);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, (long)r->verify);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "gilua/" GILUA_VERSION);
  if (r->timeout > 0)
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(r->timeout * 1000 + 0.5));
  if (r->connect_timeout > 0)
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(r->connect_timeout * 1000 + 0.5));
  if (hl)
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  if (r->body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->bodylen);
  }
  if (r->method) {
    if (strcmp(r->method, "HEAD") == 0)
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
  }
  int intr = 0;
  CURLcode rc = transfer(L, c, &intr);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(hl);
  if (intr || rc != CURLE_OK || body.nomem || head.nomem) {
    free(body.p);
    free(head.p);
    if (intr)
      gilua__check_interrupt(L);
    if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR)
      return gilua__nomem(L);
    return raise_curl(L, rc, errbuf, fname);
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, body.p ? body.p : "", body.len);
  lua_setfield(L, -2, "body");
  free(body.p);
  push_headers(L, head.p); /* may raise: head.p is freed after it */
  free(head.p);
  lua_setfield(L, -2, "headers");
  return 1;
}

/* http.get(url [, options]) -> {status, body, headers} */
static int http_get(lua_State *L) {
  luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  int base = lua_gettop(L); /* slots base + O_* */
  lua_settop(L, base + O_N - 1);
  lua_pushvalue(L, 1);
  lua_replace(L, base + O_URL);
  request r;
  read_options(L, 2, base, &r, "http.get");
  return perform(L, &r, "http.get");
}

/* http.request{method, url, body, headers, timeout, ...} */
static int http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int base = 1;
  lua_settop(L, base + O_N - 1);
  lua_getfield(L, 1, "url"); /* once */
  lua_replace(L, base + O_URL);
  request r;
  read_options(L, 1, base, &r, "http.request");
  return perform(L, &r, "http.request");
}

int gilua__open_http(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"get", http_get}, {"request", http_request}, {NULL, NULL}};
  luaL_newlibtable(L, funcs);
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, funcs, 1); /* the module, to read its defaults */
  lua_pushnumber(L, DEFAULT_TIMEOUT);
  lua_setfield(L, -2, "timeout");
  lua_pushnumber(L, DEFAULT_CONNECT_TIMEOUT);
  lua_setfield(L, -2, "connect_timeout");
  gilua__errvalue(L, &TIMEOUT, "http.TimeoutError");
  lua_setfield(L, -2, "TimeoutError");
  gilua__errvalue(L, &CONNECTION, "http.ConnectionError");
  lua_setfield(L, -2, "ConnectionError");
  gilua__errvalue(L, &ERROR, "http.Error");
  lua_setfield(L, -2, "Error");
  return 1;
}

/*
** http.c: the http module over libcurl.
**
**   http.get(url [, {headers = {...}, timeout = s, follow_redirects = b}])
**   http.request{method =, url =, body =, headers =, timeout =,
**                follow_redirects =}
**   -> {status = n, body = s, headers = {lowercased-name = value}}
**
** Everything the transfer needs is copied into C memory first, and the
** whole transfer (DNS, connect, TLS, waiting for the response) runs with
** the GIL released, so transfers from many threads overlap.  libcurl's
** callbacks only append to malloc'd buffers; the Lua table is built
** afterwards.  curl_global_init runs once per process (pthread_once): it
** is process-wide by libcurl's own design.  Failures raise an error with
** curl's message; TLS certificates are verified unless verify = false.
*/

#include <ctype.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "internal.h"

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

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  return append(ud, data, size * n);
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  return append(ud, data, size * n);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct request {
  char *url, *method, *body;
  size_t bodylen;
  struct curl_slist *headers;
  double timeout;
  int follow, verify;
} request;

static void free_request(request *r) {
  free(r->url);
  free(r->method);
  free(r->body);
  curl_slist_free_all(r->headers);
}

/* Checks the fields of the options table at 'idx': whatever raises, raises
** here, before read_options allocates anything. */
static void check_options(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx))
    return;
  luaL_checktype(L, idx, LUA_TTABLE);
  static const char *const strings[] = {"method", "body", NULL};
  for (int i = 0; strings[i]; i++) {
    int t = lua_getfield(L, idx, strings[i]);
    if (t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TNUMBER)
      luaL_error(L, "http: '%s' must be a string", strings[i]);
    lua_pop(L, 1);
  }
  int t = lua_getfield(L, idx, "timeout");
  if (t != LUA_TNIL && t != LUA_TNUMBER)
    luaL_error(L, "http: 'timeout' must be a number");
  t = lua_getfield(L, idx, "headers");
  if (t != LUA_TNIL && t != LUA_TTABLE)
    luaL_error(L, "http: 'headers' must be a table");
  if (t == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (!lua_isstring(L, -1) || !lua_isstring(L, -2))
        luaL_error(L, "http: header names and values must be strings");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

/* Reads the options table at 'idx' into r (C copies of everything);
** check_options has vetted it. */
static void read_options(lua_State *L, int idx, request *r) {
  if (lua_isnoneornil(L, idx))
    return;
  if (lua_getfield(L, idx, "method") != LUA_TNIL)
    r->method = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "body") != LUA_TNIL) {
    const char *b = lua_tolstring(L, -1, &r->bodylen);
    r->body = malloc(r->bodylen + 1);
    if (r->body)
      memcpy(r->body, b, r->bodylen);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "timeout") != LUA_TNIL)
    r->timeout = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "follow_redirects") != LUA_TNIL)
    r->follow = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "verify") != LUA_TNIL)
    r->verify = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2); /* a copy of the key: lua_tolstring converts */
      const char *k = lua_tostring(L, -1);
      const char *v = lua_tostring(L, -2);
      size_t n = strlen(k) + strlen(v) + 3;
      char *line = malloc(n);
      if (line) {
        snprintf(line, n, "%s: %s", k, v);
        r->headers = curl_slist_append(r->headers, line);
        free(line);
      }
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
}

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

static int perform(lua_State *L, request *r, const char *fname) {
  pthread_once(&curl_once, curl_init);
  CURL *c = curl_easy_init();
  if (c == NULL) {
    free_request(r);
    return luaL_error(L, "%s: cannot start a transfer", fname);
  }
  membuf body = {0}, head = {0};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, r->url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, (long)r->follow);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, (long)r->verify);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, r->verify ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "gilua/" GILUA_VERSION);
  if (r->timeout > 0)
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(r->timeout * 1000));
  if (r->headers)
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
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
  CURLcode rc;
  GILUA__BLOCKING(L, GILUA_R_IO)
    rc = curl_easy_perform(c);
  GILUA__END_BLOCKING()
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  free_request(r);
  if (rc != CURLE_OK || body.nomem || head.nomem) {
    free(body.p);
    free(head.p);
    if (rc == CURLE_OK)
      return luaL_error(L, "%s: not enough memory", fname);
    lua_pushfstring(L, "%s: %s", fname,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return lua_error(L);
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_pushlstring(L, body.p ? body.p : "", body.len);
  lua_setfield(L, -2, "body");
  free(body.p);
  push_headers(L, head.p);
  free(head.p);
  lua_setfield(L, -2, "headers");
  return 1;
}

/* http.get(url [, options]) -> {status, body, headers} */
static int http_get(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  check_options(L, 2);
  request r = {0};
  r.follow = 1;
  r.verify = 1;
  read_options(L, 2, &r);
  r.url = strdup(url);
  return perform(L, &r, "http.get");
}

/* http.request{method, url, body, headers, timeout, follow_redirects} */
static int http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  if (lua_getfield(L, 1, "url") != LUA_TSTRING)
    return luaL_error(L, "http.request: 'url' must be a string");
  check_options(L, 1);
  request r = {0};
  r.follow = 1;
  r.verify = 1;
  read_options(L, 1, &r);
  r.url = strdup(lua_tostring(L, 2));
  return perform(L, &r, "http.request");
}

static const luaL_Reg http_funcs[] = {
    {"get", http_get}, {"request", http_request}, {NULL, NULL}};

int gilua__open_http(lua_State *L) {
  luaL_newlib(L, http_funcs);
  return 1;
}

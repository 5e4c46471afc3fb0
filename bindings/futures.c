/*
** futures.c: the futures module (Python's concurrent.futures): the
** Future of future.c and the ThreadPoolExecutor of executor.c.
*/

#include "bindings.h"

int gilua__open_futures(lua_State *L) {
  lua_newtable(L);
  gilua__open_future(L);
  gilua__open_executor(L);
  return 1;
}

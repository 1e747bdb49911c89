// Prints the route tables the dispatchers use, one "API METHOD PATTERN" a
// line: the management API's (AdminApi::routes) and the relay's
// (relay_routes). openapi_test.py compares them with docs/openapi/.
#include <cstdio>

#include "admin/admin_api.h"
#include "relay/routes.h"

int main() {
  for (const hut::net::Route& r : hut::admin::AdminApi::routes())
    std::printf("space-admin %s %s\n", r.method, r.pattern);
  for (const hut::net::Route& r : hut::relay::relay_routes())
    std::printf("relay %s %s\n", r.method, r.pattern);
  return 0;
}

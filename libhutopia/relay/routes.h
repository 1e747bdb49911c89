// The relay's HTTP routing: the table of every route its public listener
// serves, each with the function that handles it, and dispatch(), which runs
// a request through the table. A request that matches no route gets 404 (405
// when only the method differs) before any route code runs; a
// state-changing /api/v1/ call that another site could have forged gets its
// refusal (sessions.h) before its handler. docs/openapi/relay.json documents
// every route (test/openapi checks that both ways).
// Threads: dispatch() runs on a pool thread; the table is constant.
#ifndef HUTOPIA_RELAY_ROUTES_H_
#define HUTOPIA_RELAY_ROUTES_H_

#include <span>

#include "net/routes.h"
#include "net/server.h"
#include "relay/relay_state.h"

namespace hut::relay {

// The method and pattern of every route, in the table's order.
std::span<const net::Route> relay_routes();
// Whether a request hashes a password (a login or a sign-up): those run in
// their own lane of the thread pool ([limits] hash_workers).
bool hashes_password(std::string_view method, std::string_view path);
// The answer to one request.
net::HttpResponse dispatch(Call& call);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_ROUTES_H_

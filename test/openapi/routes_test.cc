// The route matcher that the dispatchers' tables rely on (net/routes.h).
#include "net/routes.h"

#include <doctest/doctest.h>

#include <string>

using hut::net::match_route;
using hut::net::path_matches;
using hut::net::Route;
using hut::net::RouteMatch;

TEST_CASE("routes: a pattern's parameters match one non-empty segment") {
  CHECK(path_matches("/", "/"));
  CHECK(path_matches("/api/v1/rooms", "/api/v1/rooms"));
  CHECK(path_matches("/api/v1/rooms/{room}", "/api/v1/rooms/lobby"));
  CHECK(path_matches("/api/v1/rooms/{room}/members/{user}", "/api/v1/rooms/a/members/b"));
  CHECK_FALSE(path_matches("/api/v1/rooms/{room}", "/api/v1/rooms/"));
  CHECK_FALSE(path_matches("/api/v1/rooms/{room}", "/api/v1/rooms"));
  CHECK_FALSE(path_matches("/api/v1/rooms/{room}", "/api/v1/rooms/a/b"));
  CHECK_FALSE(path_matches("/api/v1/rooms", "/api/v1/rooms/"));
  CHECK_FALSE(path_matches("/api/v1/rooms", "/api/v1/room"));
  CHECK_FALSE(path_matches("/api/v1/rooms", "api/v1/rooms"));
  CHECK_FALSE(path_matches("/", ""));
  CHECK_FALSE(path_matches("/web/{file}", "/web//x"));
}

TEST_CASE("routes: a table answers found, wrong method or none") {
  const Route table[] = {{"GET", "/a"}, {"POST", "/a"}, {"DELETE", "/a/{id}"}};
  std::string allowed;
  CHECK(match_route(table, "GET", "/a") == RouteMatch::kFound);
  CHECK(match_route(table, "HEAD", "/a") == RouteMatch::kFound);
  CHECK(match_route(table, "DELETE", "/a/7") == RouteMatch::kFound);
  CHECK(match_route(table, "PUT", "/a", &allowed) == RouteMatch::kWrongMethod);
  CHECK(allowed == "GET or POST");
  CHECK(match_route(table, "HEAD", "/a/7", &allowed) == RouteMatch::kWrongMethod);
  CHECK(allowed == "DELETE");
  CHECK(match_route(table, "GET", "/b") == RouteMatch::kNone);
  CHECK(match_route(table, "GET", "/a/7/x") == RouteMatch::kNone);
}

#include "net/routes.h"

#include <vector>

namespace hut::net {

bool path_matches(std::string_view pattern, std::string_view path) {
  while (!pattern.empty() || !path.empty()) {
    if (pattern.empty() || path.empty() || pattern.front() != '/' || path.front() != '/') return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    size_t pe = pattern.find('/');
    size_t se = path.find('/');
    std::string_view pseg = pattern.substr(0, pe);
    std::string_view sseg = path.substr(0, se);
    bool param = pseg.size() >= 2 && pseg.front() == '{' && pseg.back() == '}';
    if (param ? sseg.empty() : pseg != sseg) return false;
    pattern.remove_prefix(pseg.size());
    path.remove_prefix(sseg.size());
  }
  return true;
}

RouteMatch match_route(std::span<const Route> routes, std::string_view method, std::string_view path,
                       std::string* allowed) {
  std::string_view want = method == "HEAD" ? std::string_view("GET") : method;
  std::vector<std::string_view> methods;
  for (const Route& r : routes) {
    if (!path_matches(r.pattern, path)) continue;
    if (want == r.method) return RouteMatch::kFound;
    methods.emplace_back(r.method);
  }
  if (methods.empty()) return RouteMatch::kNone;
  if (allowed != nullptr) {
    allowed->clear();
    for (size_t i = 0; i < methods.size(); ++i) {
      if (i != 0) *allowed += i + 1 == methods.size() ? " or " : ", ";
      *allowed += methods[i];
    }
  }
  return RouteMatch::kWrongMethod;
}

}  // namespace hut::net

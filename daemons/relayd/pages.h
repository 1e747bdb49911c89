// The relay's own web pages besides the login form: the profile page, the
// space directory and their scripts and style, embedded from web/. Thread
// safety: any thread (the assets are constant data).
#pragma once

#include <optional>
#include <string>

#include "net/server.h"

namespace hut::relay {

// The page or asset for a GET or HEAD of `path`, or nullopt when the path is
// none of them (the caller goes on with its other routes).
std::optional<net::HttpResponse> web_page(const std::string& method, const std::string& path);

}  // namespace hut::relay

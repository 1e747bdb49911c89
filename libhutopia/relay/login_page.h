// The login page a space sends browsers to (contract section 5): GET /login
// shows the form (or, for a signed-in user, the confirmation of the space's
// address, or a redirect with a token when that address is confirmed), POST
// /login logs in, registers or confirms, then redirects to the space's
// return address with #token=<relay token>.
//
// The pages are HTML templates embedded from login/ (layout.html around
// login.html, confirm.html or error.html); every value put in them is
// HTML-escaped. Threads: pool threads.
#ifndef HUTOPIA_RELAY_LOGIN_PAGE_H_
#define HUTOPIA_RELAY_LOGIN_PAGE_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/server.h"
#include "relay/relay_state.h"

namespace hut::relay {

// Fills the embedded template `name` ("login.html"): {{key}} gets the value
// HTML-escaped, {{{key}}} as it is (HTML made by another template). An
// unknown key becomes "". Empty when there is no such template.
std::string render_template(std::string_view name,
                            const std::vector<std::pair<std::string_view, std::string>>& values);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_LOGIN_PAGE_H_

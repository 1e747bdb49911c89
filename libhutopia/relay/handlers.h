// The functions that answer the relay's routes, each defined in the file of
// its part (web_pages.cc, directory.cc, login_page.cc, accounts.cc,
// sessions.cc) and listed with its method and pattern in routes.cc's table.
// Threads: pool threads (see routes.h).
#ifndef HUTOPIA_RELAY_HANDLERS_H_
#define HUTOPIA_RELAY_HANDLERS_H_

#include "net/server.h"
#include "relay/relay_state.h"

namespace hut::relay {

net::HttpResponse get_web_page(Call& call);  // a page or a /web/ file; 404 for any other name
net::HttpResponse get_openapi(Call& call);
net::HttpResponse get_jwks(Call& call);
net::HttpResponse get_spaces(Call& call);
net::HttpResponse post_spaces(Call& call);
net::HttpResponse get_space(Call& call);
net::HttpResponse patch_space(Call& call);
net::HttpResponse post_space_tokens(Call& call);
net::HttpResponse get_login(Call& call);
net::HttpResponse post_login(Call& call);
net::HttpResponse post_accounts(Call& call);
net::HttpResponse get_me(Call& call);
net::HttpResponse patch_me(Call& call);
net::HttpResponse put_avatar(Call& call);
net::HttpResponse get_avatar(Call& call);
net::HttpResponse get_user(Call& call);
net::HttpResponse post_sessions(Call& call);
net::HttpResponse delete_sessions(Call& call);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_HANDLERS_H_

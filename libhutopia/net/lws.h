// The one way libhutopia includes libwebsockets: uv.h must come first, or the
// libuv parts of the lws API are not declared.
#ifndef HUTOPIA_NET_LWS_H_
#define HUTOPIA_NET_LWS_H_

// clang-format off
#include <uv.h>
#include <libwebsockets.h>
// clang-format on

#endif  // HUTOPIA_NET_LWS_H_

#include "net/frame.h"

#include <cstring>

#include "net/lws.h"

namespace hut::net {

size_t OutFrame::headroom() { return LWS_PRE; }

std::shared_ptr<OutFrame> OutFrame::text(std::string_view payload) {
  std::unique_ptr<unsigned char[]> data(new unsigned char[LWS_PRE + payload.size() + 1]);
  if (!payload.empty()) std::memcpy(data.get() + LWS_PRE, payload.data(), payload.size());
  data[LWS_PRE + payload.size()] = 0;
  return std::shared_ptr<OutFrame>(new OutFrame(std::move(data), payload.size()));
}

std::shared_ptr<OutFrame> OutFrame::concat(std::initializer_list<std::string_view> pieces) {
  size_t size = 0;
  for (std::string_view p : pieces) size += p.size();
  std::unique_ptr<unsigned char[]> data(new unsigned char[LWS_PRE + size + 1]);
  unsigned char* at = data.get() + LWS_PRE;
  for (std::string_view p : pieces) {
    if (!p.empty()) std::memcpy(at, p.data(), p.size());
    at += p.size();
  }
  *at = 0;
  return std::shared_ptr<OutFrame>(new OutFrame(std::move(data), size));
}

}  // namespace hut::net

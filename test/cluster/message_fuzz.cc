// Fuzzes the parser of the messages nodes read from their Redis channel; a
// message it accepts must encode and parse again to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cluster/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  hut::Result<hut::cluster::Message> m = hut::cluster::parse_message(text);
  if (!m.ok()) return 0;
  hut::Result<hut::cluster::Message> again = hut::cluster::parse_message(hut::cluster::encode_message(*m));
  if (!again.ok() || again->node != m->node || again->kind != m->kind || again->users != m->users ||
      again->user != m->user || again->online != m->online || again->target != m->target ||
      again->target_id != m->target_id || again->frame != m->frame)
    std::abort();
  return 0;
}

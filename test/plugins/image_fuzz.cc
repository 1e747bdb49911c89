// Feeds arbitrary bytes to the chat plugin's image header parser, which reads
// every uploaded file. Nothing may crash or read out of bounds, and a size it
// reports is at least 1x1 with the type of a format it knows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "../../plugins/chat/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint32_t w = 0, h = 0;
  chat_image_format f = chat_image_probe(data, size, &w, &h);
  if (f != CHAT_IMAGE_NONE && (w == 0 || h == 0 || chat_image_type(f) == nullptr)) std::abort();
  if (f == CHAT_IMAGE_NONE && chat_image_type(f) != nullptr) std::abort();
  return 0;
}

// The chat plugin's image header parser on small real headers and cut ones.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "../../plugins/chat/image.h"

namespace {

chat_image_format probe(const std::string& bytes, uint32_t* w, uint32_t* h) {
  return chat_image_probe(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), w, h);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

}  // namespace

TEST_CASE("chat image: the size of PNG, GIF, JPEG and WebP headers; anything else is no image") {
  uint32_t w = 0, h = 0;
  std::string png =
      std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(1920) + be32(1080) + "xxxxx";
  CHECK(probe(png, &w, &h) == CHAT_IMAGE_PNG);
  CHECK((w == 1920 && h == 1080));
  for (size_t cut = 0; cut < 24; ++cut) CHECK(probe(png.substr(0, cut), &w, &h) == CHAT_IMAGE_NONE);

  std::string gif = std::string("GIF89a") + std::string("\x40\x01\xc8\x00", 4);
  CHECK(probe(gif, &w, &h) == CHAT_IMAGE_GIF);
  CHECK((w == 320 && h == 200));

  // SOI, an APP0 segment of 16 bytes, then SOF0: precision, height 600, width 800.
  std::string jpeg = std::string("\xff\xd8\xff\xe0\x00\x10", 6) + std::string(14, 'j') +
                     std::string("\xff\xc0\x00\x11\x08\x02\x58\x03\x20", 9) + std::string(12, '\0');
  CHECK(probe(jpeg, &w, &h) == CHAT_IMAGE_JPEG);
  CHECK((w == 800 && h == 600));
  // A length that points past the end, or a zero-length segment, is no image.
  CHECK(probe(std::string("\xff\xd8\xff\xe0\xff\xff", 6) + "abc", &w, &h) == CHAT_IMAGE_NONE);
  CHECK(probe(std::string("\xff\xd8\xff\xe0\x00\x00", 6), &w, &h) == CHAT_IMAGE_NONE);

  // VP8X: canvas width-1 and height-1 in 24 bits each.
  std::string webp = std::string("RIFF") + std::string("\x00\x00\x00\x00", 4) + "WEBPVP8X" +
                     std::string("\x0a\x00\x00\x00\x00\x00\x00\x00", 8) +
                     std::string("\x3f\x01\x00\xef\x00\x00", 6) + std::string(4, '\0');
  CHECK(probe(webp, &w, &h) == CHAT_IMAGE_WEBP);
  CHECK((w == 320 && h == 240));

  CHECK(probe("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", &w, &h) == CHAT_IMAGE_NONE);
  CHECK(probe("", &w, &h) == CHAT_IMAGE_NONE);
  // A zero width is no image.
  std::string zero = std::string("GIF87a") + std::string("\x00\x00\x10\x00", 4);
  CHECK(probe(zero, &w, &h) == CHAT_IMAGE_NONE);
}

/* The dimensions of an image from its first bytes: PNG, JPEG, GIF and WebP.
 * Pure functions, no allocation; any thread. Fuzzed by test/fuzz (image). */
#ifndef HUTOPIA_CHAT_IMAGE_H_
#define HUTOPIA_CHAT_IMAGE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum chat_image_format {
  CHAT_IMAGE_NONE = 0,
  CHAT_IMAGE_PNG,
  CHAT_IMAGE_JPEG,
  CHAT_IMAGE_GIF,
  CHAT_IMAGE_WEBP
} chat_image_format;

/* Reads the format and size from the first `len` bytes of a file (the whole
 * file, or its first 64 KiB). RETURNS the format with *width and *height set
 * (both 1 or more), or CHAT_IMAGE_NONE when the bytes are not one of the four
 * formats or hold no size within `len`. */
chat_image_format chat_image_probe(const unsigned char* data, size_t len, uint32_t* width, uint32_t* height);

/* The media type of a format ("image/png", ...), NULL for CHAT_IMAGE_NONE. */
const char* chat_image_type(chat_image_format format);

#ifdef __cplusplus
}
#endif

#endif /* HUTOPIA_CHAT_IMAGE_H_ */

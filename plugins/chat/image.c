#include "image.h"

#include <string.h>

static uint32_t be16(const unsigned char* p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t be32(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint32_t le16(const unsigned char* p) { return ((uint32_t)p[1] << 8) | p[0]; }
static uint32_t le24(const unsigned char* p) { return ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0]; }
static uint32_t le32(const unsigned char* p) { return ((uint32_t)p[3] << 24) | le24(p); }

static chat_image_format done(chat_image_format f, uint32_t w, uint32_t h, uint32_t* width,
                              uint32_t* height) {
  if (w == 0 || h == 0) return CHAT_IMAGE_NONE;
  *width = w;
  *height = h;
  return f;
}

/* PNG: the signature, then the IHDR chunk first with width and height. */
static chat_image_format png(const unsigned char* d, size_t n, uint32_t* w, uint32_t* h) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 24 || memcmp(d, sig, 8) != 0 || memcmp(d + 12, "IHDR", 4) != 0) return CHAT_IMAGE_NONE;
  uint32_t width = be32(d + 16), height = be32(d + 20);
  if (width > 0x7fffffffu || height > 0x7fffffffu) return CHAT_IMAGE_NONE;
  return done(CHAT_IMAGE_PNG, width, height, w, h);
}

/* GIF: "GIF87a" or "GIF89a", then the logical screen width and height. */
static chat_image_format gif(const unsigned char* d, size_t n, uint32_t* w, uint32_t* h) {
  if (n < 10 || (memcmp(d, "GIF87a", 6) != 0 && memcmp(d, "GIF89a", 6) != 0)) return CHAT_IMAGE_NONE;
  return done(CHAT_IMAGE_GIF, le16(d + 6), le16(d + 8), w, h);
}

/* JPEG: segments from SOI on until a start-of-frame marker (SOF0-SOF15 but
 * DHT, JPG and DAC), which holds height then width. */
static chat_image_format jpeg(const unsigned char* d, size_t n, uint32_t* w, uint32_t* h) {
  if (n < 4 || d[0] != 0xff || d[1] != 0xd8) return CHAT_IMAGE_NONE;
  size_t i = 2;
  while (i + 4 <= n) {
    if (d[i] != 0xff) return CHAT_IMAGE_NONE;
    unsigned char marker = d[i + 1];
    if (marker == 0xff) { /* fill byte */
      i += 1;
      continue;
    }
    if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { /* no length */
      i += 2;
      continue;
    }
    if (marker == 0xd9 || marker == 0xda) return CHAT_IMAGE_NONE; /* end, or scan data before a frame */
    uint32_t seg = be16(d + i + 2);
    if (seg < 2) return CHAT_IMAGE_NONE;
    if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
      if (seg < 7 || i + 9 > n) return CHAT_IMAGE_NONE;
      return done(CHAT_IMAGE_JPEG, be16(d + i + 7), be16(d + i + 5), w, h);
    }
    i += 2 + (size_t)seg;
  }
  return CHAT_IMAGE_NONE;
}

/* WebP: a RIFF "WEBP" file whose first chunk is VP8 (lossy), VP8L
 * (lossless) or VP8X (extended). */
static chat_image_format webp(const unsigned char* d, size_t n, uint32_t* w, uint32_t* h) {
  if (n < 30 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WEBP", 4) != 0) return CHAT_IMAGE_NONE;
  const unsigned char* c = d + 12;
  if (memcmp(c, "VP8 ", 4) == 0) {
    /* frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height */
    if (c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a) return CHAT_IMAGE_NONE;
    return done(CHAT_IMAGE_WEBP, le16(c + 14) & 0x3fff, le16(c + 16) & 0x3fff, w, h);
  }
  if (memcmp(c, "VP8L", 4) == 0) {
    if (c[8] != 0x2f) return CHAT_IMAGE_NONE;
    uint32_t bits = le32(c + 9);
    return done(CHAT_IMAGE_WEBP, (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1, w, h);
  }
  if (memcmp(c, "VP8X", 4) == 0) {
    return done(CHAT_IMAGE_WEBP, le24(c + 12) + 1, le24(c + 15) + 1, w, h);
  }
  return CHAT_IMAGE_NONE;
}

chat_image_format chat_image_probe(const unsigned char* data, size_t len, uint32_t* width, uint32_t* height) {
  if (data == NULL || width == NULL || height == NULL) return CHAT_IMAGE_NONE;
  chat_image_format f = png(data, len, width, height);
  if (f == CHAT_IMAGE_NONE) f = gif(data, len, width, height);
  if (f == CHAT_IMAGE_NONE) f = jpeg(data, len, width, height);
  if (f == CHAT_IMAGE_NONE) f = webp(data, len, width, height);
  return f;
}

const char* chat_image_type(chat_image_format format) {
  switch (format) {
    case CHAT_IMAGE_PNG:
      return "image/png";
    case CHAT_IMAGE_JPEG:
      return "image/jpeg";
    case CHAT_IMAGE_GIF:
      return "image/gif";
    case CHAT_IMAGE_WEBP:
      return "image/webp";
    default:
      return NULL;
  }
}

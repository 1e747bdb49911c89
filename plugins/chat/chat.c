/* chat: the space's chat. Its widget, <hut-chat>, is a chat client over the
 * bus's room ops; its files are web/, embedded in the library.
 *
 * Files (docs/chat.md, docs/contract.md section 9):
 *   widget {"action":"upload_ticket"} -> {"ticket","expires_at"}: one upload
 *     by this user within ticket_ttl seconds. Tickets are 256 random bits,
 *     kept in memory only, used once.
 *   POST /api/chat/files (Authorization: Bearer <ticket>, the file as the
 *     body, Content-Type, X-File-Name?) -> 201 {"id","url","type","size",
 *     "name"?,"width"?,"height"?}.
 *   GET /api/chat/files/<id> -> the file, with headers that run nothing.
 * A file is stored as <plugin data dir>/files/<id>, <id> being 128 random
 * bits in hex; its metadata is the key "file:<id>" of the plugin's store.
 * No name or path from a client reaches the file system.
 *
 * With a host of ABI 1.3 the upload body goes to a file as it arrives
 * (http_body_to_file, limit max_file), which is renamed into place, and a
 * download is read from disk as it is sent (http_respond_file).
 *
 * chat.toml: max_file (bytes, default 10 MiB), ticket_ttl (seconds, default
 * 60), max_tickets (outstanding tickets of the whole space, default 4096),
 * quota_per_user (bytes one user may have stored, default 1 GiB),
 * quota_total (bytes of all files, default 10 GiB). The bytes stored are
 * counted in the store's keys "usage:<user id>" and "usage:total". */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <errno.h>
#include <hutopia/plugin.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "image.h"

/* Made by scripts/embed_assets.py from web/. */
extern const size_t chat_assets_count;
extern const char* const chat_assets_paths[];
extern const char* const chat_assets_types[];
extern const unsigned char* const chat_assets_data[];
extern const size_t chat_assets_sizes[];

static const hut_widget_desc widgets[] = {{"hut-chat", "chat.js"}};

static hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR,
    .abi_minor = HUT_PLUGIN_ABI_MINOR,
    .name = "chat",
    .version = "1.0.0",
    .widgets = widgets,
    .widget_count = 1,
};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {
  descriptor.asset_count = chat_assets_count;
  descriptor.asset_paths = chat_assets_paths;
  descriptor.asset_types = chat_assets_types;
  descriptor.asset_data = chat_assets_data;
  descriptor.asset_sizes = chat_assets_sizes;
  return &descriptor;
}

#define TICKET_BYTES 32
#define ID_BYTES 16
#define MAX_NAME 255
#define MAX_TYPE 100
#define MAX_TICKETS_PER_USER 16
#define HEAD_BYTES (64 * 1024) /* what the image probe reads of a file */

typedef struct ticket {
  char value[TICKET_BYTES * 2 + 1];
  char* user;
  uint64_t expires_mono_ms;
} ticket;

static const hut_host* host;
static char files_dir[4096];
static uint64_t max_file = 10u << 20;
static uint64_t quota_per_user = (uint64_t)1 << 30;
static uint64_t quota_total = (uint64_t)10 << 30;
static int streaming; /* the host writes upload bodies to files (ABI 1.3) */
static uint64_t ticket_ttl_s = 60;
static size_t max_tickets = 4096;
static unsigned instances; /* spaces of this process that loaded the plugin */
static ticket* tickets;
static size_t ticket_count;

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int random_hex(char* out, size_t bytes) {
  unsigned char buf[64];
  if (bytes > sizeof buf) return HUT_EINVAL;
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(buf + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return HUT_EIO;
    }
    got += (size_t)n;
  }
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    out[2 * i] = hex[buf[i] >> 4];
    out[2 * i + 1] = hex[buf[i] & 15];
  }
  out[2 * bytes] = '\0';
  return HUT_OK;
}

static void drop_ticket(size_t i) {
  free(tickets[i].user);
  tickets[i] = tickets[--ticket_count];
}

static void expire_tickets(void) {
  uint64_t now = mono_ms();
  for (size_t i = 0; i < ticket_count;) {
    if (tickets[i].expires_mono_ms <= now) {
      drop_ticket(i);
    } else {
      ++i;
    }
  }
}

/* Compares without stopping at the first difference. */
static int same_secret(const char* a, const char* b, size_t len) {
  unsigned char diff = 0;
  for (size_t i = 0; i < len; ++i) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

static int json_reply(hut_plugin* self, uint64_t id, cJSON* obj) {
  char* text = cJSON_PrintUnformatted(obj);
  cJSON_Delete(obj);
  if (text == NULL) return HUT_ENOMEM;
  int rc = host->reply(self, id, text, strlen(text));
  free(text);
  return rc;
}

static int issue_ticket(hut_plugin* self, const hut_widget_request* req) {
  if (files_dir[0] == '\0')
    return host->reply_error(self, req->request_id, "unavailable", "this space stores no files");
  expire_tickets();
  size_t mine = 0;
  for (size_t i = 0; i < ticket_count; ++i)
    if (strcmp(tickets[i].user, req->user->id) == 0) ++mine;
  if (mine >= MAX_TICKETS_PER_USER || ticket_count >= max_tickets)
    return host->reply_error(self, req->request_id, "rate_limited",
                             "too many upload tickets; try again shortly");
  ticket t;
  if (random_hex(t.value, TICKET_BYTES) != HUT_OK) return HUT_EIO;
  t.user = strdup(req->user->id);
  if (t.user == NULL) return HUT_ENOMEM;
  t.expires_mono_ms = mono_ms() + ticket_ttl_s * 1000u;
  tickets[ticket_count++] = t;
  cJSON* out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "ticket", t.value);
  cJSON_AddNumberToObject(out, "expires_at", (double)(wall_ms() + ticket_ttl_s * 1000u));
  return json_reply(self, req->request_id, out);
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  cJSON* data = cJSON_ParseWithLength(req->data_json, req->data_len);
  const cJSON* action = cJSON_GetObjectItemCaseSensitive(data, "action");
  int rc;
  if (cJSON_IsString(action) && strcmp(action->valuestring, "upload_ticket") == 0) {
    rc = issue_ticket(self, req);
  } else {
    rc = host->reply_error(self, req->request_id, "bad_request", "action must be \"upload_ticket\"");
  }
  cJSON_Delete(data);
  return rc;
}

/* ---- HTTP --------------------------------------------------------------- */

static const char* header(const hut_http_request* req, const char* name) {
  for (size_t i = 0; i < req->header_count; ++i)
    if (strcmp(req->headers[i].name, name) == 0) return req->headers[i].value;
  return NULL;
}

static int error(hut_plugin* self, uint64_t id, int status, const char* code, const char* message) {
  cJSON* e = cJSON_CreateObject();
  cJSON* inner = cJSON_AddObjectToObject(e, "error");
  cJSON_AddStringToObject(inner, "code", code);
  cJSON_AddStringToObject(inner, "message", message);
  char* text = cJSON_PrintUnformatted(e);
  cJSON_Delete(e);
  if (text == NULL) return HUT_ENOMEM;
  const hut_header h[] = {{"content-type", "application/json"}, {"cache-control", "no-store"}};
  int rc = host->http_respond(self, id, status, h, 2, text, strlen(text));
  free(text);
  return rc;
}

/* Takes the ticket of "Bearer <ticket>" when it is valid; its user (to free)
 * goes to *user. */
static int take_ticket(const char* authorization, char** user) {
  if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0) return HUT_EPERM;
  const char* value = authorization + 7;
  if (strlen(value) != TICKET_BYTES * 2) return HUT_EPERM;
  expire_tickets();
  for (size_t i = 0; i < ticket_count; ++i) {
    if (same_secret(tickets[i].value, value, TICKET_BYTES * 2)) {
      *user = tickets[i].user;
      tickets[i].user = NULL;
      drop_ticket(i);
      return HUT_OK;
    }
  }
  return HUT_EPERM;
}

/* The media type a client declared, lower case, without parameters, when it
 * is a plain type/subtype; otherwise application/octet-stream. */
static void clean_type(const char* declared, char* out, size_t outlen) {
  snprintf(out, outlen, "application/octet-stream");
  if (declared == NULL) return;
  char buf[MAX_TYPE + 1];
  size_t n = 0, slashes = 0;
  for (const char* p = declared; *p != '\0' && *p != ';'; ++p) {
    char c = *p;
    if (c == ' ' || c == '\t') continue;
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$&-^_.+", c) != NULL || c == '/';
    if (!ok || n >= MAX_TYPE) return;
    if (c == '/') ++slashes;
    buf[n++] = c;
  }
  buf[n] = '\0';
  if (slashes != 1 || buf[0] == '/' || buf[n - 1] == '/') return;
  snprintf(out, outlen, "%s", buf);
}

/* The display name a client gave: at most MAX_NAME bytes, no control
 * characters. It is metadata only: it never names a file on disk. */
static int clean_name(const char* given, char* out, size_t outlen) {
  size_t n = 0;
  if (given == NULL) return 0;
  for (const char* p = given; *p != '\0' && n + 1 < outlen && n < MAX_NAME; ++p) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f) continue;
    out[n++] = (char)c;
  }
  /* Do not end inside a UTF-8 sequence cut short. */
  while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80) --n;
  if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0) --n;
  out[n] = '\0';
  return n > 0;
}

static int valid_id(const char* id) {
  size_t n = strlen(id);
  if (n != ID_BYTES * 2) return 0;
  for (size_t i = 0; i < n; ++i)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return 0;
  return 1;
}

/* The bytes counted under a "usage:..." key; 0 when absent. */
static uint64_t usage_get(hut_plugin* self, const char* key) {
  char buf[32];
  size_t len = 0;
  if (host->kv_get(self, key, buf, sizeof buf - 1, &len) != HUT_OK || len >= sizeof buf) return 0;
  buf[len] = '\0';
  return strtoull(buf, NULL, 10);
}

static int usage_put(hut_plugin* self, const char* key, uint64_t value) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%" PRIu64, value);
  return host->kv_put(self, key, buf, (size_t)n);
}

/* Refuses (507 quota_exceeded) an upload of `size` bytes that would pass
 * quota_per_user or quota_total; RETURNS 1 when it answered. */
static int over_quota(hut_plugin* self, uint64_t request_id, const char* user, uint64_t size) {
  char key[1100], msg[300];
  snprintf(key, sizeof key, "usage:%s", user);
  uint64_t mine = usage_get(self, key), all = usage_get(self, "usage:total");
  if (mine + size > quota_per_user) {
    snprintf(msg, sizeof msg,
             "your files would pass your quota: %" PRIu64 " of %" PRIu64 " bytes used, this file has %" PRIu64
             " (chat.toml quota_per_user)",
             mine, quota_per_user, size);
  } else if (all + size > quota_total) {
    snprintf(msg, sizeof msg,
             "the space's files are at their quota (chat.toml quota_total); this file has %" PRIu64 " bytes",
             size);
  } else {
    return 0;
  }
  error(self, request_id, 507, "quota_exceeded", msg);
  return 1;
}

static void usage_add(hut_plugin* self, const char* user, uint64_t size) {
  char key[1100];
  snprintf(key, sizeof key, "usage:%s", user);
  if (usage_put(self, key, usage_get(self, key) + size) != HUT_OK ||
      usage_put(self, "usage:total", usage_get(self, "usage:total") + size) != HUT_OK)
    host->log(self, HUT_LOG_ERROR, "cannot count an upload against the quotas");
}

/* The first bytes of the body, for the image probe: from the body, or read
 * from the body's file. RETURNS how many. */
static size_t body_head(const hut_http_request* req, const char* file, unsigned char* out, size_t outlen) {
  if (file == NULL) {
    size_t n = req->body_len < outlen ? req->body_len : outlen;
    memcpy(out, req->body, n);
    return n;
  }
  FILE* f = fopen(file, "rb");
  if (f == NULL) return 0;
  size_t n = fread(out, 1, outlen, f);
  fclose(f);
  return n;
}

/* Puts the body at `path`: renames the host's file, or writes the bytes. */
static int store_body(const hut_http_request* req, const char* file, const char* path) {
  if (file != NULL) return rename(file, path) == 0;
  FILE* f = fopen(path, "wbx");
  int ok = f != NULL && fwrite(req->body, 1, req->body_len, f) == req->body_len;
  if (f != NULL && fclose(f) != 0) ok = 0;
  if (!ok && f != NULL) remove(path);
  return ok;
}

static int upload(hut_plugin* self, const hut_http_request* req) {
  const char* file = streaming ? req->body_file : NULL;
  char* user = NULL;
  if (take_ticket(header(req, "authorization"), &user) != HUT_OK)
    return error(self, req->request_id, 401, "unauthorized", "an unused upload ticket is needed");
  int rc;
  if (req->body_len == 0) {
    rc = error(self, req->request_id, 400, "bad_request", "the body is the file; it is empty");
    free(user);
    return rc;
  }
  if ((uint64_t)req->body_len > max_file) {
    rc = error(self, req->request_id, 413, "too_large", "the file is over chat.toml max_file");
    free(user);
    return rc;
  }
  if (over_quota(self, req->request_id, user, req->body_len)) {
    free(user);
    return HUT_OK;
  }
  char type[MAX_TYPE + 1], name[MAX_NAME + 1], id[ID_BYTES * 2 + 1], path[4200];
  clean_type(header(req, "content-type"), type, sizeof type);
  int has_name = clean_name(header(req, "x-file-name"), name, sizeof name);
  uint32_t width = 0, height = 0;
  unsigned char* head = malloc(HEAD_BYTES);
  size_t head_len = head ? body_head(req, file, head, HEAD_BYTES) : 0;
  chat_image_format format = head ? chat_image_probe(head, head_len, &width, &height) : CHAT_IMAGE_NONE;
  free(head);
  if (random_hex(id, ID_BYTES) != HUT_OK) {
    free(user);
    return error(self, req->request_id, 500, "internal", "no randomness");
  }
  snprintf(path, sizeof path, "%s/%s", files_dir, id);
  if (!store_body(req, file, path)) {
    host->log(self, HUT_LOG_ERROR, "cannot write an uploaded file");
    free(user);
    return error(self, req->request_id, 500, "internal", "cannot store the file");
  }
  char url[64];
  snprintf(url, sizeof url, "/api/chat/files/%s", id);
  cJSON* meta = cJSON_CreateObject();
  cJSON_AddStringToObject(meta, "type", type);
  cJSON_AddNumberToObject(meta, "size", (double)req->body_len);
  if (has_name) cJSON_AddStringToObject(meta, "name", name);
  cJSON_AddStringToObject(meta, "uploader", user);
  /* An image is one when its bytes say so, whatever type was declared. */
  if (format != CHAT_IMAGE_NONE) {
    cJSON_AddStringToObject(meta, "image", chat_image_type(format));
    cJSON_AddNumberToObject(meta, "width", width);
    cJSON_AddNumberToObject(meta, "height", height);
  }
  cJSON_AddNumberToObject(meta, "ts", (double)wall_ms());
  char* meta_text = cJSON_PrintUnformatted(meta);
  char key[80];
  snprintf(key, sizeof key, "file:%s", id);
  rc = meta_text ? host->kv_put(self, key, meta_text, strlen(meta_text)) : HUT_ENOMEM;
  free(meta_text);
  if (rc == HUT_OK) usage_add(self, user, req->body_len);
  free(user);
  if (rc != HUT_OK) {
    cJSON_Delete(meta);
    remove(path);
    return error(self, req->request_id, 500, "internal", "cannot record the file");
  }
  cJSON* out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "id", id);
  cJSON_AddStringToObject(out, "url", url);
  cJSON_AddStringToObject(out, "type", type);
  cJSON_AddNumberToObject(out, "size", (double)req->body_len);
  if (has_name) cJSON_AddStringToObject(out, "name", name);
  if (format != CHAT_IMAGE_NONE) {
    cJSON_AddNumberToObject(out, "width", width);
    cJSON_AddNumberToObject(out, "height", height);
  }
  cJSON_Delete(meta);
  char* text = cJSON_PrintUnformatted(out);
  cJSON_Delete(out);
  if (text == NULL) return HUT_ENOMEM;
  static const hut_header h[] = {{"content-type", "application/json"}, {"cache-control", "no-store"}};
  rc = host->http_respond(self, req->request_id, 201, h, 2, text, strlen(text));
  free(text);
  return rc;
}

/* Reads a file's metadata; NULL when unknown. */
static cJSON* file_meta(hut_plugin* self, const char* id) {
  if (!valid_id(id)) return NULL;
  char key[80], buf[2048];
  size_t len = 0;
  snprintf(key, sizeof key, "file:%s", id);
  if (host->kv_get(self, key, buf, sizeof buf - 1, &len) != HUT_OK || len >= sizeof buf) return NULL;
  buf[len] = '\0';
  return cJSON_Parse(buf);
}

/* Appends the percent-encoded UTF-8 name for filename*= (RFC 6266). */
static void encode_name(const char* name, char* out, size_t outlen) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (const unsigned char* p = (const unsigned char*)name; *p != '\0' && n + 4 < outlen; ++p) {
    unsigned char c = *p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
      out[n++] = (char)c;
    } else {
      out[n++] = '%';
      out[n++] = hex[c >> 4];
      out[n++] = hex[c & 15];
    }
  }
  out[n] = '\0';
}

static int download(hut_plugin* self, const hut_http_request* req, const char* id) {
  cJSON* meta = file_meta(self, id);
  if (meta == NULL) return error(self, req->request_id, 404, "not_found", "no such file");
  const cJSON* type = cJSON_GetObjectItemCaseSensitive(meta, "type");
  const cJSON* image = cJSON_GetObjectItemCaseSensitive(meta, "image");
  const cJSON* name = cJSON_GetObjectItemCaseSensitive(meta, "name");
  /* Inline only for an image whose bytes are of the type it was sent as:
   * png, jpeg, gif, webp. Everything else (svg, html, ...) is an attachment. */
  int inline_ok =
      cJSON_IsString(type) && cJSON_IsString(image) && strcmp(type->valuestring, image->valuestring) == 0;
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", files_dir, id);
  char disposition[1024], encoded[800];
  if (cJSON_IsString(name)) {
    encode_name(name->valuestring, encoded, sizeof encoded);
    snprintf(disposition, sizeof disposition, "%s; filename*=UTF-8''%s", inline_ok ? "inline" : "attachment",
             encoded);
  } else {
    snprintf(disposition, sizeof disposition, "%s", inline_ok ? "inline" : "attachment");
  }
  const hut_header h[] = {
      {"content-type", inline_ok ? type->valuestring
                                 : (cJSON_IsString(type) ? type->valuestring : "application/octet-stream")},
      {"content-disposition", disposition},
      {"x-content-type-options", "nosniff"},
      {"content-security-policy", "default-src 'none'; sandbox"},
      {"cross-origin-resource-policy", "same-origin"},
      {"cache-control", "private, max-age=31536000, immutable"},
  };
  if (HUT_HOST_HAS(host, http_respond_file)) {
    /* Read from disk as it is sent. */
    int rc = host->http_respond_file(self, req->request_id, 200, h, sizeof h / sizeof h[0], path);
    cJSON_Delete(meta);
    if (rc == HUT_ENOENT) return error(self, req->request_id, 404, "not_found", "no such file");
    return rc;
  }
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    cJSON_Delete(meta);
    return error(self, req->request_id, 404, "not_found", "no such file");
  }
  char* body = NULL;
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) body = malloc((size_t)size + 1);
  int ok = body != NULL && fread(body, 1, (size_t)size, f) == (size_t)size;
  fclose(f);
  if (!ok) {
    free(body);
    cJSON_Delete(meta);
    return error(self, req->request_id, 500, "internal", "cannot read the file");
  }
  int rc = host->http_respond(self, req->request_id, 200, h, sizeof h / sizeof h[0], body, (size_t)size);
  free(body);
  cJSON_Delete(meta);
  return rc;
}

static int on_http(hut_plugin* self, void* user_data, const hut_http_request* req) {
  (void)user_data;
  if (strcmp(req->path, "/files") == 0) {
    if (strcmp(req->method, "POST") != 0) return error(self, req->request_id, 405, "bad_request", "use POST");
    return upload(self, req);
  }
  if (strncmp(req->path, "/files/", 7) == 0) {
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
      return error(self, req->request_id, 405, "bad_request", "use GET");
    return download(self, req, req->path + 7);
  }
  return HUT_ENOENT;
}

/* A post that refers to files must name files this space stores. */
static int on_post(hut_plugin* self, void* user_data, hut_post* post) {
  (void)user_data;
  if (post->data_json == NULL) return HUT_OK;
  cJSON* data = cJSON_Parse(post->data_json);
  const cJSON* files = cJSON_GetObjectItemCaseSensitive(data, "files");
  int rc = HUT_OK;
  if (files != NULL) {
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) > 20) {
      rc = HUT_EPERM;
    } else {
      const cJSON* f;
      cJSON_ArrayForEach(f, files) {
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(f, "id");
        cJSON* meta = cJSON_IsString(id) ? file_meta(self, id->valuestring) : NULL;
        if (meta == NULL) rc = HUT_EPERM;
        cJSON_Delete(meta);
        if (rc != HUT_OK) break;
      }
    }
    if (rc != HUT_OK) post->refusal = "data.files must list files uploaded to this space (at most 20)";
  }
  cJSON_Delete(data);
  return rc;
}

static int config_uint(const cJSON* config, const char* key, uint64_t lo, uint64_t hi, uint64_t* out,
                       char* err, size_t errlen) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(config, key);
  if (v == NULL) return HUT_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
      v->valuedouble != (double)(uint64_t)v->valuedouble) {
    snprintf(err, errlen, "chat.toml: `%s` must be an integer from %" PRIu64 " to %" PRIu64, key, lo, hi);
    return HUT_EINVAL;
  }
  *out = (uint64_t)v->valuedouble;
  return HUT_OK;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  host = h;
  max_file = 10u << 20;
  ticket_ttl_s = 60;
  uint64_t max_t = 4096;
  cJSON* config = cJSON_Parse(config_json);
  int rc = config_uint(config, "max_file", 1, (uint64_t)1 << 34, &max_file, err, errlen);
  if (rc == HUT_OK) rc = config_uint(config, "ticket_ttl", 1, 3600, &ticket_ttl_s, err, errlen);
  if (rc == HUT_OK) rc = config_uint(config, "max_tickets", 1, 1000000, &max_t, err, errlen);
  quota_per_user = (uint64_t)1 << 30;
  quota_total = (uint64_t)10 << 30;
  if (rc == HUT_OK)
    rc = config_uint(config, "quota_per_user", 1, (uint64_t)1 << 50, &quota_per_user, err, errlen);
  if (rc == HUT_OK) rc = config_uint(config, "quota_total", 1, (uint64_t)1 << 50, &quota_total, err, errlen);
  cJSON_Delete(config);
  if (rc != HUT_OK) return rc;
  /* The plugin's state is per process: two spaces in one process share the
   * ticket table, made by the first and freed by the last fini. */
  if (tickets == NULL) {
    max_tickets = (size_t)max_t;
    tickets = calloc(max_tickets, sizeof *tickets);
    ticket_count = 0;
    if (tickets == NULL) return HUT_ENOMEM;
  }

  files_dir[0] = '\0';
  const char* dir = HUT_HOST_HAS(host, data_dir) ? host->data_dir(self) : NULL;
  if (dir != NULL) {
    snprintf(files_dir, sizeof files_dir, "%s/files", dir);
    if (mkdir(files_dir, 0700) != 0 && errno != EEXIST) {
      host->log(self, HUT_LOG_ERROR, "cannot create the files folder; uploads are off");
      files_dir[0] = '\0';
    }
  } else {
    host->log(self, HUT_LOG_WARN, "the space gives no data folder; uploads are off");
  }
  /* Bodies up to max_file go to a file as they arrive, not into memory. */
  streaming = files_dir[0] != '\0' && HUT_HOST_HAS(host, http_body_to_file) &&
              host->http_body_to_file(self, "POST", "/files", max_file) == HUT_OK;

  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  hooks.on_http = on_http;
  hooks.on_post = on_post;
  rc = host->register_hooks(self, &hooks, sizeof hooks);
  if (rc != HUT_OK) {
    if (instances == 0) {
      free(tickets);
      tickets = NULL;
    }
    return rc;
  }
  ++instances;
  return rc;
}

HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  (void)self;
  if (instances > 0 && --instances > 0) return;
  for (size_t i = 0; i < ticket_count; ++i) free(tickets[i].user);
  free(tickets);
  tickets = NULL;
  ticket_count = 0;
}

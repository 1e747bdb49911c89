/* moderation: a word filter for room posts. Its configuration, moderation.toml
 * beside the library, names the words and what happens to a post holding one:
 *
 *   words = ["spam", "scam"]   # matched case-insensitively (ASCII), anywhere in the text
 *   action = "refuse"          # "refuse": the poster gets forbidden with `reason`;
 *                              # "mask": each matched word is replaced by '*'s and the post is stored
 *   reason = "..."             # optional, the refusal's message
 *
 * Without words the plugin lets every post through. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <hutopia/plugin.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 256

static const hut_host* host;
static char* words[MAX_WORDS];
static size_t word_count;
static int mask_mode;
static char* reason;
static char* masked; /* the rewritten text of the last post; the space copies it */

static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .name = "moderation",
    .version = "1.0.0",
};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

/* A malloc'd copy of s (strdup is not in C11); NULL when out of memory. */
static char* copy_text(const char* s) {
  size_t n = strlen(s) + 1;
  char* out = malloc(n);
  if (out != NULL) memcpy(out, s, n);
  return out;
}

/* Where `word` (lower case) starts in text, ignoring ASCII case; NULL when absent. */
static const char* find_word(const char* text, const char* word) {
  size_t n = strlen(word);
  for (const char* p = text; *p != '\0'; ++p) {
    size_t i = 0;
    while (i < n && p[i] != '\0' && tolower((unsigned char)p[i]) == (unsigned char)word[i]) ++i;
    if (i == n) return p;
  }
  return NULL;
}

static int on_post(hut_plugin* self, void* user_data, hut_post* post) {
  (void)self;
  (void)user_data;
  int hit = 0;
  for (size_t w = 0; w < word_count; ++w)
    if (find_word(post->text, words[w]) != NULL) hit = 1;
  if (!hit) return HUT_OK;
  if (!mask_mode) {
    post->refusal = reason;
    return HUT_EPERM;
  }
  free(masked);
  masked = copy_text(post->text);
  if (masked == NULL) return HUT_ENOMEM;
  for (size_t w = 0; w < word_count; ++w) {
    size_t n = strlen(words[w]);
    for (char* p = (char*)find_word(masked, words[w]); p != NULL; p = (char*)find_word(p + n, words[w]))
      memset(p, '*', n);
  }
  post->text = masked;
  return HUT_OK;
}

static void clear(void) {
  for (size_t i = 0; i < word_count; ++i) free(words[i]);
  word_count = 0;
  free(reason);
  reason = NULL;
  free(masked);
  masked = NULL;
}

static int fail(char* err, size_t errlen, const char* why) {
  if (err != NULL && errlen > 0) {
    strncpy(err, why, errlen - 1);
    err[errlen - 1] = '\0';
  }
  clear();
  return HUT_EINVAL;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  host = h;
  clear();
  mask_mode = 0;
  cJSON* config = config_json != NULL ? cJSON_Parse(config_json) : NULL;
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(config, "words");
  const cJSON* action = cJSON_GetObjectItemCaseSensitive(config, "action");
  const cJSON* why = cJSON_GetObjectItemCaseSensitive(config, "reason");
  if (list != NULL && !cJSON_IsArray(list)) {
    cJSON_Delete(config);
    return fail(err, errlen, "words must be a list of strings");
  }
  const cJSON* w = NULL;
  cJSON_ArrayForEach(w, list) {
    if (!cJSON_IsString(w) || w->valuestring[0] == '\0' || word_count == MAX_WORDS) {
      cJSON_Delete(config);
      return fail(err, errlen, "words must be at most 256 non-empty strings");
    }
    char* copy = copy_text(w->valuestring);
    if (copy == NULL) {
      cJSON_Delete(config);
      return fail(err, errlen, "out of memory");
    }
    for (char* p = copy; *p != '\0'; ++p) *p = (char)tolower((unsigned char)*p);
    words[word_count++] = copy;
  }
  if (action != NULL) {
    if (cJSON_IsString(action) && strcmp(action->valuestring, "mask") == 0) {
      mask_mode = 1;
    } else if (!cJSON_IsString(action) || strcmp(action->valuestring, "refuse") != 0) {
      cJSON_Delete(config);
      return fail(err, errlen, "action must be \"refuse\" or \"mask\"");
    }
  }
  reason = copy_text(cJSON_IsString(why) ? why->valuestring
                                         : "the message holds a word this space does not allow");
  cJSON_Delete(config);
  hut_hooks hooks = {0};
  hooks.on_post = on_post;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  (void)self;
  clear();
}

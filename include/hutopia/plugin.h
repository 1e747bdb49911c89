/* The Hutopia plugin ABI.
 *
 * A plugin is a shared library that exports three C symbols:
 *
 *   const hut_plugin_descriptor* hut_plugin_describe(void);      required
 *   int  hut_plugin_init(const hut_host* host, hut_plugin* self,
 *                        const char* config_json, char* err, size_t errlen);  required
 *   void hut_plugin_fini(hut_plugin* self);                        optional
 *
 * The space calls hut_plugin_describe first and reads the descriptor, which is
 * plain data. It checks the ABI version in it before it calls anything else:
 * a plugin built for another major version, or for a newer minor version than
 * the space knows, is refused without running any of its code. The space then
 * calls hut_plugin_init once, on the loop thread, with its host table. The
 * plugin talks to the space only through that table and hands the space its
 * hooks with host->register_hooks. hut_plugin_fini is called once before the
 * library is closed (unload, reload, shutdown), also on the loop thread.
 *
 * Versioning: HUT_PLUGIN_ABI_MAJOR changes when something existing changes
 * (never planned). HUT_PLUGIN_ABI_MINOR grows when something is added at the
 * end of a struct. The host table and the hooks struct only ever grow at the
 * end; a plugin checks a function newer than ABI 1.0 with HUT_HOST_HAS before
 * calling it.
 *
 * Built against and requires (ABI 1.5): the descriptor's abi_major.abi_minor
 * say which header the plugin was built against; its requires_abi says the
 * oldest space it runs on. A plugin rebuilt against a newer header that uses
 * nothing newer than, say, 1.1 without checking (HUT_HOST_HAS for functions,
 * HUT_HOST_AT_LEAST for fields of the structs the space hands it) sets
 * requires_abi = HUT_PLUGIN_ABI(1, 1) and loads in every space from 1.5 on
 * whose minor is at least 1. Without requires_abi the two are the same, as
 * before 1.5.
 *
 * Each function below states:
 *   OWNERSHIP  who owns what is passed. Strings passed in either direction are
 *              borrowed for the duration of the call unless said otherwise.
 *   THREAD     the thread that may call it. "loop" is the space's event loop
 *              thread, where every hook, timer and init/fini runs.
 *   RETURNS    0 on success, or a negative HUT_E* code; host->strerror gives
 *              its text.
 *
 * The header is pure C11 with standard includes only. */
#ifndef HUTOPIA_PLUGIN_H_
#define HUTOPIA_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HUT_PLUGIN_ABI_MAJOR 1
#define HUT_PLUGIN_ABI_MINOR 5
/* The version as one number, as carried in hut_host.abi_version. */
#define HUT_PLUGIN_ABI_VERSION ((uint32_t)((HUT_PLUGIN_ABI_MAJOR << 16) | HUT_PLUGIN_ABI_MINOR))
#define HUT_PLUGIN_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define HUT_PLUGIN_ABI_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)
/* A version as one number, for hut_plugin_descriptor.requires_abi (ABI 1.5). */
#define HUT_PLUGIN_ABI(major, minor) ((uint32_t)(((uint32_t)(major) << 16) | (uint32_t)(minor)))

/* Marks the exported entry points when a plugin is built with hidden
 * visibility. */
#if defined(_WIN32)
#define HUT_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define HUT_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define HUT_PLUGIN_EXPORT
#endif

/* ---- Error codes ------------------------------------------------------- */

/* Host functions and hooks return 0 or one of these. The bus error code a
 * client sees when a hook fails is given in brackets. */
enum {
  HUT_OK = 0,
  HUT_EINVAL = -1,    /* an argument is malformed (bad_request) */
  HUT_ENOENT = -2,    /* no such thing: request, key, timer (not_found) */
  HUT_ENOMEM = -3,    /* out of memory (internal) */
  HUT_ESTATE = -4,    /* not possible in this state, e.g. already answered (internal) */
  HUT_EEXIST = -5,    /* it exists already (conflict) */
  HUT_ERANGE = -6,    /* the buffer given is too small (internal) */
  HUT_ETOOBIG = -7,   /* over a size limit (too_large) */
  HUT_EPERM = -8,     /* not allowed (forbidden) */
  HUT_EUNAVAIL = -9,  /* try again later (unavailable) */
  HUT_EIO = -10,      /* storage or the operating system failed (internal) */
  HUT_ENOTSUP = -11,  /* this host does not do that (internal) */
  HUT_EINTERNAL = -12 /* a bug (internal) */
};

/* The text of a HUT_E* code ("unknown error" for others); the same text
 * host->strerror gives. OWNERSHIP: a static string. THREAD: any. */
static inline const char* hut_strerror(int code) {
  switch (code) {
    case HUT_OK:
      return "success";
    case HUT_EINVAL:
      return "invalid argument";
    case HUT_ENOENT:
      return "not found";
    case HUT_ENOMEM:
      return "out of memory";
    case HUT_ESTATE:
      return "not possible in this state";
    case HUT_EEXIST:
      return "already exists";
    case HUT_ERANGE:
      return "buffer too small";
    case HUT_ETOOBIG:
      return "too large";
    case HUT_EPERM:
      return "not allowed";
    case HUT_EUNAVAIL:
      return "unavailable";
    case HUT_EIO:
      return "input/output error";
    case HUT_ENOTSUP:
      return "not supported";
    case HUT_EINTERNAL:
      return "internal error";
    default:
      return "unknown error";
  }
}

/* Log levels for host->log. */
enum { HUT_LOG_DEBUG = 0, HUT_LOG_INFO = 1, HUT_LOG_WARN = 2, HUT_LOG_ERROR = 3 };

/* Targets of host->send_widget_event. */
typedef enum hut_target {
  HUT_TARGET_SESSION = 0, /* one bus session, by session id */
  HUT_TARGET_USER = 1,    /* every session of a user, by user id */
  HUT_TARGET_ROOM = 2,    /* every online session of every member of a room */
  HUT_TARGET_EVERYONE = 3 /* every session of the space; target_id is ignored */
} hut_target;

/* ---- The descriptor ---------------------------------------------------- */

/* One custom element the plugin provides. Plugins give arrays of it, so its
 * layout is fixed for ABI major 1 (a later minor would add a parallel array). */
typedef struct hut_widget_desc {
  const char* tag;    /* custom element name, e.g. "hut-counter" (must contain '-') */
  const char* script; /* its ES module, a path among the plugin's assets
                         ("widget.js"); served at /plugins/<name>/<script> */
} hut_widget_desc;

/* What a plugin is, as plain data. The first two fields are read before any
 * other, so that a plugin of another ABI is refused before the rest of the
 * struct is trusted. OWNERSHIP: all of it belongs to the plugin and must stay
 * valid and unchanged until the library is closed (static data). */
typedef struct hut_plugin_descriptor {
  uint32_t abi_major; /* HUT_PLUGIN_ABI_MAJOR of the header built against */
  uint32_t abi_minor; /* HUT_PLUGIN_ABI_MINOR of the header built against */
  const char* name;   /* must equal the file name without ".so"; [a-z0-9_-], 1-64 chars */
  const char* version;
  /* Names of plugins that must be loaded before this one; NULL-terminated,
   * or NULL for none. */
  const char* const* requires_plugins;
  const hut_widget_desc* widgets; /* widget_count entries, or NULL */
  size_t widget_count;
  /* Embedded assets, served at /plugins/<name>/<path>: asset_count entries
   * in parallel arrays, as scripts/embed_assets.py generates them. Paths are
   * relative with "/" separators; content types are full header values. */
  size_t asset_count;
  const char* const* asset_paths;
  const char* const* asset_types;
  const unsigned char* const* asset_data;
  const size_t* asset_sizes;

  /* ABI 1.5: the oldest space the plugin runs on, HUT_PLUGIN_ABI(1, m) with
   * m <= abi_minor; 0 (also when an initializer leaves it out) means
   * abi_major.abi_minor. A space of ABI 1.5 or later loads a plugin built
   * against a newer minor than its own when this is at most its version;
   * older spaces read only abi_minor and refuse such a plugin. */
  uint32_t requires_abi;
} hut_plugin_descriptor;

/* ---- What hooks receive ------------------------------------------------ */

/* The space's handle of one loaded plugin instance. Opaque. Valid from the
 * call of hut_plugin_init until hut_plugin_fini returns (or until init fails). */
typedef struct hut_plugin hut_plugin;

typedef struct hut_user {
  const char* id;
  const char* name;
  const char* avatar; /* may be NULL */
} hut_user;

/* A `widget` op from a bus session: {"op":"widget","plugin":...,"data":...}. */
typedef struct hut_widget_request {
  uint64_t request_id; /* answer it with host->reply or host->reply_error */
  const char* session_id;
  const hut_user* user;  /* a pointer, so that hut_user can grow */
  const char* data_json; /* the op's `data` as JSON text; "null" when absent */
  size_t data_len;       /* strlen(data_json) */
} hut_widget_request;

/* One HTTP header. Passed in arrays, so its layout is fixed for ABI major 1. */
typedef struct hut_header {
  const char* name; /* lower case in requests */
  const char* value;
} hut_header;

/* An HTTP request for /api/<plugin>/<path>. */
typedef struct hut_http_request {
  uint64_t request_id; /* answer it with host->http_respond */
  const char* method;  /* "GET", "POST", ... */
  const char* path;    /* what follows /api/<plugin>, starting with "/" */
  const char* query;   /* without "?"; "" when none */
  const hut_header* headers;
  size_t header_count;
  const char* body; /* body_len bytes, NUL-terminated */
  size_t body_len;
  const char* x_request_id;
  /* ABI 1.3, set only by a host that has http_body_to_file (check with
   * HUT_HOST_HAS before reading it): for a route given to http_body_to_file,
   * the temporary file under the plugin's data dir that holds the whole body
   * (body is then "" and body_len the file's size); NULL otherwise. The plugin
   * may rename() it into place during the call or before it answers; the
   * space removes it when the request ends if it is still there. */
  const char* body_file;
  /* ABI 1.5, set only by a host of ABI 1.5 or later (check with
   * HUT_HOST_AT_LEAST(host, 5) before reading them): the query as name/value
   * pairs in the order sent, each split at its first "=" and percent-decoded
   * ("a%26b=c%3Dd" is the one pair "a&b" = "c=d"); a name without "=" has
   * the value "". `query` above stays the decoded pairs joined with "&". */
  const hut_header* query_params;
  size_t query_param_count;
} hut_http_request;

/* A room post about to be stored (hooks.on_post). The plugin may rewrite it by
 * pointing text or data_json at its own strings, which the space copies when
 * the hook returns. */
typedef struct hut_post {
  const char* room;
  const hut_user* from;
  const char* text;
  const char* data_json; /* NULL when the post has no data */
  /* Set by a plugin that refuses the post (the hook returns HUT_EPERM); the
   * client's error carries it. Borrowed until the hook returns. */
  const char* refusal;
} hut_post;

/* The hooks a plugin may set. Pass it to host->register_hooks with its
 * sizeof; fields a plugin leaves NULL are not called. Every hook runs on the
 * loop thread and must not block. OWNERSHIP: everything a hook receives is
 * borrowed for the duration of the call; copy what you keep. */
typedef struct hut_hooks {
  void* user_data; /* handed back to every hook */

  /* A `widget` op for this plugin. Answer now or later with host->reply /
   * host->reply_error. RETURNS 0 when the request is taken; a negative code
   * when it is refused: the space then answers with the matching bus error
   * code (see the error codes) unless the hook already answered. */
  int (*on_widget)(hut_plugin* self, void* user_data, const hut_widget_request* req);

  /* An HTTP request for /api/<plugin>/...; answer now or later with
   * host->http_respond. RETURNS 0, or a negative code: the space then answers
   * with a JSON error and the matching status (400, 404, 403, 409, 413, 503,
   * 500) unless the hook already answered. */
  int (*on_http)(hut_plugin* self, void* user_data, const hut_http_request* req);

  /* Room hooks: a member joined or left (left includes kicks), a user's
   * first session opened or last one closed. */
  void (*on_member_joined)(hut_plugin* self, void* user_data, const char* room, const hut_user* user);
  void (*on_member_left)(hut_plugin* self, void* user_data, const char* room, const hut_user* user);
  void (*on_user_online)(hut_plugin* self, void* user_data, const hut_user* user);
  void (*on_user_offline)(hut_plugin* self, void* user_data, const hut_user* user);
  /* RETURNS 0 to let the (possibly rewritten) post be stored, HUT_EPERM to
   * refuse it (with post->refusal set): the poster gets `forbidden` with the
   * refusal as its message. */
  int (*on_post)(hut_plugin* self, void* user_data, hut_post* post);

  /* ABI 1.4 (a host older than 1.4 never calls it): a bus session that was
   * welcomed has closed; `session_id` is the id its widget requests carried.
   * Lets a plugin end what it holds for that one session (the user may still
   * have other sessions open). */
  void (*on_session_closed)(hut_plugin* self, void* user_data, const char* session_id, const hut_user* user);
} hut_hooks;

typedef void (*hut_callback)(hut_plugin* self, void* arg);

/* The end of an asynchronous room call (ABI 1.1): `status` is 0 or a negative
 * code; `json` (json_len bytes, NUL-terminated) is the result on success and
 * "" otherwise. OWNERSHIP: json is borrowed for the call. Not called when the
 * plugin was unloaded or reloaded meanwhile. THREAD: loop. */
typedef void (*hut_room_done)(hut_plugin* self, void* arg, int status, const char* json, size_t json_len);

/* ---- The host table ---------------------------------------------------- */

/* What the space offers a plugin. OWNERSHIP: the table belongs to the space
 * and stays valid until hut_plugin_fini returns. THREAD: every function may
 * be called only on the loop thread (from init, a hook, a timer or a posted
 * callback), except post, strerror and log, which any thread may call. */
typedef struct hut_host {
  uint32_t abi_version; /* HUT_PLUGIN_ABI_VERSION of the space */
  uint32_t size;        /* sizeof(hut_host) of the space; see HUT_HOST_HAS */

  /* Writes a line to the space's log, prefixed with the plugin's name.
   * OWNERSHIP: message borrowed. THREAD: any. */
  void (*log)(hut_plugin* self, int level, const char* message);

  /* hut_strerror, for plugins in languages that cannot use the header's
   * inline function. OWNERSHIP: the result is a static string. THREAD: any. */
  const char* (*strerror)(int code);

  /* Answers a pending widget request with {"op":"ok","ref":R,"data":<data>}.
   * `data_json` (data_len bytes) must be valid JSON. RETURNS HUT_ENOENT when
   * the request is not pending for this plugin (answered already, past its
   * deadline, or its session closed: the answer is dropped), HUT_EINVAL for
   * NULL data or data that is not JSON (the request stays pending: answer it
   * again). A request not answered within the space's [limits]
   * plugin_timeout is answered `unavailable` by the space. */
  int (*reply)(hut_plugin* self, uint64_t request_id, const char* data_json, size_t data_len);

  /* Answers a pending widget request with
   * {"op":"error","ref":R,"code":<code>,"message":<message>}. `code` is one
   * of the bus error codes (bad_request, forbidden, not_found, conflict, ...).
   * RETURNS as reply. */
  int (*reply_error)(hut_plugin* self, uint64_t request_id, const char* code, const char* message);

  /* Sends {"op":"widget","plugin":<this plugin>,"data":<data>} to a session,
   * a user's sessions, a room's online members, or everyone. `target_id` is
   * the session, user or room id (ignored for HUT_TARGET_EVERYONE). RETURNS
   * HUT_EINVAL for a bad target, HUT_ENOENT when the space knows no such
   * session, user or room. */
  int (*send_widget_event)(hut_plugin* self, hut_target target, const char* target_id, const char* data_json,
                           size_t data_len);

  /* Asks the sessions of a user to show a notification:
   * {"op":"notify","plugin","title","body"?,"url"?}. body and url may be NULL.
   * RETURNS HUT_EINVAL without a user or title. */
  int (*notify)(hut_plugin* self, const char* user_id, const char* title, const char* body, const char* url);

  /* The plugin's own key-value store, kept across restarts and reloads.
   * Keys are non-empty strings of at most 1024 bytes; values are bytes of any
   * length up to 16 MiB.
   *
   * kv_get copies the value of `key` into buf (at most buflen bytes) and sets
   * *value_len to its full length; when it fits and there is room, a NUL
   * follows the value. RETURNS HUT_ENOENT when the key is absent, HUT_ERANGE
   * when buflen < *value_len (call again with a bigger buffer), HUT_EIO. */
  int (*kv_get)(hut_plugin* self, const char* key, void* buf, size_t buflen, size_t* value_len);
  /* Stores value (value_len bytes) under key. The value is visible to kv_get
   * at once; it is written to the space's store on its writer thread and is
   * durable once that commit is done, shortly after the call returns. A commit
   * that fails is logged and counted (hutopia_plugin_kv_failed_writes_total).
   * RETURNS HUT_EINVAL, HUT_ETOOBIG, HUT_EIO (the store is closed). */
  int (*kv_put)(hut_plugin* self, const char* key, const void* value, size_t value_len);
  /* RETURNS HUT_ENOENT when the key was absent, HUT_EIO. */
  int (*kv_delete)(hut_plugin* self, const char* key);

  /* Sets the plugin's hooks, replacing earlier ones. `hooks_size` is
   * sizeof(hut_hooks) as the plugin knows it: fields past it count as NULL.
   * OWNERSHIP: the struct is copied; user_data is the plugin's. RETURNS
   * HUT_EINVAL for NULL or a size smaller than ABI 1.0's struct. */
  int (*register_hooks)(hut_plugin* self, const hut_hooks* hooks, size_t hooks_size);

  /* Completes a pending HTTP request. The space adds X-Hutopia-Plugin and
   * X-Request-Id. OWNERSHIP: everything copied. RETURNS HUT_ENOENT when the
   * request is not pending for this plugin (answered already, or past its
   * deadline: the space answered 504), HUT_EINVAL for a status outside
   * 100-599 (the request stays pending). */
  int (*http_respond)(hut_plugin* self, uint64_t request_id, int status, const hut_header* headers,
                      size_t header_count, const char* body, size_t body_len);

  /* Adds an asset at run time, served at /plugins/<plugin>/<path> like the
   * descriptor's. OWNERSHIP: path, type and data are copied. RETURNS
   * HUT_EINVAL for a path that is empty, absolute, or holds "..", "\" or a
   * NUL; HUT_EEXIST when the path is taken. */
  int (*register_asset)(hut_plugin* self, const char* path, const char* content_type, const void* data,
                        size_t size);

  /* Starts a timer on the loop: cb(self, arg) runs after timeout_ms, then
   * every repeat_ms when repeat_ms > 0 (a one-shot timer ends after it fired).
   * *timer_id (may be NULL) receives an id for timer_stop. Timers end when the
   * plugin is unloaded. RETURNS HUT_EINVAL without cb. */
  int (*timer_start)(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms, hut_callback cb, void* arg,
                     uint64_t* timer_id);
  /* Stops a timer; its callback does not run again. RETURNS HUT_ENOENT for an
   * unknown or finished timer. */
  int (*timer_stop)(hut_plugin* self, uint64_t timer_id);

  /* Runs cb(self, arg) on the loop thread soon. The one function meant for
   * the plugin's own threads. THREAD: any, until hut_plugin_fini returns;
   * fini must stop the threads that may call it. Callbacks still queued when
   * the plugin is unloaded are dropped (arg is then the plugin's to free, in
   * fini). RETURNS HUT_EINVAL without cb, HUT_ESTATE after fini began. */
  int (*post)(hut_plugin* self, hut_callback cb, void* arg);

  /* ---- ABI 1.1: rooms. Check with HUT_HOST_HAS before use. ---- */

  /* Posts to a room as the plugin's bot user {"id":"plugin:<name>","name":
   * "<name>"}; the message reaches the members like any other post. The
   * on_post hooks of the other plugins see it first and may rewrite or refuse
   * it (the posting plugin's own on_post is not called). `data_json` may be
   * NULL. done (may be NULL) gets {"seq":N,"ts":T} after the post is durable.
   * OWNERSHIP: everything copied. RETURNS HUT_EINVAL, HUT_ENOENT for no such
   * room, HUT_ETOOBIG for text over 16 KiB (also after a rewrite), HUT_EPERM
   * when a plugin's on_post refused it (the reason is logged), HUT_ESTATE when
   * called from inside an on_post hook, HUT_ENOTSUP in a space without rooms. */
  int (*room_post)(hut_plugin* self, const char* room, const char* text, const char* data_json,
                   hut_room_done done, void* arg);

  /* Reads up to `limit` (1-200) messages before seq `before` (0: the
   * newest); done gets {"messages":[...],"more":bool} as the history op
   * answers it. RETURNS HUT_EINVAL, HUT_ENOENT, HUT_ENOTSUP. */
  int (*room_history)(hut_plugin* self, const char* room, uint64_t before, int limit, hut_room_done done,
                      void* arg);

  /* Copies the room's members, a JSON array [{id,name,role,online,muted}],
   * into buf like kv_get: *json_len gets the full length; a NUL follows when
   * there is room. RETURNS HUT_ENOENT for no such room, HUT_ERANGE when buf
   * is too small, HUT_ENOTSUP. */
  int (*room_members)(hut_plugin* self, const char* room, char* buf, size_t buflen, size_t* json_len);

  /* ---- ABI 1.2: files. Check with HUT_HOST_HAS before use. ---- */

  /* The plugin's own folder for files, <data_dir>/plugins/<name> of the
   * space, created when missing; the same across restarts and reloads.
   * OWNERSHIP: the string belongs to the space and stays valid until
   * hut_plugin_fini returns. RETURNS NULL when the space has no data dir or
   * cannot create the folder (the reason is logged). */
  const char* (*data_dir)(hut_plugin* self);

  /* ---- ABI 1.3: large bodies. Check with HUT_HOST_HAS before use. ---- */

  /* Requests `method` /api/<plugin><path> (exact path) may carry a body of up
   * to max_bytes instead of the space's general limit: the space writes it as
   * it arrives into a temporary file under <data_dir>/.incoming, answers 413
   * (and removes the file) once it passes max_bytes, and hands the request
   * over with body_file set. Calling again for a route replaces its limit.
   * OWNERSHIP: copied. RETURNS HUT_EINVAL, HUT_EUNAVAIL without a data dir. */
  int (*http_body_to_file)(hut_plugin* self, const char* method, const char* path, uint64_t max_bytes);
  /* Answers like http_respond with the content of the file at `path` as the
   * body, read from disk as the connection takes it (never whole in memory).
   * RETURNS as http_respond, and HUT_ENOENT when the file cannot be opened
   * (the request stays pending). */
  int (*http_respond_file)(hut_plugin* self, uint64_t request_id, int status, const hut_header* headers,
                           size_t header_count, const char* path);

  /* ---- ABI 1.4: session tokens. Check with HUT_HOST_HAS before use. ---- */

  /* Mints a token with which a program the plugin starts can enter this
   * space as the user of the bus session `session_id`: an app token (HS256,
   * signed with the space's [auth] app_secret) with `aud` this space, `sub`
   * and `name` the session's user, a fresh `jti` (single use, like every
   * token), living ttl_s seconds (0: 60 s; more than 300 s or the space's
   * max_token_lifetime is HUT_EINVAL). The session must be open and welcomed (it entered
   * with a valid token). The token is copied into buf like kv_get: *token_len
   * gets its length; a NUL follows when there is room. OWNERSHIP: the token
   * is a secret that lets its holder act as the user once: pass it on in the
   * environment of a process, never in its command line or a log. RETURNS
   * HUT_EINVAL, HUT_ENOENT when no welcomed session has that id, HUT_ERANGE
   * when buf is too small (that token is dropped unused: call again with a
   * buffer of at least *token_len + 1 bytes), HUT_EUNAVAIL when the space has no app secret. */
  int (*mint_session_token)(hut_plugin* self, const char* session_id, uint32_t ttl_s, char* buf,
                            size_t buflen, size_t* token_len);

  /* ---- ABI 1.5: error codes, instance data, releases. Check with
   * HUT_HOST_HAS before use. ---- */

  /* Answers a pending widget request with an error like reply_error, the
   * bus error code being that of a HUT_E* code as a hook's refusal gets it
   * (HUT_EINVAL bad_request, HUT_ENOENT not_found, HUT_EPERM forbidden,
   * HUT_EEXIST conflict, HUT_ETOOBIG too_large, HUT_EUNAVAIL unavailable,
   * others internal). `message` may be NULL: the code's text is sent.
   * RETURNS as reply, and HUT_EINVAL for a code that is not negative. */
  int (*reply_error_code)(hut_plugin* self, uint64_t request_id, int code, const char* message);

  /* The instance's own pointer: set it in init (or later), get it back from
   * any callback with instance_data(self). The space never reads or frees
   * it; it is NULL until set and lives until hut_plugin_fini returns (fini
   * frees what it points to). A reload starts a new instance with NULL.
   * THREAD: set_instance_data on the loop; instance_data on any thread once
   * set (set it before starting threads that read it). RETURNS HUT_EINVAL
   * without self. */
  int (*set_instance_data)(hut_plugin* self, void* data);
  void* (*instance_data)(hut_plugin* self);

  /* timer_start, post, room_post and room_history with a release callback
   * for `arg`: release(self, arg) runs exactly once, on the loop thread,
   * when the space lets go of arg, whichever way that happens: after the
   * callback ran for the last time (a one-shot timer fired, a room call's
   * done ran, a posted callback ran), after timer_stop, or when the space
   * drops the callback without running it (the plugin is unloaded,
   * reloaded or shut down, or its init fails). At such an end, the timers
   * and room calls are released before hut_plugin_fini is called; callbacks
   * posted but not yet run are released after fini returns (fini stops the
   * threads that post), before the library is closed. When the function
   * itself fails, neither the callback nor release runs: arg stays the
   * plugin's. `release` may be NULL: then these behave as the functions
   * without _ex. RETURNS as the functions without _ex. THREAD: as theirs
   * (post_ex any thread; release always on the loop). */
  int (*timer_start_ex)(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms, hut_callback cb, void* arg,
                        hut_callback release, uint64_t* timer_id);
  int (*post_ex)(hut_plugin* self, hut_callback cb, void* arg, hut_callback release);
  int (*room_post_ex)(hut_plugin* self, const char* room, const char* text, const char* data_json,
                      hut_room_done done, void* arg, hut_callback release);
  int (*room_history_ex)(hut_plugin* self, const char* room, uint64_t before, int limit, hut_room_done done,
                         void* arg, hut_callback release);

  /* Functions added in later minor versions go here, at the end. */
} hut_host;

/* True when the host table has `member` (it is inside the table the space
 * built, and set). Use it before calling a function newer than ABI 1.0. */
#define HUT_HOST_HAS(host, member)                                                                  \
  ((host) != NULL && (size_t)(host)->size >= offsetof(hut_host, member) + sizeof((host)->member) && \
   (host)->member != NULL)

/* True when the space's ABI has the same major as this header and a minor
 * of at least `minor` (ABI 1.5): use it before reading a field that a minor
 * added to a struct the space hands to a hook, such as
 * hut_http_request.query_params (5). */
#define HUT_HOST_AT_LEAST(host, minor)                                                            \
  ((host) != NULL && HUT_PLUGIN_ABI_VERSION_MAJOR((host)->abi_version) == HUT_PLUGIN_ABI_MAJOR && \
   HUT_PLUGIN_ABI_VERSION_MINOR((host)->abi_version) >= (uint32_t)(minor))

/* ---- The entry points -------------------------------------------------- */

/* Returns the plugin's descriptor. THREAD: loop. Must not have side effects:
 * it runs before the space decides whether to load the plugin. OWNERSHIP:
 * the descriptor is the plugin's static data. */
typedef const hut_plugin_descriptor* (*hut_plugin_describe_fn)(void);

/* Starts the plugin. `host` stays valid until fini returns; `self` is the
 * plugin's handle for every host call. `config_json` is the plugin's
 * <name>.toml as a JSON object ("{}" without one), borrowed for the call.
 * RETURNS 0, or a negative code with a message for a person written into err
 * (errlen bytes, NUL-terminated). A plugin whose init fails is not loaded,
 * its fini is not called: it releases what it took before returning; the
 * space ends the timers and drops the hooks and assets it registered.
 * THREAD: loop. */
typedef int (*hut_plugin_init_fn)(const hut_host* host, hut_plugin* self, const char* config_json, char* err,
                                  size_t errlen);

/* Stops the plugin: stop its threads, free what it holds. Pending requests
 * are answered by the space ("unavailable"). THREAD: loop. */
typedef void (*hut_plugin_fini_fn)(hut_plugin* self);

#define HUT_PLUGIN_DESCRIBE_SYMBOL "hut_plugin_describe"
#define HUT_PLUGIN_INIT_SYMBOL "hut_plugin_init"
#define HUT_PLUGIN_FINI_SYMBOL "hut_plugin_fini"

#ifdef __cplusplus
}
#endif

#endif /* HUTOPIA_PLUGIN_H_ */

// greeter: a plugin in C++ on top of <hutopia/plugin.hpp>.
//
// Bus: any `widget` request is answered {"greeting":"<greeting>, <user name>!",
// "count":N}, where N counts the greetings so far (kept in the plugin's
// key-value store), except {"reset":true}, which is refused `forbidden` (the
// count is reset through the management API, by removing the plugin's data).
// HTTP: GET /api/greeter/count answers {"count":N}. A timer logs the count
// once a minute. Configuration (greeter.toml):
//
//   greeting = "Good morning"
#include <cJSON.h>

#include <cstdlib>
#include <hutopia/plugin.hpp>
#include <memory>
#include <string>

namespace {

// Built against the current header; it calls only ABI 1.0 functions without
// checking (the wrapper checks the newer ones), so it requires 1.0: spaces
// from 1.5 on load it even when they are older than the header.
const hut_plugin_descriptor kDescriptor = {HUT_PLUGIN_ABI_MAJOR,
                                           HUT_PLUGIN_ABI_MINOR,
                                           "greeter",
                                           "1.0.0",
                                           nullptr,
                                           nullptr,
                                           0,
                                           0,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           HUT_PLUGIN_ABI(1, 0)};

using Json = std::unique_ptr<cJSON, decltype(&cJSON_Delete)>;

std::string print(const Json& json) {
  char* text = cJSON_PrintUnformatted(json.get());
  std::string out(text ? text : "null");
  cJSON_free(text);
  return out;
}

class Greeter : public hut::plugin::Plugin {
 public:
  int init(std::string_view config_json, std::string& error) override {
    Json config(cJSON_ParseWithLength(config_json.data(), config_json.size()), cJSON_Delete);
    const cJSON* greeting = cJSON_GetObjectItemCaseSensitive(config.get(), "greeting");
    if (greeting != nullptr && !cJSON_IsString(greeting)) {
      error = "greeter.toml: `greeting` must be a string";
      return HUT_EINVAL;
    }
    if (greeting != nullptr) greeting_ = greeting->valuestring;
    if (auto stored = host().kv_get("count")) count_ = std::strtoll(stored->c_str(), nullptr, 10);
    return start_timer(60000, 60000,
                       [this] { host().log(HUT_LOG_INFO, "greeted " + std::to_string(count_) + " times"); });
  }

  int on_widget(const hut_widget_request& req) override {
    if (std::string_view(req.data_json) == R"({"reset":true})") {
      int rc = host().reply_error_code(req.request_id, HUT_EPERM, "the count is not reset from a widget");
      return rc == HUT_ENOTSUP ? HUT_EPERM : rc;  // a space older than 1.5: the refusal says forbidden too
    }
    ++count_;
    if (int rc = host().kv_put("count", std::to_string(count_)); rc != HUT_OK) return rc;
    Json answer(cJSON_CreateObject(), cJSON_Delete);
    cJSON_AddStringToObject(answer.get(), "greeting", (greeting_ + ", " + req.user->name + "!").c_str());
    cJSON_AddNumberToObject(answer.get(), "count", static_cast<double>(count_));
    return host().reply(req.request_id, print(answer));
  }

  int on_http(const hut_http_request& req) override {
    if (std::string_view(req.path) != "/count") return HUT_ENOENT;
    return host().http_respond(req.request_id, 200, "{\"count\":" + std::to_string(count_) + "}",
                               {{"content-type", "application/json"}});
  }

 private:
  std::string greeting_ = "Hello";
  long long count_ = 0;
};

}  // namespace

HUT_PLUGIN_CLASS(Greeter, kDescriptor)

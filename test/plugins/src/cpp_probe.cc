// A test plugin for the C++ layer, <hutopia/plugin.hpp>. Widget requests (by
// the text of `data`):
//   "timer"  answers {"timer":true} from a one-shot timer
//   "post"   answers {"posted":true} from a std::thread through post()
//   "kv"     stores 1000 bytes and reads them back (past the first buffer)
//   "throw"  throws; the layer turns it into HUT_EINTERNAL
#include <hutopia/plugin.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

const hut_plugin_descriptor kDescriptor = {HUT_PLUGIN_ABI_MAJOR,
                                           HUT_PLUGIN_ABI_MINOR,
                                           "cpp_probe",
                                           "1",
                                           nullptr,
                                           nullptr,
                                           0,
                                           0,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           nullptr,
                                           0};

class Probe : public hut::plugin::Plugin {
 public:
  ~Probe() override {
    if (worker_.joinable()) worker_.join();
  }

  int on_widget(const hut_widget_request& req) override {
    std::string_view data(req.data_json, req.data_len);
    uint64_t id = req.request_id;
    if (data == R"("timer")") return start_timer(1, 0, [this, id] { host().reply(id, R"({"timer":true})"); });
    if (data == R"("post")") {
      if (worker_.joinable()) worker_.join();
      worker_ = std::thread([this, id] { post([this, id] { host().reply(id, R"({"posted":true})"); }); });
      return HUT_OK;
    }
    if (data == R"("kv")") {
      std::string value(1000, 'x');
      value[999] = 'y';
      if (int rc = host().kv_put("long", value); rc != HUT_OK) return rc;
      auto back = host().kv_get("long");
      int missing_rc = 0;
      bool missing = !host().kv_get("absent", &missing_rc) && missing_rc == HUT_ENOENT;
      return host().reply(id, back == value && missing ? R"({"kv":true})" : R"({"kv":false})");
    }
    if (data == R"("throw")") throw std::runtime_error("thrown on purpose");
    return HUT_EINVAL;
  }

 private:
  std::thread worker_;
};

}  // namespace

HUT_PLUGIN_CLASS(Probe, kDescriptor)

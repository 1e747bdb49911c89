// The one owner of the requests handed to plugins: PendingRequests on its
// own (deadlines, late answers, refusals, owners), and in the runtime with a
// real plugin that never answers (unload, session close).

#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <string>
#include <vector>

#include "plugin_fixture.h"
#include "plugins/pending_requests.h"

namespace hut::test {
namespace {

struct Seen {
  PluginAnswer::Kind kind;
  RequestId id;
  std::string plugin, data, message;
};

// Records every answer; `refuse` makes it refuse plugin answers.
struct Asker {
  std::vector<Seen> seen;
  bool refuse = false;
  PluginAnswerFn fn() {
    return [this](const PluginAnswer& a) {
      if (refuse && (a.kind == PluginAnswer::Kind::kData || a.kind == PluginAnswer::Kind::kHttp))
        return HUT_EINVAL;
      seen.push_back(Seen{a.kind, a.request_id, std::string(a.plugin), std::string(a.data_json),
                          std::string(a.message)});
      return HUT_OK;
    };
  }
  size_t count(RequestId id) const {
    size_t n = 0;
    for (const auto& s : seen) n += s.id == id;
    return n;
  }
};

bool run_until(uv_loop_t* loop, const std::function<bool()>& pred, int ms) {
  uv_timer_t wake;
  uv_timer_init(loop, &wake);
  uv_timer_start(
      &wake, [](uv_timer_t*) {}, 5, 5);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!pred() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return pred();
}

PluginAnswer data(std::string_view json) {
  PluginAnswer a;
  a.kind = PluginAnswer::Kind::kData;
  a.data_json = json;
  return a;
}

}  // namespace

TEST_CASE("pending requests: the deadline answers once, and a late answer is HUT_ENOENT") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    PendingRequests requests(&loop, 50);
    Asker asker;
    RequestId slow = requests.add("echo", "s1", false, asker.fn());
    RequestId quick = requests.add("echo", "s1", false, asker.fn());
    CHECK(requests.count("s1") == 2);
    CHECK(requests.answer("echo", quick, data("1")) == HUT_OK);
    REQUIRE(run_until(
        &loop, [&] { return asker.count(slow) == 1; }, 10000));
    // Ticks after the deadline change nothing: one answer each.
    run_until(
        &loop, [] { return false; }, 150);
    CHECK(asker.count(slow) == 1);
    CHECK(asker.count(quick) == 1);
    const Seen& expired = asker.seen.back();
    CHECK(expired.kind == PluginAnswer::Kind::kExpired);
    CHECK(expired.plugin == "echo");
    CHECK(expired.message.find("echo did not answer within") == 0);
    CHECK(requests.answer("echo", slow, data("2")) == HUT_ENOENT);
    CHECK(requests.answer("echo", quick, data("3")) == HUT_ENOENT);
    CHECK(asker.seen.size() == 2);
    CHECK(requests.size() == 0);
    CHECK(requests.count("s1") == 0);
  }
  uv_run(&loop, UV_RUN_NOWAIT);  // frees the timer
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE(
    "pending requests: only the plugin asked, and the kind asked, may answer; a refusal keeps it pending") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    PendingRequests requests(&loop, 60000);
    Asker asker;
    RequestId w = requests.add("echo", "s1", false, asker.fn());
    RequestId h = requests.add("echo", "(http)", true, asker.fn());
    CHECK(requests.answer("other", w, data("1")) == HUT_ENOENT);
    PluginHttpResponse resp;
    PluginAnswer http;
    http.kind = PluginAnswer::Kind::kHttp;
    http.http = &resp;
    CHECK(requests.answer("echo", w, http) == HUT_ENOENT);  // a widget request gets no HTTP response
    CHECK(requests.answer("echo", h, data("1")) == HUT_ENOENT);
    CHECK(requests.answer("echo", w, data("x"), false) == HUT_EINVAL);
    asker.refuse = true;
    CHECK(requests.answer("echo", w, data("1")) == HUT_EINVAL);
    CHECK(asker.seen.empty());
    CHECK(requests.size() == 2);
    CHECK(requests.count("s1") == 1);
    asker.refuse = false;
    CHECK(requests.answer("echo", w, data("2")) == HUT_OK);
    CHECK(requests.answer("echo", h, http) == HUT_OK);
    REQUIRE(asker.seen.size() == 2);
    CHECK(asker.seen[0].data == "2");
    CHECK(asker.seen[1].kind == PluginAnswer::Kind::kHttp);
    // An owner that goes away takes its requests, unanswered.
    RequestId gone = requests.add("echo", "s2", false, asker.fn());
    requests.drop_owner("s2");
    CHECK(requests.answer("echo", gone, data("1")) == HUT_ENOENT);
    CHECK(asker.count(gone) == 0);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("pending requests: unloading a plugin answers each of its pending requests once, and no other") {
  PluginFixture f;
  f.add("misbehave");
  f.add("reloadme_v1", "reloadme");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("misbehave").ok());
  REQUIRE(rt.load("reloadme").ok());
  uint64_t w1 = f.widget("misbehave", R"("never")", "s1");
  uint64_t w2 = f.widget("misbehave", R"("never")", "s2");
  uint64_t h = f.http("misbehave", "GET", "/never");
  uint64_t other = f.widget("reloadme", R"({"op":"hold"})", "s1");
  REQUIRE((w1 != 0 && w2 != 0 && h != 0 && other != 0));
  CHECK(rt.pending_total() == 4);
  CHECK(rt.pending_requests("s1") == 2);

  REQUIRE(rt.unload("misbehave").ok());
  for (uint64_t id : {w1, w2}) {
    REQUIRE(f.services.count_replies(id) == 1);
    CHECK(f.services.reply_to(id)->code == "unavailable");
    CHECK(f.services.reply_to(id)->message.find("misbehave") != std::string::npos);
  }
  const PluginHttpResponse* r = f.response(h);
  REQUIRE(r != nullptr);
  CHECK(r->status == 503);
  CHECK(f.services.responses.size() == 1);
  CHECK(f.services.reply_to(other) == nullptr);
  CHECK(rt.pending_total() == 1);

  // A closed session's requests end unanswered; the plugin's later answer
  // finds nothing.
  rt.session_closed("s1", UserRef{"u1", "Ada", ""});
  CHECK(rt.pending_total() == 0);
  CHECK(f.services.reply_to(other) == nullptr);
  f.stop();
  CHECK(f.services.reply_to(other) == nullptr);
}

}  // namespace hut::test

// The terminal plugin's widget requests (plugins/terminal/message.cc).
#include <doctest/doctest.h>

#include <string>

#include "../../plugins/terminal/message.h"

using hut::terminal::Message;
using hut::terminal::Op;

namespace {

std::string parse(const std::string& json, Message* m) {
  return hut::terminal::parse_message(json.data(), json.size(), m);
}

}  // namespace

TEST_CASE("terminal plugin: widget requests") {
  Message m;
  CHECK(parse(R"({"op":"open","cols":80,"rows":24})", &m).empty());
  CHECK((m.op == Op::kOpen && m.cols == 80 && m.rows == 24));
  CHECK(parse(R"({"op":"resize","cols":120,"rows":40,"extra":1})", &m).empty());
  CHECK((m.op == Op::kResize && m.cols == 120 && m.rows == 40));
  CHECK(parse(R"({"op":"input","data":"héllo\r"})", &m).empty());
  CHECK((m.op == Op::kInput && m.input == "héllo\r"));
  CHECK(parse(R"({"op":"close"})", &m).empty());
  CHECK(m.op == Op::kClose);

  CHECK(parse("[]", &m) == "the request must be a JSON object");
  CHECK(parse("{", &m) == "the request must be a JSON object");
  CHECK(parse(R"({"op":1})", &m) == "op must be a string");
  CHECK(parse(R"({"op":"shell"})", &m) == "unknown op (open, input, resize, close)");
  for (const char* bad :
       {R"({"op":"open","cols":1,"rows":24})", R"({"op":"open","cols":80})",
        R"({"op":"open","cols":80.5,"rows":24})", R"({"op":"resize","cols":501,"rows":24})",
        R"({"op":"resize","cols":80,"rows":301})", R"({"op":"open","cols":"80","rows":24})"})
    CHECK_MESSAGE(parse(bad, &m).find("cols must be") == 0, bad);
  CHECK(parse(R"({"op":"input"})", &m) == "data must be a string");
  CHECK(parse(R"({"op":"input","data":""})", &m) == "data must not be empty");
  CHECK(parse(R"({"op":"input","data":")" + std::string(4097, 'x') + "\"}", &m) == "data is over 4096 bytes");
  CHECK(parse(R"({"op":"input","data":")" + std::string(4096, 'x') + "\"}", &m).empty());
}

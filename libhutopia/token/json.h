// Strict JSON parsing and printing on top of cJSON, shared by the token code.
// Thread safety: any thread; nothing here has state.
#ifndef HUTOPIA_TOKEN_JSON_H_
#define HUTOPIA_TOKEN_JSON_H_

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <string_view>

#include "util/json.h"

namespace hut::token_json {

// One owner for a cJSON tree, and the field reader, of util/json.h.
using hut::get_string;
using hut::JsonPtr;

// Parses `text` as exactly one JSON value. Refuses trailing bytes other than
// whitespace, NUL bytes and \u0000 escapes (cJSON would cut a string there),
// and an object whose top level names a member twice (parsers disagree on
// which one wins). Returns null when refused.
JsonPtr parse_strict(std::string_view text);

// The compact text of `json` (empty when cJSON runs out of memory).
std::string print(const cJSON* json);

}  // namespace hut::token_json

#endif  // HUTOPIA_TOKEN_JSON_H_

// Small constant tables of pairs looked up in either direction: an enum and
// its names, two enums mapped onto each other. One loop for every "name <->
// value" mapping instead of a switch and a chain of ifs per enum.
//
// Thread: any; the tables are constants.
#ifndef HUTOPIA_UTIL_TABLE_H_
#define HUTOPIA_UTIL_TABLE_H_

#include <cstddef>
#include <optional>
#include <utility>

namespace hut::util {

// The second of the first pair whose first is `key`, or std::nullopt.
template <typename A, typename B, size_t N>
constexpr std::optional<B> second_of(const std::pair<A, B> (&table)[N], const A& key) {
  for (const auto& [a, b] : table)
    if (a == key) return b;
  return std::nullopt;
}

// The first of the first pair whose second is `key`, or std::nullopt.
template <typename A, typename B, size_t N>
constexpr std::optional<A> first_of(const std::pair<A, B> (&table)[N], const B& key) {
  for (const auto& [a, b] : table)
    if (b == key) return a;
  return std::nullopt;
}

}  // namespace hut::util

#endif  // HUTOPIA_UTIL_TABLE_H_

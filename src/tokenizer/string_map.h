// Hash map keyed by std::string that can be probed with a std::string_view (no temporary
// strings on the hot path of the BPE merge loops).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace lowbit {

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringViewHash, std::equal_to<>>;

// Looks key up; returns fallback when absent.
template <class V>
V find_or(const StringMap<V>& m, std::string_view key, V fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

}  // namespace lowbit

// Stop sequences over streamed text: text that might be the start of a stop string is held back
// until the next piece decides, so a client never sees part of a stop string, and the reply ends
// right before the first stop string that appears (as OpenAI's API and llama-server do).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);  // empty strings are ignored
  // Appends a piece of the reply; returns the text that is now safe to emit. After the first stop
  // string appears, stopped() is true, the returned text ends just before it and later calls
  // return "".
  std::string push(std::string_view piece);
  // The end of the reply: the text still held back ("" when stopped).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace lowbit

// A maildrop's UIDLs packed into one buffer (design §9: first login to a 100,000-message
// mailbox in milliseconds). A vector of std::string costs one heap allocation per UIDL longer
// than the small-string buffer, and Poplar's UIDLs are all longer: 100,000 allocations and
// frees per login, and ~32 bytes of string header per message held for the whole session.
// Here a maildrop costs two allocations: the text and the end offsets.
#ifndef POPLAR_COMMON_POP3_UIDL_LIST_H_
#define POPLAR_COMMON_POP3_UIDL_LIST_H_

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace poplar::pop3 {

class UidlList {
 public:
  UidlList() = default;
  UidlList(std::initializer_list<std::string_view> uidls) {
    for (std::string_view u : uidls) Append(u);
  }

  void Reserve(size_t count, size_t text_bytes) {
    ends_.reserve(count);
    text_.reserve(text_bytes);
  }

  // False (and nothing appended) if the packed text would pass 4 GiB; a POP3 UIDL is at most
  // 70 octets, so that is tens of millions of messages, far past any snapshot popd accepts.
  bool Append(std::string_view uidl) {
    if (uidl.size() > std::numeric_limits<uint32_t>::max() - text_.size()) return false;
    text_.append(uidl);
    ends_.push_back(static_cast<uint32_t>(text_.size()));
    return true;
  }

  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }

  std::string_view operator[](size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(text_).substr(begin, ends_[i] - begin);
  }

 private:
  std::string text_;
  std::vector<uint32_t> ends_;  // ends_[i] = offset just past UIDL i in text_
};

}  // namespace poplar::pop3

#endif  // POPLAR_COMMON_POP3_UIDL_LIST_H_

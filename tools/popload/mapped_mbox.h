// An mbox file mapped read-only, and each message's bytes as Poplar's scanner splits them (the
// From_ line and the separating empty line excluded): what RETR must return after decoding.
#ifndef POPLAR_TOOLS_POPLOAD_MAPPED_MBOX_H_
#define POPLAR_TOOLS_POPLOAD_MAPPED_MBOX_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace poplar::popload {

class MappedMbox {
 public:
  // Maps `path` (an empty file is an error: nothing to send or compare).
  static absl::StatusOr<std::unique_ptr<MappedMbox>> Map(const std::string& path);
  ~MappedMbox();
  MappedMbox(const MappedMbox&) = delete;
  MappedMbox& operator=(const MappedMbox&) = delete;

  // Splits the file into messages (download --verify).
  void Scan();
  std::string_view bytes() const { return {base_, size_}; }
  const std::vector<std::string_view>& messages() const { return messages_; }

 private:
  MappedMbox(const char* base, size_t size) : base_(base), size_(size) {}
  const char* base_;
  size_t size_;
  std::vector<std::string_view> messages_;
};

}  // namespace poplar::popload

#endif  // POPLAR_TOOLS_POPLOAD_MAPPED_MBOX_H_

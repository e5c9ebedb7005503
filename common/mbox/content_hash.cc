#include "common/mbox/content_hash.h"

#include <algorithm>

namespace poplar::mbox {

void ContentHasher::Start(uint64_t head_length) {
  head_.Reset();
  body_.Reset();
  head_length_ = head_length;
  fed_ = 0;
  last_ = '\n';
}

void ContentHasher::Update(std::string_view bytes) {
  if (bytes.empty()) return;
  const size_t split =
      fed_ >= head_length_
          ? 0
          : static_cast<size_t>(std::min<uint64_t>(head_length_ - fed_, bytes.size()));
  head_.Update(bytes.substr(0, split));
  body_.Update(bytes.substr(split));
  fed_ += bytes.size();
  last_ = bytes.back();
}

void ContentHasher::Finish() {
  // The From_ line always ends in "\n", so an empty message needs nothing here.
  if (last_ != '\n') (fed_ > head_length_ ? body_ : head_).Update("\n");
  body_digest_ = body_.Digest();
  head_.Update(body_digest_.Bytes());
  content_hash_ = head_.Digest();
}

}  // namespace poplar::mbox

// The content identity of one stored message (README "The mbox rules", design §3): the hash
// that the expunge re-verifies before it moves a byte and that popd re-checks while it serves a
// RETR, and the body digest that a UIDL folds in (common/mbox/scanner.h).
//
// The identity covers the From_ line, the header block and the body exactly as stored, with one
// normalisation: a message whose last line has no "\n" is hashed as if the "\n" were there.
// Appending to a mailbox must not change the identity of the messages already in it (issue 15:
// a changed UIDL makes every "leave on server" client download the message again, and a changed
// identity refuses a QUIT whose DELE raced a delivery). The only way an append reaches into the
// message before it is by completing that message's last line: a careful MDA first writes the
// missing "\n" (and the empty line that separates messages). Text glued onto the last line
// (an MDA that does not pad) does change the message, and its identity with it. Messages that
// end in "\n" hash exactly as before this rule, so an upgrade changes no UIDL.
#ifndef POPLAR_COMMON_MBOX_CONTENT_HASH_H_
#define POPLAR_COMMON_MBOX_CONTENT_HASH_H_

#include <cstdint>
#include <string_view>

#include "common/util/hash.h"

namespace poplar::mbox {

// Streaming: feed the message's bytes in order, from its From_ line up to its end, in chunks of
// any size; the bytes before `head_length` (the From_ line and the header block) are the head,
// the rest the body.
class ContentHasher {
 public:
  void Start(uint64_t head_length);
  void Update(std::string_view bytes);
  // Completes a missing final "\n" and closes both digests.
  void Finish();

  // Valid after Finish().
  const Hash128& content_hash() const { return content_hash_; }
  const Hash128& body_digest() const { return body_digest_; }

 private:
  Xxh3Stream head_;
  Xxh3Stream body_;
  uint64_t head_length_ = 0;
  uint64_t fed_ = 0;
  char last_ = '\n';
  Hash128 content_hash_;
  Hash128 body_digest_;
};

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_CONTENT_HASH_H_

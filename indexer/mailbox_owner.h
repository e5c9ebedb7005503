// MailboxOwner: who must own a mailbox file before the indexer reads or rewrites it (design §8
// "files ... must be regular files owned as expected"; config check_owner, reliability.md §4
// "User name to path"). Postfix's strict_mailbox_ownership and Exim's check_owner do the same
// for delivery: a mailbox that someone else owns was not made for this user by the MDA (a
// hard link to another user's file, a file planted in a group-writable spool) and is refused
// rather than served or compacted.
//
// The name checked is the mailbox's user (the account name, or the spool file's name); it is
// validated (sasl::IsValidUserName) before any passwd lookup, so a lookup never sees an odd
// name. Thread-safe after construction (const; getpwnam_r per check, so a passwd change is
// seen at once).
#ifndef POPLAR_INDEXER_MAILBOX_OWNER_H_
#define POPLAR_INDEXER_MAILBOX_OWNER_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "poplar/config.pb.h"

namespace poplar::indexer {

// The uid of a system user, or nullopt if there is none (or the name is not a valid one).
std::optional<uid_t> SystemUserUid(std::string_view name);

class MailboxOwner {
 public:
  // Resolves spool_owner; FailedPrecondition if it names no user.
  static absl::StatusOr<MailboxOwner> FromConfig(const config::OwnerCheck& c);

  // OK if a mailbox of `user` owned by `owner` may be used. FailedPrecondition otherwise, with
  // the reason (never a secret): "owned by uid 1001, expected alice (uid 1000)".
  absl::Status Check(uid_t owner, std::string_view user) const;

 private:
  MailboxOwner(config::OwnerCheck::Rule rule, std::optional<uid_t> spool_owner, std::string name)
      : rule_(rule), spool_owner_(spool_owner), spool_owner_name_(std::move(name)) {}
  config::OwnerCheck::Rule rule_;
  std::optional<uid_t> spool_owner_;
  std::string spool_owner_name_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_MAILBOX_OWNER_H_

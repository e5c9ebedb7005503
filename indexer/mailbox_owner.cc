#include "indexer/mailbox_owner.h"

#include <pwd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sasl/user_name.h"
#include "common/util/strings.h"

namespace poplar::indexer {

std::optional<uid_t> SystemUserUid(std::string_view name) {
  if (!sasl::IsValidUserName(name)) return std::nullopt;
  const std::string n(name);
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(n.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  return pw.pw_uid;
}

absl::StatusOr<MailboxOwner> MailboxOwner::FromConfig(const config::OwnerCheck& c) {
  std::optional<uid_t> owner;
  if (!c.spool_owner().empty()) {
    owner = SystemUserUid(c.spool_owner());
    if (!owner) {
      return absl::FailedPreconditionError(
          absl::StrCat("check_owner.spool_owner: no user named '", c.spool_owner(), "'"));
    }
  }
  if (c.rule() == config::OwnerCheck::OWNER_SPOOL_OWNER && !owner) {
    return absl::FailedPreconditionError("check_owner: OWNER_SPOOL_OWNER needs spool_owner");
  }
  return MailboxOwner(c.rule(), owner, c.spool_owner());
}

absl::Status MailboxOwner::Check(uid_t owner, std::string_view user) const {
  if (rule_ == config::OwnerCheck::OWNER_ANY) return absl::OkStatus();
  std::optional<uid_t> want;
  std::string whom;
  if (rule_ == config::OwnerCheck::OWNER_SYSTEM_USER) {
    if (user.empty()) {
      return absl::FailedPreconditionError("no user name to check the owner against");
    }
    if (!sasl::IsValidUserName(user)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", Absl(user), "' is not a valid user name, so it has no expected owner"));
    }
    want = SystemUserUid(user);
    whom = std::string(user);
  }
  if (!want && spool_owner_) {
    want = spool_owner_;
    whom = absl::StrCat("check_owner.spool_owner ", spool_owner_name_);
  }
  if (!want) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no system user '", Absl(user), "' and no check_owner.spool_owner to own the mailbox"));
  }
  if (owner == *want) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("owned by uid ", owner, ", expected ", whom, " (uid ", *want, ")"));
}

}  // namespace poplar::indexer

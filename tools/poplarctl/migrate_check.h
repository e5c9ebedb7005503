// `poplarctl migrate check`: before a site switches from Qpopper or Dovecot, how many UIDLs
// would change, per mailbox, if Poplar served the spool with the chosen scheme (issue 16).
// It reads the mbox files directly (the indexer need not run, nothing is written): the old
// server's UIDLs are computed as that server computed them (Qpopper: common/mbox/qpopper_uidl.h;
// Dovecot: %08Xu%08Xv from X-UID and X-IMAPbase), Poplar's as the indexer's first index of the
// mailbox would assign them (every message was there at the switch, so X-UIDL is adopted).
#ifndef POPLAR_TOOLS_POPLARCTL_MIGRATE_CHECK_H_
#define POPLAR_TOOLS_POPLARCTL_MIGRATE_CHECK_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mbox/qpopper_uidl.h"

namespace poplar::poplarctl {

struct MigrateCheckOptions {
  std::string from;                   // "qpopper" or "dovecot"
  std::vector<std::string> targets;   // spool directories, mailbox files or user names
  std::string spool = "/var/mail";    // where a user name's mailbox is (flat layout)
  mbox::QpopperUidlOptions qpopper;   // the Qpopper variant (--old-style-uid, --server-mode, ...)
  bool trust_content_length = false;  // as the indexer will be configured
  bool json = false;
};

struct UidlChange {
  uint64_t number = 0;  // message number in the mailbox
  std::string old_uidl;
  std::string new_uidl;
};

struct MailboxCheck {
  std::string path;
  uint64_t messages = 0;
  // Messages whose UIDL under the chosen scheme differs from the old server's.
  uint64_t changed = 0;
  // The same, had the site kept Poplar's default scheme ("poplar", X-UIDL adopted).
  uint64_t changed_default_scheme = 0;
  uint64_t x_uidl = 0;  // Qpopper: messages whose X-UIDL Qpopper adopted
  // Of those, the ones in the form Qpopper writes its own UIDLs: 32 lowercase hex digits
  // (old-style-uid) or 20 characters of base 80. They show which variant Qpopper ran.
  uint64_t x_uidl_hex = 0;
  uint64_t x_uidl_base80 = 0;
  uint64_t duplicates = 0;           // messages the old server gave a UIDL it had already given
  uint64_t unknown = 0;              // Dovecot: messages without X-UID (no UIDL in the file)
  std::vector<UidlChange> examples;  // the first few changes
};

// One mailbox file. NotFound if it does not exist.
absl::StatusOr<MailboxCheck> CheckMailbox(const std::string& path,
                                          const MigrateCheckOptions& options);

// The mailbox files of a target: a directory (spool, up to three levels deep for hashed and
// home layouts; dotfiles, *.lock and files that do not start like an mbox are skipped), a file,
// or a user name (SPOOL/USER).
absl::StatusOr<std::vector<std::string>> MailboxesOf(std::string_view target,
                                                     const MigrateCheckOptions& options);

// `poplarctl migrate check ...` after "check": parses, runs, prints. Exit code: 0 no UIDL would
// change, 4 some would, 2 usage, 1 a mailbox could not be read.
int RunMigrateCheck(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_MIGRATE_CHECK_H_

// UIDL assignment (design §4, RFC 1939 §7).
//
// A message's UIDL is derived from its content so that a lost index rebuilds the same one:
//  1. with the Dovecot/UW compatibility scheme, `%08X%08X` of its X-UID: and the mailbox's
//     X-IMAPbase: UIDVALIDITY (Dovecot's default pop3_uidl_format %08Xu%08Xv), when both exist;
//  2. a Qpopper `X-UIDL:` value, when reuse is on, the message may adopt it (see below) and the
//     value is valid (1-70 chars in 0x21-0x7E; with the Qpopper scheme, the X-UIDL Qpopper itself
//     would adopt: qpopper_uidl.h), so users migrating from Qpopper download nothing twice;
//  3. otherwise the scheme's own UIDL: Qpopper's MD5 form (kQpopper, qpopper_uidl.h), or the
//     scanner's 24-hex-digit digest of the From_ line, the stable headers and the body.
// X-UIDL from strangers: once a site runs Poplar nothing writes X-UIDL any more, so the header
// in a message delivered later comes from its sender, who could copy the UIDL of a message the
// client already has and so hide the new one. The caller therefore says per message whether it
// was in the mailbox when the site switched (Assign's `switched_before`); only such messages
// adopt X-UIDL, unless the site trusts the header (trust_x_uidl).
// A candidate that another live message of the mailbox already holds is skipped (the first
// holder in file order keeps it, so a later message forging an X-UIDL cannot take an older
// message's UIDL); a message left with no free candidate gets the digest plus "-2", "-3", ...
// Assignment depends only on the messages seen in file order and the reserved set, so the same
// mailbox always yields the same UIDLs.
#ifndef POPLAR_COMMON_MBOX_UIDL_H_
#define POPLAR_COMMON_MBOX_UIDL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/mbox/qpopper_uidl.h"
#include "common/mbox/scanner.h"

namespace poplar::mbox {

enum class UidlScheme {
  kPoplar,   // X-UIDL (if reused) or digest
  kDovecot,  // X-UID + UIDVALIDITY first, then as kPoplar
  kQpopper,  // Qpopper's X-UIDL rules (if reused), else Qpopper's MD5 UIDL (qpopper_uidl.h)
};

struct SpoolUidlOptions;

struct UidlOptions {
  UidlScheme scheme = UidlScheme::kPoplar;
  // Adopt X-UIDL at all (config uidl.reuse_x_uidl).
  bool reuse_x_uidl = true;
  // Adopt it in messages delivered after the switch too (config uidl.trust_x_uidl).
  bool trust_x_uidl = false;
  // The Qpopper variant (kQpopper only).
  QpopperUidlOptions qpopper = {};
  // Per-spool overrides (config spools.uidl), by spool directory; see UidlOptionsForPath.
  std::shared_ptr<const std::vector<SpoolUidlOptions>> per_spool = nullptr;
};

struct SpoolUidlOptions {
  std::string directory;  // without a trailing '/'
  UidlOptions options;
};

// The options for the mailbox at `path`: those of the spool whose directory holds it, else the
// site's.
const UidlOptions& UidlOptionsForPath(const UidlOptions& site, std::string_view path);

// What the scanner must compute for `options` (the Qpopper UIDL only when it is used).
std::optional<QpopperUidlOptions> QpopperScanOptions(const UidlOptions& options);

// RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
bool IsValidUidl(std::string_view uidl);

class UidlAssigner {
 public:
  explicit UidlAssigner(UidlOptions options = {}) : options_(options) {}

  // A UIDL held by a live message that is not being assigned again (incremental indexing).
  void Reserve(std::string_view uidl) { used_.insert(std::string(uidl)); }
  // For large mailboxes: asks the index whether a live message not being assigned again holds
  // `uidl`, instead of Reserve()-ing every one of them.
  void SetReservedLookup(std::function<bool(const std::string&)> lookup) {
    reserved_lookup_ = std::move(lookup);
  }
  // The mailbox's UIDVALIDITY when the first message (which carries X-IMAPbase) is not among
  // the messages being assigned.
  void SetUidValidity(uint32_t v) { uid_validity_ = v; }
  std::optional<uint32_t> uid_validity() const { return uid_validity_; }

  // The UIDL of the next message in file order. `switched_before`: the message was in the
  // mailbox when the site switched to Poplar (the index's cutoff), so its X-UIDL came from the
  // old server; otherwise X-UIDL is adopted only with trust_x_uidl.
  std::string Assign(const MessageInfo& m, bool switched_before = true);

 private:
  bool TryTake(const std::string& candidate);
  // `base` if free, else the first free "base-2", "base-3", ...
  std::string TakeOrSuffix(const std::string& base);

  UidlOptions options_;
  absl::flat_hash_set<std::string> used_;
  std::optional<uint32_t> uid_validity_;
  absl::flat_hash_map<std::string, uint64_t> next_suffix_;
  std::function<bool(const std::string&)> reserved_lookup_;
};

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_UIDL_H_

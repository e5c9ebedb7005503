// poplar-mbox: prints a mailbox's index as the indexer would build it and checks that every
// message survives the POP3 transform byte for byte. A diagnostic for operators and the first
// thing the demo shows; it only reads the file.
#ifndef POPLAR_TOOLS_MBOX_REPORT_H_
#define POPLAR_TOOLS_MBOX_REPORT_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "common/mbox/uidl.h"

namespace poplar::tools {

struct MboxReportOptions {
  std::string path;
  bool json = false;
  bool check = false;         // round-trip every message through the wire transform
  size_t check_chunk = 4096;  // transform in chunks of this size, as popd streams
  mbox::UidlOptions uidl;
  // With the Qpopper scheme and update-status-headers: the session counter Qpopper's lock time
  // seeded (message n hashes seed + n), to replay a known session.
  std::optional<int64_t> qpopper_nonce_seed;
  bool trust_content_length = false;  // as poplar-indexer's default (config.proto)
};

// Writes the report to `out`. A failed --check is an InternalError naming the message.
absl::Status RunMboxReport(const MboxReportOptions& options, std::ostream& out);

}  // namespace poplar::tools

#endif  // POPLAR_TOOLS_MBOX_REPORT_H_

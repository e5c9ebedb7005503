// The Snapshot the indexer would send for an mbox, built from a fresh scan (same columns as
// Indexer::CachedSnapshotLocked), for popd's tests.
#ifndef POPLAR_TESTS_COMPONENT_SNAPSHOT_TESTING_H_
#define POPLAR_TESTS_COMPONENT_SNAPSHOT_TESTING_H_

#include <cstdint>
#include <string>

#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "poplar/maildrop.pb.h"

namespace poplar::testing {

inline v1::Snapshot SnapshotOf(const std::string& mbox, const std::string& path, uint64_t device,
                               uint64_t inode) {
  mbox::ScanResult r = mbox::ScanMbox(mbox, 0, {.final = true});
  mbox::UidlAssigner uidls;
  v1::Snapshot s;
  s.set_session_id("1-abc");
  s.set_mailbox_path(path);
  s.mutable_file()->set_device(device);
  s.mutable_file()->set_inode(inode);
  uint64_t total = 0;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    const mbox::MessageInfo& m = r.messages[i];
    s.add_from_offsets(m.offset);
    s.add_data_offsets(m.data_offset);
    s.add_lengths(m.length());
    s.add_header_lengths(m.header_length);
    s.add_octets(m.octets);
    s.add_lines(m.lines);
    if (i) s.mutable_uidls()->push_back('\n');
    s.mutable_uidls()->append(uidls.Assign(m));
    s.mutable_content_hashes()->append(m.content_hash.Bytes());
    total += m.octets;
    s.mutable_file()->set_size(m.end_offset);
  }
  s.set_count(static_cast<uint32_t>(r.messages.size()));
  s.set_total_octets(total);
  return s;
}

}  // namespace poplar::testing

#endif  // POPLAR_TESTS_COMPONENT_SNAPSHOT_TESTING_H_

// popd's view of a snapshot whose UIDL column is short: refused, not read past its end (before
// the shared snapshot codec, a column two or more UIDLs short threw std::out_of_range in popd).
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "popd/maildrop_view.h"
#include "tests/component/snapshot_testing.h"

namespace poplar::popd {
namespace {

std::string Msg(int i) {
  return absl::StrCat("From s", i, "@example.org Thu Nov 26 10:00:00 2026\nSubject: ", i,
                      "\n\nbody\n\n");
}

TEST(MaildropViewUidls, ShortUidlColumnsAreRefused) {
  const std::string mbox = Msg(1) + Msg(2) + Msg(3);
  for (const char* column : {"only-one", "one\ntwo", "", "one\n\n"}) {
    SCOPED_TRACE(column);
    v1::Snapshot s = testing::SnapshotOf(mbox, "/var/mail/alice", 8, 42);
    ASSERT_TRUE(MakeMaildropView(s).ok());
    s.set_uidls(column);
    absl::StatusOr<MaildropView> v = MakeMaildropView(s);
    EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  }
}

}  // namespace
}  // namespace poplar::popd

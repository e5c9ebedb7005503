// popd's view of an indexer snapshot: built from a real scan, and refused when malformed.
#include "popd/maildrop_view.h"

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "gtest/gtest.h"
#include "tests/component/snapshot_testing.h"

namespace poplar::popd {
namespace {

v1::Snapshot SnapshotOf(const std::string& mbox) {
  return testing::SnapshotOf(mbox, "/var/mail/alice", 8, 42);
}

std::string Msg(int i) {
  return absl::StrCat("From s", i, "@example.org Thu Nov 26 10:00:00 2026\nSubject: ", i,
                      "\n\nbody\n.\n\n");
}

TEST(MaildropView, FromARealSnapshot) {
  const std::string mbox = Msg(1) + Msg(2) + Msg(3);
  v1::Snapshot s = SnapshotOf(mbox);
  absl::StatusOr<MaildropView> v = MakeMaildropView(s);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->maildrop.count, 3u);
  EXPECT_EQ(v->maildrop.total_octets, s.total_octets());
  ASSERT_EQ(v->maildrop.uidls.size(), 3u);
  EXPECT_EQ(v->maildrop.uidls[1], std::string(s.uidls()).substr(25, 24));
  EXPECT_EQ(v->inode, 42u);
  EXPECT_EQ(mbox.substr(v->messages[2].data_offset, v->messages[2].length).substr(0, 11),
            "Subject: 3\n");

  absl::StatusOr<v1::Commit> c = MakeCommit(*v, {0, 2});
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->deleted_size(), 2);
  EXPECT_EQ(c->deleted(1).data_offset(), v->messages[2].data_offset);
  EXPECT_EQ(c->deleted(1).content_hash(), s.content_hashes().substr(32, 16));
  EXPECT_TRUE(absl::IsInvalidArgument(MakeCommit(*v, {3}).status()));
}

TEST(MaildropView, EmptyMaildrop) {
  v1::Snapshot s;
  absl::StatusOr<MaildropView> v = MakeMaildropView(s);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->maildrop.count, 0u);
  EXPECT_TRUE(MakeCommit(*v, {}).ok());
}

TEST(MaildropView, MalformedSnapshotsAreRefused) {
  struct Case {
    const char* name;
    std::function<void(v1::Snapshot*)> breakit;
  };
  const Case cases[] = {
      {"count too high", [](v1::Snapshot* s) { s->set_count(4); }},
      {"missing length", [](v1::Snapshot* s) { s->mutable_lengths()->RemoveLast(); }},
      {"short hashes", [](v1::Snapshot* s) { s->mutable_content_hashes()->pop_back(); }},
      {"overlap", [](v1::Snapshot* s) { s->set_data_offsets(1, s->data_offsets(0)); }},
      {"past the file", [](v1::Snapshot* s) { s->mutable_file()->set_size(10); }},
      {"header longer than message", [](v1::Snapshot* s) { s->set_header_lengths(0, 1 << 20); }},
      {"impossible octets", [](v1::Snapshot* s) { s->set_octets(0, 1); }},
      {"total", [](v1::Snapshot* s) { s->set_total_octets(s->total_octets() + 1); }},
      {"uidl with space", [](v1::Snapshot* s) { (*s->mutable_uidls())[3] = ' '; }},
      {"empty uidl", [](v1::Snapshot* s) { s->mutable_uidls()->insert(0, "\n"); }},
      {"extra uidl", [](v1::Snapshot* s) { s->mutable_uidls()->append("\nextra"); }},
      {"offset overflow", [](v1::Snapshot* s) { s->set_lengths(2, UINT64_MAX); }},
      {"missing From_ offset", [](v1::Snapshot* s) { s->mutable_from_offsets()->RemoveLast(); }},
      {"From_ after data", [](v1::Snapshot* s) { s->set_from_offsets(1, s->data_offsets(1)); }},
      {"From_ inside the previous message",
       [](v1::Snapshot* s) { s->set_from_offsets(1, s->data_offsets(0)); }},
      {"From_ line too long",
       [](v1::Snapshot* s) {
         s->set_from_offsets(0, 0);
         s->set_data_offsets(0, 5000);
       }},
  };
  const std::string mbox = Msg(1) + Msg(2) + Msg(3);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::Snapshot s = SnapshotOf(mbox);
    ASSERT_TRUE(MakeMaildropView(s).ok());
    c.breakit(&s);
    absl::StatusOr<MaildropView> v = MakeMaildropView(s);
    EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  }
}

}  // namespace
}  // namespace poplar::popd

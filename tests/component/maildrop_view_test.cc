// popd's view of an indexer snapshot: built from a real scan, and refused when malformed.
#include "popd/maildrop_view.h"

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/mbox/scanner.h"
#include "common/mbox/snapshot_codec.h"
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

// Paged sessions (issue 13): the login's header, and pages cut from the same snapshot.
v1::Snapshot Header(const v1::Snapshot& s, uint64_t version) {
  v1::Snapshot h;
  h.set_session_id("s1");
  h.set_mailbox_path(s.mailbox_path());
  *h.mutable_file() = s.file();
  h.set_count(s.count());
  h.set_total_octets(s.total_octets());
  h.set_version(version);
  return h;
}

v1::MessagePage Cut(const v1::Snapshot& s, uint64_t version, int first, int end) {
  v1::MessagePage p;
  p.set_version(version);
  p.set_first(static_cast<uint32_t>(first));
  v1::Snapshot* m = p.mutable_messages();
  m->set_count(static_cast<uint32_t>(end - first));
  std::vector<std::string_view> uidls = *mbox::DecodeUidls(s.uidls(), s.count());
  for (int i = first; i < end; ++i) {
    m->add_from_offsets(s.from_offsets(i));
    m->add_data_offsets(s.data_offsets(i));
    m->add_lengths(s.lengths(i));
    m->add_header_lengths(s.header_lengths(i));
    m->add_octets(s.octets(i));
    m->add_lines(s.lines(i));
    mbox::AppendUidls(m->mutable_uidls(), static_cast<size_t>(i - first),
                      uidls[static_cast<size_t>(i)]);
    mbox::AppendHash(m->mutable_content_hashes(),
                     mbox::HashAt(s.content_hashes(), static_cast<size_t>(i)));
  }
  return p;
}

TEST(MaildropView, PagedHeaderAndPages) {
  const std::string mbox = Msg(1) + Msg(2) + Msg(3) + Msg(4);
  const v1::Snapshot s = SnapshotOf(mbox);
  absl::StatusOr<MaildropView> v = MakeMaildropView(Header(s, 9));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->paged());
  EXPECT_EQ(v->version, 9u);
  EXPECT_EQ(v->maildrop.count, 4u);
  EXPECT_EQ(v->maildrop.total_octets, s.total_octets());
  EXPECT_TRUE(v->messages.empty());
  EXPECT_TRUE(v->maildrop.octets.empty());
  // A header without a version cannot be paged.
  EXPECT_TRUE(absl::IsFailedPrecondition(MakeMaildropView(Header(s, 0)).status()));

  absl::StatusOr<MaildropView> whole = MakeMaildropView(s);
  ASSERT_TRUE(whole.ok());
  for (int first = 0; first < 4; ++first) {
    absl::StatusOr<MessagePageView> p = MakePageView(*v, Cut(s, 9, first, 4), first);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p->Contains(static_cast<uint32_t>(first)));
    EXPECT_TRUE(p->Contains(3));
    EXPECT_FALSE(p->Contains(4));
    for (int i = first; i < 4; ++i) {
      const size_t k = static_cast<size_t>(i - first);
      const MessageLocation& want = whole->messages[static_cast<size_t>(i)];
      EXPECT_EQ(p->messages[k].data_offset, want.data_offset);
      EXPECT_EQ(p->messages[k].from_offset, want.from_offset);
      EXPECT_EQ(p->messages[k].content_hash, want.content_hash);
      EXPECT_EQ(p->octets[k], whole->maildrop.octets[static_cast<size_t>(i)]);
      EXPECT_EQ(p->uidls[k], whole->maildrop.uidls[static_cast<size_t>(i)]);
    }
  }
  // QUIT of a paged session names numbers; the indexer maps them in the bound version.
  absl::StatusOr<v1::Commit> c = MakeCommit(*v, {0, 3});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->deleted_size(), 0);
  EXPECT_EQ(std::vector<uint32_t>(c->deleted_indexes().begin(), c->deleted_indexes().end()),
            (std::vector<uint32_t>{0, 3}));
  EXPECT_TRUE(absl::IsInvalidArgument(MakeCommit(*v, {4}).status()));
}

TEST(MaildropView, MalformedPagesAreRefused) {
  struct Case {
    const char* name;
    uint32_t asked;
    std::function<void(v1::MessagePage*)> breakit;
  };
  const Case cases[] = {
      {"another version", 1, [](v1::MessagePage* p) { p->set_version(8); }},
      {"not where asked", 0, [](v1::MessagePage*) {}},
      {"empty", 1, [](v1::MessagePage* p) { p->mutable_messages()->Clear(); }},
      {"past the end", 1, [](v1::MessagePage* p) { p->mutable_messages()->set_count(4); }},
      {"overlap", 1,
       [](v1::MessagePage* p) {
         p->mutable_messages()->set_data_offsets(1, p->messages().data_offsets(0));
       }},
      {"past the file", 1,
       [](v1::MessagePage* p) { p->mutable_messages()->set_lengths(0, 1 << 20); }},
      {"impossible octets", 1, [](v1::MessagePage* p) { p->mutable_messages()->set_octets(0, 1); }},
      {"larger than the maildrop", 1,
       [](v1::MessagePage* p) { p->mutable_messages()->set_octets(0, 1 << 30); }},
      {"uidl with space", 1,
       [](v1::MessagePage* p) { (*p->mutable_messages()->mutable_uidls())[1] = ' '; }},
      {"short hashes", 1,
       [](v1::MessagePage* p) { p->mutable_messages()->mutable_content_hashes()->pop_back(); }},
  };
  const std::string mbox = Msg(1) + Msg(2) + Msg(3) + Msg(4);
  const v1::Snapshot s = SnapshotOf(mbox);
  absl::StatusOr<MaildropView> v = MakeMaildropView(Header(s, 9));
  ASSERT_TRUE(v.ok());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::MessagePage p = Cut(s, 9, 1, 3);
    ASSERT_TRUE(MakePageView(*v, p, 1).ok());
    c.breakit(&p);
    EXPECT_TRUE(absl::IsFailedPrecondition(MakePageView(*v, p, c.asked).status()));
  }
}

}  // namespace
}  // namespace poplar::popd

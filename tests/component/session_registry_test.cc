// SessionRegistry: the commit's identity checks against the snapshot a session was shown.
#include "indexer/session_registry.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace poplar::indexer {
namespace {

std::string Hash(char c) { return std::string(16, c); }

std::shared_ptr<const v1::Snapshot> ThreeMessages() {
  auto s = std::make_shared<v1::Snapshot>();
  for (int i = 0; i < 3; ++i) {
    s->add_data_offsets(100 * static_cast<uint64_t>(i) + 40);
    s->mutable_content_hashes()->append(Hash(static_cast<char>('a' + i)));
  }
  s->set_count(3);
  return s;
}

v1::Commit CommitOf(const std::vector<std::pair<uint64_t, std::string>>& refs) {
  v1::Commit c;
  for (const auto& [offset, hash] : refs) {
    v1::MessageRef* r = c.add_deleted();
    r->set_data_offset(offset);
    r->set_content_hash(hash);
  }
  return c;
}

TEST(SessionRegistry, DeletionsAreCheckedAgainstTheSnapshot) {
  struct Case {
    const char* name;
    std::vector<std::pair<uint64_t, std::string>> refs;
    bool ok;
    std::vector<size_t> want;
  };
  const Case cases[] = {
      {"none", {}, true, {}},
      {"one", {{140, Hash('b')}}, true, {1}},
      {"ascending whatever the order", {{240, Hash('c')}, {40, Hash('a')}}, true, {0, 2}},
      {"unknown offset", {{41, Hash('a')}}, false, {}},
      {"past the last", {{900, Hash('a')}}, false, {}},
      {"wrong hash", {{40, Hash('b')}}, false, {}},
      {"short hash", {{40, std::string(15, 'a')}}, false, {}},
      {"long hash", {{40, Hash('a') + "a"}}, false, {}},
      {"twice", {{40, Hash('a')}, {40, Hash('a')}}, false, {}},
  };
  const std::shared_ptr<const v1::Snapshot> snap = ThreeMessages();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<std::vector<size_t>> r = CheckDeletions(snap.get(), CommitOf(c.refs));
    if (!c.ok) {
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, c.want);
  }
}

TEST(SessionRegistry, AnEmptyMaildropHasNothingToDelete) {
  EXPECT_TRUE(CheckDeletions(nullptr, v1::Commit()).ok());
  EXPECT_TRUE(
      absl::IsInvalidArgument(CheckDeletions(nullptr, CommitOf({{40, Hash('a')}})).status()));
}

TEST(SessionRegistry, CommitsOfKnownSessionsOnly) {
  SessionRegistry r;
  EXPECT_TRUE(absl::IsFailedPrecondition(r.CheckCommit("s1", v1::Commit()).status()));
  r.Add("s1", "/var/mail/ann", ThreeMessages());
  EXPECT_TRUE(r.contains("s1"));
  ASSERT_NE(r.MailboxOf("s1"), nullptr);
  EXPECT_EQ(*r.MailboxOf("s1"), "/var/mail/ann");
  EXPECT_EQ(r.MailboxOf("s2"), nullptr);
  absl::StatusOr<CommitTarget> t = r.CheckCommit("s1", CommitOf({{240, Hash('c')}}));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->mailbox, "/var/mail/ann");
  EXPECT_EQ(t->deleted, std::vector<size_t>{2});
  EXPECT_EQ(t->snapshot->count(), 3u);
  r.Remove("s1");
  EXPECT_FALSE(r.contains("s1"));
  EXPECT_TRUE(absl::IsFailedPrecondition(r.CheckCommit("s1", v1::Commit()).status()));
}

}  // namespace
}  // namespace poplar::indexer

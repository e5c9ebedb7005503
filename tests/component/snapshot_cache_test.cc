// SnapshotCache and its pure parts: a spliced snapshot equals one rebuilt from the index; the
// hidden mask; the cache against a real index of a real mbox.
#include "indexer/snapshot_cache.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "indexer/index_store.h"
#include "indexer/mailbox_indexer.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::TempDir;

MessageRecord Record(int i) {
  MessageRecord m;
  m.offset = 100 * static_cast<uint64_t>(i);
  m.data_offset = m.offset + 40;
  m.end_offset = m.offset + 100;
  m.header_length = 20;
  m.octets = 62;
  m.lines = 3;
  m.uidl = absl::StrCat("uidl-", i);
  m.content_hash = Hash128{static_cast<uint64_t>(i), static_cast<uint64_t>(i) * 7};
  return m;
}

std::vector<MessageRecord> Records(int first, int last) {
  std::vector<MessageRecord> out;
  for (int i = first; i < last; ++i) out.push_back(Record(i));
  return out;
}

MailboxRecord Mailbox() {
  MailboxRecord mb;
  mb.path = "/var/mail/ann";
  mb.device = 8;
  mb.inode = 42;
  return mb;
}

TEST(SnapshotCache, SpliceEqualsARebuild) {
  struct Case {
    const char* name;
    int before;         // messages 0..before-1 in the old snapshot
    uint64_t from, to;  // replaced region (From_ line offsets)
    int added_first, added_last;
  };
  const Case cases[] = {
      {"append to empty", 0, 0, UINT64_MAX, 0, 3},
      {"append", 5, 500, UINT64_MAX, 5, 8},
      {"replace the tentative tail", 5, 400, UINT64_MAX, 4, 7},
      {"nothing added", 5, 500, UINT64_MAX, 5, 5},
      {"delivery in progress: keep the tail", 6, 300, 400, 3, 4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const v1::Snapshot old = SnapshotOfRecords(Mailbox(), Records(0, c.before));
    std::shared_ptr<const v1::Snapshot> spliced =
        SpliceSnapshot(old, c.from, c.to, Records(c.added_first, c.added_last));
    std::vector<MessageRecord> want = Records(0, static_cast<int>(c.from / 100));
    for (const MessageRecord& m : Records(c.added_first, c.added_last)) want.push_back(m);
    if (c.to != UINT64_MAX) {
      for (const MessageRecord& m : Records(static_cast<int>(c.to / 100), c.before)) {
        want.push_back(m);
      }
    }
    v1::Snapshot rebuilt = SnapshotOfRecords(Mailbox(), want);
    EXPECT_EQ(spliced->SerializeAsString(), rebuilt.SerializeAsString());
  }
}

TEST(SnapshotCache, HiddenMask) {
  const std::vector<MessageRecord> messages = Records(0, 4);
  auto hidden = [](uint64_t data_offset, const MessageRecord& like) {
    return HiddenMessage{data_offset, like.content_hash, 100, 0};
  };
  struct Case {
    const char* name;
    std::vector<HiddenMessage> hidden;
    std::vector<bool> want;
  };
  const Case cases[] = {
      {"none", {}, {false, false, false, false}},
      {"by offset and hash", {hidden(140, messages[1])}, {false, true, false, false}},
      {"moved: found by hash", {hidden(999, messages[2])}, {false, false, true, false}},
      {"offset of another message: by hash",
       {hidden(40, messages[3])},
       {false, false, false, true}},
      {"gone", {HiddenMessage{140, Hash128{9, 9}, 100, 0}}, {false, false, false, false}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(HiddenMask(messages, c.hidden), c.want);
  }
}

class SnapshotCacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    indexer_ = std::make_unique<MailboxIndexer>(store_.get(), mbox::UidlOptions{}, &probe_);
    cache_ = std::make_unique<SnapshotCache>(store_.get());
  }
  static std::string Msg(int i) {
    return absl::StrCat("From s", i, "@example.org Thu Nov 26 10:00:00 2026\nSubject: ", i,
                        "\n\nbody\n\n");
  }
  absl::StatusOr<IndexOutcome> Update() { return indexer_->Update(path_, "ann", false); }

  TempDir dir_;
  std::string path_ = dir_.File("ann");
  LockFileProbe probe_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<MailboxIndexer> indexer_;
  std::unique_ptr<SnapshotCache> cache_;
};

TEST_F(SnapshotCacheStoreTest, FollowsAppendsAndHidesHiddenMessages) {
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> none = cache_->Get(path_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);  // not indexed

  testing::WriteFile(path_, Msg(1) + Msg(2));
  ASSERT_TRUE(Update().ok());
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> first = cache_->Get(path_);
  ASSERT_TRUE(first.ok() && *first);
  EXPECT_EQ((*first)->count(), 2u);

  testing::AppendFile(path_, Msg(3));
  absl::StatusOr<IndexOutcome> o = Update();
  cache_->Follow(path_, o);
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> spliced = cache_->Get(path_);
  ASSERT_TRUE(spliced.ok() && *spliced);
  EXPECT_EQ((*spliced)->count(), 3u);
  EXPECT_EQ((*first)->count(), 2u);  // what the first session was shown stays
  cache_->Drop(path_);
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> rebuilt = cache_->Get(path_);
  ASSERT_TRUE(rebuilt.ok() && *rebuilt);
  EXPECT_EQ((*spliced)->SerializeAsString(), (*rebuilt)->SerializeAsString());

  // Hide message 2: the next snapshot leaves it out, until the hidden list is cleared.
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(path_);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages((*rec)->id);
  ASSERT_TRUE(messages.ok());
  const MessageRecord& m = (*messages)[1];
  ASSERT_TRUE(
      store_->HideMessages(path_, {HiddenMessage{m.data_offset, m.content_hash, 1, 0}}).ok());
  cache_->MarkHidden(path_);
  EXPECT_TRUE(cache_->HasHidden(path_));
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> filtered = cache_->Get(path_);
  ASSERT_TRUE(filtered.ok() && *filtered);
  EXPECT_EQ((*filtered)->count(), 2u);
  EXPECT_EQ((*filtered)->data_offsets(1), (*rebuilt)->data_offsets(2));

  SnapshotCache reloaded(store_.get());
  ASSERT_TRUE(reloaded.LoadHidden().ok());
  EXPECT_EQ(reloaded.MailboxesWithHidden(), std::vector<std::string>{path_});
  cache_->ClearHidden(path_);
  EXPECT_FALSE(cache_->HasHidden(path_));
}

}  // namespace
}  // namespace poplar::indexer

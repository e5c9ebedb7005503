// ExpungeCoordinator on its own (the Indexer's tests cover it end to end): deferred hiding and
// compaction, an immediate expunge, and the refusals that delete nothing.
#include "indexer/expunge_coordinator.h"

#include <sys/stat.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "indexer/mailbox_indexer.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::ReadFile;
using ::poplar::testing::TempDir;

std::string Msg(int i) {
  return absl::StrCat("From s", i, "@example.org Thu Nov 26 10:00:00 2026\nSubject: ", i,
                      "\n\nbody ", i, "\n\n");
}

class ExpungeCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    config::OwnerCheck any;
    any.set_rule(config::OwnerCheck::OWNER_ANY);
    absl::StatusOr<MailboxOwner> owner = MailboxOwner::FromConfig(any);
    ASSERT_TRUE(owner.ok()) << owner.status();
    owner_ = std::make_unique<MailboxOwner>(*std::move(owner));
    expunger_ = std::make_unique<Expunger>(store_.get(), dir_.File("journal"));
    ASSERT_TRUE(expunger_->Init().ok());
    cache_ = std::make_unique<SnapshotCache>(store_.get());
    coordinator_ = std::make_unique<ExpungeCoordinator>(
        mu_, store_.get(), expunger_.get(), cache_.get(), owner_.get(),
        ExpungeCoordinator::Options{}, [this](const std::string&) { ++reindexed_; });
    testing::WriteFile(path_, Msg(1) + Msg(2) + Msg(3));
    Update();
  }
  void Update() {
    MailboxIndexer indexer(store_.get(), mbox::UidlOptions{}, &probe_);
    indexer.set_owner(owner_.get());
    absl::StatusOr<IndexOutcome> o = indexer.Update(path_, "ann", false);
    ASSERT_TRUE(o.ok()) << o.status();
    cache_->Follow(path_, o);
  }
  std::shared_ptr<const v1::Snapshot> Snapshot() {
    absl::StatusOr<std::shared_ptr<const v1::Snapshot>> s = cache_->Get(path_);
    EXPECT_TRUE(s.ok() && *s);
    return s.ok() ? *s : nullptr;
  }
  lock::MailboxLock Locks() {
    absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(path_, {});
    EXPECT_TRUE(held.ok()) << held.status();
    return *std::move(held);
  }

  TempDir dir_;
  std::string path_ = dir_.File("ann");
  absl::Mutex mu_;
  LockFileProbe probe_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<MailboxOwner> owner_;
  std::unique_ptr<Expunger> expunger_;
  std::unique_ptr<SnapshotCache> cache_;
  std::unique_ptr<ExpungeCoordinator> coordinator_;
  int reindexed_ = 0;
};

TEST_F(ExpungeCoordinatorTest, ExpungeRewritesTheFileAndTheIndex) {
  std::shared_ptr<const v1::Snapshot> snap = Snapshot();
  lock::MailboxLock held = Locks();
  absl::MutexLock lock(&mu_);
  coordinator_->AssertHeld();
  absl::StatusOr<v1::CommitResult> r = coordinator_->Expunge(path_, *snap, {1}, std::move(held));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->deleted(), 1u);
  EXPECT_EQ(r->bytes_removed(), Msg(2).size());
  EXPECT_EQ(ReadFile(path_), Msg(1) + Msg(3));
  EXPECT_FALSE(coordinator_->Compacting(path_));
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> after = cache_->Get(path_);
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_EQ((*after)->count(), 2u);
  // Message 3 kept its UIDL.
  EXPECT_EQ(std::string((*after)->uidls()).substr((*after)->uidls().find('\n')),
            std::string(snap->uidls()).substr(snap->uidls().rfind('\n')));
  EXPECT_TRUE(coordinator_->Recover("").ok());  // nothing left open
  EXPECT_EQ(reindexed_, 0);
}

TEST_F(ExpungeCoordinatorTest, RefusalsDeleteNothing) {
  struct Case {
    const char* name;
    std::function<void(v1::Snapshot*)> change;
  };
  const Case cases[] = {
      {"another inode", [](v1::Snapshot* s) { s->mutable_file()->set_inode(1); }},
      {"covers more than the file",
       [](v1::Snapshot* s) { s->mutable_file()->set_size(s->file().size() + 100); }},
      {"a message changed", [](v1::Snapshot* s) { (*s->mutable_content_hashes())[0] ^= 1; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::Snapshot snap = *Snapshot();
    c.change(&snap);
    lock::MailboxLock held = Locks();
    absl::MutexLock lock(&mu_);
    coordinator_->AssertHeld();
    absl::StatusOr<v1::CommitResult> r = coordinator_->Expunge(path_, snap, {1}, std::move(held));
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
    EXPECT_EQ(ReadFile(path_), Msg(1) + Msg(2) + Msg(3));
  }
}

TEST_F(ExpungeCoordinatorTest, HiddenMessagesAreFilteredThenCompacted) {
  std::shared_ptr<const v1::Snapshot> snap = Snapshot();
  {
    absl::MutexLock lock(&mu_);
    coordinator_->AssertHeld();
    v1::Snapshot replaced = *snap;
    replaced.mutable_file()->set_inode(1);
    EXPECT_TRUE(absl::IsUnavailable(coordinator_->Hide(path_, replaced, {0}).status()));
    absl::StatusOr<v1::CommitResult> r = coordinator_->Hide(path_, *snap, {0, 2});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->deleted(), 2u);
  }
  EXPECT_TRUE(cache_->HasHidden(path_));
  EXPECT_EQ(Snapshot()->count(), 1u);
  EXPECT_EQ(ReadFile(path_), Msg(1) + Msg(2) + Msg(3));  // nothing removed yet

  lock::MailboxLock held = Locks();
  absl::MutexLock lock(&mu_);
  coordinator_->AssertHeld();
  absl::StatusOr<bool> compacted = coordinator_->CompactHidden(path_, std::move(held));
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  EXPECT_TRUE(*compacted);
  EXPECT_EQ(ReadFile(path_), Msg(2));
  EXPECT_FALSE(cache_->HasHidden(path_));
  absl::StatusOr<std::vector<HiddenMessage>> left = store_->HiddenMessages(path_);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

}  // namespace
}  // namespace poplar::indexer

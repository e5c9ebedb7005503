// Mailbox refusals (design §8, config check_owner): symlinks, FIFOs, directories and files not
// owned as expected are refused before a byte is read, by the MailboxIndexer (scans and
// logins) and by the Indexer (login and expunge). Real files in temp dirs; the foreign-owner
// cases chown, so they need root (CI runs as root) and skip otherwise.
#include "indexer/mailbox_owner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "indexer/indexer.h"
#include "indexer/mailbox_indexer.h"
#include "tests/component/indexer_testing.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;
using ::testing::HasSubstr;

constexpr uid_t kForeignUid = 54321;  // no user on a test machine has it

const char kMbox[] =
    "From a@example.org  Thu Nov 26 10:00:00 2026\nSubject: one\n\nbody 1\n\n"
    "From b@example.org  Thu Nov 26 10:01:00 2026\nSubject: two\n\nbody 2\n";

config::OwnerCheck Rule(config::OwnerCheck::Rule rule, const std::string& spool_owner = "") {
  config::OwnerCheck c;
  c.set_rule(rule);
  if (!spool_owner.empty()) c.set_spool_owner(spool_owner);
  return c;
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(MailboxOwner, SystemUserRule) {
  absl::StatusOr<MailboxOwner> o =
      MailboxOwner::FromConfig(Rule(config::OwnerCheck::OWNER_SYSTEM_USER));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->Check(0, "root").ok());
  absl::Status foreign = o->Check(kForeignUid, "root");
  EXPECT_TRUE(absl::IsFailedPrecondition(foreign));
  EXPECT_THAT(Message(foreign), HasSubstr("owned by uid 54321, expected root (uid 0)"));
  // A name that is no system user, with no spool_owner to fall back on: nobody may own it.
  absl::Status virt = o->Check(0, "no-such-user-poplar");
  EXPECT_TRUE(absl::IsFailedPrecondition(virt));
  EXPECT_THAT(Message(virt), HasSubstr("no system user 'no-such-user-poplar'"));
  // Names are validated before any passwd lookup.
  EXPECT_THAT(Message(o->Check(0, "../root")), HasSubstr("not a valid user name"));
  EXPECT_THAT(Message(o->Check(0, "Root")), HasSubstr("not a valid user name"));
  EXPECT_THAT(Message(o->Check(0, "")), HasSubstr("no user name"));
}

TEST(MailboxOwner, SystemUserRuleFallsBackToSpoolOwnerForVirtualNames) {
  absl::StatusOr<MailboxOwner> o =
      MailboxOwner::FromConfig(Rule(config::OwnerCheck::OWNER_SYSTEM_USER, "nobody"));
  ASSERT_TRUE(o.ok()) << o.status();
  const uid_t nobody = *SystemUserUid("nobody");
  EXPECT_TRUE(o->Check(nobody, "no-such-user-poplar").ok());
  EXPECT_THAT(Message(o->Check(0, "no-such-user-poplar")),
              HasSubstr("expected check_owner.spool_owner nobody"));
  // A system user's mailbox is still checked against that user, not the spool owner.
  EXPECT_TRUE(o->Check(0, "root").ok());
  EXPECT_FALSE(o->Check(nobody, "root").ok());
}

TEST(MailboxOwner, SpoolOwnerRuleAndAny) {
  absl::StatusOr<MailboxOwner> o =
      MailboxOwner::FromConfig(Rule(config::OwnerCheck::OWNER_SPOOL_OWNER, "nobody"));
  ASSERT_TRUE(o.ok()) << o.status();
  const uid_t nobody = *SystemUserUid("nobody");
  EXPECT_TRUE(o->Check(nobody, "root").ok());  // system users are not consulted
  EXPECT_FALSE(o->Check(0, "root").ok());
  EXPECT_TRUE(o->Check(nobody, "anyone").ok());

  absl::StatusOr<MailboxOwner> any = MailboxOwner::FromConfig(Rule(config::OwnerCheck::OWNER_ANY));
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->Check(kForeignUid, "root").ok());

  EXPECT_TRUE(absl::IsFailedPrecondition(
      MailboxOwner::FromConfig(Rule(config::OwnerCheck::OWNER_SYSTEM_USER, "no-such-user-poplar"))
          .status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      MailboxOwner::FromConfig(Rule(config::OwnerCheck::OWNER_SPOOL_OWNER)).status()));
}

class MailboxRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    absl::StatusOr<MailboxOwner> o = MailboxOwner::FromConfig(
        Rule(config::OwnerCheck::OWNER_SYSTEM_USER, poplar::testing::CurrentUserName()));
    ASSERT_TRUE(o.ok()) << o.status();
    owner_ = std::make_unique<MailboxOwner>(*o);
    indexer_ = std::make_unique<MailboxIndexer>(store_.get(), mbox::UidlOptions{}, &probe_);
    indexer_->set_owner(owner_.get());
  }
  // The refusal for `path`, or OK.
  absl::Status Update(const std::string& path) { return indexer_->Update(path, "alice").status(); }

  TempDir dir_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<MailboxOwner> owner_;
  HeldLocksProbe probe_;
  std::unique_ptr<MailboxIndexer> indexer_;
};

TEST_F(MailboxRefusalTest, RegularFileOfTheExpectedOwnerIsIndexed) {
  WriteFile(dir_.File("alice"), kMbox);
  absl::StatusOr<IndexOutcome> o = indexer_->Update(dir_.File("alice"), "alice");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->messages, 2u);
}

TEST_F(MailboxRefusalTest, SymlinkFifoAndDirectoryAreRefused) {
  WriteFile(dir_.File("target"), kMbox);
  ASSERT_EQ(::symlink(dir_.File("target").c_str(), dir_.File("link").c_str()), 0);
  ASSERT_EQ(::mkfifo(dir_.File("fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir(dir_.File("dir").c_str(), 0700), 0);
  const struct {
    const char* name;
    const char* want;
  } cases[] = {{"link", "is a symbolic link"}, {"fifo", "is a FIFO"}, {"dir", "is a directory"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir_.File(c.name);
    absl::Status s = Update(path);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_EQ(Message(s).rfind(absl::StrCat("mailbox ", path, " refused: ", c.want), 0), 0u) << s;
    auto rec = store_->FindMailbox(path);
    ASSERT_TRUE(rec.ok());
    EXPECT_FALSE(rec->has_value()) << "a refused file must not be indexed";
    // The whole-file scan (poplarctl verify) refuses them the same way.
    EXPECT_TRUE(absl::IsFailedPrecondition(ScanWholeFile(path, &probe_, false).status()));
  }
}

TEST_F(MailboxRefusalTest, ForeignOwnerIsRefusedAndTheIndexKept) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another uid needs root";
  const std::string path = dir_.File("alice");
  WriteFile(path, kMbox);
  ASSERT_TRUE(Update(path).ok());
  // Someone else's file put in its place (same name, new owner): refused before reading.
  ASSERT_EQ(::chown(path.c_str(), kForeignUid, static_cast<gid_t>(-1)), 0);
  testing::AppendFile(path, "\nFrom c@example.org  Thu Nov 26 10:02:00 2026\nSubject: 3\n\nx\n");
  absl::Status s = Update(path);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(Message(s),
              HasSubstr(absl::StrCat("mailbox ", path, " refused: owned by uid 54321, expected")));
  auto rec = store_->FindMailbox(path);
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->messages, 2u) << "the refused file's new mail must not be indexed";
  // Back to the right owner: indexed again.
  ASSERT_EQ(::chown(path.c_str(), ::geteuid(), static_cast<gid_t>(-1)), 0);
  absl::StatusOr<IndexOutcome> o = indexer_->Update(path, "alice");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->messages, 3u);
}

// The Indexer: a login to a refused mailbox is FailedPrecondition (popd: -ERR [SYS/PERM]); an
// expunge of a mailbox that changed owner since the login deletes nothing.
class IndexerRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(dir_.File("spool").c_str(), 0755), 0);
    config::IndexerConfig c = poplar::testing::TestIndexerConfig(dir_);
    c.set_lock_timeout_ms(300);
    absl::StatusOr<std::unique_ptr<Indexer>> idx = Indexer::Create(c);
    ASSERT_TRUE(idx.ok()) << idx.status();
    indexer_ = std::move(*idx);
    for (const char* user : {"alice", "bob"}) {
      ASSERT_TRUE(poplar::testing::AddTestAccount(*indexer_, user, "pw").ok());
    }
  }
  absl::StatusOr<Indexer::Opened> Open(const std::string& user) {
    v1::OpenSession req;
    req.set_user(user);
    req.set_password("pw");
    return indexer_->OpenSession(req, {});
  }

  TempDir dir_;
  std::unique_ptr<Indexer> indexer_;
};

TEST_F(IndexerRefusalTest, LoginToASymlinkedMailboxIsRefused) {
  WriteFile(dir_.File("spool/bob"), kMbox);
  ASSERT_EQ(::symlink(dir_.File("spool/bob").c_str(), dir_.File("spool/alice").c_str()), 0);
  absl::StatusOr<Indexer::Opened> o = Open("alice");
  EXPECT_TRUE(absl::IsFailedPrecondition(o.status())) << o.status();
  EXPECT_THAT(Message(o.status()), HasSubstr("is a symbolic link"));
  // The lease was given back, and bob's own login works.
  EXPECT_TRUE(indexer_->ListSessions().sessions().empty());
  absl::StatusOr<Indexer::Opened> bob = Open("bob");
  ASSERT_TRUE(bob.ok()) << bob.status();
  EXPECT_EQ(bob->snapshot.count(), 2u);
}

TEST_F(IndexerRefusalTest, ExpungeOfAMailboxThatChangedOwnerDeletesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another uid needs root";
  const std::string path = dir_.File("spool/alice");
  WriteFile(path, kMbox);
  absl::StatusOr<Indexer::Opened> o = Open("alice");
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->snapshot.count(), 2u);
  ASSERT_EQ(::chown(path.c_str(), kForeignUid, static_cast<gid_t>(-1)), 0);
  v1::Commit commit;
  v1::MessageRef* ref = commit.add_deleted();
  ref->set_data_offset(o->snapshot.data_offsets(0));
  ref->set_content_hash(o->snapshot.content_hashes().substr(0, 16));
  absl::StatusOr<v1::CommitResult> r = indexer_->Commit(o->lease.session_id, commit);
  indexer_->CloseSession(o->lease.session_id);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_THAT(Message(r.status()), HasSubstr("owned by uid 54321"));
  EXPECT_EQ(poplar::testing::ReadFile(path), kMbox);
  // And the next login is refused too.
  EXPECT_TRUE(absl::IsFailedPrecondition(Open("alice").status()));
}

}  // namespace
}  // namespace poplar::indexer

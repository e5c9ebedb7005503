// MailboxIndexer + IndexStore against real files and a real SQLite database in a temp dir.
#include "indexer/mailbox_indexer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mbox/scanner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::AppendFile;
using ::poplar::testing::ReadFile;
using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;

std::string Msg(int i, const std::string& extra_header = "", const std::string& body = "") {
  return absl::StrCat("From sender", i, "@example.org  Thu Nov 26 10:00:", 10 + i % 50,
                      " 2026\nFrom: s", i, "@example.org\nSubject: message ", i, "\n", extra_header,
                      "\n", body.empty() ? absl::StrCat("body of ", i, "\n.dot\n") : body, "\n");
}

// Scripted probe: the test says when an MDA "holds its locks".
class FakeProbe : public WriterProbe {
 public:
  bool WriterActive(const std::string&, int) override { return active; }
  bool active = false;
};

class MailboxIndexerTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    indexer_.reset();
    store_.reset();
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    indexer_ = std::make_unique<MailboxIndexer>(store_.get(), mbox::UidlOptions{}, &probe_);
  }
  IndexOutcome Update() {
    auto r = indexer_->Update(mbox_, "alice");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : IndexOutcome{};
  }
  std::vector<MessageRecord> Messages() {
    auto rec = store_->FindMailbox(mbox_);
    EXPECT_TRUE(rec.ok() && rec->has_value());
    if (!rec.ok() || !rec->has_value()) return {};
    auto m = store_->LoadMessages((*rec)->id);
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : std::vector<MessageRecord>{};
  }
  std::map<std::string, std::string> UidlBySubject() {
    std::map<std::string, std::string> out;
    std::string file = ReadFile(mbox_);
    for (const MessageRecord& m : Messages()) {
      std::string text = file.substr(m.data_offset, m.end_offset - m.data_offset);
      size_t s = text.find("Subject: ");
      out[text.substr(s, text.find('\n', s) - s)] = m.uidl;
    }
    return out;
  }

  TempDir dir_;
  std::string mbox_ = dir_.File("alice");
  FakeProbe probe_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<MailboxIndexer> indexer_;
};

TEST_F(MailboxIndexerTest, NewMailboxMatchesAFullScan) {
  std::string text = Msg(1) + Msg(2) + Msg(3);
  WriteFile(mbox_, text);
  IndexOutcome o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kNew);
  EXPECT_EQ(o.messages, 3u);
  mbox::ScanResult want = mbox::ScanMbox(text, 0, {.final = true});
  std::vector<MessageRecord> got = Messages();
  ASSERT_EQ(got.size(), want.messages.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, want.messages[i].offset);
    EXPECT_EQ(got[i].end_offset, want.messages[i].end_offset);
    EXPECT_EQ(got[i].octets, want.messages[i].octets);
    EXPECT_EQ(got[i].content_hash, want.messages[i].content_hash);
    EXPECT_EQ(got[i].uidl, want.messages[i].uidl_digest);
  }
}

TEST_F(MailboxIndexerTest, UnchangedFileCostsNoScan) {
  WriteFile(mbox_, Msg(1));
  Update();
  IndexOutcome o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kUnchanged);
  EXPECT_EQ(o.bytes_scanned, 0u);
  EXPECT_EQ(o.messages, 1u);
}

TEST_F(MailboxIndexerTest, AppendIsIncrementalAndKeepsUidls) {
  std::string first = Msg(1) + Msg(2) + Msg(3) + Msg(4);
  WriteFile(mbox_, first);
  Update();
  auto before = Messages();
  AppendFile(mbox_, Msg(5));
  IndexOutcome o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kAppended);
  EXPECT_EQ(o.messages, 5u);
  // Only the tail was read: the last message (it could have grown) and the new one.
  EXPECT_EQ(o.bytes_scanned, Msg(4).size() + Msg(5).size());
  auto after = Messages();
  ASSERT_EQ(after.size(), 5u);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].uidl, before[i].uidl);
    EXPECT_EQ(after[i].octets, before[i].octets);
  }
}

TEST_F(MailboxIndexerTest, DeliveryInProgressIsNotIndexedUntilTheWriterIsDone) {
  WriteFile(mbox_, Msg(1));
  Update();
  // An MDA holds its locks and has written half a message (no blank line after it yet).
  probe_.active = true;
  std::string next = Msg(2);
  AppendFile(mbox_, next.substr(0, next.size() / 2));
  IndexOutcome o = Update();
  EXPECT_TRUE(o.writer_active);
  EXPECT_EQ(o.messages, 1u);
  AppendFile(mbox_, next.substr(next.size() / 2));
  probe_.active = false;
  o = Update();
  EXPECT_EQ(o.messages, 2u);
  EXPECT_EQ(Messages()[1].octets,
            mbox::ScanMbox(ReadFile(mbox_), 0, {.final = true}).messages[1].octets);
}

TEST_F(MailboxIndexerTest, RealDotlockFileMeansWriterActive) {
  LockFileProbe probe;
  WriteFile(mbox_, Msg(1));
  IndexStore* store = store_.get();
  MailboxIndexer indexer(store, {}, &probe);
  ASSERT_TRUE(indexer.Update(mbox_, "alice").ok());
  WriteFile(mbox_ + ".lock", "12345\n");
  std::string next = Msg(2);
  AppendFile(mbox_, next.substr(0, 40));  // half a From_ line and header
  auto r = indexer.Update(mbox_, "alice");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->writer_active);
  EXPECT_EQ(r->messages, 1u);
  AppendFile(mbox_, next.substr(40));
  ::unlink((mbox_ + ".lock").c_str());
  r = indexer.Update(mbox_, "alice");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->writer_active);
  EXPECT_EQ(r->messages, 2u);
}

TEST_F(MailboxIndexerTest, FcntlWriteLockMeansWriterActive) {
  LockFileProbe probe;
  WriteFile(mbox_, Msg(1));
  int fd = ::open(mbox_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  int probe_fd = ::open(mbox_.c_str(), O_RDONLY);
  EXPECT_FALSE(probe.WriterActive(mbox_, probe_fd));
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_OFD_SETLK, &fl), 0);  // an MDA's lock, on its own open file
  EXPECT_TRUE(probe.WriterActive(mbox_, probe_fd));
  ::close(fd);
  EXPECT_FALSE(probe.WriterActive(mbox_, probe_fd));
  ::close(probe_fd);
}

TEST_F(MailboxIndexerTest, ProbeFollowsTheConfiguredLockMethods) {
  WriteFile(mbox_, Msg(1));
  int probe_fd = ::open(mbox_.c_str(), O_RDONLY);
  ASSERT_GE(probe_fd, 0);
  int mda_fd = ::open(mbox_.c_str(), O_RDWR);
  ASSERT_GE(mda_fd, 0);
  LockFileProbe flock_only(false, false, true);
  LockFileProbe dotlock_only(true, false, false);
  EXPECT_FALSE(flock_only.WriterActive(mbox_, probe_fd));
  ASSERT_EQ(::flock(mda_fd, LOCK_EX | LOCK_NB), 0);  // an MDA's flock on its own open file
  EXPECT_TRUE(flock_only.WriterActive(mbox_, probe_fd));
  EXPECT_FALSE(dotlock_only.WriterActive(mbox_, probe_fd));  // not a method this site uses
  ::flock(mda_fd, LOCK_UN);
  EXPECT_FALSE(flock_only.WriterActive(mbox_, probe_fd));
  WriteFile(mbox_ + ".lock", "1\n");
  EXPECT_TRUE(dotlock_only.WriterActive(mbox_, probe_fd));
  EXPECT_FALSE(flock_only.WriterActive(mbox_, probe_fd));
  ::close(mda_fd);
  ::close(probe_fd);
}

TEST_F(MailboxIndexerTest, RewriteInPlaceKeepsUidlsOfUnchangedMessages) {
  WriteFile(mbox_, Msg(1) + Msg(2) + Msg(3) + Msg(4));
  Update();
  auto before = UidlBySubject();
  // Another program (mutt) expunges message 2 by rewriting the same inode.
  struct stat st1 {};
  ::stat(mbox_.c_str(), &st1);
  {
    std::string text = Msg(1) + Msg(3) + Msg(4);
    FILE* f = ::fopen(mbox_.c_str(), "r+");
    ASSERT_NE(f, nullptr);
    ::fwrite(text.data(), 1, text.size(), f);
    ::fflush(f);
    ASSERT_EQ(::ftruncate(::fileno(f), static_cast<off_t>(text.size())), 0);
    ::fclose(f);
  }
  struct stat st2 {};
  ::stat(mbox_.c_str(), &st2);
  ASSERT_EQ(st1.st_ino, st2.st_ino);
  IndexOutcome o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kReindexed);
  auto after = UidlBySubject();
  ASSERT_EQ(after.size(), 3u);
  for (const auto& [subject, uidl] : after) EXPECT_EQ(uidl, before[subject]) << subject;
}

TEST_F(MailboxIndexerTest, ChangedPrefixWithGrowthIsDetected) {
  WriteFile(mbox_, Msg(1) + Msg(2));
  Update();
  // Same size class but different bytes before the resume point, plus growth.
  WriteFile(mbox_ + ".new", Msg(7) + Msg(2) + Msg(3));
  std::string text = ReadFile(mbox_ + ".new");
  FILE* f = ::fopen(mbox_.c_str(), "r+");
  ::fwrite(text.data(), 1, text.size(), f);
  ::fclose(f);
  IndexOutcome o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kReindexed);
  EXPECT_EQ(o.messages, 3u);
}

TEST_F(MailboxIndexerTest, ReplacedInodeAndRemovedFile) {
  WriteFile(mbox_, Msg(1) + Msg(2));
  Update();
  auto before = UidlBySubject();
  WriteFile(mbox_ + ".tmp", Msg(2) + Msg(1));
  ASSERT_EQ(::rename((mbox_ + ".tmp").c_str(), mbox_.c_str()), 0);
  IndexOutcome o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kReindexed);
  EXPECT_EQ(UidlBySubject(), before);
  ::unlink(mbox_.c_str());
  o = Update();
  EXPECT_EQ(o.kind, IndexOutcome::Kind::kRemoved);
  auto rec = store_->FindMailbox(mbox_);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
}

TEST_F(MailboxIndexerTest, StatusHeaderRewriteDoesNotChangeUidl) {
  WriteFile(mbox_, Msg(1) + Msg(2));
  Update();
  auto before = UidlBySubject();
  WriteFile(mbox_ + ".tmp", Msg(1, "Status: RO\nX-Status: A\n") + Msg(2, "Status: O\n"));
  ASSERT_EQ(::rename((mbox_ + ".tmp").c_str(), mbox_.c_str()), 0);
  Update();
  EXPECT_EQ(UidlBySubject(), before);
}

TEST_F(MailboxIndexerTest, LosingTheIndexRebuildsIdenticalNumbersSizesAndUidls) {
  std::string text =
      Msg(1) + Msg(2, "X-UIDL: migrated-from-qpopper-1\n") + Msg(3) + Msg(3) + Msg(4);
  WriteFile(mbox_, text.substr(0, text.size() / 2));
  Update();
  AppendFile(mbox_, text.substr(text.size() / 2));
  Update();
  auto incremental = Messages();
  ASSERT_EQ(incremental.size(), 5u);
  EXPECT_EQ(incremental[1].uidl, "migrated-from-qpopper-1");
  EXPECT_EQ(incremental[3].uidl, incremental[2].uidl + "-2");  // a duplicate delivery
  indexer_.reset();
  store_.reset();
  for (const char* suffix : {"", "-wal", "-shm"})
    ::unlink((dir_.File("index.sqlite") + suffix).c_str());
  Reopen();
  Update();
  auto rebuilt = Messages();
  ASSERT_EQ(rebuilt.size(), incremental.size());
  for (size_t i = 0; i < rebuilt.size(); ++i) {
    EXPECT_EQ(rebuilt[i].offset, incremental[i].offset);
    EXPECT_EQ(rebuilt[i].octets, incremental[i].octets);
    EXPECT_EQ(rebuilt[i].uidl, incremental[i].uidl);
  }
}

TEST_F(MailboxIndexerTest, HugeMessageGrowsTheReadWindow) {
  indexer_->set_window_bytes(64);
  std::string big(200000, 'x');
  for (size_t i = 80; i < big.size(); i += 81) big[i] = '\n';
  WriteFile(mbox_, Msg(1) + Msg(2, "", big + "\n") + Msg(3));
  IndexOutcome o = Update();
  EXPECT_EQ(o.messages, 3u);
  auto want = mbox::ScanMbox(ReadFile(mbox_), 0, {.final = true});
  auto got = Messages();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].octets, want.messages[1].octets);
}

TEST_F(MailboxIndexerTest, SymlinkAndDirectoryAreRefused) {
  WriteFile(dir_.File("target"), Msg(1));
  ASSERT_EQ(::symlink(dir_.File("target").c_str(), mbox_.c_str()), 0);
  auto r = indexer_->Update(mbox_, "alice");
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  ::unlink(mbox_.c_str());
  ASSERT_EQ(::mkdir(mbox_.c_str(), 0700), 0);
  r = indexer_->Update(mbox_, "alice");
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
}

}  // namespace
}  // namespace poplar::indexer

namespace poplar::indexer {
namespace {

TEST_F(MailboxIndexerTest, DeliveryInProgressDecidesWhatItCan) {
  WriteFile(mbox_, Msg(1) + Msg(2) + Msg(3));
  Update();
  probe_.active = true;
  const std::string m5 = Msg(5);
  AppendFile(mbox_, Msg(4) + m5.substr(0, m5.size() / 2));
  IndexOutcome o = Update();
  EXPECT_TRUE(o.writer_active);
  EXPECT_EQ(o.messages, 4u);  // message 4 ends at a complete From_ line: certain
  AppendFile(mbox_, m5.substr(m5.size() / 2));
  probe_.active = false;
  o = Update();
  EXPECT_EQ(o.messages, 5u);
}

}  // namespace
}  // namespace poplar::indexer

namespace poplar::indexer {
namespace {

// A sender forges a Content-Length that points past the end of the file at delivery and would
// land exactly on the separator of the next delivery. By default (trust_content_length off)
// the indexer never lets it merge the two; with the site option on, mboxcl2 bodies that hold
// unescaped "From " lines stay whole.
TEST_F(MailboxIndexerTest, ContentLengthIsTrustedOnlyWhenTheSiteSaysSo) {
  const std::string next = "From b@example.org Thu Nov 26 11:00:00 2026\nSubject: victim\n\nhi\n";
  const std::string body = "forged\n";
  const std::string forged =
      absl::StrCat("From a@example.org Thu Nov 26 10:00:00 2026\nSubject: forged\nContent-Length: ",
                   body.size() + 1 + next.size(), "\n\n", body);
  WriteFile(mbox_, forged + "\n");
  Update();
  AppendFile(mbox_, next);
  Update();
  EXPECT_EQ(Messages().size(), 2u);
  indexer_->set_window_bytes(8 << 20);
  auto full = indexer_->Update(mbox_, "alice", /*force_full=*/true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->messages, 2u);             // a re-index agrees: no merge
  indexer_->set_trust_content_length(true);  // what trusting it would do to this spool
  full = indexer_->Update(mbox_, "alice", true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->messages, 1u);
  indexer_->set_trust_content_length(false);

  // A Dovecot-written mailbox: the body holds an unescaped separator after an empty line.
  const std::string inner = "text\n\nFrom c@example.org Thu Nov 26 09:00:00 2026\nquoted\n";
  WriteFile(mbox_, absl::StrCat("From d@example.org Thu Nov 26 12:00:00 2026\nContent-Length: ",
                                inner.size(), "\n\n", inner, "\n"));
  full = indexer_->Update(mbox_, "alice", true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->messages, 2u);  // the From_ rule splits it
  indexer_->set_trust_content_length(true);
  full = indexer_->Update(mbox_, "alice", true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->messages, 1u);  // trusted: one message
}

}  // namespace
}  // namespace poplar::indexer

namespace poplar::indexer {
namespace {

// open(2)'s ENOTDIR (a spool path through a file) is the one errno mapping's NOT_FOUND, as
// ENOENT is; it was INTERNAL before (mailbox_indexer.cc had its own mapping).
TEST_F(MailboxIndexerTest, PathThroughAFileIsNotFound) {
  WriteFile(dir_.File("file"), Msg(1));
  auto r = indexer_->Update(dir_.File("file/alice"), "alice");
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  auto scan = ScanWholeFile(dir_.File("file/alice"), &probe_, false);
  EXPECT_TRUE(absl::IsNotFound(scan.status())) << scan.status();
}

}  // namespace
}  // namespace poplar::indexer

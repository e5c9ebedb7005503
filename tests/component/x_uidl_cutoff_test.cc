// X-UIDL from strangers (issue 16): MailboxIndexer adopts X-UIDL only for messages that were in
// the mailbox at its first index (the cutoff kept per mailbox in the index), the Qpopper scheme
// on real files, and the schema migration that brings older indexes along unchanged.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mbox/qpopper_uidl.h"
#include "gtest/gtest.h"
#include "indexer/index_store.h"
#include "indexer/mailbox_indexer.h"
#include "indexer/sqlite.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::AppendFile;
using ::poplar::testing::ReadFile;
using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;

constexpr char kCopied[] = "QpopperUidl-0000001";  // 19 characters: in Qpopper's window

std::string From(int i) {
  return absl::StrCat("From s", i, "@example.org  Thu Nov 26 10:00:1", i % 10, " 2026\n");
}

std::string Header(int i, const std::string& x_uidl) {
  return absl::StrCat(x_uidl.empty() ? "" : absl::StrCat("X-UIDL: ", x_uidl, "\n"),
                      "Received: by mx\nSubject: message ", i, "\nMessage-Id: <", i, "@x>\n");
}

std::string Msg(int i, const std::string& x_uidl = "") {
  return absl::StrCat(From(i), Header(i, x_uidl), "\nbody of ", i, "\n\n");
}

class NoWriter : public WriterProbe {
 public:
  bool WriterActive(const std::string&, int) override { return false; }
};

mbox::UidlOptions Qpopper(bool trust = false) {
  mbox::UidlOptions o;
  o.scheme = mbox::UidlScheme::kQpopper;
  o.trust_x_uidl = trust;
  return o;
}

class XUidlCutoffTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(Qpopper()); }
  void Open(mbox::UidlOptions options) {
    indexer_.reset();
    store_.reset();
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    indexer_ = std::make_unique<MailboxIndexer>(store_.get(), options, &probe_);
  }
  void Update(bool force_full = false) {
    auto r = indexer_->Update(mbox_, "alice", force_full);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Subject number -> UIDL.
  std::map<int, std::string> Uidls() {
    std::map<int, std::string> out;
    auto rec = store_->FindMailbox(mbox_);
    EXPECT_TRUE(rec.ok() && rec->has_value());
    if (!rec.ok() || !rec->has_value()) return out;
    auto messages = store_->LoadMessages((*rec)->id);
    EXPECT_TRUE(messages.ok());
    const std::string file = ReadFile(mbox_);
    for (const MessageRecord& m : *messages) {
      size_t s = file.find("Subject: message ", m.data_offset) + 17;
      out[std::stoi(file.substr(s, file.find('\n', s) - s))] = m.uidl;
    }
    return out;
  }
  std::string QpopperHash(int i) {
    return mbox::ComputeQpopperUidl(From(i), Header(i, ""), {}).generated;
  }
  std::optional<uint64_t> Cutoff() {
    auto rec = store_->FindMailbox(mbox_);
    return rec.ok() && rec->has_value() ? (*rec)->x_uidl_cutoff : std::nullopt;
  }

  TempDir dir_;
  std::string mbox_ = dir_.File("alice");
  NoWriter probe_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<MailboxIndexer> indexer_;
};

TEST_F(XUidlCutoffTest, MessagesFromBeforeTheSwitchKeepQpoppersUidls) {
  WriteFile(mbox_, Msg(1, kCopied) + Msg(2));
  Update();
  EXPECT_EQ(Uidls(), (std::map<int, std::string>{{1, kCopied}, {2, QpopperHash(2)}}));
  EXPECT_EQ(Cutoff(), ReadFile(mbox_).size());
  // New mail gets Qpopper's hash too (a fallback to Qpopper downloads nothing twice).
  AppendFile(mbox_, Msg(3));
  Update();
  EXPECT_EQ(Uidls()[3], QpopperHash(3));
}

TEST_F(XUidlCutoffTest, AStrangerCannotHideANewMessageBehindACopiedXUidl) {
  WriteFile(mbox_, Msg(1, kCopied) + Msg(2));
  Update();
  // Message 1 is deleted (the client has its UIDL in its "seen" list)...
  WriteFile(mbox_, Msg(2));
  Update();
  // ...and a sender copies that UIDL into a new message.
  AppendFile(mbox_, Msg(3, kCopied));
  Update();
  std::map<int, std::string> u = Uidls();
  EXPECT_NE(u[3], kCopied);
  EXPECT_EQ(u[3], QpopperHash(3));
  // A fresh X-UIDL in new mail is not adopted either.
  AppendFile(mbox_, Msg(4, "QpopperUidl-0000099"));
  Update();
  EXPECT_EQ(Uidls()[4], QpopperHash(4));
  // A full re-index (admin reindex, index lost for this mailbox's messages) keeps them.
  Update(/*force_full=*/true);
  EXPECT_EQ(Uidls()[3], QpopperHash(3));
  EXPECT_EQ(Uidls()[4], QpopperHash(4));
}

TEST_F(XUidlCutoffTest, ASiteThatTrustsXUidlAdoptsItInNewMail) {
  Open(Qpopper(/*trust=*/true));
  WriteFile(mbox_, Msg(2));
  Update();
  AppendFile(mbox_, Msg(3, kCopied));
  Update();
  EXPECT_EQ(Uidls()[3], kCopied);
}

TEST_F(XUidlCutoffTest, EmptiedMailboxAdoptsNothingLater) {
  WriteFile(mbox_, Msg(1, kCopied));
  Update();
  WriteFile(mbox_, "");  // every message deleted
  Update();
  EXPECT_EQ(Cutoff(), 0u);
  WriteFile(mbox_, Msg(3, kCopied));
  Update();
  EXPECT_EQ(Uidls()[3], QpopperHash(3));
  EXPECT_EQ(Cutoff(), 0u);
}

TEST_F(XUidlCutoffTest, AMailboxCreatedEmptyIsSwitchedByItsFirstContent) {
  WriteFile(mbox_, "");  // created (O_CREAT) and indexed before the first byte is written
  Update();
  EXPECT_EQ(Cutoff(), kXUidlCutoffPending);
  WriteFile(mbox_, Msg(1, kCopied));
  Update();
  EXPECT_EQ(Uidls()[1], kCopied);
  EXPECT_EQ(Cutoff(), ReadFile(mbox_).size());
  AppendFile(mbox_, Msg(2, "QpopperUidl-0000002"));
  Update();
  EXPECT_EQ(Uidls()[2], QpopperHash(2));
}

TEST_F(XUidlCutoffTest, LaterDeliveriesMovedDownByAnExpungeStayAfterTheCutoff) {
  WriteFile(mbox_, Msg(1) + Msg(2, kCopied));
  Update();
  AppendFile(mbox_, Msg(5, "QpopperUidl-0000055"));
  Update();
  ASSERT_EQ(Uidls()[5], QpopperHash(5));
  // Message 1 expunged: message 5 now starts below the old cutoff; its Status is rewritten too,
  // so its content hash changes and it is not carried over by hash.
  std::string m5 = Msg(5, "QpopperUidl-0000055");
  m5.insert(m5.find("\n\n") + 1, "Status: RO\n");
  WriteFile(mbox_, Msg(2, kCopied) + m5);
  Update();
  EXPECT_EQ(Uidls()[2], kCopied);
  EXPECT_EQ(Uidls()[5], QpopperHash(5));
}

TEST_F(XUidlCutoffTest, RewrittenPreSwitchMessagesStillAdopt) {
  WriteFile(mbox_, Msg(1, kCopied) + Msg(2));
  Update();
  // mutt rewrites the mailbox with Status headers: every content hash changes.
  std::string m1 = Msg(1, kCopied);
  m1.insert(m1.find("\n\n") + 1, "Status: RO\n");
  WriteFile(mbox_, m1 + Msg(2));
  Update();
  EXPECT_EQ(Uidls()[1], kCopied);
}

TEST_F(XUidlCutoffTest, IndexesFromBeforeTheCutoffMigrateWithTheirUidls) {
  Open(mbox::UidlOptions{});  // the old default: X-UIDL always adopted
  WriteFile(mbox_, Msg(1, kCopied) + Msg(2));
  Update();
  const std::map<int, std::string> before = Uidls();
  const uint64_t size = ReadFile(mbox_).size();
  // Make it a version-2 index: no cutoff column.
  store_.reset();
  indexer_.reset();
  {
    auto db = sql::Db::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("ALTER TABLE mailboxes DROP COLUMN x_uidl_cutoff").ok());
    ASSERT_TRUE((*db)->Exec("PRAGMA user_version=2").ok());
  }
  Open(mbox::UidlOptions{});
  EXPECT_EQ(Uidls(), before);
  EXPECT_EQ(Cutoff(), size);  // everything the old index held counts as from before the switch
  AppendFile(mbox_, Msg(3, "QpopperUidl-0000033"));
  Update();
  std::map<int, std::string> after = Uidls();
  EXPECT_EQ(after[1], before.at(1));
  EXPECT_EQ(after[2], before.at(2));
  EXPECT_NE(after[3], "QpopperUidl-0000033");
}

}  // namespace
}  // namespace poplar::indexer

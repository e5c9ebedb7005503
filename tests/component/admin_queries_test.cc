// AdminQueries against a real index and account store: accounts, name resolution, verify.
#include "indexer/admin_queries.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "indexer/index_store.h"
#include "indexer/mailbox_indexer.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::TempDir;

std::string Msg(int i) {
  return absl::StrCat("From s", i, "@example.org Thu Nov 26 10:00:00 2026\nSubject: ", i,
                      "\n\nbody\n\n");
}

class AdminQueriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    accounts_ = std::make_unique<AccountStore>(store_->db(), 4096);
    ASSERT_TRUE(accounts_->Init().ok());
    queries_ = std::make_unique<AdminQueries>(store_.get(), accounts_.get(), &probe_, false);
  }
  void Index(const std::string& path, const std::string& user) {
    MailboxIndexer indexer(store_.get(), mbox::UidlOptions{}, &probe_);
    absl::StatusOr<IndexOutcome> o = indexer.Update(path, user, false);
    ASSERT_TRUE(o.ok()) << o.status();
  }

  TempDir dir_;
  LockFileProbe probe_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<AccountStore> accounts_;
  std::unique_ptr<AdminQueries> queries_;
};

TEST_F(AdminQueriesTest, Accounts) {
  struct Case {
    const char* name;
    std::string user, password, crypt_hash;
    bool ok;
  };
  const Case cases[] = {
      {"password", "ann", "pw", "", true},    {"neither", "bob", "", "", false},
      {"both", "bob", "pw", "$6$x$y", false}, {"invalid name", "bad name", "pw", "", false},
      {"twice", "ann", "pw", "", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::AddAccountRequest req;
    req.set_user(c.user);
    req.set_password(c.password);
    req.set_crypt_hash(c.crypt_hash);
    absl::StatusOr<v1::Account> a = queries_->AddAccount(req, "/var/mail/" + c.user);
    EXPECT_EQ(a.ok(), c.ok) << a.status();
  }
  v1::SetApopSecretRequest apop;
  apop.set_user("ann");
  apop.set_secret("shared");
  absl::StatusOr<v1::Account> a = queries_->SetApopSecret(apop);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->apop());
  EXPECT_EQ(a->mailbox(), "/var/mail/ann");
  absl::StatusOr<v1::AccountList> all = queries_->ListAccounts();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->accounts_size(), 1);
  EXPECT_TRUE(queries_->RemoveAccount("ann").ok());
  EXPECT_EQ(queries_->ListAccounts()->accounts_size(), 0);
}

TEST_F(AdminQueriesTest, ResolveShowAndVerify) {
  const std::string path = dir_.File("ann");
  testing::WriteFile(path, Msg(1) + Msg(2));
  Index(path, "ann");
  v1::AddAccountRequest req;
  req.set_user("acct");
  req.set_password("pw");
  ASSERT_TRUE(queries_->AddAccount(req, path).ok());

  EXPECT_EQ(queries_->ResolveMailbox("/x/y").value_or(""), "/x/y");
  EXPECT_EQ(queries_->ResolveMailbox("acct").value_or(""), path);  // an account
  EXPECT_EQ(queries_->ResolveMailbox("ann").value_or(""), path);   // an indexed user
  EXPECT_TRUE(absl::IsNotFound(queries_->ResolveMailbox("nobody").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(queries_->ResolveMailbox("").status()));

  absl::StatusOr<v1::MailboxDetail> d = queries_->ShowMailbox("ann", 2, 5);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->summary().messages(), 2u);
  ASSERT_EQ(d->messages_size(), 1);
  EXPECT_EQ(d->messages(0).number(), 2u);

  absl::StatusOr<v1::VerifyReply> v = queries_->Verify("", {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->mailboxes(), 1u);
  EXPECT_EQ(v->problems_size(), 0);

  // Rewritten behind the index's back: a problem, unless an expunge is rewriting it.
  testing::WriteFile(path, Msg(3) + Msg(4) + "extra\n");
  v = queries_->Verify("ann", {});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->problems_size(), 1);
  v = queries_->Verify("ann", {path});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->mailboxes(), 0u);

  absl::StatusOr<v1::IndexerStatus> s = queries_->Status(7, 9, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->mailboxes(), 1u);
  EXPECT_EQ(s->messages(), 2u);
  EXPECT_EQ(s->sessions(), 3u);
  EXPECT_EQ(s->index_lag_ms(), 7);
}

}  // namespace
}  // namespace poplar::indexer

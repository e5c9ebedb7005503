// Authenticator against a real account store: plaintext, APOP, no credentials; one refusal.
#include "indexer/authenticator.h"

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "indexer/index_store.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::TempDir;

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    accounts_ = std::make_unique<AccountStore>(store_->db(), 4096);
    ASSERT_TRUE(accounts_->Init().ok());
    ASSERT_TRUE(accounts_->Add("ann", PlainPassword{"secret"}, "/var/mail/ann").ok());
    config_.add_spools()->set_directory(dir_.path());
    auth_ = std::make_unique<Authenticator>(accounts_.get(), mu_, nullptr, config_);
  }
  absl::StatusOr<Login> LoginWith(const v1::OpenSession& open) {
    absl::StatusOr<Login> out = absl::UnknownError("not called");
    auth_->LoginAsync(open, [&out](absl::StatusOr<Login> l) { out = std::move(l); });
    return out;
  }
  absl::StatusOr<std::string> Plain(const std::string& user, const std::string& password) {
    absl::StatusOr<std::string> out = absl::UnknownError("not called");
    auth_->AuthenticateAsync(user, password, "",
                             [&out](absl::StatusOr<std::string> u) { out = std::move(u); });
    return out;
  }

  TempDir dir_;
  absl::Mutex mu_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<AccountStore> accounts_;
  config::IndexerConfig config_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, PlaintextPasswords) {
  EXPECT_EQ(Plain("ann", "secret").value_or(""), "ann");
  for (const auto& [user, password] : {std::pair<std::string, std::string>{"ann", "wrong"},
                                       {"bob", "secret"},
                                       {"bad name", "secret"},
                                       {"ann", ""}}) {
    SCOPED_TRACE(user + "/" + password);
    EXPECT_TRUE(absl::IsUnauthenticated(Plain(user, password).status()));
  }
}

TEST_F(AuthenticatorTest, LoginsGetTheAccountsMaildrop) {
  v1::OpenSession open;
  open.set_user("ann");
  open.set_password("secret");
  absl::StatusOr<Login> login = LoginWith(open);
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->user, "ann");
  EXPECT_EQ(login->mailbox, "/var/mail/ann");
  EXPECT_TRUE(login->credentials);

  open.set_password("wrong");
  EXPECT_TRUE(absl::IsUnauthenticated(LoginWith(open).status()));

  // No credentials: the caller vouches for the user; the account must exist all the same.
  open.clear_password();
  login = LoginWith(open);
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_FALSE(login->credentials);
  open.set_user("bob");
  EXPECT_TRUE(absl::IsUnauthenticated(LoginWith(open).status()));
}

TEST_F(AuthenticatorTest, ScramLookupAnswersForUnknownNamesToo) {
  absl::StatusOr<v1::ScramLookupReply> known = auth_->ScramLookup("ann");
  absl::StatusOr<v1::ScramLookupReply> unknown = auth_->ScramLookup("bob");
  ASSERT_TRUE(known.ok()) << known.status();
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_EQ(known->iterations(), 4096u);
  EXPECT_FALSE(unknown->salt().empty());  // no oracle: a made-up salt
}

TEST(DefaultMailboxFor, FirstSpoolHoldingTheNameElseTheFirstSpool) {
  TempDir a, b;
  config::IndexerConfig config;
  config.add_spools()->set_directory(a.path());
  config.add_spools()->set_directory(b.path());
  EXPECT_EQ(DefaultMailboxFor(config, "ann"), a.File("ann"));
  testing::WriteFile(b.File("ann"), "");
  EXPECT_EQ(DefaultMailboxFor(config, "ann"), b.File("ann"));
  EXPECT_EQ(DefaultMailboxFor(config::IndexerConfig(), "ann"), "");
}

}  // namespace
}  // namespace poplar::indexer

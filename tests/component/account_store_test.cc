// AccountStore against a real SQLite database (the index's own file) in a temp dir.
#include "indexer/account_store.h"

#include <crypt.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sasl/base64.h"
#include "common/sasl/scram.h"
#include "common/sasl/user_name.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "indexer/index_store.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassword[] = "correct horse battery staple";

// crypt(3) hash of `password` with a fresh salt for `prefix`, or "" if libcrypt lacks the method.
std::string MakeCryptHash(const std::string& password, const char* prefix) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn(prefix, 0, nullptr, 0, setting, sizeof setting) == nullptr) return "";
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(password.c_str(), setting, data.get());
  if (out == nullptr || out[0] == '*') return "";
  return out;
}

class AccountStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open(uint32_t iterations = kDefaultScramIterations) {
    accounts_.reset();
    index_.reset();
    auto s = IndexStore::Open(dir_.File("index.sqlite"));
    ASSERT_TRUE(s.ok()) << s.status();
    index_ = std::move(*s);
    accounts_ = std::make_unique<AccountStore>(index_->db(), iterations);
    ASSERT_TRUE(accounts_->Init().ok());
  }
  // Every column of the raw row, concatenated as bytes.
  std::string RawRow(const std::string& user) {
    auto s = index_->db()->Prepare(
        "SELECT user, mailbox, credential_kind, credential, apop_secret, created_unix "
        "FROM accounts WHERE user=?");
    EXPECT_TRUE(s.ok());
    if (!s.ok()) return "";
    s->Bind(1, user);
    auto row = s->Step();
    EXPECT_TRUE(row.ok() && *row);
    std::string all;
    for (int i = 0; i < 6; ++i) all += s->Blob(i) + "|";
    return all;
  }

  TempDir dir_;
  std::unique_ptr<IndexStore> index_;
  std::unique_ptr<AccountStore> accounts_;
};

TEST_F(AccountStoreTest, AddGetListRemove) {
  const int64_t before = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  ASSERT_TRUE(accounts_->Add("bob.smith+pop", PlainPassword{"pw"}, "/srv/spool/b/bob").ok());

  auto alice = accounts_->Get("alice");
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->user, "alice");
  EXPECT_EQ(alice->mailbox, "/var/mail/alice");
  EXPECT_EQ(alice->credential_kind, CredentialKind::kScramSha256);
  EXPECT_FALSE(alice->apop_secret.has_value());
  EXPECT_GE(alice->created_unix, before);
  EXPECT_LE(alice->created_unix, absl::ToUnixSeconds(absl::Now()));
  std::optional<sasl::ScramVerifier> v = sasl::ParseScramVerifier(alice->credential);
  ASSERT_TRUE(v.has_value()) << alice->credential;
  EXPECT_EQ(v->iterations, kDefaultScramIterations);
  EXPECT_EQ(v->salt.size(), sasl::kScramSaltBytes);
  EXPECT_TRUE(sasl::VerifyPlainPassword(*v, kPassword));

  auto list = accounts_->List();
  ASSERT_TRUE(list.ok());
  std::vector<std::string> users;
  for (const AccountRecord& r : *list) users.push_back(r.user);
  EXPECT_THAT(users, ElementsAre("alice", "bob.smith+pop"));

  EXPECT_TRUE(accounts_->Remove("alice").ok());
  EXPECT_EQ(accounts_->Get("alice").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(accounts_->Remove("alice").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(accounts_->CheckPassword("alice", kPassword).status().code(),
            absl::StatusCode::kUnauthenticated);
  list = accounts_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].user, "bob.smith+pop");
}

TEST_F(AccountStoreTest, SurvivesReopenAndInitIsIdempotent) {
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  ASSERT_TRUE(accounts_->Init().ok());
  Open();
  EXPECT_TRUE(accounts_->CheckPassword("alice", kPassword).ok());
}

TEST_F(AccountStoreTest, SaltsAreRandom) {
  ASSERT_TRUE(accounts_->Add("a", PlainPassword{kPassword}, "/var/mail/a").ok());
  ASSERT_TRUE(accounts_->Add("b", PlainPassword{kPassword}, "/var/mail/b").ok());
  auto a = accounts_->Get("a");
  auto b = accounts_->Get("b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->credential, b->credential);
}

TEST_F(AccountStoreTest, DuplicateAdd) {
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  absl::Status s = accounts_->Add("alice", PlainPassword{"other"}, "/var/mail/other");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  // The first account is untouched.
  auto r = accounts_->CheckPassword("alice", kPassword);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mailbox, "/var/mail/alice");
  EXPECT_FALSE(accounts_->CheckPassword("alice", "other").ok());
}

TEST_F(AccountStoreTest, CheckPassword) {
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  auto ok = accounts_->CheckPassword("alice", kPassword);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->user, "alice");
  EXPECT_EQ(ok->mailbox, "/var/mail/alice");

  auto wrong = accounts_->CheckPassword("alice", "correct horse battery stapl");
  auto unknown = accounts_->CheckPassword("mallory", kPassword);
  auto invalid = accounts_->CheckPassword("../alice", kPassword);
  auto empty = accounts_->CheckPassword("alice", "");
  auto nul = accounts_->CheckPassword("alice", std::string(kPassword) + std::string(1, '\0'));
  auto upper = accounts_->CheckPassword("Alice", kPassword);
  for (const auto* r : {&wrong, &unknown, &invalid, &empty, &nul, &upper}) {
    EXPECT_EQ(r->status().code(), absl::StatusCode::kUnauthenticated) << r->status();
  }
  // Nothing in the status tells an unknown user from a wrong password.
  EXPECT_EQ(wrong.status(), unknown.status());
  EXPECT_EQ(wrong.status(), invalid.status());
}

// The unknown-user path must cost a full PBKDF2, not a table lookup. With a high iteration
// count the gap without the dummy check would be >100x; take the fastest of several runs and
// ask only for the same order of magnitude, so a loaded machine cannot make it flaky.
TEST_F(AccountStoreTest, UnknownUserCostsAsMuchAsWrongPassword) {
  Open(200'000);
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  auto fastest = [&](const char* user) {
    auto best = std::chrono::steady_clock::duration::max();
    for (int i = 0; i < 3; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      EXPECT_FALSE(accounts_->CheckPassword(user, "wrong password").ok());
      best = std::min(best, std::chrono::steady_clock::now() - t0);
    }
    return std::chrono::duration<double>(best).count();
  };
  double wrong = fastest("alice");
  double unknown = fastest("mallory");
  double invalid = fastest("..");
  EXPECT_GT(unknown, wrong / 4) << "unknown " << unknown << "s vs wrong password " << wrong << "s";
  EXPECT_GT(invalid, wrong / 4) << "invalid " << invalid << "s vs wrong password " << wrong << "s";
}

TEST_F(AccountStoreTest, SetPassword) {
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  auto before = accounts_->Get("alice");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(accounts_->SetPassword("alice", PlainPassword{"new secret"}).ok());
  EXPECT_EQ(accounts_->CheckPassword("alice", kPassword).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(accounts_->CheckPassword("alice", "new secret").ok());
  auto after = accounts_->Get("alice");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->mailbox, before->mailbox);
  EXPECT_EQ(after->created_unix, before->created_unix);

  EXPECT_EQ(accounts_->SetPassword("nobody", PlainPassword{"x"}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(accounts_->SetPassword("alice", PlainPassword{""}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accounts_->SetPassword("Alice", PlainPassword{"x"}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(accounts_->CheckPassword("alice", "new secret").ok());  // failed sets changed nothing
}

TEST_F(AccountStoreTest, PasswordIsNeverStored) {
  const std::string password = "Unique-Pa55word-4-this-test";
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{password}, "/var/mail/alice").ok());
  std::string row = RawRow("alice");
  EXPECT_THAT(row, HasSubstr("SCRAM-SHA-256$4096:"));
  EXPECT_THAT(row, Not(HasSubstr(password)));
  EXPECT_THAT(row, Not(HasSubstr(sasl::Base64Encode(password))));
  EXPECT_THAT(row, Not(HasSubstr("Unique-Pa55")));
  ASSERT_TRUE(accounts_->SetPassword("alice", PlainPassword{password + "2"}).ok());
  EXPECT_THAT(RawRow("alice"), Not(HasSubstr(password)));
  // Nor is it anywhere in the database file or its WAL.
  for (const char* f : {"index.sqlite", "index.sqlite-wal"}) {
    EXPECT_THAT(::poplar::testing::ReadFile(dir_.File(f)), Not(HasSubstr(password))) << f;
  }
}

TEST_F(AccountStoreTest, PasswordRules) {
  EXPECT_EQ(accounts_->Add("a", PlainPassword{""}, "/var/mail/a").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accounts_->Add("a", PlainPassword{std::string_view("pw\0x", 4)}, "/var/mail/a").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      accounts_->Add("a", PlainPassword{std::string(kMaxPasswordBytes + 1, 'p')}, "/var/mail/a")
          .code(),
      absl::StatusCode::kInvalidArgument);
  std::string longest(kMaxPasswordBytes, 'p');
  ASSERT_TRUE(accounts_->Add("a", PlainPassword{longest}, "/var/mail/a").ok());
  EXPECT_TRUE(accounts_->CheckPassword("a", longest).ok());
  EXPECT_FALSE(accounts_->CheckPassword("a", longest + "p").ok());
}

TEST_F(AccountStoreTest, MailboxRules) {
  for (const char* bad : {"", "/", "var/mail/a", "/var/mail/", "/var//mail/a", "/var/mail/../a",
                          "/var/./mail/a", "/var/mail/..", "/var/mail/a\n", "/var/mail/\x7f"}) {
    EXPECT_EQ(accounts_->Add("a", PlainPassword{"pw"}, bad).code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_TRUE(accounts_->Add("a", PlainPassword{"pw"}, "/home/a/.mail/in box").ok());
}

TEST_F(AccountStoreTest, IterationCountIsConfigurable) {
  Open(5000);
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  auto r = accounts_->Get("alice");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->credential, ::testing::StartsWith("SCRAM-SHA-256$5000:"));
  // A store configured differently still checks existing verifiers with their own count.
  Open(4096);
  EXPECT_TRUE(accounts_->CheckPassword("alice", kPassword).ok());

  AccountStore weak(index_->db(), 1000);
  EXPECT_EQ(weak.Init().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(weak.Add("x", PlainPassword{"pw"}, "/var/mail/x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(weak.CheckPassword("alice", kPassword).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(AccountStoreTest, NewerSchemaIsRefused) {
  ASSERT_TRUE(index_->db()->Exec("UPDATE account_schema SET version = 99").ok());
  AccountStore again(index_->db());
  absl::Status s = again.Init();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

TEST_F(AccountStoreTest, CorruptRowsAreDataLoss) {
  ASSERT_TRUE(accounts_->Add("alice", PlainPassword{kPassword}, "/var/mail/alice").ok());
  ASSERT_TRUE(index_->db()->Exec("UPDATE accounts SET credential='SCRAM-SHA-256$1:x$y:z'").ok());
  EXPECT_EQ(accounts_->CheckPassword("alice", kPassword).status().code(),
            absl::StatusCode::kDataLoss);
  // The CHECK constraint keeps credential_kind honest.
  EXPECT_FALSE(index_->db()->Exec("UPDATE accounts SET credential_kind='plain'").ok());
}

class AccountCryptImportTest : public AccountStoreTest,
                               public ::testing::WithParamInterface<const char*> {};

TEST_P(AccountCryptImportTest, ImportAndCheck) {
  const std::string hash = MakeCryptHash(kPassword, GetParam());
  if (hash.empty()) GTEST_SKIP() << "libcrypt has no " << GetParam();
  ASSERT_TRUE(hash.starts_with(GetParam())) << hash;
  EXPECT_TRUE(IsImportableCryptHash(hash)) << hash;

  ASSERT_TRUE(accounts_->Add("carol", CryptHash{hash}, "/var/mail/carol").ok());
  auto r = accounts_->Get("carol");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credential_kind, CredentialKind::kCrypt);
  EXPECT_EQ(r->credential, hash);
  EXPECT_THAT(RawRow("carol"), HasSubstr("|crypt|"));
  EXPECT_THAT(RawRow("carol"), Not(HasSubstr(kPassword)));

  auto ok = accounts_->CheckPassword("carol", kPassword);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->mailbox, "/var/mail/carol");
  EXPECT_EQ(accounts_->CheckPassword("carol", "wrong").status().code(),
            absl::StatusCode::kUnauthenticated);
  // crypt(3) takes C strings: a NUL must not cut the password short to the right one.
  EXPECT_EQ(accounts_->CheckPassword("carol", std::string(kPassword) + std::string(1, '\0') + "x")
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);

  // Switching to a SCRAM password and back.
  ASSERT_TRUE(accounts_->SetPassword("carol", PlainPassword{"scram now"}).ok());
  EXPECT_EQ(accounts_->Get("carol")->credential_kind, CredentialKind::kScramSha256);
  EXPECT_FALSE(accounts_->CheckPassword("carol", kPassword).ok());
  EXPECT_TRUE(accounts_->CheckPassword("carol", "scram now").ok());
  ASSERT_TRUE(accounts_->SetPassword("carol", CryptHash{hash}).ok());
  EXPECT_TRUE(accounts_->CheckPassword("carol", kPassword).ok());
}

INSTANTIATE_TEST_SUITE_P(Methods, AccountCryptImportTest,
                         ::testing::Values("$6$", "$y$", "$5$", "$2b$", "$gy$"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string name;
                           for (const char* p = param_info.param; *p; ++p) {
                             if (std::isalnum(static_cast<unsigned char>(*p))) name += *p;
                           }
                           return name;
                         });

TEST_F(AccountStoreTest, YescryptIsAvailableHere) {
  // Debian 12's libxcrypt has yescrypt (its default for /etc/shadow); the import test above
  // would silently skip if it did not.
  EXPECT_FALSE(MakeCryptHash("x", "$y$").empty());
}

TEST_F(AccountStoreTest, RejectsUnrecognisedCryptHashes) {
  const std::string sha512 = MakeCryptHash(kPassword, "$6$");
  ASSERT_FALSE(sha512.empty());
  const std::string setting_only = sha512.substr(0, sha512.rfind('$'));  // "$6$<salt>"
  const std::string bad[] = {
      "",
      "!",
      "*",
      "!" + sha512,  // locked shadow entry
      "*LK*",
      "x",
      "abJnggxhB/yWI",         // traditional DES: ignores all but 8 characters
      "_J9..CCCCXBrJUJV154M",  // BSDI extended DES
      "$9$nosuchmethod$abc",
      "$6$",
      setting_only,
      setting_only + "$",
      sha512.substr(0, sha512.size() - 1),  // truncated
      sha512 + "A",                         // too long
      sha512 + "\n",
      sha512 + ":18000:0:99999:7:::",  // a whole shadow field list
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
  };
  for (const std::string& h : bad) {
    EXPECT_FALSE(IsImportableCryptHash(h)) << h;
    EXPECT_EQ(accounts_->Add("dave", CryptHash{h}, "/var/mail/dave").code(),
              absl::StatusCode::kInvalidArgument)
        << h;
  }
  EXPECT_EQ(accounts_->Get("dave").status().code(), absl::StatusCode::kNotFound);
}

TEST(AccountUserNameTest, ValidNames) {
  for (const char* ok :
       {"a", "alice", "bob.smith", "bob_smith", "bob-smith", "bob+pop", "a.b.c", "0", "123", "_x",
        "+x", "x.", "x-", "a-.b", "alice@example.org", "a@b", "bob.smith+pop@mail.example.org"}) {
    EXPECT_TRUE(sasl::IsValidUserName(ok)) << ok;
  }
  EXPECT_TRUE(sasl::IsValidUserName(std::string(64, 'a')));
}

TEST(AccountUserNameTest, InvalidNames) {
  const std::string bad[] = {
      "",
      std::string(65, 'a'),
      ".",
      "..",
      ".alice",
      "-alice",
      "al..ice",
      "alice..",
      "Alice",
      "ALICE",
      "al ice",
      " alice",
      "alice\n",
      "alice\r",
      "alice\t",
      std::string("al\0ice", 6),
      "al/ice",
      "../etc/passwd",
      "alice/",
      "al\\ice",
      "@example.org",
      "alice@",
      "a@b@c",
      "alice@.example.org",
      "alice@-example.org",
      ".alice@example.org",
      "alice@example..org",
      "alice@Example.org",
      "al:ice",
      "al;ice",
      "al'ice",
      "al\"ice",
      "al*ice",
      "al%ice",
      "al$ice",
      "al~ice",
      "\xc3\xa4lice",  // "älice"
      "al\x7f",
  };
  for (const std::string& name : bad) {
    EXPECT_FALSE(sasl::IsValidUserName(name)) << name;
  }
}

TEST_F(AccountStoreTest, InvalidNamesAreRefusedEverywhere) {
  for (const char* name : {"", ".", "..", ".hidden", "-opt", "a..b", "A", "a/b", "a b", "ä"}) {
    EXPECT_EQ(accounts_->Add(name, PlainPassword{"pw"}, "/var/mail/x").code(),
              absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_EQ(accounts_->Get(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(accounts_->Remove(name).code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(accounts_->SetPassword(name, PlainPassword{"pw"}).code(),
              absl::StatusCode::kInvalidArgument)
        << name;
    EXPECT_EQ(accounts_->CheckPassword(name, "pw").status().code(),
              absl::StatusCode::kUnauthenticated)
        << name;
  }
  auto list = accounts_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

}  // namespace
}  // namespace poplar::indexer

// PAM for system accounts (config pam), against the real Linux-PAM with a service file in a
// temp dir (pam_start_confdir; /etc/pam.d is never touched): pam_exec runs a script that reads
// the password on stdin and accepts one user's right password. The PamAuthenticator alone
// (right, wrong, unknown, bounded queue), then the Indexer: PAM only for names not in the
// store, a PAM login's mailbox from the spool layout, only plaintext mechanisms, and a stuck
// PAM backend that does not hold up store logins.
#include "indexer/pam_authenticator.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "indexer/indexer.h"
#include "tests/component/indexer_testing.h"
#include "tests/component/temp_dir.h"

// LeakSanitizer (ASan builds): when no service file exists (MissingServiceIsUnavailable),
// Linux-PAM's pam_start_confdir fails with PAM_ABORT and a null handle and leaks 96 bytes it
// allocated inside libpam; with no handle, no pam_end can free them. Suppressed for this test
// binary only; the e2e tests (popd_pam_test) run the real indexer's PAM path unsuppressed.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpam.so\n"; }

namespace poplar::indexer {
namespace {

using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;

// `slow` waits for the file `release` to appear (at most 20 s) before it refuses.
void WritePamService(const TempDir& dir) {
  const std::string script = dir.File("check.sh");
  WriteFile(
      script,
      absl::StrCat("#!/bin/sh\n", "pw=$(tr -d '\\000')\n", "if [ \"$PAM_USER\" = slow ]; then\n",
                   "  i=0; while [ ! -e ", dir.File("release"),
                   " ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n", "  exit 1\n", "fi\n",
                   "[ \"$PAM_USER\" = sysuser ] && [ \"$pw\" = 'right pw' ]\n"));
  ASSERT_EQ(::chmod(script.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(dir.File("pam.d").c_str(), 0700), 0);
  // The Debian common-auth shape: pam_exec's success skips pam_deny; any failure is PAM_AUTH_ERR.
  WriteFile(dir.File("pam.d/poplar-test"),
            absl::StrCat("auth [success=1 default=ignore] pam_exec.so quiet expose_authtok ",
                         script, "\n", "auth requisite pam_deny.so\n",
                         "auth required pam_permit.so\n", "account required pam_permit.so\n"));
}

config::Pam PamConfig(const TempDir& dir, uint32_t threads = 4, uint32_t max_waiting = 64) {
  config::Pam c;
  c.set_service("poplar-test");
  c.set_config_dir(dir.File("pam.d"));
  c.set_threads(threads);
  c.set_max_waiting(max_waiting);
  return c;
}

TEST(PamAuthenticator, RightWrongAndUnknown) {
  TempDir dir;
  WritePamService(dir);
  PamAuthenticator pam(PamConfig(dir));
  EXPECT_TRUE(pam.AuthenticateAndWait("sysuser", "right pw", "192.0.2.1").ok());
  absl::Status wrong = pam.AuthenticateAndWait("sysuser", "wrong pw", "");
  absl::Status unknown = pam.AuthenticateAndWait("nosuchuser", "right pw", "");
  EXPECT_TRUE(absl::IsUnauthenticated(wrong)) << wrong;
  EXPECT_TRUE(absl::IsUnauthenticated(unknown)) << unknown;
  EXPECT_EQ(wrong, unknown) << "an unknown user and a wrong password must look the same";
  EXPECT_FALSE(pam.AuthenticateAndWait("sysuser", "right p", "").ok());
  EXPECT_FALSE(pam.AuthenticateAndWait("sysuser", "", "").ok());
}

TEST(PamAuthenticator, MissingServiceIsUnavailable) {
  TempDir dir;
  WritePamService(dir);
  config::Pam c = PamConfig(dir);
  c.set_service("no-such-service");
  PamAuthenticator pam(c);
  // Linux-PAM falls back to "other", which is absent from this directory: a broken setup, not
  // a wrong password.
  absl::Status s = pam.AuthenticateAndWait("sysuser", "right pw", "");
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
}

TEST(PamAuthenticator, BoundedThreadsAndQueue) {
  TempDir dir;
  WritePamService(dir);
  PamAuthenticator pam(PamConfig(dir, /*threads=*/1, /*max_waiting=*/1));
  std::atomic<int> done{0};
  absl::Notification slow_done;
  pam.Authenticate("slow", "x", "", [&](absl::Status) {  // takes the one thread
    ++done;
    slow_done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(300));  // let the thread pick it up
  absl::Notification queued_done;
  absl::Status queued;
  pam.Authenticate("sysuser", "right pw", "", [&](absl::Status s) {  // waits
    queued = s;
    queued_done.Notify();
  });
  // The queue is full: refused at once, on this thread.
  absl::Status overflow;
  bool inline_answer = false;
  pam.Authenticate("sysuser", "right pw", "", [&](absl::Status s) {
    overflow = s;
    inline_answer = true;
  });
  EXPECT_TRUE(inline_answer);
  EXPECT_TRUE(absl::IsUnavailable(overflow)) << overflow;
  EXPECT_EQ(done.load(), 0);
  WriteFile(dir.File("release"), "");
  ASSERT_TRUE(slow_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(queued_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(queued.ok()) << queued;
}

class IndexerPamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WritePamService(dir_);
    ASSERT_EQ(::mkdir(dir_.File("spool").c_str(), 0755), 0);
    config::IndexerConfig c = poplar::testing::TestIndexerConfig(dir_);
    *c.mutable_pam() = PamConfig(dir_, /*threads=*/1, /*max_waiting=*/4);
    absl::StatusOr<std::unique_ptr<Indexer>> idx = Indexer::Create(c);
    ASSERT_TRUE(idx.ok()) << idx.status();
    indexer_ = std::move(*idx);
    ASSERT_TRUE(poplar::testing::AddTestAccount(*indexer_, "alice", "alice pw").ok());
    WriteFile(dir_.File("spool/sysuser"),
              "From a@example.org  Thu Nov 26 10:00:00 2026\nSubject: one\n\nbody\n");
  }
  absl::StatusOr<Indexer::Opened> Open(const std::string& user, const std::string& password) {
    v1::OpenSession req;
    req.set_user(user);
    req.set_password(password);
    absl::StatusOr<Indexer::Opened> o = indexer_->OpenSession(req, {});
    if (o.ok()) indexer_->CloseSession(o->lease.session_id);
    return o;
  }

  TempDir dir_;
  std::unique_ptr<Indexer> indexer_;
};

TEST_F(IndexerPamTest, SystemAccountLogsInWithItsSpoolMailbox) {
  absl::StatusOr<Indexer::Opened> o = Open("sysuser", "right pw");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->snapshot.mailbox_path(), dir_.File("spool/sysuser"));
  EXPECT_EQ(o->snapshot.count(), 1u);
  EXPECT_TRUE(o->snapshot.credentials_checked());
  absl::StatusOr<std::string> user = indexer_->Authenticate("sysuser", "right pw");
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(*user, "sysuser");
}

TEST_F(IndexerPamTest, WrongPasswordUnknownUserAndInvalidNameLookTheSame) {
  absl::Status wrong = Open("sysuser", "wrong pw").status();
  absl::Status unknown = Open("nosuchuser", "right pw").status();
  absl::Status invalid = Open("../sysuser", "right pw").status();
  absl::Status store_wrong = Open("alice", "wrong pw").status();
  for (const absl::Status& s : {wrong, unknown, invalid, store_wrong}) {
    EXPECT_TRUE(absl::IsUnauthenticated(s)) << s;
    EXPECT_EQ(s.message(), store_wrong.message());
  }
}

TEST_F(IndexerPamTest, StoreAccountsNeverReachPam) {
  EXPECT_TRUE(Open("alice", "alice pw").ok());
  // PAM would accept this password for sysuser only; a store name with it fails in the store.
  ASSERT_TRUE(poplar::testing::AddTestAccount(*indexer_, "sysuser2", "other").ok());
  EXPECT_TRUE(absl::IsUnauthenticated(Open("sysuser2", "right pw").status()));
}

TEST_F(IndexerPamTest, OnlyPlaintextMechanismsUsePam) {
  // SCRAM and APOP need a stored secret: for a PAM-only name they fail like a wrong password.
  v1::OpenSession scram;
  scram.set_user("sysuser");
  scram.mutable_scram()->set_auth_message(
      "n=sysuser,r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef");
  scram.mutable_scram()->set_client_proof(std::string(32, 'x'));
  EXPECT_TRUE(absl::IsUnauthenticated(indexer_->OpenSession(scram, {}).status()));
  v1::OpenSession apop;
  apop.set_user("sysuser");
  apop.mutable_challenge()->set_kind(v1::ChallengeDigest::APOP);
  apop.mutable_challenge()->set_challenge("<1.2@host>");
  apop.mutable_challenge()->set_digest(std::string(32, 'a'));
  EXPECT_TRUE(absl::IsUnauthenticated(indexer_->OpenSession(apop, {}).status()));
  // No credentials at all: a PAM name is no account, so nothing is opened.
  v1::OpenSession bare;
  bare.set_user("sysuser");
  EXPECT_TRUE(absl::IsUnauthenticated(indexer_->OpenSession(bare, {}).status()));
}

TEST_F(IndexerPamTest, AStuckPamBackendDoesNotHoldUpStoreLogins) {
  // The one PAM thread hangs in "slow"'s conversation.
  absl::Notification slow_done;
  v1::OpenSession slow;
  slow.set_user("slow");
  slow.set_password("x");
  indexer_->OpenSessionAsync(slow, {}, [&](absl::StatusOr<Indexer::Opened> o) {
    EXPECT_TRUE(absl::IsUnauthenticated(o.status())) << o.status();
    slow_done.Notify();
  });
  EXPECT_FALSE(slow_done.HasBeenNotified()) << "a PAM login must not run on the caller's thread";
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Open("alice", "alice pw").ok());
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  EXPECT_FALSE(slow_done.HasBeenNotified());
  WriteFile(dir_.File("release"), "");
  ASSERT_TRUE(slow_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(Open("sysuser", "right pw").ok());
}

}  // namespace
}  // namespace poplar::indexer

// The indexer's gRPC services end to end in one process: a real Daemon (SQLite, inotify,
// event thread, gRPC server on a unix socket in a temp dir) and real gRPC clients.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "common/sasl/scram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "indexer/daemon.h"
#include "poplar/admin.grpc.pb.h"
#include "poplar/maildrop.grpc.pb.h"
#include "tests/component/indexer_testing.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::AppendFile;
using ::poplar::testing::ReadFile;
using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;
using MuxStream = grpc::ClientReaderWriter<v1::SessionsRequest, v1::SessionsEvent>;

std::string Msg(int i) {
  return absl::StrCat("From s", i, "@example.org  Thu Nov 26 10:00:", 10 + i % 50,
                      " 2026\nSubject: m", i, "\nMessage-ID: <", i, "@x>\n\nbody ", i,
                      "\n.\n..\n\n");
}

std::chrono::system_clock::time_point In(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

// A Sessions stream driven by hand (maildrop.proto, rpc Sessions).
struct Mux {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<MuxStream> stream;
  bool Open(uint64_t tag, const std::string& user, const std::string& password = "",
            bool answers_probes = false, const std::string& client_address = "192.0.2.9",
            const std::string& front_end = "mux-test") {
    v1::SessionsRequest req;
    req.set_tag(tag);
    req.mutable_open()->set_user(user);
    req.mutable_open()->set_password(password);
    req.mutable_open()->set_answers_probes(answers_probes);
    req.mutable_open()->set_client_address(client_address);
    req.mutable_open()->set_front_end(front_end);
    return stream->Write(req);
  }
  bool Commit(uint64_t tag, v1::Commit commit = {}) {
    v1::SessionsRequest req;
    req.set_tag(tag);
    *req.mutable_commit() = std::move(commit);
    return stream->Write(req);
  }
  bool Close(uint64_t tag) {
    v1::SessionsRequest req;
    req.set_tag(tag);
    req.mutable_close();
    return stream->Write(req);
  }
  bool Alive(uint64_t tag) {
    v1::SessionsRequest req;
    req.set_tag(tag);
    req.mutable_alive();
    return stream->Write(req);
  }
  // The next event (the stream's deadline bounds the wait); an event with tag 0 if none.
  v1::SessionsEvent Next() {
    v1::SessionsEvent ev;
    if (!stream->Read(&ev)) ev.Clear();
    return ev;
  }
  // Opens `user` on `tag` and returns its first event.
  v1::SessionsEvent OpenAndWait(uint64_t tag, const std::string& user,
                                const std::string& password = "") {
    EXPECT_TRUE(Open(tag, user, password));
    return Next();
  }
};

grpc::StatusCode Code(const v1::SessionsEvent& ev) {
  return static_cast<grpc::StatusCode>(ev.error().code());
}

class IndexerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir(dir_.File("spool").c_str(), 0755), 0);
    WriteFile(dir_.File("spool/alice"), Msg(1) + Msg(2) + Msg(3));
    StartDaemon();
  }
  config::IndexerConfig Config() {
    config::IndexerConfig c = poplar::testing::TestIndexerConfig(dir_);
    c.set_lease_grace_ms(1000);
    return c;
  }
  void StartDaemon(config::IndexerConfig c) {
    auto d = Daemon::Start(c);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::move(*d);
    auto channel = grpc::CreateChannel("unix:" + dir_.File("indexer.sock"),
                                       grpc::InsecureChannelCredentials());
    maildrop_ = v1::Maildrop::NewStub(channel);
    admin_ = v1::Admin::NewStub(channel);
    v1::AddAccountRequest add;
    add.set_user("alice");
    add.set_password("correct horse");
    v1::Account account;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    grpc::Status s = admin_->AddAccount(&ctx, add, &account);
    ASSERT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
    if (s.ok()) {
      EXPECT_EQ(account.mailbox(), dir_.File("spool/alice"));
    }
  }
  void StartDaemon() { StartDaemon(Config()); }
  void StopDaemon() {
    daemon_->Shutdown(absl::Seconds(1));
    daemon_.reset();
  }
  std::string Uidls() {
    Open o = OpenSession("alice");
    EXPECT_TRUE(o.got_snapshot);
    std::string u = o.first.snapshot().uidls();
    Close(o);
    return u;
  }
  void TearDown() override {
    if (daemon_) daemon_->Shutdown(absl::Seconds(1));
  }

  // One POP3 session alone on its Sessions stream, tag 1 (what popd does with
  // multiplex_sessions: false). `first` is the open's answer: a snapshot or an error event.
  struct Open {
    Mux mux;
    v1::SessionsEvent first;
    bool got_snapshot = false;
    // The answer to a Commit: CommitResult or an error event.
    v1::SessionsEvent Commit(v1::Commit commit = {}) {
      EXPECT_TRUE(mux.Commit(1, std::move(commit)));
      return mux.Next();
    }
  };
  Mux NewMux(int deadline_s = 30) {
    Mux m;
    m.ctx = std::make_unique<grpc::ClientContext>();
    m.ctx->set_deadline(In(deadline_s));
    m.stream = maildrop_->Sessions(m.ctx.get());
    return m;
  }
  Open OpenSession(const std::string& user, const std::string& password = "") {
    Open o;
    o.mux = NewMux();
    EXPECT_TRUE(o.mux.Open(1, user, password, /*answers_probes=*/false, "192.0.2.7", "test"));
    o.first = o.mux.Next();
    o.got_snapshot = o.first.has_snapshot();
    return o;
  }
  // Ends the session (if still open) and the stream; the stream's status.
  grpc::Status Close(Open& o) {
    o.mux.Close(1);
    o.mux.stream->WritesDone();
    v1::SessionsEvent ev;
    while (o.mux.stream->Read(&ev)) {
    }
    return o.mux.stream->Finish();
  }
  // Why the session could not open (the error event's code); ends the stream.
  grpc::StatusCode Refused(Open& o) {
    EXPECT_TRUE(o.first.has_error()) << o.first.DebugString();
    EXPECT_TRUE(Close(o).ok());
    return Code(o.first);
  }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<v1::Maildrop::Stub> maildrop_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

// Credentials travel in OpenSession (the unary Authenticate RPC is retired): right, wrong and
// unknown, and the session is opened for the canonical account.
TEST_F(IndexerServiceTest, OpenSessionAuthenticatesRightWrongAndUnknown) {
  struct Case {
    const char* user;
    const char* password;
    grpc::StatusCode want;
  };
  for (const Case& c : {Case{"alice", "correct horse", grpc::StatusCode::OK},
                        Case{"alice", "wrong", grpc::StatusCode::UNAUTHENTICATED},
                        Case{"nobody", "correct horse", grpc::StatusCode::UNAUTHENTICATED},
                        Case{"../etc/passwd", "x", grpc::StatusCode::UNAUTHENTICATED},
                        Case{"", "", grpc::StatusCode::UNAUTHENTICATED}}) {
    SCOPED_TRACE(c.user);
    Open o = OpenSession(c.user, c.password);
    if (c.want != grpc::StatusCode::OK) {
      EXPECT_EQ(Refused(o), c.want) << o.first.error().message();
      continue;
    }
    ASSERT_TRUE(o.got_snapshot) << o.first.error().message();
    grpc::ClientContext ctx;
    v1::SessionList sessions;
    ASSERT_TRUE(admin_->ListSessions(&ctx, v1::Empty(), &sessions).ok());
    ASSERT_EQ(sessions.sessions_size(), 1);
    EXPECT_EQ(sessions.sessions(0).user(), "alice");
    EXPECT_TRUE(Close(o).ok());
  }
}

// Every column of a snapshot equals a fresh scan of the file.
void ExpectSnapshotMatchesFile(const v1::Snapshot& snap, const std::string& path) {
  std::string file = ReadFile(path);
  mbox::ScanResult want = mbox::ScanMbox(file, 0, {.final = true});
  mbox::UidlAssigner assigner;
  ASSERT_EQ(snap.count(), want.messages.size());
  std::vector<std::string> uidls = absl::StrSplit(snap.uidls(), '\n');
  ASSERT_EQ(uidls.size(), want.messages.size());
  uint64_t total = 0;
  ASSERT_EQ(static_cast<size_t>(snap.from_offsets_size()), want.messages.size());
  ASSERT_EQ(static_cast<size_t>(snap.lines_size()), want.messages.size());
  for (size_t i = 0; i < want.messages.size(); ++i) {
    EXPECT_EQ(snap.from_offsets(i), want.messages[i].offset);
    EXPECT_EQ(snap.lines(i), want.messages[i].lines);
    EXPECT_EQ(snap.data_offsets(i), want.messages[i].data_offset);
    EXPECT_EQ(snap.lengths(i), want.messages[i].length());
    EXPECT_EQ(snap.octets(i), want.messages[i].octets);
    EXPECT_EQ(snap.header_lengths(i), want.messages[i].header_length);
    EXPECT_EQ(uidls[i], assigner.Assign(want.messages[i]));
    total += want.messages[i].octets;
  }
  EXPECT_EQ(snap.total_octets(), total);
  ASSERT_EQ(snap.content_hashes().size(), 16u * want.messages.size());
  for (size_t i = 0; i < want.messages.size(); ++i) {
    EXPECT_EQ(snap.content_hashes().substr(16 * i, 16), want.messages[i].content_hash.Bytes())
        << "message " << i + 1;
  }
  struct stat st {};
  ::stat(path.c_str(), &st);
  EXPECT_EQ(snap.file().inode(), st.st_ino);
  EXPECT_EQ(snap.file().size(), want.messages.empty() ? 0 : want.messages.back().end_offset);
}

TEST_F(IndexerServiceTest, SnapshotMatchesAFreshScan) {
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  ExpectSnapshotMatchesFile(o.first.snapshot(), dir_.File("spool/alice"));
  EXPECT_TRUE(Close(o).ok());
}

TEST_F(IndexerServiceTest, CachedSnapshotFollowsAppendsIncludingATentativeTail) {
  // The last message has no empty line after it: the index holds it tentatively, and the next
  // delivery replaces that entry (same bytes, same UIDL) and adds itself.
  WriteFile(dir_.File("spool/alice"),
            Msg(1) + Msg(2) + "From x@y Thu Nov 26 10:00:00 2026\nSubject: t\n\nlast\n");
  for (int round = 0; round < 3; ++round) {
    Open o = OpenSession("alice");  // fills the cache
    ASSERT_TRUE(o.got_snapshot);
    ExpectSnapshotMatchesFile(o.first.snapshot(), dir_.File("spool/alice"));
    EXPECT_TRUE(Close(o).ok());
    AppendFile(dir_.File("spool/alice"), round == 1 ? "\n" + Msg(10 + round) : Msg(10 + round));
  }
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  EXPECT_EQ(o.first.snapshot().count(), 5u);  // message 10 was glued onto the tentative one
  ExpectSnapshotMatchesFile(o.first.snapshot(), dir_.File("spool/alice"));
  EXPECT_TRUE(Close(o).ok());
}

TEST_F(IndexerServiceTest, SecondSessionIsInUseAtOnceAndFreeAfterClose) {
  Open a = OpenSession("alice");
  ASSERT_TRUE(a.got_snapshot);
  absl::Time start = absl::Now();
  Open b = OpenSession("alice");
  EXPECT_FALSE(b.got_snapshot);
  EXPECT_EQ(Refused(b), grpc::StatusCode::RESOURCE_EXHAUSTED) << b.first.error().message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // "at once", not after a lock timeout
  EXPECT_TRUE(Close(a).ok());
  Open c = OpenSession("alice");
  EXPECT_TRUE(c.got_snapshot);
  EXPECT_TRUE(Close(c).ok());
}

TEST_F(IndexerServiceTest, OpenSessionWithAPasswordAuthenticatesFirst) {
  {
    Open o = OpenSession("alice", "correct horse");
    ASSERT_TRUE(o.got_snapshot);
    ExpectSnapshotMatchesFile(o.first.snapshot(), dir_.File("spool/alice"));
    EXPECT_TRUE(o.first.snapshot().credentials_checked());  // popd refuses a login without it
    EXPECT_TRUE(Close(o).ok());
  }
  {
    Open o = OpenSession("alice");  // no credentials: the caller vouches, nothing was checked
    ASSERT_TRUE(o.got_snapshot);
    EXPECT_FALSE(o.first.snapshot().credentials_checked());
    EXPECT_TRUE(Close(o).ok());
  }
  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"alice", "wrong"}, {"nobody", "correct horse"}, {"../alice", "correct horse"}}) {
    Open o = OpenSession(user, password);
    EXPECT_FALSE(o.got_snapshot) << user;
    EXPECT_EQ(Refused(o), grpc::StatusCode::UNAUTHENTICATED) << user;
  }
  // A failed login holds no lease.
  Open again = OpenSession("alice", "correct horse");
  EXPECT_TRUE(again.got_snapshot);
  EXPECT_TRUE(Close(again).ok());
}

TEST_F(IndexerServiceTest, ScramLookupThenProofInOpenSession) {
  auto lookup = [&](const std::string& user) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    v1::ScramLookupRequest req;
    req.set_user(user);
    v1::ScramLookupReply reply;
    EXPECT_TRUE(maildrop_->ScramLookup(&ctx, req, &reply).ok());
    return reply;
  };
  const v1::ScramLookupReply alice = lookup("alice");
  ASSERT_GE(alice.iterations(), 4096u);
  ASSERT_FALSE(alice.salt().empty());
  // An unknown name gets a challenge of the same shape, the same one each time.
  const v1::ScramLookupReply ghost = lookup("ghost");
  EXPECT_EQ(ghost.iterations(), alice.iterations());
  EXPECT_EQ(ghost.salt().size(), alice.salt().size());
  EXPECT_EQ(lookup("ghost").salt(), ghost.salt());
  EXPECT_NE(lookup("ghost2").salt(), ghost.salt());

  const std::string auth_message = "n=alice,r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef";
  auto open_with = [&](const std::string& user, const std::string& password) {
    const std::string salted = sasl::SaltedPassword(password, alice.salt(), alice.iterations());
    const std::string client_key = sasl::HmacSha256(salted, "Client Key");
    Open o;
    o.mux = NewMux();
    v1::SessionsRequest req;
    req.set_tag(1);
    req.mutable_open()->set_user(user);
    req.mutable_open()->mutable_scram()->set_auth_message(auth_message);
    req.mutable_open()->mutable_scram()->set_client_proof(
        sasl::ClientProof(client_key, sasl::Sha256Bytes(client_key), auth_message));
    EXPECT_TRUE(o.mux.stream->Write(req));
    o.first = o.mux.Next();
    o.got_snapshot = o.first.has_snapshot();
    return std::make_pair(std::move(o), salted);
  };
  {
    auto [o, salted] = open_with("alice", "correct horse");
    ASSERT_TRUE(o.got_snapshot);
    const std::string server_key = sasl::HmacSha256(salted, "Server Key");
    EXPECT_EQ(o.first.snapshot().scram_server_signature(),
              sasl::ServerSignature(server_key, auth_message));
    EXPECT_TRUE(Close(o).ok());
  }
  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"alice", "wrong"}, {"ghost", "correct horse"}}) {
    auto [o, salted] = open_with(user, password);
    EXPECT_FALSE(o.got_snapshot) << user;
    EXPECT_EQ(Refused(o), grpc::StatusCode::UNAUTHENTICATED) << user;
  }
  // A USER/PASS login's snapshot carries no signature.
  Open plain = OpenSession("alice", "correct horse");
  ASSERT_TRUE(plain.got_snapshot);
  EXPECT_TRUE(plain.first.snapshot().scram_server_signature().empty());
  EXPECT_TRUE(Close(plain).ok());
}

TEST_F(IndexerServiceTest, LeaseEndsWithTheCommitResult) {
  // popd answers QUIT when CommitResult arrives and the client may log in again at once,
  // before popd has half-closed the stream: that login must not be [IN-USE].
  Open a = OpenSession("alice");
  ASSERT_TRUE(a.got_snapshot);
  ASSERT_TRUE(a.Commit().has_committed());
  Open b = OpenSession("alice");
  EXPECT_TRUE(b.got_snapshot);
  EXPECT_TRUE(Close(b).ok());
  EXPECT_TRUE(Close(a).ok());
}

TEST_F(IndexerServiceTest, CancelledStreamReleasesTheLease) {
  Open a = OpenSession("alice");
  ASSERT_TRUE(a.got_snapshot);
  a.mux.ctx->TryCancel();  // the front-end died mid-session
  a.mux.stream->Finish();
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    Open b = OpenSession("alice");
    reopened = b.got_snapshot;
    Close(b);
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(reopened);
}

TEST_F(IndexerServiceTest, MailDeliveredDuringASessionIsInTheNextSnapshot) {
  Open a = OpenSession("alice");
  ASSERT_TRUE(a.got_snapshot);
  AppendFile(dir_.File("spool/alice"), Msg(4));
  EXPECT_TRUE(Close(a).ok());
  Open b = OpenSession("alice");
  ASSERT_TRUE(b.got_snapshot);
  EXPECT_EQ(b.first.snapshot().count(), 4u);
  EXPECT_TRUE(Close(b).ok());
}

TEST_F(IndexerServiceTest, MalformedStreamsAndCommits) {
  {  // Commit before OpenSession
    Mux m = NewMux(10);
    ASSERT_TRUE(m.Commit(1));
    v1::SessionsEvent ev = m.Next();
    EXPECT_EQ(Code(ev), grpc::StatusCode::INVALID_ARGUMENT) << ev.DebugString();
    m.stream->WritesDone();
    EXPECT_TRUE(m.stream->Finish().ok());
  }
  {  // Unknown account
    Open o = OpenSession("nobody");
    EXPECT_FALSE(o.got_snapshot);
    EXPECT_EQ(Refused(o), grpc::StatusCode::UNAUTHENTICATED);
  }
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  v1::Commit commit;
  v1::MessageRef* ref = commit.add_deleted();
  ref->set_data_offset(o.first.snapshot().data_offsets(0) + 1);  // not a message
  ref->set_content_hash(o.first.snapshot().content_hashes().substr(0, 16));
  v1::SessionsEvent ev = o.Commit(commit);
  EXPECT_EQ(Code(ev), grpc::StatusCode::INVALID_ARGUMENT) << ev.DebugString();
  EXPECT_TRUE(Close(o).ok());
}

TEST_F(IndexerServiceTest, EmptyCommitWritesNothing) {
  std::string before = ReadFile(dir_.File("spool/alice"));
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  v1::SessionsEvent ev = o.Commit();
  EXPECT_TRUE(ev.has_committed());
  EXPECT_EQ(ev.committed().deleted(), 0u);
  EXPECT_TRUE(Close(o).ok());
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), before);
}

TEST_F(IndexerServiceTest, CommitDeletesAndTheNextSessionSeesTheNewNumbering) {
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  const v1::Snapshot& snap = o.first.snapshot();
  ASSERT_EQ(snap.count(), 3u);
  std::vector<std::string> old_uidls = absl::StrSplit(snap.uidls(), '\n');
  v1::Commit commit;
  v1::MessageRef* ref = commit.add_deleted();
  ref->set_data_offset(snap.data_offsets(1));
  ref->set_content_hash(snap.content_hashes().substr(16, 16));
  v1::SessionsEvent ev = o.Commit(commit);
  ASSERT_TRUE(ev.has_committed()) << ev.DebugString();
  EXPECT_EQ(ev.committed().deleted(), 1u);
  EXPECT_EQ(ev.committed().bytes_removed(), Msg(2).size());
  EXPECT_TRUE(Close(o).ok());
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), Msg(1) + Msg(3));

  Open next = OpenSession("alice");
  ASSERT_TRUE(next.got_snapshot);
  ExpectSnapshotMatchesFile(next.first.snapshot(), dir_.File("spool/alice"));
  std::vector<std::string> uidls = absl::StrSplit(next.first.snapshot().uidls(), '\n');
  EXPECT_EQ(uidls, (std::vector<std::string>{old_uidls[0], old_uidls[2]}));
  EXPECT_TRUE(Close(next).ok());
}

TEST_F(IndexerServiceTest, CommitWhileAnMdaHoldsTheDotlockIsUnavailable) {
  StopDaemon();
  config::IndexerConfig c = Config();
  c.set_lock_timeout_ms(200);
  StartDaemon(c);
  const std::string before = ReadFile(dir_.File("spool/alice"));
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  WriteFile(dir_.File("spool/alice.lock"), "0\n");
  v1::Commit commit;
  v1::MessageRef* ref = commit.add_deleted();
  ref->set_data_offset(o.first.snapshot().data_offsets(0));
  ref->set_content_hash(o.first.snapshot().content_hashes().substr(0, 16));
  v1::SessionsEvent ev = o.Commit(commit);
  EXPECT_EQ(Code(ev), grpc::StatusCode::UNAVAILABLE) << ev.DebugString();
  EXPECT_TRUE(Close(o).ok());
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), before);
  ::unlink(dir_.File("spool/alice.lock").c_str());
}

TEST_F(IndexerServiceTest, CachedSnapshotFollowsADeliveryInProgress) {
  Open warm = OpenSession("alice");  // fills the cache with messages 1-3
  ASSERT_TRUE(warm.got_snapshot);
  EXPECT_TRUE(Close(warm).ok());
  // An MDA holds the dotlock, has written message 4 and the start of message 5.
  WriteFile(dir_.File("spool/alice.lock"), "1\n");
  const std::string m5 = Msg(5);
  const size_t cut = m5.find('\n') + 5;  // the From_ line and a little more
  AppendFile(dir_.File("spool/alice"), Msg(4) + m5.substr(0, cut));
  Open during = OpenSession("alice");
  ASSERT_TRUE(during.got_snapshot);
  EXPECT_EQ(during.first.snapshot().count(), 4u);  // 4 is complete: its end is certain
  EXPECT_TRUE(Close(during).ok());
  AppendFile(dir_.File("spool/alice"), m5.substr(cut));
  ::unlink(dir_.File("spool/alice.lock").c_str());
  Open after = OpenSession("alice");
  ASSERT_TRUE(after.got_snapshot);
  ExpectSnapshotMatchesFile(after.first.snapshot(), dir_.File("spool/alice"));
  EXPECT_EQ(after.first.snapshot().count(), 5u);
  EXPECT_TRUE(Close(after).ok());
}

TEST_F(IndexerServiceTest, AdminAccountsErrors) {
  grpc::ClientContext c1;
  v1::AddAccountRequest add;
  add.set_user("alice");
  add.set_password("x");
  v1::Account a;
  EXPECT_EQ(admin_->AddAccount(&c1, add, &a).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  grpc::ClientContext c2;
  add.set_user("Bad/Name");
  EXPECT_EQ(admin_->AddAccount(&c2, add, &a).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c3;
  add.set_user("bob");
  add.set_password("");
  EXPECT_EQ(admin_->AddAccount(&c3, add, &a).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext c4;
  v1::AccountName name;
  name.set_user("nobody");
  v1::Empty e;
  EXPECT_EQ(admin_->RemoveAccount(&c4, name, &e).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c5;
  v1::AccountList list;
  ASSERT_TRUE(admin_->ListAccounts(&c5, v1::Empty(), &list).ok());
  ASSERT_EQ(list.accounts_size(), 1);
  EXPECT_EQ(list.accounts(0).credential_kind(), "scram-sha-256");
}

TEST_F(IndexerServiceTest, AdminMailboxesVerifyReindexStatus) {
  grpc::ClientContext c1;
  v1::MailboxList boxes;
  ASSERT_TRUE(admin_->ListMailboxes(&c1, v1::Empty(), &boxes).ok());
  ASSERT_EQ(boxes.mailboxes_size(), 1);
  EXPECT_EQ(boxes.mailboxes(0).messages(), 3u);
  EXPECT_EQ(boxes.mailboxes(0).user(), "alice");

  grpc::ClientContext c2;
  v1::MailboxName name;
  name.set_path("alice");
  v1::MailboxDetail detail;
  ASSERT_TRUE(admin_->ShowMailbox(&c2, name, &detail).ok());
  ASSERT_EQ(detail.messages_size(), 3);
  EXPECT_EQ(detail.messages(0).sender(), "s1@example.org");

  grpc::ClientContext c2b;
  name.set_first(2);
  name.set_limit(1);
  ASSERT_TRUE(admin_->ShowMailbox(&c2b, name, &detail).ok());
  ASSERT_EQ(detail.messages_size(), 1);  // server-side paging
  EXPECT_EQ(detail.messages(0).number(), 2u);
  EXPECT_EQ(detail.first(), 2u);

  grpc::ClientContext c3;
  name.set_path("nobody");
  EXPECT_EQ(admin_->ShowMailbox(&c3, name, &detail).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext c4;
  v1::VerifyRequest vr;
  v1::VerifyReply verify;
  ASSERT_TRUE(admin_->Verify(&c4, vr, &verify).ok());
  EXPECT_EQ(verify.problems_size(), 0);
  EXPECT_EQ(verify.messages(), 3u);

  grpc::ClientContext c5;
  v1::ReindexRequest rr;
  auto reader = admin_->Reindex(&c5, rr);
  v1::ReindexProgress p;
  int updates = 0;
  while (reader->Read(&p)) ++updates;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(updates, 1);
  EXPECT_EQ(p.mailboxes_done(), 1u);

  grpc::ClientContext c6;
  v1::IndexerStatus st;
  ASSERT_TRUE(admin_->Status(&c6, v1::Empty(), &st).ok());
  EXPECT_EQ(st.mailboxes(), 1u);
  EXPECT_EQ(st.messages(), 3u);
}

TEST_F(IndexerServiceTest, AdminListsAndEndsSessions) {
  Open o = OpenSession("alice");
  ASSERT_TRUE(o.got_snapshot);
  grpc::ClientContext c1;
  v1::SessionList sessions;
  ASSERT_TRUE(admin_->ListSessions(&c1, v1::Empty(), &sessions).ok());
  ASSERT_EQ(sessions.sessions_size(), 1);
  EXPECT_EQ(sessions.sessions(0).user(), "alice");
  EXPECT_EQ(sessions.sessions(0).client_address(), "192.0.2.7");
  grpc::ClientContext c2;
  v1::EndSessionRequest end;
  end.set_session_id(sessions.sessions(0).session_id());
  v1::Empty e;
  ASSERT_TRUE(admin_->EndSession(&c2, end, &e).ok());
  v1::SessionsEvent ev = o.mux.Next();
  EXPECT_EQ(ev.tag(), 1u);
  EXPECT_EQ(Code(ev), grpc::StatusCode::CANCELLED) << ev.DebugString();
  grpc::ClientContext c3;
  end.set_session_id("no-such-session");
  EXPECT_EQ(admin_->EndSession(&c3, end, &e).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(IndexerServiceTest, DeliveryBecomesVisibleThroughInotify) {
  // An MDA appends under its dotlock; removing the lock is the signal.
  WriteFile(dir_.File("spool/alice.lock"), "1\n");
  AppendFile(dir_.File("spool/alice"), Msg(5));
  ::unlink(dir_.File("spool/alice.lock").c_str());
  absl::Time start = absl::Now();
  uint32_t messages = 0;
  while (absl::Now() - start < absl::Seconds(5)) {
    grpc::ClientContext ctx;
    v1::MailboxList boxes;
    ASSERT_TRUE(admin_->ListMailboxes(&ctx, v1::Empty(), &boxes).ok());
    messages = boxes.mailboxes(0).messages();
    if (messages == 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(messages, 4u);  // without any login: the event thread indexed it
}

TEST_F(IndexerServiceTest, RestartWithAndWithoutTheDatabaseKeepsNumbersAndUidls) {
  AppendFile(dir_.File("spool/alice"), Msg(2));  // a duplicate delivery: suffixed UIDL
  const std::string before = Uidls();
  ASSERT_EQ(std::count(before.begin(), before.end(), '\n'), 3);
  StopDaemon();
  StartDaemon();
  EXPECT_EQ(Uidls(), before);
  StopDaemon();
  for (const char* suffix : {"", "-wal", "-shm"})
    ::unlink((dir_.File("index.sqlite") + suffix).c_str());
  StartDaemon();  // a new database: the account is added again by SetUp's helper
  EXPECT_EQ(Uidls(), before);
}

TEST_F(IndexerServiceTest, HealthServiceIsServing) {
  ASSERT_NE(daemon_->server()->GetHealthCheckService(), nullptr);
}

// ---- Sessions: many sessions over one stream (maildrop.proto, rpc Sessions) ----

class SessionsStreamTest : public IndexerServiceTest {
 protected:
  void SetUp() override {
    IndexerServiceTest::SetUp();
    WriteFile(dir_.File("spool/bob"), Msg(7) + Msg(8));
    v1::AddAccountRequest add;
    add.set_user("bob");
    add.set_password("battery staple");
    v1::Account account;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->AddAccount(&ctx, add, &account).ok());
  }

  // Opens `user` on a new stream, retrying for up to 5 s while it is [IN-USE].
  bool OpensWithin5s(const std::string& user) {
    for (int i = 0; i < 100; ++i) {
      Mux m = NewMux();
      v1::SessionsEvent ev = m.OpenAndWait(1, user);
      m.stream->WritesDone();
      m.stream->Finish();
      if (ev.has_snapshot()) return true;
      EXPECT_EQ(Code(ev), grpc::StatusCode::RESOURCE_EXHAUSTED) << ev.error().message();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  size_t LiveSessions() {
    grpc::ClientContext ctx;
    v1::SessionList sessions;
    EXPECT_TRUE(admin_->ListSessions(&ctx, v1::Empty(), &sessions).ok());
    return sessions.sessions_size();
  }
};

// Issue 15: the TCP listener authenticates no peer, so it serves no Admin call and opens no
// session without the user's own credentials; the unix socket (file permissions) keeps both.
TEST_F(SessionsStreamTest, TcpListenerServesNoAdminAndOpensOnlyWithCredentials) {
  StopDaemon();
  config::IndexerConfig c = Config();
  c.mutable_listen()->set_tcp_address("127.0.0.1:0");
  StartDaemon(c);
  ASSERT_GT(daemon_->tcp_port(), 0);
  auto tcp = grpc::CreateChannel(absl::StrCat("127.0.0.1:", daemon_->tcp_port()),
                                 grpc::InsecureChannelCredentials());
  auto tcp_admin = v1::Admin::NewStub(tcp);
  {  // Admin: not there at all, whatever the call.
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    v1::AccountList accounts;
    EXPECT_EQ(tcp_admin->ListAccounts(&ctx, v1::Empty(), &accounts).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
    grpc::ClientContext ctx2;
    ctx2.set_deadline(In(10));
    v1::AddAccountRequest add;
    add.set_user("mallory");
    add.set_password("x");
    v1::Account account;
    EXPECT_EQ(tcp_admin->AddAccount(&ctx2, add, &account).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  auto tcp_maildrop = v1::Maildrop::NewStub(tcp);
  {  // Sessions stream: by name alone, refused; wrong password refused; right password opens.
    Mux m;
    m.ctx = std::make_unique<grpc::ClientContext>();
    m.ctx->set_deadline(In(30));
    m.stream = tcp_maildrop->Sessions(m.ctx.get());
    v1::SessionsEvent ev = m.OpenAndWait(1, "alice");
    EXPECT_FALSE(ev.has_snapshot());
    EXPECT_EQ(Code(ev), grpc::StatusCode::UNAUTHENTICATED) << ev.error().message();
    ev = m.OpenAndWait(2, "alice", "wrong");
    EXPECT_EQ(Code(ev), grpc::StatusCode::UNAUTHENTICATED);
    ev = m.OpenAndWait(3, "alice", "correct horse");
    ASSERT_TRUE(ev.has_snapshot()) << ev.error().message();
    EXPECT_TRUE(ev.snapshot().credentials_checked());
    m.stream->WritesDone();
    m.stream->Finish();
  }
  // The unix socket: Admin works, and its trusted callers may open by name.
  EXPECT_EQ(LiveSessions(), 0u);
  Mux m = NewMux();
  v1::SessionsEvent ev = m.OpenAndWait(1, "alice");
  ASSERT_TRUE(ev.has_snapshot()) << ev.error().message();
  EXPECT_FALSE(ev.snapshot().credentials_checked());
  m.stream->WritesDone();
  m.stream->Finish();
  // The refused opens left nothing behind.
  EXPECT_EQ(LiveSessions(), 0u);
}

TEST_F(SessionsStreamTest, TwoSessionsOnOneStreamGetTheirOwnSnapshotsAndCommits) {
  Mux m = NewMux();
  v1::SessionsEvent a = m.OpenAndWait(1, "alice", "correct horse");
  ASSERT_TRUE(a.has_snapshot()) << a.error().message();
  EXPECT_EQ(a.tag(), 1u);
  EXPECT_TRUE(a.snapshot().credentials_checked());
  ExpectSnapshotMatchesFile(a.snapshot(), dir_.File("spool/alice"));
  v1::SessionsEvent b = m.OpenAndWait(2, "bob", "battery staple");
  ASSERT_TRUE(b.has_snapshot()) << b.error().message();
  EXPECT_EQ(b.tag(), 2u);
  ExpectSnapshotMatchesFile(b.snapshot(), dir_.File("spool/bob"));
  EXPECT_EQ(LiveSessions(), 2u);

  // alice deletes her message 2; bob commits nothing.
  v1::Commit del;
  v1::MessageRef* ref = del.add_deleted();
  ref->set_data_offset(a.snapshot().data_offsets(1));
  ref->set_content_hash(a.snapshot().content_hashes().substr(16, 16));
  ASSERT_TRUE(m.Commit(1, del));
  v1::SessionsEvent ra = m.Next();
  ASSERT_TRUE(ra.has_committed()) << ra.error().message();
  EXPECT_EQ(ra.tag(), 1u);
  EXPECT_EQ(ra.committed().deleted(), 1u);
  ASSERT_TRUE(m.Commit(2));
  v1::SessionsEvent rb = m.Next();
  ASSERT_TRUE(rb.has_committed()) << rb.error().message();
  EXPECT_EQ(rb.tag(), 2u);
  EXPECT_EQ(rb.committed().deleted(), 0u);
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), Msg(1) + Msg(3));
  EXPECT_EQ(ReadFile(dir_.File("spool/bob")), Msg(7) + Msg(8));
  EXPECT_EQ(LiveSessions(), 0u);  // a commit ends the session and its lease

  // The same stream goes on: alice again, with the new numbering.
  v1::SessionsEvent again = m.OpenAndWait(3, "alice");
  ASSERT_TRUE(again.has_snapshot());
  EXPECT_EQ(again.snapshot().count(), 2u);
  ASSERT_TRUE(m.Close(3));
  m.stream->WritesDone();
  EXPECT_FALSE(m.stream->Read(&again));
  EXPECT_TRUE(m.stream->Finish().ok());
}

TEST_F(SessionsStreamTest, SecondOpenOfAMailboxIsInUseAtOnceOnAnyStream) {
  Mux m = NewMux();
  ASSERT_TRUE(m.OpenAndWait(1, "alice").has_snapshot());
  absl::Time start = absl::Now();
  v1::SessionsEvent same = m.OpenAndWait(2, "alice");  // same stream
  EXPECT_EQ(same.tag(), 2u);
  EXPECT_EQ(Code(same), grpc::StatusCode::RESOURCE_EXHAUSTED) << same.error().message();
  Mux other = NewMux();
  v1::SessionsEvent there = other.OpenAndWait(1, "alice");  // another stream
  EXPECT_EQ(Code(there), grpc::StatusCode::RESOURCE_EXHAUSTED) << there.error().message();
  Open single = OpenSession("alice");  // a stream per session
  EXPECT_FALSE(single.got_snapshot);
  EXPECT_EQ(Refused(single), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // And the other way round: a session alone on its stream holds bob, a shared one gets
  // [IN-USE].
  Open held = OpenSession("bob");
  ASSERT_TRUE(held.got_snapshot);
  EXPECT_EQ(Code(other.OpenAndWait(2, "bob")), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Close(held).ok());
  // The failed opens cost the first session nothing.
  ASSERT_TRUE(m.Commit(1));
  EXPECT_TRUE(m.Next().has_committed());
}

TEST_F(SessionsStreamTest, CloseReleasesTheLeaseAndDeletesNothing) {
  const std::string before = ReadFile(dir_.File("spool/alice"));
  Mux m = NewMux();
  ASSERT_TRUE(m.OpenAndWait(1, "alice").has_snapshot());
  ASSERT_TRUE(m.Close(1));
  // Requests are handled in order: the next open on the same stream finds the maildrop free.
  v1::SessionsEvent ev = m.OpenAndWait(2, "alice");
  ASSERT_TRUE(ev.has_snapshot()) << ev.error().message();
  EXPECT_EQ(ev.tag(), 2u);
  ASSERT_TRUE(m.Close(2));
  ASSERT_TRUE(m.Close(2));  // again, and a tag never opened: ignored, no event
  ASSERT_TRUE(m.Close(77));
  EXPECT_TRUE(OpensWithin5s("alice"));  // and from another stream
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), before);
  m.stream->WritesDone();
  EXPECT_FALSE(m.stream->Read(&ev));  // no event for the closes
  EXPECT_TRUE(m.stream->Finish().ok());
}

TEST_F(SessionsStreamTest, CancelledStreamReleasesEveryLease) {
  const std::string before = ReadFile(dir_.File("spool/alice"));
  Mux m = NewMux();
  ASSERT_TRUE(m.OpenAndWait(1, "alice").has_snapshot());
  ASSERT_TRUE(m.OpenAndWait(2, "bob").has_snapshot());
  EXPECT_EQ(LiveSessions(), 2u);
  m.ctx->TryCancel();  // popd died
  m.stream->Finish();
  EXPECT_TRUE(OpensWithin5s("alice"));
  EXPECT_TRUE(OpensWithin5s("bob"));
  EXPECT_EQ(LiveSessions(), 0u);
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), before);
}

TEST_F(SessionsStreamTest, HalfCloseEndsEverySessionAtOnce) {
  Mux m = NewMux();
  ASSERT_TRUE(m.OpenAndWait(1, "alice").has_snapshot());
  ASSERT_TRUE(m.OpenAndWait(2, "bob").has_snapshot());
  m.stream->WritesDone();
  v1::SessionsEvent ev;
  EXPECT_FALSE(m.stream->Read(&ev));
  EXPECT_TRUE(m.stream->Finish().ok());
  EXPECT_EQ(LiveSessions(), 0u);  // released before the stream's status went out
}

TEST_F(SessionsStreamTest, AdminEndsOnlyThatTag) {
  Mux m = NewMux();
  ASSERT_TRUE(m.OpenAndWait(1, "alice").has_snapshot());
  ASSERT_TRUE(m.OpenAndWait(2, "bob").has_snapshot());
  grpc::ClientContext c1;
  v1::SessionList sessions;
  ASSERT_TRUE(admin_->ListSessions(&c1, v1::Empty(), &sessions).ok());
  ASSERT_EQ(sessions.sessions_size(), 2);
  std::string alice_session;
  for (const v1::SessionInfo& s : sessions.sessions()) {
    EXPECT_EQ(s.client_address(), "192.0.2.9");
    EXPECT_EQ(s.front_end(), "mux-test");
    if (s.user() == "alice") alice_session = s.session_id();
  }
  ASSERT_FALSE(alice_session.empty());
  grpc::ClientContext c2;
  v1::EndSessionRequest end;
  end.set_session_id(alice_session);
  v1::Empty e;
  ASSERT_TRUE(admin_->EndSession(&c2, end, &e).ok());
  v1::SessionsEvent ended = m.Next();
  EXPECT_EQ(ended.tag(), 1u);
  EXPECT_EQ(Code(ended), grpc::StatusCode::CANCELLED) << ended.error().message();
  EXPECT_EQ(LiveSessions(), 1u);
  // bob's session and the stream go on; alice can log in again on the same stream.
  ASSERT_TRUE(m.Commit(2));
  v1::SessionsEvent committed = m.Next();
  EXPECT_EQ(committed.tag(), 2u);
  EXPECT_TRUE(committed.has_committed());
  v1::SessionsEvent again = m.OpenAndWait(3, "alice");
  EXPECT_TRUE(again.has_snapshot()) << again.error().message();
  // Ending the same session again: it is gone.
  grpc::ClientContext c3;
  EXPECT_EQ(admin_->EndSession(&c3, end, &e).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionsStreamTest, MalformedSequencesFailOnlyTheirTag) {
  const std::string before = ReadFile(dir_.File("spool/alice"));
  Mux m = NewMux();
  v1::SessionsEvent bob = m.OpenAndWait(1, "bob");
  ASSERT_TRUE(bob.has_snapshot());
  struct Case {
    const char* what;
    std::function<void()> send;
    uint64_t tag;
    grpc::StatusCode want;
  };
  v1::Snapshot alice;
  const std::vector<Case> cases = {
      {"commit before open", [&] { m.Commit(5); }, 5, grpc::StatusCode::INVALID_ARGUMENT},
      {"open of a live tag (duplicate)", [&] { m.Open(1, "alice"); }, 1,
       grpc::StatusCode::INVALID_ARGUMENT},
      {"a request with no kind",
       [&] {
         v1::SessionsRequest req;
         req.set_tag(6);
         m.stream->Write(req);
       },
       6, grpc::StatusCode::INVALID_ARGUMENT},
      {"wrong password", [&] { m.Open(7, "alice", "wrong"); }, 7,
       grpc::StatusCode::UNAUTHENTICATED},
      {"unknown account", [&] { m.Open(8, "nobody"); }, 8, grpc::StatusCode::UNAUTHENTICATED},
      {"commit of a message that is not there",
       [&] {
         v1::SessionsEvent opened = m.OpenAndWait(9, "alice");
         ASSERT_TRUE(opened.has_snapshot());
         v1::Commit c;
         v1::MessageRef* ref = c.add_deleted();
         ref->set_data_offset(opened.snapshot().data_offsets(0) + 1);
         ref->set_content_hash(opened.snapshot().content_hashes().substr(0, 16));
         m.Commit(9, c);
       },
       9, grpc::StatusCode::INVALID_ARGUMENT},
      {"commit after the session ended", [&] { m.Commit(9); }, 9,
       grpc::StatusCode::INVALID_ARGUMENT},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    c.send();
    v1::SessionsEvent ev = m.Next();
    EXPECT_EQ(ev.tag(), c.tag);
    EXPECT_TRUE(ev.has_error());
    EXPECT_EQ(Code(ev), c.want) << ev.error().message();
    EXPECT_FALSE(ev.error().message().empty());
  }
  // The duplicate tag ended bob's session 1 (the client could not tell the two apart) and
  // every failure released its lease: both maildrops open again, on the same stream.
  EXPECT_EQ(LiveSessions(), 0u);
  EXPECT_TRUE(m.OpenAndWait(10, "alice").has_snapshot());
  EXPECT_TRUE(m.OpenAndWait(11, "bob").has_snapshot());
  ASSERT_TRUE(m.Commit(11));
  v1::SessionsEvent ok = m.Next();
  EXPECT_EQ(ok.tag(), 11u);
  EXPECT_TRUE(ok.has_committed());
  EXPECT_EQ(ReadFile(dir_.File("spool/alice")), before);
}

TEST_F(SessionsStreamTest, SessionsPerStreamAreBounded) {
  StopDaemon();
  config::IndexerConfig c = Config();
  c.set_max_sessions_per_stream(1);
  StartDaemon(c);
  Mux m = NewMux();
  ASSERT_TRUE(m.OpenAndWait(1, "alice").has_snapshot());
  v1::SessionsEvent refused = m.OpenAndWait(2, "bob");
  EXPECT_EQ(refused.tag(), 2u);
  EXPECT_EQ(Code(refused), grpc::StatusCode::UNAVAILABLE)
      << refused.error().message();  // [SYS/TEMP]
  Mux other = NewMux();
  EXPECT_TRUE(other.OpenAndWait(1, "bob").has_snapshot());  // the bound is per stream
  ASSERT_TRUE(m.Close(1));
  // Room again: a third open is judged on its merits (no such account), not refused.
  EXPECT_EQ(Code(m.OpenAndWait(3, "dave")), grpc::StatusCode::UNAUTHENTICATED);
}

// ---- issue 15: a dropped connection must not lock the user out (liveness probes) ----

class LeaseWaitTest : public SessionsStreamTest {
 protected:
  // A wait bound far above any answer time, so "at once" and "waited" cannot be confused.
  void RestartWithWait(uint32_t wait_ms) {
    StopDaemon();
    config::IndexerConfig c = Config();
    c.set_lease_wait_ms(wait_ms);
    StartDaemon(c);
  }
  // The holder: alice on tag 1 of a stream that answers probes. Its deadline is short so a
  // probe that never comes (the behaviour before issue 15) fails the test in seconds.
  Mux Holder() {
    Mux m = NewMux(/*deadline_s=*/8);
    EXPECT_TRUE(m.Open(1, "alice", "", /*answers_probes=*/true));
    v1::SessionsEvent ev = m.Next();
    EXPECT_TRUE(ev.has_snapshot()) << ev.error().message();
    return m;
  }
};

// The reconnect's open reaches the indexer before the old connection's Close (popd had not
// yet seen the EOF): the indexer asks the holder's stream, the Close follows, and the open
// gets the lease instead of RESOURCE_EXHAUSTED.
TEST_F(LeaseWaitTest, AnOpenThatRacesACloseGetsTheLease) {
  RestartWithWait(10000);
  Mux holder = Holder();
  Mux again = NewMux();
  const absl::Time start = absl::Now();
  ASSERT_TRUE(again.Open(1, "alice", "correct horse", /*answers_probes=*/true));
  v1::SessionsEvent probe = holder.Next();
  ASSERT_TRUE(probe.has_probe()) << "expected a probe, got: " << probe.DebugString();
  EXPECT_EQ(probe.tag(), 1u);
  ASSERT_TRUE(holder.Close(1));  // the connection was gone: popd ends the session
  v1::SessionsEvent ev = again.Next();
  ASSERT_TRUE(ev.has_snapshot()) << ev.error().message();
  EXPECT_TRUE(ev.snapshot().credentials_checked());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // the release, not the bound, ended it
  EXPECT_EQ(LiveSessions(), 1u);
  // The new session is alive: a third login is refused as soon as it says so.
  Mux third = NewMux();
  ASSERT_TRUE(third.Open(1, "alice"));
  v1::SessionsEvent probe2 = again.Next();
  ASSERT_TRUE(probe2.has_probe()) << probe2.DebugString();
  ASSERT_TRUE(again.Alive(1));
  EXPECT_EQ(Code(third.Next()), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(again.Commit(1));
  EXPECT_TRUE(again.Next().has_committed());
}

// A live holder: the second session gets RESOURCE_EXHAUSTED as soon as the holder's stream
// says "alive", far sooner than the 10 s bound, and the holder goes on undisturbed.
TEST_F(LeaseWaitTest, ALiveHolderGivesResourceExhaustedAtOnce) {
  RestartWithWait(10000);
  Mux holder = Holder();
  Mux second = NewMux();
  const absl::Time start = absl::Now();
  ASSERT_TRUE(second.Open(1, "alice", "correct horse", /*answers_probes=*/true));
  v1::SessionsEvent probe = holder.Next();
  ASSERT_TRUE(probe.has_probe()) << probe.DebugString();
  ASSERT_TRUE(holder.Alive(1));
  v1::SessionsEvent refused = second.Next();
  EXPECT_EQ(Code(refused), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.DebugString();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ASSERT_TRUE(holder.Commit(1));
  EXPECT_TRUE(holder.Next().has_committed());
}

// A holder whose front-end never answers (hung, or a client that claims to answer but does
// not): the wait ends at its bound with RESOURCE_EXHAUSTED, and other users log in meanwhile.
TEST_F(LeaseWaitTest, AnUnansweredProbeEndsAtTheBound) {
  RestartWithWait(400);
  Mux holder = Holder();
  Mux second = NewMux();
  const absl::Time start = absl::Now();
  ASSERT_TRUE(second.Open(1, "alice"));
  ASSERT_TRUE(holder.Next().has_probe());
  v1::SessionsEvent bob = NewMux().OpenAndWait(1, "bob");  // not held up by the wait
  EXPECT_TRUE(bob.has_snapshot()) << bob.error().message();
  v1::SessionsEvent refused = second.Next();
  const absl::Duration waited = absl::Now() - start;
  EXPECT_EQ(Code(refused), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.DebugString();
  EXPECT_GE(waited, absl::Milliseconds(400));
  EXPECT_LT(waited, absl::Seconds(5));
}

// lease_wait_ms 0: the old behaviour, RESOURCE_EXHAUSTED at once and no probe.
TEST_F(LeaseWaitTest, NoWaitConfiguredIsInUseAtOnce) {
  RestartWithWait(0);
  Mux holder = Holder();
  Mux second = NewMux();
  EXPECT_EQ(Code(second.OpenAndWait(1, "alice")), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(holder.Commit(1));
  v1::SessionsEvent ev = holder.Next();
  EXPECT_TRUE(ev.has_committed()) << "a probe or error came instead: " << ev.DebugString();
}

TEST(IndexerPollingTest, PolledSpoolFindsNewMailAndMailboxesWithoutInotify) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("spool").c_str(), 0755), 0);
  WriteFile(dir.File("spool/alice"), Msg(1));
  config::IndexerConfig c = poplar::testing::TestIndexerConfig(dir);
  config::Spool* spool = c.mutable_spools(0);
  spool->set_poll(true);
  spool->set_poll_interval_ms(100);
  auto d = Daemon::Start(c);
  ASSERT_TRUE(d.ok()) << d.status();
  auto admin = v1::Admin::NewStub(
      grpc::CreateChannel("unix:" + dir.File("indexer.sock"), grpc::InsecureChannelCredentials()));
  auto wait_for = [&](int mailboxes, uint32_t alice_messages) {
    for (int i = 0; i < 100; ++i) {
      grpc::ClientContext ctx;
      v1::MailboxList boxes;
      if (admin->ListMailboxes(&ctx, v1::Empty(), &boxes).ok() &&
          boxes.mailboxes_size() == mailboxes && boxes.mailboxes(0).messages() == alice_messages) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  EXPECT_TRUE(wait_for(1, 1));
  AppendFile(dir.File("spool/alice"), Msg(2));
  EXPECT_TRUE(wait_for(1, 2));
  WriteFile(dir.File("spool/bob"), Msg(3));
  EXPECT_TRUE(wait_for(2, 2));
  (*d)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace poplar::indexer

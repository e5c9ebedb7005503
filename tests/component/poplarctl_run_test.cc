// poplarctl end to end inside one process: parsed command lines run through AdminClient against a
// fake Admin service (in-process channel, or a real unix socket), checking stdout, stderr and
// exit codes, including the deadline and the unreachable-indexer paths.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "poplar/admin.grpc.pb.h"
#include "tests/component/temp_dir.h"
#include "tools/poplarctl/cli.h"
#include "tools/poplarctl/run.h"

namespace poplar::poplarctl {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A small indexer that keeps accounts in memory and serves canned mailboxes.
class FakeAdmin final : public v1::Admin::Service {
 public:
  grpc::Status AddAccount(grpc::ServerContext*, const v1::AddAccountRequest* request,
                          v1::Account* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_password_ = request->password();
    last_crypt_ = request->crypt_hash();
    if (request->user().empty()) return Error(grpc::INVALID_ARGUMENT, "empty user name");
    if (request->password().empty() == request->crypt_hash().empty()) {
      return Error(grpc::INVALID_ARGUMENT, "give exactly one of password and crypt_hash");
    }
    if (accounts_.contains(request->user())) {
      return Error(grpc::ALREADY_EXISTS, "account " + request->user() + " exists");
    }
    v1::Account& a = accounts_[request->user()];
    a.set_user(request->user());
    a.set_mailbox(request->mailbox().empty() ? "/var/mail/" + request->user() : request->mailbox());
    a.set_credential_kind(request->password().empty() ? "crypt" : "scram-sha-256");
    a.set_created_unix(1764000000);
    *reply = a;
    return grpc::Status::OK;
  }
  grpc::Status SetPassword(grpc::ServerContext*, const v1::SetPasswordRequest* request,
                           v1::Account* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_password_ = request->password();
    auto it = accounts_.find(request->user());
    if (it == accounts_.end()) return Error(grpc::NOT_FOUND, "no account " + request->user());
    it->second.set_credential_kind(request->password().empty() ? "crypt" : "scram-sha-256");
    *reply = it->second;
    return grpc::Status::OK;
  }
  grpc::Status RemoveAccount(grpc::ServerContext*, const v1::AccountName* request,
                             v1::Empty*) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (accounts_.erase(request->user()) == 0) {
      return Error(grpc::NOT_FOUND, "no account " + request->user());
    }
    return grpc::Status::OK;
  }
  grpc::Status ListAccounts(grpc::ServerContext*, const v1::Empty*,
                            v1::AccountList* reply) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, account] : accounts_) *reply->add_accounts() = account;
    return grpc::Status::OK;
  }
  grpc::Status ListMailboxes(grpc::ServerContext*, const v1::Empty*,
                             v1::MailboxList* reply) override {
    *reply->add_mailboxes() = Detail().summary();
    return grpc::Status::OK;
  }
  grpc::Status ShowMailbox(grpc::ServerContext*, const v1::MailboxName* request,
                           v1::MailboxDetail* reply) override {
    if (request->path() != "alice" && request->path() != "/var/mail/alice") {
      return Error(grpc::NOT_FOUND, "no mailbox " + request->path());
    }
    *reply = Detail();
    if (cap_show_) {
      // Like poplar-indexer's bounded reply: the summary counts all, the rows stop early.
      while (reply->messages_size() > 3) reply->mutable_messages()->RemoveLast();
    }
    return grpc::Status::OK;
  }
  grpc::Status Reindex(grpc::ServerContext* context, const v1::ReindexRequest* request,
                       grpc::ServerWriter<v1::ReindexProgress>* writer) override {
    if (request->path() == "nobody") return Error(grpc::NOT_FOUND, "no mailbox nobody");
    const char* paths[] = {"/var/mail/alice", "/var/mail/alice", "/var/mail/bob"};
    v1::ReindexProgress p;
    p.set_mailboxes_total(2);
    p.set_bytes_total(3'000'000);
    for (int i = 0; i < 3; ++i) {
      p.set_current(paths[i]);
      p.set_bytes_done(1'000'000 * static_cast<uint64_t>(i));
      p.set_mailboxes_done(i == 2 ? 1 : 0);
      writer->Write(p);
    }
    if (request->path() == "slow") {
      while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return grpc::Status::CANCELLED;
    }
    p.set_mailboxes_done(2);
    p.set_bytes_done(3'000'000);
    p.clear_current();
    writer->Write(p);
    return grpc::Status::OK;
  }
  grpc::Status Verify(grpc::ServerContext*, const v1::VerifyRequest* request,
                      v1::VerifyReply* reply) override {
    reply->set_mailboxes(request->path().empty() ? 2 : 1);
    reply->set_messages(5);
    if (request->path().empty() || request->path() == "bob") {
      v1::VerifyProblem* p = reply->add_problems();
      p->set_path("/var/mail/bob");
      p->set_description("message 2: UIDL differs");
    }
    return grpc::Status::OK;
  }
  grpc::Status ListSessions(grpc::ServerContext*, const v1::Empty*,
                            v1::SessionList* reply) override {
    v1::SessionInfo* s = reply->add_sessions();
    s->set_session_id("s-1");
    s->set_user("alice");
    s->set_mailbox("/var/mail/alice");
    s->set_client_address("192.0.2.7");
    s->set_front_end("popd-a");
    return grpc::Status::OK;
  }
  grpc::Status EndSession(grpc::ServerContext*, const v1::EndSessionRequest* request,
                          v1::Empty*) override {
    if (request->session_id() != "s-1") return Error(grpc::NOT_FOUND, "no such session");
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext* context, const v1::Empty*,
                      v1::IndexerStatus* reply) override {
    if (slow_status_) {
      while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return grpc::Status::CANCELLED;
    }
    reply->set_mailboxes(2);
    reply->set_messages(5);
    reply->set_version("fake");
    return grpc::Status::OK;
  }

  std::string last_password() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_password_;
  }
  std::string last_crypt() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_crypt_;
  }
  std::atomic<bool> slow_status_ = false;
  std::atomic<bool> cap_show_ = false;

 private:
  static grpc::Status Error(grpc::StatusCode code, const std::string& message) {
    return grpc::Status(code, message);
  }
  static v1::MailboxDetail Detail() {
    v1::MailboxDetail d;
    v1::MailboxSummary* s = d.mutable_summary();
    s->set_path("/var/mail/alice");
    s->set_user("alice");
    s->set_messages(5);
    s->set_octets(500);
    s->set_file_size(550);
    s->set_indexed_bytes(550);
    d.set_first(1);
    for (uint32_t i = 1; i <= 5; ++i) {
      v1::MessageRow* m = d.add_messages();
      m->set_number(i);
      m->set_offset(110 * (i - 1));
      m->set_octets(100);
      m->set_uidl("uidl-" + std::to_string(i));
    }
    return d;
  }

  std::mutex mu_;
  std::map<std::string, v1::Account> accounts_;
  std::string last_password_;
  std::string last_crypt_;
};

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class PoplarctlRun : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now()); }

  Result Run(const std::vector<std::string>& args, const std::string& password = "",
             bool terminal = false) {
    Result r;
    absl::StatusOr<Command> command = ParseCommandLine(args);
    if (!command.ok()) {
      ADD_FAILURE() << command.status();
      return r;
    }
    AdminClient client(server_->InProcessChannel(grpc::ChannelArguments()), command->target);
    std::ostringstream out, err;
    Output output{out, err, terminal, 60};
    r.code = RunCommand(*command, password, client, output);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  FakeAdmin fake_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(PoplarctlRun, AccountLifecycle) {
  Result r = Run({"accounts", "add", "alice"}, "hunter2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "added account alice (mailbox /var/mail/alice, scram-sha-256)\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(fake_.last_password(), "hunter2");

  r = Run({"accounts", "add", "alice"}, "other");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "poplarctl accounts add: account alice exists (ALREADY_EXISTS)\n");

  r = Run({"accounts", "add", "bob", "--crypt", "$6$salt$hash", "--mailbox", "/srv/bob"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake_.last_password(), "");
  EXPECT_EQ(fake_.last_crypt(), "$6$salt$hash");
  EXPECT_EQ(r.out, "added account bob (mailbox /srv/bob, crypt)\n");

  r = Run({"accounts", "list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "USER   MAILBOX          CREDENTIAL     CREATED\n"
            "alice  /var/mail/alice  scram-sha-256  2025-11-24T16:00:00Z\n"
            "bob    /srv/bob         crypt          2025-11-24T16:00:00Z\n");

  r = Run({"accounts", "list", "--json"});
  EXPECT_EQ(r.code, 0);
  v1::AccountList list;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &list).ok()) << r.out;
  ASSERT_EQ(list.accounts_size(), 2);
  EXPECT_EQ(list.accounts(1).credential_kind(), "crypt");

  r = Run({"accounts", "passwd", "alice"}, "new-secret");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(fake_.last_password(), "new-secret");
  EXPECT_THAT(r.out, StartsWith("changed the password of account alice"));

  r = Run({"accounts", "passwd", "zed"}, "x");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "poplarctl accounts passwd: no account zed (NOT_FOUND)\n");

  r = Run({"accounts", "remove", "alice"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "removed account alice\n");
  r = Run({"accounts", "remove", "alice", "--json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "poplarctl accounts remove: no account alice (NOT_FOUND)\n");
  r = Run({"accounts", "remove", "bob", "--json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "{}\n");
}

TEST_F(PoplarctlRun, MailboxesListAndShowWithPaging) {
  Result r = Run({"mailboxes", "list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("/var/mail/alice"));

  r = Run({"mailboxes", "show", "alice", "--from", "2", "--limit", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("5 (500 octets; 2-3 shown)"));
  EXPECT_THAT(r.out, HasSubstr("uidl-2"));
  EXPECT_THAT(r.out, HasSubstr("uidl-3"));
  EXPECT_THAT(r.out, Not(HasSubstr("uidl-1")));
  EXPECT_THAT(r.out, Not(HasSubstr("uidl-4")));

  r = Run({"--json", "mailboxes", "show", "/var/mail/alice", "--from", "4"});
  EXPECT_EQ(r.code, 0);
  v1::MailboxDetail detail;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &detail).ok()) << r.out;
  EXPECT_EQ(detail.first(), 4u);
  ASSERT_EQ(detail.messages_size(), 2);
  EXPECT_EQ(detail.messages(1).uidl(), "uidl-5");

  r = Run({"mailboxes", "show", "nobody"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "poplarctl mailboxes show: no mailbox nobody (NOT_FOUND)\n");
}

TEST_F(PoplarctlRun, MailboxesShowWarnsWhenTheReplyIsCut) {
  fake_.cap_show_ = true;
  Result r = Run({"mailboxes", "show", "alice", "--from", "2", "--limit", "2"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  r = Run({"mailboxes", "show", "alice", "--from", "4"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("5 (500 octets; none shown)"));
  EXPECT_EQ(r.err,
            "poplarctl mailboxes show: warning: the indexer sent messages 1-3 of 5; 4-5 were asked "
            "for\n");
}

TEST_F(PoplarctlRun, ReindexPlainLinesWhenStderrIsNotATerminal) {
  Result r = Run({"reindex"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "reindexed 2 mailboxes, 3000000 bytes\n");
  // One line per change of mailbox or of the finished count, none for repeats.
  EXPECT_EQ(r.err,
            "reindex: 0/2 mailboxes, 0.0/3.0 MB, /var/mail/alice\n"
            "reindex: 1/2 mailboxes, 2.0/3.0 MB, /var/mail/bob\n"
            "reindex: 2/2 mailboxes, 3.0/3.0 MB\n");

  r = Run({"reindex", "--json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "{\"mailboxes_done\":2,\"mailboxes_total\":2,\"bytes_done\":\"3000000\","
            "\"bytes_total\":\"3000000\",\"current\":\"\"}\n");
}

TEST_F(PoplarctlRun, ReindexRedrawsOneLineOnATerminal) {
  Result r = Run({"reindex", "alice"}, "", /*terminal=*/true);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, StartsWith("\rreindex: "));
  EXPECT_THAT(r.err, EndsWith("reindex: 2/2 mailboxes, 3.0/3.0 MB\x1b[K\n"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST_F(PoplarctlRun, ReindexErrorsAndDeadline) {
  Result r = Run({"reindex", "nobody"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "poplarctl reindex: no mailbox nobody (NOT_FOUND)\n");
  r = Run({"reindex", "slow", "--timeout", "0.3"});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, EndsWith("poplarctl reindex: the indexer at unix:/run/poplar/indexer.sock "
                              "did not answer within 300ms\n"));
}

TEST_F(PoplarctlRun, VerifyExitsFourOnProblems) {
  Result r = Run({"verify", "alice"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "verified 1 mailbox, 5 messages: no problems\n");
  r = Run({"verify"});
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.out,
            "PATH           PROBLEM\n"
            "/var/mail/bob  message 2: UIDL differs\n"
            "verified 2 mailboxes, 5 messages: 1 problem\n");
  r = Run({"verify", "bob", "--json"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.out, HasSubstr("\"description\":\"message 2: UIDL differs\""));
}

TEST_F(PoplarctlRun, SessionsAndStatus) {
  Result r = Run({"sessions", "list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("s-1      alice  /var/mail/alice  192.0.2.7  popd-a"));
  r = Run({"sessions", "end", "s-1"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "ended session s-1\n");
  r = Run({"sessions", "end", "s-2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "poplarctl sessions end: no such session (NOT_FOUND)\n");
  r = Run({"status"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, StartsWith("version      fake\nmailboxes    2\n"));
  r = Run({"status", "--json"});
  EXPECT_THAT(r.out, HasSubstr("\"messages\":\"5\""));
}

TEST_F(PoplarctlRun, DeadlineIsExitThree) {
  fake_.slow_status_ = true;
  auto start = std::chrono::steady_clock::now();
  Result r = Run({"status", "--timeout", "0.2"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.err,
            "poplarctl status: the indexer at unix:/run/poplar/indexer.sock did not answer "
            "within 200ms\n");
}

TEST(PoplarctlUnix, TalksOverAUnixSocket) {
  testing::TempDir dir;
  const std::string target = "unix:" + dir.File("indexer.sock");
  FakeAdmin fake;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, grpc::InsecureServerCredentials());
  builder.RegisterService(&fake);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  absl::StatusOr<Command> command =
      ParseCommandLine({"--socket", dir.File("indexer.sock"), "status"});
  ASSERT_TRUE(command.ok());
  AdminClient client(AdminClient::MakeChannel(command->target), command->target);
  std::ostringstream out, err;
  Output output{out, err};
  EXPECT_EQ(RunCommand(*command, "", client, output), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("fake"));
  server->Shutdown(std::chrono::system_clock::now());
}

TEST(PoplarctlUnix, NoSocketIsExitThreeWithAHint) {
  testing::TempDir dir;
  absl::StatusOr<Command> command =
      ParseCommandLine({"--socket", dir.File("indexer.sock"), "accounts", "list"});
  ASSERT_TRUE(command.ok());
  AdminClient client(AdminClient::MakeChannel(command->target), command->target);
  std::ostringstream out, err;
  Output output{out, err};
  EXPECT_EQ(RunCommand(*command, "", client, output), 3);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "poplarctl accounts list: cannot reach the indexer at unix:" +
                           dir.File("indexer.sock") + ": no socket at " + dir.File("indexer.sock") +
                           " (is poplar-indexer running?)\n");
}

TEST(UnixSocketHint, SaysWhatIsWrong) {
  testing::TempDir dir;
  EXPECT_THAT(UnixSocketHint(dir.File("none")), HasSubstr("no socket at"));
  testing::WriteFile(dir.File("plain"), "x");
  EXPECT_THAT(UnixSocketHint(dir.File("plain")), EndsWith("is not a socket"));
}

}  // namespace
}  // namespace poplar::poplarctl

#include "tools/poplarctl/run.h"

#include <string.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "tools/poplarctl/render.h"

namespace poplar::poplarctl {
namespace {

// Prints `reply` as a table (`human`) or JSON; returns the exit code.
template <typename Reply, typename Human>
int Print(const Command& command, const absl::StatusOr<Reply>& reply, Output& output, Human human) {
  if (!reply.ok()) {
    output.err << ErrorLine(VerbName(command.verb), reply.status(), command.target,
                            RpcTimeout(command))
               << "\n";
    return ExitCodeFor(reply.status());
  }
  output.out << (command.json ? ToJson(*reply) : human(*reply));
  return kExitOk;
}

// Sets the credential fields of an AddAccountRequest or SetPasswordRequest.
template <typename Request>
void SetCredential(const Command& command, std::string_view password, Request* request) {
  if (command.credential == CredentialSource::kCrypt) {
    request->set_crypt_hash(command.crypt_hash);
  } else {
    request->set_password(std::string(password));
  }
}

template <typename Request>
void WipePassword(Request* request) {
  std::string* password = request->mutable_password();
  explicit_bzero(password->data(), password->size());
}

// Reindex progress on stderr: one redrawn line on a terminal (at most ten redraws a second),
// plain lines otherwise (one whenever the mailbox or the count of finished mailboxes changes).
class ProgressDisplay {
 public:
  explicit ProgressDisplay(Output& output) : output_(output) {}

  void Update(const v1::ReindexProgress& progress) {
    last_ = progress;
    any_ = true;
    if (output_.err_is_terminal) {
      absl::Time now = absl::Now();
      if (now - drawn_at_ < absl::Milliseconds(100)) return;
      Draw();
      drawn_at_ = now;
      return;
    }
    if (progress.current() == plain_current_ && progress.mailboxes_done() == plain_done_) return;
    plain_current_ = progress.current();
    plain_done_ = progress.mailboxes_done();
    output_.err << ProgressLine(progress, 0) << "\n";
  }

  // Leaves the last state on screen and moves to the next line.
  void Finish() {
    if (!output_.err_is_terminal || !any_) return;
    Draw();
    output_.err << "\n" << std::flush;
  }

  const v1::ReindexProgress& last() const { return last_; }

 private:
  void Draw() {
    // Leave the last column free: some terminals wrap when it is written.
    size_t width = output_.width > 1 ? output_.width - 1 : 0;
    output_.err << "\r" << ProgressLine(last_, width) << "\x1b[K" << std::flush;
  }

  Output& output_;
  v1::ReindexProgress last_;
  bool any_ = false;
  absl::Time drawn_at_ = absl::InfinitePast();
  std::string plain_current_;
  uint32_t plain_done_ = UINT32_MAX;
};

int Reindex(const Command& command, AdminClient& client, Output& output) {
  v1::ReindexRequest request;
  request.set_path(command.operand);
  ProgressDisplay display(output);
  absl::Status status =
      client.Reindex(request, RpcTimeout(command),
                     [&display](const v1::ReindexProgress& progress) { display.Update(progress); });
  display.Finish();
  if (!status.ok()) {
    output.err << ErrorLine(VerbName(command.verb), status, command.target, RpcTimeout(command))
               << "\n";
    return ExitCodeFor(status);
  }
  output.out << (command.json ? ToJson(display.last()) : ReindexSummary(display.last()));
  return kExitOk;
}

}  // namespace

int RunCommand(const Command& command, std::string_view password, AdminClient& client,
               Output& output) {
  const Timeout timeout = RpcTimeout(command);
  switch (command.verb) {
    case Verb::kHelp:
      output.out << UsageText();
      return kExitOk;
    case Verb::kAccountsAdd: {
      v1::AddAccountRequest request;
      request.set_user(command.operand);
      request.set_mailbox(command.mailbox);
      SetCredential(command, password, &request);
      absl::StatusOr<v1::Account> reply = client.AddAccount(request, timeout);
      WipePassword(&request);
      return Print(command, reply, output,
                   [](const v1::Account& a) { return AccountLine("added", a); });
    }
    case Verb::kAccountsPasswd: {
      v1::SetPasswordRequest request;
      request.set_user(command.operand);
      SetCredential(command, password, &request);
      absl::StatusOr<v1::Account> reply = client.SetPassword(request, timeout);
      WipePassword(&request);
      return Print(command, reply, output,
                   [](const v1::Account& a) { return AccountLine("changed the password of", a); });
    }
    case Verb::kAccountsApop: {
      v1::SetApopSecretRequest request;
      request.set_user(command.operand);
      if (command.credential == CredentialSource::kPassword)
        request.set_secret(std::string(password));
      absl::StatusOr<v1::Account> reply = client.SetApopSecret(request, timeout);
      std::fill(request.mutable_secret()->begin(), request.mutable_secret()->end(), '\0');
      const bool removed = command.credential != CredentialSource::kPassword;
      return Print(command, reply, output, [removed](const v1::Account& a) {
        return AccountLine(removed ? "removed the APOP secret of" : "set the APOP secret of", a);
      });
    }
    case Verb::kAccountsRemove: {
      v1::AccountName request;
      request.set_user(command.operand);
      return Print(command, client.RemoveAccount(request, timeout), output, [&](const v1::Empty&) {
        return "removed account " + Printable(command.operand) + "\n";
      });
    }
    case Verb::kAccountsList:
      return Print(command, client.ListAccounts(timeout), output, AccountsTable);
    case Verb::kMailboxesList:
      return Print(command, client.ListMailboxes(timeout), output, MailboxesTable);
    case Verb::kMailboxesShow: {
      v1::MailboxName request;
      request.set_path(command.operand);
      request.set_first(command.from);
      request.set_limit(command.limit);
      absl::StatusOr<v1::MailboxDetail> reply = client.ShowMailbox(request, timeout);
      if (reply.ok()) {
        if (std::string gap = PagingGap(*reply, command.from, command.limit); !gap.empty()) {
          output.err << "poplarctl " << VerbName(command.verb) << ": warning: " << gap << "\n";
        }
        *reply = PageOf(*reply, command.from, command.limit);
      }
      return Print(command, reply, output, MailboxDetailText);
    }
    case Verb::kReindex:
      return Reindex(command, client, output);
    case Verb::kVerify: {
      v1::VerifyRequest request;
      request.set_path(command.operand);
      absl::StatusOr<v1::VerifyReply> reply = client.Verify(request, timeout);
      int code = Print(command, reply, output, VerifyText);
      if (code == kExitOk && !reply->problems().empty()) code = kExitProblems;
      return code;
    }
    case Verb::kSessionsList:
      return Print(command, client.ListSessions(timeout), output, SessionsTable);
    case Verb::kSessionsEnd: {
      v1::EndSessionRequest request;
      request.set_session_id(command.operand);
      return Print(command, client.EndSession(request, timeout), output, [&](const v1::Empty&) {
        return "ended session " + Printable(command.operand) + "\n";
      });
    }
    case Verb::kStatus:
      return Print(command, client.Status(timeout), output, StatusText);
  }
  return kExitUsage;
}

}  // namespace poplar::poplarctl

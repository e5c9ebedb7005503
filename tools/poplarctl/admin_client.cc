#include "tools/poplarctl/admin_client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace poplar::poplarctl {
namespace {

void SetDeadline(grpc::ClientContext* context, Timeout timeout) {
  if (!timeout.has_value()) return;
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(*timeout));
}

}  // namespace

std::string UnixSocketHint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return absl::StrCat("no socket at ", path, " (is poplar-indexer running?)");
    if (errno == EACCES) {
      return absl::StrCat("permission denied on a directory above ", path,
                          " (run poplarctl as a user allowed to use the indexer socket)");
    }
    return absl::StrCat(path, ": ", strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return absl::StrCat(path, " is not a socket");
  if (access(path.c_str(), R_OK | W_OK) != 0 && errno == EACCES) {
    return absl::StrCat("permission denied on ", path,
                        " (run poplarctl as a user allowed to use the indexer socket)");
  }
  return "";
}

std::shared_ptr<grpc::Channel> AdminClient::MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

AdminClient::AdminClient(std::shared_ptr<grpc::ChannelInterface> channel, std::string target)
    : stub_(v1::Admin::NewStub(std::move(channel))), target_(std::move(target)) {}

absl::Status AdminClient::FromGrpc(const grpc::Status& status) const {
  // grpc::StatusCode and absl::StatusCode share their values (both are the canonical codes).
  auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string message = status.error_message();
  if (code == absl::StatusCode::kUnavailable && target_.starts_with("unix:")) {
    std::string hint = UnixSocketHint(target_.substr(5));
    if (!hint.empty()) message = hint;
  }
  return absl::Status(code, message);
}

template <typename Request, typename Reply>
absl::StatusOr<Reply> AdminClient::Call(
    grpc::Status (v1::Admin::StubInterface::*method)(grpc::ClientContext*, const Request&, Reply*),
    const Request& request, Timeout timeout) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  Reply reply;
  grpc::Status status = (stub_.get()->*method)(&context, request, &reply);
  if (!status.ok()) return FromGrpc(status);
  return reply;
}

absl::StatusOr<v1::Account> AdminClient::AddAccount(const v1::AddAccountRequest& request,
                                                    Timeout timeout) {
  return Call(&v1::Admin::StubInterface::AddAccount, request, timeout);
}

absl::StatusOr<v1::Account> AdminClient::SetApopSecret(const v1::SetApopSecretRequest& request,
                                                       Timeout timeout) {
  return Call(&v1::Admin::StubInterface::SetApopSecret, request, timeout);
}

absl::StatusOr<v1::Account> AdminClient::SetPassword(const v1::SetPasswordRequest& request,
                                                     Timeout timeout) {
  return Call(&v1::Admin::StubInterface::SetPassword, request, timeout);
}

absl::StatusOr<v1::Empty> AdminClient::RemoveAccount(const v1::AccountName& request,
                                                     Timeout timeout) {
  return Call(&v1::Admin::StubInterface::RemoveAccount, request, timeout);
}

absl::StatusOr<v1::AccountList> AdminClient::ListAccounts(Timeout timeout) {
  return Call(&v1::Admin::StubInterface::ListAccounts, v1::Empty(), timeout);
}

absl::StatusOr<v1::MailboxList> AdminClient::ListMailboxes(Timeout timeout) {
  return Call(&v1::Admin::StubInterface::ListMailboxes, v1::Empty(), timeout);
}

absl::StatusOr<v1::MailboxDetail> AdminClient::ShowMailbox(const v1::MailboxName& request,
                                                           Timeout timeout) {
  return Call(&v1::Admin::StubInterface::ShowMailbox, request, timeout);
}

absl::Status AdminClient::Reindex(
    const v1::ReindexRequest& request, Timeout timeout,
    const std::function<void(const v1::ReindexProgress&)>& on_progress) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  std::unique_ptr<grpc::ClientReaderInterface<v1::ReindexProgress>> reader =
      stub_->Reindex(&context, request);
  v1::ReindexProgress progress;
  while (reader->Read(&progress)) on_progress(progress);
  return FromGrpc(reader->Finish());
}

absl::StatusOr<v1::VerifyReply> AdminClient::Verify(const v1::VerifyRequest& request,
                                                    Timeout timeout) {
  return Call(&v1::Admin::StubInterface::Verify, request, timeout);
}

absl::StatusOr<v1::SessionList> AdminClient::ListSessions(Timeout timeout) {
  return Call(&v1::Admin::StubInterface::ListSessions, v1::Empty(), timeout);
}

absl::StatusOr<v1::Empty> AdminClient::EndSession(const v1::EndSessionRequest& request,
                                                  Timeout timeout) {
  return Call(&v1::Admin::StubInterface::EndSession, request, timeout);
}

absl::StatusOr<v1::IndexerStatus> AdminClient::Status(Timeout timeout) {
  return Call(&v1::Admin::StubInterface::Status, v1::Empty(), timeout);
}

}  // namespace poplar::poplarctl

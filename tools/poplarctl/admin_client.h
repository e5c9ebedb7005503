// AdminClient: poplarctl's calls to the indexer's Admin gRPC service (proto/poplar/admin.proto),
// one method per RPC, each with its own deadline, returning absl::Status(Or) with the gRPC code
// carried over unchanged. This is all of poplarctl's access to Poplar's state: it never opens
// the index database or the spool (design §1).
//
// Channels are plaintext (InsecureChannelCredentials). On the default unix socket the file's
// owner, group and mode are the access control; --address is meant for a loopback or otherwise
// protected network.
#ifndef POPLAR_TOOLS_POPLARCTL_ADMIN_CLIENT_H_
#define POPLAR_TOOLS_POPLARCTL_ADMIN_CLIENT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "poplar/admin.grpc.pb.h"

namespace poplar::poplarctl {

// nullopt: no deadline.
using Timeout = std::optional<absl::Duration>;

class AdminClient {
 public:
  // A channel to `target` ("unix:PATH" or "HOST:PORT") with no limit on the size of replies
  // (mailboxes show returns a whole mailbox's message list in one reply).
  static std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

  // `target` is only used in error messages (see UnixSocketHint).
  AdminClient(std::shared_ptr<grpc::ChannelInterface> channel, std::string target);

  absl::StatusOr<v1::Account> AddAccount(const v1::AddAccountRequest& request, Timeout timeout);
  absl::StatusOr<v1::Account> SetPassword(const v1::SetPasswordRequest& request, Timeout timeout);
  absl::StatusOr<v1::Account> SetApopSecret(const v1::SetApopSecretRequest& request,
                                            Timeout timeout);
  absl::StatusOr<v1::Empty> RemoveAccount(const v1::AccountName& request, Timeout timeout);
  absl::StatusOr<v1::AccountList> ListAccounts(Timeout timeout);
  absl::StatusOr<v1::MailboxList> ListMailboxes(Timeout timeout);
  absl::StatusOr<v1::MailboxDetail> ShowMailbox(const v1::MailboxName& request, Timeout timeout);
  // Calls `on_progress` for every streamed message, in order, on the calling thread; returns
  // the stream's final status. The deadline covers the whole stream.
  absl::Status Reindex(const v1::ReindexRequest& request, Timeout timeout,
                       const std::function<void(const v1::ReindexProgress&)>& on_progress);
  absl::StatusOr<v1::VerifyReply> Verify(const v1::VerifyRequest& request, Timeout timeout);
  absl::StatusOr<v1::SessionList> ListSessions(Timeout timeout);
  absl::StatusOr<v1::Empty> EndSession(const v1::EndSessionRequest& request, Timeout timeout);
  absl::StatusOr<v1::IndexerStatus> Status(Timeout timeout);

  const std::string& target() const { return target_; }

 private:
  template <typename Request, typename Reply>
  absl::StatusOr<Reply> Call(grpc::Status (v1::Admin::StubInterface::*method)(grpc::ClientContext*,
                                                                              const Request&,
                                                                              Reply*),
                             const Request& request, Timeout timeout);
  absl::Status FromGrpc(const grpc::Status& status) const;

  std::unique_ptr<v1::Admin::StubInterface> stub_;
  std::string target_;
};

// Why a unix socket cannot be connected to, in words an operator can act on ("no socket at
// PATH (is poplar-indexer running?)", "permission denied on PATH ..."), or empty if the file
// looks usable. gRPC's own message for these cases is "failed to connect to all addresses".
std::string UnixSocketHint(const std::string& path);

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_ADMIN_CLIENT_H_

// The one place where the indexer's absl::Status becomes a gRPC status (style P7/P8). The
// codes are the same enum; the message is kept. popd does the reverse mapping to POP3
// response codes in its own single place.
#ifndef POPLAR_INDEXER_GRPC_STATUS_H_
#define POPLAR_INDEXER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace poplar::indexer {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_GRPC_STATUS_H_

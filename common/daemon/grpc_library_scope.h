// Header-only, for the programs that link gRPC (the daemons, poplarctl): the process holds
// gRPC's library for the whole of main() and releases it last, on the main thread, waiting for
// gRPC's own threads to end. Without it the last gRPC object may be released inside a callback
// on a gRPC thread; gRPC then shuts its library down on that thread while main() returns and
// exit() runs the static destructors, which ASan caught as a double free in
// grpc_cq_internal_unref (issue 15). Declare it first in main(), before any gRPC object, so it
// is destroyed after all of them.
#ifndef POPLAR_COMMON_DAEMON_GRPC_LIBRARY_SCOPE_H_
#define POPLAR_COMMON_DAEMON_GRPC_LIBRARY_SCOPE_H_

#include <grpc/grpc.h>

namespace poplar {

class GrpcLibraryScope {
 public:
  GrpcLibraryScope() { grpc_init(); }
  ~GrpcLibraryScope() { grpc_shutdown_blocking(); }
  GrpcLibraryScope(const GrpcLibraryScope&) = delete;
  GrpcLibraryScope& operator=(const GrpcLibraryScope&) = delete;
};

}  // namespace poplar

#endif  // POPLAR_COMMON_DAEMON_GRPC_LIBRARY_SCOPE_H_

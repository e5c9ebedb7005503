#include "popd/net.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/util/host_port.h"
#include "common/util/strings.h"

namespace poplar::popd {

absl::StatusOr<Endpoint> Endpoint::Parse(std::string_view text) {
  const std::optional<HostPort> hp = SplitHostPort(text);
  if (!hp) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected HOST:PORT or [IPV6]:PORT, got \"", Absl(text), "\""));
  }
  absl::StatusOr<IpAddress> a = IpAddress::Parse(hp->host);
  if (!a.ok()) return a.status();
  Endpoint e;
  e.address = *a;
  e.port = hp->port;
  return e;
}

std::string Endpoint::ToString() const { return JoinHostPort(address.ToString(), port); }

}  // namespace poplar::popd

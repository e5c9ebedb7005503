// libFuzzer target for the PROXY protocol header parser (common/proxy/proxy_header.h): the
// first bytes of a connection behind a load balancer, attacker-controlled when the balancer
// is not the only one who can reach the listener.
//
// Checks:
//  * no crash and no read past the input (exactly-sized copy);
//  * kComplete: the header fits in the input and in kMaxBytes, parses the same on its own and
//    with other bytes after it, every shorter prefix is kNeedMore, and a v1 header with
//    addresses is printed back to the same text;
//  * kNeedMore only below kMaxBytes; kInvalid always says why, and stays kInvalid whatever
//    follows (the caller may close at once).
#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/proxy/proxy_header.h"
#include "tests/fuzz/fuzz_common.h"

namespace poplar::fuzz {
namespace {

using proxy::Parse;
using proxy::ParseResult;
using proxy::ParseStatus;

bool SameHeader(const proxy::Header& a, const proxy::Header& b) {
  return a.version == b.version && a.has_address == b.has_address && a.length == b.length &&
         a.source.ip == b.source.ip && a.source.port == b.source.port &&
         a.destination.ip == b.destination.ip && a.destination.port == b.destination.port;
}

std::string Text(const proxy::Address& a) { return a.ip.ToString(); }

void Check(std::string_view in) {
  const ParseResult r = Parse(in);
  switch (r.status) {
    case ParseStatus::kNeedMore:
      POPLAR_FUZZ_CHECK(in.size() < proxy::kMaxBytes);
      return;
    case ParseStatus::kInvalid: {
      POPLAR_FUZZ_CHECK(!r.error.empty());
      const std::string more = std::string(in) + "\r\nPROXY x";
      POPLAR_FUZZ_CHECK(Parse(more).status == ParseStatus::kInvalid);
      return;
    }
    case ParseStatus::kComplete:
      break;
  }
  const proxy::Header& h = r.header;
  POPLAR_FUZZ_CHECK(h.version == 1 || h.version == 2);
  POPLAR_FUZZ_CHECK(h.length > 0 && h.length <= in.size() && h.length <= proxy::kMaxBytes);
  const ParseResult alone = Parse(in.substr(0, h.length));
  POPLAR_FUZZ_CHECK(alone.status == ParseStatus::kComplete && SameHeader(alone.header, h));
  const ParseResult followed = Parse(std::string(in.substr(0, h.length)) + "USER x\r\n");
  POPLAR_FUZZ_CHECK(followed.status == ParseStatus::kComplete && SameHeader(followed.header, h));
  POPLAR_FUZZ_CHECK(Parse(in.substr(0, h.length - 1)).status == ParseStatus::kNeedMore);
  POPLAR_FUZZ_CHECK(Parse(in.substr(0, h.length / 2)).status == ParseStatus::kNeedMore);
  if (h.version == 1 && h.has_address) {
    POPLAR_FUZZ_CHECK(h.source.ip.is_v4() == h.destination.ip.is_v4());
    const std::string again = std::string("PROXY ") + (h.source.ip.is_v4() ? "TCP4 " : "TCP6 ") +
                              Text(h.source) + " " + Text(h.destination) + " " +
                              std::to_string(h.source.port) + " " +
                              std::to_string(h.destination.port) + "\r\n";
    const ParseResult reparsed = Parse(again);
    POPLAR_FUZZ_CHECK(reparsed.status == ParseStatus::kComplete);
    POPLAR_FUZZ_CHECK(reparsed.header.source.ip == h.source.ip &&
                      reparsed.header.destination.ip == h.destination.ip &&
                      reparsed.header.source.port == h.source.port &&
                      reparsed.header.destination.port == h.destination.port);
  }
}

}  // namespace
}  // namespace poplar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  poplar::fuzz::ExactCopy copy(data, size);
  poplar::fuzz::Check(copy.view());
  return 0;
}

// libFuzzer target for WireTransform and DecodeMultiline (common/pop3/wire_transform.h).
//
// The whole input is the message; its first bytes also choose the chunk cuts and the TOP
// line count. Checks:
//  * any chunking gives the same output, octets() and done() as one chunk;
//  * RETR: the output has no bare LF, DecodeMultiline gives back the message with bare LF as
//    CRLF and a final CRLF, and octets() is the size of that decoded form;
//  * dot_stuff off: the output is exactly that decoded form plus the terminator;
//  * TOP n: the output is a prefix of RETR's (same lines), and the whole of it for a huge n;
//  * the input scanned as an mbox: for every message, octets() == MessageInfo::octets and the
//    round trip holds (the size LIST announces is the size RETR sends, design §3).
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mbox/scanner.h"
#include "common/pop3/wire_transform.h"
#include "tests/fuzz/fuzz_common.h"

namespace poplar::fuzz {
namespace {

using pop3::DecodeMultiline;
using pop3::WireTransform;

struct Output {
  std::string wire;
  uint64_t octets = 0;
  bool done = false;
};

Output Transform(std::string_view message, const std::vector<size_t>& cuts,
                 WireTransform::Options options) {
  WireTransform t(options);
  Output o;
  size_t prev = 0;
  for (size_t cut : cuts) {
    if (cut < prev || cut > message.size()) continue;
    t.Feed(message.substr(prev, cut - prev), &o.wire);
    prev = cut;
  }
  t.Feed(message.substr(prev), &o.wire);
  o.done = t.done();
  t.Finish(/*terminator=*/true, &o.wire);
  o.octets = t.octets();
  return o;
}

std::string ExpectedDecoded(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 2 + 2);
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r')) out.push_back('\r');
    out.push_back(message[i]);
  }
  // A final CRLF is ensured; after a final CR only its LF is missing (wire_transform.cc).
  if (message.empty() || message.back() != '\n') {
    out.append(!message.empty() && message.back() == '\r' ? "\n" : "\r\n");
  }
  return out;
}

bool HasBareLf(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

void CheckRetr(std::string_view message, const std::vector<size_t>& cuts) {
  const Output one = Transform(message, {}, {});
  const Output cut = Transform(message, cuts, {});
  POPLAR_FUZZ_CHECK(one.wire == cut.wire);
  POPLAR_FUZZ_CHECK(one.octets == cut.octets);
  POPLAR_FUZZ_CHECK(!one.done && !cut.done);
  POPLAR_FUZZ_CHECK(!HasBareLf(one.wire));
  std::optional<std::string> decoded = DecodeMultiline(one.wire);
  POPLAR_FUZZ_CHECK(decoded.has_value());
  const std::string expected = ExpectedDecoded(message);
  POPLAR_FUZZ_CHECK(*decoded == expected);
  POPLAR_FUZZ_CHECK(one.octets == expected.size());

  const Output plain = Transform(message, cuts, {.dot_stuff = false, .top_lines = std::nullopt});
  POPLAR_FUZZ_CHECK(plain.wire == expected + ".\r\n");
  POPLAR_FUZZ_CHECK(plain.octets == one.octets);
}

void CheckTop(std::string_view message, const std::vector<size_t>& cuts, uint64_t n) {
  const WireTransform::Options options{.dot_stuff = true, .top_lines = n};
  const Output one = Transform(message, {}, options);
  const Output cut = Transform(message, cuts, options);
  POPLAR_FUZZ_CHECK(one.wire == cut.wire);
  POPLAR_FUZZ_CHECK(one.octets == cut.octets);
  POPLAR_FUZZ_CHECK(one.done == cut.done);
  POPLAR_FUZZ_CHECK(!HasBareLf(one.wire));
  POPLAR_FUZZ_CHECK(DecodeMultiline(one.wire).has_value());
  const Output retr = Transform(message, {}, {});
  POPLAR_FUZZ_CHECK(one.wire.size() <= retr.wire.size());
  const size_t body = one.wire.size() - 3;  // without ".\r\n"
  POPLAR_FUZZ_CHECK(retr.wire.compare(0, body, one.wire, 0, body) == 0);
  if (n > message.size()) POPLAR_FUZZ_CHECK(one.wire == retr.wire);
}

void CheckScanned(std::string_view data, const std::vector<size_t>& cuts, bool trust) {
  mbox::ScanResult r = mbox::ScanMbox(data, 0, {.final = true, .trust_content_length = trust});
  for (const mbox::MessageInfo& m : r.messages) {
    std::string_view message = data.substr(m.data_offset, m.length());
    // Cuts are positions in the input; shift them into the message.
    std::vector<size_t> local;
    for (size_t c : cuts) {
      if (c >= m.data_offset && c <= m.end_offset) local.push_back(c - m.data_offset);
    }
    const Output o = Transform(message, local, {});
    if (o.octets != m.octets) {
      PrintMessage("octets differ", m);
      std::fprintf(stderr, "WireTransform sent %llu octets\n",
                   static_cast<unsigned long long>(o.octets));
      std::abort();
    }
    std::optional<std::string> decoded = DecodeMultiline(o.wire);
    POPLAR_FUZZ_CHECK(decoded.has_value());
    POPLAR_FUZZ_CHECK(*decoded == ExpectedDecoded(message));
  }
}

}  // namespace
}  // namespace poplar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  poplar::fuzz::ExactCopy copy(data, size);
  const std::string_view bytes = copy.view();

  poplar::fuzz::Reader reader(data, size);
  const uint8_t top = reader.Byte();
  const size_t ncuts = reader.Byte() % 16;
  std::vector<size_t> cuts;
  for (size_t i = 0; i < ncuts; ++i) {
    cuts.push_back(static_cast<size_t>((uint64_t{reader.Word()} * (size + 1)) >> 16));
  }
  std::sort(cuts.begin(), cuts.end());

  poplar::fuzz::CheckRetr(bytes, cuts);
  poplar::fuzz::CheckTop(bytes, cuts, top % 8);
  poplar::fuzz::CheckTop(bytes, cuts, 99999999);
  poplar::fuzz::CheckScanned(bytes, cuts, /*trust=*/true);
  poplar::fuzz::CheckScanned(bytes, cuts, /*trust=*/false);
  return 0;
}

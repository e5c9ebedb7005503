// libFuzzer target for ScanMbox (common/mbox/scanner.h).
//
// The whole input is the mbox; its first bytes also choose up to 7 cut points. For each
// Content-Length setting it checks:
//  * no crash and no read past the buffer (the input is copied into an exactly-sized block);
//  * every message satisfies offset < data_offset <= end_offset <= size,
//    header_length <= length, lines and octets agree with the bytes, messages are in file order
//    and do not overlap, and the From_ line parses;
//  * a scan at another base_offset gives the same messages shifted;
//  * chunking invariance: non-final scans over [resume_offset, cut) for each cut, then a final
//    scan from the last resume_offset, give exactly the messages and anomalies of one final
//    scan of the whole buffer;
//  * appending a delivery ("From ..." right after the data, or after a newline that ends a
//    last line without one) leaves every message before resume_offset unchanged (the
//    tentative-tail rule of scanner.h).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/mbox/from_line.h"
#include "common/mbox/scanner.h"
#include "tests/fuzz/fuzz_common.h"

namespace poplar::fuzz {
namespace {

using mbox::Anomaly;
using mbox::AnomalyKind;
using mbox::MessageInfo;
using mbox::ScanMbox;
using mbox::ScanOptions;
using mbox::ScanResult;

void CheckMessages(std::string_view data, const ScanResult& r, bool final) {
  const uint64_t size = data.size();
  POPLAR_FUZZ_CHECK(r.resume_offset <= size);
  uint64_t prev_end = 0;
  for (const MessageInfo& m : r.messages) {
    POPLAR_FUZZ_CHECK(m.offset < m.data_offset);
    POPLAR_FUZZ_CHECK(m.data_offset <= m.end_offset);
    POPLAR_FUZZ_CHECK(m.end_offset <= size);
    POPLAR_FUZZ_CHECK(m.header_length <= m.length());
    POPLAR_FUZZ_CHECK(m.offset >= prev_end);
    prev_end = m.end_offset;
    // The From_ line: [offset, data_offset) is one line that parses.
    std::string_view from = data.substr(m.offset, m.data_offset - m.offset);
    if (!from.empty() && from.back() == '\n') from.remove_suffix(1);
    POPLAR_FUZZ_CHECK(from.find('\n') == std::string_view::npos);
    POPLAR_FUZZ_CHECK(mbox::ParseFromLine(from).has_value());
    // Lines and octets from the bytes (design §3: bare LF counted as CRLF, final CRLF ensured).
    std::string_view body = data.substr(m.data_offset, m.length());
    uint64_t lf = 0, bare_lf = 0;
    for (size_t i = 0; i < body.size(); ++i) {
      if (body[i] != '\n') continue;
      ++lf;
      if (i == 0 || body[i - 1] != '\r') ++bare_lf;
    }
    const bool final_newline = !body.empty() && body.back() == '\n';
    POPLAR_FUZZ_CHECK(m.final_newline == final_newline);
    POPLAR_FUZZ_CHECK(m.lines == lf + ((!final_newline && !body.empty()) ? 1 : 0));
    // A final CRLF is ensured; after a final CR only its LF is missing.
    const uint64_t ensured = final_newline ? 0 : (!body.empty() && body.back() == '\r' ? 1 : 2);
    POPLAR_FUZZ_CHECK(m.octets == body.size() + bare_lf + ensured);
    if (!final) POPLAR_FUZZ_CHECK(m.offset < r.resume_offset);  // no tentative tail
  }
  if (final && !r.messages.empty()) {
    // Resume at the end, or at the last message when it may still grow.
    POPLAR_FUZZ_CHECK(r.resume_offset == size || r.resume_offset == r.messages.back().offset);
  }
  for (const Anomaly& a : r.anomalies) POPLAR_FUZZ_CHECK(a.offset <= size);
}

void CheckSame(const std::vector<MessageInfo>& got, const std::vector<MessageInfo>& want,
               const char* what) {
  if (got.size() != want.size()) {
    std::fprintf(stderr, "%s: %zu messages, want %zu\n", what, got.size(), want.size());
    for (const MessageInfo& m : got) PrintMessage("  got ", m);
    for (const MessageInfo& m : want) PrintMessage("  want", m);
    std::abort();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!SameMessage(got[i], want[i])) {
      std::fprintf(stderr, "%s: message %zu differs\n", what, i);
      PrintMessage("  got ", got[i]);
      PrintMessage("  want", want[i]);
      std::abort();
    }
  }
}

// Callers replace what they hold at or after the offset a scan starts from (scanner.h).
template <typename T>
void DropFrom(std::vector<T>* v, uint64_t offset) {
  v->erase(std::remove_if(v->begin(), v->end(), [&](const T& x) { return x.offset >= offset; }),
           v->end());
}

void Run(std::string_view data, const std::vector<size_t>& cuts, bool trust_content_length) {
  const ScanOptions final_options{.final = true, .trust_content_length = trust_content_length};
  const ScanOptions partial_options{.final = false, .trust_content_length = trust_content_length};
  const ScanResult whole = ScanMbox(data, 0, final_options);
  CheckMessages(data, whole, /*final=*/true);

  // Another base offset shifts every offset and changes nothing else.
  {
    constexpr uint64_t kBase = uint64_t{1} << 40;
    ScanResult shifted = ScanMbox(data, kBase, final_options);
    POPLAR_FUZZ_CHECK(shifted.resume_offset == whole.resume_offset + kBase);
    for (MessageInfo& m : shifted.messages) {
      m.offset -= kBase;
      m.data_offset -= kBase;
      m.end_offset -= kBase;
    }
    CheckSame(shifted.messages, whole.messages, "base offset");
    POPLAR_FUZZ_CHECK(shifted.anomalies.size() == whole.anomalies.size());
  }

  // Chunked: non-final scans resumed from resume_offset, then one final scan.
  std::vector<MessageInfo> messages;
  std::vector<Anomaly> anomalies;
  uint64_t resume = 0;
  for (size_t cut : cuts) {
    if (cut < resume) continue;
    std::string_view part = data.substr(resume, cut - resume);
    ScanResult r = ScanMbox(part, resume, partial_options);
    POPLAR_FUZZ_CHECK(r.resume_offset >= resume && r.resume_offset <= cut);
    for (const MessageInfo& m : r.messages) {
      POPLAR_FUZZ_CHECK(m.offset >= resume && m.end_offset <= cut);
      POPLAR_FUZZ_CHECK(m.offset < r.resume_offset);
    }
    DropFrom(&messages, resume);
    DropFrom(&anomalies, resume);
    messages.insert(messages.end(), r.messages.begin(), r.messages.end());
    anomalies.insert(anomalies.end(), r.anomalies.begin(), r.anomalies.end());
    resume = r.resume_offset;
  }
  ScanResult last = ScanMbox(data.substr(resume), resume, final_options);
  POPLAR_FUZZ_CHECK(last.resume_offset == whole.resume_offset);
  DropFrom(&messages, resume);
  DropFrom(&anomalies, resume);
  messages.insert(messages.end(), last.messages.begin(), last.messages.end());
  anomalies.insert(anomalies.end(), last.anomalies.begin(), last.anomalies.end());
  CheckSame(messages, whole.messages, "chunked scan");
  if (anomalies != whole.anomalies) {
    std::fprintf(stderr, "chunked scan: %zu anomalies, one scan %zu\n", anomalies.size(),
                 whole.anomalies.size());
    std::abort();
  }

  // A later delivery appended right after the data must not change any message that the
  // final scan called complete (those before resume_offset). A Content-Length header that
  // the scan ignored may come true once more bytes exist: that is the format's ambiguity, not a
  // scanner error, so such inputs skip this check.
  const bool cl_ignored =
      std::any_of(whole.anomalies.begin(), whole.anomalies.end(),
                  [](const Anomaly& a) { return a.kind == AnomalyKind::kContentLengthIgnored; });
  if (trust_content_length && cl_ignored) return;
  std::vector<MessageInfo> before_resume;
  for (const MessageInfo& m : whole.messages) {
    if (m.offset < whole.resume_offset) before_resume.push_back(m);
  }
  // Postfix appends right after the last byte; procmail and mutt first end a last line that
  // has no newline. Either way nothing before resume_offset may change.
  for (bool end_line_first : {false, true}) {
    std::string appended(data);
    if (end_line_first && !data.empty() && data.back() != '\n') appended += '\n';
    appended += "From new@example.org Fri Nov 30 00:00:00 2001\nSubject: new\n\nnew body\n";
    const ScanResult after = ScanMbox(appended, 0, final_options);
    std::vector<MessageInfo> after_prefix;
    for (const MessageInfo& m : after.messages) {
      if (m.offset < whole.resume_offset) after_prefix.push_back(m);
    }
    if (after_prefix.size() > before_resume.size()) after_prefix.resize(before_resume.size());
    CheckSame(after_prefix, before_resume,
              end_line_first ? "after a newline and an append" : "after an append");
  }
  // A padding MDA (issue 15) writes the missing newline and the separating empty line first:
  // then even the message the final scan left tentative keeps its identity, UIDL digest and
  // size (common/mbox/content_hash.h).
  if (trust_content_length || whole.messages.empty() ||
      whole.messages.back().offset != whole.resume_offset) {
    return;
  }
  std::string padded(data);
  if (!padded.empty() && padded.back() != '\n') padded += '\n';
  if (!(padded.ends_with("\n\n") || padded.ends_with("\n\r\n"))) padded += '\n';
  padded += "From new@example.org Fri Nov 30 00:00:00 2001\nSubject: new\n\nnew body\n";
  const ScanResult after = ScanMbox(padded, 0, final_options);
  const MessageInfo& tail = whole.messages.back();
  for (const MessageInfo& m : after.messages) {
    if (m.offset != tail.offset) continue;
    POPLAR_FUZZ_CHECK(m.content_hash == tail.content_hash);
    POPLAR_FUZZ_CHECK(m.uidl_digest == tail.uidl_digest);
    POPLAR_FUZZ_CHECK(m.octets == tail.octets);
  }
}

}  // namespace
}  // namespace poplar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  poplar::fuzz::ExactCopy copy(data, size);
  const std::string_view bytes = copy.view();

  // Cut points from the first bytes; the whole input, those bytes included, is the mbox, so
  // a seed mbox is scanned as it is.
  poplar::fuzz::Reader reader(data, size);
  const size_t ncuts = reader.Byte() % 8;
  std::vector<size_t> cuts;
  for (size_t i = 0; i < ncuts; ++i) {
    cuts.push_back(static_cast<size_t>((uint64_t{reader.Word()} * (size + 1)) >> 16));
  }
  std::sort(cuts.begin(), cuts.end());

  poplar::fuzz::Run(bytes, cuts, /*trust_content_length=*/true);
  poplar::fuzz::Run(bytes, cuts, /*trust_content_length=*/false);
  return 0;
}

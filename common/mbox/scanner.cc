#include "common/mbox/scanner.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "common/mbox/content_hash.h"
#include "common/mbox/from_line.h"
#include "common/mbox/uidl.h"
#include "common/util/hex.h"

namespace poplar::mbox {
namespace {

enum class Tri { kNo, kYes, kMore };

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != b[i]) return false;  // b is lowercase
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Leading decimal number of at most `max_digits` digits, followed by end or whitespace.
std::optional<uint64_t> ParseDecimal(std::string_view s, size_t max_digits) {
  s = Trim(s);
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (i == max_digits) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
  }
  if (i == 0 || (i < s.size() && s[i] != ' ' && s[i] != '\t')) return std::nullopt;
  return v;
}

std::optional<uint32_t> ParseUint32(std::string_view s) {
  auto v = ParseDecimal(s, 10);
  if (!v || *v > 0xffffffffULL) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

class Scanner {
 public:
  Scanner(std::string_view buf, uint64_t base, const ScanOptions& options)
      : buf_(buf), n_(buf.size()), base_(base), options_(options) {}

  ScanResult Run() {
    result_.resume_offset = base_;
    size_t line_end = 0;
    std::optional<size_t> q = FindFirstSeparator(&line_end);
    if (q && line_end == n_) {  // a From_ line still being written: no message yet
      result_.resume_offset = base_ + *q;
      return std::move(result_);
    }
    while (q) {
      q = ScanMessage(*q, line_end, &line_end);
    }
    return std::move(result_);
  }

 private:
  size_t FindNewline(size_t from, size_t limit) const {
    if (from >= limit) return std::string_view::npos;
    const void* p = std::memchr(buf_.data() + from, '\n', limit - from);
    return p == nullptr ? std::string_view::npos
                        : static_cast<size_t>(static_cast<const char*>(p) - buf_.data());
  }

  bool IsEmptyLine(size_t start, size_t nl) const {
    return nl == start || (nl == start + 1 && buf_[start] == '\r');
  }

  // Is the line at q a separator? *line_end becomes the index of its '\n' (or n_ when the
  // final buffer ends inside it). kMore: undecidable until more bytes arrive.
  Tri FromLineAt(size_t q, size_t* line_end) const {
    static constexpr std::string_view kFrom = "From ";
    size_t avail = n_ - q;
    if (avail < kFrom.size()) {
      if (buf_.substr(q) != kFrom.substr(0, avail)) return Tri::kNo;
      return options_.final ? Tri::kNo : Tri::kMore;
    }
    if (buf_.compare(q, kFrom.size(), kFrom) != 0) return Tri::kNo;
    size_t window = std::min(avail, kMaxFromLineLength + 2);
    size_t nl = FindNewline(q, q + window);
    if (nl == std::string_view::npos) {
      if (avail > kMaxFromLineLength + 1) return Tri::kNo;  // too long to be a separator
      if (!options_.final) return Tri::kMore;
      nl = n_;
    }
    *line_end = nl;
    return ParseFromLine(buf_.substr(q, nl - q)) ? Tri::kYes : Tri::kNo;
  }

  // The buffer's start counts as following an empty line. Bytes skipped before the first
  // separator are reported once they are known to be garbage.
  std::optional<size_t> FindFirstSeparator(size_t* line_end) {
    size_t pos = 0;
    bool prev_empty = true;
    bool skipped_text = false;
    while (pos < n_) {
      if (prev_empty) {
        Tri t = FromLineAt(pos, line_end);
        if (t == Tri::kYes) {
          if (skipped_text) result_.anomalies.push_back({base_, AnomalyKind::kLeadingGarbage});
          return pos;
        }
        if (t == Tri::kMore) return std::nullopt;
      }
      size_t nl = FindNewline(pos, n_);
      if (nl == std::string_view::npos) {
        skipped_text = true;
        break;
      }
      prev_empty = IsEmptyLine(pos, nl);
      skipped_text |= !prev_empty;
      pos = nl + 1;
    }
    if (skipped_text && options_.final) {
      result_.anomalies.push_back({base_, AnomalyKind::kLeadingGarbage});
    }
    return std::nullopt;  // resume_offset stays at base: rescan when the file grows
  }

  // Header line [start, nl) without its "\n".
  void ProcessHeader(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {  // folded continuation
      if (!current_volatile_) {
        digest_input_.append(line);
        digest_input_.push_back('\n');
      }
      return;
    }
    size_t colon = line.find(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view() : line.substr(0, colon);
    std::string_view value =
        colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    current_volatile_ = !name.empty() && IsVolatileHeader(name);
    if (!current_volatile_) {
      digest_input_.append(line);
      digest_input_.push_back('\n');
    }
    if (name.empty()) return;
    if (EqualsIgnoreCase(name, "content-length")) {
      if (!content_length_) content_length_ = ParseDecimal(value, 18);
    } else if (EqualsIgnoreCase(name, "x-uidl")) {
      std::string_view v = Trim(value);
      if (message_.x_uidl.empty() && IsValidUidl(v)) message_.x_uidl = std::string(v);
    } else if (EqualsIgnoreCase(name, "x-uid")) {
      if (!message_.x_uid) message_.x_uid = ParseUint32(value);
    } else if (EqualsIgnoreCase(name, "x-imapbase") || EqualsIgnoreCase(name, "x-imap")) {
      std::string_view v = Trim(value);
      if (!message_.uid_validity) message_.uid_validity = ParseUint32(v.substr(0, v.find(' ')));
    }
  }

  // Does a Content-Length body ending at p end the message? On kYes, *next is the following
  // separator (npos at end of buffer) and *next_line_end its line end.
  Tri CheckContentLength(size_t p, size_t* next, size_t* next_line_end) const {
    *next = std::string_view::npos;
    if (p > n_) return options_.final ? Tri::kNo : Tri::kMore;
    if (p == n_) return options_.final ? Tri::kYes : Tri::kMore;
    if (buf_[p - 1] != '\n') return Tri::kNo;
    size_t q = p;
    size_t nl = FindNewline(p, n_);
    if (nl == std::string_view::npos && !options_.final) return Tri::kMore;  // may become "\r\n"
    if (nl != std::string_view::npos && IsEmptyLine(p, nl)) {
      q = nl + 1;
      if (q == n_) return options_.final ? Tri::kYes : Tri::kMore;
    }
    Tri t = FromLineAt(q, next_line_end);
    if (t == Tri::kYes) *next = q;
    return t;
  }

  void CountLines(size_t from, size_t to) {
    size_t pos = from;
    while (true) {
      size_t nl = FindNewline(pos, to);
      if (nl == std::string_view::npos) break;
      ++lf_;
      if (nl > from && buf_[nl - 1] == '\r') ++crlf_;
      pos = nl + 1;
    }
  }

  // Scans the message whose From_ line is [q, from_end). Returns the next separator, if any.
  // Long on purpose: the scanner's inner loop (GB/s), one pass over the message's lines whose
  // header, body and Content-Length states share the loop's locals; split into calls per line
  // it would pass that state around on the hottest path.
  std::optional<size_t> ScanMessage(size_t q, size_t from_end, size_t* next_line_end) {
    message_ = MessageInfo();
    digest_input_.assign("poplar-uidl-1\n");
    std::string_view from_line = buf_.substr(q, from_end - q);
    if (auto parsed = ParseFromLine(from_line)) {  // the raw line: the parser strips one '\r'
      message_.sender = std::string(parsed->sender);
      message_.date = std::string(parsed->date);
    }
    if (!from_line.empty() && from_line.back() == '\r') from_line.remove_suffix(1);
    digest_input_.append(from_line);
    digest_input_.push_back('\n');
    from_line_end_ = from_end < n_ ? from_end + 1 : n_;
    header_text_end_ = std::string_view::npos;
    current_volatile_ = false;
    content_length_.reset();
    content_length_ignored_ = false;
    lf_ = crlf_ = 0;

    const size_t data = from_end < n_ ? from_end + 1 : n_;
    size_t pos = data;
    size_t end = 0;
    size_t header_end = std::string_view::npos;
    size_t next = std::string_view::npos;
    bool in_headers = true;
    bool prev_empty = false;
    bool prev_crlf = false;
    size_t prev_start = 0;

    while (true) {
      if (pos >= n_) {  // buffer ends on a line boundary
        if (!options_.final) return Incomplete(q);
        end = n_;
        if (prev_empty) {
          end = prev_start;
          --lf_;
          crlf_ -= prev_crlf ? 1 : 0;
        } else {
        }
        break;
      }
      size_t nl = FindNewline(pos, n_);
      if (nl == std::string_view::npos) {  // a last line without "\n"
        if (!options_.final) return Incomplete(q);
        size_t le = 0;
        if (!in_headers && prev_empty && FromLineAt(pos, &le) == Tri::kYes) {
          end = prev_start;
          --lf_;
          crlf_ -= prev_crlf ? 1 : 0;
          next = pos;
          *next_line_end = le;
          break;
        }
        if (n_ - pos == 1 && buf_[pos] == '\r') {
          // A lone "\r" is an empty line whose "\n" has not been written yet: like a trailing
          // empty line it is not part of the message, so that completing it (the next
          // delivery's separator) changes nothing (content_hash.h).
          end = pos;
          break;
        }
        if (in_headers) ProcessHeader(buf_.substr(pos, n_ - pos));
        end = n_;
        break;
      }
      const bool empty = IsEmptyLine(pos, nl);
      const bool this_crlf = nl > pos && buf_[nl - 1] == '\r';
      if (!in_headers && prev_empty && buf_[pos] == 'F') {
        size_t le = 0;
        if (FromLineAt(pos, &le) == Tri::kYes) {
          end = prev_start;
          --lf_;
          crlf_ -= prev_crlf ? 1 : 0;
          next = pos;
          *next_line_end = le;
          break;
        }
      }
      ++lf_;
      crlf_ += this_crlf ? 1 : 0;
      if (in_headers) {
        if (empty) {
          in_headers = false;
          header_end = nl + 1;
          header_text_end_ = pos;
          if (content_length_ && options_.trust_content_length) {
            size_t p = header_end + *content_length_;
            size_t le = 0;
            size_t cl_next = std::string_view::npos;
            Tri t = CheckContentLength(p, &cl_next, &le);
            if (t == Tri::kMore) return Incomplete(q);
            if (t == Tri::kYes) {
              CountLines(header_end, p);
              end = p;
              next = cl_next;
              *next_line_end = le;
              message_.content_length_used = true;
              break;
            }
            content_length_ignored_ = true;  // reported only if the message completes
          }
        } else {
          ProcessHeader(buf_.substr(pos, nl - pos));
        }
      }
      prev_empty = empty;
      prev_crlf = this_crlf;
      prev_start = pos;
      pos = nl + 1;
    }

    Finish(q, data, end, header_end);
    if (next != std::string_view::npos && *next_line_end == n_) {
      // The final buffer ends inside the next From_ line. It is not a message yet, and if the
      // writer goes on without a newline it may not even be a separator, in which case this
      // message grows: rescan from here (design §3: no newline yet means not indexed).
      result_.resume_offset = base_ + q;
      return std::nullopt;
    }
    if (next != std::string_view::npos) {
      result_.resume_offset = base_ + next;
      return next;
    }
    // The message ends at the end of the buffer. Appended bytes may still belong to it: text
    // glued to its last line, or more empty lines before the next separator (only the last
    // empty line before a separator is not part of a message). So it is returned, but the
    // next scan starts again at its From_ line.
    result_.resume_offset = base_ + q;
    return std::nullopt;
  }

  std::optional<size_t> Incomplete(size_t q) {
    result_.resume_offset = base_ + q;
    return std::nullopt;
  }

  void Finish(size_t q, size_t data, size_t end, size_t header_end) {
    MessageInfo& m = message_;
    if (content_length_ignored_) {
      result_.anomalies.push_back({base_ + q, AnomalyKind::kContentLengthIgnored});
    }
    m.offset = base_ + q;
    m.data_offset = base_ + data;
    m.end_offset = base_ + end;
    size_t header_stop = header_end == std::string_view::npos ? end : std::min(header_end, end);
    m.header_length = header_stop - data;
    const size_t len = end - data;
    m.final_newline = len > 0 && buf_[end - 1] == '\n';
    m.lines = lf_ + ((!m.final_newline && len > 0) ? 1 : 0);
    // A missing final CRLF is added on the wire; a last line that ends in a lone '\r' (a CRLF
    // writer interrupted) gets only the '\n' (pop3::WireTransform::Finish).
    m.octets = len + (lf_ - crlf_) + (m.final_newline ? 0 : (buf_[end - 1] == '\r' ? 1 : 2));

    hasher_.Start(header_stop - q);
    hasher_.Update(buf_.substr(q, end - q));
    hasher_.Finish();
    m.content_hash = hasher_.content_hash();

    digest_input_.push_back('\n');
    digest_input_.append(hasher_.body_digest().Bytes());
    Sha256Digest d = Sha256(digest_input_);
    m.uidl_digest = HexEncode(std::string_view(reinterpret_cast<const char*>(d.data()), 12));
    if (options_.qpopper) {
      const size_t header_text_end = std::min(header_text_end_, end);
      m.qpopper = ComputeQpopperUidl(buf_.substr(q, from_line_end_ - q),
                                     buf_.substr(data, header_text_end - data), *options_.qpopper);
    }
    result_.messages.push_back(std::move(m));
  }

  const std::string_view buf_;
  const size_t n_;
  const uint64_t base_;
  const ScanOptions options_;
  ScanResult result_;

  // Per-message state, reused across messages to avoid allocations.
  MessageInfo message_;
  std::string digest_input_;
  ContentHasher hasher_;
  bool current_volatile_ = false;
  size_t from_line_end_ = 0;    // one past the From_ line's "\n"
  size_t header_text_end_ = 0;  // start of the empty line that ends the header (npos: none)
  std::optional<uint64_t> content_length_;
  bool content_length_ignored_ = false;
  uint64_t lf_ = 0;
  uint64_t crlf_ = 0;
};

}  // namespace

bool IsVolatileHeader(std::string_view name) {
  // Rewritten by MUAs, IMAP servers and Qpopper itself; a UIDL must survive their rewrites.
  static constexpr std::array<std::string_view, 12> kVolatile = {
      "status", "x-status",         "x-keywords",        "x-uid",
      "x-uidl", "x-imap",           "x-imapbase",        "content-length",
      "lines",  "x-mozilla-status", "x-mozilla-status2", "x-mozilla-keys"};
  return std::any_of(kVolatile.begin(), kVolatile.end(),
                     [&](std::string_view v) { return EqualsIgnoreCase(name, v); });
}

ScanResult ScanMbox(std::string_view bytes, uint64_t base_offset, const ScanOptions& options) {
  return Scanner(bytes, base_offset, options).Run();
}

}  // namespace poplar::mbox

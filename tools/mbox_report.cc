#include "tools/mbox_report.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/mbox/scanner.h"
#include "common/pop3/wire_transform.h"
#include "common/util/errno_status.h"
#include "common/util/unique_fd.h"

namespace poplar::tools {
namespace {

// A read-only private mapping of a whole file; empty files map to an empty view.
class MappedFile {
 public:
  static absl::Status Open(const std::string& path, MappedFile* out) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoToStatus(errno, path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      return ErrnoToStatus(errno, absl::StrCat(path, ": fstat"));
    }
    if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + ": not a regular file");
    out->size_ = static_cast<size_t>(st.st_size);
    if (out->size_ == 0) return absl::OkStatus();
    void* p = ::mmap(nullptr, out->size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) {
      return ErrnoToStatus(errno, absl::StrCat(path, ": mmap"));
    }
    ::madvise(p, out->size_, MADV_SEQUENTIAL);
    out->data_ = static_cast<const char*>(p);
    return absl::OkStatus();
  }
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }
  std::string_view view() const { return {data_ == nullptr ? "" : data_, size_}; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

// The message as a client must see it after undoing the dot-stuffing: every bare LF as CRLF
// and a final CRLF.
std::string ExpectedClientBytes(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 16 + 2);
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r')) out.push_back('\r');
    out.push_back(message[i]);
  }
  if (message.empty() || message.back() != '\n') out.append("\r\n");
  return out;
}

absl::Status CheckMessage(size_t number, const mbox::MessageInfo& m, std::string_view message,
                          size_t chunk) {
  pop3::WireTransform transform;
  std::string wire;
  for (size_t pos = 0; pos < message.size(); pos += chunk) {
    transform.Feed(message.substr(pos, chunk), &wire);
  }
  transform.Finish(/*terminator=*/true, &wire);
  if (transform.octets() != m.octets) {
    return absl::InternalError(absl::StrFormat("message %d: %d octets announced, %d sent", number,
                                               m.octets, transform.octets()));
  }
  std::optional<std::string> decoded = pop3::DecodeMultiline(wire);
  if (!decoded) return absl::InternalError(absl::StrFormat("message %d: bad wire form", number));
  if (*decoded != ExpectedClientBytes(message)) {
    return absl::InternalError(absl::StrFormat("message %d: round trip differs", number));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunMboxReport(const MboxReportOptions& options, std::ostream& out) {
  MappedFile file;
  if (absl::Status s = MappedFile::Open(options.path, &file); !s.ok()) return s;
  const std::string_view bytes = file.view();

  mbox::ScanResult scan =
      mbox::ScanMbox(bytes, 0,
                     mbox::ScanOptions{.final = true,
                                       .trust_content_length = options.trust_content_length,
                                       .qpopper = mbox::QpopperScanOptions(options.uidl)});
  if (options.qpopper_nonce_seed && options.uidl.scheme == mbox::UidlScheme::kQpopper) {
    mbox::QpopperUidlOptions q = options.uidl.qpopper;
    for (size_t i = 0; i < scan.messages.size(); ++i) {
      mbox::MessageInfo& m = scan.messages[i];
      q.nonce = *options.qpopper_nonce_seed + static_cast<int64_t>(i) + 1;
      std::string_view header = bytes.substr(m.data_offset, m.header_length);
      // Without the empty line that ends it (Qpopper hashes header lines only).
      if (!header.empty() && header.back() == '\n') {
        size_t cut = header.size() >= 2 && header[header.size() - 2] == '\r' ? 2 : 1;
        if (header.size() == cut || header[header.size() - cut - 1] == '\n') {
          header.remove_suffix(cut);
        }
      }
      m.qpopper =
          mbox::ComputeQpopperUidl(bytes.substr(m.offset, m.data_offset - m.offset), header, q);
    }
  }
  mbox::UidlAssigner assigner(options.uidl);
  std::vector<std::string> uidls;
  uidls.reserve(scan.messages.size());
  uint64_t total_octets = 0;
  for (const mbox::MessageInfo& m : scan.messages) {
    uidls.push_back(assigner.Assign(m));
    total_octets += m.octets;
  }

  if (options.check) {
    for (size_t i = 0; i < scan.messages.size(); ++i) {
      const mbox::MessageInfo& m = scan.messages[i];
      absl::Status s = CheckMessage(i + 1, m, bytes.substr(m.data_offset, m.length()),
                                    options.check_chunk == 0 ? 4096 : options.check_chunk);
      if (!s.ok()) return s;
    }
  }

  if (options.json) {
    out << "{\"path\":\"" << JsonEscape(options.path) << "\",\"size\":" << bytes.size()
        << ",\"messages\":[";
    for (size_t i = 0; i < scan.messages.size(); ++i) {
      const mbox::MessageInfo& m = scan.messages[i];
      out << (i ? "," : "") << "{\"number\":" << i + 1 << ",\"offset\":" << m.offset
          << ",\"data_offset\":" << m.data_offset << ",\"end_offset\":" << m.end_offset
          << ",\"header_length\":" << m.header_length << ",\"lines\":" << m.lines
          << ",\"octets\":" << m.octets << ",\"uidl\":\"" << JsonEscape(uidls[i])
          << "\",\"sender\":\"" << JsonEscape(m.sender) << "\",\"date\":\"" << JsonEscape(m.date)
          << "\",\"content_length_used\":" << (m.content_length_used ? "true" : "false")
          << ",\"content_hash\":\"" << m.content_hash.Hex() << "\"}";
    }
    out << "],\"octets\":" << total_octets << ",\"resume_offset\":" << scan.resume_offset
        << ",\"anomalies\":" << scan.anomalies.size()
        << ",\"checked\":" << (options.check ? "true" : "false") << "}\n";
    return absl::OkStatus();
  }

  out << absl::StrFormat("%6s %12s %10s %8s  %-26s %s\n", "#", "OFFSET", "OCTETS", "LINES", "UIDL",
                         "SENDER");
  for (size_t i = 0; i < scan.messages.size(); ++i) {
    const mbox::MessageInfo& m = scan.messages[i];
    out << absl::StrFormat("%6d %12d %10d %8d  %-26s %s\n", i + 1, m.offset, m.octets, m.lines,
                           uidls[i], m.sender);
  }
  out << absl::StrFormat("%d messages, %d octets, %d bytes scanned", scan.messages.size(),
                         total_octets, bytes.size());
  for (const mbox::Anomaly& a : scan.anomalies) {
    out << absl::StrFormat("\nnote: %s at offset %d",
                           a.kind == mbox::AnomalyKind::kLeadingGarbage
                               ? "text before the first From_ line"
                               : "Content-Length ignored",
                           a.offset);
  }
  if (options.check)
    out << absl::StrFormat("\ncheck: all %d messages round-trip", scan.messages.size());
  out << "\n";
  return absl::OkStatus();
}

}  // namespace poplar::tools

#include "tools/poplarctl/render.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/util/strings.h"
#include "google/protobuf/util/json_util.h"

namespace poplar::poplarctl {
namespace {

// Code points in valid or invalid UTF-8: every byte that is not a continuation byte.
size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string Pad(std::string_view s, size_t width, bool right) {
  size_t w = DisplayWidth(s);
  std::string fill(width > w ? width - w : 0, ' ');
  return right ? absl::StrCat(fill, Absl(s)) : absl::StrCat(Absl(s), fill);
}

std::string Megabytes(uint64_t bytes) {
  return absl::StrFormat("%.1f", static_cast<double>(bytes) / 1e6);
}

// Key/value lines with the keys padded to one width.
std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : rows) {
    absl::StrAppend(&out, Pad(key, width, false), "  ", Printable(value), "\n");
  }
  return out;
}

std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  return absl::StrCat(n, " ", Absl(n == 1 ? one : many));
}

}  // namespace

std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", c));
    } else if (c == 0xC2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
      // U+0080..U+009F, the C1 controls (CSI is U+009B).
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", static_cast<unsigned char>(text[i + 1])));
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), columns_.size()));
  for (std::string& cell : cells) cell = Printable(cell);
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    widths[c] = DisplayWidth(columns_[c].header);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  auto line = [&](auto cell_of) {
    std::string out;
    for (size_t c = 0; c < columns_.size(); ++c) {
      if (c > 0) out += "  ";
      out += Pad(cell_of(c), widths[c], columns_[c].right_align);
    }
    out.erase(out.find_last_not_of(' ') + 1);
    out += "\n";
    return out;
  };
  std::string out = line([&](size_t c) -> std::string_view { return columns_[c].header; });
  for (const auto& row : rows_) {
    out += line([&](size_t c) -> std::string_view { return row[c]; });
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  // Cannot fail for these messages (no Any, no maps with bad keys); if it ever does, say so in
  // the document rather than print half of one.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return "{\"error\":\"cannot convert the reply to JSON\"}\n";
  }
  out += "\n";
  return out;
}

std::string FormatUnixSeconds(int64_t seconds) {
  if (seconds == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(seconds),
                          absl::UTCTimeZone());
}

std::string FormatUnixMillis(int64_t millis) {
  if (millis == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(millis), absl::UTCTimeZone());
}

std::string AccountsTable(const v1::AccountList& accounts) {
  if (accounts.accounts().empty()) return "no accounts\n";
  Table table({{"USER"}, {"MAILBOX"}, {"CREDENTIAL"}, {"CREATED"}});
  for (const v1::Account& a : accounts.accounts()) {
    table.AddRow({a.user(), a.mailbox(), a.credential_kind(), FormatUnixSeconds(a.created_unix())});
  }
  return table.Render();
}

std::string MailboxesTable(const v1::MailboxList& mailboxes) {
  if (mailboxes.mailboxes().empty()) return "no mailboxes\n";
  Table table({{"PATH"},
               {"USER"},
               {"MESSAGES", true},
               {"OCTETS", true},
               {"FILE SIZE", true},
               {"INDEXED", true},
               {"ANOMALIES", true},
               {"INDEXED AT"}});
  for (const v1::MailboxSummary& m : mailboxes.mailboxes()) {
    table.AddRow({m.path(), m.user(), absl::StrCat(m.messages()), absl::StrCat(m.octets()),
                  absl::StrCat(m.file_size()), absl::StrCat(m.indexed_bytes()),
                  absl::StrCat(m.anomalies()), FormatUnixMillis(m.indexed_unix_ms())});
  }
  return table.Render();
}

std::string MailboxDetailText(const v1::MailboxDetail& detail) {
  const v1::MailboxSummary& s = detail.summary();
  std::string shown;
  if (detail.messages().empty()) {
    shown = "none shown";
  } else {
    shown = absl::StrCat(detail.messages(0).number(), "-",
                         detail.messages(detail.messages_size() - 1).number(), " shown");
  }
  std::string out = KeyValues({
      {"mailbox", s.path()},
      {"user", s.user().empty() ? "-" : s.user()},
      {"messages", absl::StrCat(s.messages(), " (", s.octets(), " octets; ", shown, ")")},
      {"file size", absl::StrCat(s.file_size(), " bytes, ", s.indexed_bytes(), " indexed")},
      {"indexed at", FormatUnixMillis(s.indexed_unix_ms())},
      {"anomalies", absl::StrCat(s.anomalies())},
  });
  if (detail.messages().empty()) return out;
  Table table({{"NUMBER", true},
               {"OFFSET", true},
               {"OCTETS", true},
               {"LINES", true},
               {"UIDL"},
               {"SENDER"},
               {"DATE"}});
  for (const v1::MessageRow& m : detail.messages()) {
    table.AddRow({absl::StrCat(m.number()), absl::StrCat(m.offset()), absl::StrCat(m.octets()),
                  absl::StrCat(m.lines()), m.uidl(), m.sender(), m.date()});
  }
  absl::StrAppend(&out, "\n", table.Render());
  return out;
}

std::string SessionsTable(const v1::SessionList& sessions) {
  if (sessions.sessions().empty()) return "no sessions\n";
  Table table({{"SESSION"}, {"USER"}, {"MAILBOX"}, {"CLIENT"}, {"FRONT END"}, {"STARTED"}});
  for (const v1::SessionInfo& s : sessions.sessions()) {
    table.AddRow({s.session_id(), s.user(), s.mailbox(), s.client_address(), s.front_end(),
                  FormatUnixMillis(s.started_unix_ms())});
  }
  return table.Render();
}

std::string StatusText(const v1::IndexerStatus& status) {
  return KeyValues({
      {"version", status.version().empty() ? "-" : status.version()},
      {"mailboxes", absl::StrCat(status.mailboxes())},
      {"messages", absl::StrCat(status.messages())},
      {"bytes", absl::StrCat(status.bytes())},
      {"index lag", absl::StrCat(status.index_lag_ms(), " ms")},
      {"last rescan", FormatUnixMillis(status.last_rescan_unix_ms())},
      {"sessions", absl::StrCat(status.sessions())},
  });
}

std::string VerifyText(const v1::VerifyReply& reply) {
  std::string out;
  if (!reply.problems().empty()) {
    Table table({{"PATH"}, {"PROBLEM"}});
    for (const v1::VerifyProblem& p : reply.problems()) table.AddRow({p.path(), p.description()});
    out = table.Render();
  }
  absl::StrAppend(&out, "verified ", Plural(reply.mailboxes(), "mailbox", "mailboxes"), ", ",
                  Plural(reply.messages(), "message", "messages"), ": ",
                  reply.problems().empty()
                      ? std::string("no problems")
                      : Plural(static_cast<uint64_t>(reply.problems_size()), "problem", "problems"),
                  "\n");
  return out;
}

std::string AccountLine(std::string_view verb_past, const v1::Account& account) {
  return Printable(absl::StrCat(Absl(verb_past), " account ", account.user(), " (mailbox ",
                                account.mailbox().empty() ? "-" : account.mailbox(), ", ",
                                account.credential_kind(), ")")) +
         "\n";
}

v1::MailboxDetail PageOf(const v1::MailboxDetail& detail, uint32_t from, uint32_t limit) {
  v1::MailboxDetail page;
  *page.mutable_summary() = detail.summary();
  page.set_first(from);
  for (const v1::MessageRow& m : detail.messages()) {
    if (m.number() < from) continue;
    if (limit != 0 && static_cast<uint32_t>(page.messages_size()) >= limit) break;
    if (page.messages().empty()) page.set_first(m.number());
    *page.add_messages() = m;
  }
  return page;
}

std::string PagingGap(const v1::MailboxDetail& reply, uint32_t from, uint32_t limit) {
  const uint64_t total = reply.summary().messages();
  const uint64_t wanted_last =
      limit == 0 ? total : std::min<uint64_t>(total, uint64_t{from} + limit - 1);
  if (wanted_last < from) return "";  // nothing there to show
  uint64_t have_first = reply.first() == 0 ? 1 : reply.first();
  uint64_t have_last = have_first - 1;
  if (!reply.messages().empty()) {
    have_first = reply.messages(0).number();
    have_last = reply.messages(reply.messages_size() - 1).number();
  }
  if (have_first <= from && have_last >= wanted_last) return "";
  std::string sent = reply.messages().empty()
                         ? std::string("no messages")
                         : absl::StrCat("messages ", have_first, "-", have_last);
  return absl::StrCat("the indexer sent ", sent, " of ", total, "; ", from, "-", wanted_last,
                      " were asked for");
}

std::string ProgressLine(const v1::ReindexProgress& progress, size_t width) {
  std::string head = absl::StrCat(
      "reindex: ", progress.mailboxes_done(), "/", progress.mailboxes_total(), " mailboxes, ",
      Megabytes(progress.bytes_done()), "/", Megabytes(progress.bytes_total()), " MB");
  std::string current = Printable(progress.current());
  if (current.empty()) return head;
  std::string line = absl::StrCat(head, ", ", current);
  if (width == 0 || DisplayWidth(line) <= width) return line;
  // Keep the head and the end of the path, which names the mailbox: "...ail/alice".
  size_t room = width > DisplayWidth(head) + 5 ? width - DisplayWidth(head) - 5 : 0;
  if (room == 0) return head.size() <= width ? head : head.substr(0, width);
  size_t start = current.size();
  size_t kept = 0;
  while (start > 0 && kept < room) {
    --start;
    if ((static_cast<unsigned char>(current[start]) & 0xC0) != 0x80) ++kept;
  }
  return absl::StrCat(head, ", ...", current.substr(start));
}

std::string ReindexSummary(const v1::ReindexProgress& last) {
  return absl::StrCat("reindexed ", Plural(last.mailboxes_done(), "mailbox", "mailboxes"), ", ",
                      Plural(last.bytes_done(), "byte", "bytes"), "\n");
}

std::string ErrorLine(std::string_view command, const absl::Status& status, std::string_view target,
                      std::optional<absl::Duration> timeout) {
  std::string message = Printable(Std(status.message()));
  std::string head = absl::StrCat("poplarctl ", Absl(command), ": ");
  if (absl::IsUnavailable(status)) {
    return absl::StrCat(head, "cannot reach the indexer at ", Printable(target),
                        message.empty() ? "" : ": ", message);
  }
  if (absl::IsDeadlineExceeded(status)) {
    std::string out =
        absl::StrCat(head, "the indexer at ", Printable(target), " did not answer ",
                     timeout.has_value() ? absl::StrCat("within ", absl::FormatDuration(*timeout))
                                         : std::string("in time"));
    if (!message.empty() && message != "Deadline Exceeded") absl::StrAppend(&out, ": ", message);
    return out;
  }
  std::string code = absl::StatusCodeToString(status.code());
  if (message.empty()) return absl::StrCat(head, code);
  return absl::StrCat(head, message, " (", code, ")");
}

}  // namespace poplar::poplarctl

// poplarctl's output: aligned tables for people and one JSON document per command for scripts,
// made from the Admin API's reply protos. Pure: every function returns a string.
//
// Everything shown in a table passes through Printable(): paths, senders and dates come from
// files and mail headers that anyone can write to, and must not be able to send escape
// sequences to the administrator's terminal.
#ifndef POPLAR_TOOLS_POPLARCTL_RENDER_H_
#define POPLAR_TOOLS_POPLARCTL_RENDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "poplar/admin.pb.h"

namespace poplar::poplarctl {

// A column-aligned text table: headers, then rows. Numeric columns are right-aligned; columns
// are separated by two spaces and lines carry no trailing blanks. Widths count UTF-8 code
// points, so names with accents still line up.
class Table {
 public:
  struct Column {
    std::string header;
    bool right_align = false;
  };
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  // Cells are made Printable(); a short row is padded with empty cells.
  void AddRow(std::vector<std::string> cells);
  std::string Render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// `text` with C0/C1 control characters and DEL replaced by \xNN escapes (so also no newlines).
std::string Printable(std::string_view text);

// The reply as one line of JSON plus "\n": field names as in admin.proto (snake_case), every
// field present even when zero; 64-bit integers are strings, as proto3 JSON mapping says.
std::string ToJson(const google::protobuf::Message& message);

// UTC, ISO 8601 ("2025-11-24T16:00:00Z"); "-" for 0 (never).
std::string FormatUnixSeconds(int64_t seconds);
std::string FormatUnixMillis(int64_t millis);

std::string AccountsTable(const v1::AccountList& accounts);
std::string MailboxesTable(const v1::MailboxList& mailboxes);
std::string MailboxDetailText(const v1::MailboxDetail& detail);
std::string SessionsTable(const v1::SessionList& sessions);
std::string StatusText(const v1::IndexerStatus& status);
// Problems (if any) as a table, then a summary line.
std::string VerifyText(const v1::VerifyReply& reply);

// One line for accounts add/passwd: "added account alice (mailbox /var/mail/alice, crypt)".
std::string AccountLine(std::string_view verb_past, const v1::Account& account);

// mailboxes show --from/--limit. The request carries first/limit and the indexer pages, but it
// caps one reply at 10,000 rows; the reply is cut here to exactly what was asked: messages
// numbered >= from, at most `limit` (0: all). `first` is set to the number of the first kept.
v1::MailboxDetail PageOf(const v1::MailboxDetail& detail, uint32_t from, uint32_t limit);
// Empty, or a note that the indexer's reply does not hold all of the asked-for messages
// (poplar-indexer sends at most 10000 rows): "the indexer sent messages 1-10000 of 25000;
// 1-20000 were asked for".
std::string PagingGap(const v1::MailboxDetail& reply, uint32_t from, uint32_t limit);

// Reindex progress, "reindex: 3/10 mailboxes, 12.5/80.0 MB, /var/mail/alice", no newline,
// cut to `width` code points if width > 0 (the path is shortened from the left).
std::string ProgressLine(const v1::ReindexProgress& progress, size_t width);
// The final line: "reindexed 10 mailboxes, 80000000 bytes".
std::string ReindexSummary(const v1::ReindexProgress& last);

// The one-line error for a failed RPC, naming the command, without the trailing newline:
//   poplarctl accounts add: account "alice" already exists (ALREADY_EXISTS)
//   poplarctl status: cannot reach the indexer at unix:/run/poplar/indexer.sock: ...
//   poplarctl verify: the indexer at ... did not answer within 30s
std::string ErrorLine(std::string_view command, const absl::Status& status, std::string_view target,
                      std::optional<absl::Duration> timeout);

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_RENDER_H_

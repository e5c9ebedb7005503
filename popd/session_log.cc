#include "popd/session_log.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/metrics.h"
#include "common/util/strings.h"

namespace poplar::popd {
namespace {

bool Bare(std::string_view v) {
  if (v.empty()) return false;
  for (unsigned char c : v) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=') return false;
  }
  return true;
}

void Append(std::string* out, std::string_view key, std::string_view value) {
  if (!out->empty()) out->push_back(' ');
  out->append(key);
  out->push_back('=');
  if (Bare(value)) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out->append(hex);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

}  // namespace

std::string FormatSessionLine(const SessionRecord& r) {
  std::string out = "session";
  Append(&out, "user", r.user.empty() ? "-" : r.user);
  Append(&out, "client", r.client);
  Append(&out, "tls", r.tls.empty() ? "none" : r.tls);
  Append(&out, "mech", r.mechanism.empty() ? "-" : r.mechanism);
  Append(&out, "retrieved", absl::StrCat(r.retrieved));
  Append(&out, "retrieved_bytes", absl::StrCat(r.retrieved_bytes));
  Append(&out, "deleted", absl::StrCat(r.deleted));
  Append(&out, "deleted_bytes", absl::StrCat(r.deleted_bytes));
  Append(&out, "sent_bytes", absl::StrCat(r.sent_bytes));
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.3f", r.duration_s < 0 ? 0.0 : r.duration_s);
  Append(&out, "duration_s", duration);
  Append(&out, "end", r.end);
  Append(&out, "reason", r.reason);
  return out;
}

std::string_view SessionResult(std::string_view reason, bool logged_in) {
  const absl::string_view r = Absl(reason);
  if (absl::StartsWith(r, "quit, commit") || absl::StartsWith(r, "quit, deleted")) {
    return absl::StartsWith(r, "quit, deleted") ? "quit" : "commit_failed";
  }
  if (r == "server shutdown") return "shutdown";
  if (r == "pre-login timeout") return "timeout";
  if (r == "autologout") return "autologout";
  if (absl::StartsWith(r, "maildrop session ended by the indexer")) return "lease_lost";
  if (!logged_in) return "no_login";
  if (r == "client disconnected") return "client_disconnected";
  return "error";
}

std::string_view VerbOf(std::string_view line) {
  const size_t space = line.find(' ');
  return space == std::string_view::npos ? line : line.substr(0, space);
}

std::string_view MechanismOfCommand(std::string_view line) {
  const std::string_view verb = VerbOf(line);
  if (absl::EqualsIgnoreCase(Absl(verb), "USER")) return "USER";
  if (absl::EqualsIgnoreCase(Absl(verb), "APOP")) return "APOP";
  if (!absl::EqualsIgnoreCase(Absl(verb), "AUTH") || verb.size() == line.size()) return "";
  const std::string_view mech = VerbOf(line.substr(verb.size() + 1));
  return metrics::NormalizeMechanism(mech);
}

}  // namespace poplar::popd

#include "tools/poplarctl/migrate_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "common/util/errno_status.h"
#include "common/util/file_io.h"
#include "common/util/unique_fd.h"
#include "tools/poplarctl/cli.h"

namespace poplar::poplarctl {
namespace {

constexpr size_t kExamples = 5;

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("fstat ", path));
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  const ssize_t n = PreadAll(fd.get(), 0, bytes.data(), bytes.size());
  if (n < 0) return ErrnoToStatus(errno, absl::StrCat("read ", path));
  bytes.resize(static_cast<size_t>(n));
  return bytes;
}

// What the old server served for each message, in file order ("" where it served nothing the
// file records: Dovecot messages without X-UID).
std::vector<std::string> OldUidls(const std::vector<mbox::MessageInfo>& messages,
                                  const MigrateCheckOptions& options) {
  std::vector<std::string> out;
  std::optional<uint32_t> validity;
  for (const mbox::MessageInfo& m : messages) {
    if (options.from == "qpopper") {
      out.push_back(m.qpopper.served());
      continue;
    }
    if (!validity && m.uid_validity) validity = m.uid_validity;
    out.push_back(m.x_uid && validity ? absl::StrFormat("%08X%08X", *m.x_uid, *validity) : "");
  }
  return out;
}

void CheckAll(const std::vector<mbox::MessageInfo>& messages, const MigrateCheckOptions& options,
              MailboxCheck* check) {
  mbox::UidlOptions chosen;
  chosen.scheme =
      options.from == "qpopper" ? mbox::UidlScheme::kQpopper : mbox::UidlScheme::kDovecot;
  chosen.qpopper = options.qpopper;
  mbox::UidlAssigner poplar(chosen);
  mbox::UidlAssigner default_scheme{mbox::UidlOptions{}};
  const std::vector<std::string> old = OldUidls(messages, options);
  absl::flat_hash_set<std::string> seen;
  check->messages = messages.size();
  for (size_t i = 0; i < messages.size(); ++i) {
    const mbox::MessageInfo& m = messages[i];
    const std::string uidl = poplar.Assign(m, /*switched_before=*/true);
    const std::string fallback = default_scheme.Assign(m, /*switched_before=*/true);
    if (options.from == "qpopper" && !m.qpopper.x_uidl.empty()) {
      ++check->x_uidl;
      const std::string& x = m.qpopper.x_uidl;
      if (x.size() == 32 && x.find_first_not_of("0123456789abcdef") == std::string::npos) {
        ++check->x_uidl_hex;
      } else if (x.size() == 20 && x.find_first_of(". ") == std::string::npos) {
        ++check->x_uidl_base80;
      }
    }
    if (old[i].empty()) {
      ++check->unknown;
      continue;
    }
    if (!seen.insert(old[i]).second) ++check->duplicates;
    if (fallback != old[i]) ++check->changed_default_scheme;
    if (uidl == old[i]) continue;
    ++check->changed;
    if (check->examples.size() < kExamples) check->examples.push_back({i + 1, old[i], uidl});
  }
}

bool LooksLikeMbox(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return false;
  char head[5] = {};
  const ssize_t n = PreadAll(fd.get(), 0, head, sizeof(head));
  return n == 0 || (n == 5 && std::string_view(head, 5) == "From ");
}

absl::Status Walk(const std::string& dir, int depth, std::vector<std::string>* out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoToStatus(errno, absl::StrCat("opendir ", dir));
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".lock") continue;
    names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(dir, "/", name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) && depth < 3) {
      if (absl::Status s = Walk(path, depth + 1, out); !s.ok()) return s;
    } else if (S_ISREG(st.st_mode) && LooksLikeMbox(path)) {
      out->push_back(path);
    }
  }
  return absl::OkStatus();
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(ch));
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

void Print(const MailboxCheck& c, const MigrateCheckOptions& options, std::ostream& out) {
  if (options.json) {
    out << absl::StrFormat(
        "{\"path\":\"%s\",\"messages\":%d,\"changed\":%d,\"changed_default_scheme\":%d,"
        "\"x_uidl\":%d,\"x_uidl_hex\":%d,\"x_uidl_base80\":%d,\"duplicates\":%d,"
        "\"unknown\":%d}\n",
        JsonEscape(c.path), c.messages, c.changed, c.changed_default_scheme, c.x_uidl, c.x_uidl_hex,
        c.x_uidl_base80, c.duplicates, c.unknown);
    return;
  }
  out << absl::StrFormat(
      "%s: %d messages, %d UIDLs would change with --from %s (%d with the "
      "default scheme)",
      c.path, c.messages, c.changed, options.from, c.changed_default_scheme);
  if (options.from == "qpopper") out << absl::StrFormat(", %d X-UIDL", c.x_uidl);
  // What Qpopper wrote itself shows its variant; the check cannot see it otherwise (both sides
  // are computed with the variant given).
  if (options.from == "qpopper" && !options.qpopper.old_style && c.x_uidl_hex > c.x_uidl_base80) {
    out << absl::StrFormat(
        ", but %d of them are 32 hex digits: Qpopper ran with old-style-uid "
        "(try --old-style-uid)",
        c.x_uidl_hex);
  } else if (options.from == "qpopper" && options.qpopper.old_style &&
             c.x_uidl_base80 > c.x_uidl_hex) {
    out << absl::StrFormat(
        ", but %d of them are base-80 UIDLs: Qpopper ran without "
        "old-style-uid",
        c.x_uidl_base80);
  }
  if (c.duplicates > 0) {
    out << absl::StrFormat(
        ", %d duplicate UIDLs (RFC 1939 forbids them: a later copy gets "
        "\"-2\", \"-3\")",
        c.duplicates);
  }
  if (c.unknown > 0) {
    out << absl::StrFormat(", %d without X-UID (their UID is only in Dovecot's index, if any)",
                           c.unknown);
  }
  out << "\n";
  for (const UidlChange& e : c.examples) {
    out << absl::StrFormat("  message %d: %s -> %s\n", e.number, e.old_uidl, e.new_uidl);
  }
}

constexpr std::string_view kUsage =
    "usage: poplarctl migrate check --from qpopper|dovecot [--spool DIR] [--old-style-uid]\n"
    "           [--server-mode] [--no-content-length] [--trust-content-length] [--json]\n"
    "           [SPOOL_DIR|MBOX|USER ...]\n";

}  // namespace

absl::StatusOr<MailboxCheck> CheckMailbox(const std::string& path,
                                          const MigrateCheckOptions& options) {
  absl::StatusOr<std::string> bytes = ReadWhole(path);
  if (!bytes.ok()) return bytes.status();
  mbox::ScanOptions scan_options;
  scan_options.final = true;
  scan_options.trust_content_length = options.trust_content_length;
  if (options.from == "qpopper") scan_options.qpopper = options.qpopper;
  mbox::ScanResult scan = mbox::ScanMbox(*bytes, 0, scan_options);
  MailboxCheck check;
  check.path = path;
  CheckAll(scan.messages, options, &check);
  return check;
}

absl::StatusOr<std::vector<std::string>> MailboxesOf(std::string_view target,
                                                     const MigrateCheckOptions& options) {
  std::string path(target);
  if (target.find('/') == std::string_view::npos)
    path = absl::StrCat(options.spool, "/", std::string(target));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  std::vector<std::string> out;
  if (S_ISDIR(st.st_mode)) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (absl::Status s = Walk(path, 1, &out); !s.ok()) return s;
  } else {
    out.push_back(path);
  }
  return out;
}

int RunMigrateCheck(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  MigrateCheckOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* dst) {
      if (i + 1 >= args.size()) return false;
      *dst = args[++i];
      return true;
    };
    if (a == "--from") {
      if (!value(&options.from)) options.from = "";
    } else if (a.rfind("--from=", 0) == 0) {
      options.from = a.substr(7);
    } else if (a == "--spool") {
      if (!value(&options.spool)) options.spool = "";
    } else if (a.rfind("--spool=", 0) == 0) {
      options.spool = a.substr(8);
    } else if (a == "--old-style-uid") {
      options.qpopper.old_style = true;
    } else if (a == "--server-mode") {
      options.qpopper.server_mode = true;
    } else if (a == "--no-content-length") {
      options.qpopper.content_length = false;
    } else if (a == "--trust-content-length") {
      options.trust_content_length = true;
    } else if (a == "--json") {
      options.json = true;
    } else if (!a.empty() && a[0] == '-') {
      err << "poplarctl migrate check: unknown option " << a << "\n" << kUsage;
      return kExitUsage;
    } else {
      options.targets.push_back(a);
    }
  }
  if (options.from != "qpopper" && options.from != "dovecot") {
    err << "poplarctl migrate check: --from must be qpopper or dovecot\n" << kUsage;
    return kExitUsage;
  }
  if (options.spool.empty()) {
    err << "poplarctl migrate check: --spool needs a directory\n" << kUsage;
    return kExitUsage;
  }
  if (options.targets.empty()) options.targets.push_back(options.spool);
  uint64_t mailboxes = 0, messages = 0, changed = 0, changed_default = 0;
  bool failed = false;
  for (const std::string& target : options.targets) {
    absl::StatusOr<std::vector<std::string>> paths = MailboxesOf(target, options);
    if (!paths.ok()) {
      err << "poplarctl migrate check: " << paths.status().message() << "\n";
      failed = true;
      continue;
    }
    for (const std::string& path : *paths) {
      absl::StatusOr<MailboxCheck> check = CheckMailbox(path, options);
      if (!check.ok()) {
        err << "poplarctl migrate check: " << check.status().message() << "\n";
        failed = true;
        continue;
      }
      Print(*check, options, out);
      ++mailboxes;
      messages += check->messages;
      changed += check->changed;
      changed_default += check->changed_default_scheme;
    }
  }
  if (!options.json) {
    out << absl::StrFormat(
        "total: %d mailboxes, %d messages, %d UIDLs would change with "
        "--from %s (%d with the default scheme)\n",
        mailboxes, messages, changed, options.from, changed_default);
  }
  if (failed) return kExitRefused;
  return changed > 0 ? kExitProblems : kExitOk;
}

}  // namespace poplar::poplarctl

#include "indexer/mailbox_indexer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mbox/scanner.h"
#include "common/util/errno_status.h"
#include "common/util/file_io.h"
#include "common/util/strings.h"
#include "common/util/unique_fd.h"

namespace poplar::indexer {
namespace {

absl::Status ErrnoStatus(int err, std::string_view what, const std::string& path) {
  return ErrnoToStatus(err, absl::StrCat(Absl(what), " ", path));
}

// Reads exactly [offset, offset + out->size()) or reports a short file (truncated meanwhile).
absl::Status PreadFull(int fd, uint64_t offset, std::string* out, const std::string& path) {
  const ssize_t n = PreadAll(fd, offset, out->data(), out->size());
  if (n < 0) return ErrnoStatus(errno, "read", path);
  if (static_cast<size_t>(n) < out->size())
    return absl::AbortedError(absl::StrCat(path, " shrank while being read"));
  return absl::OkStatus();
}

MessageRecord ToRecord(const mbox::MessageInfo& m) {
  MessageRecord r;
  r.offset = m.offset;
  r.data_offset = m.data_offset;
  r.end_offset = m.end_offset;
  r.header_length = m.header_length;
  r.lines = m.lines;
  r.octets = m.octets;
  r.final_newline = m.final_newline;
  r.uidl_digest = m.uidl_digest;
  r.content_hash = m.content_hash;
  r.sender = m.sender;
  r.date = m.date;
  return r;
}

struct ScanOutput {
  std::vector<mbox::MessageInfo> messages;
  uint64_t resume_offset = 0;
  uint32_t anomalies = 0;
  bool garbage_at_start = false;
  uint64_t bytes_read = 0;
};

// Scans [start, size) in windows that double while a single message does not fit.
absl::StatusOr<ScanOutput> ScanFile(int fd, const std::string& path, uint64_t start, uint64_t size,
                                    bool final, size_t window, bool trust_content_length,
                                    std::optional<mbox::QpopperUidlOptions> qpopper = {}) {
  ScanOutput out;
  out.resume_offset = start;
  std::string buf;
  uint64_t pos = start;
  while (pos < size) {
    uint64_t want = std::min<uint64_t>(window, size - pos);
    buf.resize(want);
    if (absl::Status s = PreadFull(fd, pos, &buf, path); !s.ok()) return s;
    out.bytes_read += want;
    const bool reaches_end = pos + want == size;
    mbox::ScanResult r =
        mbox::ScanMbox(buf, pos,
                       mbox::ScanOptions{.final = final && reaches_end,
                                         .trust_content_length = trust_content_length,
                                         .qpopper = qpopper});
    for (const mbox::Anomaly& a : r.anomalies) {
      if (a.kind == mbox::AnomalyKind::kLeadingGarbage && a.offset == start && start > 0) {
        out.garbage_at_start = true;
      }
    }
    out.anomalies += static_cast<uint32_t>(r.anomalies.size());
    for (mbox::MessageInfo& m : r.messages) out.messages.push_back(std::move(m));
    out.resume_offset = r.resume_offset;
    if (reaches_end) break;
    if (r.resume_offset == pos) {
      window *= 2;  // one message larger than the window: read more of it at once
    } else {
      pos = r.resume_offset;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Hash128> TailHash(int fd, uint64_t resume, const std::string& path) {
  uint64_t n = std::min(resume, kTailBytes);
  std::string buf(n, '\0');
  if (absl::Status s = PreadFull(fd, resume - n, &buf, path); !s.ok()) return s;
  return Xxh3_128(buf);
}

absl::Status RefusedMailbox(const std::string& path, std::string_view reason) {
  return absl::FailedPreconditionError(absl::StrCat("mailbox ", path, " refused: ", Absl(reason)));
}

absl::Status CheckMailboxFile(const std::string& path, const struct stat& st) {
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  return RefusedMailbox(path, S_ISDIR(st.st_mode)    ? "is a directory, not a regular file"
                              : S_ISFIFO(st.st_mode) ? "is a FIFO, not a regular file"
                                                     : "is not a regular file");
}

absl::StatusOr<UniqueFd> OpenMailbox(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.valid()) return fd;
  if (errno == ELOOP) return RefusedMailbox(path, "is a symbolic link (never followed)");
  return ErrnoStatus(errno, "open", path);
}

bool LockFileProbe::WriterActive(const std::string& path, int fd) {
  if (dotlock_) {
    struct stat st {};
    if (::lstat((path + ".lock").c_str(), &st) == 0) return true;
  }
  if (fcntl_) {
    struct flock fl {};
    fl.l_type = F_RDLCK;  // conflicts only with write locks
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;
    if (::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) return true;
  }
  if (flock_) {
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0) return errno == EWOULDBLOCK;
    ::flock(fd, LOCK_UN);
  }
  return false;
}

absl::StatusOr<std::vector<mbox::MessageInfo>> ScanRegion(int fd, const std::string& path,
                                                          uint64_t start, uint64_t size,
                                                          bool trust_content_length) {
  absl::StatusOr<ScanOutput> scan =
      ScanFile(fd, path, start, size, /*final=*/true, 8 << 20, trust_content_length);
  if (!scan.ok()) return scan.status();
  return std::move(scan->messages);
}

absl::StatusOr<FileScan> ScanWholeFile(const std::string& path, WriterProbe* probe,
                                       bool trust_content_length) {
  absl::StatusOr<UniqueFd> opened = OpenMailbox(path);
  if (!opened.ok()) return opened.status();
  UniqueFd fd = std::move(*opened);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat", path);
  if (absl::Status s = CheckMailboxFile(path, st); !s.ok()) return s;
  FileScan out;
  out.size = static_cast<uint64_t>(st.st_size);
  out.writer_active = probe->WriterActive(path, fd.get());
  absl::StatusOr<ScanOutput> scan =
      ScanFile(fd.get(), path, 0, out.size, !out.writer_active, 8 << 20, trust_content_length);
  if (!scan.ok()) return scan.status();
  out.messages = std::move(scan->messages);
  out.resume_offset = scan->resume_offset;
  return out;
}

absl::StatusOr<IndexOutcome> MailboxIndexer::Update(const std::string& path,
                                                    const std::string& user, bool force_full) {
  absl::StatusOr<std::optional<MailboxRecord>> found = store_->FindMailbox(path);
  if (!found.ok()) return found.status();
  std::optional<MailboxRecord> rec = std::move(*found);

  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ELOOP) return RefusedMailbox(path, "is a symbolic link (never followed)");
    if (errno == ENOENT) {
      if (rec) {
        if (absl::Status s = store_->RemoveMailbox(rec->id); !s.ok()) return s;
      }
      IndexOutcome removed;
      removed.kind = IndexOutcome::Kind::kRemoved;
      return removed;
    }
    return ErrnoStatus(errno, "open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat", path);
  if (absl::Status s = CheckMailboxFile(path, st); !s.ok()) return s;
  if (owner_ != nullptr) {
    // Checked before a byte is read: a foreign file is neither indexed nor served.
    const std::string& whose = user.empty() && rec ? rec->user : user;
    if (absl::Status s = owner_->Check(st.st_uid, whose); !s.ok())
      return RefusedMailbox(path, Std(s.message()));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const bool writer = probe_->WriterActive(path, fd.get());

  IndexOutcome outcome;
  outcome.writer_active = writer;
  uint64_t start = 0;
  bool incremental = false;
  if (!force_full && rec && rec->device == st.st_dev && rec->inode == st.st_ino &&
      size >= rec->resume_offset) {
    // Unchanged since a scan that saw no writer (or a writer is still at work): nothing to do.
    if (size == rec->size && mtime_ns == rec->mtime_ns && (rec->final_scan || writer)) {
      outcome.messages = rec->messages;
      return outcome;  // kUnchanged
    }
    absl::StatusOr<Hash128> tail = TailHash(fd.get(), rec->resume_offset, path);
    if (!tail.ok()) return tail.status();
    if (*tail == rec->tail_hash) {
      incremental = true;
      start = rec->resume_offset;
    }
  }

  const mbox::UidlOptions& uidl_options = mbox::UidlOptionsForPath(uidl_, path);
  const std::optional<mbox::QpopperUidlOptions> qpopper = mbox::QpopperScanOptions(uidl_options);
  absl::StatusOr<ScanOutput> scan = ScanFile(fd.get(), path, start, size, /*final=*/!writer,
                                             window_bytes_, trust_content_length_, qpopper);
  if (!scan.ok()) return scan.status();
  if (incremental && scan->garbage_at_start) {
    // What follows the resume point is not a new message: the last message grew, or the file
    // changed in a way the tail hash did not see. Re-index it all.
    incremental = false;
    start = 0;
    scan =
        ScanFile(fd.get(), path, 0, size, !writer, window_bytes_, trust_content_length_, qpopper);
    if (!scan.ok()) return scan.status();
  }

  MailboxRecord mb = rec ? *rec : MailboxRecord{};
  mb.path = path;
  if (!user.empty()) mb.user = user;
  mbox::UidlAssigner assigner(uidl_options);
  // X-UIDL from strangers (uidl.h): only messages that were in the mailbox at its first index
  // with content (the switch) may adopt it. Until then (no record yet, or only empty files
  // seen: a mailbox created just now, still being written) everything counts.
  const bool switch_pending = !rec || rec->x_uidl_cutoff == kXUidlCutoffPending;
  const uint64_t cutoff = switch_pending ? UINT64_MAX : rec->x_uidl_cutoff.value_or(rec->size);
  std::vector<MessageRecord> records;
  records.reserve(scan->messages.size());
  for (const mbox::MessageInfo& m : scan->messages) records.push_back(ToRecord(m));

  if (incremental) {
    if (mb.uid_validity) assigner.SetUidValidity(*mb.uid_validity);
    const int64_t id = mb.id;
    absl::Status lookup_error;
    assigner.SetReservedLookup([&](const std::string& uidl) {
      absl::StatusOr<bool> used = store_->UidlInUse(id, uidl, start);
      if (!used.ok()) {
        lookup_error = used.status();
        return true;  // treat as taken; the update fails below anyway
      }
      return *used;
    });
    // The tail from `start` was rescanned: if the file no longer reaches the cutoff, what lies
    // there now was not in the mailbox at the switch (every message deleted, the tail
    // rewritten), and adopts nothing.
    if (!switch_pending && size < cutoff) mb.x_uidl_cutoff = std::min(cutoff, start);
    const uint64_t adopt_below = mb.x_uidl_cutoff.value_or(cutoff);
    for (size_t i = 0; i < records.size(); ++i) {
      records[i].uidl = assigner.Assign(scan->messages[i], records[i].offset < adopt_below);
    }
    if (!lookup_error.ok()) return lookup_error;
    outcome.kind = IndexOutcome::Kind::kAppended;
  } else {
    // Full re-index: a message whose exact bytes were indexed before keeps its UIDL.
    struct Old {
      std::string uidl;
      uint64_t offset;
    };
    std::map<std::string, std::deque<Old>> old_uidls;
    // Messages delivered after the switch, by their UIDL digest (which leaves out Status: and
    // the other headers mail programs rewrite): one whose flags were rewritten is still one.
    std::set<std::string> after_switch_digests;
    if (rec) {
      absl::StatusOr<std::vector<MessageRecord>> old = store_->LoadMessages(rec->id);
      if (!old.ok()) return old.status();
      for (const MessageRecord& o : *old) {
        old_uidls[o.content_hash.Hex()].push_back({o.uidl, o.offset});
        if (o.offset >= cutoff) after_switch_digests.insert(o.uidl_digest);
      }
    }
    std::vector<bool> carried(records.size(), false);
    // Where the mailbox's messages from before the switch end now: an expunge or a rewrite moves
    // later deliveries down, and they must stay after the cutoff.
    uint64_t new_cutoff = 0;
    bool after_switch_seen = false;
    for (size_t i = 0; i < records.size(); ++i) {
      auto it = old_uidls.find(records[i].content_hash.Hex());
      if (it == old_uidls.end() || it->second.empty()) {
        if (records[i].offset >= cutoff || after_switch_digests.count(records[i].uidl_digest)) {
          after_switch_seen = true;
        }
      } else {
        records[i].uidl = it->second.front().uidl;
        if (it->second.front().offset >= cutoff) after_switch_seen = true;
        it->second.pop_front();
        assigner.Reserve(records[i].uidl);
        carried[i] = true;
      }
      if (!after_switch_seen) new_cutoff = records[i].end_offset;
    }
    mb.x_uidl_cutoff = std::min(cutoff, new_cutoff);
    for (size_t i = 0; i < records.size(); ++i) {
      if (!carried[i]) {
        records[i].uidl = assigner.Assign(scan->messages[i], records[i].offset < *mb.x_uidl_cutoff);
      } else if (uidl_options.scheme == mbox::UidlScheme::kDovecot && !assigner.uid_validity() &&
                 scan->messages[i].uid_validity) {
        assigner.SetUidValidity(*scan->messages[i].uid_validity);
      }
    }
    outcome.kind = rec ? IndexOutcome::Kind::kReindexed : IndexOutcome::Kind::kNew;
  }

  if (switch_pending) {
    // This is the switch: everything that starts before what this scan could decide was there.
    const uint64_t seen = writer ? scan->resume_offset : size;
    mb.x_uidl_cutoff = seen == 0 ? kXUidlCutoffPending : seen;
  }
  absl::StatusOr<Hash128> tail = TailHash(fd.get(), scan->resume_offset, path);
  if (!tail.ok()) return tail.status();
  mb.device = st.st_dev;
  mb.inode = st.st_ino;
  mb.size = size;
  mb.mtime_ns = mtime_ns;
  mb.resume_offset = scan->resume_offset;
  mb.final_scan = !writer;
  mb.tail_hash = *tail;
  mb.uid_validity = assigner.uid_validity();
  mb.indexed_unix_ms = absl::ToUnixMillis(absl::Now());
  mb.anomalies = incremental ? mb.anomalies + scan->anomalies : scan->anomalies;
  // While an MDA writes, what the scan could not decide (from its resume point on) keeps its
  // old entries: a message indexed before must not vanish during the next delivery.
  const uint64_t replace_to = writer ? scan->resume_offset : UINT64_MAX;
  if (absl::Status s = store_->SaveScan(&mb, start, records, replace_to); !s.ok()) return s;

  outcome.messages = mb.messages;
  outcome.new_messages = records.size();
  if (incremental) {
    outcome.replaced_from = start;
    outcome.replaced_to = replace_to;
    outcome.added = std::move(records);
    outcome.exact_tail = true;
  }
  outcome.bytes_scanned = scan->bytes_read;
  return outcome;
}

}  // namespace poplar::indexer

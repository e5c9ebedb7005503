#include "indexer/expunger.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/util/errno_status.h"
#include "common/util/fault.h"
#include "common/util/file_io.h"
#include "common/util/log.h"
#include "common/util/strings.h"
#include "common/util/unique_fd.h"

namespace poplar::indexer {
namespace {

constexpr size_t kChunk = 4 << 20;
// Refresh the dotlock well within every MDA's stale rule (the shortest is Dovecot's 2 min).
constexpr absl::Duration kTouchEvery = absl::Seconds(30);

absl::Status PreadFull(int fd, uint64_t offset, char* buf, size_t n, const std::string& what) {
  const ssize_t r = PreadAll(fd, offset, buf, n);
  if (r < 0) return ErrnoToStatus(errno, "read " + what);
  if (static_cast<size_t>(r) < n)
    return absl::DataLossError(absl::StrCat(what, " is shorter than expected"));
  return absl::OkStatus();
}

absl::Status PwriteFull(int fd, uint64_t offset, const char* buf, size_t n,
                        const std::string& what) {
  if (PwriteAll(fd, offset, buf, n) < 0) return ErrnoToStatus(errno, "write " + what);
  return absl::OkStatus();
}

// The one chunk loop of the expunge: reads [r.begin, r.end) of `fd` in kChunk pieces (so a
// gigabyte mailbox needs 4 MiB of memory) and hands each to `each` with its offset relative to
// r.begin. Every copy, hash and replay below is this loop.
using ChunkFn = absl::FunctionRef<absl::Status(uint64_t pos, std::string_view chunk)>;
absl::Status ForEachChunk(int fd, mbox::ByteRange r, const std::string& what, ChunkFn each) {
  std::string buf;
  for (uint64_t pos = r.begin; pos < r.end;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, r.end - pos));
    buf.resize(n);
    if (absl::Status s = PreadFull(fd, pos, buf.data(), n, what); !s.ok()) return s;
    if (absl::Status s = each(pos - r.begin, buf); !s.ok()) return s;
    pos += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<Hash128> HashRange(int fd, mbox::ByteRange r, const std::string& what) {
  Xxh3Stream h;
  absl::Status s = ForEachChunk(fd, r, what, [&h](uint64_t, std::string_view chunk) {
    h.Update(chunk);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return h.Digest();
}

mbox::ByteRange PrefixRange(uint64_t start) {
  return {start - std::min<uint64_t>(start, mbox::kPrefixHashBytes), start};
}

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return ErrnoToStatus(errno, "open directory " + dir);
  if (::fsync(d.get()) != 0) return ErrnoToStatus(errno, "fsync directory " + dir);
  return absl::OkStatus();
}

size_t HeaderLength() { return mbox::FormatJournalHeader(mbox::JournalHeader{}).size(); }

// Touches the dotlock when kTouchEvery has passed (a rewrite of gigabytes takes a while).
struct Toucher {
  lock::MailboxLock* lock;
  absl::Time last = absl::Now();
  void Maybe() {
    if (lock == nullptr || absl::Now() - last < kTouchEvery) return;
    if (absl::Status s = lock->Touch(); !s.ok()) {
      log::Warning("expunge: cannot refresh the dotlock: ", s);
    }
    last = absl::Now();
  }
};

mbox::JournalHeader HeaderOf(const ExpungePlanRecord& p) {
  mbox::JournalHeader h;
  h.device = p.device;
  h.inode = p.inode;
  h.start = p.start;
  h.old_size = p.old_size;
  h.new_size = p.new_size;
  h.prefix_hash = p.prefix_hash;
  h.old_tail_hash = p.old_tail_hash;
  h.image_hash = p.image_hash;
  return h;
}

// Asks the kernel to start writing a chunk back now, without waiting for it. Only a hint: the
// fsync()/fdatasync() that follow every journal and rewrite are what makes the data durable.
// Without it a 1.3 GB rewrite piles up dirty pages and the final fsync writes them all in one
// stall; with it the disk works while the next chunks are copied.
void StartWriteback(int fd, uint64_t offset, size_t length) {
  (void)::sync_file_range(fd, static_cast<off64_t>(offset), static_cast<off64_t>(length),
                          SYNC_FILE_RANGE_WRITE);
}

}  // namespace

absl::Status Expunger::Init() {
  if (::mkdir(journal_dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "create the expunge journal directory " + journal_dir_);
  }
  struct stat st {};
  if (::stat(journal_dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(journal_dir_, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Expunger::Written> Expunger::WriteJournal(const std::vector<Source>& sources,
                                                         mbox::JournalHeader header,
                                                         lock::MailboxLock* lock) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  Written w;
  w.path = absl::StrCat(journal_dir_, "/", header.device, "-", header.inode, "-",
                        absl::ToUnixNanos(absl::Now()), "-", rng() % 1000000, ".journal");
  UniqueFd fd(::open(w.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoToStatus(errno, "create journal " + w.path);
  auto fail = [&](absl::Status s) -> absl::Status {
    ::unlink(w.path.c_str());
    return s;
  };
  Xxh3Stream hash;
  Toucher toucher{lock};
  uint64_t out = HeaderLength();
  for (const Source& src : sources) {
    absl::Status copied =
        ForEachChunk(src.fd, src.range, src.name, [&](uint64_t, std::string_view c) {
          hash.Update(c);
          if (absl::Status s = PwriteFull(fd.get(), out, c.data(), c.size(), w.path); !s.ok())
            return s;
          StartWriteback(fd.get(), out, c.size());
          out += c.size();
          toucher.Maybe();
          return absl::OkStatus();
        });
    if (!copied.ok()) return fail(copied);
  }
  w.image_hash = hash.Digest();
  header.image_hash = w.image_hash;
  const std::string text = mbox::FormatJournalHeader(header);
  if (absl::Status s = PwriteFull(fd.get(), 0, text.data(), text.size(), w.path); !s.ok())
    return fail(s);
  if (::fsync(fd.get()) != 0) return fail(ErrnoToStatus(errno, "fsync " + w.path));
  if (absl::Status s = FsyncDir(journal_dir_); !s.ok()) return fail(s);
  return w;
}

absl::Status Expunger::Replay(const std::string& journal_path, const mbox::JournalHeader& h, int fd,
                              lock::MailboxLock* lock, std::string_view phase) {
  // Fault points "<phase>.mid_rewrite" etc.: "expunge" for the commit's own rewrite,
  // "recovery" for the replay at start-up, so a crash during recovery is testable too.
  auto fault = [phase](std::string_view step) {
    FaultPoint(absl::StrCat(Absl(phase), ".", Absl(step)));
  };
  UniqueFd j(::open(journal_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!j.valid()) return ErrnoToStatus(errno, "open journal " + journal_path);
  const uint64_t header_len = HeaderLength();
  const uint64_t image = h.new_size - h.start;
  const uint64_t half = image / 2;
  Toucher toucher{lock};
  // Journal bytes [header_len + from, header_len + to) go to the mailbox at h.start + from.
  auto rewrite = [&](uint64_t from, uint64_t to) {
    return ForEachChunk(j.get(), {header_len + from, header_len + to}, journal_path,
                        [&](uint64_t pos, std::string_view c) {
                          const uint64_t at = h.start + from + pos;
                          if (absl::Status s = PwriteFull(fd, at, c.data(), c.size(), "mailbox");
                              !s.ok())
                            return s;
                          StartWriteback(fd, at, c.size());
                          toucher.Maybe();
                          return absl::OkStatus();
                        });
  };
  if (absl::Status s = rewrite(0, half); !s.ok()) return s;
  fault("mid_rewrite");
  if (absl::Status s = rewrite(half, image); !s.ok()) return s;
  if (::fdatasync(fd) != 0) return ErrnoToStatus(errno, "fdatasync mailbox");
  fault("before_truncate");
  if (::ftruncate(fd, static_cast<off_t>(h.new_size)) != 0) {
    return ErrnoToStatus(errno, "ftruncate mailbox");
  }
  if (::fsync(fd) != 0) return ErrnoToStatus(errno, "fsync mailbox");
  fault("after_truncate");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Expunger::Compact(const std::string& path, lock::MailboxLock& lock,
                                          const mbox::CompactionPlan& plan, absl::Mutex* store_mu) {
  struct stat st {};
  if (::fstat(lock.fd(), &st) != 0) return ErrnoToStatus(errno, "fstat " + path);
  if (static_cast<uint64_t>(st.st_size) != plan.old_size) {
    return absl::AbortedError(absl::StrCat(path, " changed size under the locks"));
  }
  mbox::JournalHeader h;
  h.device = st.st_dev;
  h.inode = st.st_ino;
  h.start = plan.start;
  h.old_size = plan.old_size;
  h.new_size = plan.new_size;
  absl::StatusOr<Hash128> prefix = HashRange(lock.fd(), PrefixRange(plan.start), path);
  if (!prefix.ok()) return prefix.status();
  h.prefix_hash = *prefix;
  absl::StatusOr<Hash128> tail =
      HashRange(lock.fd(), mbox::OldTailRange(plan.new_size, plan.old_size), path);
  if (!tail.ok()) return tail.status();
  h.old_tail_hash = *tail;
  std::vector<Source> sources;
  for (const mbox::ByteRange& r : plan.keep) sources.push_back({lock.fd(), r, path});
  absl::StatusOr<Written> w = WriteJournal(sources, h, &lock);
  if (!w.ok()) return w.status();
  h.image_hash = w->image_hash;
  FaultPoint("expunge.after_journal");

  ExpungePlanRecord rec;
  rec.mailbox_path = path;
  rec.device = h.device;
  rec.inode = h.inode;
  rec.start = h.start;
  rec.old_size = h.old_size;
  rec.new_size = h.new_size;
  rec.prefix_hash = h.prefix_hash;
  rec.old_tail_hash = h.old_tail_hash;
  rec.image_hash = h.image_hash;
  rec.journal_path = w->path;
  rec.created_unix_ms = absl::ToUnixMillis(absl::Now());
  absl::StatusOr<int64_t> id;
  {
    absl::MutexLockMaybe store_lock(store_mu);  // null: the caller holds it
    id = store_->AddExpungePlan(rec);
  }
  if (!id.ok()) {
    ::unlink(w->path.c_str());  // no plan, nothing written to the mailbox: nothing to redo
    return id.status();
  }
  FaultPoint("expunge.after_plan");
  if (absl::Status s = Replay(w->path, h, lock.fd(), &lock, "expunge"); !s.ok()) {
    // The plan stays open: the next start-up (or the next commit on this mailbox) replays it.
    return s;
  }
  return *id;
}

absl::Status Expunger::Finish(int64_t plan_id, const std::string& journal_path) {
  FaultPoint("expunge.before_done");
  if (absl::Status s = store_->SetPlanState(plan_id, "done"); !s.ok()) return s;
  FaultPoint("expunge.after_done");
  ::unlink(journal_path.c_str());  // an orphan left by a crash here is removed at start-up
  return absl::OkStatus();
}

absl::Status Expunger::Reject(const ExpungePlanRecord& plan, const std::string& why,
                              RecoveryReport* out) {
  const std::string aside = plan.journal_path + ".rejected";
  std::string moved;
  if (::rename(plan.journal_path.c_str(), aside.c_str()) == 0) {
    moved = absl::StrCat("; journal moved to ", aside);
  }
  out->outcome = Recovery::kRejected;
  out->detail = absl::StrCat("plan ", plan.id, " for ", plan.mailbox_path, " not applied: ", why,
                             moved, "; the mailbox was left as it is");
  return store_->SetPlanState(plan.id, "rejected");
}

absl::StatusOr<Expunger::RecoveryReport> Expunger::Rejected(const ExpungePlanRecord& plan,
                                                            const std::string& why) {
  RecoveryReport out;
  if (absl::Status s = Reject(plan, why, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> Expunger::CheckJournal(const ExpungePlanRecord& plan) {
  UniqueFd j(::open(plan.journal_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!j.valid()) return absl::StrCat("journal ", plan.journal_path, " is missing");
  const size_t header_len = HeaderLength();
  struct stat jst {};
  if (::fstat(j.get(), &jst) != 0) return ErrnoToStatus(errno, "fstat " + plan.journal_path);
  const uint64_t size = static_cast<uint64_t>(jst.st_size);
  if (size < header_len) return std::string("journal shorter than its header");
  std::string head(header_len, '\0');
  if (absl::Status s = PreadFull(j.get(), 0, head.data(), header_len, plan.journal_path); !s.ok())
    return s;
  size_t parsed_len = 0;
  absl::StatusOr<mbox::JournalHeader> h = mbox::ParseJournalHeader(head, &parsed_len);
  if (!h.ok()) return std::string(h.status().message());
  const mbox::JournalHeader want = HeaderOf(plan);
  if (!(*h == want)) return std::string("the journal's header does not match the plan");
  if (size != header_len + (want.new_size - want.start)) {
    return std::string("the journal has the wrong length");
  }
  absl::StatusOr<Hash128> ih = HashRange(j.get(), {header_len, size}, plan.journal_path);
  if (!ih.ok()) return ih.status();
  if (!(*ih == want.image_hash)) return std::string("the journal's image hash does not match");
  return std::string();
}

absl::StatusOr<std::string> Expunger::CheckMailbox(const ExpungePlanRecord& plan, int fd,
                                                   uint64_t* size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoToStatus(errno, "fstat " + plan.mailbox_path);
  *size = static_cast<uint64_t>(st.st_size);
  if (st.st_dev != plan.device || st.st_ino != plan.inode) {
    return std::string("the mailbox is a different file (device/inode) now");
  }
  if (*size < plan.new_size) {
    return absl::StrCat("the mailbox is shorter (", *size, ") than the plan's result (",
                        plan.new_size, ")");
  }
  absl::StatusOr<Hash128> prefix = HashRange(fd, PrefixRange(plan.start), plan.mailbox_path);
  if (!prefix.ok()) return prefix.status();
  if (!(*prefix == plan.prefix_hash)) {
    return std::string("the bytes before the rewritten region changed");
  }
  return std::string();
}

absl::StatusOr<bool> Expunger::WasTruncated(const ExpungePlanRecord& plan, int fd, uint64_t size) {
  // Before the truncate the old file's last bytes past the new end are still there (the
  // rewrite never writes past new_size, MDAs only append).
  if (size < plan.old_size) return true;
  absl::StatusOr<Hash128> tail =
      HashRange(fd, mbox::OldTailRange(plan.new_size, plan.old_size), plan.mailbox_path);
  if (!tail.ok()) return tail.status();
  return !(*tail == plan.old_tail_hash);
}

absl::StatusOr<Expunger::RecoveryReport> Expunger::CloseCompleted(const ExpungePlanRecord& plan,
                                                                  int fd, uint64_t size) {
  // The image was fsync'ed before the truncate: the file must hold it. Anything after the new
  // end arrived later and stays.
  absl::StatusOr<Hash128> ih = HashRange(fd, {plan.start, plan.new_size}, plan.mailbox_path);
  if (!ih.ok()) return ih.status();
  if (!(*ih == plan.image_hash)) {
    return Rejected(plan, "the mailbox was truncated but does not hold the journal's image");
  }
  if (absl::Status s = Finish(plan.id, plan.journal_path); !s.ok()) return s;
  RecoveryReport out;
  out.outcome = Recovery::kAlreadyComplete;
  out.detail = absl::StrCat("plan ", plan.id, " for ", plan.mailbox_path, " had completed",
                            size > plan.new_size ? absl::StrCat(" (", size - plan.new_size,
                                                                " bytes delivered since kept)")
                                                 : std::string());
  return out;
}

absl::StatusOr<ExpungePlanRecord> Expunger::FoldAppended(const ExpungePlanRecord& plan, int fd,
                                                         uint64_t size, lock::MailboxLock* lock) {
  // The new journal's image: the old image, then the bytes appended to the mailbox.
  mbox::JournalHeader h = HeaderOf(plan);
  h.old_size = size;
  h.new_size = plan.new_size + (size - plan.old_size);
  absl::StatusOr<Hash128> tail =
      HashRange(fd, mbox::OldTailRange(h.new_size, h.old_size), plan.mailbox_path);
  if (!tail.ok()) return tail.status();
  h.old_tail_hash = *tail;
  UniqueFd j(::open(plan.journal_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!j.valid()) return ErrnoToStatus(errno, "open journal " + plan.journal_path);
  const uint64_t image_len = plan.new_size - plan.start;
  absl::StatusOr<Written> w =
      WriteJournal({{j.get(), {HeaderLength(), HeaderLength() + image_len}, plan.journal_path},
                    {fd, {plan.old_size, size}, plan.mailbox_path}},
                   h, lock);
  if (!w.ok()) return w.status();
  ExpungePlanRecord current = plan;
  current.old_size = h.old_size;
  current.new_size = h.new_size;
  current.old_tail_hash = h.old_tail_hash;
  current.image_hash = w->image_hash;
  current.journal_path = w->path;
  current.created_unix_ms = absl::ToUnixMillis(absl::Now());
  absl::StatusOr<int64_t> id = store_->ReplaceExpungePlan(plan.id, current);
  if (!id.ok()) {
    ::unlink(w->path.c_str());
    return id.status();
  }
  current.id = *id;
  ::unlink(plan.journal_path.c_str());
  return current;
}

absl::StatusOr<Expunger::RecoveryReport> Expunger::Recover(const ExpungePlanRecord& plan,
                                                           const lock::LockOptions& options) {
  // 1. The journal must be intact and say what the plan says.
  absl::StatusOr<std::string> bad = CheckJournal(plan);
  if (!bad.ok()) return bad.status();
  if (!bad->empty()) return Rejected(plan, *bad);
  // 2. Under the MDA locks, the file must be the plan's file with the plan's prefix.
  absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(plan.mailbox_path, options);
  if (absl::IsUnavailable(held.status())) {
    RecoveryReport out;
    out.outcome = Recovery::kBusy;
    out.detail = absl::StrCat("plan ", plan.id, " for ", plan.mailbox_path,
                              " waits: ", held.status().message());
    return out;
  }
  if (!held.ok()) return Rejected(plan, std::string(held.status().message()));
  const int fd = held->fd();
  uint64_t size = 0;
  bad = CheckMailbox(plan, fd, &size);
  if (!bad.ok()) return bad.status();
  if (!bad->empty()) return Rejected(plan, *bad);
  // 3. Truncated already: the rewrite was complete; only the plan is left to close.
  absl::StatusOr<bool> truncated = WasTruncated(plan, fd, size);
  if (!truncated.ok()) return truncated.status();
  if (*truncated) return CloseCompleted(plan, fd, size);
  // 4. Mail appended after the crash, to the untruncated file, is folded into a new journal
  // that replaces the plan, so that a crash during this recovery is recovered the same way.
  ExpungePlanRecord current = plan;
  if (size > plan.old_size) {
    absl::StatusOr<ExpungePlanRecord> folded = FoldAppended(plan, fd, size, &*held);
    if (!folded.ok()) return folded.status();
    current = *std::move(folded);
  }
  // 5. The redo: rewrite, truncate, close the plan.
  if (absl::Status s = Replay(current.journal_path, HeaderOf(current), fd, &*held, "recovery");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Finish(current.id, current.journal_path); !s.ok()) return s;
  RecoveryReport out;
  out.outcome = Recovery::kReplayed;
  out.detail = absl::StrCat(
      "plan ", plan.id, " for ", plan.mailbox_path, " replayed",
      size > plan.old_size
          ? absl::StrCat(" (", size - plan.old_size, " bytes delivered since the crash kept)")
          : std::string());
  return out;
}

absl::StatusOr<int> Expunger::RemoveOrphanJournals() {
  absl::StatusOr<std::vector<ExpungePlanRecord>> open = store_->OpenExpungePlans();
  if (!open.ok()) return open.status();
  std::set<std::string> keep;
  for (const ExpungePlanRecord& p : *open) keep.insert(p.journal_path);
  DIR* d = ::opendir(journal_dir_.c_str());
  if (d == nullptr) return ErrnoToStatus(errno, "open directory " + journal_dir_);
  int removed = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!name.ends_with(".journal")) continue;
    std::string path = absl::StrCat(journal_dir_, "/", name);
    if (keep.contains(path)) continue;
    if (::unlink(path.c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

}  // namespace poplar::indexer

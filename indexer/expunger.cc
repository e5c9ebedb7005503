#include "indexer/expunger.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/util/fault.h"
#include "common/util/file_io.h"
#include "common/util/strings.h"
#include "common/util/unique_fd.h"

namespace poplar::indexer {
namespace {

constexpr size_t kChunk = 4 << 20;
// Refresh the dotlock well within every MDA's stale rule (the shortest is Dovecot's 2 min).
constexpr absl::Duration kTouchEvery = absl::Seconds(30);

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(Absl(what), " ", path, ": ", std::strerror(errno)));
}

absl::Status PreadFull(int fd, uint64_t offset, char* buf, size_t n, const std::string& what) {
  const ssize_t r = PreadAll(fd, offset, buf, n);
  if (r < 0) return Errno("read", what);
  if (static_cast<size_t>(r) < n)
    return absl::DataLossError(absl::StrCat(what, " is shorter than expected"));
  return absl::OkStatus();
}

absl::Status PwriteFull(int fd, uint64_t offset, const char* buf, size_t n,
                        const std::string& what) {
  if (PwriteAll(fd, offset, buf, n) < 0) return Errno("write", what);
  return absl::OkStatus();
}

absl::StatusOr<Hash128> HashRange(int fd, mbox::ByteRange r, const std::string& what) {
  Xxh3Stream h;
  std::string buf;
  for (uint64_t pos = r.begin; pos < r.end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, r.end - pos));
    buf.resize(n);
    if (absl::Status s = PreadFull(fd, pos, buf.data(), n, what); !s.ok()) return s;
    h.Update(buf);
    pos += n;
  }
  return h.Digest();
}

mbox::ByteRange PrefixRange(uint64_t start) {
  return {start - std::min<uint64_t>(start, mbox::kPrefixHashBytes), start};
}

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return Errno("open directory", dir);
  if (::fsync(d.get()) != 0) return Errno("fsync directory", dir);
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
      std::cerr << "poplar-indexer: expunge: cannot refresh the dotlock: " << s << "\n";
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
    return Errno("create the expunge journal directory", journal_dir_);
  }
  struct stat st {};
  if (::stat(journal_dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(journal_dir_, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Expunger::Written> Expunger::WriteJournal(int src_fd,
                                                         const std::vector<mbox::ByteRange>& ranges,
                                                         mbox::JournalHeader header,
                                                         lock::MailboxLock* lock) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  Written w;
  w.path = absl::StrCat(journal_dir_, "/", header.device, "-", header.inode, "-",
                        absl::ToUnixNanos(absl::Now()), "-", rng() % 1000000, ".journal");
  UniqueFd fd(::open(w.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return Errno("create journal", w.path);
  auto fail = [&](absl::Status s) -> absl::Status {
    ::unlink(w.path.c_str());
    return s;
  };
  const size_t header_len = HeaderLength();
  Xxh3Stream hash;
  Toucher toucher{lock};
  std::string buf;
  uint64_t out = header_len;
  for (const mbox::ByteRange& r : ranges) {
    for (uint64_t pos = r.begin; pos < r.end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, r.end - pos));
      buf.resize(n);
      if (absl::Status s = PreadFull(src_fd, pos, buf.data(), n, "mailbox"); !s.ok())
        return fail(s);
      hash.Update(buf);
      if (absl::Status s = PwriteFull(fd.get(), out, buf.data(), n, w.path); !s.ok())
        return fail(s);
      StartWriteback(fd.get(), out, n);
      pos += n;
      out += n;
      toucher.Maybe();
    }
  }
  w.image_hash = hash.Digest();
  header.image_hash = w.image_hash;
  const std::string text = mbox::FormatJournalHeader(header);
  if (absl::Status s = PwriteFull(fd.get(), 0, text.data(), text.size(), w.path); !s.ok())
    return fail(s);
  if (::fsync(fd.get()) != 0) return fail(Errno("fsync", w.path));
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
  if (!j.valid()) return Errno("open journal", journal_path);
  const uint64_t image = h.new_size - h.start;
  const uint64_t half = image / 2;
  const size_t header_len = HeaderLength();
  Toucher toucher{lock};
  std::string buf;
  bool mid_done = false;
  for (uint64_t pos = 0; pos < image;) {
    if (!mid_done && pos >= half) {
      mid_done = true;
      fault("mid_rewrite");
    }
    uint64_t limit = pos < half ? half : image;  // stop at half-way once, for the fault point
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, limit - pos));
    buf.resize(n);
    if (absl::Status s = PreadFull(j.get(), header_len + pos, buf.data(), n, journal_path);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = PwriteFull(fd, h.start + pos, buf.data(), n, "mailbox"); !s.ok()) return s;
    StartWriteback(fd, h.start + pos, n);
    pos += n;
    toucher.Maybe();
  }
  if (!mid_done) fault("mid_rewrite");
  if (::fdatasync(fd) != 0) return Errno("fdatasync", "mailbox");
  fault("before_truncate");
  if (::ftruncate(fd, static_cast<off_t>(h.new_size)) != 0) return Errno("ftruncate", "mailbox");
  if (::fsync(fd) != 0) return Errno("fsync", "mailbox");
  fault("after_truncate");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Expunger::Compact(const std::string& path, lock::MailboxLock& lock,
                                          const mbox::CompactionPlan& plan, absl::Mutex* store_mu) {
  struct stat st {};
  if (::fstat(lock.fd(), &st) != 0) return Errno("fstat", path);
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
  absl::StatusOr<Written> w = WriteJournal(lock.fd(), plan.keep, h, &lock);
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

absl::StatusOr<Expunger::RecoveryReport> Expunger::Recover(const ExpungePlanRecord& plan,
                                                           const lock::LockOptions& options) {
  RecoveryReport out;
  const mbox::JournalHeader want = HeaderOf(plan);
  // 1. The journal must be intact and say what the plan says.
  {
    UniqueFd j(::open(plan.journal_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!j.valid()) {
      if (absl::Status s =
              Reject(plan, absl::StrCat("journal ", plan.journal_path, " is missing"), &out);
          !s.ok())
        return s;
      return out;
    }
    const size_t header_len = HeaderLength();
    std::string head(header_len, '\0');
    struct stat jst {};
    if (::fstat(j.get(), &jst) != 0) return Errno("fstat", plan.journal_path);
    size_t parsed_len = 0;
    absl::StatusOr<mbox::JournalHeader> h =
        static_cast<size_t>(jst.st_size) < header_len
            ? absl::StatusOr<mbox::JournalHeader>(
                  absl::DataLossError("journal shorter than its header"))
            : [&]() -> absl::StatusOr<mbox::JournalHeader> {
      if (absl::Status s = PreadFull(j.get(), 0, head.data(), header_len, plan.journal_path);
          !s.ok())
        return s;
      return mbox::ParseJournalHeader(head, &parsed_len);
    }();
    std::string why;
    if (!h.ok()) {
      why = std::string(h.status().message());
    } else if (!(*h == want)) {
      why = "the journal's header does not match the plan";
    } else if (static_cast<uint64_t>(jst.st_size) != header_len + (want.new_size - want.start)) {
      why = "the journal has the wrong length";
    } else {
      absl::StatusOr<Hash128> ih =
          HashRange(j.get(), {header_len, static_cast<uint64_t>(jst.st_size)}, plan.journal_path);
      if (!ih.ok()) return ih.status();
      if (!(*ih == want.image_hash)) why = "the journal's image hash does not match";
    }
    if (!why.empty()) {
      if (absl::Status s = Reject(plan, why, &out); !s.ok()) return s;
      return out;
    }
  }
  // 2. Under the MDA locks, the file must be the plan's file with the plan's prefix.
  absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(plan.mailbox_path, options);
  if (absl::IsUnavailable(held.status())) {
    out.outcome = Recovery::kBusy;
    out.detail = absl::StrCat("plan ", plan.id, " for ", plan.mailbox_path,
                              " waits: ", held.status().message());
    return out;
  }
  if (!held.ok()) {
    if (absl::Status s = Reject(plan, std::string(held.status().message()), &out); !s.ok())
      return s;
    return out;
  }
  const int fd = held->fd();
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("fstat", plan.mailbox_path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (st.st_dev != plan.device || st.st_ino != plan.inode) {
    if (absl::Status s = Reject(plan, "the mailbox is a different file (device/inode) now", &out);
        !s.ok())
      return s;
    return out;
  }
  if (size < plan.new_size) {
    if (absl::Status s = Reject(plan,
                                absl::StrCat("the mailbox is shorter (", size,
                                             ") than the plan's result (", plan.new_size, ")"),
                                &out);
        !s.ok())
      return s;
    return out;
  }
  absl::StatusOr<Hash128> prefix = HashRange(fd, PrefixRange(plan.start), plan.mailbox_path);
  if (!prefix.ok()) return prefix.status();
  if (!(*prefix == plan.prefix_hash)) {
    if (absl::Status s = Reject(plan, "the bytes before the rewritten region changed", &out);
        !s.ok())
      return s;
    return out;
  }
  // 3. Truncated already? Before the truncate the old file's last bytes past the new end are
  // still there (the rewrite never writes past new_size, MDAs only append).
  bool truncated = true;
  if (size >= plan.old_size) {
    absl::StatusOr<Hash128> tail =
        HashRange(fd, mbox::OldTailRange(plan.new_size, plan.old_size), plan.mailbox_path);
    if (!tail.ok()) return tail.status();
    truncated = !(*tail == plan.old_tail_hash);
  }
  if (truncated) {
    // The image was fsync'ed before the truncate: the file must hold it. Anything after the
    // new end arrived later and stays.
    absl::StatusOr<Hash128> ih = HashRange(fd, {plan.start, plan.new_size}, plan.mailbox_path);
    if (!ih.ok()) return ih.status();
    if (!(*ih == plan.image_hash)) {
      if (absl::Status s =
              Reject(plan, "the mailbox was truncated but does not hold the journal's image", &out);
          !s.ok())
        return s;
      return out;
    }
    if (absl::Status s = Finish(plan.id, plan.journal_path); !s.ok()) return s;
    out.outcome = Recovery::kAlreadyComplete;
    out.detail = absl::StrCat("plan ", plan.id, " for ", plan.mailbox_path, " had completed",
                              size > plan.new_size ? absl::StrCat(" (", size - plan.new_size,
                                                                  " bytes delivered since kept)")
                                                   : std::string());
    return out;
  }
  ExpungePlanRecord current = plan;
  if (size > plan.old_size) {
    // Mail appended after the crash, to the untruncated file: fold it into a new journal (old
    // image + the appended bytes) and replace the plan, so that a crash during this recovery is
    // recovered the same way.
    mbox::JournalHeader h = want;
    h.old_size = size;
    h.new_size = plan.new_size + (size - plan.old_size);
    absl::StatusOr<Hash128> tail =
        HashRange(fd, mbox::OldTailRange(h.new_size, h.old_size), plan.mailbox_path);
    if (!tail.ok()) return tail.status();
    h.old_tail_hash = *tail;
    // Source ranges: the old journal's image, then the appended bytes of the mailbox.
    UniqueFd j(::open(plan.journal_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!j.valid()) return Errno("open journal", plan.journal_path);
    // WriteJournal reads from one fd: copy the image first into the new journal, then append.
    absl::StatusOr<Written> w = WriteJournal(
        j.get(), {{HeaderLength(), HeaderLength() + (plan.new_size - plan.start)}}, h, &*held);
    if (!w.ok()) return w.status();
    {
      // Append the delivered bytes and fix the header (hash over image + appended).
      UniqueFd nj(::open(w->path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
      if (!nj.valid()) return Errno("open journal", w->path);
      Xxh3Stream hash;
      std::string buf;
      const uint64_t image_len = plan.new_size - plan.start;
      for (uint64_t pos = 0; pos < image_len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, image_len - pos));
        buf.resize(n);
        if (absl::Status s = PreadFull(nj.get(), HeaderLength() + pos, buf.data(), n, w->path);
            !s.ok())
          return s;
        hash.Update(buf);
        pos += n;
      }
      uint64_t out_pos = HeaderLength() + image_len;
      for (uint64_t pos = plan.old_size; pos < size;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - pos));
        buf.resize(n);
        if (absl::Status s = PreadFull(fd, pos, buf.data(), n, plan.mailbox_path); !s.ok())
          return s;
        hash.Update(buf);
        if (absl::Status s = PwriteFull(nj.get(), out_pos, buf.data(), n, w->path); !s.ok())
          return s;
        pos += n;
        out_pos += n;
      }
      h.image_hash = hash.Digest();
      const std::string text = mbox::FormatJournalHeader(h);
      if (absl::Status s = PwriteFull(nj.get(), 0, text.data(), text.size(), w->path); !s.ok())
        return s;
      if (::fsync(nj.get()) != 0) return Errno("fsync", w->path);
    }
    current.old_size = h.old_size;
    current.new_size = h.new_size;
    current.old_tail_hash = h.old_tail_hash;
    current.image_hash = h.image_hash;
    current.journal_path = w->path;
    current.created_unix_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<int64_t> id = store_->ReplaceExpungePlan(plan.id, current);
    if (!id.ok()) {
      ::unlink(w->path.c_str());
      return id.status();
    }
    current.id = *id;
    ::unlink(plan.journal_path.c_str());
  }
  if (absl::Status s = Replay(current.journal_path, HeaderOf(current), fd, &*held, "recovery");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Finish(current.id, current.journal_path); !s.ok()) return s;
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
  if (d == nullptr) return Errno("open directory", journal_dir_);
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

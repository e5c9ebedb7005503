// popd's RETR/TOP byte source against a real mbox: exact wire bytes at any chunk size, bounded
// output per call, and an error (never other bytes) when the file is not the snapshot's.
#include "popd/message_stream.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "common/pop3/wire_transform.h"
#include "gtest/gtest.h"
#include "tests/component/snapshot_testing.h"
#include "tests/component/temp_dir.h"

namespace poplar::popd {
namespace {

using testing::TempDir;
using testing::WriteFile;

// The indexer's snapshot for `mbox` stored at `path`, with the file's real identity.
v1::Snapshot SnapshotOf(const std::string& mbox, const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return testing::SnapshotOf(mbox, path, st.st_dev, st.st_ino);
}

// Writes `mbox` to a file in `dir` and returns the view of its snapshot.
MaildropView ViewOf(const TempDir& dir, const std::string& mbox) {
  const std::string path = dir.File("alice");
  WriteFile(path, mbox);
  absl::StatusOr<MaildropView> v = MakeMaildropView(SnapshotOf(mbox, path));
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *std::move(v) : MaildropView{};
}

std::string Wire(std::string_view stored, std::optional<uint64_t> top_lines = std::nullopt) {
  pop3::WireTransform t(pop3::WireTransform::Options{.top_lines = top_lines});
  std::string out;
  t.Feed(stored, &out);
  t.Finish(true, &out);
  return out;
}

// Everything the stream gives until done, or its error.
absl::StatusOr<std::string> Drain(MessageStream& s, size_t max_bytes) {
  std::string all;
  for (int calls = 0; !s.done(); ++calls) {
    if (calls > 100'000'000) return absl::InternalError("stream never ends");
    absl::Status st = s.Next(&all, max_bytes);
    if (!st.ok()) return st;
  }
  return all;
}

// Stored bytes with CRLF made LF and a final LF ensured: what a decoded message compares to.
std::string Lf(std::string s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out.push_back(s[i]);
  }
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

const std::string kMbox =
    "From a@example.org Thu Nov 26 10:00:00 2026\n"
    "Subject: dots\n\n.\n..\n.leading dot\nline\n\n"
    "From b@example.org Thu Nov 26 10:00:01 2026\n"
    "Subject: crlf\r\nX: y\r\n\r\nbody one\r\n.\r\nbody two\r\nbare\rcr\n\n"
    "From c@example.org Thu Nov 26 10:00:02 2026\n"
    "Subject: escaped\n\n>From the start\n" +
    std::string(5000, 'x') +
    "\nend\n\n"
    "From d@example.org Thu Nov 26 10:00:03 2026\n"
    "Subject: no final newline\n\nfirst\nsecond\nthird";

TEST(MessageStream, RetrIsTheWireFormAtAnyChunkSize) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  ASSERT_EQ(v.messages.size(), 4u);
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  for (size_t i = 0; i < v.messages.size(); ++i) {
    const MessageLocation& m = v.messages[i];
    const std::string stored = kMbox.substr(m.data_offset, m.length);
    for (size_t max : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
      SCOPED_TRACE(absl::StrCat("message ", i + 1, ", max_bytes ", max));
      MessageStream s(*f, m, std::nullopt, v.maildrop.octets[i]);
      absl::StatusOr<std::string> wire = Drain(s, max);
      ASSERT_TRUE(wire.ok()) << wire.status();
      EXPECT_EQ(*wire, Wire(stored));
      std::optional<std::string> decoded = pop3::DecodeMultiline(*wire);
      ASSERT_TRUE(decoded.has_value());
      EXPECT_EQ(Lf(*decoded), Lf(stored));
      std::string more;
      EXPECT_TRUE(s.Next(&more, max).ok());  // done: a no-op
      EXPECT_EQ(more, "");
    }
  }
}

TEST(MessageStream, Top) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  ASSERT_EQ(v.messages.size(), 4u);
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  for (size_t i = 0; i < v.messages.size(); ++i) {
    const MessageLocation& m = v.messages[i];
    const std::string stored = kMbox.substr(m.data_offset, m.length);
    for (uint64_t n : {uint64_t{0}, uint64_t{2}, uint64_t{1} << 40}) {
      for (size_t max : {size_t{1}, size_t{7}, size_t{4096}}) {
        SCOPED_TRACE(absl::StrCat("message ", i + 1, ", TOP ", n, ", max_bytes ", max));
        MessageStream s(*f, m, n, /*expected_octets=*/0);  // ignored for TOP
        absl::StatusOr<std::string> wire = Drain(s, max);
        ASSERT_TRUE(wire.ok()) << wire.status();
        EXPECT_EQ(*wire, Wire(stored, n));
        ASSERT_TRUE(pop3::DecodeMultiline(*wire).has_value());
        if (n == 0) {
          EXPECT_EQ(Lf(*pop3::DecodeMultiline(*wire)), Lf(stored.substr(0, m.header_length)));
        }
        if (n == uint64_t{1} << 40) {
          EXPECT_EQ(*wire, Wire(stored));
        }
      }
    }
  }
  // TOP 2 of the first message: headers, the empty line, ".." and "..." stuffed.
  MessageStream s(*f, v.messages[0], 2, 0);
  EXPECT_EQ(*Drain(s, 3), "Subject: dots\r\n\r\n..\r\n...\r\n.\r\n");
}

TEST(MessageStream, BigMessageIsStreamedInBoundedPieces) {
  std::string body;
  for (int i = 0; body.size() < 5'000'000; ++i) {
    // Dots to stuff, bare LFs to widen, CRLFs to keep, and lines of every length.
    body += (i % 3 == 0) ? "." : "";
    body += std::string(static_cast<size_t>(i % 97), static_cast<char>('a' + i % 26));
    body += (i % 5 == 0) ? "\r\n" : "\n";
    if (i % 1000 == 0) body += std::string(3000, '\n');
  }
  const std::string mbox = "From big@example.org Thu Nov 26 10:00:00 2026\nSubject: big\n\n" + body;
  TempDir dir;
  const MaildropView v = ViewOf(dir, mbox);
  ASSERT_EQ(v.messages.size(), 1u);
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  const size_t max = 64 * 1024;
  MessageStream s(*f, v.messages[0], std::nullopt, v.maildrop.octets[0]);
  std::string all;
  int calls = 0;
  while (!s.done()) {
    std::string out;  // what the connection would write, then drop
    ASSERT_TRUE(s.Next(&out, max).ok());
    ASSERT_LE(out.size(), 2 * max + 5);
    all += out;
    ++calls;
  }
  EXPECT_GE(calls, static_cast<int>(v.messages[0].length / max));
  EXPECT_EQ(all, Wire(mbox.substr(v.messages[0].data_offset, v.messages[0].length)));
}

TEST(MessageStream, AppendsAfterLoginAreHarmless) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  testing::AppendFile(v.mailbox_path, "\nFrom e@example.org Thu Nov 26 11:00:00 2026\n\nnew\n");
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  MessageStream s(*f, v.messages[3], std::nullopt, v.maildrop.octets[3]);
  absl::StatusOr<std::string> wire = Drain(s, 4096);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_EQ(*wire, Wire(kMbox.substr(v.messages[3].data_offset, v.messages[3].length)));
}

// Issue 15: a careful MDA completes the last line ("\n"), writes the empty line and delivers. The
// next session's snapshot has the old last message with the same identity, size and UIDL, and
// RETR of it in either session sends the same bytes and passes the content-hash check.
TEST(MessageStream, CompletingTheLastLineChangesNothingForTheNextSession) {
  TempDir dir;
  const MaildropView before = ViewOf(dir, kMbox);
  testing::AppendFile(before.mailbox_path,
                      "\n\nFrom e@example.org Thu Nov 26 11:00:00 2026\n\nnew\n\n");
  const std::string now = kMbox + "\n\nFrom e@example.org Thu Nov 26 11:00:00 2026\n\nnew\n\n";
  absl::StatusOr<MaildropView> after = MakeMaildropView(SnapshotOf(now, before.mailbox_path));
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->messages.size(), 5u);
  EXPECT_EQ(after->messages[3].content_hash, before.messages[3].content_hash);
  EXPECT_EQ(after->maildrop.octets[3], before.maildrop.octets[3]);
  EXPECT_EQ(after->maildrop.uidls[3], before.maildrop.uidls[3]);
  EXPECT_EQ(after->messages[3].length, before.messages[3].length + 1);
  std::string sent[2];
  int i = 0;
  for (const MaildropView* v : {&before, static_cast<const MaildropView*>(&*after)}) {
    absl::StatusOr<MailboxFile> f = MailboxFile::Open(*v);
    ASSERT_TRUE(f.ok()) << f.status();
    MessageStream s(*f, v->messages[3], std::nullopt, v->maildrop.octets[3]);
    absl::StatusOr<std::string> wire = Drain(s, 7);
    ASSERT_TRUE(wire.ok()) << wire.status();
    sent[i++] = *wire;
  }
  EXPECT_EQ(sent[0], sent[1]);
  EXPECT_EQ(sent[0], "Subject: no final newline\r\n\r\nfirst\r\nsecond\r\nthird\r\n.\r\n");
}

TEST(MessageStream, ReplacedFileIsRefused) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  const std::string other = dir.File("other");
  WriteFile(other, kMbox);  // same bytes, another inode
  ASSERT_EQ(std::rename(other.c_str(), v.mailbox_path.c_str()), 0);
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  EXPECT_TRUE(absl::IsUnavailable(f.status())) << f.status();
}

TEST(MessageStream, ShorterOrMissingFileIsRefused) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  ASSERT_EQ(::truncate(v.mailbox_path.c_str(), static_cast<off_t>(v.covered_size - 1)), 0);
  EXPECT_TRUE(absl::IsUnavailable(MailboxFile::Open(v).status()));
  ASSERT_EQ(::unlink(v.mailbox_path.c_str()), 0);
  EXPECT_TRUE(absl::IsUnavailable(MailboxFile::Open(v).status()));
}

TEST(MessageStream, SymlinkIsRefused) {
  TempDir dir;
  MaildropView v = ViewOf(dir, kMbox);
  // The link leads to the right file (its stat() identity matches); O_NOFOLLOW still refuses.
  const std::string link = dir.File("link");
  ASSERT_EQ(::symlink(v.mailbox_path.c_str(), link.c_str()), 0);
  v.mailbox_path = link;
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  EXPECT_TRUE(absl::IsUnavailable(f.status())) << f.status();
}

TEST(MessageStream, DirectoryIsRefused) {
  TempDir dir;
  MaildropView v = ViewOf(dir, kMbox);
  v.mailbox_path = dir.path();
  EXPECT_TRUE(absl::IsUnavailable(MailboxFile::Open(v).status()));
}

TEST(MessageStream, TruncatedWhileStreamingIsUnavailable) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  const MessageLocation& m = v.messages[2];
  MessageStream s(*f, m, std::nullopt, v.maildrop.octets[2]);
  std::string out;
  ASSERT_TRUE(s.Next(&out, 100).ok());
  ASSERT_EQ(::truncate(v.mailbox_path.c_str(), static_cast<off_t>(m.data_offset + 150)), 0);
  absl::Status st = absl::OkStatus();
  while (st.ok() && !s.done()) st = s.Next(&out, 100);
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_FALSE(s.done());
  EXPECT_TRUE(absl::IsUnavailable(s.Next(&out, 100)));  // stays failed
  EXPECT_EQ(out.find("\r\n.\r\n"), std::string::npos);
}

TEST(MessageStream, BytesChangedInPlaceIsDataLoss) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  // Same file, same size, but an 'x' of message 3 becomes a bare LF: one more octet on the wire.
  std::string changed = kMbox;
  const size_t at = kMbox.find("xxxx");
  ASSERT_NE(at, std::string::npos);
  changed[at + 10] = '\n';
  WriteFile(v.mailbox_path, changed);  // truncates and rewrites: same inode
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  for (size_t max : {size_t{1}, size_t{4096}}) {
    MessageStream s(*f, v.messages[2], std::nullopt, v.maildrop.octets[2]);
    std::string out;
    absl::Status st = absl::OkStatus();
    while (st.ok() && !s.done()) st = s.Next(&out, max);
    EXPECT_TRUE(absl::IsDataLoss(st)) << st;
    EXPECT_FALSE(s.done());
    EXPECT_FALSE(out.ends_with("\r\n.\r\n"));  // the client never sees a complete response
  }
  // The untouched messages still stream.
  MessageStream s(*f, v.messages[0], std::nullopt, v.maildrop.octets[0]);
  EXPECT_TRUE(Drain(s, 7).ok());
}

TEST(MessageStream, SameSizeRewriteInPlaceIsCaughtByTheContentHash) {
  TempDir dir;
  const MaildropView v = ViewOf(dir, kMbox);
  // Same file, same size, same line structure, one letter of message 3 changed: sizes and
  // octets all still match; only the content hash can tell.
  std::string changed = kMbox;
  const size_t at = kMbox.find("xxxx");
  ASSERT_NE(at, std::string::npos);
  changed[at + 10] = 'y';
  WriteFile(v.mailbox_path, changed);
  absl::StatusOr<MailboxFile> f = MailboxFile::Open(v);
  ASSERT_TRUE(f.ok()) << f.status();
  for (size_t max : {size_t{1}, size_t{5}, size_t{4096}}) {
    MessageStream s(*f, v.messages[2], std::nullopt, v.maildrop.octets[2]);
    std::string out;
    absl::Status st = absl::OkStatus();
    while (st.ok() && !s.done()) st = s.Next(&out, max);
    EXPECT_TRUE(absl::IsDataLoss(st)) << st;
    EXPECT_FALSE(out.ends_with("\r\n.\r\n"));
  }
  // A changed From_ line (not sent, but part of the message's identity) is caught as well.
  std::string from_changed = kMbox;
  const size_t from = v.messages[1].from_offset + 5;  // inside "From sender..."
  from_changed[from] = from_changed[from] == 'a' ? 'b' : 'a';
  WriteFile(v.mailbox_path, from_changed);
  MessageStream s2(*f, v.messages[1], std::nullopt, v.maildrop.octets[1]);
  EXPECT_TRUE(absl::IsDataLoss(Drain(s2, 4096).status()));
  // TOP reads only part of a message and is not checked against the hash; it still streams.
  MessageStream top(*f, v.messages[1], uint64_t{0}, 0);
  EXPECT_TRUE(Drain(top, 4096).ok());
  // Every message of the unchanged file passes.
  WriteFile(v.mailbox_path, kMbox);
  for (size_t i = 0; i < v.messages.size(); ++i) {
    MessageStream s(*f, v.messages[i], std::nullopt, v.maildrop.octets[i]);
    EXPECT_TRUE(Drain(s, 3).ok()) << i;
  }
}

}  // namespace
}  // namespace poplar::popd

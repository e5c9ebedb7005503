// The expunge's pure half: which bytes survive (checked by applying the plan to real mbox
// texts and re-scanning them strictly), offset mapping, and the journal header format.
#include "common/mbox/expunge_plan.h"

#include <string>
#include <vector>

#include "common/mbox/scanner.h"
#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

std::string Msg(int i, std::string_view eol = "\n") {
  std::string s = "From a" + std::to_string(i) + "@example.org  Thu Nov 26 10:00:00 2026" +
                  std::string(eol) + "Subject: m" + std::to_string(i) + std::string(eol) +
                  std::string(eol) + "body " + std::to_string(i) + std::string(eol);
  return s;
}

ScanResult Scan(std::string_view bytes) {
  return ScanMbox(bytes, 0, ScanOptions{.final = true, .trust_content_length = false});
}

// The mbox after applying `plan` to `old` (what the journal replay writes).
std::string Apply(const std::string& old, const CompactionPlan& plan) {
  std::string out = old.substr(0, plan.start);
  for (const ByteRange& r : plan.keep) out += old.substr(r.begin, r.size());
  EXPECT_EQ(out.size(), plan.new_size);
  return out;
}

// Deletes `deleted` (indices) from `mbox`, then checks the result parses into exactly the
// kept messages with identical bytes, and that MapOffset points at each kept From_ line.
void CheckDeletion(const std::string& mbox, const std::vector<size_t>& deleted) {
  SCOPED_TRACE(testing::Message() << "deleting " << deleted.size() << " of mbox size "
                                  << mbox.size());
  ScanResult before = Scan(mbox);
  std::vector<uint64_t> offsets;
  for (const MessageInfo& m : before.messages) offsets.push_back(m.offset);
  absl::StatusOr<CompactionPlan> plan = PlanCompaction(offsets, mbox.size(), deleted);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::string after = Apply(mbox, *plan);
  ScanResult now = Scan(after);
  // No new anomaly (leading garbage stays where it was, untouched).
  EXPECT_EQ(now.anomalies, before.anomalies) << "the compaction changed how the mbox parses";
  std::vector<const MessageInfo*> kept;
  for (size_t i = 0, d = 0; i < before.messages.size(); ++i) {
    if (d < deleted.size() && deleted[d] == i) {
      ++d;
      continue;
    }
    kept.push_back(&before.messages[i]);
  }
  ASSERT_EQ(now.messages.size(), kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(now.messages[i].content_hash, kept[i]->content_hash) << "message " << i;
    EXPECT_EQ(after.substr(now.messages[i].data_offset, now.messages[i].length()),
              mbox.substr(kept[i]->data_offset, kept[i]->length()));
    EXPECT_EQ(MapOffset(*plan, kept[i]->offset), now.messages[i].offset);
    EXPECT_EQ(MapOffset(*plan, kept[i]->data_offset), now.messages[i].data_offset);
  }
  for (size_t d : deleted) EXPECT_EQ(MapOffset(*plan, before.messages[d].offset), std::nullopt);
  EXPECT_EQ(plan->deleted_messages, deleted.size());
  EXPECT_EQ(plan->bytes_removed(), mbox.size() - after.size());
}

// Every subset of a 4-message mailbox, in each file shape that matters.
TEST(ExpungePlanTest, EverySubsetInEveryShape) {
  std::vector<std::pair<std::string, std::string>> shapes;
  std::string lf = Msg(1) + "\n" + Msg(2) + "\n" + Msg(3) + "\n" + Msg(4) + "\n";
  shapes.push_back({"lf", lf});
  shapes.push_back({"no trailing blank line", lf.substr(0, lf.size() - 1)});
  shapes.push_back({"no final newline", lf.substr(0, lf.size() - 2)});
  std::string crlf = Msg(1, "\r\n") + "\r\n" + Msg(2, "\r\n") + "\r\n" + Msg(3, "\r\n") + "\r\n" +
                     Msg(4, "\r\n") + "\r\n";
  shapes.push_back({"crlf", crlf});
  shapes.push_back({"crlf without trailing blank line", crlf.substr(0, crlf.size() - 2)});
  shapes.push_back({"several blank lines between",
                    Msg(1) + "\n\n\n" + Msg(2) + "\n" + Msg(3) + "\n\n" + Msg(4)});
  shapes.push_back({"leading garbage", "garbage line\n\n" + lf});
  shapes.push_back({"empty messages", std::string("From a@b  Thu Nov 26 10:00:00 2026\n\n") +
                                          "From a@b  Thu Nov 26 10:00:01 2026\n\n" + Msg(3) + "\n" +
                                          "From a@b  Thu Nov 26 10:00:02 2026\n"});
  for (const auto& [name, mbox] : shapes) {
    SCOPED_TRACE(name);
    ASSERT_EQ(Scan(mbox).messages.size(), 4u);
    for (unsigned mask = 1; mask < 16; ++mask) {
      std::vector<size_t> del;
      for (size_t i = 0; i < 4; ++i) {
        if (mask & (1u << i)) del.push_back(i);
      }
      CheckDeletion(mbox, del);
    }
  }
}

TEST(ExpungePlanTest, RangesForFirstLastAllAndAdjacent) {
  // Segments: [0,10) [10,25) [25,40) [40,50)
  const std::vector<uint64_t> off = {0, 10, 25, 40};
  auto p = PlanCompaction(off, 50, {0});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->start, 0u);
  EXPECT_EQ(p->keep, (std::vector<ByteRange>{{10, 50}}));  // one merged copy
  EXPECT_EQ(p->new_size, 40u);
  p = PlanCompaction(off, 50, {3});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->start, 40u);
  EXPECT_TRUE(p->keep.empty());
  EXPECT_EQ(p->new_size, 40u);
  EXPECT_EQ(p->image_size(), 0u);
  p = PlanCompaction(off, 50, {0, 1, 2, 3});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->new_size, 0u);  // emptied: truncated to zero, not removed
  p = PlanCompaction(off, 50, {1, 2});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->start, 10u);
  EXPECT_EQ(p->keep, (std::vector<ByteRange>{{40, 50}}));
  p = PlanCompaction(off, 50, {0, 2});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->keep, (std::vector<ByteRange>{{10, 25}, {40, 50}}));
  EXPECT_EQ(MapOffset(*p, 12), 2u);
  EXPECT_EQ(MapOffset(*p, 41), 16u);
  EXPECT_EQ(MapOffset(*p, 50), 25u);
  EXPECT_EQ(MapOffset(*p, 30), std::nullopt);
}

TEST(ExpungePlanTest, AppendedMailIsKeptByteExact) {
  // The snapshot had 2 messages; a third (and a half-written tail the scan does not return)
  // arrived before the locks were taken. The appended bytes are after the first deleted byte,
  // so they are part of the kept ranges.
  std::string mbox = Msg(1) + "\n" + Msg(2) + "\n" + Msg(3) + "\n";
  CheckDeletion(mbox, {0});
  CheckDeletion(mbox, {1});
  auto p = PlanCompaction({0, 100}, 180, {0});  // bytes [150,180) are not a message yet
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->keep, (std::vector<ByteRange>{{100, 180}}));
}

TEST(ExpungePlanTest, RejectsInconsistentInput) {
  EXPECT_FALSE(PlanCompaction({0, 10}, 20, {}).ok());
  EXPECT_FALSE(PlanCompaction({0, 10}, 20, {2}).ok());
  EXPECT_FALSE(PlanCompaction({0, 10}, 20, {1, 1}).ok());
  EXPECT_FALSE(PlanCompaction({0, 10}, 20, {1, 0}).ok());
  EXPECT_FALSE(PlanCompaction({10, 10}, 20, {0}).ok());
  EXPECT_FALSE(PlanCompaction({0, 30}, 20, {0}).ok());
}

TEST(JournalHeaderTest, RoundTripAndRejects) {
  JournalHeader h;
  h.device = 2049;
  h.inode = 123456789;
  h.start = 100;
  h.old_size = 5000;
  h.new_size = 4000;
  h.prefix_hash = Xxh3_128("prefix");
  h.old_tail_hash = Xxh3_128("tail");
  h.image_hash = Xxh3_128("image");
  const std::string text = FormatJournalHeader(h);
  size_t len = 0;
  auto back = ParseJournalHeader(text + "IMAGE BYTES", &len);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, h);
  EXPECT_EQ(len, text.size());
  JournalHeader big = h;
  big.device = big.inode = big.start = big.old_size = big.new_size = 0;
  EXPECT_EQ(FormatJournalHeader(big).size(), text.size()) << "the header has one fixed length";
  // Every truncation of the header is torn, never parsed.
  for (size_t cut = 0; cut < text.size(); ++cut) {
    EXPECT_FALSE(ParseJournalHeader(text.substr(0, cut), &len).ok()) << cut;
  }
  std::string bad = text;
  bad[0] = 'X';
  EXPECT_TRUE(absl::IsDataLoss(ParseJournalHeader(bad, &len).status()));
  std::string swapped = text;
  swapped.replace(swapped.find("5000"), 4, "0050");  // new_size > old_size
  EXPECT_FALSE(ParseJournalHeader(swapped, &len).ok());
  std::string neg = text;
  neg.replace(neg.find("0100\n"), 4, "-100");
  EXPECT_FALSE(ParseJournalHeader(neg, &len).ok());
}

}  // namespace
}  // namespace poplar::mbox

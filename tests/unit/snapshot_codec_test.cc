// The snapshot's packed columns (common/mbox/snapshot_codec): what the indexer writes, popd reads
// back; what popd must refuse.
#include "common/mbox/snapshot_codec.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

std::string Hash(char c) { return std::string(kSnapshotHashBytes, c); }

struct Columns {
  std::string uidls;
  std::string hashes;
};

Columns Encode(const std::vector<std::string>& uidls) {
  Columns c;
  for (size_t i = 0; i < uidls.size(); ++i) {
    AppendUidls(&c.uidls, i, uidls[i]);
    AppendHash(&c.hashes, Hash(static_cast<char>('a' + i)));
  }
  return c;
}

TEST(SnapshotCodec, RoundTrip) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"a"},
      {"00000001.aBcD", "x"},
      {"1", "2", "3", "4", "5"},
      {std::string(70, '~'), "!", std::string(70, '!')},
  };
  for (const std::vector<std::string>& uidls : cases) {
    SCOPED_TRACE(uidls.size());
    const Columns c = Encode(uidls);
    absl::StatusOr<std::vector<std::string_view>> back = DecodeUidls(c.uidls, uidls.size());
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->size(), uidls.size());
    for (size_t i = 0; i < uidls.size(); ++i) {
      EXPECT_EQ((*back)[i], uidls[i]);
      EXPECT_EQ(HashAt(c.hashes, i), Hash(static_cast<char>('a' + i)));
    }
    EXPECT_TRUE(CheckHashes(c.hashes, uidls.size()).ok());
  }
}

TEST(SnapshotCodec, SlicesSpliceBackIntoTheSameColumn) {
  const std::vector<std::string> uidls = {"u1", "u22", "u333", "u4", "u5"};
  const Columns c = Encode(uidls);
  for (size_t cut = 0; cut <= uidls.size(); ++cut) {
    SCOPED_TRACE(cut);
    Columns spliced;
    AppendUidls(&spliced.uidls, 0, UidlSlice(c.uidls, 0, cut));
    AppendUidls(&spliced.uidls, cut, UidlSlice(c.uidls, cut, uidls.size()));
    spliced.hashes.append(HashSlice(c.hashes, 0, cut));
    spliced.hashes.append(HashSlice(c.hashes, cut, uidls.size()));
    EXPECT_EQ(spliced.uidls, c.uidls);
    EXPECT_EQ(spliced.hashes, c.hashes);
  }
  EXPECT_EQ(UidlSlice(c.uidls, 1, 3), "u22\nu333");
  EXPECT_EQ(UidlSlice(c.uidls, 4, 5), "u5");
  EXPECT_EQ(UidlSlice(c.uidls, 2, 2), "");
}

TEST(SnapshotCodec, MalformedUidlsAreRejected) {
  struct Case {
    const char* name;
    std::string column;
    size_t count;
  };
  const Case cases[] = {
      {"text for no message", "a", 0}, {"one missing", "a", 2},
      {"two missing", "a", 3},  // read past the column's end before this codec (popd threw)
      {"empty column", "", 1},         {"empty first", "\nb", 2},
      {"empty last", "a\n", 2},        {"trailing separator", "a\nb\n", 2},
      {"extra", "a\nb\nc", 2},         {"space", "a b", 1},
      {"control byte", "a\x01", 1},    {"too long", std::string(71, 'x'), 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<std::vector<std::string_view>> r = DecodeUidls(c.column, c.count);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  }
}

TEST(SnapshotCodec, MalformedHashesAreRejected) {
  struct Case {
    size_t bytes;
    size_t count;
  };
  const Case cases[] = {{15, 1}, {17, 1}, {16, 0}, {0, 1}, {32, 1}, {31, 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.bytes << " bytes for " << c.count);
    EXPECT_TRUE(absl::IsInvalidArgument(CheckHashes(std::string(c.bytes, 'h'), c.count)));
  }
}

}  // namespace
}  // namespace poplar::mbox

#include "common/pop3/uidl_list.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace poplar::pop3 {
namespace {

TEST(UidlListTest, KeepsEveryUidlApartAndInOrder) {
  const std::vector<std::vector<std::string_view>> cases = {
      {},
      {"a"},
      {"u1", "u2", "u3"},
      {"x", "a-much-longer-uidl-than-any-small-string-buffer-holds", "y"},
      {std::string_view("0123456789012345678901234567890123456789012345678901234567890123456789")},
  };
  for (const std::vector<std::string_view>& uidls : cases) {
    UidlList list;
    list.Reserve(uidls.size(), 0);
    for (std::string_view u : uidls) ASSERT_TRUE(list.Append(u));
    ASSERT_EQ(list.size(), uidls.size());
    EXPECT_EQ(list.empty(), uidls.empty());
    for (size_t i = 0; i < uidls.size(); ++i) EXPECT_EQ(list[i], uidls[i]) << i;
  }
}

TEST(UidlListTest, InitializerListAndCopy) {
  UidlList a = {"one", "two"};
  UidlList b = a;
  ASSERT_TRUE(a.Append("three"));
  EXPECT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0], "one");
  EXPECT_EQ(b[1], "two");
  EXPECT_EQ(a[2], "three");
}

TEST(UidlListTest, HundredThousandUidls) {
  UidlList list;
  std::vector<std::string> want;
  for (int i = 0; i < 100000; ++i) {
    want.push_back("uidl-" + std::to_string(i * 7919));
    ASSERT_TRUE(list.Append(want.back()));
  }
  ASSERT_EQ(list.size(), want.size());
  for (size_t i = 0; i < want.size(); i += 997) EXPECT_EQ(list[i], want[i]);
  EXPECT_EQ(list[want.size() - 1], want.back());
}

}  // namespace
}  // namespace poplar::pop3

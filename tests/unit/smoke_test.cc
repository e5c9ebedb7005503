#include "common/mbox/scanner.h"
#include "gtest/gtest.h"
TEST(Smoke, One) {
  auto r = poplar::mbox::ScanMbox("From a Thu Nov 29 22:33:52 2001\nA: b\n\nhi\n", 0, {.final = true});
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].octets, 12u);
}

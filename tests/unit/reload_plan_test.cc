// indexer/reload: what a SIGHUP applies and what it names as needing a restart (issue 14).
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "indexer/reload.h"

namespace poplar::indexer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

config::IndexerConfig Base() {
  config::IndexerConfig c;
  c.add_spools()->set_directory("/var/mail");
  c.mutable_listen()->set_unix_socket("/run/poplar/indexer.sock");
  return c;
}

TEST(ReloadPlanTest, NothingChangedNothingToDo) {
  const ReloadPlan p = PlanReload(Base(), Base());
  EXPECT_THAT(p.applied, IsEmpty());
  EXPECT_THAT(p.need_restart, IsEmpty());
}

TEST(ReloadPlanTest, LogLevelAppliesEverythingElseIsNamed) {
  config::IndexerConfig next = Base();
  next.mutable_log()->set_level("debug");
  next.set_lock_timeout_ms(5000);
  next.mutable_check_owner()->set_rule(config::OwnerCheck::OWNER_ANY);
  next.add_spools()->set_directory("/srv/mail");
  next.mutable_metrics()->set_listen_address("127.0.0.1:9110");
  const ReloadPlan p = PlanReload(Base(), next);
  EXPECT_THAT(p.applied, ElementsAre("log.level"));
  EXPECT_THAT(p.need_restart, ElementsAre("spools", "lock_timeout_ms", "check_owner.rule",
                                          "metrics.listen_address"));
}

}  // namespace
}  // namespace poplar::indexer

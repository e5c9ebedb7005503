// The shard map: validation, first-match routing, the hash fallback's stability, and loading
// from real files. (Here rather than in tests/unit because the schema is a proto, which the
// core-only build leaves out.)
#include "common/shard/shard_map.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/config/textproto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace poplar::shard {
namespace {

using ::testing::HasSubstr;

config::ShardMap Parse(const std::string& text) {
  config::ShardMap map;
  absl::Status s = config::ParseTextProto(text, "test", &map);
  EXPECT_TRUE(s.ok()) << s;
  return map;
}

// Users files served from memory.
ShardMap::ReadFile Files(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& path) -> absl::StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
    return it->second;
  };
}

std::string RouteName(const ShardMap& map, std::string_view login) {
  const Shard* s = map.Route(login);
  return s == nullptr ? "(none)" : s->name;
}

constexpr char kMap[] = R"pb(
  shard { name: "a" indexer: "unix:/run/poplar/a.sock" }
  shard { name: "b" indexer: "spool-b.example.net:7110" indexer: "[2001:db8::2]:7110" }
  shard { name: "c" indexer: "10.0.0.3:7110" hashed: false }
  rule { user: "carol" shard: "c" }
  rule { domain: "example.org" shard: "b" }
  rule { users_file: "/etc/poplar/c.users" shard: "c" }
  rule { prefix: "test-" shard: "c" }
  rule { user: "dave@example.net" shard: "a" }
)pb";

TEST(ShardMapTest, FirstMatchingRuleWinsThenTheHash) {
  absl::StatusOr<ShardMap> map = ShardMap::Build(
      Parse(kMap),
      Files({{"/etc/poplar/c.users", "# listed users\n\nerin\n  frank  \nzoe@example.org\n"}}));
  ASSERT_TRUE(map.ok()) << map.status();
  const struct {
    const char* login;
    const char* shard;
    const char* why;
  } cases[] = {
      {"carol", "c", "a user rule"},
      {"erin", "c", "a users file"},
      {"frank", "c", "a users file line with blanks around it"},
      {"alice@example.org", "b", "a domain rule"},
      {"zoe@example.org", "b", "the domain rule comes before the file listing zoe"},
      {"carol@example.org", "b", "a domain is matched exactly, not the name before it"},
      {"alice@sub.example.org", "", "a subdomain is another domain: hashed"},
      {"test-1", "c", "a prefix rule"},
      {"test", "", "shorter than the prefix: hashed"},
      {"dave@example.net", "a", "a user rule with a domain"},
  };
  for (const auto& c : cases) {
    const std::string got = RouteName(*map, c.login);
    if (*c.shard != '\0') {
      EXPECT_EQ(got, c.shard) << c.login << ": " << c.why;
    } else {
      // Hashed: only a hashed shard, and the one HashScore() prefers.
      const std::string want = HashScore("a", c.login) >= HashScore("b", c.login) ? "a" : "b";
      EXPECT_EQ(got, want) << c.login << ": " << c.why;
    }
  }
  ASSERT_NE(map->Find("b"), nullptr);
  EXPECT_THAT(map->Find("b")->indexers,
              ::testing::ElementsAre("spool-b.example.net:7110", "[2001:db8::2]:7110"));
  EXPECT_EQ(map->Find("zz"), nullptr);
}

TEST(ShardMapTest, NoHashedShardMeansNoShardForUnlistedLogins) {
  absl::StatusOr<ShardMap> map =
      ShardMap::Build(Parse(R"pb(
                        shard { name: "a" indexer: "unix:/a" hashed: false }
                        rule { user: "alice" shard: "a" }
                      )pb"),
                      Files({}));
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(RouteName(*map, "alice"), "a");
  EXPECT_EQ(map->Route("bob"), nullptr);
}

// The hash is part of the map's meaning: these values must never change (a site that places
// mailboxes by it would see logins routed to shards that do not hold their mail). The values
// are what XXH3-128 gives, whose output xxHash keeps stable since 0.8.0.
TEST(ShardMapTest, HashScoreIsStable) {
  EXPECT_EQ(HashScore("a", "alice"), HashScore("a", "alice"));
  EXPECT_NE(HashScore("a", "alice"), HashScore("b", "alice"));
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(HashScore("ab", "c"), HashScore("a", "bc"));
  EXPECT_EQ(HashScore("shard-1", "alice"), 0xe215db2fc37082b3u);
  EXPECT_EQ(HashScore("shard-2", "bob@example.org"), 0xb47c617d39e93ea2u);
}

// Rendezvous hashing: a new hashed shard takes about 1/N of the logins and moves no other.
TEST(ShardMapTest, AddingAShardMovesOnlyTheLoginsItTakes) {
  const std::string three = R"pb(
    shard { name: "s1" indexer: "unix:/1" }
    shard { name: "s2" indexer: "unix:/2" }
    shard { name: "s3" indexer: "unix:/3" }
  )pb";
  absl::StatusOr<ShardMap> before = ShardMap::Build(Parse(three), Files({}));
  absl::StatusOr<ShardMap> after =
      ShardMap::Build(Parse(three + R"pb(shard { name: "s4" indexer: "unix:/4" })pb"), Files({}));
  ASSERT_TRUE(before.ok() && after.ok());
  std::map<std::string, int> count;
  constexpr int kLogins = 20000;
  for (int i = 0; i < kLogins; ++i) {
    const std::string login = absl::StrCat("user", i);
    const std::string was = RouteName(*before, login);
    const std::string now = RouteName(*after, login);
    ++count[now];
    if (was != now) {
      EXPECT_EQ(now, "s4") << login << " moved from " << was << " to " << now;
    }
  }
  // A fixed set of logins and a fixed hash: these bounds are about the hash's spread, not luck.
  for (const char* s : {"s1", "s2", "s3", "s4"}) {
    EXPECT_GT(count[s], kLogins / 4 * 9 / 10) << s;
    EXPECT_LT(count[s], kLogins / 4 * 11 / 10) << s;
  }
}

TEST(ShardMapTest, EveryProblemIsReported) {
  const struct {
    const char* map;
    const char* problem;
  } cases[] = {
      {"", "no shard"},
      {R"pb(shard { indexer: "unix:/a" })pb", "shard name \"\""},
      {R"pb(shard { name: "A" indexer: "unix:/a" })pb", "shard name \"A\""},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            shard { name: "a" indexer: "unix:/b" })pb",
       "\"a\" is defined twice"},
      {R"pb(shard { name: "a" })pb", "\"a\" has no indexer"},
      {R"pb(shard { name: "a" indexer: "unix:relative" })pb", "indexer \"unix:relative\""},
      {R"pb(shard { name: "a" indexer: "host" })pb", "indexer \"host\""},
      {R"pb(shard { name: "a" indexer: "::1:7110" })pb", "indexer \"::1:7110\""},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { user: "x" shard: "b" })pb",
       "rule 1: unknown shard \"b\""},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { shard: "a" })pb",
       "rule 1: no user, users_file, domain or prefix"},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { user: "Alice" shard: "a" })pb",
       "rule 1: \"Alice\" is not a valid login"},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { domain: "Example.org" shard: "a" })pb",
       "domain \"Example.org\""},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { domain: "" shard: "a" })pb",
       "domain \"\""},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { prefix: "" shard: "a" })pb",
       "empty prefix"},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { users_file: "/missing" shard: "a" })pb",
       "/missing: cannot read"},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            rule { users_file: "/bad.users" shard: "a" })pb",
       "/bad.users:2: \"bad user\" is not a valid login"},
      {R"pb(shard { name: "a" indexer: "unix:/a" }
            shard { name: "b" indexer: "unix:/b" }
            rule { user: "alice" shard: "a" }
            rule { users_file: "/b.users" shard: "b" })pb",
       "/b.users:1: \"alice\" is listed for shards \"a\" and \"b\""},
  };
  auto files = Files({{"/bad.users", "ok\nbad user\n"}, {"/b.users", "alice\n"}});
  for (const auto& c : cases) {
    absl::StatusOr<ShardMap> map = ShardMap::Build(Parse(c.map), files);
    ASSERT_FALSE(map.ok()) << c.map;
    EXPECT_EQ(map.status().code(), absl::StatusCode::kInvalidArgument) << c.map;
    EXPECT_THAT(map.status().message(), HasSubstr(c.problem)) << c.map;
  }
}

TEST(ShardMapTest, ListingALoginTwiceForOneShardIsFine) {
  absl::StatusOr<ShardMap> map = ShardMap::Build(Parse(R"pb(
                                                   shard { name: "a" indexer: "unix:/a" }
                                                   rule { user: "alice" shard: "a" }
                                                   rule { users_file: "/a.users" shard: "a" }
                                                 )pb"),
                                                 Files({{"/a.users", "alice\nalice\n"}}));
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(RouteName(*map, "alice"), "a");
}

TEST(ShardMapTest, ManyProblemsAreCapped) {
  std::string users;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&users, "Bad", i, "\n");
  absl::StatusOr<ShardMap> map = ShardMap::Build(Parse(R"pb(
                                                   shard { name: "a" indexer: "unix:/a" }
                                                   rule { users_file: "/u" shard: "a" }
                                                 )pb"),
                                                 Files({{"/u", users}}));
  ASSERT_FALSE(map.ok());
  EXPECT_THAT(map.status().message(), HasSubstr("and 80 more"));
}

TEST(ShardMapTest, LoadsTheFileAndItsUsersFiles) {
  char dir_template[] = "/tmp/poplar-shard-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string users = dir + "/b.users";
  const std::string path = dir + "/shards.conf";
  std::ofstream(users) << "bob\n";
  std::ofstream(path) << "shard { name: \"a\" indexer: \"unix:/a\" hashed: false }\n"
                      << "shard { name: \"b\" indexer: \"unix:/b\" hashed: false }\n"
                      << "rule { users_file: \"" << users << "\" shard: \"b\" }\n"
                      << "rule { prefix: \"\" shard: \"a\" }\n";
  absl::StatusOr<ShardMap> bad = ShardMap::Load(path);
  EXPECT_THAT(bad.status().message(), HasSubstr("empty prefix"));
  std::ofstream(path) << "shard { name: \"a\" indexer: \"unix:/a\" hashed: false }\n"
                      << "shard { name: \"b\" indexer: \"unix:/b\" hashed: false }\n"
                      << "rule { users_file: \"" << users << "\" shard: \"b\" }\n"
                      << "rule { prefix: \"a\" shard: \"a\" }\n";
  absl::StatusOr<ShardMap> map = ShardMap::Load(path);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(RouteName(*map, "bob"), "b");
  EXPECT_EQ(RouteName(*map, "alice"), "a");
  EXPECT_EQ(map->Route("carol"), nullptr);
  EXPECT_EQ(ShardMap::Load(dir + "/missing.conf").status().code(), absl::StatusCode::kNotFound);
  std::ofstream(path) << "shard { name: \"a\" indexer: \"unix:/a\" unknown_field: 1 }\n";
  EXPECT_EQ(ShardMap::Load(path).status().code(), absl::StatusCode::kInvalidArgument);
  unlink(users.c_str());
  unlink(path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace poplar::shard

// Which shard (which poplar-indexer) owns a login: the validated form of the shard map
// (proto/poplar/shard_map.proto, design §7). popd routes each login with it; an indexer checks
// with the same map that a login it is asked for is its own.
//
// Routing: the rules in file order, the first that matches wins (an explicit login or users
// file, a domain, a prefix); a login that no rule matches goes to the shard with the highest
// HashScore() among the shards that take hashed users (rendezvous hashing: adding or removing
// one such shard moves only the logins that hash to it, about 1/N, and every other login stays
// where it was). No rule and no hashed shard: the login belongs to no shard.
//
// Building is pure: the users files are read through a callback (Load() passes the real one),
// so popd, the indexer and poplarctl share this code and the tests need no files.
#ifndef POPLAR_COMMON_SHARD_SHARD_MAP_H_
#define POPLAR_COMMON_SHARD_SHARD_MAP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "poplar/shard_map.pb.h"

namespace poplar::shard {

struct Shard {
  std::string name;
  std::vector<std::string> indexers;  // "unix:/path" or "HOST:PORT", in the order to try
  bool hashed = true;
};

// The hash fallback's score of `login` on the shard `shard_name`: the high 64 bits of
// XXH3-128 over shard_name, one NUL byte, login. Part of the shard map's meaning: a site that
// places mailboxes by hash (an MTA transport map, `poplarctl shard route`) relies on it, so it
// never changes.
uint64_t HashScore(std::string_view shard_name, std::string_view login);

class ShardMap {
 public:
  // Reads a users file named by a rule: its whole text, or an error.
  using ReadFile = std::function<absl::StatusOr<std::string>(const std::string& path)>;

  // InvalidArgument listing every problem found (up to a cap): no shard; a shard name that is
  // empty, badly spelled or repeated; a shard without an indexer or with a malformed one; a
  // rule without a match or naming an unknown shard; a malformed domain or empty prefix; an
  // invalid login in a rule or users file (with file:line); one login listed for two shards;
  // an unreadable users file.
  static absl::StatusOr<ShardMap> Build(const config::ShardMap& map, const ReadFile& read_file);

  // Reads and validates the text-format file and the users files it names.
  static absl::StatusOr<ShardMap> Load(const std::string& path);

  // The shard that owns `login`, or nullptr if none does.
  const Shard* Route(std::string_view login) const;

  // The shard of that name, or nullptr.
  const Shard* Find(std::string_view name) const;

  const std::vector<Shard>& shards() const { return shards_; }

 private:
  // A domain or prefix rule (listed logins are in listed_).
  struct Rule {
    size_t position = 0;  // in the file, so first-match order holds across both kinds
    bool domain = false;  // else a prefix
    std::string text;
    size_t shard = 0;
  };

  std::vector<Shard> shards_;
  std::vector<Rule> rules_;
  // Listed logins (user and users_file rules) -> (index of their first rule, shard).
  absl::flat_hash_map<std::string, std::pair<size_t, size_t>> listed_;
  std::vector<size_t> hashed_;  // shards that take hashed logins
};

}  // namespace poplar::shard

#endif  // POPLAR_COMMON_SHARD_SHARD_MAP_H_

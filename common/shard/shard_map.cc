#include "common/shard/shard_map.h"

#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config/textproto.h"
#include "common/sasl/user_name.h"
#include "common/util/hash.h"
#include "common/util/host_port.h"
#include "common/util/strings.h"

namespace poplar::shard {
namespace {

// More problems than this in one map are a wrong file, not a list worth reading to the end.
constexpr size_t kMaxProblems = 20;

bool IsValidShardName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidIndexerTarget(std::string_view target) {
  constexpr std::string_view kUnix = "unix:";
  if (target.substr(0, kUnix.size()) == kUnix) {
    return target.size() > kUnix.size() && target[kUnix.size()] == '/';
  }
  return SplitHostPort(target).has_value();
}

// A domain as logins spell it after their '@': what IsValidUserName accepts there.
bool IsValidDomain(std::string_view domain) {
  return !domain.empty() && sasl::IsValidUserName(absl::StrCat("x@", Absl(domain)));
}

class Problems {
 public:
  void Add(std::string problem) {
    if (list_.size() < kMaxProblems) list_.push_back(std::move(problem));
    ++count_;
  }
  absl::Status ToStatus() const {
    if (count_ == 0) return absl::OkStatus();
    std::string text = absl::StrJoin(list_, "; ");
    if (count_ > list_.size()) absl::StrAppend(&text, "; and ", count_ - list_.size(), " more");
    return absl::InvalidArgumentError(absl::StrCat("shard map: ", text));
  }

 private:
  std::vector<std::string> list_;
  size_t count_ = 0;
};

}  // namespace

uint64_t HashScore(std::string_view shard_name, std::string_view login) {
  std::string key;
  key.reserve(shard_name.size() + 1 + login.size());
  key.append(shard_name);
  key.push_back('\0');
  key.append(login);
  return Xxh3_128(key).high;
}

absl::StatusOr<ShardMap> ShardMap::Build(const config::ShardMap& map, const ReadFile& read_file) {
  ShardMap out;
  Problems problems;
  absl::flat_hash_map<std::string, size_t> by_name;
  if (map.shard_size() == 0) problems.Add("no shard");
  for (const config::Shard& s : map.shard()) {
    if (!IsValidShardName(s.name())) {
      problems.Add(absl::StrCat("shard name \"", s.name(), "\" is not 1..64 of [a-z0-9._-]"));
    } else if (!by_name.emplace(s.name(), out.shards_.size()).second) {
      problems.Add(absl::StrCat("shard \"", s.name(), "\" is defined twice"));
    }
    if (s.indexer_size() == 0)
      problems.Add(absl::StrCat("shard \"", s.name(), "\" has no indexer"));
    for (const std::string& target : s.indexer()) {
      if (!IsValidIndexerTarget(target)) {
        problems.Add(absl::StrCat("shard \"", s.name(), "\": indexer \"", target,
                                  "\" is neither unix:/absolute/path nor HOST:PORT"));
      }
    }
    if (s.hashed()) out.hashed_.push_back(out.shards_.size());
    out.shards_.push_back(Shard{s.name(), {s.indexer().begin(), s.indexer().end()}, s.hashed()});
  }

  for (int i = 0; i < map.rule_size(); ++i) {
    const config::ShardRule& r = map.rule(i);
    const std::string where = absl::StrCat("rule ", i + 1);
    auto shard = by_name.find(r.shard());
    if (shard == by_name.end()) {
      problems.Add(absl::StrCat(where, ": unknown shard \"", r.shard(), "\""));
      continue;
    }
    const size_t position = static_cast<size_t>(i);
    // A listed login: invalid, or already listed for another shard, is a problem.
    auto list = [&](std::string_view login, std::string_view source) {
      if (!sasl::IsValidUserName(login)) {
        problems.Add(absl::StrCat(Absl(source), ": \"", Absl(login), "\" is not a valid login"));
        return;
      }
      auto [it, inserted] = out.listed_.try_emplace(std::string(login), position, shard->second);
      if (!inserted && it->second.second != shard->second) {
        problems.Add(absl::StrCat(Absl(source), ": \"", Absl(login), "\" is listed for shards \"",
                                  out.shards_[it->second.second].name, "\" and \"", r.shard(),
                                  "\""));
      }
    };
    switch (r.match_case()) {
      case config::ShardRule::kUser:
        list(r.user(), where);
        break;
      case config::ShardRule::kUsersFile: {
        absl::StatusOr<std::string> text = read_file(r.users_file());
        if (!text.ok()) {
          problems.Add(absl::StrCat(where, ": ", text.status().message()));
          break;
        }
        int line_no = 0;
        for (absl::string_view line : absl::StrSplit(*text, '\n')) {
          ++line_no;
          line = absl::StripAsciiWhitespace(line);
          if (line.empty() || line.front() == '#') continue;
          list(Std(line), absl::StrCat(r.users_file(), ":", line_no));
        }
        break;
      }
      case config::ShardRule::kDomain:
        if (!IsValidDomain(r.domain())) {
          problems.Add(absl::StrCat(where, ": domain \"", r.domain(), "\" is not valid"));
        }
        out.rules_.push_back(Rule{position, true, r.domain(), shard->second});
        break;
      case config::ShardRule::kPrefix:
        if (r.prefix().empty()) problems.Add(absl::StrCat(where, ": empty prefix"));
        out.rules_.push_back(Rule{position, false, r.prefix(), shard->second});
        break;
      case config::ShardRule::MATCH_NOT_SET:
        problems.Add(absl::StrCat(where, ": no user, users_file, domain or prefix"));
        break;
    }
  }
  if (absl::Status s = problems.ToStatus(); !s.ok()) return s;
  return out;
}

absl::StatusOr<ShardMap> ShardMap::Load(const std::string& path) {
  config::ShardMap map;
  if (absl::Status s = config::LoadTextProtoFile(path, &map); !s.ok()) return s;
  return Build(map, config::ReadConfigFile);
}

const Shard* ShardMap::Route(std::string_view login) const {
  size_t listed_position = std::numeric_limits<size_t>::max();
  size_t listed_shard = 0;
  if (auto it = listed_.find(absl::string_view(login.data(), login.size())); it != listed_.end()) {
    listed_position = it->second.first;
    listed_shard = it->second.second;
  }
  const std::string_view domain = sasl::UserNameDomain(login);
  for (const Rule& r : rules_) {
    if (r.position > listed_position) break;  // rules_ is in file order
    const bool match = r.domain ? domain == r.text : login.substr(0, r.text.size()) == r.text;
    if (match) return &shards_[r.shard];
  }
  if (listed_position != std::numeric_limits<size_t>::max()) return &shards_[listed_shard];
  const Shard* best = nullptr;
  uint64_t best_score = 0;
  for (size_t i : hashed_) {
    const uint64_t score = HashScore(shards_[i].name, login);
    // Ties (never seen with 64 bits, but defined): the smaller name wins.
    if (best == nullptr || score > best_score ||
        (score == best_score && shards_[i].name < best->name)) {
      best = &shards_[i];
      best_score = score;
    }
  }
  return best;
}

const Shard* ShardMap::Find(std::string_view name) const {
  for (const Shard& s : shards_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace poplar::shard

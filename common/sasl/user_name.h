// Which login names Poplar accepts for its own accounts. Pure.
//
// A login name is attacker input that ends up in places where its spelling matters: it keys the
// account store, it is written to logs, it selects a shard, and later parts of Poplar derive
// file names from it (per-user state, hashed spool subdirectories). The rules make every valid
// name safe in all of those without escaping (reliability.md §4, "User name to path"):
//   * 1..64 octets, so no empty key and no unbounded key or path component;
//   * only [a-z0-9._+-]: no '/', NUL, control characters, spaces, shell or SQL metacharacters,
//     no non-ASCII (so no Unicode confusables or normalisation forms), and lower case only so
//     case folding can never give two spellings for one account;
//   * not starting with '.' (no ".", "..", or hidden files as path components) or '-' (never
//     read as an option by a tool that gets the name as an argument);
//   * no ".." anywhere, so the name cannot climb a directory even if a later change joins it
//     to a path in a way that splits on other characters;
//   * at most one '@', for sites whose logins carry a domain ("alice@example.org", the shard
//     map's domain rules): each side follows the rules above. '@' is no path, shell, SQL or
//     log metacharacter, so it needs no escaping either.
// The account record, not the name, still decides which mailbox is opened (design §8).
#ifndef POPLAR_COMMON_SASL_USER_NAME_H_
#define POPLAR_COMMON_SASL_USER_NAME_H_

#include <cstddef>
#include <string_view>

namespace poplar::sasl {

inline constexpr size_t kMaxUserNameBytes = 64;

bool IsValidUserName(std::string_view name);

// The text after the '@' of a valid name ("example.org"), empty if it has none.
std::string_view UserNameDomain(std::string_view name);

}  // namespace poplar::sasl

#endif  // POPLAR_COMMON_SASL_USER_NAME_H_

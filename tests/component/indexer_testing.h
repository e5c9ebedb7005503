// An Indexer in a temp dir for component and gRPC tests: the config every such test starts
// from (spool DIR/spool, database, socket, mailboxes owned by the test's user) and accounts.
#ifndef POPLAR_TESTS_COMPONENT_INDEXER_TESTING_H_
#define POPLAR_TESTS_COMPONENT_INDEXER_TESTING_H_

#include <string>

#include "absl/status/status.h"
#include "indexer/indexer.h"
#include "poplar/config.pb.h"
#include "tests/component/temp_dir.h"

namespace poplar::testing {

// Spool dir.File("spool") (not created here), database and socket in `dir`; check_owner
// expects the test's own user (the test names are no system users).
inline config::IndexerConfig TestIndexerConfig(const TempDir& dir) {
  config::IndexerConfig c;
  c.add_spools()->set_directory(dir.File("spool"));
  c.set_database_path(dir.File("index.sqlite"));
  c.mutable_check_owner()->set_spool_owner(CurrentUserName());
  c.mutable_listen()->set_unix_socket(dir.File("indexer.sock"));
  return c;
}

// Adds an account with a password and the default mailbox; an existing one is fine.
inline absl::Status AddTestAccount(indexer::Indexer& idx, const std::string& user,
                                   const std::string& password) {
  v1::AddAccountRequest add;
  add.set_user(user);
  add.set_password(password);
  absl::StatusOr<v1::Account> a = idx.AddAccount(add);
  return a.ok() || absl::IsAlreadyExists(a.status()) ? absl::OkStatus() : a.status();
}

}  // namespace poplar::testing

#endif  // POPLAR_TESTS_COMPONENT_INDEXER_TESTING_H_

// PamAuthenticator: checks a user name and password with PAM (config pam; Qpopper's
// passwd/shadow/PAM behaviour) on a fixed pool of threads of its own.
//
// PAM calls block for as long as the modules like (pam_unix's hashing, an LDAP or RADIUS
// server that does not answer), so they never run on a gRPC thread or under the indexer's
// mutex: Authenticate() queues the check and returns at once; `done` runs on a PAM thread.
// At most `threads` conversations run at a time and at most `max_waiting` wait; beyond that a
// check fails at once with Unavailable (popd: -ERR [SYS/TEMP]), so a hung PAM backend costs
// PAM logins only, never store logins or the index.
//
// pam_fail_delay is replaced by a no-op: popd delays every failed login itself
// (limits.auth_failure_delay_ms), the same for every mechanism, so pam_unix's own 2 s sleep
// would only hold a PAM thread. The password is handed to PAM through the conversation
// (PAM_PROMPT_ECHO_OFF) and wiped from the job when it is done; it is never logged.
// Thread-safe.
#ifndef POPLAR_INDEXER_PAM_AUTHENTICATOR_H_
#define POPLAR_INDEXER_PAM_AUTHENTICATOR_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "poplar/config.pb.h"

namespace poplar::indexer {

class PamAuthenticator {
 public:
  explicit PamAuthenticator(const config::Pam& config);
  // Fails the waiting checks (Unavailable) and joins the threads after the running ones end.
  ~PamAuthenticator();
  PamAuthenticator(const PamAuthenticator&) = delete;
  PamAuthenticator& operator=(const PamAuthenticator&) = delete;

  // OK: pam_authenticate and pam_acct_mgmt accepted `user` with `password`.
  // Unauthenticated: refused (wrong password, unknown user, expired, ...), one message for all.
  // Unavailable: no PAM thread free and the queue full, the service missing or broken, or the
  // authenticator shutting down. `rhost` (may be empty) becomes PAM_RHOST.
  using Done = std::function<void(absl::Status)>;
  void Authenticate(std::string user, std::string password, std::string rhost, Done done);

  // Authenticate and wait for the answer (tests and synchronous callers).
  absl::Status AuthenticateAndWait(std::string user, std::string password, std::string rhost);

 private:
  struct Job {
    std::string user;
    std::string password;
    std::string rhost;
    Done done;
  };
  void Worker();
  absl::Status Converse(const Job& job) const;

  const std::string service_;
  const std::string config_dir_;
  const size_t max_waiting_;
  absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_PAM_AUTHENTICATOR_H_

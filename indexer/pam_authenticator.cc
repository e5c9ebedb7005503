#include "indexer/pam_authenticator.h"

#include <security/pam_appl.h>
#include <string.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/util/log.h"

namespace poplar::indexer {
namespace {

struct Credentials {
  const std::string* user;
  const std::string* password;
};

void FreeResponses(struct pam_response* r, int n) {
  for (int i = 0; i < n; ++i) {
    if (r[i].resp != nullptr) {
      explicit_bzero(r[i].resp, strlen(r[i].resp));
      std::free(r[i].resp);
    }
  }
  std::free(r);
}

// Answers the password prompt with the password and a visible prompt with the user name;
// information and error messages need no answer. Anything else ends the conversation.
int Conversation(int n, const struct pam_message** msg, struct pam_response** resp, void* data) {
  if (n <= 0 || n > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
  const Credentials* c = static_cast<const Credentials*>(data);
  auto* r = static_cast<struct pam_response*>(
      std::calloc(static_cast<size_t>(n), sizeof(struct pam_response)));
  if (r == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < n; ++i) {
    switch (msg[i]->msg_style) {
      case PAM_PROMPT_ECHO_OFF:
        r[i].resp = strdup(c->password->c_str());
        break;
      case PAM_PROMPT_ECHO_ON:
        r[i].resp = strdup(c->user->c_str());
        break;
      case PAM_ERROR_MSG:
      case PAM_TEXT_INFO:
        break;
      default:
        FreeResponses(r, n);
        return PAM_CONV_ERR;
    }
    if ((msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) &&
        r[i].resp == nullptr) {
      FreeResponses(r, n);
      return PAM_BUF_ERR;
    }
  }
  *resp = r;
  return PAM_SUCCESS;
}

// popd delays failed logins itself; a module's delay would only hold a PAM thread.
void NoFailDelay(int, unsigned, void*) {}

}  // namespace

PamAuthenticator::PamAuthenticator(const config::Pam& config)
    : service_(config.service()),
      config_dir_(config.config_dir()),
      max_waiting_(config.max_waiting()) {
  for (uint32_t i = 0; i < config.threads(); ++i) threads_.emplace_back([this] { Worker(); });
}

PamAuthenticator::~PamAuthenticator() {
  std::deque<Job> waiting;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    waiting.swap(queue_);
  }
  for (Job& j : waiting) j.done(absl::UnavailableError("PAM: shutting down"));
  for (std::thread& t : threads_) t.join();
}

void PamAuthenticator::Authenticate(std::string user, std::string password, std::string rhost,
                                    Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && queue_.size() < max_waiting_) {
      queue_.push_back(
          Job{std::move(user), std::move(password), std::move(rhost), std::move(done)});
      return;
    }
  }
  explicit_bzero(password.data(), password.size());
  done(absl::UnavailableError("PAM: too many logins waiting"));
}

absl::Status PamAuthenticator::AuthenticateAndWait(std::string user, std::string password,
                                                   std::string rhost) {
  struct Result {
    absl::Notification ready;
    absl::Status status;
  };
  auto result = std::make_shared<Result>();
  Authenticate(std::move(user), std::move(password), std::move(rhost), [result](absl::Status s) {
    result->status = std::move(s);
    result->ready.Notify();
  });
  result->ready.WaitForNotification();
  return result->status;
}

void PamAuthenticator::Worker() {
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::Status s = Converse(job);
    explicit_bzero(job.password.data(), job.password.size());
    job.done(std::move(s));
  }
}

absl::Status PamAuthenticator::Converse(const Job& job) const {
  Credentials creds{&job.user, &job.password};
  const struct pam_conv conv = {&Conversation, &creds};
  pam_handle_t* pamh = nullptr;
  int rc = config_dir_.empty() ? pam_start(service_.c_str(), job.user.c_str(), &conv, &pamh)
                               : pam_start_confdir(service_.c_str(), job.user.c_str(), &conv,
                                                   config_dir_.c_str(), &pamh);
  if (rc != PAM_SUCCESS || pamh == nullptr) {
    // Linux-PAM's pam_strerror accepts a null handle.
    log::Error("pam: pam_start(", service_, ") failed: ", pam_strerror(pamh, rc));
    if (pamh != nullptr) pam_end(pamh, rc);
    return absl::UnavailableError("PAM is not available");
  }
  if (!job.rhost.empty()) pam_set_item(pamh, PAM_RHOST, job.rhost.c_str());
  pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&NoFailDelay));
  rc = pam_authenticate(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (rc == PAM_SUCCESS) rc = pam_acct_mgmt(pamh, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
  if (rc == PAM_SUCCESS) {
    // A module may rewrite PAM_USER; the mailbox is chosen by the name that was checked, so a
    // login that PAM turned into another user is refused rather than guessed at.
    const void* item = nullptr;
    if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == nullptr ||
        job.user != static_cast<const char*>(item)) {
      rc = PAM_PERM_DENIED;
    }
  }
  absl::Status result;
  switch (rc) {
    case PAM_SUCCESS:
      break;
    case PAM_AUTH_ERR:
    case PAM_USER_UNKNOWN:
    case PAM_CRED_INSUFFICIENT:
    case PAM_MAXTRIES:
    case PAM_ACCT_EXPIRED:
    case PAM_NEW_AUTHTOK_REQD:
    case PAM_PERM_DENIED:
      result = absl::UnauthenticatedError("authentication failed");
      break;
    default:
      // The backend, not the user: logged (never the password), and a temporary failure.
      log::Error("pam: service ", service_, ": ", pam_strerror(pamh, rc));
      result = absl::UnavailableError("PAM failed");
  }
  pam_end(pamh, rc);
  return result;
}

}  // namespace poplar::indexer

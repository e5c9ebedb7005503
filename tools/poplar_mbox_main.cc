// poplar-mbox [--json] [--check] [--chunk=N] [--uidl=SCHEME] [--qpopper-...] [--no-x-uidl] MBOX
#include <iostream>
#include <string_view>

#include "absl/strings/numbers.h"
#include "tools/mbox_report.h"

namespace {
constexpr std::string_view kUsage =
    "usage: poplar-mbox [--json] [--check] [--chunk=N] "
    "[--uidl=poplar|dovecot|qpopper|qpopper-old-style] "
    "[--qpopper-server-mode] [--qpopper-no-content-length] [--qpopper-nonce=SEED] [--no-x-uidl] "
    "[--trust-content-length] MBOX\n"
    "Prints the mailbox's messages (number, offset, POP3 octets, lines, UIDL, sender).\n"
    "--check  also sends every message through the POP3 transform and verifies the round trip\n";
}  // namespace

int main(int argc, char** argv) {
  poplar::tools::MboxReportOptions options;
  int64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--json") {
      options.json = true;
    } else if (arg == "--check") {
      options.check = true;
    } else if (arg == "--trust-content-length") {
      options.trust_content_length = true;
    } else if (arg == "--no-x-uidl") {
      options.uidl.reuse_x_uidl = false;
    } else if (arg == "--uidl=poplar") {
      options.uidl.scheme = poplar::mbox::UidlScheme::kPoplar;
    } else if (arg == "--uidl=dovecot") {
      options.uidl.scheme = poplar::mbox::UidlScheme::kDovecot;
    } else if (arg == "--uidl=qpopper" || arg == "--uidl=qpopper-old-style") {
      options.uidl.scheme = poplar::mbox::UidlScheme::kQpopper;
      options.uidl.qpopper.old_style = arg == "--uidl=qpopper-old-style";
    } else if (arg == "--qpopper-server-mode") {
      options.uidl.qpopper.server_mode = true;
    } else if (arg == "--qpopper-no-content-length") {
      options.uidl.qpopper.content_length = false;
    } else if (arg.substr(0, 16) == "--qpopper-nonce=" &&
               absl::SimpleAtoi(absl::string_view(arg.data() + 16, arg.size() - 16), &seed)) {
      options.qpopper_nonce_seed = seed;
    } else if (arg.substr(0, 8) == "--chunk=" &&
               absl::SimpleAtoi(absl::string_view(arg.data() + 8, arg.size() - 8),
                                &options.check_chunk) &&
               options.check_chunk > 0) {
    } else if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (!arg.empty() && arg[0] != '-' && options.path.empty()) {
      options.path = std::string(arg);
    } else {
      std::cerr << "poplar-mbox: bad argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  if (options.path.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  absl::Status s = poplar::tools::RunMboxReport(options, std::cout);
  if (!s.ok()) {
    std::cerr << "poplar-mbox: " << s.message() << "\n";
    return absl::IsInternal(s) ? 1 : 2;
  }
  return 0;
}

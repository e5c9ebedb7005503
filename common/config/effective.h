// The effective configuration: a loaded configuration with every schema default written out,
// for `--print-config` of both daemons (like `doveconf` and `postconf`): what the daemon will
// actually run with, in the same text format it reads, so the output is itself a valid file.
//
// Optional fields with a default in the schema ([default = ...]) are set to it when unset; a
// field without one stays unset (its absence is the setting: "no TLS address"). Sub-messages
// are filled recursively, present or not, except those named in `presence_blocks`: blocks
// whose mere presence switches a feature on (tls, pam, run_as, metrics), which stay absent
// when they were absent.
#ifndef POPLAR_COMMON_CONFIG_EFFECTIVE_H_
#define POPLAR_COMMON_CONFIG_EFFECTIVE_H_

#include <set>
#include <string>

#include "google/protobuf/message.h"

namespace poplar::config {

void FillDefaults(google::protobuf::Message* message, const std::set<std::string>& presence_blocks);

// FillDefaults on a copy, printed in text format.
std::string PrintEffective(const google::protobuf::Message& message,
                           const std::set<std::string>& presence_blocks);

}  // namespace poplar::config

#endif  // POPLAR_COMMON_CONFIG_EFFECTIVE_H_

// poplar-indexer's configuration: the proto schema (proto/poplar/config.proto) turned into a
// validated value. Validate() is pure and reports every problem at once; anything wrong at
// start is fatal (style P13).
#ifndef POPLAR_INDEXER_INDEXER_CONFIG_H_
#define POPLAR_INDEXER_INDEXER_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mbox/uidl.h"
#include "poplar/config.pb.h"

namespace poplar::indexer {

// Fills the defaults that proto2 cannot express (an empty repeated field).
void ApplyDefaults(config::IndexerConfig* c);

// InvalidArgument listing every problem, or OK.
absl::Status Validate(const config::IndexerConfig& c);

// The UIDL options of the site and of every spool that has its own (spools.uidl).
mbox::UidlOptions UidlFromConfig(const config::IndexerConfig& c);

// Reads the text-format file, applies defaults and validates.
absl::StatusOr<config::IndexerConfig> LoadIndexerConfig(const std::string& path);

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_INDEXER_CONFIG_H_

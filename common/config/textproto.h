// Loading a configuration file: protobuf text format into a schema message (style P13).
// Unknown fields, syntax errors and type mismatches are all reported, with line and column;
// nothing is silently ignored. Validation of values is the owner's job (e.g.
// indexer/indexer_config.h), so that this stays schema-agnostic.
#ifndef POPLAR_COMMON_CONFIG_TEXTPROTO_H_
#define POPLAR_COMMON_CONFIG_TEXTPROTO_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace poplar::config {

// Parses `text` (the contents of `source`, used in messages) into *out.
absl::Status ParseTextProto(std::string_view text, std::string_view source,
                            google::protobuf::Message* out);

// The whole of a (small) file a configuration names, e.g. the shard map's users files.
// NotFound if it cannot be read.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

// Reads and parses a file. NotFound if it cannot be read.
absl::Status LoadTextProtoFile(const std::string& path, google::protobuf::Message* out);

}  // namespace poplar::config

#endif  // POPLAR_COMMON_CONFIG_TEXTPROTO_H_

#include "common/config/textproto.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/util/strings.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace poplar::config {
namespace {

class CollectingErrors : public google::protobuf::io::ErrorCollector {
 public:
  explicit CollectingErrors(std::string_view source) : source_(source) {}
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, message);  // a warning in a config file is a mistake too
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

}  // namespace

absl::Status ParseTextProto(std::string_view text, std::string_view source,
                            google::protobuf::Message* out) {
  CollectingErrors errors(source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.AllowUnknownField(false);
  parser.AllowUnknownExtension(false);
  out->Clear();
  const bool ok = parser.ParseFromString(std::string(text), out);
  if (!ok || !errors.errors().empty()) {
    if (errors.errors().empty())
      return absl::InvalidArgumentError(absl::StrCat(Absl(source), ": parse error"));
    return absl::InvalidArgumentError(absl::StrJoin(errors.errors(), "; "));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::NotFoundError(absl::StrCat(path, ": read error"));
  return text.str();
}

absl::Status LoadTextProtoFile(const std::string& path, google::protobuf::Message* out) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return ParseTextProto(*text, path, out);
}

}  // namespace poplar::config

#include "indexer/reload.h"

#include <set>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/message_differencer.h"

namespace poplar::indexer {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Paths of the fields that differ, one level into sub-messages ("limits" is not enough for an
// operator to find what they changed; "check_owner.rule" is).
void Diff(const Message& a, const Message& b, const std::string& prefix,
          std::vector<std::string>* out) {
  const google::protobuf::Descriptor* d = a.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    // This field alone: every other one ignored.
    google::protobuf::util::MessageDifferencer only;
    for (int j = 0; j < d->field_count(); ++j) {
      if (j != i) only.IgnoreField(d->field(j));
    }
    if (only.Compare(a, b)) continue;
    const std::string path = prefix + f->name();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() && prefix.empty()) {
      const size_t before = out->size();
      Diff(a.GetReflection()->GetMessage(a, f), b.GetReflection()->GetMessage(b, f), path + ".",
           out);
      if (out->size() == before) out->push_back(path);  // presence changed
    } else {
      out->push_back(path);
    }
  }
}

}  // namespace

ReloadPlan PlanReload(const config::IndexerConfig& running, const config::IndexerConfig& next) {
  static const std::set<std::string> kLive = {"log.level"};
  std::vector<std::string> changed;
  Diff(running, next, "", &changed);
  ReloadPlan plan;
  for (std::string& p : changed) {
    (kLive.count(p) != 0 ? plan.applied : plan.need_restart).push_back(std::move(p));
  }
  return plan;
}

}  // namespace poplar::indexer

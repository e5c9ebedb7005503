#include "common/config/effective.h"

#include <memory>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"

namespace poplar::config {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void FillDefaults(Message* message, const std::set<std::string>& presence_blocks) {
  const google::protobuf::Descriptor* d = message->GetDescriptor();
  const Reflection* r = message->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int j = 0; j < r->FieldSize(*message, f); ++j) {
          FillDefaults(r->MutableRepeatedMessage(message, f, j), presence_blocks);
        }
      }
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (r->HasField(*message, f) || presence_blocks.count(f->name()) == 0) {
        FillDefaults(r->MutableMessage(message, f), presence_blocks);
      }
      continue;
    }
    if (r->HasField(*message, f) || !f->has_default_value()) continue;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(message, f, f->default_value_int32());
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        r->SetInt64(message, f, f->default_value_int64());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->SetUInt32(message, f, f->default_value_uint32());
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(message, f, f->default_value_uint64());
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        r->SetDouble(message, f, f->default_value_double());
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(message, f, f->default_value_float());
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        r->SetBool(message, f, f->default_value_bool());
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        r->SetEnum(message, f, f->default_value_enum());
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->SetString(message, f, f->default_value_string());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;  // handled above
    }
  }
}

std::string PrintEffective(const Message& message, const std::set<std::string>& presence_blocks) {
  std::unique_ptr<Message> copy(message.New());
  copy->CopyFrom(message);
  FillDefaults(copy.get(), presence_blocks);
  std::string out;
  google::protobuf::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  printer.PrintToString(*copy, &out);
  return out;
}

}  // namespace poplar::config

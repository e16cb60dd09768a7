#include "source/common/config/yaml_proto.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/reflection.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>

#include "source/common/json.h"
#include "source/common/strings.h"
#include "source/common/time.h"

namespace pounce::config {

namespace pb = google::protobuf;

namespace {

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string childPath(const std::string& parent, std::string_view field) {
  return parent.empty() ? std::string(field) : cat(parent, ".", field);
}

std::string indexPath(const std::string& parent, size_t i) { return cat(parent, "[", i, "]"); }

std::string kindName(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Map:
    return "a map";
  case YAML::NodeType::Sequence:
    return "a list";
  case YAML::NodeType::Scalar:
    return cat("'", node.Scalar(), "'");
  case YAML::NodeType::Null:
    return "null";
  default:
    return "nothing";
  }
}

std::string typeName(const pb::FieldDescriptor* field) {
  switch (field->cpp_type()) {
  case pb::FieldDescriptor::CPPTYPE_INT32:
  case pb::FieldDescriptor::CPPTYPE_INT64:
    return "an integer";
  case pb::FieldDescriptor::CPPTYPE_UINT32:
  case pb::FieldDescriptor::CPPTYPE_UINT64:
    return "a non-negative integer";
  case pb::FieldDescriptor::CPPTYPE_DOUBLE:
  case pb::FieldDescriptor::CPPTYPE_FLOAT:
    return "a number";
  case pb::FieldDescriptor::CPPTYPE_BOOL:
    return "true or false";
  case pb::FieldDescriptor::CPPTYPE_ENUM:
    return "one of the enum values";
  case pb::FieldDescriptor::CPPTYPE_STRING:
    return "a string";
  case pb::FieldDescriptor::CPPTYPE_MESSAGE:
    return "a map";
  }
  return "a value";
}

std::string enumValues(const pb::EnumDescriptor* e) {
  std::string out;
  for (int i = 0; i < e->value_count(); ++i) {
    if (i > 0) {
      out += ", ";
    }
    out += toLower(e->value(i)->name());
  }
  return out;
}

bool isWrapper(const pb::Descriptor* d) {
  const std::string& n = d->full_name();
  return n == "google.protobuf.UInt32Value" || n == "google.protobuf.UInt64Value" ||
         n == "google.protobuf.Int32Value" || n == "google.protobuf.Int64Value" ||
         n == "google.protobuf.BoolValue" || n == "google.protobuf.StringValue" ||
         n == "google.protobuf.DoubleValue" || n == "google.protobuf.FloatValue";
}

bool parseBool(const std::string& s, bool& out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    out = false;
    return true;
  }
  return false;
}

void setScalar(const YAML::Node& node, pb::Message& message, const pb::FieldDescriptor* field,
               const std::string& path, ConfigErrors& errors);

void fillDuration(const YAML::Node& node, pb::Message& message, const std::string& path,
                  ConfigErrors& errors) {
  std::chrono::nanoseconds d;
  bool too_long = false;
  if (!node.IsScalar() || !parseDuration(node.Scalar(), d, &too_long)) {
    errors.addAt(
        node.Mark(), path,
        too_long ? cat("'", node.Scalar(), "' is too long (at most 292 years)")
                 : cat("expected a duration such as \"10s\" or \"250ms\", got ", kindName(node)));
    return;
  }
  const auto* desc = message.GetDescriptor();
  const auto* refl = message.GetReflection();
  refl->SetInt64(&message, desc->FindFieldByName("seconds"), d.count() / 1000000000);
  refl->SetInt32(&message, desc->FindFieldByName("nanos"),
                 static_cast<int32_t>(d.count() % 1000000000));
}

void fillAny(const YAML::Node& node, pb::Message& message, const std::string& path,
             ConfigErrors& errors) {
  if (!node.IsMap()) {
    errors.addAt(node.Mark(), path, cat("expected a map with \"@type\", got ", kindName(node)));
    return;
  }
  const YAML::Node type = node["@type"];
  if (!type || !type.IsScalar()) {
    errors.addAt(node.Mark(), path, "missing \"@type\"");
    return;
  }
  const std::string type_url = type.Scalar();
  const pb::Descriptor* desc = findConfigType(type_url);
  if (desc == nullptr) {
    errors.addAt(type.Mark(), childPath(path, "@type"), cat("unknown type '", type_url, "'"));
    return;
  }
  const pb::Message* prototype = pb::MessageFactory::generated_factory()->GetPrototype(desc);
  std::unique_ptr<pb::Message> inner(prototype->New());
  YAML::Node rest(YAML::NodeType::Map);
  for (const auto& kv : node) {
    if (kv.first.Scalar() != "@type") {
      rest[kv.first] = kv.second;
    }
  }
  yamlToMessage(rest, *inner, path, errors);
  const auto* any_desc = message.GetDescriptor();
  const auto* refl = message.GetReflection();
  refl->SetString(&message, any_desc->FindFieldByName("type_url"),
                  cat(kTypeUrlPrefix, desc->full_name()));
  refl->SetString(&message, any_desc->FindFieldByName("value"), inner->SerializeAsString());
}

void fillMessage(const YAML::Node& node, pb::Message& message, const std::string& path,
                 ConfigErrors& errors) {
  const auto* desc = message.GetDescriptor();
  if (desc->full_name() == "google.protobuf.Duration") {
    fillDuration(node, message, path, errors);
    return;
  }
  if (desc->full_name() == "google.protobuf.Any") {
    fillAny(node, message, path, errors);
    return;
  }
  if (isWrapper(desc)) {
    setScalar(node, message, desc->FindFieldByName("value"), path, errors);
    return;
  }
  yamlToMessage(node, message, path, errors);
}

void setScalar(const YAML::Node& node, pb::Message& message, const pb::FieldDescriptor* field,
               const std::string& path, ConfigErrors& errors) {
  const auto* refl = message.GetReflection();
  const bool repeated = field->is_repeated();
  if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    pb::Message* child =
        repeated ? refl->AddMessage(&message, field) : refl->MutableMessage(&message, field);
    fillMessage(node, *child, path, errors);
    return;
  }
  if (!node.IsScalar()) {
    errors.addAt(node.Mark(), path, cat("expected ", typeName(field), ", got ", kindName(node)));
    return;
  }
  const std::string& s = node.Scalar();
  auto bad = [&]() {
    errors.addAt(node.Mark(), path, cat("expected ", typeName(field), ", got '", s, "'"));
  };
  switch (field->cpp_type()) {
  case pb::FieldDescriptor::CPPTYPE_STRING:
    repeated ? refl->AddString(&message, field, s) : refl->SetString(&message, field, s);
    return;
  case pb::FieldDescriptor::CPPTYPE_BOOL: {
    bool b;
    if (!parseBool(s, b)) {
      return bad();
    }
    repeated ? refl->AddBool(&message, field, b) : refl->SetBool(&message, field, b);
    return;
  }
  case pb::FieldDescriptor::CPPTYPE_INT32:
  case pb::FieldDescriptor::CPPTYPE_INT64: {
    int64_t v;
    if (!parseInt(s, v)) {
      return bad();
    }
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_INT32) {
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        errors.addAt(node.Mark(), path, cat("value ", s, " is out of range"));
        return;
      }
      repeated ? refl->AddInt32(&message, field, static_cast<int32_t>(v))
               : refl->SetInt32(&message, field, static_cast<int32_t>(v));
    } else {
      repeated ? refl->AddInt64(&message, field, v) : refl->SetInt64(&message, field, v);
    }
    return;
  }
  case pb::FieldDescriptor::CPPTYPE_UINT32:
  case pb::FieldDescriptor::CPPTYPE_UINT64: {
    uint64_t v;
    if (!parseUint(s, v)) {
      return bad();
    }
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32) {
      if (v > std::numeric_limits<uint32_t>::max()) {
        errors.addAt(node.Mark(), path, cat("value ", s, " is out of range"));
        return;
      }
      repeated ? refl->AddUInt32(&message, field, static_cast<uint32_t>(v))
               : refl->SetUInt32(&message, field, static_cast<uint32_t>(v));
    } else {
      repeated ? refl->AddUInt64(&message, field, v) : refl->SetUInt64(&message, field, v);
    }
    return;
  }
  case pb::FieldDescriptor::CPPTYPE_DOUBLE:
  case pb::FieldDescriptor::CPPTYPE_FLOAT: {
    double v;
    if (!parseDouble(s, v)) {
      return bad();
    }
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT) {
      repeated ? refl->AddFloat(&message, field, static_cast<float>(v))
               : refl->SetFloat(&message, field, static_cast<float>(v));
    } else {
      repeated ? refl->AddDouble(&message, field, v) : refl->SetDouble(&message, field, v);
    }
    return;
  }
  case pb::FieldDescriptor::CPPTYPE_ENUM: {
    const pb::EnumDescriptor* e = field->enum_type();
    const pb::EnumValueDescriptor* value = nullptr;
    for (int i = 0; i < e->value_count(); ++i) {
      if (toLower(e->value(i)->name()) == toLower(s)) {
        value = e->value(i);
      }
    }
    if (value == nullptr) {
      errors.addAt(node.Mark(), path,
                   cat("unknown value '", s, "' (expected one of: ", enumValues(e), ")"));
      return;
    }
    repeated ? refl->AddEnum(&message, field, value) : refl->SetEnum(&message, field, value);
    return;
  }
  case pb::FieldDescriptor::CPPTYPE_MESSAGE:
    return;
  }
}

const pb::FieldDescriptor* findField(const pb::Descriptor* desc, const std::string& key) {
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (f->name() == key || f->json_name() == key) {
      return f;
    }
  }
  return nullptr;
}

std::string suggestion(const pb::Descriptor* desc, const std::string& key) {
  std::string best;
  size_t best_distance = 3;
  for (int i = 0; i < desc->field_count(); ++i) {
    const std::string& name = desc->field(i)->name();
    const size_t d = editDistance(toLower(key), name);
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  return best.empty() ? "" : cat(" (did you mean '", best, "'?)");
}

} // namespace

void ConfigErrors::recordMark(const std::string& path, const YAML::Mark& mark) {
  if (!mark.is_null()) {
    marks_[path] = {mark.line + 1, mark.column + 1};
  }
}

const std::pair<int, int>* ConfigErrors::position(const std::string& path) const {
  // The closest recorded ancestor of `path`.
  std::string p = path;
  while (true) {
    auto it = marks_.find(p);
    if (it != marks_.end()) {
      return &it->second;
    }
    if (p.empty()) {
      return nullptr;
    }
    const size_t cut = p.find_last_of(".[");
    p = cut == std::string::npos ? "" : p.substr(0, cut);
  }
}

std::string ConfigErrors::location(const std::string& path) const {
  const auto* at = position(path);
  return at == nullptr ? source_ : cat(source_, ":", at->first, ":", at->second);
}

void ConfigErrors::add(const std::string& path, std::string_view problem) {
  errors_.push_back(path.empty() ? cat(location(path), ": ", problem)
                                 : cat(location(path), ": ", path, ": ", problem));
  const auto* at = position(path);
  entries_.push_back(
      {path, std::string(problem), at == nullptr ? 0 : at->first, at == nullptr ? 0 : at->second});
}

void ConfigErrors::addAt(const YAML::Mark& mark, const std::string& path,
                         std::string_view problem) {
  recordMark(path, mark);
  add(path, problem);
}

std::string ConfigErrors::text() const {
  std::string out;
  for (const auto& e : errors_) {
    out += e;
    out += '\n';
  }
  return out;
}

absl::Status ConfigErrors::status() const {
  if (errors_.empty()) {
    return absl::OkStatus();
  }
  std::string t = text();
  t.pop_back();
  return absl::InvalidArgumentError(t);
}

std::optional<YAML::Mark> findNulByte(std::string_view text) {
  const size_t at = text.find('\0');
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  YAML::Mark mark;
  mark.pos = static_cast<int>(at);
  const std::string_view before = text.substr(0, at);
  mark.line = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  const size_t line_start = before.rfind('\n');
  mark.column = static_cast<int>(line_start == std::string_view::npos ? at : at - line_start - 1);
  return mark;
}

absl::StatusOr<YAML::Node> parseYaml(std::string_view text, const std::string& source) {
  if (auto nul = findNulByte(text)) {
    return absl::InvalidArgumentError(
        cat(source, ":", nul->line + 1, ":", nul->column + 1, ": ", kNulByteProblem));
  }
  try {
    YAML::Node node = YAML::Load(std::string(text));
    return node;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        cat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::StatusOr<YAML::Node> parseYamlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(cat(path, ": cannot open config file: ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parseYaml(ss.str(), path);
}

void yamlToMessage(const YAML::Node& node, pb::Message& message, const std::string& path,
                   ConfigErrors& errors) {
  errors.recordMark(path, node.Mark());
  if (node.IsNull()) {
    return;
  }
  if (!node.IsMap()) {
    errors.addAt(node.Mark(), path, cat("expected a map, got ", kindName(node)));
    return;
  }
  const auto* desc = message.GetDescriptor();
  const auto* refl = message.GetReflection();
  std::set<std::string> seen;
  std::map<const pb::OneofDescriptor*, std::string> oneofs;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const pb::FieldDescriptor* field = findField(desc, key);
    const std::string field_path = childPath(path, field ? field->name() : key);
    if (field == nullptr) {
      errors.addAt(kv.first.Mark(), field_path,
                   cat("unknown field '", key, "'", suggestion(desc, key)));
      continue;
    }
    if (!seen.insert(field->name()).second) {
      errors.addAt(kv.first.Mark(), field_path, "field given twice");
      continue;
    }
    errors.recordMark(field_path, kv.second.Mark());
    if (const pb::OneofDescriptor* oneof = field->real_containing_oneof()) {
      auto [it, inserted] = oneofs.emplace(oneof, field->name());
      if (!inserted) {
        errors.addAt(kv.first.Mark(), field_path,
                     cat("only one of '", it->second, "' and '", field->name(), "' may be given"));
        continue;
      }
    }
    const YAML::Node& value = kv.second;
    if (value.IsNull()) {
      continue; // "field:" with no value leaves the default
    }
    if (field->is_map()) {
      errors.addAt(value.Mark(), field_path, "map fields are not supported");
      continue;
    }
    if (field->is_repeated()) {
      if (!value.IsSequence()) {
        errors.addAt(value.Mark(), field_path, cat("expected a list, got ", kindName(value)));
        continue;
      }
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item_path = indexPath(field_path, i);
        errors.recordMark(item_path, value[i].Mark());
        setScalar(value[i], message, field, item_path, errors);
      }
      continue;
    }
    setScalar(value, message, field, field_path, errors);
  }
  (void)refl;
}

const pb::Descriptor* findConfigType(std::string_view type_url) {
  std::string_view name = type_url;
  if (startsWith(name, kTypeUrlPrefix)) {
    name.remove_prefix(kTypeUrlPrefix.size());
  }
  return pb::DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(name));
}

// --- proto → YAML / JSON ------------------------------------------------------------------

namespace {

// A neutral tree that both writers walk, so YAML and JSON stay in step.
struct Value {
  enum class Kind { Null, String, Number, Bool, List, Map } kind{Kind::Null};
  std::string text;
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> fields;
};

Value fromMessage(const pb::Message& message);

Value scalarValue(const pb::Message& message, const pb::FieldDescriptor* field, int index) {
  const auto* refl = message.GetReflection();
  const bool rep = index >= 0;
  Value v;
  switch (field->cpp_type()) {
  case pb::FieldDescriptor::CPPTYPE_STRING:
    v.kind = Value::Kind::String;
    v.text = rep ? refl->GetRepeatedString(message, field, index) : refl->GetString(message, field);
    break;
  case pb::FieldDescriptor::CPPTYPE_BOOL:
    v.kind = Value::Kind::Bool;
    v.text = (rep ? refl->GetRepeatedBool(message, field, index) : refl->GetBool(message, field))
                 ? "true"
                 : "false";
    break;
  case pb::FieldDescriptor::CPPTYPE_INT32:
    v.kind = Value::Kind::Number;
    v.text = std::to_string(rep ? refl->GetRepeatedInt32(message, field, index)
                                : refl->GetInt32(message, field));
    break;
  case pb::FieldDescriptor::CPPTYPE_INT64:
    v.kind = Value::Kind::Number;
    v.text = std::to_string(rep ? refl->GetRepeatedInt64(message, field, index)
                                : refl->GetInt64(message, field));
    break;
  case pb::FieldDescriptor::CPPTYPE_UINT32:
    v.kind = Value::Kind::Number;
    v.text = std::to_string(rep ? refl->GetRepeatedUInt32(message, field, index)
                                : refl->GetUInt32(message, field));
    break;
  case pb::FieldDescriptor::CPPTYPE_UINT64:
    v.kind = Value::Kind::Number;
    v.text = std::to_string(rep ? refl->GetRepeatedUInt64(message, field, index)
                                : refl->GetUInt64(message, field));
    break;
  case pb::FieldDescriptor::CPPTYPE_DOUBLE:
  case pb::FieldDescriptor::CPPTYPE_FLOAT: {
    const double d = field->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE
                         ? (rep ? refl->GetRepeatedDouble(message, field, index)
                                : refl->GetDouble(message, field))
                         : (rep ? refl->GetRepeatedFloat(message, field, index)
                                : refl->GetFloat(message, field));
    v.kind = Value::Kind::Number;
    char buf[64];
    snprintf(buf, sizeof(buf), "%.17g", d);
    v.text = buf;
    break;
  }
  case pb::FieldDescriptor::CPPTYPE_ENUM:
    v.kind = Value::Kind::String;
    v.text =
        toLower((rep ? refl->GetRepeatedEnum(message, field, index) : refl->GetEnum(message, field))
                    ->name());
    break;
  case pb::FieldDescriptor::CPPTYPE_MESSAGE:
    v = fromMessage(rep ? refl->GetRepeatedMessage(message, field, index)
                        : refl->GetMessage(message, field));
    break;
  }
  return v;
}

Value fromMessage(const pb::Message& message) {
  const auto* desc = message.GetDescriptor();
  const auto* refl = message.GetReflection();
  Value out;
  if (desc->full_name() == "google.protobuf.Duration") {
    const int64_t s = refl->GetInt64(message, desc->FindFieldByName("seconds"));
    const int32_t n = refl->GetInt32(message, desc->FindFieldByName("nanos"));
    out.kind = Value::Kind::String;
    out.text = formatDuration(std::chrono::nanoseconds(s * 1000000000 + n));
    return out;
  }
  if (isWrapper(desc)) {
    return scalarValue(message, desc->FindFieldByName("value"), -1);
  }
  out.kind = Value::Kind::Map;
  if (desc->full_name() == "google.protobuf.Any") {
    const std::string type_url = refl->GetString(message, desc->FindFieldByName("type_url"));
    Value type;
    type.kind = Value::Kind::String;
    type.text = type_url;
    out.fields.emplace_back("@type", type);
    const pb::Descriptor* inner_desc = findConfigType(type_url);
    if (inner_desc != nullptr) {
      std::unique_ptr<pb::Message> inner(
          pb::MessageFactory::generated_factory()->GetPrototype(inner_desc)->New());
      inner->ParseFromString(refl->GetString(message, desc->FindFieldByName("value")));
      Value body = fromMessage(*inner);
      for (auto& f : body.fields) {
        out.fields.push_back(std::move(f));
      }
    }
    return out;
  }
  std::vector<const pb::FieldDescriptor*> fields;
  refl->ListFields(message, &fields);
  std::sort(fields.begin(), fields.end(),
            [](const auto* a, const auto* b) { return a->index() < b->index(); });
  for (const auto* field : fields) {
    if (field->is_repeated()) {
      Value list;
      list.kind = Value::Kind::List;
      const int n = refl->FieldSize(message, field);
      for (int i = 0; i < n; ++i) {
        list.items.push_back(scalarValue(message, field, i));
      }
      out.fields.emplace_back(field->name(), std::move(list));
    } else {
      out.fields.emplace_back(field->name(), scalarValue(message, field, -1));
    }
  }
  return out;
}

YAML::Node toYaml(const Value& v) {
  switch (v.kind) {
  case Value::Kind::Null:
    return YAML::Node();
  case Value::Kind::String:
  case Value::Kind::Number:
  case Value::Kind::Bool:
    return YAML::Node(v.text);
  case Value::Kind::List: {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& item : v.items) {
      n.push_back(toYaml(item));
    }
    return n;
  }
  case Value::Kind::Map: {
    YAML::Node n(YAML::NodeType::Map);
    for (const auto& [k, item] : v.fields) {
      n[k] = toYaml(item);
    }
    return n;
  }
  }
  return YAML::Node();
}

void toJson(const Value& v, std::string& out, bool pretty, int indent) {
  auto newline = [&](int level) {
    if (pretty) {
      out += '\n';
      out.append(static_cast<size_t>(level) * 2, ' ');
    }
  };
  switch (v.kind) {
  case Value::Kind::Null:
    out += "null";
    return;
  case Value::Kind::String:
    json::appendString(out, v.text);
    return;
  case Value::Kind::Number:
  case Value::Kind::Bool:
    out += v.text;
    return;
  case Value::Kind::List:
    if (v.items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < v.items.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      newline(indent + 1);
      toJson(v.items[i], out, pretty, indent + 1);
    }
    newline(indent);
    out += ']';
    return;
  case Value::Kind::Map:
    if (v.fields.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    for (size_t i = 0; i < v.fields.size(); ++i) {
      if (i > 0) {
        out += ',';
      }
      newline(indent + 1);
      json::appendString(out, v.fields[i].first);
      out += pretty ? ": " : ":";
      toJson(v.fields[i].second, out, pretty, indent + 1);
    }
    newline(indent);
    out += '}';
    return;
  }
}

} // namespace

YAML::Node messageToYamlNode(const pb::Message& message) { return toYaml(fromMessage(message)); }

std::string messageToYaml(const pb::Message& message) {
  YAML::Emitter emitter;
  emitter << messageToYamlNode(message);
  return std::string(emitter.c_str()) + "\n";
}

std::string messageToJson(const pb::Message& message, bool pretty) {
  std::string out;
  toJson(fromMessage(message), out, pretty, 0);
  if (pretty) {
    out += '\n';
  }
  return out;
}

} // namespace pounce::config

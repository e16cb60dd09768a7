#pragma once

#include <google/protobuf/message.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include <yaml-cpp/yaml.h>

namespace pounce::config {

// Errors found while reading a config, each "source:line:col: field.path: problem".
// Reading goes on after an error so that one run reports everything wrong with a file.
class ConfigErrors {
public:
  explicit ConfigErrors(std::string source) : source_(std::move(source)) {}

  // Where the node for `path` was in the source (recorded while converting).
  void recordMark(const std::string& path, const YAML::Mark& mark);
  void add(const std::string& path, std::string_view problem);
  void addAt(const YAML::Mark& mark, const std::string& path, std::string_view problem);

  bool empty() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  // The same errors, structured (for the admin API's JSON answers). line/column are 0
  // when the path has no recorded position.
  struct Entry {
    std::string path;
    std::string problem;
    int line{0};
    int column{0};
  };
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& source() const { return source_; }
  // All errors, one per line.
  std::string text() const;
  absl::Status status() const;

private:
  std::string location(const std::string& path) const;
  const std::pair<int, int>* position(const std::string& path) const;

  std::string source_;
  std::vector<std::string> errors_;
  std::vector<Entry> entries_;
  std::map<std::string, std::pair<int, int>> marks_;
};

// Where `text` holds a NUL byte, as a YAML mark (0-based line and column), or nullopt. YAML
// text cannot hold one (YAML 1.2 §5.1), and yaml-cpp reads a string only up to it: what
// follows would be silently dropped.
std::optional<YAML::Mark> findNulByte(std::string_view text);
inline constexpr std::string_view kNulByteProblem =
    "a NUL byte: YAML text cannot hold one (is this a binary file?)";

// Parses YAML (JSON is accepted as well). Syntax errors, and NUL bytes, are reported with
// line and column.
absl::StatusOr<YAML::Node> parseYaml(std::string_view text, const std::string& source);
absl::StatusOr<YAML::Node> parseYamlFile(const std::string& path);

// Fills `message` from `node` strictly: unknown fields, wrong types, bad durations and
// unknown `@type`s are errors. `path` is the field path of `node` ("" at the top).
// Field names may be snake_case or lowerCamelCase; enums are case-insensitive;
// google.protobuf.Duration is written "10s" / "250ms"; google.protobuf.Any is a map with
// "@type": "type.googleapis.com/<message>" plus the message's fields.
void yamlToMessage(const YAML::Node& node, google::protobuf::Message& message,
                   const std::string& path, ConfigErrors& errors);

// The reverse, in the same form the loader reads: snake_case names, lowercase enums,
// durations as strings, Any with "@type". Default-valued fields are left out.
YAML::Node messageToYamlNode(const google::protobuf::Message& message);
std::string messageToYaml(const google::protobuf::Message& message);
std::string messageToJson(const google::protobuf::Message& message, bool pretty = true);

// The config message type behind a "type.googleapis.com/x.y.Z" URL, or nullptr.
const google::protobuf::Descriptor* findConfigType(std::string_view type_url);

} // namespace pounce::config

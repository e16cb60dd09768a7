#include "source/server/admin/config_state.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/common/time.h"

namespace pounce::server::admin {

namespace v1 = pounce::config::v1;
using google::protobuf::util::MessageDifferencer;

namespace {

constexpr uint32_t kDefaultHistory = 20;

std::string nameOf(const v1::Listener& listener, int index) {
  return listener.name().empty() ? cat("listener_", index) : listener.name();
}

std::string kindOf(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Map:
    return "a map";
  case YAML::NodeType::Scalar:
    return cat("'", node.Scalar(), "'");
  case YAML::NodeType::Null:
    return "nothing";
  default:
    return "a list";
  }
}

} // namespace

ConfigState::ConfigState(Bootstrap initial, std::string path) : path_(std::move(path)) {
  record(std::move(initial), "startup", {});
}

const ConfigVersion* ConfigState::find(uint64_t version) const {
  for (const auto& v : history_) {
    if (v.version == version) {
      return &v;
    }
  }
  return nullptr;
}

ChainVersions ConfigState::chainVersionsAfter(const Bootstrap& next, uint64_t version) const {
  if (history_.empty()) {
    ChainVersions all;
    for (const auto& name : listenerNames(next)) {
      all[name] = version;
    }
    return all;
  }
  ChainVersions out = chain_versions_;
  const ConfigDiff diff = diffConfigs(current(), next);
  for (const auto* rebuilt : {&diff.chains, &diff.replaced, &diff.moved, &diff.added}) {
    for (const auto& name : *rebuilt) {
      out[name] = version;
    }
  }
  for (const auto& name : diff.removed) {
    out.erase(name);
  }
  return out;
}

uint64_t ConfigState::record(Bootstrap applied, std::string source,
                             std::vector<std::string> changes) {
  const uint32_t limit =
      applied.admin().has_history_size() ? applied.admin().history_size() : kDefaultHistory;
  chain_versions_ = chainVersionsAfter(applied, next_);
  ConfigVersion v;
  v.version = next_++;
  v.applied_at = RealTimeSource::instance().systemTime();
  v.source = std::move(source);
  v.changes = std::move(changes);
  v.bootstrap = std::move(applied);
  history_.push_back(std::move(v));
  while (history_.size() > std::max<uint32_t>(limit, 1)) {
    history_.pop_front();
  }
  return history_.back().version;
}

int ConfigState::listenerIndex(std::string_view name) const {
  const auto& listeners = current().listeners();
  for (int i = 0; i < listeners.size(); ++i) {
    if (nameOf(listeners[i], i) == name) {
      return i;
    }
  }
  return -1;
}

std::optional<FilterList> parseChainBody(std::string_view body, int listener_index,
                                         config::ConfigErrors& errors) {
  const std::string listener_path = cat("listeners[", listener_index, "]");
  const std::string chain_path = listener_path + ".filter_chain";
  if (auto nul = config::findNulByte(body)) {
    errors.addAt(*nul, "", config::kNulByteProblem);
    return std::nullopt;
  }
  YAML::Node node;
  try {
    node = YAML::Load(std::string(body));
  } catch (const YAML::Exception& e) {
    errors.addAt(e.mark, "", e.msg);
    return std::nullopt;
  }
  if (node.IsMap()) {
    bool found = false;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (key == "filter_chain") {
        found = true;
        continue;
      }
      errors.addAt(
          kv.first.Mark(), cat(listener_path, ".", key),
          cat("unknown field '", key,
              "': the body is a filter chain, a list of filters or {filter_chain: [...]}"));
    }
    if (!errors.empty()) {
      return std::nullopt;
    }
    if (!found) {
      errors.addAt(node.Mark(), chain_path,
                   "the body is a filter chain, a list of filters or {filter_chain: [...]}");
      return std::nullopt;
    }
    node = node["filter_chain"];
  }
  if (!node.IsSequence()) {
    errors.addAt(node.Mark(), chain_path,
                 cat("expected a list of filters (a terminal one last), got ", kindOf(node)));
    return std::nullopt;
  }
  if (node.size() == 0) {
    errors.addAt(node.Mark(), chain_path, "must have at least one filter (a terminal one last)");
    return std::nullopt;
  }
  // Read it as the listener's field, so paths and checks are the loader's.
  YAML::Node wrapper(YAML::NodeType::Map);
  wrapper["filter_chain"] = node;
  v1::Listener listener;
  config::yamlToMessage(wrapper, listener, listener_path, errors);
  if (!errors.empty()) {
    return std::nullopt;
  }
  return std::move(*listener.mutable_filter_chain());
}

std::vector<std::string> listenerNames(const Bootstrap& bootstrap) {
  std::vector<std::string> out;
  for (int i = 0; i < bootstrap.listeners_size(); ++i) {
    out.push_back(nameOf(bootstrap.listeners(i), i));
  }
  return out;
}

bool ConfigDiff::empty() const {
  return chains.empty() && chainsOnly() && !logging && !admin_settings;
}

bool ConfigDiff::chainsOnly() const {
  return replaced.empty() && moved.empty() && added.empty() && removed.empty();
}

std::vector<std::string> ConfigDiff::describe() const {
  std::vector<std::string> out;
  for (const auto& n : chains) {
    out.push_back(cat("listener ", n, ": filter chain"));
  }
  for (const auto& n : replaced) {
    out.push_back(cat("listener ", n, ": settings (replaced on the same socket)"));
  }
  for (const auto& n : moved) {
    out.push_back(cat("listener ", n, ": address (new socket)"));
  }
  for (const auto& n : added) {
    out.push_back(cat("listener ", n, ": added"));
  }
  for (const auto& n : removed) {
    out.push_back(cat("listener ", n, ": removed"));
  }
  if (logging) {
    out.push_back("logging");
  }
  if (admin_settings) {
    out.push_back("admin settings");
  }
  return out;
}

ConfigDiff diffConfigs(const Bootstrap& from, const Bootstrap& to) {
  ConfigDiff diff;
  for (int i = 0; i < to.listeners_size(); ++i) {
    const v1::Listener& now = to.listeners(i);
    const std::string name = nameOf(now, i);
    const v1::Listener* before = nullptr;
    for (int j = 0; j < from.listeners_size(); ++j) {
      if (nameOf(from.listeners(j), j) == name) {
        before = &from.listeners(j);
      }
    }
    if (before == nullptr) {
      diff.added.push_back(name);
      continue;
    }
    if (!MessageDifferencer::Equals(before->address(), now.address())) {
      diff.moved.push_back(name);
      continue;
    }
    v1::Listener a = *before;
    v1::Listener b = now;
    a.clear_filter_chain();
    b.clear_filter_chain();
    a.set_name(name);
    b.set_name(name);
    if (!MessageDifferencer::Equals(a, b)) {
      diff.replaced.push_back(name);
      continue;
    }
    if (before->filter_chain_size() != now.filter_chain_size()) {
      diff.chains.push_back(name);
      continue;
    }
    for (int f = 0; f < now.filter_chain_size(); ++f) {
      if (!MessageDifferencer::Equals(before->filter_chain(f), now.filter_chain(f))) {
        diff.chains.push_back(name);
        break;
      }
    }
  }
  const auto names = listenerNames(to);
  for (const auto& name : listenerNames(from)) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      diff.removed.push_back(name);
    }
  }
  diff.logging = !MessageDifferencer::Equals(from.logging(), to.logging());
  {
    const auto& a = from.admin();
    const auto& b = to.admin();
    diff.admin_settings =
        a.has_history_size() != b.has_history_size() || a.history_size() != b.history_size() ||
        a.allowed_hosts_size() != b.allowed_hosts_size() ||
        !std::equal(a.allowed_hosts().begin(), a.allowed_hosts().end(), b.allowed_hosts().begin());
  }
  if (from.concurrency() != to.concurrency()) {
    diff.restart_needed.push_back("concurrency");
  }
  if (!MessageDifferencer::Equals(from.workers(), to.workers())) {
    diff.restart_needed.push_back("workers");
  }
  if (from.has_admin() != to.has_admin() ||
      !MessageDifferencer::Equals(from.admin().address(), to.admin().address()) ||
      from.admin().token_file() != to.admin().token_file() ||
      from.admin().allow_remote() != to.admin().allow_remote()) {
    diff.restart_needed.push_back("admin");
  }
  if (!MessageDifferencer::Equals(from.reload(), to.reload())) {
    diff.restart_needed.push_back("reload");
  }
  if (from.watch_config() != to.watch_config()) {
    diff.restart_needed.push_back("watch_config");
  }
  return diff;
}

std::vector<std::string> keepStartupFields(const Bootstrap& current, Bootstrap& candidate) {
  const ConfigDiff diff = diffConfigs(current, candidate);
  candidate.set_concurrency(current.concurrency());
  *candidate.mutable_workers() = current.workers();
  *candidate.mutable_reload() = current.reload();
  candidate.set_watch_config(current.watch_config());
  if (!current.has_admin()) {
    candidate.clear_admin();
  } else {
    auto* admin = candidate.mutable_admin();
    if (current.admin().has_address()) {
      *admin->mutable_address() = current.admin().address();
    } else {
      admin->clear_address();
    }
    admin->set_token_file(current.admin().token_file());
    admin->set_allow_remote(current.admin().allow_remote());
  }
  return diff.restart_needed;
}

void applyLoggingConfig(const v1::Logging& logging) {
  log::Level level = log::Level::Info;
  switch (logging.level()) {
  case v1::Logging::TRACE:
    level = log::Level::Trace;
    break;
  case v1::Logging::DEBUG:
    level = log::Level::Debug;
    break;
  case v1::Logging::WARNING:
    level = log::Level::Warning;
    break;
  case v1::Logging::ERROR:
    level = log::Level::Error;
    break;
  case v1::Logging::CRITICAL:
    level = log::Level::Critical;
    break;
  default:
    break;
  }
  log::setLevel(level);
  log::setFormat(logging.format() == v1::Logging::JSON ? log::Format::Json : log::Format::Text);
}

} // namespace pounce::server::admin

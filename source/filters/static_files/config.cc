#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <random>

#include "pounce/filters/static_files/v1/static_files.pb.h"
#include "source/common/strings.h"
#include "source/filters/common/proto_duration.h"
#include "source/filters/static_files/static_files.h"
#include "source/http/filter_config.h"

namespace pounce::filters::static_files {

namespace {

using ProtoConfig = pounce::filters::static_files::v1::StaticFiles;

// Checks a mount prefix and brings it to its canonical form ("/a/b", or "/").
absl::Status normalisePrefix(const std::string& field, std::string prefix, std::string& out) {
  if (prefix.empty() || prefix[0] != '/') {
    return absl::InvalidArgumentError(cat(field, ": '", prefix, "' must start with '/'"));
  }
  while (prefix.size() > 1 && prefix.back() == '/') {
    prefix.pop_back();
  }
  for (unsigned char c : prefix) {
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '\\') {
      return absl::InvalidArgumentError(
          cat(field, ": '", prefix,
              "' may hold only visible ASCII without '?', '#', '%' or '\\' (write it decoded)"));
    }
  }
  if (prefix.size() > 1) {
    for (std::string_view segment : split(std::string_view(prefix).substr(1), '/')) {
      if (segment.empty() || segment == "." || segment == "..") {
        return absl::InvalidArgumentError(
            cat(field, ": '", prefix, "' has an empty, '.' or '..' segment"));
      }
    }
  }
  out = std::move(prefix);
  return absl::OkStatus();
}

absl::Status openMount(const std::string& field, const std::string& path, Mount& mount) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) {
    return absl::InvalidArgumentError(
        cat(field, ": cannot use '", path, "': ", std::strerror(errno)));
  }
  struct stat st;
  if (::stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(cat(field, ": '", path, "' is not a directory"));
  }
  const int fd = ::open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        cat(field, ": cannot open '", path, "': ", std::strerror(errno)));
  }
  mount.root = real;
  mount.root_fd = fd;
  return absl::OkStatus();
}

constexpr uint64_t kMaxCachedFileBytes = 16 * 1024 * 1024;

std::string randomBoundary() {
  std::random_device random;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "pounce-";
  for (int i = 0; i < 24; ++i) {
    out += kHex[random() & 15];
  }
  return out;
}

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.static_files"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    auto config = std::make_shared<Config>();
    if (proto.mounts_size() == 0) {
      return absl::InvalidArgumentError(
          "mounts: at least one mount is needed ({prefix: /static, directory: ./public})");
    }
    for (int i = 0; i < proto.mounts_size(); ++i) {
      const auto& m = proto.mounts(i);
      Mount mount;
      if (auto s = normalisePrefix(cat("mounts[", i, "].prefix"), m.prefix(), mount.prefix);
          !s.ok()) {
        return s;
      }
      for (const Mount& other : config->mounts) {
        if (other.prefix == mount.prefix) {
          return absl::InvalidArgumentError(
              cat("mounts[", i, "].prefix: '", mount.prefix, "' is mounted twice"));
        }
      }
      if (m.directory().empty()) {
        return absl::InvalidArgumentError(cat("mounts[", i, "].directory: must be set"));
      }
      if (auto s = openMount(cat("mounts[", i, "].directory"), context.resolvePath(m.directory()),
                             mount);
          !s.ok()) {
        return s;
      }
      config->mounts.push_back(std::move(mount));
    }
    // Longest prefix first: match() takes the first mount that fits.
    std::stable_sort(
        config->mounts.begin(), config->mounts.end(),
        [](const Mount& a, const Mount& b) { return a.prefix.size() > b.prefix.size(); });

    if (proto.has_index_file()) {
      const std::string& index = proto.index_file();
      if (index.find('/') != std::string::npos || index == "." || index == ".." ||
          index.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(
            cat("index_file: '", index, "' must be a plain file name (or empty for none)"));
      }
      config->index_file = index;
    }
    if (proto.has_precompressed()) {
      config->precompressed = proto.precompressed();
    }
    if (proto.has_cache_control()) {
      if (!http::isValidHeaderValue(proto.cache_control())) {
        return absl::InvalidArgumentError(
            "cache_control: contains characters not allowed in a header value");
      }
      config->cache_control = std::string(trim(proto.cache_control()));
    }
    config->follow_symlinks = proto.follow_symlinks();
    config->serve_dotfiles = proto.serve_dotfiles();
    if (proto.has_fallthrough()) {
      config->fallthrough = proto.fallthrough();
    }
    for (int i = 0; i < proto.content_types_size(); ++i) {
      const auto& ct = proto.content_types(i);
      std::string ext = toLower(ct.extension());
      if (!ext.empty() && ext[0] == '.') {
        ext.erase(0, 1);
      }
      if (ext.empty() || ext.size() > 16 || ext.find_first_of("./") != std::string::npos) {
        return absl::InvalidArgumentError(cat("content_types[", i, "].extension: '", ct.extension(),
                                              "' must be an extension such as \"md\""));
      }
      if (ct.content_type().empty() || !http::isValidHeaderValue(ct.content_type())) {
        return absl::InvalidArgumentError(
            cat("content_types[", i, "].content_type: must be a valid header value"));
      }
      config->content_types[ext] = ct.content_type();
    }
    if (proto.has_default_content_type()) {
      if (proto.default_content_type().empty() ||
          !http::isValidHeaderValue(proto.default_content_type())) {
        return absl::InvalidArgumentError(
            "default_content_type: must be a non-empty, valid header value");
      }
      config->default_content_type = proto.default_content_type();
    }
    if (proto.has_max_ranges()) {
      if (proto.max_ranges() == 0) {
        return absl::InvalidArgumentError("max_ranges: must be at least 1");
      }
      config->max_ranges = proto.max_ranges();
    }
    config->boundary = randomBoundary();
    // On unless switched off: without a validity, it answers as fresh as no cache does.
    if (const auto& fc = proto.file_cache(); !fc.has_enabled() || fc.enabled()) {
      FileCache::Settings settings;
      if (fc.has_max_entries()) {
        if (fc.max_entries() == 0) {
          return absl::InvalidArgumentError("file_cache.max_entries: must be at least 1");
        }
        settings.max_entries = fc.max_entries();
      }
      if (fc.has_max_file_bytes()) {
        if (fc.max_file_bytes() > kMaxCachedFileBytes) {
          return absl::InvalidArgumentError(
              cat("file_cache.max_file_bytes: must be at most ", kMaxCachedFileBytes));
        }
        settings.max_file_bytes = fc.max_file_bytes();
      }
      if (fc.has_validity()) {
        const auto validity = toNanos(fc.validity());
        if (validity.count() < 0) {
          return absl::InvalidArgumentError("file_cache.validity: must not be negative");
        }
        settings.validity = validity;
      }
      config->file_caches = std::make_unique<FileCaches>(settings);
    }

    stats::Store& store = context.server().stats();
    auto& hits = store.family("static_hits_total",
                              "Requests answered from a file by static_files (200, 206, 304, 416).",
                              stats::Type::Counter, {"listener"});
    auto& bytes = store.family("static_bytes_total", "File bytes sent by static_files.",
                               stats::Type::Counter, {"listener"});
    config->hits = &store.series(hits, {context.listenerName()});
    config->bytes = &store.series(bytes, {context.listenerName()});

    ConfigSharedPtr shared = std::move(config);
    return http::FilterFactoryCb::inPlace<StaticFilesFilter>(
        [shared](void* at) { return new (at) StaticFilesFilter(*shared); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::static_files

#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "source/common/stats.h"
#include "source/filters/common/accept_encoding.h"
#include "source/filters/static_files/file_cache.h"
#include "source/filters/static_files/range.h"
#include "source/http/filter.h"

namespace pounce::filters::static_files {

struct Mount {
  std::string prefix; // "/" or "/a/b" (no trailing slash)
  std::string root;   // canonical path of the directory
  int root_fd{-1};    // the directory, opened O_PATH at load time
};

// The validated config: built once on the main thread, shared by every stream.
class Config {
public:
  Config() = default;
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;
  ~Config();

  // The mount serving a decoded request path (longest prefix on a segment boundary).
  const Mount* match(std::string_view path) const;
  // Content-Type for a file name: config table, built-in table, default.
  std::string_view contentType(std::string_view file_name) const;

  std::vector<Mount> mounts; // longest prefix first
  std::string index_file{"index.html"};
  bool precompressed{true};
  std::string cache_control{"public, max-age=3600"};
  bool follow_symlinks{false};
  bool serve_dotfiles{false};
  bool fallthrough{true};
  std::unordered_map<std::string, std::string> content_types; // lowercase extension ->
  std::string default_content_type{"application/octet-stream"};
  uint32_t max_ranges{16};
  std::string boundary; // multipart/byteranges boundary, random per config
  const stats::Series* hits{nullptr};
  const stats::Series* bytes{nullptr};
  // Set when `file_cache` is configured: one cache per I/O thread.
  std::unique_ptr<FileCaches> file_caches;
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// Answers requests for files under the configured mounts. Full responses and single
// ranges go out with encodeFile (sendfile on plain connections, the stream's bounded read
// loop elsewhere); multipart ranges are read here in bounded chunks, following the
// downstream watermarks.
class StaticFilesFilter final : public http::StreamFilter,
                                public http::DownstreamWatermarkCallbacks {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit StaticFilesFilter(const Config& config) : config_(&config) {}
  ~StaticFilesFilter() override;

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;

  void onDestroy() override;

  // http::DownstreamWatermarkCallbacks
  void onAboveWriteBufferHighWatermark() override {}
  void onBelowWriteBufferLowWatermark() override { pumpMultipart(); }

private:
  // Opens `relative` below `mount` (through this thread's file cache when there is one).
  OpenedFile open(const Mount& mount, const std::string& relative) const;
  http::FilterStatus miss();
  // The file could not be opened for a reason of the system's (OpenResult::Error): 503.
  http::FilterStatus unavailable(const std::string& relative);
  http::FilterStatus reject(int status, std::string_view body);
  http::FilterStatus serve(const http::RequestHeaders& headers, const Mount& mount,
                           OpenedFile& file, const std::string& relative);
  void redirectToDirectory(const http::RequestHeaders& headers, const Mount& mount,
                           const std::string& relative);
  // Replaces `file` with the best pre-compressed sibling the client accepts, if any.
  std::optional<Encoding> choosePrecompressed(const http::RequestHeaders& headers,
                                              const Mount& mount, const std::string& relative,
                                              OpenedFile& file);
  void sendMultipart(http::ResponseHeadersPtr response, std::string_view content_type,
                     uint64_t size, const std::string* bytes);
  void pumpMultipart();
  std::string partHeader(const ByteRange& range) const;

  const Config* config_;
  bool destroyed_{false};
  // Multipart state.
  FileHandleSharedPtr file_;
  std::vector<ByteRange> ranges_;
  std::string part_type_;
  uint64_t file_size_{0};
  size_t part_{0};
  uint64_t part_sent_{0};
  bool watching_{false};
  bool pumping_{false};
};

} // namespace pounce::filters::static_files

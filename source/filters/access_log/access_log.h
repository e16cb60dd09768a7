#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/http/filter.h"

namespace pounce::filters::access_log {

// A log destination shared by every filter instance writing to it. Lines are collected per
// I/O thread and written in batches: when 64 KiB are waiting, and otherwise `flush_interval`
// after the first waiting line (zero: at the end of the event-loop iteration), so a busy
// server does not make a system call per request or per loop turn.
class Sink : public std::enable_shared_from_this<Sink> {
public:
  // "" or "-" = stdout, "stderr", or a file (appended, created 0640).
  static absl::StatusOr<std::shared_ptr<Sink>> open(const std::string& path);
  // Opens every file sink's path again (log rotation renamed the file); returns a line per
  // file that could not be (it keeps writing to the old one). See source/common/reopen.h.
  static std::vector<std::string> reopenAll();
  ~Sink();

  void write(event::Dispatcher& dispatcher, std::string_view line,
             std::chrono::milliseconds flush_interval);
  // Or in two steps, formatting in place: append to begin()'s buffer (this thread's lines
  // waiting for this sink), then commit().
  Buffer& begin();
  void commit(event::Dispatcher& dispatcher, std::chrono::milliseconds flush_interval);
  void writeNow(std::string_view bytes);
  const std::string& path() const { return path_; }
  // The storage of this thread's buffer for this sink (0 if it has none). A flushed batch's
  // memory is kept for the next one, so a busy thread does not grow a buffer from nothing
  // every 64 KiB (for tests).
  size_t threadBufferCapacity();

private:
  Sink(std::string path, int fd, bool owns) : path_(std::move(path)), fd_(fd), owns_(owns) {}
  void flushThread();
  void armFlushTimer(event::Dispatcher& dispatcher, std::chrono::milliseconds interval);
  static void flushAllOnThisThread();

  std::string path_;
  int fd_;
  bool owns_;
};
using SinkSharedPtr = std::shared_ptr<Sink>;

enum class Format { Text, Json };

// The default of `flush_interval`.
inline constexpr std::chrono::milliseconds kDefaultFlushInterval{100};

struct Config {
  Format format{Format::Text};
  SinkSharedPtr sink;
  std::chrono::milliseconds flush_interval{kDefaultFlushInterval};
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// Adds one finished stream's line (with its newline) to `out`; a text line is written in
// place, without the zero-fill of growing a string first.
void appendLine(Buffer& out, const http::StreamInfo& info, Format format);
// The same line as a string (tests, tools).
std::string formatLine(const http::StreamInfo& info, Format format);

class AccessLogFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit AccessLogFilter(const Config& config) : config_(&config) {}
  void onStreamComplete() override;

private:
  const Config* config_;
};

} // namespace pounce::filters::access_log

#include "source/filters/access_log/access_log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

#include "source/common/json.h"
#include "source/common/strings.h"
#include "source/http/headers.h"

namespace pounce::filters::access_log {

namespace {

constexpr size_t kFlushAt = 64 * 1024;

struct Pending {
  std::string data;
  SinkSharedPtr keep_alive;
  bool scheduled{false};
};

thread_local std::unordered_map<Sink*, Pending>* t_pending = nullptr;

std::unordered_map<Sink*, Pending>& pending() {
  if (t_pending == nullptr) {
    t_pending = new std::unordered_map<Sink*, Pending>();
  }
  return *t_pending;
}

std::mutex g_sinks_lock;
std::map<std::string, std::weak_ptr<Sink>>& sinks() {
  static auto* m = new std::map<std::string, std::weak_ptr<Sink>>();
  return *m;
}

void writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// "[24/Nov/2026:22:42:12 +0000]" for the text format, cached per second per thread.
std::string_view clfTime(SystemTime t) {
  thread_local time_t cached = -1;
  thread_local char buf[40];
  thread_local size_t len = 0;
  const time_t s = std::chrono::system_clock::to_time_t(t);
  if (s != cached) {
    struct tm tm;
    gmtime_r(&s, &tm);
    len = strftime(buf, sizeof(buf), "[%d/%b/%Y:%H:%M:%S +0000]", &tm);
    cached = s;
  }
  return {buf, len};
}

std::string isoTime(SystemTime t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const time_t s = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char buf[40];
  const size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  snprintf(out, sizeof(out), "%.*s.%03dZ", static_cast<int>(n), buf, static_cast<int>(ms % 1000));
  return out;
}

std::string flagsText(uint32_t flags) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {http::ResponseFlag::LocalReply, "local_reply"},
      {http::ResponseFlag::DownstreamReset, "client_reset"},
      {http::ResponseFlag::RequestTimeout, "request_timeout"},
      {http::ResponseFlag::RateLimited, "rate_limited"},
      {http::ResponseFlag::LoadShed, "load_shed"},
      {http::ResponseFlag::ProtocolError, "protocol_error"},
      {http::ResponseFlag::StreamReset, "stream_reset"},
      {http::ResponseFlag::Draining, "draining"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) {
      if (!out.empty()) {
        out += ',';
      }
      out += name;
    }
  }
  return out;
}

// Request line parts are escaped in the text format so a line is always one line.
void appendEscaped(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
}

} // namespace

absl::StatusOr<SinkSharedPtr> Sink::open(const std::string& path) {
  const std::string key = path.empty() ? "-" : path;
  std::lock_guard<std::mutex> lock(g_sinks_lock);
  auto it = sinks().find(key);
  if (it != sinks().end()) {
    if (auto existing = it->second.lock()) {
      return existing;
    }
  }
  SinkSharedPtr sink;
  if (key == "-") {
    sink.reset(new Sink(key, 1, false));
  } else if (key == "stderr") {
    sink.reset(new Sink(key, 2, false));
  } else {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          cat("path: cannot open '", path, "' for writing: ", std::strerror(errno)));
    }
    sink.reset(new Sink(key, fd, true));
  }
  sinks()[key] = sink;
  return sink;
}

Sink::~Sink() {
  if (owns_) {
    ::close(fd_);
  }
}

void Sink::writeNow(std::string_view bytes) { writeAll(fd_, bytes); }

void Sink::write(event::Dispatcher& dispatcher, std::string_view line) {
  Pending& p = pending()[this];
  p.data.append(line.data(), line.size());
  if (p.data.size() >= kFlushAt) {
    flushThread();
    return;
  }
  if (!p.scheduled) {
    p.scheduled = true;
    p.keep_alive = shared_from_this();
    dispatcher.defer([this] { flushThread(); });
  }
}

void Sink::flushThread() {
  auto it = pending().find(this);
  if (it == pending().end()) {
    return;
  }
  Pending& p = it->second;
  if (!p.data.empty()) {
    writeAll(fd_, p.data);
    p.data.clear();
  }
  if (p.scheduled) {
    p.scheduled = false;
    // Dropping the reference may destroy this sink: do it last.
    SinkSharedPtr keep = std::move(p.keep_alive);
    pending().erase(it);
  }
}

std::string formatLine(const http::StreamInfo& info, Format format) {
  const http::RequestHeaders* req = info.request_headers;
  const std::string_view method = req ? std::string_view(req->method()) : "-";
  const std::string_view path = req ? std::string_view(req->path()) : "-";
  const std::string_view user_agent = req ? req->getOr("user-agent") : "";
  const std::string_view referer = req ? req->getOr("referer") : "";
  const std::string_view protocol = http::protocolString(info.protocol);
  const double duration = std::chrono::duration<double>(info.duration()).count();
  const std::string client =
      info.client_address.isIp() ? info.client_address.ip()
                                 : (info.client_address.isPipe() ? std::string("unix") : "-");
  std::string line;
  line.reserve(256);
  if (format == Format::Json) {
    line += "{\"time\":\"";
    line += isoTime(info.start_system_time);
    line += "\",\"client\":";
    json::appendString(line, client);
    line += ",\"method\":";
    json::appendString(line, method);
    line += ",\"path\":";
    json::appendString(line, path);
    line += ",\"protocol\":\"";
    line += protocol;
    line += "\",\"status\":";
    line += std::to_string(info.response_code);
    line += ",\"bytes\":";
    line += std::to_string(info.bytes_sent);
    line += ",\"request_bytes\":";
    line += std::to_string(info.bytes_received);
    char dur[32];
    snprintf(dur, sizeof(dur), "%.6f", duration);
    line += ",\"duration\":";
    line += dur;
    line += ",\"listener\":";
    json::appendString(line, info.listener_name);
    if (!info.request_id.empty()) {
      line += ",\"request_id\":";
      json::appendString(line, info.request_id);
    }
    if (!user_agent.empty()) {
      line += ",\"user_agent\":";
      json::appendString(line, user_agent);
    }
    if (!referer.empty()) {
      line += ",\"referer\":";
      json::appendString(line, referer);
    }
    if (info.response_flags != 0) {
      line += ",\"flags\":";
      json::appendString(line, flagsText(info.response_flags));
    }
    line += "}\n";
    return line;
  }
  line += client;
  line += " - - ";
  line += clfTime(info.start_system_time);
  line += " \"";
  appendEscaped(line, method);
  line += ' ';
  appendEscaped(line, path);
  line += ' ';
  line += protocol;
  line += "\" ";
  line += info.response_code == 0 ? std::string("-") : std::to_string(info.response_code);
  line += ' ';
  line += std::to_string(info.bytes_sent);
  char dur[32];
  snprintf(dur, sizeof(dur), " %.6f \"", duration);
  line += dur;
  appendEscaped(line, referer.empty() ? "-" : referer);
  line += "\" \"";
  appendEscaped(line, user_agent.empty() ? "-" : user_agent);
  line += "\" ";
  line += info.request_id.empty() ? "-" : info.request_id;
  if (info.response_flags != 0) {
    line += ' ';
    line += flagsText(info.response_flags);
  }
  line += '\n';
  return line;
}

void AccessLogFilter::onStreamComplete() {
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  if (info.skip_access_log) {
    return;
  }
  config_->sink->write(decoder_callbacks_->dispatcher(), formatLine(info, config_->format));
}

} // namespace pounce::filters::access_log

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

// Lines formatted on this thread and not yet written, per sink; freed when the thread ends
// (a sink's destructor only closes its file, so releasing the last reference here is safe).
thread_local std::unordered_map<Sink*, Pending> t_pending;
// The memory of this thread's last flushed buffer, for the next one.
thread_local std::string t_spare;

std::unordered_map<Sink*, Pending>& pending() { return t_pending; }

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

// "2026-11-24T22:42:12.345Z" for the JSON format; the seconds part cached per thread.
void appendIsoTime(std::string& out, SystemTime t) {
  thread_local time_t cached = -1;
  thread_local char buf[32];
  thread_local size_t len = 0;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const time_t s = static_cast<time_t>(ms / 1000);
  if (s != cached) {
    struct tm tm;
    gmtime_r(&s, &tm);
    len = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    cached = s;
  }
  out.append(buf, len);
  const int frac = static_cast<int>(ms % 1000);
  const char digits[5] = {'.', static_cast<char>('0' + frac / 100),
                          static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10), 'Z'};
  out.append(digits, sizeof(digits));
}

// Seconds with six decimals ("0.000123"), from nanoseconds rounded to microseconds: what
// "%.6f" prints, without printf's floating-point path.
void appendSeconds(std::string& out, std::chrono::nanoseconds d) {
  const int64_t us = d.count() <= 0 ? 0 : (d.count() + 500) / 1000;
  detail::appendPiece(out, us / 1000000);
  char frac[7] = {'.'};
  int64_t rest = us % 1000000;
  for (int i = 6; i >= 1; --i) {
    frac[i] = static_cast<char>('0' + rest % 10);
    rest /= 10;
  }
  out.append(frac, sizeof(frac));
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
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0; // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      const char esc[2] = {'\\', static_cast<char>(c)};
      out.append(esc, 2);
    } else {
      const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out.append(esc, 4);
    }
  }
  out.append(s.data() + run, s.size() - run);
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
  std::string& out = begin();
  out.append(line.data(), line.size());
  commit(dispatcher);
}

std::string& Sink::begin() {
  Pending& p = pending()[this];
  if (p.data.capacity() == 0) {
    p.data = std::move(t_spare); // reuse the last flushed buffer's memory
  }
  return p.data;
}

void Sink::commit(event::Dispatcher& dispatcher) {
  Pending& p = pending()[this];
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
    t_spare = std::move(p.data);
    // Dropping the reference may destroy this sink: do it last.
    SinkSharedPtr keep = std::move(p.keep_alive);
    pending().erase(it);
  }
}

std::string formatLine(const http::StreamInfo& info, Format format) {
  std::string line;
  appendLine(line, info, format);
  return line;
}

void appendLine(std::string& line, const http::StreamInfo& info, Format format) {
  const http::RequestHeaders* req = info.request_headers;
  const std::string_view method = req ? std::string_view(req->method()) : "-";
  const std::string_view path = req ? std::string_view(req->path()) : "-";
  const std::string_view user_agent = req ? req->getOr("user-agent") : "";
  const std::string_view referer = req ? req->getOr("referer") : "";
  const std::string_view protocol = http::protocolString(info.protocol);
  const auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(info.duration());
  const std::string client = info.client_address.isIp()
                                 ? info.client_address.ip()
                                 : (info.client_address.isPipe() ? std::string("unix") : "-");
  line.reserve(line.size() + 256);
  if (format == Format::Json) {
    line += "{\"time\":\"";
    appendIsoTime(line, info.start_system_time);
    line += "\",\"client\":";
    json::appendString(line, client);
    line += ",\"method\":";
    json::appendString(line, method);
    line += ",\"path\":";
    json::appendString(line, path);
    line += ",\"protocol\":\"";
    line += protocol;
    line += "\",\"status\":";
    detail::appendPiece(line, info.response_code);
    line += ",\"bytes\":";
    detail::appendPiece(line, info.bytes_sent);
    line += ",\"request_bytes\":";
    detail::appendPiece(line, info.bytes_received);
    line += ",\"duration\":";
    appendSeconds(line, duration);
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
    return;
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
  if (info.response_code == 0) {
    line += '-';
  } else {
    detail::appendPiece(line, info.response_code);
  }
  line += ' ';
  detail::appendPiece(line, info.bytes_sent);
  line += ' ';
  appendSeconds(line, duration);
  line += " \"";
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
}

void AccessLogFilter::onStreamComplete() {
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  if (info.skip_access_log) {
    return;
  }
  // Formatted straight into this thread's pending buffer for the sink.
  Sink& sink = *config_->sink;
  appendLine(sink.begin(), info, config_->format);
  sink.commit(decoder_callbacks_->dispatcher());
}

} // namespace pounce::filters::access_log

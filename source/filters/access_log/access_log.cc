#include "source/filters/access_log/access_log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <map>
#include <unordered_map>

#include "source/common/byte_set.h"
#include "source/common/json.h"
#include "source/common/reopen.h"
#include "source/common/strings.h"
#include "source/common/swar.h"
#include "source/http/headers.h"

namespace pounce::filters::access_log {

namespace {

constexpr size_t kFlushAt = 64 * 1024;

struct Pending {
  Pending() = default;
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;
  // Lines still here when the thread ends (its loop stopped before their flush) are
  // written now: stopping loses no line.
  ~Pending() {
    if (!data.empty() && keep_alive != nullptr) {
      keep_alive->writeNow(data.view());
    }
  }

  Buffer data;
  // Held from the first waiting line until the flush, so the sink outlives its lines; an
  // entry with it is erased by the flush.
  SinkSharedPtr keep_alive;
  bool deferred{false}; // a flush at the end of this loop turn is scheduled
};

// One flush timer per thread, for every sink with lines waiting on that thread.
struct FlushTimer {
  // Shared with the dispatcher's destroy callback: if the loop goes before the thread, the
  // callback frees the timer while the loop still exists.
  struct Holder {
    event::TimerPtr timer;
  };
  std::shared_ptr<Holder> holder;
  event::Dispatcher* dispatcher{nullptr};
  // While armed: when it fires, and the interval it was armed with.
  bool armed{false};
  MonotonicTime due;
  std::chrono::milliseconds interval{0};

  // Whether a line that may wait `wait` on `on` is covered without touching the clock.
  bool covers(const event::Dispatcher& on, std::chrono::milliseconds wait) const {
    return armed && dispatcher == &on && holder->timer != nullptr && wait >= interval;
  }
};
thread_local FlushTimer t_flush;

// Lines formatted on this thread and not yet written, per sink; freed when the thread ends
// (a sink's destructor only closes its file, so releasing the last reference here is safe).
thread_local std::unordered_map<Sink*, Pending> t_pending;
// The memory of this thread's last flushed buffer, for the next one.
thread_local Buffer t_spare;

// The last sink used on this thread and its entry (map nodes do not move), so a line costs
// no hash lookup in the usual case of one access log per listener.
thread_local Sink* t_last_sink = nullptr;
thread_local Pending* t_last_pending = nullptr;

std::unordered_map<Sink*, Pending>& pending() { return t_pending; }

Pending& pendingFor(Sink* sink) {
  if (sink != t_last_sink) {
    t_last_pending = &t_pending[sink];
    t_last_sink = sink;
  }
  return *t_last_pending;
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

// Bytes the text format escapes: controls, DEL, '"', '\\' and non-ASCII.
constexpr ByteSet kEscape =
    ByteSet::of([](unsigned char c) { return c < 0x20 || c >= 0x7f || c == '"' || c == '\\'; });

// The bytes of `w` that kEscape holds (top bit of each set).
constexpr auto wordNeedsEscape = [](uint64_t w) {
  return swar::nonAscii(w) | swar::controlOrDel(w) | swar::equalTo(w, '"') | swar::equalTo(w, '\\');
};

// The escaping copy of a field that has a byte to escape (out of line: rare, and its
// registers would otherwise be saved and restored around every field).
[[gnu::noinline]] char* putEscapedSlow(char* p, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t run = 0; // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!kEscape.has(c)) {
      continue;
    }
    std::memcpy(p, s.data() + run, i - run);
    p += i - run;
    run = i + 1;
    *p++ = '\\';
    if (c == '"' || c == '\\') {
      *p++ = static_cast<char>(c);
    } else {
      *p++ = 'x';
      *p++ = kHex[c >> 4];
      *p++ = kHex[c & 0xf];
    }
  }
  std::memcpy(p, s.data() + run, s.size() - run);
  return p + (s.size() - run);
}

// Request line parts are escaped in the text format so a line is always one line. Writes
// at most 4 * s.size() bytes at `p`.
inline char* putEscaped(char* p, std::string_view s) {
  // The usual field has nothing to escape: found a word at a time, then copied whole.
  if (swar::anyByte(s.data(), s.size(), 'a', wordNeedsEscape)) [[unlikely]] {
    return putEscapedSlow(p, s);
  }
  copyBytes(p, s.data(), s.size());
  return p + s.size();
}

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

char* putUint(char* p, uint64_t v) { return std::to_chars(p, p + 20, v).ptr; }

// "00" to "99": two digits of a number written with one copy.
constexpr auto kDigitPairs = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

// Writes `v` < 100 as exactly two digits.
inline char* putPair(char* p, uint32_t v) {
  std::memcpy(p, &kDigitPairs[2 * v], 2);
  return p + 2;
}

// A status code: three digits for every code HTTP has (100 to 999).
inline char* putStatus(char* p, uint64_t code) {
  if (code < 100 || code > 999) {
    return putUint(p, code);
  }
  *p++ = static_cast<char>('0' + code / 100);
  return putPair(p, static_cast<uint32_t>(code % 100));
}

// Seconds with six decimals ("0.000123"), from nanoseconds rounded to microseconds: what
// "%.6f" prints, without printf's floating-point path. Writes at most 28 bytes.
char* putSeconds(char* p, std::chrono::nanoseconds d) {
  const int64_t us = d.count() <= 0 ? 0 : (d.count() + 500) / 1000;
  p = putUint(p, static_cast<uint64_t>(us / 1000000));
  *p++ = '.';
  const auto rest = static_cast<uint32_t>(us % 1000000);
  p = putPair(p, rest / 10000);
  p = putPair(p, rest / 100 % 100);
  return putPair(p, rest % 100);
}

void appendSeconds(std::string& out, std::chrono::nanoseconds d) {
  char buf[32];
  out.append(buf, static_cast<size_t>(putSeconds(buf, d) - buf));
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

std::vector<std::string> Sink::reopenAll() {
  std::vector<SinkSharedPtr> live;
  {
    std::lock_guard<std::mutex> lock(g_sinks_lock);
    for (const auto& [path, weak] : sinks()) {
      if (auto sink = weak.lock(); sink != nullptr && sink->owns_) {
        live.push_back(std::move(sink));
      }
    }
  }
  std::vector<std::string> problems;
  for (const auto& sink : live) {
    const int fd = ::open(sink->path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      problems.push_back(cat("access log '", sink->path_, "': cannot open it again (",
                             std::strerror(errno), "); lines go on to the old file"));
      continue;
    }
    // The new file takes the old descriptor's number in one step: a write on another I/O
    // thread goes wholly to one file or the other, and nothing else needs to change.
    if (::dup2(fd, sink->fd_) < 0) {
      problems.push_back(cat("access log '", sink->path_, "': ", std::strerror(errno)));
    }
    ::close(fd);
  }
  return problems;
}

namespace {
[[maybe_unused]] const bool kReopenRegistered = (addReopenHook(&Sink::reopenAll), true);
} // namespace

Sink::~Sink() {
  if (owns_) {
    ::close(fd_);
  }
}

void Sink::writeNow(std::string_view bytes) { writeAll(fd_, bytes); }

void Sink::write(event::Dispatcher& dispatcher, std::string_view line,
                 std::chrono::milliseconds flush_interval) {
  begin().add(line);
  commit(dispatcher, flush_interval);
}

Buffer& Sink::begin() {
  Pending& p = pendingFor(this);
  if (p.data.capacity() == 0) {
    p.data = std::move(t_spare); // reuse the last flushed buffer's memory
  }
  return p.data;
}

size_t Sink::threadBufferCapacity() {
  auto it = pending().find(this);
  return it == pending().end() ? 0 : it->second.data.capacity();
}

void Sink::commit(event::Dispatcher& dispatcher, std::chrono::milliseconds flush_interval) {
  Pending& p = pendingFor(this);
  if (p.keep_alive == nullptr) {
    p.keep_alive = shared_from_this(); // (also marks the entry for erasing once flushed)
  }
  if (p.data.length() >= kFlushAt) {
    flushThread();
    return;
  }
  if (flush_interval.count() <= 0) {
    if (!p.deferred) {
      p.deferred = true;
      // (The lambda holds the sink too: a 64 KiB write before it runs drops keep_alive.)
      dispatcher.defer([self = shared_from_this()] { self->flushThread(); });
    }
    return;
  }
  if (!t_flush.covers(dispatcher, flush_interval)) {
    armFlushTimer(dispatcher, flush_interval);
  }
}

void Sink::armFlushTimer(event::Dispatcher& dispatcher, std::chrono::milliseconds interval) {
  FlushTimer& f = t_flush;
  if (f.dispatcher != &dispatcher || f.holder == nullptr || f.holder->timer == nullptr) {
    if (f.holder != nullptr) {
      f.holder->timer.reset(); // on a loop this thread no longer runs
    }
    f.holder = std::make_shared<FlushTimer::Holder>();
    f.holder->timer = dispatcher.createTimer([] { flushAllOnThisThread(); });
    dispatcher.addDestroyCallback([holder = f.holder] { holder->timer.reset(); });
    f.dispatcher = &dispatcher;
    f.armed = false;
  }
  const MonotonicTime due = dispatcher.now() + interval;
  if (!f.armed || due < f.due) {
    f.holder->timer->enableTimer(interval);
    f.armed = true;
    f.due = due;
    f.interval = interval;
  }
}

void Sink::flushAllOnThisThread() {
  t_flush.armed = false;
  std::vector<Sink*> waiting;
  waiting.reserve(pending().size());
  for (const auto& [sink, p] : pending()) {
    waiting.push_back(sink);
  }
  for (Sink* sink : waiting) {
    sink->flushThread(); // (may destroy the sink: nothing of it is used after)
  }
}

void Sink::flushThread() {
  auto it = pending().find(this);
  if (it == pending().end()) {
    return;
  }
  Pending& p = it->second;
  if (!p.data.empty()) {
    writeAll(fd_, p.data.view());
    p.data.clear();
  }
  if (p.keep_alive != nullptr) {
    t_spare = std::move(p.data);
    // Dropping the reference may destroy this sink: do it last.
    SinkSharedPtr keep = std::move(p.keep_alive);
    if (t_last_sink == this) {
      t_last_sink = nullptr;
      t_last_pending = nullptr;
    }
    pending().erase(it);
  }
}

namespace {

// What a line says about a request, looked up once for either format.
struct LineFields {
  std::string_view method;
  std::string_view path;
  std::string_view user_agent; // empty: none
  std::string_view referer;    // empty: none
  std::string_view protocol;
  std::string_view client;
  std::chrono::nanoseconds duration;
};

LineFields fieldsOf(const http::StreamInfo& info) {
  LineFields f;
  const http::RequestHeaders* req = info.request_headers;
  f.method = req ? std::string_view(req->method()) : "-";
  f.path = req ? std::string_view(req->path()) : "-";
  // Both fields found in one pass over the request head (the first of each counts).
  bool have_agent = false;
  bool have_referer = false;
  for (size_t i = 0; req != nullptr && i < req->size() && !(have_agent && have_referer); ++i) {
    const std::string_view name = req->nameAt(i);
    if (!have_agent && name == "user-agent") {
      f.user_agent = req->valueAt(i);
      have_agent = true;
    } else if (!have_referer && name == "referer") {
      f.referer = req->valueAt(i);
      have_referer = true;
    }
  }
  f.protocol = http::protocolString(info.protocol);
  f.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(info.duration());
  f.client = info.client_address.isIp() ? std::string_view(info.client_address.ip())
                                        : (info.client_address.isPipe() ? "unix" : "-");
  return f;
}

void appendJson(std::string& line, const http::StreamInfo& info, const LineFields& f) {
  line.reserve(line.size() + 256);
  line += "{\"time\":\"";
  appendIsoTime(line, info.start_system_time);
  line += "\",\"client\":";
  json::appendString(line, f.client);
  line += ",\"method\":";
  json::appendString(line, f.method);
  line += ",\"path\":";
  json::appendString(line, f.path);
  line += ",\"protocol\":\"";
  line += f.protocol;
  appendCat(line, "\",\"status\":", info.response_code, ",\"bytes\":", info.bytes_sent,
            ",\"request_bytes\":", info.bytes_received, ",\"duration\":");
  appendSeconds(line, f.duration);
  line += ",\"listener\":";
  json::appendString(line, info.listener_name);
  if (!info.request_id.empty()) {
    line += ",\"request_id\":";
    json::appendString(line, info.request_id);
  }
  if (!f.user_agent.empty()) {
    line += ",\"user_agent\":";
    json::appendString(line, f.user_agent);
  }
  if (!f.referer.empty()) {
    line += ",\"referer\":";
    json::appendString(line, f.referer);
  }
  if (info.response_flags != 0) {
    line += ",\"flags\":";
    json::appendString(line, flagsText(info.response_flags));
  }
  line += "}\n";
}

// A text line is written through a cursor into space of `out` reserved once for its worst
// case (every escaped byte four bytes), then what was written is committed.
void putText(const http::StreamInfo& info, const LineFields& f, Buffer& out) {
  const std::string_view referer_or = f.referer.empty() ? "-" : f.referer;
  const std::string_view agent_or = f.user_agent.empty() ? "-" : f.user_agent;
  const std::string flags = info.response_flags != 0 ? flagsText(info.response_flags) : "";
  const std::string_view time = clfTime(info.start_system_time);
  char* const start = out.reserve(
      f.client.size() + time.size() + f.protocol.size() + info.request_id.size() + flags.size() +
      4 * (f.method.size() + f.path.size() + referer_or.size() + agent_or.size()) + 96);
  char* p = put(start, f.client);
  p = put(p, " - - ");
  p = put(p, time);
  p = put(p, " \"");
  p = putEscaped(p, f.method);
  *p++ = ' ';
  p = putEscaped(p, f.path);
  *p++ = ' ';
  p = put(p, f.protocol);
  p = put(p, "\" ");
  if (info.response_code == 0) {
    *p++ = '-';
  } else {
    p = putStatus(p, static_cast<uint64_t>(info.response_code));
  }
  *p++ = ' ';
  p = putUint(p, info.bytes_sent);
  *p++ = ' ';
  p = putSeconds(p, f.duration);
  // (An absent field is a dash: nothing to escape.)
  p = put(p, " \"");
  p = f.referer.empty() ? put(p, "-") : putEscaped(p, f.referer);
  p = put(p, "\" \"");
  p = f.user_agent.empty() ? put(p, "-") : putEscaped(p, f.user_agent);
  p = put(p, "\" ");
  p = put(p, info.request_id.empty() ? std::string_view("-") : std::string_view(info.request_id));
  if (!flags.empty()) {
    *p++ = ' ';
    p = put(p, flags);
  }
  *p++ = '\n';
  out.commit(static_cast<size_t>(p - start));
}

} // namespace

std::string formatLine(const http::StreamInfo& info, Format format) {
  Buffer line;
  appendLine(line, info, format);
  return line.toString();
}

void appendLine(Buffer& out, const http::StreamInfo& info, Format format) {
  const LineFields f = fieldsOf(info);
  if (format == Format::Json) {
    thread_local std::string t_json;
    t_json.clear();
    appendJson(t_json, info, f);
    out.add(t_json);
    return;
  }
  putText(info, f, out);
}

void AccessLogFilter::onStreamComplete() {
  const http::StreamInfo& info = decoder_callbacks_->streamInfo();
  if (info.skip_access_log) {
    return;
  }
  // Formatted straight into this thread's pending buffer for the sink.
  Sink& sink = *config_->sink;
  appendLine(sink.begin(), info, config_->format);
  sink.commit(decoder_callbacks_->dispatcher(), config_->flush_interval);
}

} // namespace pounce::filters::access_log

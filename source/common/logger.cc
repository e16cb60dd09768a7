#include "source/common/logger.h"

#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "source/common/json.h"

namespace pounce::log {

namespace detail {
std::atomic<int> levels[static_cast<int>(Component::Count)] = {
    static_cast<int>(Level::Info), static_cast<int>(Level::Info), static_cast<int>(Level::Info),
    static_cast<int>(Level::Info), static_cast<int>(Level::Info), static_cast<int>(Level::Info),
    static_cast<int>(Level::Info), static_cast<int>(Level::Info), static_cast<int>(Level::Info),
};
} // namespace detail

namespace {

std::atomic<int> g_format{static_cast<int>(Format::Text)};
std::atomic<int> g_fd{1};
char g_tag[16] = {0};

constexpr std::string_view kLevelNames[] = {"trace", "debug",    "info", "warning",
                                            "error", "critical", "off"};
constexpr std::string_view kComponentNames[] = {"main", "config", "conn",  "http",  "http2",
                                                "tls",  "asgi",   "admin", "filter"};

} // namespace

std::string_view levelName(Level level) { return kLevelNames[static_cast<int>(level)]; }

bool parseLevel(std::string_view name, Level& out) {
  for (int i = 0; i < static_cast<int>(std::size(kLevelNames)); ++i) {
    if (kLevelNames[i] == name) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  if (name == "warn") {
    out = Level::Warning;
    return true;
  }
  return false;
}

std::string_view componentName(Component component) {
  return kComponentNames[static_cast<int>(component)];
}

bool parseComponent(std::string_view name, Component& out) {
  for (int i = 0; i < static_cast<int>(Component::Count); ++i) {
    if (kComponentNames[i] == name) {
      out = static_cast<Component>(i);
      return true;
    }
  }
  return false;
}

void setLevel(Level level) {
  for (auto& l : detail::levels) {
    l.store(static_cast<int>(level), std::memory_order_relaxed);
  }
}

void setLevel(Component component, Level level) {
  detail::levels[static_cast<int>(component)].store(static_cast<int>(level),
                                                    std::memory_order_relaxed);
}

Level level(Component component) {
  return static_cast<Level>(detail::levels[static_cast<int>(component)].load());
}

void setFormat(Format format) { g_format.store(static_cast<int>(format)); }

void setFd(int fd) { g_fd.store(fd); }

void setProcessTag(std::string_view tag) {
  const size_t n = std::min(tag.size(), sizeof(g_tag) - 1);
  std::memcpy(g_tag, tag.data(), n);
  g_tag[n] = 0;
}

void write(Component component, Level level, std::string_view message) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char stamp[40];
  snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(tv.tv_usec / 1000));
  std::string line;
  line.reserve(message.size() + 80);
  if (static_cast<Format>(g_format.load(std::memory_order_relaxed)) == Format::Json) {
    line += "{\"time\":\"";
    line += stamp;
    line += "\",\"level\":\"";
    line += levelName(level);
    line += "\",\"component\":\"";
    line += componentName(component);
    line += "\",\"pid\":";
    line += std::to_string(getpid());
    if (g_tag[0] != 0) {
      line += ",\"worker\":\"";
      line += g_tag;
      line += '"';
    }
    line += ",\"message\":";
    json::appendString(line, message);
    line += "}\n";
  } else {
    line += stamp;
    if (g_tag[0] != 0) {
      line += " ";
      line += g_tag;
    }
    line += " [";
    line += levelName(level);
    line += "] [";
    line += componentName(component);
    line += "] ";
    line += message;
    line += '\n';
  }
  const int fd = g_fd.load(std::memory_order_relaxed);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

} // namespace pounce::log

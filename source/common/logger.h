#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace pounce::log {

enum class Level : int { Trace = 0, Debug, Info, Warning, Error, Critical, Off };

// Each log line belongs to a component whose level can be changed at run time
// (the admin API's /logging does that).
enum class Component : int { Main = 0, Config, Conn, Http, Http2, Tls, Asgi, Admin, Filter, Count };

enum class Format { Text, Json };

std::string_view levelName(Level level);
bool parseLevel(std::string_view name, Level& out);
std::string_view componentName(Component component);
bool parseComponent(std::string_view name, Component& out);

void setLevel(Level level); // all components
void setLevel(Component component, Level level);
Level level(Component component);
void setFormat(Format format);
// Where lines go: an fd (default 1, stdout).
void setFd(int fd);
// A tag shown on every line of this process (worker processes use "w1", "w2"...).
void setProcessTag(std::string_view tag);

namespace detail {
extern std::atomic<int> levels[static_cast<int>(Component::Count)];
}

inline bool enabled(Component component, Level level) {
  return static_cast<int>(level) >=
         detail::levels[static_cast<int>(component)].load(std::memory_order_relaxed);
}

// Writes one line (timestamp, level, component, message) with a single write(2).
void write(Component component, Level level, std::string_view message);

} // namespace pounce::log

#define POUNCE_LOG(COMPONENT, LEVEL, ...)                                                          \
  do {                                                                                             \
    if (::pounce::log::enabled(::pounce::log::Component::COMPONENT,                                \
                               ::pounce::log::Level::LEVEL)) {                                     \
      ::pounce::log::write(::pounce::log::Component::COMPONENT, ::pounce::log::Level::LEVEL,       \
                           ::absl::StrFormat(__VA_ARGS__));                                        \
    }                                                                                              \
  } while (0)

#pragma once

namespace pounce {

inline constexpr const char* kVersion = "0.1.0";

} // namespace pounce

#include "source/filters/common/accept_encoding.h"

#include "source/common/strings.h"

namespace pounce::filters {

namespace {

// "1", "1.0", "0.5", "0.125" -> thousandths; anything else (including > 1) -> 0.
int parseQ(std::string_view v) {
  v = trim(v);
  if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) {
    return 0;
  }
  int whole = v[0] - '0';
  int frac = 0;
  if (v.size() > 1) {
    if (v[1] != '.') {
      return 0;
    }
    int scale = 100;
    for (size_t i = 2; i < v.size(); ++i) {
      if (v[i] < '0' || v[i] > '9') {
        return 0;
      }
      frac += (v[i] - '0') * scale;
      scale /= 10;
    }
  }
  const int q = whole * 1000 + frac;
  return q > 1000 ? 0 : q;
}

} // namespace

std::string_view encodingName(Encoding e) {
  switch (e) {
  case Encoding::Zstd:
    return "zstd";
  case Encoding::Brotli:
    return "br";
  case Encoding::Gzip:
    return "gzip";
  }
  return "";
}

std::string_view encodingSuffix(Encoding e) {
  switch (e) {
  case Encoding::Zstd:
    return ".zst";
  case Encoding::Brotli:
    return ".br";
  case Encoding::Gzip:
    return ".gz";
  }
  return "";
}

std::optional<Encoding> parseEncoding(std::string_view name) {
  if (http::equalsIgnoreCase(name, "zstd")) {
    return Encoding::Zstd;
  }
  if (http::equalsIgnoreCase(name, "br")) {
    return Encoding::Brotli;
  }
  if (http::equalsIgnoreCase(name, "gzip")) {
    return Encoding::Gzip;
  }
  return std::nullopt;
}

AcceptEncoding AcceptEncoding::fromHeaders(const http::HeaderMap& headers) {
  AcceptEncoding out;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.nameAt(i) == "accept-encoding") {
      out.parse(headers.valueAt(i));
    }
  }
  return out;
}

namespace {

bool mentionsIdentity(std::string_view value) {
  constexpr std::string_view kIdentity = "identity";
  for (size_t i = 0; i + kIdentity.size() <= value.size(); ++i) {
    if ((value[i] == 'i' || value[i] == 'I') &&
        http::equalsIgnoreCase(value.substr(i, kIdentity.size()), kIdentity)) {
      return true;
    }
  }
  return false;
}

} // namespace

bool AcceptEncoding::identityAcceptableIn(const http::HeaderMap& headers) {
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.nameAt(i) != "accept-encoding") {
      continue;
    }
    const std::string_view value = headers.valueAt(i);
    if (value.find('*') != std::string_view::npos || mentionsIdentity(value)) {
      return fromHeaders(headers).identityAcceptable();
    }
  }
  return true;
}

void AcceptEncoding::parse(std::string_view value) {
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) {
      comma = value.size();
    }
    std::string_view item = value.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    if (coding.empty()) {
      continue;
    }
    int q = 1000;
    if (semi != std::string_view::npos) {
      // Parameters: only q matters ("q=0.5", "Q = 0.5" is not valid but seen; be lenient
      // about spaces, strict about the number).
      for (std::string_view param : split(item.substr(semi + 1), ';')) {
        param = trim(param);
        if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q')) {
          const std::string_view rest = trim(param.substr(1));
          if (!rest.empty() && rest[0] == '=') {
            q = parseQ(rest.substr(1));
          }
        }
      }
    }
    int16_t* slot = nullptr;
    if (coding == "*") {
      slot = &star_;
    } else if (http::equalsIgnoreCase(coding, "identity")) {
      slot = &identity_;
    } else if (http::equalsIgnoreCase(coding, "x-gzip")) {
      slot = &q_[static_cast<int>(Encoding::Gzip)];
    } else if (auto e = parseEncoding(coding)) {
      slot = &q_[static_cast<int>(*e)];
    }
    // A coding named twice keeps its highest q.
    if (slot != nullptr && q > *slot) {
      *slot = static_cast<int16_t>(q);
    }
  }
}

int AcceptEncoding::quality(Encoding e) const {
  const int q = q_[static_cast<int>(e)];
  if (q >= 0) {
    return q;
  }
  return star_ >= 0 ? star_ : 0;
}

bool AcceptEncoding::identityAcceptable() const {
  if (identity_ >= 0) {
    return identity_ > 0;
  }
  return star_ != 0;
}

std::optional<Encoding> AcceptEncoding::choose(const Encoding* offered, size_t count) const {
  int best_q = 0;
  std::optional<Encoding> best;
  for (size_t i = 0; i < count; ++i) {
    const int q = quality(offered[i]);
    if (q > best_q) {
      best_q = q;
      best = offered[i];
    }
  }
  if (best && identity_ > best_q) {
    return std::nullopt;
  }
  return best;
}

} // namespace pounce::filters

#include "source/http/stream_info.h"

#include <ostream>

namespace pounce::http {

std::string_view protocolString(Protocol p) {
  switch (p) {
  case Protocol::Http10:
    return "HTTP/1.0";
  case Protocol::Http11:
    return "HTTP/1.1";
  case Protocol::Http2:
    return "HTTP/2";
  }
  return "HTTP/1.1";
}

std::ostream& operator<<(std::ostream& out, const RequestId& id) { return out << id.view(); }

} // namespace pounce::http

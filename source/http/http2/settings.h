#pragma once

#include <chrono>
#include <cstdint>

namespace pounce::http::http2 {

// A listener's HTTP/2 settings (the `http2` block of the listener config; docs/http2.md).
// Fixed when the listener is built and shared by its connections.
struct Http2Settings {
  // Serve HTTP/2 at all (ALPN "h2", and h2c when allow_h2c).
  bool enabled{true};
  // Cleartext HTTP/2: the connection preface (prior knowledge) and `Upgrade: h2c`.
  bool allow_h2c{true};

  // SETTINGS advertised to the client.
  uint32_t max_concurrent_streams{100};
  uint32_t initial_stream_window_size{256 * 1024};
  uint32_t initial_connection_window_size{1024 * 1024};
  uint32_t max_frame_size{16384};
  // 0: the listener's max_header_bytes.
  uint32_t max_header_list_size{0};

  // Flood limits. Each one, when exceeded, ends the connection with GOAWAY
  // (ENHANCE_YOUR_CALM).
  //
  // Streams that end before their response did, by the client's RST_STREAM or by a stream
  // error the client caused (rapid reset, CVE-2023-44487), per flood_window.
  uint32_t max_reset_streams{200};
  std::chrono::milliseconds flood_window{10000};
  // CONTINUATION frames after one HEADERS frame (CVE-2024-27316).
  uint32_t max_continuation_frames{8};
  // Control frames (SETTINGS/PING ACKs, RST_STREAM, WINDOW_UPDATE...) and frames of any
  // kind queued for a client that does not read them.
  uint32_t max_outbound_control_frames{1000};
  uint32_t max_outbound_frames{10000};
  // DATA frames without payload or END_STREAM (and empty CONTINUATION frames) in a row.
  uint32_t max_consecutive_empty_frames{1};
};

} // namespace pounce::http::http2

#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "source/common/buffer.h"

namespace pounce::http::websocket {

// What the server is willing to do for permessage-deflate (RFC 7692).
struct DeflateConfig {
  // Accept permessage-deflate when a client offers it.
  bool enabled{true};
  // The largest LZ77 window the server compresses with (9..15). A value below 15 is sent as
  // server_max_window_bits even if the client did not ask; a client that asks for less gets
  // less. zlib cannot compress raw deflate with an 8-bit window, so an offer that demands
  // server_max_window_bits=8 is declined.
  int server_max_window_bits{12};
  // The window the server asks clients to compress with (8..15), sent as
  // client_max_window_bits when the client's offer allows it. Smaller saves server memory.
  int client_max_window_bits{12};
  // Compress every message on its own (sent as server_no_context_takeover): less memory
  // kept between messages, worse ratios on small similar messages.
  bool server_no_context_takeover{false};
  // Ask clients to compress every message on its own (client_no_context_takeover).
  bool client_no_context_takeover{false};
  // zlib level (0..9) of the server's compressor. 1 (as nginx's gzip default) is about
  // twice as fast as zlib's default 6 and compresses typical JSON nearly as well.
  int compression_level{1};
  // zlib memLevel (1..9): hash table size. 5 suits a 12-bit window; a larger table with a
  // small window costs time at every window slide.
  int memory_level{5};
  // Messages shorter than this are sent uncompressed (RSV1 clear); 0 compresses all.
  size_t min_compress_size{0};
};

// The parameters both sides agreed on. Window bits are 8..15.
struct DeflateParams {
  bool server_no_context_takeover{false};
  bool client_no_context_takeover{false};
  int server_max_window_bits{15};
  int client_max_window_bits{15};
  // Which parameters appear in the response (RFC 7692 §7.1: some only if offered).
  bool send_server_max_window_bits{false};
  bool send_client_max_window_bits{false};

  bool operator==(const DeflateParams&) const = default;
};

// One element of a Sec-WebSocket-Extensions header: a name and its parameters, values
// unquoted. A parameter without a value has an empty optional.
struct ExtensionOffer {
  std::string name;
  std::vector<std::pair<std::string, std::optional<std::string>>> params;
};

// Parses the comma-separated extension list (RFC 6455 §9.1; all header lines joined).
// An element that is not well formed (bad token, unterminated quote, empty parameter) is
// left out; the others are kept in order.
std::vector<ExtensionOffer> parseExtensions(std::string_view header);

// Picks the first permessage-deflate offer in `header` the server can accept under `config`
// and returns the agreed parameters, or nullopt (no compression) if none is acceptable.
// An offer with an unknown, duplicated or malformed parameter is ignored (RFC 7692 §7.1).
std::optional<DeflateParams> negotiateDeflate(std::string_view header, const DeflateConfig& config);

// The Sec-WebSocket-Extensions response value for agreed parameters, e.g.
// "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12".
std::string formatDeflateResponse(const DeflateParams& params);

// Compresses outgoing messages: raw deflate with a sync flush and the trailing 00 00 ff ff
// removed (RFC 7692 §7.2.1). Keeps its LZ77 window between messages unless context
// takeover is off. zlib memory is allocated on the first message.
class MessageCompressor {
public:
  MessageCompressor(int window_bits, bool no_context_takeover, int level, int memory_level);
  ~MessageCompressor();
  MessageCompressor(const MessageCompressor&) = delete;
  MessageCompressor& operator=(const MessageCompressor&) = delete;

  // Appends the compressed form of `message` to `out`. Returns false if zlib failed (out of
  // memory); `out` is then unchanged.
  bool compress(std::string_view message, std::string& out);

private:
  z_stream stream_{};
  bool initialized_{false};
  const int window_bits_;
  const bool no_context_takeover_;
  const int level_;
  const int memory_level_;
};

// Decompresses incoming messages as their payload arrives, never producing more than a
// limit, so a small message that inflates to gigabytes (a "zip bomb") is stopped with the
// output bounded by the limit.
class MessageDecompressor {
public:
  enum class Result { Ok, TooBig, Invalid };

  MessageDecompressor(int window_bits, bool no_context_takeover);
  ~MessageDecompressor();
  MessageDecompressor(const MessageDecompressor&) = delete;
  MessageDecompressor& operator=(const MessageDecompressor&) = delete;

  // Inflates a piece of a compressed message, appending to `out`. Fails with TooBig as soon
  // as `out` would grow beyond `limit` bytes, and with Invalid on corrupt data.
  Result feed(const char* data, size_t size, Buffer& out, uint64_t limit);
  // Ends the message: inflates the 00 00 ff ff tail the sender removed, then resets the
  // window if the peer does not keep context.
  Result finish(Buffer& out, uint64_t limit);
  // Drops a message that failed midway: the next one starts from a clean state.
  void abandon();

private:
  bool ensureInitialized();
  Result inflateInto(const char* data, size_t size, Buffer& out, uint64_t limit);
  void restartKeepingWindow();

  z_stream stream_{};
  bool initialized_{false};
  // The message's data so far ended exactly with a final (BFINAL) deflate block.
  bool stream_ended_{false};
  // Some compressed data arrived for the current message.
  bool received_data_{false};
  const int window_bits_;
  const bool no_context_takeover_;
};

} // namespace pounce::http::websocket

#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/stats.h"
#include "source/network/tls/context.h"
#include "source/network/transport_socket.h"

namespace pounce::network::tls {

// Counters of one TLS listener (families pounce_tls_*, label `listener`).
struct TlsStats {
  const stats::Series* handshakes{nullptr};       // completed handshakes
  const stats::Series* resumed{nullptr};          // of which resumed a session (ticket)
  const stats::Series* handshake_errors{nullptr}; // protocol errors (version, cipher, cert...)
  const stats::Series* handshake_timeouts{nullptr};
  static TlsStats create(stats::Store& store, const std::string& listener);
};

// A server-side TLS connection over a non-blocking socket, driven by the connection's
// readiness events:
// - the handshake runs from doRead() (the connection routes write readiness there while
//   readNeedsWritable()); when it completes, TlsInfo is filled and onTransportConnected()
//   is called; a timer closes the connection if it takes longer than the handshake timeout;
// - doRead() decrypts into the connection's buffer; doWrite() encrypts from the output
//   queue, reading file segments with pread(2) in bounded chunks (never a whole file);
// - an SSL_read that must write first (or an SSL_write that must read first) reports it
//   through readNeedsWritable() / writeNeedsReadable() and is retried on that readiness;
// - shutdownWrite() sends close_notify.
class TlsSocket : public TransportSocket {
public:
  TlsSocket(TlsContextConstSharedPtr context, TlsStats stats = {});
  ~TlsSocket() override;

  // TransportSocket
  void setCallbacks(TransportSocketCallbacks& callbacks) override { callbacks_ = &callbacks; }
  IoResult doRead(Buffer& buffer, uint64_t max_bytes) override;
  IoResult doWrite(OutputQueue& queue) override;
  void onConnected() override;
  std::string_view negotiatedProtocol() const override { return info_.alpn; }
  const TlsInfo* tlsInfo() const override { return handshake_done_ ? &info_ : nullptr; }
  bool isTls() const override { return true; }
  bool shutdownWrite() override;
  bool readNeedsWritable() const override { return read_needs_write_; }
  bool writeNeedsReadable() const override { return write_needs_read_; }

  // What the socket BIO under the SSL reads from and learns (see socket.cc).
  struct BioState {
    int fd{-1};
    // The last read(2) returned less than asked (or nothing): the socket is drained for now.
    bool drained{false};
    // The connection's first bytes (a failed handshake looks at them for plain HTTP).
    char first[8] = {};
    uint8_t first_len{0};
  };

  // Plaintext a file segment is read into before encryption, at most this many bytes.
  static constexpr size_t kFileChunk = 32 * 1024;
  // Bytes of file data currently held for encryption (tests check the bound).
  size_t stagedBytes() const { return staged_.length(); }
  bool handshakeDone() const { return handshake_done_; }

private:
  // Runs the handshake; true once it is complete (the connection is then told).
  bool continueHandshake(IoResult& result);
  void onHandshakeComplete();
  void onHandshakeError(int ssl_error);
  void onHandshakeTimeout();
  // Copies the front of `queue` (small byte segments, up to kFileChunk of a file) into
  // staged_ so that it goes out in as few records as possible. False when a file read fails.
  bool stage(OutputQueue& queue);

  TlsContextConstSharedPtr context_;
  const TlsStats stats_;
  BioState bio_;
  TransportSocketCallbacks* callbacks_{nullptr};
  struct ssl_st* ssl_{nullptr};
  event::TimerPtr handshake_timer_;
  // Plaintext handed to SSL_write but not yet accepted; always the front of the queue.
  Buffer staged_;
  TlsInfo info_;
  bool handshake_done_{false};
  bool failed_{false};
  bool read_needs_write_{false};
  bool write_needs_read_{false};
  bool shutdown_sent_{false};
};

// The transport factory of a TLS listener. The context can be swapped at any time (a
// certificate reload): connections keep the SSL objects and context they started with,
// new connections get the new one.
class TlsSocketFactory : public TransportSocketFactory {
public:
  // `listener` names the stats; `field_prefix` ("listeners[0].tls") starts reload errors.
  TlsSocketFactory(TlsContextConstSharedPtr context, const std::string& listener,
                   std::string field_prefix);

  // TransportSocketFactory
  TransportSocketPtr create() override;
  bool isTls() const override { return true; }
  // Re-reads every certificate, key and CA file. On success new handshakes use them; on
  // failure the current context stays and the error says which file and why.
  absl::Status reload() override;

  TlsContextConstSharedPtr context() const;
  void setContext(TlsContextConstSharedPtr context);

private:
  mutable std::mutex lock_;
  TlsContextConstSharedPtr context_;
  TlsStats stats_;
  const std::string field_prefix_;
};

} // namespace pounce::network::tls

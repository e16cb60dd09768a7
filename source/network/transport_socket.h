#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/output_queue.h"

namespace pounce::network {

// What a transport socket reports after an I/O attempt.
struct IoResult {
  enum class Action { KeepOpen, Close };
  Action action{Action::KeepOpen};
  uint64_t bytes{0};
  // The peer half-closed (read side) or the transport finished its close handshake.
  bool end_stream{false};
  // The operation would block; wait for readiness.
  bool would_block{false};
};

// TLS details a connection exposes to filters and to ASGI's `tls` extension.
struct TlsInfo {
  uint16_t version{0};      // e.g. 0x0304 for TLS 1.3
  uint16_t cipher_suite{0}; // IANA id, e.g. 0x1301
  std::string alpn;
  std::string sni;
  std::string server_cert_pem;
  std::vector<std::string> client_cert_chain_pem; // leaf first
  std::string client_cert_subject;                // RFC 4514
  std::string client_cert_error;
};

class TransportSocketCallbacks {
public:
  virtual ~TransportSocketCallbacks() = default;
  virtual int fd() const = 0;
  // The connection's (and this thread's) event loop, for the transport's own timers.
  virtual event::Dispatcher& dispatcher() = 0;
  // The handshake finished: the connection may start the protocol.
  virtual void onTransportConnected() = 0;
  // The transport has buffered plaintext the connection should read without new readiness.
  virtual void setReadBufferReady() = 0;
};

// The bytes layer under a connection: plain TCP/UDS or TLS. Non-blocking; never throws.
class TransportSocket {
public:
  virtual ~TransportSocket() = default;
  virtual void setCallbacks(TransportSocketCallbacks& callbacks) = 0;
  // Reads what is available into `buffer`, at most `max_bytes`.
  virtual IoResult doRead(Buffer& buffer, uint64_t max_bytes) = 0;
  // Writes from the front of `queue`, draining what was written.
  virtual IoResult doWrite(OutputQueue& queue) = 0;
  // Called once the fd is registered; a TLS transport starts its handshake here.
  virtual void onConnected() = 0;
  // Protocol chosen by ALPN ("h2", "http/1.1"), empty if none.
  virtual std::string_view negotiatedProtocol() const { return {}; }
  virtual const TlsInfo* tlsInfo() const { return nullptr; }
  virtual bool isTls() const { return false; }
  // Starts a graceful close (TLS close_notify). Returns true when done.
  virtual bool shutdownWrite() { return true; }
  // A transport may need one direction's readiness to progress in the other: a TLS
  // handshake or SSL_read that must write first waits for the socket to be writable, then
  // doRead() is retried; an SSL_write that must read first waits for readability, then
  // doWrite() is retried. The connection routes readiness accordingly.
  virtual bool readNeedsWritable() const { return false; }
  virtual bool writeNeedsReadable() const { return false; }
};
using TransportSocketPtr = std::unique_ptr<TransportSocket>;

// Plain TCP or Unix socket; file ranges go out with sendfile(2).
class RawTransportSocket : public TransportSocket {
public:
  void setCallbacks(TransportSocketCallbacks& callbacks) override { callbacks_ = &callbacks; }
  IoResult doRead(Buffer& buffer, uint64_t max_bytes) override;
  IoResult doWrite(OutputQueue& queue) override;
  void onConnected() override { callbacks_->onTransportConnected(); }

private:
  TransportSocketCallbacks* callbacks_{nullptr};
};

// Factory a listener holds: makes the transport for each accepted connection.
class TransportSocketFactory {
public:
  virtual ~TransportSocketFactory() = default;
  virtual TransportSocketPtr create() = 0;
  virtual bool isTls() const = 0;
  // Re-reads what the transport loaded from disk (TLS certificates and keys). Open
  // connections keep what they have; new ones get the new material. On error nothing
  // changes and the status says what was wrong.
  virtual absl::Status reload() { return absl::OkStatus(); }
};
using TransportSocketFactorySharedPtr = std::shared_ptr<TransportSocketFactory>;

class RawTransportSocketFactory : public TransportSocketFactory {
public:
  TransportSocketPtr create() override { return std::make_unique<RawTransportSocket>(); }
  bool isTls() const override { return false; }
};

} // namespace pounce::network

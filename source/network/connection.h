#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "source/common/buffer.h"
#include "source/common/event/dispatcher.h"
#include "source/common/output_queue.h"
#include "source/network/address.h"
#include "source/network/transport_socket.h"

namespace pounce::network {

enum class ConnectionEvent { Connected, RemoteClose, LocalClose };

enum class CloseType {
  // Close now; unwritten data is dropped.
  NoFlush,
  // Write what is queued, then close.
  FlushWrite,
  // Write what is queued, half-close, and read (discarding) until the peer closes or a
  // short timer fires, so the peer sees the response before any reset (lingering close).
  FlushWriteAndLinger,
};

// The protocol on top of a connection (the HTTP connection manager).
class ConnectionCallbacks {
public:
  virtual ~ConnectionCallbacks() = default;
  // New bytes in `data`; consume what can be used (leave the rest for next time).
  virtual void onData(Buffer& data, bool end_stream) = 0;
  virtual void onEvent(ConnectionEvent event) = 0;
  virtual void onAboveWriteBufferHighWatermark() = 0;
  virtual void onBelowWriteBufferLowWatermark() = 0;
};

// One accepted connection, owned by the worker that accepted it. All methods run on the
// worker's thread.
class Connection : public event::DeferredDeletable, private TransportSocketCallbacks {
public:
  Connection(event::Dispatcher& dispatcher, int fd, TransportSocketPtr transport, Address remote,
             Address local, uint64_t id);
  ~Connection() override;

  void setCallbacks(ConnectionCallbacks& callbacks) { callbacks_ = &callbacks; }
  // Called when the connection is finally closed (owner removes and deletes it).
  void setOnClosed(std::function<void(Connection&)> cb) { on_closed_ = std::move(cb); }
  void start();

  uint64_t id() const { return id_; }
  event::Dispatcher& dispatcher() override { return dispatcher_; }
  const Address& remoteAddress() const { return remote_; }
  const Address& localAddress() const { return local_; }
  TransportSocket& transport() { return *transport_; }
  bool isOpen() const { return state_ == State::Open; }
  bool closing() const { return state_ != State::Open; }

  // Bytes for the peer; written when the current callback finishes (one write per batch).
  OutputQueue& output() { return output_; }
  void scheduleWrite();
  void writeNow();
  uint64_t bufferedBytes() const { return output_.length(); }
  bool aboveHighWatermark() const { return above_high_watermark_; }
  void setBufferLimits(uint32_t high);

  // Reference counted: reading resumes when every disabler enabled again.
  void readDisable(bool disable);
  bool readEnabled() const { return read_disable_count_ == 0; }

  void close(CloseType type);

  uint64_t bytesReceived() const { return bytes_received_; }
  uint64_t bytesSent() const { return bytes_sent_; }

private:
  enum class State { Open, Closing, Closed };

  // TransportSocketCallbacks
  int fd() const override { return fd_; }
  void onTransportConnected() override;
  void setReadBufferReady() override;

  void onFileEvent(uint32_t events);
  void onReadReady();
  void onWriteReady();
  void checkWatermarks();
  void closeNow(ConnectionEvent event);
  void lingerStart();

  event::Dispatcher& dispatcher_;
  int fd_;
  TransportSocketPtr transport_;
  Address remote_;
  Address local_;
  const uint64_t id_;
  ConnectionCallbacks* callbacks_{nullptr};
  std::function<void(Connection&)> on_closed_;
  event::FileEventPtr file_event_;
  event::TimerPtr linger_timer_;
  Buffer read_buffer_;
  OutputQueue output_;
  State state_{State::Open};
  CloseType close_type_{CloseType::NoFlush};
  int read_disable_count_{0};
  bool read_pending_{false};  // readiness arrived while reading was disabled
  bool peer_closed_{false};   // the kernel reported the peer's FIN (EPOLLRDHUP)
  bool write_blocked_{false}; // waiting for the socket to become writable
  bool write_scheduled_{false};
  bool in_read_callback_{false};
  bool connected_{false};
  bool lingering_{false};
  bool above_high_watermark_{false};
  uint32_t high_watermark_{1 << 20};
  uint64_t bytes_received_{0};
  uint64_t bytes_sent_{0};
};

using ConnectionPtr = std::unique_ptr<Connection>;

} // namespace pounce::network

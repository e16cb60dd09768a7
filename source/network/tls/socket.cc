#include "source/network/tls/socket.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/network/tls/ssl_compat.h"

namespace pounce::network::tls {

namespace {

// Plaintext decrypted per SSL_read: one TLS record at most.
constexpr size_t kReadSize = 16384;
// A byte segment at least this long is encrypted in place; shorter ones are gathered with
// what follows them into one record.
constexpr size_t kDirectWriteMin = 16384;
// Largest single SSL_write; with partial writes OpenSSL returns after each record anyway.
constexpr size_t kMaxWrite = 1 << 20;

// What a client that speaks plain HTTP to a TLS port gets (as nginx does), then the close.
constexpr std::string_view kPlainHttpResponse =
    "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    "content-length: 49\r\nconnection: close\r\n\r\n"
    "This port speaks HTTPS: use https:// to reach it\n";

// A socket BIO like OpenSSL's own, plus one fact OpenSSL keeps to itself: whether the last
// read(2) drained the socket. With read-ahead a short read means nothing more is there, so
// doRead() can stop without one more read(2) just to see EAGAIN (edge-triggered readiness
// reports new data). Only BIO_meth_* calls, which BoringSSL has too.
int bioWrite(BIO* bio, const char* data, int len) {
  auto* state = static_cast<TlsSocket::BioState*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(state->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int bioRead(BIO* bio, char* data, int len) {
  auto* state = static_cast<TlsSocket::BioState*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::read(state->fd, data, static_cast<size_t>(len));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    BIO_set_retry_read(bio);
  }
  if (n > 0 && state->first_len < sizeof(state->first)) {
    const size_t take = std::min(sizeof(state->first) - state->first_len, static_cast<size_t>(n));
    std::memcpy(state->first + state->first_len, data, take);
    state->first_len = static_cast<uint8_t>(state->first_len + take);
  }
  state->drained = n < len;
  return static_cast<int>(n);
}

// A request line's start: a method of 1 to 7 capital letters, then a space. A TLS record
// starts with its type (0x16 for a handshake), so the two cannot be confused. OpenSSL
// itself recognises only GET, POST, HEAD, PUT and CONNECT.
bool looksLikePlainHttp(const char* first, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (first[i] == ' ') {
      return i > 0;
    }
    if (first[i] < 'A' || first[i] > 'Z') {
      return false;
    }
  }
  return false;
}

long bioCtrl(BIO*, int cmd, long, void*) {
  // OpenSSL flushes after writing a flight; there is nothing buffered here.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* socketBioMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pounce socket");
    if (m != nullptr) {
      BIO_meth_set_write(m, bioWrite);
      BIO_meth_set_read(m, bioRead);
      BIO_meth_set_ctrl(m, bioCtrl);
      BIO_meth_set_create(m, bioCreate);
    }
    return m;
  }();
  return method;
}

std::string lastErrorReason() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) {
    last = e;
  }
  if (last == 0) {
    return "connection closed or reset by the peer";
  }
  const char* reason = ERR_reason_error_string(last);
  return reason != nullptr ? reason : cat("error ", last);
}

std::string pemOf(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) {
    return {};
  }
  std::string out;
  if (PEM_write_bio_X509(bio, x) == 1) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(len));
  }
  BIO_free(bio);
  return out;
}

// RFC 4514 (which RFC 2253 formatting produces) for a subject name.
std::string rfc4514(X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) {
    return {};
  }
  std::string out;
  if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(len));
  }
  BIO_free(bio);
  return out;
}

} // namespace

TlsStats TlsStats::create(stats::Store& store, const std::string& listener) {
  auto& handshakes = store.family("pounce_tls_handshakes_total", "TLS handshakes completed.",
                                  stats::Type::Counter, {"listener"});
  auto& resumed = store.family("pounce_tls_sessions_resumed_total",
                               "TLS handshakes that resumed a session from a ticket.",
                               stats::Type::Counter, {"listener"});
  auto& errors = store.family("pounce_tls_handshake_errors_total",
                              "TLS handshakes refused for a protocol error (version, cipher, "
                              "certificate, not TLS at all).",
                              stats::Type::Counter, {"listener"});
  auto& timeouts = store.family("pounce_tls_handshake_timeouts_total",
                                "Connections closed because the TLS handshake took too long.",
                                stats::Type::Counter, {"listener"});
  TlsStats s;
  s.handshakes = &store.series(handshakes, {listener});
  s.resumed = &store.series(resumed, {listener});
  s.handshake_errors = &store.series(errors, {listener});
  s.handshake_timeouts = &store.series(timeouts, {listener});
  return s;
}

TlsSocket::TlsSocket(TlsContextConstSharedPtr context, TlsStats stats)
    : context_(std::move(context)), stats_(stats) {}

TlsSocket::~TlsSocket() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
  }
}

void TlsSocket::onConnected() {
  bio_.fd = callbacks_->fd();
  ssl_ = context_->newSsl();
  BIO* bio = ssl_ != nullptr && socketBioMethod() != nullptr ? BIO_new(socketBioMethod()) : nullptr;
  if (bio != nullptr) {
    BIO_set_data(bio, &bio_);
    SSL_set_bio(ssl_, bio, bio); // the SSL owns it
  }
  if (ssl_ == nullptr || bio == nullptr) {
    POUNCE_LOG(Tls, Error, "cannot create a TLS session (out of memory?): closing");
    failed_ = true;
    callbacks_->setReadBufferReady();
    return;
  }
  // The client speaks first: its ClientHello raises read readiness (already pending data is
  // reported as soon as the descriptor is registered), so nothing to do until then.
  handshake_timer_ = callbacks_->dispatcher().createTimer([this] { onHandshakeTimeout(); });
  handshake_timer_->enableTimer(context_->config().handshake_timeout);
}

void TlsSocket::onHandshakeTimeout() {
  if (handshake_done_ || failed_) {
    return;
  }
  POUNCE_LOG(Tls, Debug, "TLS handshake not finished within %dms: closing",
             context_->config().handshake_timeout.count());
  failed_ = true;
  if (stats_.handshake_timeouts != nullptr) {
    stats_.handshake_timeouts->inc();
  }
  // The read path reports Close, which closes the connection.
  if (callbacks_->fd() >= 0) {
    callbacks_->setReadBufferReady();
  }
}

bool TlsSocket::continueHandshake(IoResult& result) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    onHandshakeComplete();
    return true;
  }
  const int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ) {
    result.would_block = true;
    return false;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    // Our flight did not fit in the socket buffer: go on when it is writable.
    read_needs_write_ = true;
    result.would_block = true;
    return false;
  }
  onHandshakeError(err);
  failed_ = true;
  result.action = IoResult::Action::Close;
  return false;
}

void TlsSocket::onHandshakeError(int ssl_error) {
  handshake_timer_.reset();
  const unsigned long e = ERR_peek_last_error();
  const bool openssl_says_http =
      ERR_GET_LIB(e) == ERR_LIB_SSL &&
      (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST);
  if (ssl_error == SSL_ERROR_SSL &&
      (openssl_says_http || looksLikePlainHttp(bio_.first, bio_.first_len))) {
    // Plain HTTP on a TLS port. OpenSSL sent nothing; answer in plain HTTP so the user sees
    // why, after taking in what the client sent (so the close is not a reset).
    const int fd = callbacks_->fd();
    char sink[4096];
    for (int i = 0; i < 16 && ::read(fd, sink, sizeof(sink)) > 0; ++i) {
    }
    const ssize_t written = ::write(fd, kPlainHttpResponse.data(), kPlainHttpResponse.size());
    (void)written;
    ERR_clear_error();
    POUNCE_LOG(Tls, Debug, "plain HTTP request on a TLS listener: answered 400 and closed");
  } else if (ssl_error == SSL_ERROR_SSL) {
    POUNCE_LOG(Tls, Debug, "TLS handshake failed: %s", lastErrorReason());
  } else {
    // The peer went away mid-handshake (port probes, impatient clients): not an error of
    // the protocol.
    ERR_clear_error();
    POUNCE_LOG(Tls, Trace, "TLS handshake ended by the peer");
    return;
  }
  if (stats_.handshake_errors != nullptr) {
    stats_.handshake_errors->inc();
  }
}

void TlsSocket::onHandshakeComplete() {
  handshake_done_ = true;
  handshake_timer_.reset();
  info_.version = static_cast<uint16_t>(SSL_version(ssl_));
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) {
    info_.cipher_suite = SSL_CIPHER_get_protocol_id(cipher);
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn != nullptr) {
    info_.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) {
    info_.sni = sni;
  }
  info_.server_cert_pem = context_->serverCertificatePem(ssl_);
  if (context_->verifiesClients()) {
    if (X509* leaf = compat::peerCertificate(ssl_)) {
      info_.client_cert_chain_pem.push_back(pemOf(leaf));
      info_.client_cert_subject = rfc4514(X509_get_subject_name(leaf));
      // On a server the chain the peer sent does not include its leaf; skip it if a library
      // version does.
      if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_)) {
        for (int i = 0; i < sk_X509_num(chain); ++i) {
          X509* x = sk_X509_value(chain, i);
          if (X509_cmp(x, leaf) != 0) {
            info_.client_cert_chain_pem.push_back(pemOf(x));
          }
        }
      }
      X509_free(leaf);
    }
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      info_.client_cert_error = X509_verify_cert_error_string(verify);
    }
  }
  if (stats_.handshakes != nullptr) {
    stats_.handshakes->inc();
    if (SSL_session_reused(ssl_)) {
      stats_.resumed->inc();
    }
  }
  callbacks_->onTransportConnected();
}

IoResult TlsSocket::doRead(Buffer& buffer, uint64_t max_bytes) {
  IoResult result;
  if (failed_ || ssl_ == nullptr) {
    result.action = IoResult::Action::Close;
    return result;
  }
  read_needs_write_ = false;
  if (!handshake_done_) {
    if (!continueHandshake(result)) {
      return result;
    }
    if (callbacks_->fd() < 0) {
      // The connection was closed while it was told about the handshake.
      return result;
    }
  }
  // Only failures leave errors in the thread's queue, and every failure path drains it, so
  // one clear covers the loop.
  ERR_clear_error();
  while (result.bytes < max_bytes) {
    // Decrypt on the stack and append what came: a request is usually far smaller than a
    // record, and reserving a record's worth in the buffer would clear it every time.
    char chunk[kReadSize];
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(max_bytes - result.bytes, kReadSize));
    const int n = SSL_read(ssl_, chunk, static_cast<int>(want));
    if (n > 0) {
      buffer.add(chunk, static_cast<size_t>(n));
      result.bytes += static_cast<uint64_t>(n);
      if (bio_.drained && !SSL_has_pending(ssl_)) {
        // Everything the socket had is decrypted and handed over.
        result.would_block = true;
        return result;
      }
      continue;
    }
    switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_READ:
      result.would_block = true;
      return result;
    case SSL_ERROR_WANT_WRITE:
      // e.g. a TLS 1.3 KeyUpdate answer did not fit in the socket buffer.
      read_needs_write_ = true;
      result.would_block = true;
      return result;
    case SSL_ERROR_ZERO_RETURN:
      // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a TCP close without one.
      ERR_clear_error();
      result.end_stream = true;
      return result;
    default:
      POUNCE_LOG(Tls, Debug, "TLS read failed: %s", lastErrorReason());
      result.action = IoResult::Action::Close;
      return result;
    }
  }
  // The budget is used up: decrypted bytes may wait in SSL and records in the socket, and
  // edge-triggered readiness will not say so again.
  callbacks_->setReadBufferReady();
  return result;
}

bool TlsSocket::stage(OutputQueue& queue) {
  staged_.clear();
  for (size_t i = 0; i < queue.segmentCount() && staged_.length() < kFileChunk; ++i) {
    OutputQueue::Segment& s = queue.segment(i);
    const size_t room = kFileChunk - staged_.length();
    if (!s.isFile()) {
      staged_.add(s.bytes.view().substr(0, room));
      continue;
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(room, s.file_length));
    char* p = staged_.reserve(want);
    size_t got = 0;
    while (got < want) {
      const ssize_t n =
          ::pread(s.file->fd(), p + got, want - got, static_cast<off_t>(s.offset + got));
      if (n > 0) {
        got += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;
      }
    }
    staged_.commit(got);
    if (got < want) {
      // The file shrank or cannot be read: this response cannot be completed.
      POUNCE_LOG(Tls, Warning, "file read failed while sending a response over TLS: closing");
      staged_.clear();
      return false;
    }
  }
  return true;
}

IoResult TlsSocket::doWrite(OutputQueue& queue) {
  IoResult result;
  if (failed_ || ssl_ == nullptr) {
    result.action = IoResult::Action::Close;
    return result;
  }
  if (!handshake_done_) {
    result.would_block = true;
    return result;
  }
  write_needs_read_ = false;
  if (staged_.length() > queue.length()) {
    // The queue was emptied under us (the connection is closing): nothing to retry.
    staged_.clear();
  }
  bool staged_used = false;
  ERR_clear_error(); // as in doRead: once, failures drain the queue
  while (!queue.empty()) {
    const char* data;
    size_t len;
    if (!staged_.empty()) {
      data = staged_.data();
      len = staged_.length();
    } else {
      OutputQueue::Segment& first = queue.segment(0);
      if (!first.isFile() &&
          (queue.segmentCount() == 1 || first.bytes.length() >= kDirectWriteMin)) {
        // Encrypt straight from the queue: after a blocked write this is the same front,
        // never shorter (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows it to have moved).
        data = first.bytes.data();
        len = std::min(first.bytes.length(), kMaxWrite);
      } else {
        if (!stage(queue)) {
          result.action = IoResult::Action::Close;
          return result;
        }
        staged_used = true;
        data = staged_.data();
        len = staged_.length();
      }
    }
    const int n = SSL_write(ssl_, data, static_cast<int>(len));
    if (n > 0) {
      queue.drained(static_cast<uint64_t>(n));
      if (!staged_.empty()) {
        staged_.drain(static_cast<size_t>(n));
      }
      result.bytes += static_cast<uint64_t>(n);
      if (read_needs_write_) {
        // A read was waiting for room to write: there was some.
        read_needs_write_ = false;
        callbacks_->setReadBufferReady();
      }
      continue;
    }
    switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_WRITE:
      result.would_block = true;
      return result;
    case SSL_ERROR_WANT_READ:
      write_needs_read_ = true;
      result.would_block = true;
      return result;
    default:
      POUNCE_LOG(Tls, Debug, "TLS write failed: %s", lastErrorReason());
      result.action = IoResult::Action::Close;
      return result;
    }
  }
  if (staged_used) {
    // Give the chunk's memory back between responses.
    staged_ = Buffer();
  }
  return result;
}

bool TlsSocket::shutdownWrite() {
  if (ssl_ == nullptr || !handshake_done_ || failed_ || shutdown_sent_) {
    return true;
  }
  shutdown_sent_ = true;
  ERR_clear_error();
  // 0: our close_notify is out, the peer's has not come (we do not wait for it).
  const int rc = SSL_shutdown(ssl_);
  ERR_clear_error();
  return rc >= 0;
}

TlsSocketFactory::TlsSocketFactory(TlsContextConstSharedPtr context, const std::string& listener,
                                   std::string field_prefix)
    : context_(std::move(context)), stats_(TlsStats::create(stats::Store::global(), listener)),
      field_prefix_(std::move(field_prefix)) {}

TransportSocketPtr TlsSocketFactory::create() {
  return std::make_unique<TlsSocket>(context(), stats_);
}

TlsContextConstSharedPtr TlsSocketFactory::context() const {
  std::lock_guard<std::mutex> guard(lock_);
  return context_;
}

void TlsSocketFactory::setContext(TlsContextConstSharedPtr context) {
  std::lock_guard<std::mutex> guard(lock_);
  context_ = std::move(context);
}

absl::Status TlsSocketFactory::reload() {
  auto fresh = TlsContext::create(context()->config());
  if (!fresh.ok()) {
    const std::string errors(fresh.status().message());
    std::string message;
    for (auto line : split(errors, '\n')) {
      if (!message.empty()) {
        message += "\n";
      }
      message += field_prefix_.empty() ? std::string(line) : cat(field_prefix_, ".", line);
    }
    return absl::InvalidArgumentError(message);
  }
  setContext(std::move(*fresh));
  return absl::OkStatus();
}

} // namespace pounce::network::tls

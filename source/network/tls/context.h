#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

// OpenSSL and BoringSSL both name their types this way; the headers stay out of this one.
struct ssl_st;
struct ssl_ctx_st;

namespace pounce::network::tls {

// Protocol versions by their 16-bit wire numbers (as in network::TlsInfo::version).
inline constexpr uint16_t kTls12 = 0x0303;
inline constexpr uint16_t kTls13 = 0x0304;

// One certificate chain and its key (paths already resolved).
struct CertificateConfig {
  std::string certificate_chain_file;
  std::string private_key_file;
  // Host names this certificate answers ("api.example.com", "*.example.com"). Empty: the
  // certificate's DNS subjectAltNames (its common name when it has none).
  std::vector<std::string> server_names;
};

// Everything a listener's TLS needs, independent of the config schema.
struct TlsConfig {
  // The first one is the default certificate.
  std::vector<CertificateConfig> certificates;
  // kTls12 or kTls13; TLS 1.0 and 1.1 are never accepted.
  uint16_t min_version{kTls12};
  // "TLS_*" names set the TLS 1.3 suites, the others the TLS 1.2 cipher list; a group left
  // empty keeps its secure default.
  std::vector<std::string> cipher_suites;
  // ALPN protocols in server preference order ("h2", "http/1.1").
  std::vector<std::string> alpn{"h2", "http/1.1"};
  // "h2" is only selected when the listener serves HTTP/2; otherwise it is not offered.
  bool http2_enabled{false};
  // CA certificates for client certificates (mTLS); empty: none are asked for.
  std::string ca_file;
  bool require_client_certificate{false};
  std::chrono::milliseconds handshake_timeout{10000};
};

// The TLS 1.2 cipher list used when the config names none (the seed's choice).
inline constexpr std::string_view kDefaultCipherList =
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS";
// The TLS 1.3 suites used when the config names none.
inline constexpr std::string_view kDefaultTls13Suites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

// A listener's server-side TLS configuration, loaded once and immutable: one SSL_CTX per
// certificate (the SNI callback switches a handshake to the right one), ALPN selection,
// session tickets under a key shared by every context of the process (so tickets survive a
// certificate reload) but bound to their context's security settings (a session resumes
// only under the certificate and client verification it was made with), and optional
// client certificate verification.
//
// Thread-safe: I/O threads create SSL objects from it concurrently. Each connection keeps
// a reference, so a context replaced by a reload lives until its last connection closes.
class TlsContext {
public:
  // Reads and checks every file `config` names. Errors come one per line as
  // "field.path: problem", the path relative to the listener's `tls` block, e.g.
  //   certificates[1].private_key_file: cannot read '/x/key.pem': Permission denied
  static absl::StatusOr<std::shared_ptr<const TlsContext>> create(const TlsConfig& config);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  const TlsConfig& config() const { return config_; }

  // A server-side SSL on the default certificate until the client's SNI picks another; the
  // caller attaches the socket (SSL_set_fd or a BIO) and frees it. nullptr when out of memory.
  ssl_st* newSsl() const;

  // The certificate for an SNI host name: an exact name first, then a "*.<parent>" wildcard
  // (one label only), else the default (0). Case-insensitive; a trailing dot is ignored.
  size_t selectCertificate(std::string_view server_name) const;
  size_t certificateCount() const { return certificates_.size(); }
  const std::vector<std::string>& serverNames(size_t index) const {
    return certificates_[index].names;
  }
  // PEM of the leaf certificate a handshake on `ssl` used (after SNI).
  const std::string& serverCertificatePem(const ssl_st* ssl) const;
  // ALPN protocols offered, in the wire format (length-prefixed).
  const std::string& alpnWire() const { return alpn_wire_; }
  bool verifiesClients() const { return !config_.ca_file.empty(); }

private:
  struct Certificate {
    ssl_ctx_st* ctx{nullptr};
    std::string pem; // leaf, for network::TlsInfo::server_cert_pem
    std::vector<std::string> names;
  };

  explicit TlsContext(TlsConfig config) : config_(std::move(config)) {}

  static int onServerName(ssl_st* ssl, int* alert, void* arg);
  // Switches to the SNI certificate's context as the ClientHello arrives, before OpenSSL
  // decides on resumption, so a session made for one name never resumes under another
  // (RFC 6066 §3): each certificate's context has its own session id context.
  static int onClientHello(ssl_st* ssl, int* alert, void* arg);
  static int onAlpnSelect(ssl_st* ssl, const unsigned char** out, unsigned char* out_len,
                          const unsigned char* in, unsigned int in_len, void* arg);

  const TlsConfig config_;
  std::vector<Certificate> certificates_;
  std::unordered_map<std::string, size_t> exact_names_;
  // "*.example.com" is stored as "example.com".
  std::unordered_map<std::string, size_t> wildcard_names_;
  std::string alpn_wire_;
};

using TlsContextConstSharedPtr = std::shared_ptr<const TlsContext>;

} // namespace pounce::network::tls

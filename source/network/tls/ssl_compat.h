#pragma once

// The few calls where OpenSSL 3 and BoringSSL differ. Everything else in source/network/tls
// uses the API both share (SSL_CTX, the ALPN select and servername callbacks, session
// ticket keys), so a static, symbol-hidden BoringSSL build stays a matter of this file
// (see TOOLCHAIN.md, "Why not BoringSSL").

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>

namespace pounce::network::tls::compat {

// The peer's leaf certificate with a reference the caller owns (X509_free), or nullptr.
inline X509* peerCertificate(const SSL* ssl) {
#if defined(OPENSSL_IS_BORINGSSL)
  return SSL_get_peer_certificate(ssl);
#else
  return SSL_get1_peer_certificate(ssl);
#endif
}

// Sets the TLS 1.3 suites. BoringSSL has a fixed, secure TLS 1.3 list and no setter.
inline bool setTls13CipherSuites(SSL_CTX* ctx, const char* suites) {
#if defined(OPENSSL_IS_BORINGSSL)
  (void)ctx;
  (void)suites;
  return true;
#else
  return SSL_CTX_set_ciphersuites(ctx, suites) == 1;
#endif
}

// Whether `name` is a TLS 1.3 suite this library can use (e.g. "TLS_AES_128_GCM_SHA256").
inline bool tls13SuiteKnown(const char* name) {
#if defined(OPENSSL_IS_BORINGSSL)
  (void)name;
  return true;
#else
  SSL_CTX* probe = SSL_CTX_new(TLS_server_method());
  if (probe == nullptr) {
    return false;
  }
  bool found = false;
  if (SSL_CTX_set_ciphersuites(probe, name) == 1) {
    // Unknown names are skipped silently by the setter: look for the suite itself.
    STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(probe);
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers) && !found; ++i) {
      const char* standard = SSL_CIPHER_standard_name(sk_SSL_CIPHER_value(ciphers, i));
      found = standard != nullptr && std::strcmp(standard, name) == 0;
    }
  }
  SSL_CTX_free(probe);
  return found;
#endif
}

// Options that exist in OpenSSL only: refuse renegotiation, treat a peer that closes the
// TCP connection without close_notify as an orderly end of stream (HTTP framing detects
// truncation), and derive DHE parameters from the key size.
inline void setLibrarySpecificOptions(SSL_CTX* ctx) {
#if defined(SSL_OP_NO_RENEGOTIATION)
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
#endif
#if defined(SSL_OP_IGNORE_UNEXPECTED_EOF)
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
#if !defined(OPENSSL_IS_BORINGSSL)
  SSL_CTX_set_dh_auto(ctx, 1);
#endif
}

} // namespace pounce::network::tls::compat

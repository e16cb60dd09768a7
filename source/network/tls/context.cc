#include "source/network/tls/context.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/network/tls/ssl_compat.h"

namespace pounce::network::tls {

namespace {

constexpr size_t kMaxPemFileBytes = 16 << 20;

// Session ticket keys shared by every context of this process, so a ticket issued before a
// certificate reload still resumes after it. Random per process, never written anywhere.
const unsigned char* processTicketKeys() {
  static unsigned char keys[128];
  static std::once_flag once;
  std::call_once(once, [] {
    if (RAND_bytes(keys, sizeof(keys)) != 1) {
      // Without randomness no key is safe: leave tickets to each context's own random key.
      keys[0] = 0;
      keys[1] = 0;
    }
  });
  return keys;
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// A session may only resume where it was made, under the same security settings: its
// session id context (checked by OpenSSL on every resumption, ticket or not) is a digest of
// the certificate that served it and of the client verification (CA certificates, whether
// a client certificate is required, the lowest version). A session of a listener that asks
// for no client certificate cannot then resume on one that requires one, nor a session made
// for one SNI certificate on another; identical settings after a reload still resume.
// (SHA-256: 32 bytes, SSL_MAX_SID_CTX_LENGTH.)
std::array<unsigned char, 32> sessionIdContext(X509* leaf, const std::vector<X509Ptr>& client_cas,
                                               const TlsConfig& config) {
  std::array<unsigned char, 32> out{};
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  auto addDer = [md](X509* x) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(x, &der);
    if (n > 0) {
      EVP_DigestUpdate(md, der, static_cast<size_t>(n));
      OPENSSL_free(der);
    }
  };
  unsigned int len = 0;
  if (md != nullptr && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1) {
    EVP_DigestUpdate(md, "pounce session context 1", 24);
    addDer(leaf);
    const unsigned char settings[3] = {
        static_cast<unsigned char>(client_cas.size() & 0xff),
        static_cast<unsigned char>(config.require_client_certificate),
        static_cast<unsigned char>(config.min_version & 0xff)};
    EVP_DigestUpdate(md, settings, sizeof(settings));
    for (const auto& ca : client_cas) {
      addDer(ca.get());
    }
    EVP_DigestFinal_ex(md, out.data(), &len);
  }
  EVP_MD_CTX_free(md);
  return out;
}

// The reason of the most recent OpenSSL error ("key values mismatch"), and clears the queue.
std::string opensslReason() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) {
    last = e;
  }
  if (last == 0) {
    return "unknown error";
  }
  const char* reason = ERR_reason_error_string(last);
  if (reason != nullptr) {
    return reason;
  }
  char buf[256];
  ERR_error_string_n(last, buf, sizeof(buf));
  return buf;
}

// Reads a whole (small) file; errors name the file and say why, as a user can act on them.
absl::StatusOr<std::string> readFile(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("is required");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(cat("cannot read '", path, "': ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(cat("'", path, "' is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxPemFileBytes) {
    ::close(fd);
    return absl::InvalidArgumentError(cat("'", path, "' is larger than 16 MiB"));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::InvalidArgumentError(cat("cannot read '", path, "': ", std::strerror(err)));
    }
    if (n == 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  if (out.empty()) {
    return absl::InvalidArgumentError(cat("'", path, "' is empty"));
  }
  return out;
}

BioPtr memoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in a PEM text, in order.
absl::StatusOr<std::vector<X509Ptr>> parseCertificates(const std::string& text,
                                                       const std::string& path) {
  ERR_clear_error();
  BioPtr bio = memoryBio(text);
  std::vector<X509Ptr> out;
  while (true) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) {
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        // No further PEM block: the end of the file.
        ERR_clear_error();
        break;
      }
      return absl::InvalidArgumentError(
          cat("'", path, "' holds a certificate OpenSSL cannot parse: ", opensslReason()));
    }
    out.emplace_back(x);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(cat("'", path, "' holds no PEM certificate"));
  }
  return out;
}

absl::StatusOr<PkeyPtr> parsePrivateKey(const std::string& text, const std::string& path) {
  if (text.find("PRIVATE KEY-----") == std::string::npos) {
    return absl::InvalidArgumentError(cat("'", path, "' holds no PEM private key"));
  }
  if (text.find("ENCRYPTED") != std::string::npos) {
    return absl::InvalidArgumentError(cat("the key in '", path,
                                          "' is encrypted; pounce needs an unencrypted key "
                                          "(protect the file with its permissions instead)"));
  }
  ERR_clear_error();
  BioPtr bio = memoryBio(text);
  // No passphrase prompt, ever: the callback gives none.
  pem_password_cb* no_password = [](char*, int, int, void*) -> int { return 0; };
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr);
  if (key == nullptr) {
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
      ERR_clear_error();
      return absl::InvalidArgumentError(cat("'", path, "' holds no PEM private key"));
    }
    return absl::InvalidArgumentError(
        cat("'", path, "' holds a private key OpenSSL cannot parse: ", opensslReason()));
  }
  return PkeyPtr(key);
}

std::string toPem(X509* x) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), x) != 1) {
    return {};
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string asn1String(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// DNS subjectAltNames, or the common name when there are none.
std::vector<std::string> namesOf(X509* leaf) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
      if (name->type == GEN_DNS) {
        names.push_back(toLower(asn1String(name->d.dNSName)));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(leaf);
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
      names.push_back(toLower(asn1String(cn)));
    }
  }
  return names;
}

bool isHostLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// "api.example.com" or "*.example.com" (lowercase already).
bool validServerName(std::string_view name) {
  if (startsWith(name, "*.")) {
    name.remove_prefix(2);
  }
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.') {
    return false;
  }
  char previous = '.';
  for (char c : name) {
    if (c == '.' && previous == '.') {
      return false;
    }
    if (c != '.' && !isHostLabelChar(c)) {
      return false;
    }
    previous = c;
  }
  return true;
}

void warnAboutValidity(X509* leaf, const std::string& path) {
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    POUNCE_LOG(Tls, Warning, "certificate in '%s' has expired: clients will refuse it", path);
  } else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    POUNCE_LOG(Tls, Warning, "certificate in '%s' is not valid yet: clients will refuse it", path);
  }
}

} // namespace

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::create(const TlsConfig& input) {
  std::vector<std::string> errors;
  auto fail = [&errors](const std::string& field, std::string_view problem) {
    errors.push_back(cat(field, ": ", problem));
  };

  TlsConfig config = input;
  if (config.certificates.empty()) {
    fail("certificates", "at least one certificate is required");
  }
  if (config.min_version != kTls12 && config.min_version != kTls13) {
    fail("min_version", "must be TLSv1_2 or TLSv1_3 (TLS 1.0 and 1.1 are not supported)");
  }
  for (size_t i = 0; i < config.alpn.size(); ++i) {
    const std::string& p = config.alpn[i];
    if (p != "h2" && p != "http/1.1") {
      fail(cat("alpn[", i, "]"), cat("'", p, "' is not a protocol pounce serves (h2, http/1.1)"));
    } else if (std::find(config.alpn.begin(), config.alpn.begin() + static_cast<long>(i), p) !=
               config.alpn.begin() + static_cast<long>(i)) {
      fail(cat("alpn[", i, "]"), cat("'", p, "' is listed twice"));
    }
  }
  if (config.require_client_certificate && config.ca_file.empty()) {
    fail("client_validation.require_client_certificate",
         "needs client_validation.ca_file (the CAs client certificates must chain to)");
  }

  // Cipher suites: TLS 1.3 names ("TLS_*") and TLS 1.2 names or expressions, each checked
  // on its own so an error points at the entry.
  std::string tls12;
  std::string tls13;
  for (size_t i = 0; i < config.cipher_suites.size(); ++i) {
    const std::string& name = config.cipher_suites[i];
    const std::string field = cat("cipher_suites[", i, "]");
    if (name.empty() || name.find_first_of(": ,") != std::string::npos) {
      fail(field, cat("'", name, "' is not one cipher suite name (give one per entry)"));
      continue;
    }
    if (startsWith(name, "TLS_")) {
      if (!compat::tls13SuiteKnown(name.c_str())) {
        fail(field, cat("'", name, "' is not a TLS 1.3 cipher suite this build knows"));
        continue;
      }
      tls13 += tls13.empty() ? name : ":" + name;
      continue;
    }
    const bool modifier = name[0] == '!' || name[0] == '-' || name[0] == '+';
    if (!modifier) {
      CtxPtr probe(SSL_CTX_new(TLS_server_method()));
      if (probe == nullptr || SSL_CTX_set_cipher_list(probe.get(), name.c_str()) != 1) {
        ERR_clear_error();
        fail(field, cat("'", name, "' matches no TLS 1.2 cipher this build knows"));
        continue;
      }
    }
    tls12 += tls12.empty() ? name : ":" + name;
  }
  if (tls12.empty()) {
    tls12 = std::string(kDefaultCipherList);
  } else {
    // Never negotiate unauthenticated or unencrypted suites, whatever the list says.
    tls12 += ":!aNULL:!eNULL";
  }
  if (tls13.empty()) {
    tls13 = std::string(kDefaultTls13Suites);
  }

  // Client certificate CAs, loaded once and added to every certificate's context.
  std::vector<X509Ptr> client_cas;
  if (!config.ca_file.empty()) {
    auto text = readFile(config.ca_file);
    if (!text.ok()) {
      fail("client_validation.ca_file", std::string(text.status().message()));
    } else {
      auto cas = parseCertificates(*text, config.ca_file);
      if (!cas.ok()) {
        fail("client_validation.ca_file", std::string(cas.status().message()));
      } else {
        client_cas = std::move(*cas);
      }
    }
  }

  std::shared_ptr<TlsContext> context(new TlsContext(config));
  for (const auto& p : config.alpn) {
    if (p == "h2" && !config.http2_enabled) {
      continue;
    }
    context->alpn_wire_.push_back(static_cast<char>(p.size()));
    context->alpn_wire_ += p;
  }

  std::set<std::string> configured_names; // names some certificate's server_names listed
  for (size_t i = 0; i < config.certificates.size(); ++i) {
    const CertificateConfig& cert = config.certificates[i];
    const std::string field = cat("certificates[", i, "]");
    auto chain_text = readFile(cert.certificate_chain_file);
    auto key_text = readFile(cert.private_key_file);
    if (!chain_text.ok()) {
      fail(field + ".certificate_chain_file", std::string(chain_text.status().message()));
    }
    if (!key_text.ok()) {
      fail(field + ".private_key_file", std::string(key_text.status().message()));
    }
    if (!chain_text.ok() || !key_text.ok()) {
      continue;
    }
    auto chain = parseCertificates(*chain_text, cert.certificate_chain_file);
    if (!chain.ok()) {
      fail(field + ".certificate_chain_file", std::string(chain.status().message()));
    }
    auto key = parsePrivateKey(*key_text, cert.private_key_file);
    if (!key.ok()) {
      fail(field + ".private_key_file", std::string(key.status().message()));
    }
    if (!chain.ok() || !key.ok()) {
      continue;
    }

    ERR_clear_error();
    CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (ctx == nullptr) {
      fail(field, cat("cannot create a TLS context: ", opensslReason()));
      continue;
    }
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, config.min_version);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    compat::setLibrarySpecificOptions(c);
    // Partial writes let a connection drain its output queue record by record; a retried
    // write may come from a buffer that moved; idle connections give their buffers back.
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    // Read what the socket has in one read(2), not a record header and then its body.
    SSL_CTX_set_read_ahead(c, 1);
    if (SSL_CTX_set_cipher_list(c, tls12.c_str()) != 1 ||
        !compat::setTls13CipherSuites(c, tls13.c_str())) {
      fail("cipher_suites", cat("no usable cipher suite: ", opensslReason()));
      continue;
    }
    // Resumption through tickets only (no server-side session cache to lock across
    // threads); every context of the process encrypts them under the same key.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    const auto sid_ctx = sessionIdContext((*chain)[0].get(), client_cas, config);
    SSL_CTX_set_session_id_context(c, sid_ctx.data(), sid_ctx.size());
    const long key_len = SSL_CTX_get_tlsext_ticket_keys(c, nullptr, 0);
    const unsigned char* ticket_keys = processTicketKeys();
    if (key_len > 0 && key_len <= 128 && (ticket_keys[0] != 0 || ticket_keys[1] != 0)) {
      SSL_CTX_set_tlsext_ticket_keys(c, const_cast<unsigned char*>(ticket_keys), key_len);
    }
    if (!context->alpn_wire_.empty()) {
      SSL_CTX_set_alpn_select_cb(c, &TlsContext::onAlpnSelect, context.get());
    }
    if (config.certificates.size() > 1) {
      SSL_CTX_set_client_hello_cb(c, &TlsContext::onClientHello, context.get());
      SSL_CTX_set_tlsext_servername_callback(c, &TlsContext::onServerName);
      SSL_CTX_set_tlsext_servername_arg(c, context.get());
    }
    if (!client_cas.empty()) {
      X509_STORE* store = SSL_CTX_get_cert_store(c);
      for (const auto& ca : client_cas) {
        X509_STORE_add_cert(store, ca.get());
        SSL_CTX_add_client_CA(c, ca.get());
      }
      SSL_CTX_set_verify(
          c,
          SSL_VERIFY_PEER |
              (config.require_client_certificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
          nullptr);
    }

    X509* leaf = (*chain)[0].get();
    if (SSL_CTX_use_certificate(c, leaf) != 1) {
      fail(field + ".certificate_chain_file",
           cat("cannot use the certificate in '", cert.certificate_chain_file,
               "': ", opensslReason()));
      continue;
    }
    bool chain_ok = true;
    for (size_t k = 1; k < chain->size() && chain_ok; ++k) {
      chain_ok = SSL_CTX_add1_chain_cert(c, (*chain)[k].get()) == 1;
    }
    if (!chain_ok) {
      fail(field + ".certificate_chain_file",
           cat("cannot use the intermediate certificates in '", cert.certificate_chain_file,
               "': ", opensslReason()));
      continue;
    }
    if (SSL_CTX_use_PrivateKey(c, key->get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
      ERR_clear_error();
      fail(field + ".private_key_file",
           cat("the key in '", cert.private_key_file, "' does not match the certificate in '",
               cert.certificate_chain_file, "'"));
      continue;
    }
    warnAboutValidity(leaf, cert.certificate_chain_file);

    Certificate loaded;
    loaded.pem = toPem(leaf);
    const size_t index = context->certificates_.size();
    // The first certificate that lists a name serves it. Names from the certificates may
    // overlap (the default one often covers everything); a name in `server_names` wins
    // over one read from another certificate; a name in two `server_names` is a mistake
    // worth reporting.
    auto add_name = [&](const std::string& name, const std::string& name_field) {
      const bool wildcard = startsWith(name, "*.");
      auto& map = wildcard ? context->wildcard_names_ : context->exact_names_;
      auto [it, inserted] = map.emplace(wildcard ? name.substr(2) : name, index);
      const bool listed = !name_field.empty();
      if (!inserted && listed) {
        if (configured_names.count(name) != 0) {
          fail(name_field, cat("'", name, "' is already served by certificates[", it->second, "]"));
        } else {
          it->second = index;
        }
      }
      if (listed) {
        configured_names.insert(name);
      }
      loaded.names.push_back(name);
    };
    if (cert.server_names.empty()) {
      for (const auto& name : namesOf(leaf)) {
        add_name(name, "");
      }
    } else {
      for (size_t k = 0; k < cert.server_names.size(); ++k) {
        const std::string name = toLower(cert.server_names[k]);
        const std::string name_field = cat(field, ".server_names[", k, "]");
        if (!validServerName(name)) {
          fail(name_field, cat("'", cert.server_names[k],
                               "' is not a host name or a wildcard like *.example.com"));
          continue;
        }
        add_name(name, name_field);
      }
    }
    loaded.ctx = ctx.release();
    context->certificates_.push_back(std::move(loaded));
  }
  ERR_clear_error();
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) {
      message += message.empty() ? e : "\n" + e;
    }
    return absl::InvalidArgumentError(message);
  }
  return std::shared_ptr<const TlsContext>(std::move(context));
}

TlsContext::~TlsContext() {
  for (auto& c : certificates_) {
    SSL_CTX_free(c.ctx);
  }
}

ssl_st* TlsContext::newSsl() const {
  SSL* ssl = SSL_new(certificates_[0].ctx);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

size_t TlsContext::selectCertificate(std::string_view server_name) const {
  if (!server_name.empty() && server_name.back() == '.') {
    server_name.remove_suffix(1);
  }
  const std::string name = toLower(server_name);
  if (auto it = exact_names_.find(name); it != exact_names_.end()) {
    return it->second;
  }
  const size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_names_.find(name.substr(dot + 1)); it != wildcard_names_.end()) {
      return it->second;
    }
  }
  return 0;
}

const std::string& TlsContext::serverCertificatePem(const ssl_st* ssl) const {
  const SSL_CTX* used = SSL_get_SSL_CTX(ssl);
  for (const auto& c : certificates_) {
    if (c.ctx == used) {
      return c.pem;
    }
  }
  return certificates_[0].pem;
}

int TlsContext::onClientHello(ssl_st* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  // server_name_list: length (2), then entries of type (1), length (2), name; the first
  // host_name entry names the host (RFC 6066 §3). Anything malformed is left to OpenSSL.
  if (len < 2 || static_cast<size_t>((p[0] << 8) | p[1]) != len - 2) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  size_t at = 2;
  while (at + 3 <= len) {
    const unsigned type = p[at];
    const size_t n = static_cast<size_t>((p[at + 1] << 8) | p[at + 2]);
    at += 3;
    if (at + n > len) {
      break;
    }
    if (type == TLSEXT_NAMETYPE_host_name) {
      const std::string_view name(reinterpret_cast<const char*>(p + at), n);
      const size_t index = self->selectCertificate(name);
      if (index != 0 && SSL_set_SSL_CTX(ssl, self->certificates_[index].ctx) == nullptr) {
        return SSL_CLIENT_HELLO_ERROR;
      }
      break;
    }
    at += n;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

int TlsContext::onServerName(ssl_st* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) {
    return SSL_TLSEXT_ERR_OK;
  }
  const size_t index = self->selectCertificate(name);
  if (index != 0 && SSL_set_SSL_CTX(ssl, self->certificates_[index].ctx) == nullptr) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::onAlpnSelect(ssl_st* /*ssl*/, const unsigned char** out, unsigned char* out_len,
                             const unsigned char* in, unsigned int in_len, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const std::string& wire = self->alpn_wire_;
  unsigned char* selected = nullptr;
  unsigned char selected_len = 0;
  // Server preference: the first of our protocols the client also offers.
  if (SSL_select_next_proto(
          &selected, &selected_len, reinterpret_cast<const unsigned char*>(wire.data()),
          static_cast<unsigned int>(wire.size()), in, in_len) != OPENSSL_NPN_NEGOTIATED) {
    // No common protocol: go on without ALPN (HTTP/1.1), as most servers do.
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  *out_len = selected_len;
  return SSL_TLSEXT_ERR_OK;
}

} // namespace pounce::network::tls

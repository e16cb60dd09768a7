#pragma once

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "source/network/tls/context.h"

namespace pounce::network::tls::test {

// Certificates made for one test with the openssl command line tool, in a fresh directory
// under /tmp (world-traversable, so a test may read them as another user). Removed at the end.
class TestCertificates {
public:
  struct Pair {
    std::string cert;
    std::string key;
  };

  TestCertificates() {
    char tmpl[] = "/tmp/pounce-tls-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    dir_ = made != nullptr ? made : "/tmp";
    ::chmod(dir_.c_str(), 0755);
  }
  ~TestCertificates() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A self-signed EC P-256 certificate with CN `cn` and DNS subjectAltNames `sans`.
  Pair selfSigned(const std::string& name, const std::string& cn,
                  const std::vector<std::string>& sans = {}, int days = 30) {
    Pair p{path(name + ".pem"), path(name + ".key")};
    std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                      "-nodes -keyout " +
                      p.key + " -out " + p.cert + " -days " + std::to_string(days) +
                      " -subj '/CN=" + cn + "'";
    if (!sans.empty()) {
      cmd += " -addext 'subjectAltName=" + sanList(sans) + "'";
    }
    run(cmd);
    return p;
  }

  // A CA that can sign certificates.
  Pair ca(const std::string& name, const std::string& cn) {
    Pair p{path(name + ".pem"), path(name + ".key")};
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
        p.key + " -out " + p.cert + " -days 30 -subj '/CN=" + cn +
        "' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
    return p;
  }

  // A leaf signed by `issuer`, with subject `subject` ("/CN=x/O=y").
  Pair signedBy(const Pair& issuer, const std::string& name, const std::string& subject,
                const std::vector<std::string>& sans = {}) {
    Pair p{path(name + ".pem"), path(name + ".key")};
    const std::string csr = path(name + ".csr");
    const std::string ext = path(name + ".ext");
    std::ofstream(ext) << "basicConstraints=CA:FALSE\n"
                       << (sans.empty() ? "" : "subjectAltName=" + sanList(sans) + "\n");
    run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
        p.key + " -out " + csr + " -subj '" + subject + "'");
    run("openssl x509 -req -in " + csr + " -CA " + issuer.cert + " -CAkey " + issuer.key +
        " -CAcreateserial -out " + p.cert + " -days 30 -extfile " + ext);
    return p;
  }

  void write(const std::string& file, const std::string& text) { std::ofstream(file) << text; }
  static std::string read(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  bool ok() const { return ok_; }

private:
  static std::string sanList(const std::vector<std::string>& sans) {
    std::string out;
    for (const auto& s : sans) {
      out += (out.empty() ? "DNS:" : ",DNS:") + s;
    }
    return out;
  }
  void run(const std::string& cmd) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
      ok_ = false;
      ADD_FAILURE() << "failed: " << cmd;
    }
  }

  std::string dir_;
  bool ok_{true};
};

// A TLS client on one end of a socket pair, stepped by hand (non-blocking).
class TestClient {
public:
  explicit TestClient(int fd) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    fd_ = fd;
  }
  ~TestClient() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
    }
    SSL_CTX_free(ctx_);
  }
  SSL_CTX* ctx() { return ctx_; }

  // Call after configuring ctx(): creates the connection with optional SNI and ALPN.
  void start(const std::string& sni = "", const std::string& alpn_wire = "") {
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_connect_state(ssl_);
    if (!sni.empty()) {
      SSL_set_tlsext_host_name(ssl_, sni.c_str());
    }
    if (!alpn_wire.empty()) {
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                          static_cast<unsigned int>(alpn_wire.size()));
    }
  }
  bool useCertificate(const TestCertificates::Pair& p) {
    return SSL_CTX_use_certificate_chain_file(ctx_, p.cert.c_str()) == 1 &&
           SSL_CTX_use_PrivateKey_file(ctx_, p.key.c_str(), SSL_FILETYPE_PEM) == 1;
  }

  // 1 done, 0 in progress, -1 failed.
  int handshake() {
    if (done_) {
      return 1;
    }
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
      done_ = true;
      return 1;
    }
    const int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      return 0;
    }
    return -1;
  }
  // Reads what is there; false once the peer closed (close_notify or EOF) or on error.
  bool readAvailable(std::string& out) {
    char buf[16384];
    while (true) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      last_read_error_ = err;
      return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
    }
  }
  // Writes all of `data` (the test's socket buffer is large enough for small writes).
  bool write(const std::string& data) {
    size_t off = 0;
    for (int i = 0; i < 1000 && off < data.size(); ++i) {
      const int n = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
      if (n > 0) {
        off += static_cast<size_t>(n);
      }
    }
    return off == data.size();
  }
  SSL* ssl() { return ssl_; }
  int lastReadError() const { return last_read_error_; }

private:
  SSL_CTX* ctx_{nullptr};
  SSL* ssl_{nullptr};
  int fd_{-1};
  bool done_{false};
  int last_read_error_{0};
};

} // namespace pounce::network::tls::test

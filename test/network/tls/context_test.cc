#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "source/network/tls/context.h"
#include "source/network/tls/socket.h"
#include "test/network/tls/test_certs.h"

namespace pounce::network::tls {
namespace {

using test::TestCertificates;
using test::TestClient;

TlsConfig configWith(std::vector<TestCertificates::Pair> pairs) {
  TlsConfig config;
  for (const auto& p : pairs) {
    config.certificates.push_back({p.cert, p.key, {}});
  }
  return config;
}

std::string errorOf(const TlsConfig& config) {
  auto context = TlsContext::create(config);
  return context.ok() ? "" : std::string(context.status().message());
}

// A socket pair: a server SSL from `context` on one end, `client` on the other.
struct Handshake {
  explicit Handshake(const TlsContext& context) {
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds);
    server = context.newSsl();
    SSL_set_fd(server, fds[0]);
    client = std::make_unique<TestClient>(fds[1]);
  }
  ~Handshake() {
    client.reset();
    SSL_free(server);
    ::close(fds[0]);
    ::close(fds[1]);
  }
  // True when both ends finished, false when one failed.
  bool run() {
    bool server_done = false;
    for (int i = 0; i < 200; ++i) {
      const int c = client->handshake();
      if (!server_done) {
        ERR_clear_error();
        const int rc = SSL_do_handshake(server);
        if (rc == 1) {
          server_done = true;
        } else {
          const int err = SSL_get_error(server, rc);
          if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
            return false;
          }
        }
      }
      if (c < 0) {
        return false;
      }
      if (c == 1 && server_done) {
        return true;
      }
    }
    return false;
  }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(server, &p, &len);
    return p == nullptr ? "" : std::string(reinterpret_cast<const char*>(p), len);
  }
  std::string peerCommonName() const {
    X509* peer = SSL_get1_peer_certificate(client->ssl());
    if (peer == nullptr) {
      return "";
    }
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
    X509_free(peer);
    return cn;
  }

  int fds[2];
  SSL* server{nullptr};
  std::unique_ptr<TestClient> client;
};

TEST(TlsContext, LoadsACertificateAndTakesItsNamesFromSubjectAltNames) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test", {"a.test", "*.a.test"});
  ASSERT_TRUE(certs.ok());
  auto context = TlsContext::create(configWith({a}));
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ((*context)->certificateCount(), 1u);
  EXPECT_EQ((*context)->serverNames(0), (std::vector<std::string>{"a.test", "*.a.test"}));
}

TEST(TlsContext, CommonNameIsTheNameWhenThereAreNoSubjectAltNames) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "Only.CN.Test");
  auto context = TlsContext::create(configWith({a}));
  ASSERT_TRUE(context.ok()) << context.status();
  EXPECT_EQ((*context)->serverNames(0), (std::vector<std::string>{"only.cn.test"}));
}

TEST(TlsContext, MissingFilesNameTheFieldAndTheFile) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  TlsConfig config = configWith({a, {certs.path("nope.pem"), certs.path("nope.key")}});
  EXPECT_EQ(errorOf(config), "certificates[1].certificate_chain_file: cannot read '" +
                                 certs.path("nope.pem") +
                                 "': No such file or directory\n"
                                 "certificates[1].private_key_file: cannot read '" +
                                 certs.path("nope.key") + "': No such file or directory");
}

TEST(TlsContext, UnreadableKeyIsPermissionDenied) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  ASSERT_EQ(::chmod(a.key.c_str(), 0600), 0);
  const std::string expected =
      "certificates[0].private_key_file: cannot read '" + a.key + "': Permission denied";
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(a.key.c_str(), 0), 0);
    EXPECT_EQ(errorOf(configWith({a})), expected);
    return;
  }
  // root reads any file: load it as an unprivileged user in a child process instead.
  ::chmod(a.cert.c_str(), 0644);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(2);
    }
    const std::string error = errorOf(configWith({a}));
    const ssize_t n = ::write(pipe_fds[1], error.data(), error.size());
    ::_exit(n == static_cast<ssize_t>(error.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0) {
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(got, expected);
}

TEST(TlsContext, KeyOfAnotherCertificateIsAMismatch) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  auto b = certs.selfSigned("b", "b.test");
  EXPECT_EQ(errorOf(configWith({a, {b.cert, a.key}})),
            "certificates[1].private_key_file: the key in '" + a.key +
                "' does not match the certificate in '" + b.cert + "'");
}

TEST(TlsContext, FilesThatAreNotPemSayWhat) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  certs.write(certs.path("junk.pem"), "not a certificate\n");
  certs.write(certs.path("empty.key"), "");
  EXPECT_EQ(errorOf(configWith({{certs.path("junk.pem"), a.key}})),
            "certificates[0].certificate_chain_file: '" + certs.path("junk.pem") +
                "' holds no PEM certificate");
  EXPECT_EQ(errorOf(configWith({{a.cert, certs.path("empty.key")}})),
            "certificates[0].private_key_file: '" + certs.path("empty.key") + "' is empty");
  EXPECT_EQ(errorOf(configWith({{a.cert, a.cert}})),
            "certificates[0].private_key_file: '" + a.cert + "' holds no PEM private key");
  EXPECT_EQ(errorOf(configWith({{a.cert, certs.dir()}})),
            "certificates[0].private_key_file: '" + certs.dir() + "' is not a regular file");
}

TEST(TlsContext, EncryptedKeyIsRefused) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  const std::string encrypted = certs.path("enc.key");
  ASSERT_EQ(std::system(("openssl pkey -in " + a.key + " -aes256 -passout pass:secret -out " +
                         encrypted + " 2>/dev/null")
                            .c_str()),
            0);
  const std::string e = errorOf(configWith({{a.cert, encrypted}}));
  EXPECT_NE(e.find("certificates[0].private_key_file: the key in '" + encrypted + "' is encrypted"),
            std::string::npos)
      << e;
}

TEST(TlsContext, ConfigMistakesAreReportedTogether) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  TlsConfig config = configWith({a});
  config.alpn = {"h2", "spdy/3", "h2"};
  config.cipher_suites = {"TLS_NOT_A_SUITE", "NOT-A-CIPHER", "ECDHE-ECDSA-AES128-GCM-SHA256"};
  config.require_client_certificate = true;
  config.min_version = 0x0302;
  EXPECT_EQ(errorOf(config),
            "min_version: must be TLSv1_2 or TLSv1_3 (TLS 1.0 and 1.1 are not supported)\n"
            "alpn[1]: 'spdy/3' is not a protocol pounce serves (h2, http/1.1)\n"
            "alpn[2]: 'h2' is listed twice\n"
            "client_validation.require_client_certificate: needs client_validation.ca_file "
            "(the CAs client certificates must chain to)\n"
            "cipher_suites[0]: 'TLS_NOT_A_SUITE' is not a TLS 1.3 cipher suite this build knows\n"
            "cipher_suites[1]: 'NOT-A-CIPHER' matches no TLS 1.2 cipher this build knows");
  EXPECT_EQ(errorOf(TlsConfig{}), "certificates: at least one certificate is required");
}

TEST(TlsContext, ServerNamesFromConfigAreCheckedAndUnique) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  auto b = certs.selfSigned("b", "b.test");
  TlsConfig config = configWith({a, b});
  config.certificates[0].server_names = {"api.example.com"};
  config.certificates[1].server_names = {"API.example.com", "bad name", "*.*.example.com"};
  EXPECT_EQ(errorOf(config),
            "certificates[1].server_names[0]: 'api.example.com' is already served by "
            "certificates[0]\n"
            "certificates[1].server_names[1]: 'bad name' is not a host name or a wildcard like "
            "*.example.com\n"
            "certificates[1].server_names[2]: '*.*.example.com' is not a host name or a "
            "wildcard like *.example.com");
}

TEST(TlsContext, AListedNameWinsOverTheSameNameReadFromAnEarlierCertificate) {
  // A broad default first (its own name, read from it) does not block a specific
  // certificate after it that lists the name; in either order the listed one serves it.
  TestCertificates certs;
  auto apex = certs.selfSigned("apex", "example.test", {"example.test", "*.example.test"});
  auto specific = certs.selfSigned("specific", "specific.example.test");
  for (bool apex_first : {true, false}) {
    TlsConfig config = apex_first ? configWith({apex, specific}) : configWith({specific, apex});
    config.certificates[apex_first ? 1 : 0].server_names = {"example.test", "*.example.test"};
    auto context = TlsContext::create(config);
    ASSERT_TRUE(context.ok()) << context.status();
    EXPECT_EQ((*context)->selectCertificate("example.test"), apex_first ? 1u : 0u);
    EXPECT_EQ((*context)->selectCertificate("www.example.test"), apex_first ? 1u : 0u);
  }
}

TEST(TlsContext, SelectsCertificatesByExactNameThenWildcardElseTheFirst) {
  TestCertificates certs;
  auto fallback = certs.selfSigned("default", "default.test");
  auto api = certs.selfSigned("api", "api.example.com");
  auto wild = certs.selfSigned("wild", "wild.example.com");
  TlsConfig config = configWith({fallback, api, wild});
  config.certificates[1].server_names = {"api.example.com"};
  config.certificates[2].server_names = {"*.example.com"};
  auto context = TlsContext::create(config);
  ASSERT_TRUE(context.ok()) << context.status();
  const TlsContext& c = **context;
  EXPECT_EQ(c.selectCertificate("api.example.com"), 1u);
  EXPECT_EQ(c.selectCertificate("API.Example.COM."), 1u);
  EXPECT_EQ(c.selectCertificate("www.example.com"), 2u);
  EXPECT_EQ(c.selectCertificate("a.b.example.com"), 0u); // a wildcard covers one label
  EXPECT_EQ(c.selectCertificate("example.com"), 0u);
  EXPECT_EQ(c.selectCertificate("other.test"), 0u);
  EXPECT_EQ(c.selectCertificate(""), 0u);

  // And a real handshake serves the chosen certificate.
  for (const auto& [sni, cn] :
       std::vector<std::pair<std::string, std::string>>{{"api.example.com", "api.example.com"},
                                                        {"www.example.com", "wild.example.com"},
                                                        {"unknown.test", "default.test"},
                                                        {"", "default.test"}}) {
    Handshake h(c);
    h.client->start(sni);
    ASSERT_TRUE(h.run()) << sni;
    EXPECT_EQ(h.peerCommonName(), cn) << sni;
  }
}

TEST(TlsContext, MinimumVersionRefusesOlderClients) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  TlsConfig config = configWith({a});
  auto tls12 = TlsContext::create(config);
  config.min_version = kTls13;
  auto tls13 = TlsContext::create(config);
  ASSERT_TRUE(tls12.ok() && tls13.ok());
  {
    Handshake h(**tls13);
    SSL_CTX_set_max_proto_version(h.client->ctx(), TLS1_2_VERSION);
    h.client->start();
    EXPECT_FALSE(h.run());
  }
  {
    Handshake h(**tls12);
    SSL_CTX_set_max_proto_version(h.client->ctx(), TLS1_2_VERSION);
    h.client->start();
    ASSERT_TRUE(h.run());
    EXPECT_EQ(SSL_version(h.server), TLS1_2_VERSION);
  }
  {
    // TLS 1.1 is refused even by the default configuration.
    Handshake h(**tls12);
    SSL_CTX_set_security_level(h.client->ctx(), 0);
    SSL_CTX_set_min_proto_version(h.client->ctx(), TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(h.client->ctx(), TLS1_1_VERSION);
    h.client->start();
    EXPECT_FALSE(h.run());
  }
  {
    Handshake h(**tls13);
    h.client->start();
    ASSERT_TRUE(h.run());
    EXPECT_EQ(SSL_version(h.server), TLS1_3_VERSION);
  }
}

TEST(TlsContext, AlpnSelectsH2OnlyWhenTheListenerServesHttp2) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  TlsConfig config = configWith({a});
  auto without = TlsContext::create(config);
  config.http2_enabled = true;
  auto with = TlsContext::create(config);
  ASSERT_TRUE(without.ok() && with.ok());
  const std::string both("\x02h2\x08http/1.1", 12);
  const std::string h2_only("\x02h2", 3);
  auto negotiate = [](const TlsContext& c, const std::string& offer) {
    Handshake h(c);
    h.client->start("", offer);
    EXPECT_TRUE(h.run());
    return h.alpn();
  };
  EXPECT_EQ(negotiate(**without, both), "http/1.1");
  EXPECT_EQ(negotiate(**without, h2_only), ""); // no common protocol: no ALPN
  EXPECT_EQ(negotiate(**with, both), "h2");
  EXPECT_EQ(negotiate(**with, std::string("\x08http/1.1\x02h2", 12)), "h2"); // ours first
  EXPECT_EQ(negotiate(**with, ""), "");
}

TEST(TlsContext, ConfiguredCipherSuitesAreTheOnesNegotiated) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  TlsConfig config = configWith({a});
  config.cipher_suites = {"ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_AES_128_GCM_SHA256"};
  auto context = TlsContext::create(config);
  ASSERT_TRUE(context.ok()) << context.status();
  {
    Handshake h(**context);
    SSL_CTX_set_max_proto_version(h.client->ctx(), TLS1_2_VERSION);
    h.client->start();
    ASSERT_TRUE(h.run());
    EXPECT_EQ(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(h.server)), 0xCCA9);
  }
  {
    Handshake h(**context);
    h.client->start();
    ASSERT_TRUE(h.run());
    EXPECT_EQ(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(h.server)), 0x1301);
  }
  {
    // A client that only has suites the server left out fails.
    Handshake h(**context);
    SSL_CTX_set_ciphersuites(h.client->ctx(), "TLS_AES_256_GCM_SHA384");
    h.client->start();
    EXPECT_FALSE(h.run());
  }
}

TEST(TlsContext, SessionTicketsResumeAcrossContextsOfTheProcess) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "a.test");
  auto first = TlsContext::create(configWith({a}));
  auto second = TlsContext::create(configWith({a})); // as after a certificate reload
  ASSERT_TRUE(first.ok() && second.ok());
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SSL_SESSION* session = nullptr;
    {
      Handshake h(**first);
      SSL_CTX_set_max_proto_version(h.client->ctx(), version);
      h.client->start();
      ASSERT_TRUE(h.run());
      EXPECT_FALSE(SSL_session_reused(h.server));
      // TLS 1.3 tickets come after the handshake: let the client take them in.
      std::string ignored;
      h.client->readAvailable(ignored);
      session = SSL_get1_session(h.client->ssl());
      ASSERT_NE(session, nullptr);
      EXPECT_TRUE(SSL_SESSION_has_ticket(session)) << version;
      // A client that closes without close_notify marks its session unusable.
      SSL_shutdown(h.client->ssl());
    }
    {
      Handshake h(**second);
      SSL_CTX_set_max_proto_version(h.client->ctx(), version);
      h.client->start();
      SSL_set_session(h.client->ssl(), session);
      ASSERT_TRUE(h.run());
      EXPECT_TRUE(SSL_session_reused(h.server)) << version;
    }
    SSL_SESSION_free(session);
  }
}

TEST(TlsSocketFactory, ReloadSwapsTheContextAndKeepsTheOldOneOnError) {
  TestCertificates certs;
  auto a = certs.selfSigned("a", "first.test");
  auto b = certs.selfSigned("b", "second.test");
  const std::string cert = certs.path("live.pem");
  const std::string key = certs.path("live.key");
  certs.write(cert, TestCertificates::read(a.cert));
  certs.write(key, TestCertificates::read(a.key));
  auto context = TlsContext::create(configWith({{cert, key}}));
  ASSERT_TRUE(context.ok()) << context.status();
  TlsSocketFactory factory(*context, "reload_test", "listeners[0].tls");
  auto before = factory.context();
  EXPECT_EQ(before->serverNames(0), std::vector<std::string>{"first.test"});

  // A half-written update (new certificate, old key) is refused; the old context stays.
  certs.write(cert, TestCertificates::read(b.cert));
  auto status = factory.reload();
  EXPECT_EQ(std::string(status.message()),
            "listeners[0].tls.certificates[0].private_key_file: the key in '" + key +
                "' does not match the certificate in '" + cert + "'");
  EXPECT_EQ(factory.context(), before);

  certs.write(key, TestCertificates::read(b.key));
  ASSERT_TRUE(factory.reload().ok());
  EXPECT_NE(factory.context(), before);
  EXPECT_EQ(factory.context()->serverNames(0), std::vector<std::string>{"second.test"});
  // Connections made before keep the context they started with.
  EXPECT_EQ(before->serverNames(0), std::vector<std::string>{"first.test"});
}

} // namespace
} // namespace pounce::network::tls

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "source/common/event/dispatcher.h"
#include "source/common/time.h"
#include "source/network/tls/socket.h"
#include "test/network/tls/test_certs.h"

namespace pounce::network::tls {
namespace {

using test::TestCertificates;
using test::TestClient;

class FakeCallbacks : public TransportSocketCallbacks {
public:
  FakeCallbacks(int fd, event::Dispatcher& dispatcher) : fd_(fd), dispatcher_(dispatcher) {}
  int fd() const override { return fd_; }
  event::Dispatcher& dispatcher() override { return dispatcher_; }
  void onTransportConnected() override { ++connected; }
  void setReadBufferReady() override { ++read_ready; }

  int connected{0};
  int read_ready{0};

private:
  int fd_;
  event::Dispatcher& dispatcher_;
};

// A TlsSocket on one end of a socket pair, a TestClient on the other.
class TlsSocketTest : public testing::Test {
protected:
  void SetUp() override {
    leaf_ = certs_.selfSigned("server", "a.test", {"a.test"});
    ASSERT_TRUE(certs_.ok());
  }
  void TearDown() override {
    socket_.reset();
    client_.reset();
    callbacks_.reset();
    if (fds_[0] >= 0) {
      ::close(fds_[0]);
      ::close(fds_[1]);
    }
  }

  void start(TlsConfig config) {
    if (config.certificates.empty()) {
      config.certificates.push_back({leaf_.cert, leaf_.key, {}});
    }
    auto context = TlsContext::create(config);
    ASSERT_TRUE(context.ok()) << context.status();
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0);
    stats_ = TlsStats::create(stats::Store::global(), "socket_test");
    socket_ = std::make_unique<TlsSocket>(*context, stats_);
    callbacks_ = std::make_unique<FakeCallbacks>(fds_[0], dispatcher_);
    socket_->setCallbacks(*callbacks_);
    socket_->onConnected();
    client_ = std::make_unique<TestClient>(fds_[1]);
  }

  // Steps both ends until the handshake is over; the server's last read result.
  IoResult handshake() {
    IoResult result;
    for (int i = 0; i < 100; ++i) {
      const int c = client_->handshake();
      result = socket_->doRead(read_, 65536);
      if (result.action == IoResult::Action::Close || c < 0) {
        return result;
      }
      if (socket_->handshakeDone() && c == 1) {
        return result;
      }
    }
    ADD_FAILURE() << "handshake did not finish";
    return result;
  }

  // Writes `queue` to the client and collects everything it decrypts.
  std::string transfer(OutputQueue& queue, int* blocked = nullptr, size_t* max_staged = nullptr) {
    std::string received;
    for (int i = 0; i < 100000 && !queue.empty(); ++i) {
      IoResult r = socket_->doWrite(queue);
      EXPECT_EQ(r.action, IoResult::Action::KeepOpen);
      if (r.action == IoResult::Action::Close) {
        break;
      }
      if (max_staged != nullptr) {
        *max_staged = std::max(*max_staged, socket_->stagedBytes());
      }
      if (r.would_block && blocked != nullptr) {
        ++*blocked;
      }
      client_->readAvailable(received);
    }
    for (int i = 0; i < 100; ++i) {
      client_->readAvailable(received);
    }
    return received;
  }

  TestCertificates certs_;
  TestCertificates::Pair leaf_;
  event::Dispatcher dispatcher_{"test", RealTimeSource::instance()};
  int fds_[2]{-1, -1};
  TlsStats stats_;
  std::unique_ptr<FakeCallbacks> callbacks_;
  std::unique_ptr<TlsSocket> socket_;
  std::unique_ptr<TestClient> client_;
  Buffer read_;
};

TEST_F(TlsSocketTest, HandshakeFillsTlsInfoThenTellsTheConnection) {
  start({});
  client_->start("A.test", std::string("\x02h2\x08http/1.1", 12));
  EXPECT_EQ(socket_->tlsInfo(), nullptr);
  const int64_t handshakes = stats_.handshakes->value();
  IoResult r = handshake();
  ASSERT_EQ(r.action, IoResult::Action::KeepOpen);
  EXPECT_EQ(callbacks_->connected, 1);
  const TlsInfo* info = socket_->tlsInfo();
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->version, 0x0304);
  EXPECT_EQ(info->cipher_suite, 0x1302); // TLS_AES_256_GCM_SHA384, the server's first choice
  EXPECT_EQ(info->alpn, "http/1.1");     // h2 is not served by this listener
  EXPECT_EQ(socket_->negotiatedProtocol(), "http/1.1");
  EXPECT_EQ(info->sni, "A.test");
  EXPECT_EQ(info->server_cert_pem, TestCertificates::read(leaf_.cert));
  EXPECT_TRUE(info->client_cert_chain_pem.empty());
  EXPECT_EQ(stats_.handshakes->value(), handshakes + 1);
}

TEST_F(TlsSocketTest, ReadsDecryptedBytesWithinTheBudgetAndSaysWhenMoreWaits) {
  start({});
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  const std::string sent(40000, 'r');
  ASSERT_TRUE(client_->write(sent));
  Buffer buffer;
  const int ready_before = callbacks_->read_ready;
  IoResult r = socket_->doRead(buffer, 10000);
  EXPECT_EQ(r.bytes, 10000u);
  EXPECT_FALSE(r.would_block);
  EXPECT_EQ(callbacks_->read_ready, ready_before + 1); // come back for the rest
  r = socket_->doRead(buffer, 1 << 20);
  EXPECT_EQ(r.bytes, 30000u);
  EXPECT_TRUE(r.would_block);
  EXPECT_EQ(buffer.view(), sent);
}

TEST_F(TlsSocketTest, SendsFileSegmentsThroughABoundedChunk) {
  start({});
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  // 8 MiB of a pattern that shows misplaced bytes.
  std::string content(8 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) {
    content[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  }
  const std::string path = certs_.path("body.bin");
  certs_.write(path, content);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto file = std::make_shared<FileHandle>(fd);

  OutputQueue queue;
  queue.add("HTTP/1.1 200 OK\r\ncontent-length: 8388508\r\n\r\n");
  queue.addFile(file, 100, content.size() - 100); // from an offset
  queue.add("after the file");
  queue.addFile(file, 0, 10);
  int blocked = 0;
  size_t max_staged = 0;
  const std::string received = transfer(queue, &blocked, &max_staged);
  EXPECT_TRUE(queue.empty());
  EXPECT_GT(blocked, 0);                        // the socket pushed back on the way
  EXPECT_LE(max_staged, TlsSocket::kFileChunk); // never more than a chunk in memory
  EXPECT_GT(max_staged, 0u);
  const std::string expected = "HTTP/1.1 200 OK\r\ncontent-length: 8388508\r\n\r\n" +
                               content.substr(100) + "after the file" + content.substr(0, 10);
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected);
}

TEST_F(TlsSocketTest, LargeBufferedWritesSurviveWouldBlock) {
  start({});
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  std::string body(3 << 20, 'x');
  body[12345] = 'y';
  OutputQueue queue;
  queue.add(body);
  int blocked = 0;
  const std::string received = transfer(queue, &blocked);
  EXPECT_GT(blocked, 0);
  EXPECT_TRUE(received == body);
}

TEST_F(TlsSocketTest, AFileThatShrankEndsTheConnection) {
  start({});
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  const std::string path = certs_.path("short.bin");
  certs_.write(path, "short");
  auto file = std::make_shared<FileHandle>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  OutputQueue queue;
  queue.addFile(file, 0, 1000);
  EXPECT_EQ(socket_->doWrite(queue).action, IoResult::Action::Close);
}

TEST_F(TlsSocketTest, CloseNotifyGoesBothWays) {
  start({});
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  EXPECT_TRUE(socket_->shutdownWrite());
  std::string got;
  EXPECT_FALSE(client_->readAvailable(got));
  EXPECT_EQ(client_->lastReadError(), SSL_ERROR_ZERO_RETURN);

  SSL_shutdown(client_->ssl());
  Buffer buffer;
  IoResult r = socket_->doRead(buffer, 65536);
  EXPECT_TRUE(r.end_stream);
  EXPECT_EQ(r.action, IoResult::Action::KeepOpen);
}

TEST_F(TlsSocketTest, PlainHttpGetsA400AndTheConnectionCloses) {
  start({});
  const std::string request = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
  ASSERT_EQ(::write(fds_[1], request.data(), request.size()), static_cast<ssize_t>(request.size()));
  const int64_t errors = stats_.handshake_errors->value();
  Buffer buffer;
  EXPECT_EQ(socket_->doRead(buffer, 65536).action, IoResult::Action::Close);
  char reply[512] = {0};
  const ssize_t n = ::read(fds_[1], reply, sizeof(reply) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(reply).rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << reply;
  EXPECT_EQ(stats_.handshake_errors->value(), errors + 1);
  EXPECT_EQ(socket_->doRead(buffer, 65536).action, IoResult::Action::Close);
}

TEST_F(TlsSocketTest, HandshakeTimeoutAsksTheConnectionToReadAndClose) {
  TlsConfig config;
  config.handshake_timeout = std::chrono::milliseconds(20);
  start(config);
  const int64_t timeouts = stats_.handshake_timeouts->value();
  // The client connected and sends nothing. Run the loop until the transport speaks up.
  auto guard = dispatcher_.createTimer([this] { dispatcher_.exit(); });
  guard->enableTimer(std::chrono::seconds(5));
  event::TimerPtr poll;
  poll = dispatcher_.createTimer([&] {
    if (callbacks_->read_ready > 0) {
      dispatcher_.exit();
    } else {
      poll->enableTimer(std::chrono::milliseconds(5));
    }
  });
  poll->enableTimer(std::chrono::milliseconds(5));
  dispatcher_.run();
  ASSERT_EQ(callbacks_->read_ready, 1);
  Buffer buffer;
  EXPECT_EQ(socket_->doRead(buffer, 65536).action, IoResult::Action::Close);
  EXPECT_EQ(stats_.handshake_timeouts->value(), timeouts + 1);
  EXPECT_EQ(callbacks_->connected, 0);
}

TEST_F(TlsSocketTest, HandshakeThatMustWriteWaitsForWritability) {
  // A certificate of ~40 KB and a small socket buffer: the server's flight does not fit.
  std::vector<std::string> names;
  for (int i = 0; i < 1500; ++i) {
    names.push_back("host-" + std::to_string(i) + ".example.test");
  }
  auto big = certs_.selfSigned("big", "big.test", names);
  ASSERT_TRUE(certs_.ok());
  TlsConfig config;
  config.certificates.push_back({big.cert, big.key, {}});
  start(config);
  const int small = 4096;
  ASSERT_EQ(::setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  client_->start();
  bool waited_for_writable = false;
  for (int i = 0; i < 1000 && !(socket_->handshakeDone() && client_->handshake() == 1); ++i) {
    ASSERT_GE(client_->handshake(), 0);
    IoResult r = socket_->doRead(read_, 65536);
    ASSERT_EQ(r.action, IoResult::Action::KeepOpen);
    if (socket_->readNeedsWritable()) {
      // What the connection does on write readiness: retry the read side.
      EXPECT_TRUE(r.would_block);
      waited_for_writable = true;
    }
  }
  EXPECT_TRUE(waited_for_writable);
  ASSERT_TRUE(socket_->handshakeDone());
  EXPECT_FALSE(socket_->readNeedsWritable());
  EXPECT_EQ(callbacks_->connected, 1);
}

class MutualTlsTest : public TlsSocketTest {
protected:
  void SetUp() override {
    TlsSocketTest::SetUp();
    ca_ = certs_.ca("ca", "Test CA");
    other_ca_ = certs_.ca("other-ca", "Other CA");
    client_cert_ = certs_.signedBy(ca_, "client", "/CN=client.test/O=pounce tests");
    stranger_ = certs_.signedBy(other_ca_, "stranger", "/CN=stranger.test");
    ASSERT_TRUE(certs_.ok());
  }
  TlsConfig mtls(bool required) {
    TlsConfig config;
    config.ca_file = ca_.cert;
    config.require_client_certificate = required;
    return config;
  }
  TestCertificates::Pair ca_, other_ca_, client_cert_, stranger_;
};

TEST_F(MutualTlsTest, RequiredClientCertificateIsMissing) {
  start(mtls(true));
  client_->start();
  const int64_t errors = stats_.handshake_errors->value();
  EXPECT_EQ(handshake().action, IoResult::Action::Close);
  EXPECT_EQ(callbacks_->connected, 0);
  EXPECT_EQ(stats_.handshake_errors->value(), errors + 1);
}

TEST_F(MutualTlsTest, CertificateFromAnotherCaIsRefused) {
  start(mtls(false));
  ASSERT_TRUE(client_->useCertificate(stranger_));
  client_->start();
  EXPECT_EQ(handshake().action, IoResult::Action::Close);
  EXPECT_EQ(callbacks_->connected, 0);
}

TEST_F(MutualTlsTest, VerifiedClientCertificateIsInTlsInfo) {
  start(mtls(true));
  ASSERT_TRUE(client_->useCertificate(client_cert_));
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  const TlsInfo* info = socket_->tlsInfo();
  ASSERT_NE(info, nullptr);
  ASSERT_EQ(info->client_cert_chain_pem.size(), 1u);
  EXPECT_EQ(info->client_cert_chain_pem[0], TestCertificates::read(client_cert_.cert));
  EXPECT_EQ(info->client_cert_subject, "O=pounce tests,CN=client.test");
  EXPECT_EQ(info->client_cert_error, "");
}

TEST_F(MutualTlsTest, OptionalClientCertificateMayBeAbsent) {
  start(mtls(false));
  client_->start();
  ASSERT_EQ(handshake().action, IoResult::Action::KeepOpen);
  ASSERT_NE(socket_->tlsInfo(), nullptr);
  EXPECT_TRUE(socket_->tlsInfo()->client_cert_chain_pem.empty());
  EXPECT_EQ(socket_->tlsInfo()->client_cert_subject, "");
}

} // namespace
} // namespace pounce::network::tls

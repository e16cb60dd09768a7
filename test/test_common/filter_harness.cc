#include "test/test_common/filter_harness.h"

#include <event2/event.h>
#include <unistd.h>

#include "source/common/config/yaml_proto.h"
#include <google/protobuf/empty.pb.h>

namespace pounce::test {

void RecordingEncoder::encodeFile(FileHandleSharedPtr file, uint64_t offset, uint64_t length,
                                  bool end_stream) {
  std::string data(length, '\0');
  const ssize_t n = ::pread(file->fd(), data.data(), length, static_cast<off_t>(offset));
  data.resize(n > 0 ? static_cast<size_t>(n) : 0);
  out_.body += data;
  out_.file_bytes += length;
  out_.complete = end_stream;
}

namespace {

class HarnessFactoryContext : public http::FactoryContext {
public:
  explicit HarnessFactoryContext(ServerContext& server) : server_(server) {}
  ServerContext& server() override { return server_; }
  const std::string& listenerName() const override { return name_; }
  std::string resolvePath(std::string_view path) const override { return std::string(path); }
  bool validateOnly() const override { return false; }
  size_t filterIndex() const override { return 0; }
  size_t chainLength() const override { return 1; }

private:
  ServerContext& server_;
  std::string name_{"test"};
};

} // namespace

FilterHarness::FilterHarness(std::vector<http::FilterFactoryCb> factories,
                             http::HttpSettings settings)
    : dispatcher("harness", time), settings_(std::move(settings)) {
  std::vector<http::FilterChainEntry> entries;
  for (auto& f : factories) {
    entries.push_back({"test", std::move(f), false});
  }
  auto chain = std::make_shared<http::FilterChain>(std::move(entries), 1);
  peer = *network::Address::fromIp("10.0.0.1", 40000);
  http::StreamInfo info;
  info.start_time = time.monotonicTime();
  info.start_system_time = time.systemTime();
  info.peer_address = peer;
  info.client_address = peer;
  info.local_address = *network::Address::fromIp("127.0.0.1", 8000);
  info.listener_name = "test";
  stream_ = std::make_unique<http::ActiveStream>(*this, encoder, chain, std::move(info));
}

FilterHarness::~FilterHarness() {
  deadline_timer_.reset(); // (its callback refers to the stream)
  stream_.reset();
  runPending();
}

absl::StatusOr<std::vector<http::FilterFactoryCb>>
FilterHarness::factoriesFromYaml(const std::vector<std::pair<std::string, std::string>>& filters,
                                 ServerContext& server) {
  std::vector<http::FilterFactoryCb> out;
  for (const auto& [name, yaml] : filters) {
    const auto* factory = http::FilterRegistry::get().findByName(name);
    if (factory == nullptr) {
      return absl::NotFoundError("no filter " + name);
    }
    auto config = factory->createEmptyConfig();
    if (config != nullptr && !yaml.empty()) {
      auto node = config::parseYaml(yaml, name);
      if (!node.ok()) {
        return node.status();
      }
      config::ConfigErrors errors(name);
      config::yamlToMessage(*node, *config, "", errors);
      if (!errors.empty()) {
        return errors.status();
      }
    }
    if (config == nullptr) {
      config = std::make_unique<google::protobuf::Empty>();
    }
    HarnessFactoryContext context(server);
    auto cb = factory->createFilterFactory(*config, context);
    if (!cb.ok()) {
      return cb.status();
    }
    out.push_back(std::move(*cb));
  }
  return out;
}

http::StreamInfo& FilterHarness::info() { return stream_->info(); }

void FilterHarness::onRequestDeadline(http::ActiveStream& stream, MonotonicTime deadline) {
  // Real time: the harness's dispatcher runs libevent timers.
  const auto delay =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - time.monotonicTime());
  deadline_timer_ = dispatcher.createTimer(
      [this, &stream] { stream.checkRequestTimeout(stream.requestDeadline()); });
  deadline_timer_->enableTimer(std::max(delay, std::chrono::milliseconds(1)));
}

void FilterHarness::checkRequestTimeout() {
  stream_->checkRequestTimeout(time.monotonicTime());
  runPending();
}

void FilterHarness::sendHeaders(http::RequestHeadersPtr headers, bool end_stream) {
  stream_->decodeHeaders(std::move(headers), end_stream);
  runPending();
}

void FilterHarness::sendData(std::string_view data, bool end_stream) {
  Buffer b(data);
  stream_->decodeData(b, end_stream);
  runPending();
}

void FilterHarness::sendTrailers(http::HeaderMapPtr trailers) {
  stream_->decodeTrailers(std::move(trailers));
  runPending();
}

void FilterHarness::protocolError(int status) {
  stream_->onProtocolError(status, "test");
  runPending();
}

void FilterHarness::clientReset() {
  stream_->onResetStream(http::StreamResetReason::RemoteReset);
  runPending();
}

void FilterHarness::runPending() { event_base_loop(dispatcher.base(), EVLOOP_NONBLOCK); }

http::RequestHeadersPtr
FilterHarness::request(std::string method, std::string path,
                       std::vector<std::pair<std::string, std::string>> headers) {
  auto h = std::make_unique<http::RequestHeaders>();
  h->setMethod(method);
  h->setPath(path);
  h->add("host", "example.com");
  for (const auto& [k, v] : headers) {
    h->add(k, v);
  }
  return h;
}

} // namespace pounce::test

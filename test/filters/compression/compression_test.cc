#include <brotli/decode.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libdeflate.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <fstream>
#include <random>

#include "source/filters/compression/compression.h"
#include "test/test_common/filter_harness.h"
#include <isa-l/igzip_lib.h>

namespace pounce::filters::compression {
namespace {

using test::FilterHarness;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Streaming decoders, so a test can decode what arrived so far.
class Decoder {
public:
  virtual ~Decoder() = default;
  // Decodes more input; false on a corrupt stream.
  virtual bool feed(std::string_view in, std::string& out) = 0;
  virtual bool finished() const = 0;
  static std::unique_ptr<Decoder> create(std::string_view encoding);
};

class GzipDecoder : public Decoder {
public:
  GzipDecoder() { inflateInit2(&z_, 15 + 16); }
  ~GzipDecoder() override { inflateEnd(&z_); }
  bool feed(std::string_view in, std::string& out) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    char buf[16384];
    while (true) {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof(buf);
      const int rc = inflate(&z_, Z_SYNC_FLUSH);
      out.append(buf, sizeof(buf) - z_.avail_out);
      if (rc == Z_STREAM_END) {
        done_ = true;
        return z_.avail_in == 0;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return false;
      }
      if (z_.avail_in == 0 && z_.avail_out != 0) {
        return true;
      }
    }
  }
  bool finished() const override { return done_; }

private:
  z_stream z_{};
  bool done_{false};
};

class BrotliDecoder : public Decoder {
public:
  BrotliDecoder() : s_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliDecoder() override { BrotliDecoderDestroyInstance(s_); }
  bool feed(std::string_view in, std::string& out) override {
    size_t avail_in = in.size();
    const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
    while (true) {
      uint8_t buf[16384];
      size_t avail_out = sizeof(buf);
      uint8_t* next_out = buf;
      const auto rc =
          BrotliDecoderDecompressStream(s_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      out.append(reinterpret_cast<char*>(buf), sizeof(buf) - avail_out);
      if (rc == BROTLI_DECODER_RESULT_ERROR) {
        return false;
      }
      if (rc == BROTLI_DECODER_RESULT_SUCCESS) {
        done_ = true;
        return avail_in == 0;
      }
      if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
        return true;
      }
    }
  }
  bool finished() const override { return done_; }

private:
  BrotliDecoderState* s_;
  bool done_{false};
};

class ZstdDecoder : public Decoder {
public:
  ZstdDecoder() : d_(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(d_); }
  bool feed(std::string_view in, std::string& out) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    while (true) {
      char buf[16384];
      ZSTD_outBuffer output{buf, sizeof(buf), 0};
      const size_t rc = ZSTD_decompressStream(d_, &output, &input);
      out.append(buf, output.pos);
      if (ZSTD_isError(rc)) {
        return false;
      }
      if (rc == 0) {
        done_ = true;
      }
      if (input.pos == input.size && output.pos < output.size) {
        return true;
      }
    }
  }
  bool finished() const override { return done_; }

private:
  ZSTD_DCtx* d_;
  bool done_{false};
};

std::unique_ptr<Decoder> Decoder::create(std::string_view encoding) {
  if (encoding == "gzip") {
    return std::make_unique<GzipDecoder>();
  }
  if (encoding == "br") {
    return std::make_unique<BrotliDecoder>();
  }
  if (encoding == "zstd") {
    return std::make_unique<ZstdDecoder>();
  }
  return nullptr;
}

// Decodes a whole body; fails the test if it is corrupt or unfinished.
std::string decode(std::string_view encoding, std::string_view body) {
  auto d = Decoder::create(encoding);
  EXPECT_NE(d, nullptr) << encoding;
  if (d == nullptr) {
    return "";
  }
  std::string out;
  EXPECT_TRUE(d->feed(body, out)) << encoding;
  EXPECT_TRUE(d->finished()) << encoding << ": stream not finished";
  return out;
}

// What libdeflate makes of `in` in one call at `level`: the one-shot gzip path's output.
std::string libdeflateGzip(std::string_view in, int level) {
  libdeflate_compressor* c = libdeflate_alloc_compressor(level);
  std::string out(libdeflate_gzip_compress_bound(c, in.size()), '\0');
  out.resize(libdeflate_gzip_compress(c, in.data(), in.size(), out.data(), out.size()));
  libdeflate_free_compressor(c);
  return out;
}

// What ISA-L's igzip makes of `in` at its level 1: the one-shot path's output at gzip level 1.
std::string igzipLevel1(std::string_view in) {
  std::vector<uint8_t> level_buf(ISAL_DEF_LVL1_DEFAULT);
  isal_zstream s;
  isal_deflate_stateless_init(&s);
  s.level = 1;
  s.level_buf = level_buf.data();
  s.level_buf_size = level_buf.size();
  s.gzip_flag = IGZIP_GZIP;
  s.end_of_stream = 1;
  std::string out(in.size() + 1024, '\0');
  std::string copy(in);
  s.next_in = reinterpret_cast<uint8_t*>(copy.data());
  s.avail_in = copy.size();
  s.next_out = reinterpret_cast<uint8_t*>(out.data());
  s.avail_out = out.size();
  EXPECT_EQ(isal_deflate_stateless(&s), COMP_OK);
  out.resize(s.total_out);
  out[8] = 4; // pounce marks the fastest level in the header's XFL byte, as zlib does
  return out;
}

// zlib's gzip at `level` (what nginx's gzip sends).
std::string zlibGzip(std::string_view in, int level) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  std::string copy(in);
  z.next_in = reinterpret_cast<Bytef*>(copy.data());
  z.avail_in = copy.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string text(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) {
    s += "{\"id\": " + std::to_string(i) + ", \"name\": \"item number " + std::to_string(i) +
         "\"},\n";
  }
  s.resize(n);
  return s;
}

// Terminal: answers with the configured head, then the body chunks (the last with
// end_stream unless trailers follow). With `manual`, the test drives the chunks.
class Producer : public http::StreamFilter {
public:
  struct Spec {
    int status{200};
    Headers headers{{"content-type", "application/json"}};
    std::vector<std::string> chunks;
    bool trailers{false};
    bool manual{false};
    std::string file; // send this file with encodeFile instead of chunks
  };
  Producer(const Spec& spec, Producer*& self) : spec_(spec) { self = this; }

  http::FilterStatus decodeHeaders(http::RequestHeaders&, bool) override {
    auto h = std::make_unique<http::ResponseHeaders>(spec_.status);
    for (const auto& [k, v] : spec_.headers) {
      h->add(k, v);
    }
    const bool no_body = spec_.chunks.empty() && spec_.file.empty() && !spec_.manual;
    decoder_callbacks_->encodeHeaders(std::move(h), no_body);
    if (!spec_.file.empty()) {
      const int fd = ::open(spec_.file.c_str(), O_RDONLY | O_CLOEXEC);
      const off_t size = ::lseek(fd, 0, SEEK_END);
      decoder_callbacks_->encodeFile(std::make_shared<FileHandle>(fd), 0,
                                     static_cast<uint64_t>(size), true);
    } else if (!spec_.manual) {
      for (size_t i = 0; i < spec_.chunks.size(); ++i) {
        send(spec_.chunks[i], i + 1 == spec_.chunks.size() && !spec_.trailers);
      }
      if (spec_.trailers) {
        auto t = std::make_unique<http::HeaderMap>();
        t->add("x-checksum", "abc");
        decoder_callbacks_->encodeTrailers(std::move(t));
      }
    }
    return http::FilterStatus::StopIteration;
  }
  void send(std::string_view chunk, bool end) {
    Buffer b(chunk);
    decoder_callbacks_->encodeData(b, end);
  }

private:
  Spec spec_;
};

class CompressionTest : public testing::Test {
protected:
  std::unique_ptr<FilterHarness> run(const Producer::Spec& spec, Headers request = {},
                                     const std::string& yaml = "",
                                     const std::string& method = "GET") {
    auto factories =
        FilterHarness::factoriesFromYaml({{"pounce.filters.compression", yaml}}, server_);
    EXPECT_TRUE(factories.ok()) << factories.status();
    factories->push_back([this, spec]() { return std::make_unique<Producer>(spec, producer_); });
    auto h = std::make_unique<FilterHarness>(std::move(*factories), settings_);
    h->sendHeaders(FilterHarness::request(method, "/", std::move(request)), true);
    return h;
  }

  static Producer::Spec withBody(Producer::Spec spec, std::string body) {
    spec.chunks = {std::move(body)};
    return spec;
  }

  static Producer::Spec json(std::string body, bool with_length = true) {
    Producer::Spec spec;
    if (with_length) {
      spec.headers.emplace_back("content-length", std::to_string(body.size()));
    }
    spec.chunks.push_back(std::move(body));
    return spec;
  }

  test::FakeServerContext server_;
  http::HttpSettings settings_;
  Producer* producer_{nullptr};
};

TEST_F(CompressionTest, ChoosesTheEncodingByAcceptEncoding) {
  const std::string body = text(5000);
  struct Case {
    std::string accept;
    std::string encoding; // "" = identity
  };
  for (const Case& c : std::vector<Case>{{"gzip", "gzip"},
                                         {"br", "br"},
                                         {"zstd", "zstd"},
                                         {"gzip, deflate, br, zstd", "zstd"},
                                         {"gzip;q=1, zstd;q=0.5", "gzip"},
                                         {"br;q=0.5, *;q=0.1", "br"},
                                         {"*", "zstd"},
                                         {"x-gzip", "gzip"},
                                         {"identity", ""},
                                         {"deflate", ""},
                                         {"gzip;q=0, br;q=0, zstd;q=0", ""}}) {
    auto h = run(json(body), {{"accept-encoding", c.accept}});
    const auto& r = h->response;
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.headers.getOr("vary"), "accept-encoding") << c.accept;
    EXPECT_EQ(r.headers.getOr("content-encoding"), c.encoding) << c.accept;
    if (c.encoding.empty()) {
      EXPECT_EQ(r.body, body) << c.accept;
      EXPECT_EQ(r.headers.getOr("content-length"), std::to_string(body.size()));
    } else {
      EXPECT_FALSE(r.headers.has("content-length")) << c.accept;
      EXPECT_LT(r.body.size(), body.size() / 3) << c.accept;
      EXPECT_EQ(decode(c.encoding, r.body), body) << c.accept;
    }
  }
  // No Accept-Encoding at all: identity.
  auto h = run(json(body));
  EXPECT_EQ(h->response.body, body);
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
}

TEST_F(CompressionTest, ConfiguredEncodingsAndTheirOrder) {
  const std::string body = text(2000);
  const std::string yaml = "encodings: [gzip, br]";
  EXPECT_EQ(run(json(body), {{"accept-encoding", "br, gzip"}}, yaml)
                ->response.headers.getOr("content-encoding"),
            "gzip");
  EXPECT_EQ(run(json(body), {{"accept-encoding", "zstd"}}, yaml)
                ->response.headers.getOr("content-encoding"),
            "");
}

TEST_F(CompressionTest, MinBytesAppliesOnlyToKnownLengths) {
  const std::string small = text(100);
  auto h = run(json(small), {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.body, small) << "below min_bytes (256)";
  EXPECT_FALSE(h->response.headers.has("content-encoding"));
  h = run(json(small, false), {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip") << "no length: streamed";
  EXPECT_EQ(decode("gzip", h->response.body), small);
  h = run(json(small), {{"accept-encoding", "gzip"}}, "min_bytes: 50");
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  h = run(json(std::string(256, 'a')), {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip") << "exactly min_bytes";
  // A client that refuses identity gets a compressed body whatever its size.
  h = run(json(small), {{"accept-encoding", "gzip, identity;q=0"}});
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  EXPECT_EQ(decode("gzip", h->response.body), small);
}

TEST_F(CompressionTest, ResponsesThatAreNeverCompressed) {
  const std::string body = text(3000);
  const Headers ae = {{"accept-encoding", "gzip, br, zstd"}};
  auto expect_plain = [&](const Producer::Spec& spec, const std::string& method = "GET") {
    auto h = run(spec, ae, "", method);
    EXPECT_FALSE(h->response.headers.has("content-encoding")) << h->response.status;
    return h;
  };
  auto h = expect_plain(json(body), "HEAD");
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  for (int status : {204, 304}) {
    Producer::Spec spec;
    spec.status = status;
    expect_plain(spec);
  }
  Producer::Spec partial = json(body);
  partial.status = 206;
  partial.headers.emplace_back("content-range", "bytes 0-2999/9000");
  expect_plain(partial);
  Producer::Spec encoded = json(body);
  encoded.headers.emplace_back("content-encoding", "gzip");
  EXPECT_EQ(run(encoded, ae)->response.body, body);
  Producer::Spec no_transform = json(body);
  no_transform.headers.emplace_back("cache-control", "public, No-Transform");
  h = expect_plain(no_transform);
  EXPECT_FALSE(h->response.headers.has("vary"));
  Producer::Spec image = json(body);
  image.headers[0].second = "image/png";
  h = expect_plain(image);
  EXPECT_FALSE(h->response.headers.has("vary"));
  Producer::Spec untyped = json(body);
  untyped.headers.erase(untyped.headers.begin());
  expect_plain(untyped);
  Producer::Spec range_200 = json(body);
  range_200.headers.emplace_back("content-range", "bytes 0-2999/3000");
  expect_plain(range_200);
}

TEST_F(CompressionTest, DefaultContentTypes) {
  const std::string body = text(1000);
  for (const char* type :
       {"text/html; charset=utf-8", "TEXT/CSS", "text/plain", "application/json",
        "application/javascript", "application/xml", "image/svg+xml", "application/problem+json",
        "application/atom+xml", "application/wasm", "text/event-stream"}) {
    Producer::Spec spec = json(body);
    spec.headers[0].second = type;
    EXPECT_EQ(run(spec, {{"accept-encoding", "gzip"}})->response.headers.getOr("content-encoding"),
              "gzip")
        << type;
  }
  for (const char* type : {"image/png", "application/octet-stream", "video/mp4", "application/zip",
                           "font/woff2", "nonsense", "text/", "text/ ; charset=utf-8", "/json"}) {
    Producer::Spec spec = json(body);
    spec.headers[0].second = type;
    EXPECT_EQ(run(spec, {{"accept-encoding", "gzip"}})->response.headers.getOr("content-encoding"),
              "")
        << type;
  }
}

TEST_F(CompressionTest, ConfiguredContentTypesReplaceTheDefaults) {
  const std::string yaml = "content_types: [application/x-ndjson, 'font/*']";
  Producer::Spec spec = json(text(1000));
  spec.headers[0].second = "application/x-ndjson";
  EXPECT_EQ(
      run(spec, {{"accept-encoding", "br"}}, yaml)->response.headers.getOr("content-encoding"),
      "br");
  spec.headers[0].second = "font/ttf";
  EXPECT_EQ(
      run(spec, {{"accept-encoding", "br"}}, yaml)->response.headers.getOr("content-encoding"),
      "br");
  spec.headers[0].second = "text/html";
  EXPECT_EQ(
      run(spec, {{"accept-encoding", "br"}}, yaml)->response.headers.getOr("content-encoding"), "");
}

TEST_F(CompressionTest, VaryIsMergedAndETagWeakened) {
  Producer::Spec spec = json(text(1000));
  const size_t kVary = spec.headers.size();
  spec.headers.emplace_back("vary", "Origin");
  const size_t kEtag = kVary + 1;
  spec.headers.emplace_back("etag", "\"v1\"");
  spec.headers.emplace_back("accept-ranges", "bytes");
  auto h = run(spec, {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getOr("vary"), "Origin, accept-encoding");
  EXPECT_EQ(h->response.headers.getOr("etag"), "W/\"v1\"");
  EXPECT_FALSE(h->response.headers.has("accept-ranges"));
  spec.headers[kVary].second = "Accept-Encoding";
  spec.headers[kEtag].second = "W/\"v2\"";
  h = run(spec, {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getJoined("vary"), "Accept-Encoding");
  EXPECT_EQ(h->response.headers.getOr("etag"), "W/\"v2\"");
  spec.headers[kVary].second = "*";
  h = run(spec, {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getJoined("vary"), "*");
  // Not compressed: a strong ETag stays strong.
  spec.headers[kVary].second = "origin";
  spec.headers[kEtag].second = "\"v3\"";
  h = run(spec);
  EXPECT_EQ(h->response.headers.getOr("etag"), "\"v3\"");
}

// RFC 9110 §15.4.5 and §15.3.7: a 304 and a 206 carry the ETag and Vary the 200 would.
TEST_F(CompressionTest, NotModifiedAndPartialCarryTheValidatorsOfThe200) {
  Producer::Spec not_modified;
  not_modified.status = 304;
  not_modified.headers = {{"etag", "\"v1\""}}; // (no type, as a 304 usually is)
  // The client holds the compressed 200 (W/"v1") and would get it compressed again.
  auto h = run(not_modified, {{"accept-encoding", "gzip"}, {"if-none-match", "\"x\", W/\"v1\""}});
  EXPECT_EQ(h->response.status, 304);
  EXPECT_EQ(h->response.headers.getOr("etag"), "W/\"v1\"");
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  EXPECT_FALSE(h->response.headers.has("content-encoding"));
  // It holds the identity 200 ("v1"), or would not get an encoding now: the tag stays.
  for (const Headers& request :
       {Headers{{"accept-encoding", "gzip"}, {"if-none-match", "\"v1\""}},
        Headers{{"accept-encoding", "identity"}, {"if-none-match", "W/\"v1\""}},
        Headers{{"if-none-match", "W/\"v1\""}}}) {
    h = run(not_modified, request);
    EXPECT_EQ(h->response.headers.getOr("etag"), "\"v1\"");
    EXPECT_FALSE(h->response.headers.has("vary"));
  }
  // A 304 that says its type gets the Vary of a compressible type either way.
  not_modified.headers.emplace_back("content-type", "text/html");
  h = run(not_modified, {{"if-none-match", "\"v1\""}});
  EXPECT_EQ(h->response.headers.getOr("etag"), "\"v1\"");
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  // A 206 is of the identity bytes (never compressed), with the Vary of its 200.
  Producer::Spec partial = json(text(3000));
  partial.status = 206;
  partial.headers.emplace_back("content-range", "bytes 0-2999/9000");
  partial.headers.emplace_back("etag", "\"v2\"");
  h = run(partial, {{"accept-encoding", "gzip"}});
  EXPECT_FALSE(h->response.headers.has("content-encoding"));
  EXPECT_EQ(h->response.headers.getOr("etag"), "\"v2\"");
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  partial.headers[0].second = "image/png";
  EXPECT_FALSE(run(partial, {{"accept-encoding", "gzip"}})->response.headers.has("vary"));
  // An empty Vary becomes "accept-encoding", not ", accept-encoding".
  Producer::Spec empty_vary = json(text(1000));
  empty_vary.headers.emplace_back("vary", "");
  h = run(empty_vary, {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getJoined("vary"), "accept-encoding");
}

TEST_F(CompressionTest, FieldsWhoseNamesHaveTheSameLengthAreToldApart) {
  // The head is scanned once, names sorted by length: "x-powered-by" is not
  // content-type, "date" is not vary, "cache-control" is not content-range, and so on.
  const std::string body = text(1000);
  Producer::Spec spec;
  spec.headers = {{"x-powered-by", "pounce"},
                  {"date", "x"},
                  {"content-type", "application/json"},
                  {"cache-control", "max-age=60"},
                  {"x-content-size", "1"},
                  {"content-length", "1000"},
                  {"x-content-coding", "none"}};
  auto h = run(withBody(spec, body), {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  EXPECT_EQ(h->response.headers.count("vary"), 1u);
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  EXPECT_EQ(decode("gzip", h->response.body), body);
  // The first Content-Type and Content-Length count.
  spec.headers = {
      {"content-type", "image/png"}, {"content-type", "text/plain"}, {"content-length", "1000"}};
  h = run(withBody(spec, body), {{"accept-encoding", "gzip"}});
  EXPECT_FALSE(h->response.headers.has("content-encoding"));
  EXPECT_FALSE(h->response.headers.has("vary"));
  spec.headers = {
      {"content-type", "text/plain"}, {"content-length", "10"}, {"content-length", "1000"}};
  h = run(withBody(spec, body), {{"accept-encoding", "gzip"}});
  EXPECT_FALSE(h->response.headers.has("content-encoding")) << "10 < min_bytes";
  EXPECT_EQ(h->response.headers.getOr("vary"), "accept-encoding");
  // Content-Length values: spaces around, 19 digits, and what is not a number.
  for (const char* length : {" 1000 ", "0000000000000001000", "12345678901234567890"}) {
    spec.headers = {{"content-type", "text/plain"}, {"content-length", length}};
    h = run(withBody(spec, body), {{"accept-encoding", "gzip"}});
    EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip") << length;
  }
  for (const char* length : {"12", " 0012", "0000000000000000012"}) {
    spec.headers = {{"content-type", "text/plain"}, {"content-length", length}};
    h = run(withBody(spec, body), {{"accept-encoding", "gzip"}});
    EXPECT_FALSE(h->response.headers.has("content-encoding")) << length;
  }
  for (const char* length : {"1e3", "-5", "", "99999999999999999999999"}) {
    // Not a length: treated as unknown, so compressed whatever min_bytes says.
    spec.headers = {{"content-type", "text/plain"}, {"content-length", length}};
    h = run(withBody(spec, body), {{"accept-encoding", "gzip"}});
    EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip") << length;
  }
}

TEST_F(CompressionTest, EveryChunkIsFlushedForStreaming) {
  for (const char* encoding : {"gzip", "br", "zstd"}) {
    Producer::Spec spec;
    spec.headers = {{"content-type", "text/event-stream"}};
    spec.manual = true;
    auto h = run(spec, {{"accept-encoding", encoding}});
    ASSERT_EQ(h->response.headers.getOr("content-encoding"), encoding);
    auto decoder = Decoder::create(encoding);
    std::string decoded;
    size_t consumed = 0;
    std::string expected;
    for (int i = 0; i < 5; ++i) {
      const std::string event = "data: event " + std::to_string(i) + "\n\n";
      expected += event;
      producer_->send(event, false);
      ASSERT_TRUE(decoder->feed(std::string_view(h->response.body).substr(consumed), decoded));
      consumed = h->response.body.size();
      EXPECT_EQ(decoded, expected) << encoding << ": event " << i << " was held back";
    }
    producer_->send("", true);
    ASSERT_TRUE(decoder->feed(std::string_view(h->response.body).substr(consumed), decoded));
    EXPECT_TRUE(decoder->finished()) << encoding;
    EXPECT_EQ(decoded, expected);
    EXPECT_TRUE(h->response.complete);
  }
}

TEST_F(CompressionTest, AWholeGzipBodyIsCompressedInOneCall) {
  // One chunk with end_stream, with or without a declared length: libdeflate's one-call
  // output, which zlib's inflate decodes byte for byte.
  const std::string body = text(36000);
  for (bool with_length : {true, false}) {
    auto h = run(json(body, with_length), {{"accept-encoding", "gzip"}});
    EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
    EXPECT_FALSE(h->response.headers.has("content-length"));
    EXPECT_TRUE(h->response.complete);
    EXPECT_TRUE(h->response.body == libdeflateGzip(body, 6)) << with_length;
    EXPECT_EQ(decode("gzip", h->response.body), body) << with_length;
  }
}

TEST_F(CompressionTest, GzipLevelsAreLibdeflatesSameLevels) {
  const std::string body = text(20000);
  for (int round = 0; round < 2; ++round) { // the second round reuses the thread's compressors
    for (int level = 2; level <= 9; ++level) {
      auto h =
          run(json(body), {{"accept-encoding", "gzip"}}, "gzip_level: " + std::to_string(level));
      EXPECT_TRUE(h->response.body == libdeflateGzip(body, level)) << level;
      EXPECT_EQ(decode("gzip", h->response.body), body) << level;
    }
  }
}

TEST_F(CompressionTest, GzipLevel1IsIgzipAndOnText20KBNoLargerThanZlibsLevel1) {
  const std::string body = text(20000);
  for (int round = 0; round < 2; ++round) {
    auto h = run(json(body), {{"accept-encoding", "gzip"}}, "gzip_level: 1");
    EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
    EXPECT_TRUE(h->response.body == igzipLevel1(body));
    EXPECT_EQ(decode("gzip", h->response.body), body);
    EXPECT_LE(h->response.body.size(), zlibGzip(body, 1).size());
  }
}

TEST_F(CompressionTest, GzipLevel1StoresIncompressibleBodiesWithinItsRoom) {
  // Random bytes do not compress: igzip must fall back to stored blocks within the room
  // the filter gives it (the input plus block headers), over several 64 KiB blocks.
  std::mt19937 rng(7);
  for (size_t n : {size_t{300}, size_t{65535}, size_t{65536}, size_t{200000}}) {
    std::string body(n, '\0');
    for (char& c : body) {
      c = static_cast<char>(rng());
    }
    auto h = run(json(body), {{"accept-encoding", "gzip"}}, "gzip_level: 1");
    EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip") << n;
    EXPECT_EQ(decode("gzip", h->response.body), body) << n;
    EXPECT_LE(h->response.body.size(), n + 5 * (n / 65535 + 1) + 64) << n;
  }
}

TEST_F(CompressionTest, AnEmptyBodyIsAnEmptyGzipStream) {
  Producer::Spec spec;
  spec.chunks = {""}; // the head without end_stream, then an empty last chunk
  auto h = run(spec, {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  EXPECT_TRUE(h->response.complete);
  EXPECT_TRUE(h->response.body == libdeflateGzip("", 6));
  EXPECT_EQ(decode("gzip", h->response.body), "");
  // Declared empty, for a client that takes no identity: the same.
  spec.headers.emplace_back("content-length", "0");
  h = run(spec, {{"accept-encoding", "gzip, identity;q=0"}});
  EXPECT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  EXPECT_EQ(decode("gzip", h->response.body), "");
}

TEST_F(CompressionTest, ADeclaredLengthIsHeldUntilTheBodyIsWhole) {
  const std::string body = text(30000);
  Producer::Spec spec;
  spec.headers.emplace_back("content-length", std::to_string(body.size()));
  spec.manual = true;
  auto h = run(spec, {{"accept-encoding", "gzip"}});
  ASSERT_EQ(h->response.headers.getOr("content-encoding"), "gzip");
  producer_->send(body.substr(0, 10000), false);
  producer_->send(body.substr(10000, 10000), false);
  EXPECT_EQ(h->response.body, "") << "a body of declared length is not a stream";
  EXPECT_FALSE(h->response.complete);
  producer_->send(body.substr(20000), true);
  EXPECT_TRUE(h->response.complete);
  EXPECT_TRUE(h->response.body == libdeflateGzip(body, 6));
  EXPECT_EQ(decode("gzip", h->response.body), body);
}

TEST_F(CompressionTest, MoreThanTheDeclaredLengthIsStreamedFromThere) {
  const std::string a = text(600);
  const std::string b = text(700);
  Producer::Spec spec;
  spec.headers.emplace_back("content-length", "1000"); // less than the producer sends
  spec.manual = true;
  auto h = run(spec, {{"accept-encoding", "gzip"}});
  producer_->send(a, false);
  EXPECT_EQ(h->response.body, "");
  producer_->send(b, false);
  // 1300 bytes > 1000: streamed from here, the held bytes first, all of it flushed.
  auto decoder = Decoder::create("gzip");
  std::string decoded;
  ASSERT_TRUE(decoder->feed(h->response.body, decoded));
  EXPECT_EQ(decoded, a + b);
  const size_t consumed = h->response.body.size();
  producer_->send("", true);
  ASSERT_TRUE(decoder->feed(std::string_view(h->response.body).substr(consumed), decoded));
  EXPECT_TRUE(decoder->finished());
  EXPECT_EQ(decoded, a + b);
  EXPECT_TRUE(h->response.complete);
}

TEST_F(CompressionTest, ADeclaredLengthOverTheBufferLimitIsStreamed) {
  settings_.limits.buffer_limit = 4096;
  const std::string body = text(10000);
  Producer::Spec spec;
  spec.headers.emplace_back("content-length", std::to_string(body.size()));
  spec.manual = true;
  auto h = run(spec, {{"accept-encoding", "gzip"}});
  producer_->send(body.substr(0, 5000), false);
  auto decoder = Decoder::create("gzip");
  std::string decoded;
  ASSERT_TRUE(decoder->feed(h->response.body, decoded));
  EXPECT_EQ(decoded, body.substr(0, 5000)) << "held although it exceeds the buffer limit";
  const size_t consumed = h->response.body.size();
  producer_->send(body.substr(5000), true);
  ASSERT_TRUE(decoder->feed(std::string_view(h->response.body).substr(consumed), decoded));
  EXPECT_TRUE(decoder->finished());
  EXPECT_EQ(decoded, body);
  // Sent whole in one chunk, the same body still goes through the one-call path.
  h = run(json(body), {{"accept-encoding", "gzip"}});
  EXPECT_TRUE(h->response.body == libdeflateGzip(body, 6));
}

TEST_F(CompressionTest, TrailersEndTheCompressedStreamFirst) {
  for (const char* encoding : {"gzip", "br", "zstd"}) {
    Producer::Spec spec;
    spec.chunks = {text(700), text(900)};
    spec.trailers = true;
    auto h = run(spec, {{"accept-encoding", encoding}, {"te", "trailers"}});
    EXPECT_EQ(decode(encoding, h->response.body), text(700) + text(900)) << encoding;
    ASSERT_NE(h->response.trailers, nullptr);
    EXPECT_EQ(h->response.trailers->getOr("x-checksum"), "abc");
  }
  // A held body (declared length) is compressed whole when the trailers come.
  Producer::Spec spec;
  spec.chunks = {text(700), text(900)};
  spec.headers.emplace_back("content-length", "1600");
  spec.trailers = true;
  auto h = run(spec, {{"accept-encoding", "gzip"}, {"te", "trailers"}});
  EXPECT_TRUE(h->response.body == libdeflateGzip(text(700) + text(900), 6));
  ASSERT_NE(h->response.trailers, nullptr);
  EXPECT_EQ(h->response.trailers->getOr("x-checksum"), "abc");
}

TEST_F(CompressionTest, FileBodiesArriveAsBytesOnlyWhenCompressing) {
  const std::string path = testing::TempDir() + "/compression_file.json";
  const std::string content = text(200000);
  std::ofstream(path, std::ios::binary) << content;
  Producer::Spec spec;
  spec.headers = {{"content-type", "application/json"},
                  {"content-length", std::to_string(content.size())}};
  spec.file = path;
  auto h = run(spec, {{"accept-encoding", "zstd"}});
  EXPECT_EQ(h->response.file_bytes, 0u);
  EXPECT_EQ(decode("zstd", h->response.body), content);
  // Read in several chunks, a file of declared length is held and compressed in one call.
  h = run(spec, {{"accept-encoding", "gzip"}});
  EXPECT_EQ(h->response.file_bytes, 0u);
  EXPECT_TRUE(h->response.body == libdeflateGzip(content, 6));
  EXPECT_EQ(decode("gzip", h->response.body), content);
  h = run(spec);
  EXPECT_EQ(h->response.file_bytes, content.size()) << "uncompressed: still sendfile";
  EXPECT_TRUE(h->response.body == content);
  ::unlink(path.c_str());
}

TEST_F(CompressionTest, GzipLevelIsApplied) {
  // The gzip header's XFL byte says 2 for the slowest level and 4 for the fastest.
  const std::string body = text(5000);
  for (int round = 0; round < 2; ++round) { // the second round reuses pooled contexts
    auto h = run(json(body), {{"accept-encoding", "gzip"}}, "gzip_level: 9");
    ASSERT_GT(h->response.body.size(), 10u);
    EXPECT_EQ(h->response.body[8], 2);
    EXPECT_EQ(decode("gzip", h->response.body), body);
    h = run(json(body), {{"accept-encoding", "gzip"}}, "gzip_level: 1");
    EXPECT_EQ(h->response.body[8], 4);
    EXPECT_EQ(decode("gzip", h->response.body), body);
  }
  auto h = run(json(body), {{"accept-encoding", "br"}}, "brotli_quality: 11");
  EXPECT_EQ(decode("br", h->response.body), body);
  h = run(json(body), {{"accept-encoding", "zstd"}}, "zstd_level: 19");
  EXPECT_EQ(decode("zstd", h->response.body), body);
}

TEST_F(CompressionTest, ZstdFramesRecordTheDeclaredLength) {
  // Streamed in two chunks, so only the declared length can tell zstd the total.
  Producer::Spec spec;
  spec.chunks = {text(1000), text(2000)};
  spec.headers.emplace_back("content-length", "3000");
  auto h = run(spec, {{"accept-encoding", "zstd"}});
  EXPECT_EQ(ZSTD_getFrameContentSize(h->response.body.data(), h->response.body.size()), 3000u);
  EXPECT_EQ(decode("zstd", h->response.body), text(1000) + text(2000));
  spec.headers.pop_back();
  h = run(spec, {{"accept-encoding", "zstd"}});
  EXPECT_EQ(ZSTD_getFrameContentSize(h->response.body.data(), h->response.body.size()),
            ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_EQ(decode("zstd", h->response.body), text(1000) + text(2000));
}

TEST_F(CompressionTest, BodyShorterThanItsDeclaredLengthResetsTheStream) {
  Producer::Spec spec;
  spec.chunks = {text(300), text(300)};
  spec.headers.emplace_back("content-length", "1000"); // more than the producer sends
  auto h = run(spec, {{"accept-encoding", "zstd"}});
  EXPECT_TRUE(h->response.reset);
  EXPECT_FALSE(h->response.complete);
}

TEST_F(CompressionTest, CountsBytesInAndOutPerEncoding) {
  auto& store = stats::Store::global();
  const std::string body = text(4000);
  for (const char* encoding : {"br", "gzip"}) { // streamed, and compressed in one call
    const int64_t in = store.valueOf("compression_bytes_in_total", {"test", encoding});
    const int64_t out = store.valueOf("compression_bytes_out_total", {"test", encoding});
    auto h = run(json(body), {{"accept-encoding", encoding}});
    EXPECT_EQ(store.valueOf("compression_bytes_in_total", {"test", encoding}), in + 4000);
    EXPECT_EQ(store.valueOf("compression_bytes_out_total", {"test", encoding}),
              out + static_cast<int64_t>(h->response.body.size()));
  }
}

TEST(CompressionMediaRange, Patterns) {
  MediaRange r;
  ASSERT_TRUE(MediaRange::parse("text/*", r));
  EXPECT_TRUE(r.matches("text", "anything"));
  EXPECT_TRUE(r.matches("TEXT", "html"));
  EXPECT_FALSE(r.matches("texts", "html"));
  ASSERT_TRUE(MediaRange::parse("*/*+json", r));
  EXPECT_TRUE(r.matches("application", "vnd.api+json"));
  EXPECT_FALSE(r.matches("application", "json"));
  EXPECT_FALSE(r.matches("application", "+json"));
  ASSERT_TRUE(MediaRange::parse("application/*+xml", r));
  EXPECT_TRUE(r.matches("application", "rss+xml"));
  EXPECT_FALSE(r.matches("image", "svg+xml"));
  ASSERT_TRUE(MediaRange::parse("Application/JSON", r));
  EXPECT_TRUE(r.matches("application", "json"));
  for (const char* bad : {"*/*", "text", "/json", "text/", "*/html", "text/ht*ml",
                          "text/html; charset=utf-8", "te xt/html"}) {
    EXPECT_FALSE(MediaRange::parse(bad, r)) << bad;
  }
}

// compressible() remembers the thread's last answer per config: two configs with
// different lists, asked in turn about the same types, each keep their own answers.
TEST(CompressionConfig, RememberedAnswersBelongToTheirConfig) {
  auto make = [](std::initializer_list<const char*> types) {
    auto c = std::make_unique<Config>();
    for (const char* t : types) {
      MediaRange r;
      EXPECT_TRUE(MediaRange::parse(t, r)) << t;
      c->content_types.push_back(r);
    }
    return c;
  };
  const auto texts = make({"text/*"});
  const auto json = make({"application/json"});
  EXPECT_NE(texts->id, json->id);
  const std::string long_type = "text/plain; " + std::string(200, 'x') + "=1";
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(texts->compressible("text/plain; charset=utf-8"));
    EXPECT_FALSE(json->compressible("text/plain; charset=utf-8"));
    EXPECT_TRUE(json->compressible("application/json"));
    EXPECT_TRUE(json->compressible("application/json"));
    EXPECT_FALSE(texts->compressible("application/json"));
    EXPECT_TRUE(texts->compressible(long_type)); // too long to remember, still answered
    EXPECT_FALSE(json->compressible(long_type));
    EXPECT_FALSE(texts->compressible(""));
    EXPECT_TRUE(texts->compressible(" TEXT/HTML "));
  }
}

TEST(CompressionConfig, RejectsBadValuesWithTheField) {
  test::FakeServerContext server;
  auto error = [&](const std::string& yaml) {
    auto r = FilterHarness::factoriesFromYaml({{"pounce.filters.compression", yaml}}, server);
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? "" : std::string(r.status().message());
  };
  EXPECT_NE(error("content_types: ['*/*']").find("content_types[0]: '*/*' is not"),
            std::string::npos);
  EXPECT_NE(error("encodings: [gzip, deflate]").find("encodings[1]: 'deflate' is not one of"),
            std::string::npos);
  EXPECT_NE(error("encodings: [gzip, gzip]").find("encodings[1]: 'gzip' is listed twice"),
            std::string::npos);
  EXPECT_NE(error("gzip_level: 0").find("gzip_level: 0 is outside 1-9"), std::string::npos);
  EXPECT_NE(error("gzip_level: 10").find("gzip_level"), std::string::npos);
  EXPECT_NE(error("brotli_quality: 12").find("brotli_quality: 12 is outside 0-11"),
            std::string::npos);
  EXPECT_NE(error("zstd_level: 20").find("zstd_level: 20 is outside 1-19"), std::string::npos);
  EXPECT_NE(error("zstd_level: 0").find("zstd_level"), std::string::npos);
}

} // namespace
} // namespace pounce::filters::compression

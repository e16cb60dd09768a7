#include "test/http/http2/http2_test_client.h"

#include <algorithm>
#include <cstring>

namespace pounce::http::http2::test {

namespace {

nghttp2_nv nv(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

std::vector<nghttp2_nv> nvs(const Fields& fields) {
  std::vector<nghttp2_nv> out;
  out.reserve(fields.size());
  for (const auto& [k, v] : fields) {
    out.push_back(nv(k, v));
  }
  return out;
}

} // namespace

std::string frame(uint8_t type, uint8_t flags, int32_t stream_id, std::string_view payload) {
  std::string out;
  const uint32_t len = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>((len >> 16) & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  const uint32_t id = static_cast<uint32_t>(stream_id) & 0x7fffffffu;
  out.push_back(static_cast<char>((id >> 24) & 0xff));
  out.push_back(static_cast<char>((id >> 16) & 0xff));
  out.push_back(static_cast<char>((id >> 8) & 0xff));
  out.push_back(static_cast<char>(id & 0xff));
  out.append(payload.data(), payload.size());
  return out;
}

std::string hpack(const Fields& fields) {
  nghttp2_hd_deflater* deflater;
  nghttp2_hd_deflate_new(&deflater, 4096);
  auto nva = nvs(fields);
  std::string out(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
  const ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(out.data()),
                                          out.size(), nva.data(), nva.size());
  nghttp2_hd_deflate_del(deflater);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::string clientPreface() {
  return std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + frame(NGHTTP2_SETTINGS, 0, 0, "");
}

std::vector<RawFrame> parseFrames(std::string_view bytes) {
  std::vector<RawFrame> out;
  size_t pos = 0;
  while (bytes.size() - pos >= 9) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + pos);
    const size_t len = (size_t{p[0]} << 16) | (size_t{p[1]} << 8) | p[2];
    if (bytes.size() - pos - 9 < len) {
      break;
    }
    RawFrame f;
    f.type = p[3];
    f.flags = p[4];
    f.stream_id = static_cast<int32_t>(
        ((uint32_t{p[5]} << 24) | (uint32_t{p[6]} << 16) | (uint32_t{p[7]} << 8) | p[8]) &
        0x7fffffffu);
    f.payload = std::string(bytes.substr(pos + 9, len));
    out.push_back(std::move(f));
    pos += 9 + len;
  }
  return out;
}

TestClient::TestClient(std::vector<nghttp2_settings_entry> settings, bool auto_window_update) {
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &onStreamClose);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  if (!auto_window_update) {
    nghttp2_option_set_no_auto_window_update(option, 1);
  }
  nghttp2_session_client_new2(&session_, cb, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
}

TestClient::~TestClient() { nghttp2_session_del(session_); }

std::string TestClient::take() {
  std::string out;
  for (;;) {
    const uint8_t* data;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) {
      break;
    }
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return out;
}

void TestClient::give(std::string_view bytes) {
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0) {
    recv_error_ = static_cast<int>(rv);
  }
}

int32_t TestClient::request(const Fields& fields, const std::string* body, const Fields& trailers,
                            bool end_stream) {
  auto nva = nvs(fields);
  int32_t id;
  if (body == nullptr && trailers.empty() && end_stream) {
    id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), nullptr, nullptr);
  } else {
    auto upload = std::make_unique<Upload>();
    upload->data = body != nullptr ? *body : std::string();
    upload->trailers = trailers;
    upload->end = end_stream;
    nghttp2_data_provider provider;
    provider.source.ptr = upload.get();
    provider.read_callback = &onRead;
    id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &provider, this);
    if (id > 0) {
      uploads_[id] = std::move(upload);
    }
  }
  if (id > 0) {
    responses_[id];
  }
  return id;
}

int32_t TestClient::get(std::string_view path, const Fields& extra) {
  Fields f = {{":method", "GET"},
              {":scheme", "http"},
              {":authority", "test.local"},
              {":path", std::string(path)}};
  f.insert(f.end(), extra.begin(), extra.end());
  return request(f);
}

int32_t TestClient::post(std::string_view path, std::string body, const Fields& extra,
                         const Fields& trailers) {
  Fields f = {{":method", "POST"},
              {":scheme", "http"},
              {":authority", "test.local"},
              {":path", std::string(path)}};
  f.insert(f.end(), extra.begin(), extra.end());
  return request(f, &body, trailers);
}

void TestClient::resetStream(int32_t stream_id, uint32_t code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, code);
}

void TestClient::sendData(int32_t stream_id, std::string data, bool end_stream) {
  auto it = uploads_.find(stream_id);
  if (it == uploads_.end()) {
    return;
  }
  Upload& u = *it->second;
  u.data.erase(0, u.offset);
  u.offset = 0;
  u.data += data;
  u.end = end_stream;
  if (u.deferred) {
    u.deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
}

int TestClient::onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& c = *static_cast<TestClient*>(user);
  c.header_block_[frame->hd.stream_id].clear();
  c.header_block_status_[frame->hd.stream_id] = 0;
  return 0;
}

int TestClient::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                         size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                         void* user) {
  auto& c = *static_cast<TestClient*>(user);
  std::string k(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (k == ":status") {
    c.header_block_status_[frame->hd.stream_id] = std::stoi(v);
  } else {
    c.header_block_[frame->hd.stream_id].emplace_back(std::move(k), std::move(v));
  }
  return 0;
}

int TestClient::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto& c = *static_cast<TestClient*>(user);
  const int32_t id = frame->hd.stream_id;
  c.frames_.emplace_back(frame->hd.type, id);
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS: {
    Response& r = c.responses_[id];
    const int status = c.header_block_status_[id];
    Fields fields = std::move(c.header_block_[id]);
    if (status >= 100 && status < 200) {
      r.informational.emplace_back(status, std::move(fields));
    } else if (status != 0) {
      r.status = status;
      r.headers = std::move(fields);
    } else {
      r.trailers = std::move(fields);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      r.complete = true;
    }
    break;
  }
  case NGHTTP2_DATA:
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      c.responses_[id].complete = true;
    }
    break;
  case NGHTTP2_RST_STREAM:
    c.responses_[id].reset = true;
    c.responses_[id].error_code = frame->rst_stream.error_code;
    break;
  case NGHTTP2_GOAWAY:
    c.goaway_code_ = static_cast<int>(frame->goaway.error_code);
    c.goaway_last_ = frame->goaway.last_stream_id;
    break;
  case NGHTTP2_SETTINGS:
    for (size_t i = 0; i < frame->settings.niv; ++i) {
      c.settings_[frame->settings.iv[i].settings_id] = frame->settings.iv[i].value;
    }
    break;
  default:
    break;
  }
  return 0;
}

int TestClient::onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                            size_t len, void* user) {
  auto& c = *static_cast<TestClient*>(user);
  c.responses_[stream_id].body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int TestClient::onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                              void* user) {
  auto& c = *static_cast<TestClient*>(user);
  Response& r = c.responses_[stream_id];
  r.closed = true;
  if (error_code != 0) {
    r.error_code = error_code;
  }
  return 0;
}

ssize_t TestClient::onRead(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void*) {
  auto& u = *static_cast<Upload*>(source->ptr);
  const size_t n = std::min(length, u.data.size() - u.offset);
  std::memcpy(buf, u.data.data() + u.offset, n);
  u.offset += n;
  if (u.offset == u.data.size()) {
    if (!u.end) {
      if (n == 0) {
        u.deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
      return static_cast<ssize_t>(n);
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!u.trailers.empty()) {
      auto nva = nvs(u.trailers);
      nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  }
  return static_cast<ssize_t>(n);
}

} // namespace pounce::http::http2::test

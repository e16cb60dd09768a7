#include "source/filters/request_id/request_id.h"

namespace pounce::filters::request_id {

bool isSaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > http::RequestId::kMaxSize) {
    return false;
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

void RequestIdFilter::removeUnderscoreSpellings(http::RequestHeaders& headers) const {
  // One pass finds none, almost always; each spelling found goes whole (all its fields).
  while (true) {
    std::string found;
    for (size_t i = 0; i < headers.size() && found.empty(); ++i) {
      const std::string_view name = headers.nameAt(i);
      const bool maybe = config_->name_has_underscore || name.find('_') != std::string_view::npos;
      if (maybe && name != config_->header_name && http::readsAsField(name, config_->dashed_name)) {
        found.assign(name); // (a copy: removing invalidates views into the map)
      }
    }
    if (found.empty()) {
      return;
    }
    headers.remove(found);
  }
}

http::FilterStatus RequestIdFilter::decodeHeaders(http::RequestHeaders& headers, bool) {
  http::StreamInfo& info = decoder_callbacks_->streamInfo();
  bool trusted = false;
  switch (config_->trust_incoming) {
  case TrustIncoming::TrustedPeers:
    trusted = info.peer_trusted;
    break;
  case TrustIncoming::Always:
    trusted = true;
    break;
  case TrustIncoming::Never:
    break;
  }
  // A client's `X_Request_Id` reads as the same field to Django, WSGI and CGI: whatever id
  // is kept or made below, that spelling must not reach the app beside it.
  removeUnderscoreSpellings(headers);
  const auto incoming = headers.get(config_->header_name);
  if (trusted && incoming.has_value() && isSaneRequestId(*incoming) &&
      headers.count(config_->header_name) == 1) {
    info.request_id.assign(*incoming);
    return http::FilterStatus::Continue;
  }
  uuid4Hex(*config_->random, info.request_id.overwrite(kUuidHexSize));
  // Replaces whatever the client sent, so later filters and the app see the id in use. (The
  // id lives outside the map, so addLowercase needs no defensive copy, unlike set().)
  if (incoming.has_value()) {
    headers.remove(config_->header_name);
  }
  headers.addLowercase(config_->header_name, info.request_id);
  return http::FilterStatus::Continue;
}

http::FilterStatus RequestIdFilter::encodeHeaders(http::ResponseHeaders& headers, bool) {
  const http::RequestId& id = encoder_callbacks_->streamInfo().request_id;
  if (config_->response_header && !id.empty()) {
    if (headers.has(config_->header_name)) {
      headers.remove(config_->header_name);
    }
    headers.addLowercase(config_->header_name, id);
  }
  return http::FilterStatus::Continue;
}

} // namespace pounce::filters::request_id

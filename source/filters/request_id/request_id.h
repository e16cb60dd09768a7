#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "source/filters/request_id/random.h"
#include "source/http/filter.h"

namespace pounce::filters::request_id {

enum class TrustIncoming { TrustedPeers, Always, Never };

// The validated config: built once, shared by every stream.
struct Config {
  std::string header_name{"x-request-id"}; // lowercase
  // header_name with '-' for every '_': every spelling that reads as it (to Django, WSGI
  // and CGI) reads as this one.
  std::string dashed_name{"x-request-id"};
  // header_name has a '_' of its own: its dashed spelling has none, so names without one
  // are candidates too (otherwise only names with a '_' can be other spellings).
  bool name_has_underscore{false};
  TrustIncoming trust_incoming{TrustIncoming::TrustedPeers};
  bool response_header{true};
  RandomSource* random{&SystemRandom::instance()};
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// An incoming id is kept only if it is 1..200 bytes of visible ASCII (0x21-0x7e).
bool isSaneRequestId(std::string_view id);

// Sets StreamInfo::request_id and the request header on the way in, and the response
// header on the way out.
class RequestIdFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit RequestIdFilter(const Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;
  // http::StreamEncoderFilter
  http::FilterStatus encodeHeaders(http::ResponseHeaders& headers, bool end_stream) override;

private:
  // Removes fields that read as header_name with '_' for '-' (`X_Request_Id`).
  void removeUnderscoreSpellings(http::RequestHeaders& headers) const;

  const Config* config_;
};

} // namespace pounce::filters::request_id

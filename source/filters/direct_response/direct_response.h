#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "source/http/filter.h"

namespace pounce::filters::direct_response {

// The validated config: built once, shared by every stream.
struct Config {
  int status{200};
  std::string body;
  http::ResponseHeaders headers; // template, content-length included
};
using ConfigSharedPtr = std::shared_ptr<const Config>;

// Terminal: answers every request with the configured response.
class DirectResponseFilter final : public http::StreamFilter {
public:
  // `config` belongs to the chain's factory, which outlives every stream on the chain
  // (no reference count per stream).
  explicit DirectResponseFilter(const Config& config) : config_(&config) {}

  // http::StreamDecoderFilter
  http::FilterStatus decodeHeaders(http::RequestHeaders& headers, bool end_stream) override;

private:
  const Config* config_;
};

} // namespace pounce::filters::direct_response

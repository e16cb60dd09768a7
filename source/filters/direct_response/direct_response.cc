#include "source/filters/direct_response/direct_response.h"

namespace pounce::filters::direct_response {

http::FilterStatus DirectResponseFilter::decodeHeaders(http::RequestHeaders&, bool) {
  auto headers = std::make_unique<http::ResponseHeaders>(config_->headers);
  if (config_->body.empty()) {
    decoder_callbacks_->encodeHeaders(std::move(headers), true);
  } else {
    decoder_callbacks_->encodeHeaders(std::move(headers), false);
    thread_local Buffer body; // keeps its capacity between requests
    body.clear();
    body.add(config_->body);
    decoder_callbacks_->encodeData(body, true);
  }
  return http::FilterStatus::StopIteration;
}

} // namespace pounce::filters::direct_response

#include "pounce/filters/compression/v1/compression.pb.h"
#include "source/common/strings.h"
#include "source/filters/compression/compression.h"
#include "source/http/filter_config.h"

namespace pounce::filters::compression {

namespace {

using ProtoConfig = pounce::filters::compression::v1::Compression;

class Factory : public http::FilterConfigFactory {
public:
  std::string name() const override { return "pounce.filters.compression"; }
  std::unique_ptr<google::protobuf::Message> createEmptyConfig() const override {
    return std::make_unique<ProtoConfig>();
  }

  absl::StatusOr<http::FilterFactoryCb>
  createFilterFactory(const google::protobuf::Message& message,
                      http::FactoryContext& context) const override {
    const auto& proto = dynamic_cast<const ProtoConfig&>(message);
    auto config = std::make_shared<Config>();
    if (proto.has_min_bytes()) {
      config->min_bytes = proto.min_bytes();
    }
    std::vector<std::string> types(proto.content_types().begin(), proto.content_types().end());
    if (types.empty()) {
      types = defaultContentTypes();
    }
    for (size_t i = 0; i < types.size(); ++i) {
      MediaRange range;
      if (!MediaRange::parse(types[i], range)) {
        return absl::InvalidArgumentError(
            cat("content_types[", i, "]: '", types[i],
                "' is not a media type or pattern (\"text/html\", \"text/*\", "
                "\"application/*+json\", \"*/*+xml\")"));
      }
      config->content_types.push_back(std::move(range));
    }
    if (proto.encodings_size() > 0) {
      config->encodings.clear();
      for (int i = 0; i < proto.encodings_size(); ++i) {
        const auto encoding = parseEncoding(proto.encodings(i));
        if (!encoding) {
          return absl::InvalidArgumentError(cat("encodings[", i, "]: '", proto.encodings(i),
                                                "' is not one of \"zstd\", \"br\", \"gzip\""));
        }
        for (Encoding e : config->encodings) {
          if (e == *encoding) {
            return absl::InvalidArgumentError(
                cat("encodings[", i, "]: '", proto.encodings(i), "' is listed twice"));
          }
        }
        config->encodings.push_back(*encoding);
      }
    }
    if (proto.has_gzip_level()) {
      if (proto.gzip_level() < 1 || proto.gzip_level() > 9) {
        return absl::InvalidArgumentError(
            cat("gzip_level: ", proto.gzip_level(), " is outside 1-9"));
      }
      config->levels.gzip = static_cast<int>(proto.gzip_level());
    }
    if (proto.has_brotli_quality()) {
      if (proto.brotli_quality() > 11) {
        return absl::InvalidArgumentError(
            cat("brotli_quality: ", proto.brotli_quality(), " is outside 0-11"));
      }
      config->levels.brotli = static_cast<int>(proto.brotli_quality());
    }
    if (proto.has_zstd_level()) {
      if (proto.zstd_level() < 1 || proto.zstd_level() > 19) {
        return absl::InvalidArgumentError(
            cat("zstd_level: ", proto.zstd_level(),
                " is outside 1-19 (higher levels need windows HTTP clients may refuse)"));
      }
      config->levels.zstd = static_cast<int>(proto.zstd_level());
    }

    stats::Store& store = context.server().stats();
    auto& in = store.family("compression_bytes_in_total",
                            "Response body bytes given to the compression filter.",
                            stats::Type::Counter, {"listener", "encoding"});
    auto& out =
        store.family("compression_bytes_out_total", "Compressed response body bytes produced.",
                     stats::Type::Counter, {"listener", "encoding"});
    for (Encoding e : {Encoding::Zstd, Encoding::Brotli, Encoding::Gzip}) {
      const auto i = static_cast<size_t>(e);
      const std::string name(encodingName(e));
      config->bytes_in[i] = &store.series(in, {context.listenerName(), name});
      config->bytes_out[i] = &store.series(out, {context.listenerName(), name});
    }
    ConfigSharedPtr shared = std::move(config);
    return http::FilterFactoryCb::inPlace<CompressionFilter>(
        [shared](void* at) { return new (at) CompressionFilter(*shared); });
  }
};

POUNCE_REGISTER_FILTER(Factory);

} // namespace

} // namespace pounce::filters::compression

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "source/filters/common/accept_encoding.h"

namespace pounce::filters {
namespace {

AcceptEncoding parse(std::string_view value) {
  AcceptEncoding a;
  a.parse(value);
  return a;
}

constexpr Encoding kAll[] = {Encoding::Zstd, Encoding::Brotli, Encoding::Gzip};

std::optional<Encoding> choose(std::string_view value) { return parse(value).choose(kAll, 3); }

TEST(AcceptEncoding, WorkedExample) {
  const AcceptEncoding a = parse("gzip;q=0.5, br, identity;q=0");
  EXPECT_EQ(a.quality(Encoding::Gzip), 500);
  EXPECT_EQ(a.quality(Encoding::Brotli), 1000);
  EXPECT_EQ(a.quality(Encoding::Zstd), 0);
  EXPECT_FALSE(a.identityAcceptable());
}

TEST(AcceptEncoding, QValues) {
  EXPECT_EQ(parse("gzip;q=0.125").quality(Encoding::Gzip), 125);
  EXPECT_EQ(parse("gzip; q=1.000").quality(Encoding::Gzip), 1000);
  EXPECT_EQ(parse("gzip;Q=0.7").quality(Encoding::Gzip), 700);
  EXPECT_EQ(parse("gzip;q=1.5").quality(Encoding::Gzip), 0);
  EXPECT_EQ(parse("gzip;q=-1").quality(Encoding::Gzip), 0);
  EXPECT_EQ(parse("gzip;q=abc").quality(Encoding::Gzip), 0);
  EXPECT_EQ(parse("gzip;q=0.1234").quality(Encoding::Gzip), 0);
  EXPECT_EQ(parse("GZIP").quality(Encoding::Gzip), 1000);
  EXPECT_EQ(parse("x-gzip").quality(Encoding::Gzip), 1000);
  EXPECT_EQ(parse("gzip;level=1;q=0.3").quality(Encoding::Gzip), 300);
}

TEST(AcceptEncoding, StarCoversUnnamedCodings) {
  const AcceptEncoding a = parse("br;q=0.5, *;q=0.1");
  EXPECT_EQ(a.quality(Encoding::Brotli), 500);
  EXPECT_EQ(a.quality(Encoding::Zstd), 100);
  EXPECT_TRUE(a.identityAcceptable());
  EXPECT_FALSE(parse("*;q=0").identityAcceptable());
  EXPECT_TRUE(parse("*;q=0, identity").identityAcceptable());
  EXPECT_TRUE(parse("").identityAcceptable());
}

TEST(AcceptEncoding, ChoosesHighestQThenServerPreference) {
  EXPECT_EQ(choose("gzip"), Encoding::Gzip);
  EXPECT_EQ(choose("gzip, deflate, br"), Encoding::Brotli);
  EXPECT_EQ(choose("gzip, br, zstd"), Encoding::Zstd);
  EXPECT_EQ(choose("gzip;q=1, zstd;q=0.5"), Encoding::Gzip);
  EXPECT_EQ(choose("*"), Encoding::Zstd);
  EXPECT_EQ(choose("zstd;q=0, *"), Encoding::Brotli);
  EXPECT_EQ(choose(""), std::nullopt);
  EXPECT_EQ(choose("deflate, identity"), std::nullopt);
  EXPECT_EQ(choose("gzip;q=0, br;q=0, zstd;q=0"), std::nullopt);
  // The client rates identity above every coding it accepts.
  EXPECT_EQ(choose("gzip;q=0.5, identity"), std::nullopt);
  EXPECT_EQ(choose("gzip, identity"), Encoding::Gzip);
  const Encoding gzip_first[] = {Encoding::Gzip, Encoding::Brotli};
  EXPECT_EQ(parse("br, gzip").choose(gzip_first, 2), Encoding::Gzip);
  EXPECT_EQ(parse("zstd").choose(gzip_first, 2), std::nullopt);
}

TEST(AcceptEncoding, CombinesSeveralFields) {
  http::HeaderMap h;
  h.add("Accept-Encoding", "gzip;q=0.2");
  h.add("accept-encoding", "br;q=0.9");
  const AcceptEncoding a = AcceptEncoding::fromHeaders(h);
  EXPECT_EQ(a.quality(Encoding::Gzip), 200);
  EXPECT_EQ(a.quality(Encoding::Brotli), 900);
}

// The shortcut that skips parsing agrees with the full parse, for fields that name identity
// or '*' in any case and for fields that do not.
TEST(AcceptEncoding, IdentityAcceptableInAgreesWithTheParse) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"gzip, br"},
      {"gzip;q=0"},
      {"identity;q=0"},
      {"IDENTITY;Q=0"},
      {"gzip, Identity;q=0.000"},
      {"*;q=0"},
      {"*;q=0, identity"},
      {"*;q=0", "identity;q=0.5"},
      {"br", "identity;q=0"},
      {"identity"},
      {"identit;q=0"},
      {"xidentity;q=0"},
      {"*"},
      {""},
  };
  for (const auto& fields : cases) {
    http::HeaderMap h;
    for (const auto& value : fields) {
      h.add("accept-encoding", value);
    }
    h.add("accept", "*/*;q=0"); // not Accept-Encoding: ignored by both
    EXPECT_EQ(AcceptEncoding::identityAcceptableIn(h),
              AcceptEncoding::fromHeaders(h).identityAcceptable())
        << (fields.empty() ? std::string("(none)") : fields[0]);
  }
  http::HeaderMap refuses;
  refuses.add("accept-encoding", "gzip, identity;q=0");
  EXPECT_FALSE(AcceptEncoding::identityAcceptableIn(refuses));
}

TEST(AcceptEncoding, Names) {
  EXPECT_EQ(encodingName(Encoding::Brotli), "br");
  EXPECT_EQ(encodingSuffix(Encoding::Zstd), ".zst");
  EXPECT_EQ(parseEncoding("BR"), Encoding::Brotli);
  EXPECT_EQ(parseEncoding("deflate"), std::nullopt);
}

} // namespace
} // namespace pounce::filters

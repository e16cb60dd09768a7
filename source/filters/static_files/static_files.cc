#include "source/filters/static_files/static_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "source/common/logger.h"
#include "source/common/strings.h"
#include "source/filters/static_files/content_type.h"
#include "source/filters/static_files/file_open.h"
#include "source/filters/static_files/http_date.h"
#include "source/filters/static_files/path.h"

namespace pounce::filters::static_files {

namespace {

constexpr uint64_t kReadChunk = 64 * 1024;

// Writes `v` in lowercase hex (1 to 16 digits) at `p`; returns the end.
char* putHex(char* p, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  int n = 0;
  do {
    digits[n++] = kHex[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n > 0) {
    *p++ = digits[--n];
  }
  return p;
}

// Strong validator of one file version: inode, size and status change time (ns) in hex,
// "\"<ino>-<size>-<ctime>\"", at most 52 bytes, written to `buf`. The change time, not the
// modification time: every write moves it, and nothing can set it back (`touch -d`,
// `cp -p` and `rsync -t` can put an old mtime on new bytes of the same size).
std::string_view makeEtag(const struct stat& st, char (&buf)[64]) {
  char* p = buf;
  *p++ = '"';
  p = putHex(p, static_cast<uint64_t>(st.st_ino));
  *p++ = '-';
  p = putHex(p, static_cast<uint64_t>(st.st_size));
  *p++ = '-';
  p = putHex(p, static_cast<uint64_t>(st.st_ctim.tv_sec) * 1000000000ull +
                    static_cast<uint64_t>(st.st_ctim.tv_nsec));
  *p++ = '"';
  return {buf, static_cast<size_t>(p - buf)};
}

// Last-Modified: the modification time, but never later than now (RFC 9110 §8.8.2.1); a
// file stamped in the future would otherwise answer If-Modified-Since with 304 after it
// changes. The clock is read only for a file modified after the last reading (this
// thread's `seen` is never ahead of the clock).
time_t lastModified(const struct stat& st, TimeSource& time) {
  thread_local time_t seen = 0;
  const time_t mtime = st.st_mtim.tv_sec;
  if (mtime >= seen) {
    seen = std::chrono::system_clock::to_time_t(time.systemTime());
  }
  return std::min(mtime, seen);
}

// Does an If-None-Match (or, `strong`, an If-Match) value list `etag`? Weak comparison
// (RFC 9110 §8.8.3.2): W/ is ignored on both sides; strong: a W/ tag never matches. "*"
// matches any current representation.
bool etagListMatches(std::string_view list, std::string_view etag, bool strong) {
  list = trim(list);
  if (list == "*") {
    return true;
  }
  const std::string_view opaque = etag.substr(etag.size() > 1 && etag[0] == 'W' ? 2 : 0);
  size_t i = 0;
  while (i < list.size()) {
    const char c = list[i];
    if (c == ' ' || c == '\t' || c == ',') {
      ++i;
      continue;
    }
    bool weak = false;
    if (c == 'W' && i + 1 < list.size() && list[i + 1] == '/') {
      i += 2;
      weak = true;
    }
    if (i >= list.size() || list[i] != '"') {
      return false; // malformed: no match
    }
    const size_t close = list.find('"', i + 1);
    if (close == std::string_view::npos) {
      return false;
    }
    if (!(strong && weak) && list.substr(i, close - i + 1) == opaque) {
      return true;
    }
    i = close + 1;
  }
  return false;
}

// If-Range (RFC 9110 §13.1.5): an entity tag must match strongly, a date exactly and only
// when Last-Modified is a strong validator (§8.8.2.2): at least a second older than now. A
// file written twice within the second its Last-Modified names has two versions under one
// date, and a part of the second joined to a part of the first is a body that never
// existed. This refuses the date while that second lasts; a client that got the first
// version within that second and asks later still gets a part of the second (the server
// cannot know when the client's copy was made): clients with the ETag should send it.
bool ifRangeMatches(std::string_view value, std::string_view etag, time_t mtime, time_t now) {
  value = trim(value);
  if (!value.empty() && value[0] == '"') {
    return value == etag;
  }
  if (value.size() >= 2 && value[0] == 'W' && value[1] == '/') {
    return false; // weak tags never match strongly
  }
  time_t date;
  return parseHttpDate(value, date) && date == mtime && mtime < now;
}

bool fieldsMatchEtag(const http::HeaderMap& headers, std::string_view name, std::string_view etag,
                     bool strong = false) {
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.nameAt(i) == name && etagListMatches(headers.valueAt(i), etag, strong)) {
      return true;
    }
  }
  return false;
}

} // namespace

Config::~Config() {
  for (auto& m : mounts) {
    if (m.root_fd >= 0) {
      ::close(m.root_fd);
    }
  }
}

const Mount* Config::match(std::string_view path) const {
  for (const Mount& m : mounts) {
    if (m.prefix.size() == 1) {
      return &m; // "/" is last: it matches everything
    }
    if (path.size() >= m.prefix.size() && path.compare(0, m.prefix.size(), m.prefix) == 0 &&
        (path.size() == m.prefix.size() || path[m.prefix.size()] == '/')) {
      return &m;
    }
  }
  return nullptr;
}

std::string_view Config::contentType(std::string_view file_name) const {
  const std::string_view ext = fileExtension(file_name);
  if (ext.empty() || ext.size() > 16) {
    return default_content_type;
  }
  char lower[16];
  for (size_t i = 0; i < ext.size(); ++i) {
    const char c = ext[i];
    lower[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view key(lower, ext.size());
  if (!content_types.empty()) {
    auto it = content_types.find(std::string(key));
    if (it != content_types.end()) {
      return it->second;
    }
  }
  // The built-in table is static: the last extension looked up on this thread is kept.
  thread_local char last_key[16];
  thread_local size_t last_key_size = 0;
  thread_local std::string_view last_type;
  if (last_key_size == key.size() && last_key_size != 0 &&
      std::memcmp(last_key, key.data(), key.size()) == 0) {
    return last_type.empty() ? std::string_view(default_content_type) : last_type;
  }
  const std::string_view builtin = builtinContentType(key);
  std::memcpy(last_key, key.data(), key.size());
  last_key_size = key.size();
  last_type = builtin;
  return builtin.empty() ? std::string_view(default_content_type) : builtin;
}

StaticFilesFilter::~StaticFilesFilter() = default;

void StaticFilesFilter::onDestroy() {
  destroyed_ = true;
  if (watching_) {
    watching_ = false;
    decoder_callbacks_->removeDownstreamWatermarkCallbacks(*this);
  }
  file_.reset();
}

http::FilterStatus StaticFilesFilter::miss() {
  if (config_->fallthrough) {
    return http::FilterStatus::Continue;
  }
  decoder_callbacks_->sendLocalReply(404, "Not Found\n");
  return http::FilterStatus::StopIteration;
}

http::FilterStatus StaticFilesFilter::reject(int status, std::string_view body) {
  decoder_callbacks_->sendLocalReply(status, body);
  return http::FilterStatus::StopIteration;
}

http::FilterStatus StaticFilesFilter::unavailable(const std::string& relative) {
  // Out of descriptors or memory, or an I/O error: the file may well exist, so neither a
  // miss nor a 404, and the client may try again.
  POUNCE_LOG(Http, Warning,
             "static_files: cannot open '%s' now (out of descriptors or memory, or an I/O "
             "error): 503",
             relative);
  decoder_callbacks_->sendLocalReply(503, "Service Unavailable\n", [](http::ResponseHeaders& h) {
    h.addLowercase("retry-after", "1");
  });
  return http::FilterStatus::StopIteration;
}

OpenedFile StaticFilesFilter::open(const Mount& mount, const std::string& relative) const {
  if (config_->file_caches != nullptr) {
    return config_->file_caches->local().lookup(
        static_cast<size_t>(&mount - config_->mounts.data()), mount.root_fd, mount.root, relative,
        config_->follow_symlinks, decoder_callbacks_->dispatcher().timeSource());
  }
  return openFile(mount.root_fd, mount.root, relative, config_->follow_symlinks);
}

http::FilterStatus StaticFilesFilter::decodeHeaders(http::RequestHeaders& headers, bool) {
  const std::string_view raw = headers.pathOnly();
  if (raw.empty() || raw[0] != '/') {
    return http::FilterStatus::Continue;
  }
  // Without a '%' the decoded path is the raw one: a request under no mount (the usual
  // case in front of an app) goes on without a copy.
  if (raw.find('%') == std::string_view::npos && config_->match(raw) == nullptr) {
    return http::FilterStatus::Continue;
  }
  std::string decoded;
  const bool clean = decodePath(raw, decoded);
  const Mount* mount = config_->match(decoded);
  if (mount == nullptr) {
    return http::FilterStatus::Continue;
  }
  if (!clean) {
    return reject(404, "Not Found\n");
  }
  const std::string_view below = mount->prefix.size() == 1
                                     ? std::string_view(decoded)
                                     : std::string_view(decoded).substr(mount->prefix.size());
  std::string relative;
  switch (relativePath(below, config_->serve_dotfiles, relative)) {
  case PathVerdict::Traversal:
    return reject(404, "Not Found\n");
  case PathVerdict::Hidden:
    return miss();
  case PathVerdict::Ok:
    break;
  }
  const bool trailing_slash = decoded.back() == '/';

  OpenedFile file = open(*mount, relative);
  if (file.result == OpenResult::Escapes) {
    return reject(404, "Not Found\n");
  }
  if (file.result == OpenResult::Error) {
    return unavailable(relative);
  }
  if (file.result != OpenResult::Ok) {
    return miss();
  }
  const bool is_directory = S_ISDIR(file.st.st_mode);
  std::string directory; // the directory the request named, relative to the mount
  if (is_directory) {
    if (config_->index_file.empty()) {
      return miss();
    }
    directory = relative;
    relative = relative.empty() ? config_->index_file : cat(relative, "/", config_->index_file);
    file = open(*mount, relative);
    if (file.result == OpenResult::Escapes) {
      return reject(404, "Not Found\n");
    }
    if (file.result == OpenResult::Error) {
      return unavailable(relative);
    }
    if (file.result != OpenResult::Ok || !S_ISREG(file.st.st_mode)) {
      return miss();
    }
  } else if (!S_ISREG(file.st.st_mode) || trailing_slash) {
    return miss();
  }

  const std::string& method = headers.method();
  if (method != "GET" && method != "HEAD") {
    decoder_callbacks_->sendLocalReply(405, "Method Not Allowed\n", [](http::ResponseHeaders& h) {
      h.addLowercase("allow", "GET, HEAD");
    });
    return http::FilterStatus::StopIteration;
  }
  if (is_directory && !trailing_slash) {
    // "/docs" -> "/docs/", so relative links in the index resolve below the directory.
    redirectToDirectory(headers, *mount, directory);
    return http::FilterStatus::StopIteration;
  }
  return serve(headers, *mount, file, relative);
}

void StaticFilesFilter::redirectToDirectory(const http::RequestHeaders& headers, const Mount& mount,
                                            const std::string& relative) {
  std::string location;
  location.reserve(mount.prefix.size() + relative.size() + 8);
  if (mount.prefix.size() > 1) {
    location += mount.prefix;
  }
  location += '/';
  if (!relative.empty()) {
    appendEncodedPath(location, relative);
    location += '/';
  }
  const std::string_view query = headers.query();
  if (!query.empty()) {
    location += '?';
    location.append(query.data(), query.size());
  }
  decoder_callbacks_->sendLocalReply(
      301, "", [&location](http::ResponseHeaders& h) { h.addLowercase("location", location); });
}

std::optional<Encoding> StaticFilesFilter::choosePrecompressed(const http::RequestHeaders& headers,
                                                               const Mount& mount,
                                                               const std::string& relative,
                                                               OpenedFile& file) {
  const AcceptEncoding accept = AcceptEncoding::fromHeaders(headers);
  struct Candidate {
    Encoding encoding;
    int q;
  };
  Candidate candidates[3];
  size_t count = 0;
  for (Encoding e : {Encoding::Zstd, Encoding::Brotli, Encoding::Gzip}) {
    const int q = accept.quality(e);
    // A client that rates identity above a coding prefers the plain file.
    if (q > 0 && q >= accept.explicitIdentityQuality()) {
      candidates[count++] = {e, q};
    }
  }
  std::stable_sort(candidates, candidates + count,
                   [](const Candidate& a, const Candidate& b) { return a.q > b.q; });
  for (size_t i = 0; i < count; ++i) {
    OpenedFile sibling = open(mount, cat(relative, encodingSuffix(candidates[i].encoding)));
    if (sibling.result != OpenResult::Ok || !S_ISREG(sibling.st.st_mode)) {
      continue;
    }
    // A sibling older than the file is stale: the file changed after it was compressed.
    const auto& a = sibling.st.st_mtim;
    const auto& b = file.st.st_mtim;
    if (a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec)) {
      continue;
    }
    file = std::move(sibling);
    return candidates[i].encoding;
  }
  return std::nullopt;
}

http::FilterStatus StaticFilesFilter::serve(const http::RequestHeaders& headers, const Mount& mount,
                                            OpenedFile& file, const std::string& relative) {
  const std::string_view content_type = config_->contentType(relative);
  std::optional<Encoding> encoding;
  if (config_->precompressed) {
    encoding = choosePrecompressed(headers, mount, relative, file);
  }
  const uint64_t size = static_cast<uint64_t>(file.st.st_size);
  const time_t mtime = lastModified(file.st, decoder_callbacks_->dispatcher().timeSource());
  char etag_buf[64];
  const std::string_view etag = makeEtag(file.st, etag_buf);
  const bool head = headers.method() == "HEAD";

  auto response = std::make_unique<http::ResponseHeaders>(200);
  response->reserveBytes(384);
  auto add_validators = [&](http::ResponseHeaders& h) {
    h.addLowercase("etag", etag);
    char date[kHttpDateLength];
    formatHttpDate(mtime, date);
    h.addLowercase("last-modified", std::string_view(date, kHttpDateLength));
    if (!config_->cache_control.empty()) {
      h.addLowercase("cache-control", config_->cache_control);
    }
    if (config_->precompressed) {
      h.addLowercase("vary", "accept-encoding");
    }
  };
  config_->hits->inc();

  // Conditional requests, in the order of RFC 9110 §13.2.2. First the preconditions of a
  // client that must not act on another version: If-Match (strong comparison), or else
  // If-Unmodified-Since; failed, 412.
  bool failed = false;
  if (headers.has("if-match")) {
    failed = !fieldsMatchEtag(headers, "if-match", etag, /*strong=*/true);
  } else if (auto ius = headers.get("if-unmodified-since")) {
    time_t since;
    failed = parseHttpDate(*ius, since) && mtime > since;
  }
  if (failed) {
    decoder_callbacks_->sendLocalReply(
        412, "Precondition Failed\n",
        [&etag](http::ResponseHeaders& h) { h.addLowercase("etag", etag); });
    return http::FilterStatus::StopIteration;
  }
  // Then If-None-Match, which wins over If-Modified-Since.
  bool not_modified = false;
  if (headers.has("if-none-match")) {
    not_modified = fieldsMatchEtag(headers, "if-none-match", etag);
  } else if (auto ims = headers.get("if-modified-since")) {
    time_t since;
    not_modified = parseHttpDate(*ims, since) && mtime <= since;
  }
  if (not_modified) {
    response->setStatus(304);
    add_validators(*response);
    // A 304 carries no Content-Type or length; later filters that must give it the fields
    // its 200 would have had (compression: ETag and Vary) learn them here.
    decoder_callbacks_->streamInfo().represents =
        http::Representation{encoding ? std::string_view() : content_type, encoding ? 0 : size};
    decoder_callbacks_->encodeHeaders(std::move(response), true);
    return http::FilterStatus::StopIteration;
  }

  std::vector<ByteRange> ranges;
  RangeStatus range_status = RangeStatus::Ignore;
  if (!head) {
    if (auto range = headers.get("range")) {
      auto if_range = headers.get("if-range");
      const time_t now = std::chrono::system_clock::to_time_t(
          decoder_callbacks_->dispatcher().timeSource().systemTime());
      if (!if_range || ifRangeMatches(*if_range, etag, mtime, now)) {
        range_status = evaluateRange(*range, size, config_->max_ranges, ranges);
      }
    }
  }
  if (encoding && range_status == RangeStatus::Satisfiable && ranges.size() > 1) {
    // Parts of a compressed sibling under one Content-Encoding would be a body no client
    // can decode (the coding applies to the whole multipart body, RFC 9110 §8.4): the
    // whole sibling instead, as nginx's gzip_static does.
    range_status = RangeStatus::Ignore;
  }
  if (range_status == RangeStatus::Unsatisfiable) {
    const std::string content_range = cat("bytes */", size);
    decoder_callbacks_->sendLocalReply(416, "Range Not Satisfiable\n",
                                       [&content_range](http::ResponseHeaders& h) {
                                         h.addLowercase("content-range", content_range);
                                         h.addLowercase("accept-ranges", "bytes");
                                       });
    return http::FilterStatus::StopIteration;
  }

  add_validators(*response);
  response->addLowercase("accept-ranges", "bytes");
  if (encoding) {
    response->addLowercase("content-encoding", encodingName(*encoding));
  }
  if (range_status == RangeStatus::Satisfiable && ranges.size() > 1) {
    // (Never a sibling's parts, above.)
    decoder_callbacks_->streamInfo().represents = http::Representation{content_type, size};
    file_ = file.handle;
    ranges_ = std::move(ranges);
    sendMultipart(std::move(response), content_type, size, file.bytes.get());
    return http::FilterStatus::StopIteration;
  }
  uint64_t offset = 0;
  uint64_t length = size;
  if (range_status == RangeStatus::Satisfiable) {
    offset = ranges[0].first;
    length = ranges[0].length();
    response->setStatus(206);
    response->addLowercase("content-range",
                           cat("bytes ", ranges[0].first, "-", ranges[0].last, "/", size));
  }
  response->addLowercase("content-type", content_type);
  response->addLowercase("content-length", std::to_string(length));
  if (head || length == 0) {
    decoder_callbacks_->encodeHeaders(std::move(response), true);
    return http::FilterStatus::StopIteration;
  }
  config_->bytes->inc(length);
  decoder_callbacks_->encodeHeaders(std::move(response), false);
  if (file.bytes != nullptr) {
    // The file cache holds the bytes: no read.
    Buffer body(std::string_view(*file.bytes).substr(offset, length));
    decoder_callbacks_->encodeData(body, true);
    return http::FilterStatus::StopIteration;
  }
  decoder_callbacks_->encodeFile(file.handle, offset, length, true);
  return http::FilterStatus::StopIteration;
}

std::string StaticFilesFilter::partHeader(const ByteRange& range) const {
  return cat("\r\n--", config_->boundary, "\r\ncontent-type: ", part_type_,
             "\r\ncontent-range: bytes ", range.first, "-", range.last, "/", file_size_,
             "\r\n\r\n");
}

void StaticFilesFilter::sendMultipart(http::ResponseHeadersPtr response,
                                      std::string_view content_type, uint64_t size,
                                      const std::string* bytes) {
  part_type_ = std::string(content_type);
  file_size_ = size;
  uint64_t length = 0;
  for (const ByteRange& r : ranges_) {
    length += partHeader(r).size() + r.length();
  }
  length += config_->boundary.size() + 8; // "\r\n--" boundary "--\r\n"
  response->setStatus(206);
  response->addLowercase("content-type", cat("multipart/byteranges; boundary=", config_->boundary));
  response->addLowercase("content-length", std::to_string(length));
  config_->bytes->inc(length);
  decoder_callbacks_->encodeHeaders(std::move(response), false);
  if (destroyed_) {
    return;
  }
  if (bytes != nullptr) {
    // The file cache holds the file (at most max_file_bytes): the parts go out at once.
    Buffer body;
    for (const ByteRange& r : ranges_) {
      body.add(partHeader(r));
      body.add(std::string_view(*bytes).substr(r.first, r.length()));
    }
    body.add(cat("\r\n--", config_->boundary, "--\r\n"));
    file_.reset();
    decoder_callbacks_->encodeData(body, true);
    return;
  }
  watching_ = true;
  decoder_callbacks_->addDownstreamWatermarkCallbacks(*this);
  pumpMultipart();
}

void StaticFilesFilter::pumpMultipart() {
  if (pumping_ || file_ == nullptr) {
    return;
  }
  pumping_ = true;
  while (!destroyed_ && file_ != nullptr && !decoder_callbacks_->downstreamAboveHighWatermark()) {
    Buffer chunk;
    if (part_ == ranges_.size()) {
      chunk.add(cat("\r\n--", config_->boundary, "--\r\n"));
      file_.reset();
      decoder_callbacks_->encodeData(chunk, true);
      break;
    }
    const ByteRange& range = ranges_[part_];
    if (part_sent_ == 0) {
      chunk.add(partHeader(range));
    }
    const uint64_t want = std::min(range.length() - part_sent_, kReadChunk);
    char* p = chunk.reserve(static_cast<size_t>(want));
    ssize_t n;
    do {
      n = ::pread(file_->fd(), p, static_cast<size_t>(want),
                  static_cast<off_t>(range.first + part_sent_));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      POUNCE_LOG(Http, Warning, "static file read failed while sending ranges; resetting stream");
      file_.reset();
      decoder_callbacks_->resetStream();
      break;
    }
    chunk.commit(static_cast<size_t>(n));
    part_sent_ += static_cast<uint64_t>(n);
    if (part_sent_ == range.length()) {
      ++part_;
      part_sent_ = 0;
    }
    decoder_callbacks_->encodeData(chunk, false);
  }
  pumping_ = false;
}

} // namespace pounce::filters::static_files

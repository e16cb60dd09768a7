#include "source/filters/static_files/http_date.h"

#include <algorithm>
#include <cstring>

#include "source/common/strings.h"

namespace pounce::filters::static_files {

namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                     "Thursday", "Friday", "Saturday"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char* put2(char* p, int v) {
  *p++ = static_cast<char>('0' + v / 10 % 10);
  *p++ = static_cast<char>('0' + v % 10);
  return p;
}

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// A tiny cursor over the text being parsed.
class Reader {
public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return pos_ == s_.size(); }
  bool literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) {
      return false;
    }
    pos_ += lit.size();
    return true;
  }
  // Exactly `digits` digits (or 1-2 when `digits` is 0, for asctime's day).
  bool number(size_t digits, int& out) {
    size_t n = 0;
    int v = 0;
    const size_t max = digits == 0 ? 2 : digits;
    while (n < max && pos_ + n < s_.size() && s_[pos_ + n] >= '0' && s_[pos_ + n] <= '9') {
      v = v * 10 + (s_[pos_ + n] - '0');
      ++n;
    }
    if (n == 0 || (digits != 0 && n != digits)) {
      return false;
    }
    pos_ += n;
    out = v;
    return true;
  }
  bool month(int& out) {
    for (int i = 0; i < 12; ++i) {
      if (literal(kMonths[i])) {
        out = i;
        return true;
      }
    }
    return false;
  }
  bool day(const char* const* names) {
    for (int i = 0; i < 7; ++i) {
      if (literal(names[i])) {
        return true;
      }
    }
    return false;
  }
  bool time(std::tm& tm) {
    return number(2, tm.tm_hour) && literal(":") && number(2, tm.tm_min) && literal(":") &&
           number(2, tm.tm_sec);
  }

private:
  std::string_view s_;
  size_t pos_{0};
};

bool finish(std::tm& tm, time_t& out) {
  if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
    return false;
  }
  out = timegm(&tm);
  return out != static_cast<time_t>(-1);
}

} // namespace

void formatHttpDate(time_t t, char* out) {
  // Files served repeatedly have the same mtime: the last one formatted on this thread is
  // kept (gmtime_r is most of the cost).
  thread_local time_t cached_time = 0;
  thread_local char cached[kHttpDateLength];
  thread_local bool cached_valid = false;
  if (cached_valid && t == cached_time) {
    std::memcpy(out, cached, kHttpDateLength);
    return;
  }
  std::tm tm;
  gmtime_r(&t, &tm);
  const int year = std::clamp(tm.tm_year + 1900, 1000, 9999);
  char* p = put(out, kDays[tm.tm_wday]);
  p = put(p, ", ");
  p = put2(p, tm.tm_mday);
  *p++ = ' ';
  p = put(p, kMonths[tm.tm_mon]);
  *p++ = ' ';
  p = put2(p, year / 100);
  p = put2(p, year % 100);
  *p++ = ' ';
  p = put2(p, tm.tm_hour);
  *p++ = ':';
  p = put2(p, tm.tm_min);
  *p++ = ':';
  p = put2(p, tm.tm_sec);
  put(p, " GMT");
  std::memcpy(cached, out, kHttpDateLength);
  cached_time = t;
  cached_valid = true;
}

void appendHttpDate(std::string& out, time_t t) {
  char buf[kHttpDateLength];
  formatHttpDate(t, buf);
  out.append(buf, kHttpDateLength);
}

bool parseHttpDate(std::string_view text, time_t& out) {
  text = trim(text);
  std::tm tm{};
  {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    Reader r(text);
    int year = 0;
    if (r.day(kDays) && r.literal(", ") && r.number(2, tm.tm_mday) && r.literal(" ") &&
        r.month(tm.tm_mon) && r.literal(" ") && r.number(4, year) && r.literal(" ") && r.time(tm) &&
        r.literal(" GMT") && r.done()) {
      tm.tm_year = year - 1900;
      return finish(tm, out);
    }
  }
  {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: 70-99 -> 19xx).
    Reader r(text);
    int year = 0;
    if (r.day(kLongDays) && r.literal(", ") && r.number(2, tm.tm_mday) && r.literal("-") &&
        r.month(tm.tm_mon) && r.literal("-") && r.number(2, year) && r.literal(" ") && r.time(tm) &&
        r.literal(" GMT") && r.done()) {
      tm.tm_year = year < 70 ? year + 100 : year;
      return finish(tm, out);
    }
  }
  {
    // asctime: Sun Nov  6 08:49:37 1994
    Reader r(text);
    int year = 0;
    if (r.day(kDays) && r.literal(" ") && r.month(tm.tm_mon) && r.literal(" ")) {
      r.literal(" ");
      if (r.number(0, tm.tm_mday) && r.literal(" ") && r.time(tm) && r.literal(" ") &&
          r.number(4, year) && r.done()) {
        tm.tm_year = year - 1900;
        return finish(tm, out);
      }
    }
  }
  return false;
}

} // namespace pounce::filters::static_files

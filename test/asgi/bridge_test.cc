// The ASGI bridge without sockets: the real AsgiFilter in a FilterHarness, a real Python
// loop thread, and checks that every cross-thread object is released.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "source/asgi/app.h"
#include "source/asgi/bridge.h"
#include "source/asgi/python.h"
#include "test/test_common/filter_harness.h"

namespace pounce::asgi {
namespace {

constexpr const char* kApp = R"PY(
import asyncio

SEEN = []
KEPT = []

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/hello":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"hi " + scope["method"].encode()})
    elif path == "/echo":
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif path == "/wait":
        m = await receive()          # the body never ends: waits until the client leaves
        while m["type"] == "http.request":
            m = await receive()
        SEEN.append(m["type"])
    elif path == "/raise":
        raise ValueError("bridge test error")
    elif path == "/rid":
        ext = scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": repr(ext.get("request_id", "absent")).encode()
                            + b" " + str(len(ext)).encode()})
    elif path == "/ext":
        ext = scope["extensions"]
        if scope["query_string"] == b"keep":
            KEPT.append(ext)
        elif scope["query_string"] == b"spoil":
            ext["extra"] = 1
            ext["http.response.trailers"] = "spoiled"
        elif scope["query_string"] == b"swap":
            del ext["request_id"]
            ext["other"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": ("%s %s %r %d" % (ext.get("request_id"), ",".join(ext),
                                             ext["http.response.trailers"], id(ext))).encode()})
    elif path == "/headers":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": b"\n".join(n + b"=" + v for n, v in scope["headers"])})
)PY";

class BridgeTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("bridge-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "bridge_app.py") << kApp;
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  std::vector<http::FilterFactoryCb> chain() {
    auto factories = test::FilterHarness::factoriesFromYaml(
        {{"pounce.filters.asgi",
          "app: bridge_app:app\napp_dir: [" + dir_.string() + "]\nworker_scopes: false\n"}},
        server_);
    EXPECT_TRUE(factories.ok()) << factories.status();
    return std::move(*factories);
  }

  // Runs the harness's loop until `done` or a timeout.
  template <class F>
  bool runUntil(test::FilterHarness& h, F done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      h.runPending();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }

  test::FakeServerContext server_;
  static std::filesystem::path dir_;
};
std::filesystem::path BridgeTest::dir_;

TEST_F(BridgeTest, RequestAndResponseCrossThreads) {
  test::FilterHarness h(chain());
  h.sendHeaders(test::FilterHarness::request("GET", "/hello"), true);
  ASSERT_TRUE(runUntil(h, [&] { return h.response.complete; }));
  EXPECT_EQ(h.response.status, 200);
  EXPECT_EQ(h.response.body, "hi GET");
  // A whole response in one batch gets a Content-Length.
  EXPECT_EQ(h.response.headers.getOr("content-length"), "6");
}

// Header names reach the app exact however the name cache is hit: repeated names, names
// that share their first eight bytes and length, more names than the recent-names table
// has slots (so slots are shared), and more distinct names than the cache keeps.
TEST_F(BridgeTest, HeaderNamesArriveExactThroughTheNameCache) {
  auto name = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), i % 2 ? "x-shared-%03d" : "h%d", i);
    return std::string(buf);
  };
  for (int round = 0; round < 4; ++round) {
    test::FilterHarness h(chain());
    std::vector<std::pair<std::string, std::string>> headers;
    std::string want = "host=example.com"; // the harness's authority, as the first field
    for (int i = 0; i < 100; ++i) {
      const int n = round * 90 + i; // overlapping ranges: hits and misses in every round
      headers.emplace_back(name(n), "v" + std::to_string(n));
      want += "\n" + name(n) + "=v" + std::to_string(n);
    }
    h.sendHeaders(test::FilterHarness::request("GET", "/headers", headers), true);
    ASSERT_TRUE(runUntil(h, [&] { return h.response.complete; }));
    EXPECT_EQ(h.response.status, 200);
    EXPECT_EQ(h.response.body, want) << "round " << round;
  }
}

// The request id reaches scope["extensions"] as the str it is: ASCII ids copied straight,
// others through the UTF-8 decoder; no id, no key (and no other key changes).
TEST_F(BridgeTest, RequestIdReachesTheExtensionsExact) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "'absent' 3"},
      {"0123456789abcdef0123456789abcdef", "'0123456789abcdef0123456789abcdef' 4"},
      {"edge-42", "'edge-42' 4"},
      {"caf\xc3\xa9", "'caf\xc3\xa9' 4"},
      {std::string(200, 'r'), "'" + std::string(200, 'r') + "' 4"},
  };
  for (const auto& [id, want] : cases) {
    test::FilterHarness h(chain());
    h.info().request_id = id;
    h.sendHeaders(test::FilterHarness::request("GET", "/rid"), true);
    ASSERT_TRUE(runUntil(h, [&] { return h.response.complete; }));
    EXPECT_EQ(h.response.body, want) << id;
  }
}

// Requests with an id get extensions dicts from a ring of 64 that are used again once the
// app has let go of them: sequential requests see the same dict every 64th request, with
// the template's entries and their own id, however the ones before them used theirs.
TEST_F(BridgeTest, ExtensionsDictsComeBackOnlyUnusedAndUnchanged) {
  auto factories = chain();
  // "<id> <keys> <trailers value> <id(dict)>"
  auto ask = [&](const std::string& rid, const std::string& query) {
    test::FilterHarness h(factories);
    h.info().request_id = rid;
    h.sendHeaders(test::FilterHarness::request("GET", "/ext?" + query), true);
    EXPECT_TRUE(runUntil(h, [&] { return h.response.complete; }));
    return h.response.body;
  };
  const std::string kKeys = "http.response.trailers,http.response.pathsend,"
                            "http.response.early_hint,request_id";
  // One dict is kept by the app, one spoiled (a key added, a value replaced) and one has
  // another key in request_id's place.
  const std::string kept = ask("kept-id", "keep");
  EXPECT_EQ(kept.substr(0, kept.rfind(' ')), "kept-id " + kKeys + " {}");
  ask("spoiled-id", "spoil");
  ask("swapped-id", "swap");
  std::vector<std::string> dicts;
  for (int i = 0; i < 3 * 64; ++i) {
    const std::string rid = "id-" + std::to_string(i);
    const std::string body = ask(rid, "");
    const size_t last = body.rfind(' ');
    ASSERT_EQ(body.substr(0, last), rid + " " + kKeys + " {}") << i;
    dicts.push_back(body.substr(last + 1));
  }
  // The first round may still meet the kept and the changed dicts (replaced then); after it
  // the ring's dicts come round in turn.
  for (int i = 64; i < 2 * 64; ++i) {
    EXPECT_EQ(dicts[i], dicts[i + 64]) << i;
    EXPECT_NE(dicts[i], dicts[i + 1]) << i;
  }
  GilGuard gil;
  PyRef module = PyRef::steal(PyImport_ImportModule("bridge_app"));
  PyRef list = PyRef::steal(module ? PyObject_GetAttrString(module.get(), "KEPT") : nullptr);
  ASSERT_TRUE(list && PyList_Size(list.get()) == 1);
  PyObject* ext = PyList_GetItem(list.get(), 0);
  PyObject* id = PyDict_GetItemString(ext, "request_id");
  ASSERT_NE(id, nullptr);
  EXPECT_STREQ(PyUnicode_AsUTF8(id), "kept-id"); // never handed to a later request
  EXPECT_EQ(PyDict_Size(ext), 4);
}

TEST_F(BridgeTest, RequestBodyInPieces) {
  test::FilterHarness h(chain());
  h.sendHeaders(test::FilterHarness::request("POST", "/echo"), false);
  h.sendData("abc", false);
  h.sendData("def", true);
  ASSERT_TRUE(runUntil(h, [&] { return h.response.complete; }));
  EXPECT_EQ(h.response.status, 201);
  EXPECT_EQ(h.response.body, "abcdef");
}

TEST_F(BridgeTest, ClientResetResolvesThePendingReceive) {
  auto factories = chain();
  {
    test::FilterHarness h(std::move(factories));
    h.sendHeaders(test::FilterHarness::request("POST", "/wait"), false);
    h.sendData("x", false);
    h.runPending();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    h.clientReset();
  }
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    GilGuard gil;
    PyRef module = PyRef::steal(PyImport_ImportModule("bridge_app"));
    PyRef list = PyRef::steal(module ? PyObject_GetAttrString(module.get(), "SEEN") : nullptr);
    seen = list && PyList_Size(list.get()) == 1;
  }
  EXPECT_TRUE(seen) << "the app never saw http.disconnect";
}

TEST_F(BridgeTest, AppErrorBeforeStartIs500) {
  test::FilterHarness h(chain());
  h.sendHeaders(test::FilterHarness::request("GET", "/raise"), true);
  ASSERT_TRUE(runUntil(h, [&] { return h.response.complete; }));
  EXPECT_EQ(h.response.status, 500);
}

TEST_F(BridgeTest, EveryStreamIsReleased) {
  auto factories = chain();
  for (int i = 0; i < 50; ++i) {
    test::FilterHarness h(factories);
    h.sendHeaders(test::FilterHarness::request("GET", "/hello"), true);
    ASSERT_TRUE(runUntil(h, [&] { return h.response.complete; }));
  }
  // Python may hold the last references for a moment after the response.
  bool released = false;
  for (int i = 0; i < 400 && !released; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    released = AsgiStream::live() == 0;
  }
  EXPECT_TRUE(released) << AsgiStream::live() << " streams still alive";
}

TEST(PyRefTest, ReleasesExactlyOnce) {
  ASSERT_TRUE(Interpreter::start({}).ok());
  GilGuard gil;
  PyObject* raw = PyUnicode_FromString("pounce-refcount-probe");
  const Py_ssize_t before = Py_REFCNT(raw);
  {
    PyRef a = PyRef::borrow(raw);
    EXPECT_EQ(Py_REFCNT(raw), before + 1);
    PyRef b = std::move(a);
    EXPECT_EQ(Py_REFCNT(raw), before + 1);
    EXPECT_FALSE(a);
    PyRef c;
    c = std::move(b);
    EXPECT_EQ(Py_REFCNT(raw), before + 1);
  }
  EXPECT_EQ(Py_REFCNT(raw), before);
  PyRef owner = PyRef::steal(raw);
  PyObject* given = owner.release();
  EXPECT_EQ(given, raw);
  EXPECT_FALSE(owner);
  Py_DECREF(given);
}

} // namespace
} // namespace pounce::asgi

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "source/filters/static_files/file_cache.h"

namespace pounce::filters::static_files {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string bytesOf(const OpenedFile& file) {
  return file.bytes == nullptr ? "<none>" : *file.bytes;
}

// The cache's clocks, set by each lookup: a monotonic time, and a time of day an hour ahead
// of the real one unless a test says otherwise (so files the test just wrote do not count
// as recently changed).
class TestTime : public TimeSource {
public:
  MonotonicTime monotonicTime() override { return mono; }
  SystemTime systemTime() override { return wall; }
  MonotonicTime mono;
  SystemTime wall;
};

SystemTime anHourAhead() { return std::chrono::system_clock::now() + std::chrono::hours(1); }

class FileCacheTest : public testing::Test {
protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "/file_cache_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    root_fd_ = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    ::close(root_fd_);
    const std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }

  OpenedFile lookup(FileCache& cache, const std::string& relative, MonotonicTime at,
                    size_t mount = 0, SystemTime wall = anHourAhead()) {
    time_.mono = at;
    time_.wall = wall;
    return cache.lookup(mount, root_fd_, root_, relative, false, time_);
  }
  std::string path(const std::string& relative) const { return root_ + "/" + relative; }

  std::string root_;
  int root_fd_{-1};
  TestTime time_;
  const MonotonicTime t0_{seconds(100)};
};

TEST_F(FileCacheTest, ATrustedEntryIsServedAsItWasUntilItsValidityEnds) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(1)});
  writeFile(path("a.txt"), "one");
  const OpenedFile& first = lookup(cache, "a.txt", t0_);
  ASSERT_EQ(first.result, OpenResult::Ok);
  EXPECT_EQ(bytesOf(first), "one");
  ASSERT_NE(first.handle, nullptr);
  EXPECT_EQ(first.st.st_size, 3);

  writeFile(path("a.txt"), "two!");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_ + milliseconds(999))), "one")
      << "trusted: the disk is not looked at";
  const OpenedFile& later = lookup(cache, "a.txt", t0_ + seconds(1));
  EXPECT_EQ(bytesOf(later), "two!");
  EXPECT_EQ(later.st.st_size, 4);
}

TEST_F(FileCacheTest, AnUnchangedFileKeepsItsBytesAndDescriptorWhenCheckedAgain) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(1)});
  writeFile(path("a.txt"), "same");
  const auto bytes = lookup(cache, "a.txt", t0_).bytes;
  const auto handle = lookup(cache, "a.txt", t0_).handle;
  const OpenedFile& checked = lookup(cache, "a.txt", t0_ + seconds(5));
  EXPECT_EQ(checked.bytes, bytes) << "not read again";
  EXPECT_EQ(checked.handle, handle);
  // A new modification time is a new version, even with the same bytes.
  timespec times[2] = {{2000000000, 0}, {2000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path("a.txt").c_str(), times, 0), 0);
  const OpenedFile& touched = lookup(cache, "a.txt", t0_ + seconds(10));
  EXPECT_NE(touched.bytes, bytes);
  EXPECT_EQ(bytesOf(touched), "same");
  EXPECT_EQ(touched.st.st_mtim.tv_sec, 2000000000);
}

TEST_F(FileCacheTest, AFileReplacedByRenameIsSeenAfterTheValidity) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(1)});
  writeFile(path("a.txt"), "old");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_)), "old");
  writeFile(path("new.tmp"), "new");
  ASSERT_EQ(::rename(path("new.tmp").c_str(), path("a.txt").c_str()), 0);
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_)), "old");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_ + seconds(2))), "new");
}

TEST_F(FileCacheTest, LookupsThatFoundNothingAreRememberedToo) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(1)});
  EXPECT_EQ(lookup(cache, "later.txt", t0_).result, OpenResult::NotFound);
  writeFile(path("later.txt"), "here");
  EXPECT_EQ(lookup(cache, "later.txt", t0_ + milliseconds(500)).result, OpenResult::NotFound);
  const OpenedFile& found = lookup(cache, "later.txt", t0_ + seconds(1));
  EXPECT_EQ(found.result, OpenResult::Ok);
  EXPECT_EQ(bytesOf(found), "here");
  // And the other way round: a deleted file stays served until its entry is checked.
  ASSERT_EQ(::unlink(path("later.txt").c_str()), 0);
  EXPECT_EQ(bytesOf(lookup(cache, "later.txt", t0_ + seconds(1))), "here");
  EXPECT_EQ(lookup(cache, "later.txt", t0_ + seconds(3)).result, OpenResult::NotFound);
}

// Running out of descriptors says nothing about the file: the lookup fails with Error and
// is not remembered as a miss (which a trusting cache would then serve for its validity).
TEST_F(FileCacheTest, AFailureToOpenIsNotRememberedAsAMiss) {
  writeFile(path("there.txt"), "here");
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(60)});
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  const int probe = ::dup(0); // the lowest free descriptor
  ASSERT_GE(probe, 0);
  ::close(probe);
  struct rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(probe); // no descriptor left to open with
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  const OpenResult failed = lookup(cache, "there.txt", t0_).result;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_EQ(failed, OpenResult::Error);
  const OpenedFile& found = lookup(cache, "there.txt", t0_ + milliseconds(1));
  EXPECT_EQ(found.result, OpenResult::Ok);
  EXPECT_EQ(bytesOf(found), "here");
}

TEST_F(FileCacheTest, FilesOverTheByteLimitKeepOnlyTheirDescriptor) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 4, .validity = seconds(1)});
  writeFile(path("small.txt"), "1234");
  writeFile(path("large.txt"), "12345");
  EXPECT_EQ(bytesOf(lookup(cache, "small.txt", t0_)), "1234");
  const OpenedFile& large = lookup(cache, "large.txt", t0_);
  ASSERT_EQ(large.result, OpenResult::Ok);
  EXPECT_EQ(large.bytes, nullptr);
  ASSERT_NE(large.handle, nullptr);
  char buf[8];
  EXPECT_EQ(::pread(large.handle->fd(), buf, sizeof(buf), 0), 5);
  EXPECT_EQ(std::string(buf, 5), "12345");
  // Directories are remembered with their descriptor and no bytes.
  ASSERT_EQ(::mkdir(path("dir").c_str(), 0755), 0);
  const OpenedFile& dir = lookup(cache, "dir", t0_);
  EXPECT_EQ(dir.result, OpenResult::Ok);
  EXPECT_TRUE(S_ISDIR(dir.st.st_mode));
  EXPECT_EQ(dir.bytes, nullptr);
}

TEST_F(FileCacheTest, TheLeastRecentlyUsedEntryGoesFirst) {
  FileCache cache({.max_entries = 2, .max_file_bytes = 1024, .validity = seconds(10)});
  writeFile(path("a"), "a1");
  writeFile(path("b"), "b1");
  writeFile(path("c"), "c1");
  lookup(cache, "a", t0_);
  lookup(cache, "b", t0_);
  lookup(cache, "a", t0_); // a is now the most recently used
  lookup(cache, "c", t0_); // b goes
  EXPECT_EQ(cache.size(), 2u);
  writeFile(path("a"), "a2");
  writeFile(path("b"), "b2");
  EXPECT_EQ(bytesOf(lookup(cache, "a", t0_)), "a1") << "still remembered";
  EXPECT_EQ(bytesOf(lookup(cache, "b", t0_)), "b2") << "was dropped, so read again";
  EXPECT_EQ(cache.size(), 2u);
}

TEST_F(FileCacheTest, MountsAreKeptApartAndZeroValidityChecksEveryTime) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(0)});
  writeFile(path("a.txt"), "x");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_, 0)), "x");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_, 1)), "x");
  EXPECT_EQ(cache.size(), 2u);
  writeFile(path("a.txt"), "yy");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_, 0)), "yy");
}

TEST_F(FileCacheTest, ByDefaultEveryLookupChecksThePathWithOneStat) {
  FileCache cache({});
  writeFile(path("a.txt"), "one");
  const auto bytes = lookup(cache, "a.txt", t0_).bytes;
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(lookup(cache, "a.txt", t0_).bytes, bytes) << "unchanged: kept, not read again";
  writeFile(path("a.txt"), "two!");
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_)), "two!") << "a change is seen at once";
  writeFile(path("new.tmp"), "new!");
  ASSERT_EQ(::rename(path("new.tmp").c_str(), path("a.txt").c_str()), 0);
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_)), "new!") << "same size, new inode";
  ASSERT_EQ(::unlink(path("a.txt").c_str()), 0);
  EXPECT_EQ(lookup(cache, "a.txt", t0_).result, OpenResult::NotFound);
}

TEST_F(FileCacheTest, ByDefaultOnlySmallFilesAreKeptAndWithoutADescriptor) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 4});
  writeFile(path("small.txt"), "1234");
  writeFile(path("large.txt"), "12345");
  ASSERT_EQ(::mkdir(path("dir").c_str(), 0755), 0);
  const OpenedFile& small = lookup(cache, "small.txt", t0_);
  EXPECT_EQ(bytesOf(small), "1234");
  EXPECT_EQ(small.handle, nullptr) << "the bytes answer; no descriptor is held";
  EXPECT_EQ(cache.size(), 1u);
  // Opened as without the cache (a descriptor for this request only), not remembered.
  for (const char* name : {"large.txt", "dir", "missing.txt"}) {
    const OpenedFile& other = lookup(cache, name, t0_);
    EXPECT_EQ(other.result,
              std::string(name) == "missing.txt" ? OpenResult::NotFound : OpenResult::Ok);
    EXPECT_EQ(other.bytes, nullptr) << name;
    EXPECT_EQ(other.handle != nullptr, other.result == OpenResult::Ok) << name;
    EXPECT_EQ(cache.size(), 1u) << name;
  }
  // A kept file that grows past the limit leaves the cache; one that shrinks comes back.
  writeFile(path("small.txt"), "123456");
  const OpenedFile& grown = lookup(cache, "small.txt", t0_);
  EXPECT_EQ(grown.bytes, nullptr);
  ASSERT_NE(grown.handle, nullptr);
  EXPECT_EQ(grown.st.st_size, 6);
  EXPECT_EQ(cache.size(), 0u);
  writeFile(path("large.txt"), "123");
  EXPECT_EQ(bytesOf(lookup(cache, "large.txt", t0_)), "123");
  EXPECT_EQ(cache.size(), 1u);
}

TEST_F(FileCacheTest, AFileChangedInTheLastSecondsIsReadAgainAtEveryCheck) {
  FileCache cache({});
  writeFile(path("a.txt"), "abc");
  struct stat st {};
  ASSERT_EQ(::stat(path("a.txt").c_str(), &st), 0);
  // The time of day is the file's own change time: a rewrite of the same size within the
  // same tick of the file system's clock would leave its stat as it is.
  const SystemTime changed{std::chrono::seconds(st.st_ctim.tv_sec)};
  const auto first = lookup(cache, "a.txt", t0_, 0, changed).bytes;
  const auto second = lookup(cache, "a.txt", t0_, 0, changed).bytes;
  EXPECT_NE(second, first) << "read again, not vouched for by the stat";
  EXPECT_EQ(bytesOf(lookup(cache, "a.txt", t0_, 0, changed)), "abc");
  // Once the file has been quiet for long enough the next check still reads it (the entry
  // was loaded while racy), and from then on the stat vouches for it.
  const SystemTime quiet = changed + seconds(FileCache::kRacySeconds);
  const auto settled = lookup(cache, "a.txt", t0_, 0, quiet).bytes;
  EXPECT_EQ(lookup(cache, "a.txt", t0_, 0, quiet).bytes, settled);
  // A modification time in the future (a clock that disagrees) counts as recent too.
  timespec times[2] = {{st.st_atim.tv_sec, 0}, {st.st_mtim.tv_sec + 3600, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path("a.txt").c_str(), times, 0), 0);
  const auto future = lookup(cache, "a.txt", t0_, 0, quiet).bytes;
  EXPECT_NE(future, settled);
  EXPECT_NE(lookup(cache, "a.txt", t0_, 0, quiet).bytes, future);
}

TEST_F(FileCacheTest, TheStatCheckDoesNotLetAPathLeaveTheRoot) {
  FileCache cache({});
  const std::string outside = root_ + "-outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  writeFile(outside + "/a.txt", "secret");
  ASSERT_EQ(::mkdir(path("dir").c_str(), 0755), 0);
  writeFile(path("dir/a.txt"), "public");
  EXPECT_EQ(bytesOf(lookup(cache, "dir/a.txt", t0_)), "public");
  // The directory on the way becomes a link out of the root, then the file itself does.
  ASSERT_EQ(::rename(path("dir").c_str(), path("dir.old").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), path("dir").c_str()), 0);
  EXPECT_EQ(lookup(cache, "dir/a.txt", t0_).result, OpenResult::Escapes);
  ASSERT_EQ(::mkdir(path("d2").c_str(), 0755), 0);
  writeFile(path("d2/a.txt"), "public");
  EXPECT_EQ(bytesOf(lookup(cache, "d2/a.txt", t0_)), "public");
  ASSERT_EQ(::unlink(path("d2/a.txt").c_str()), 0);
  ASSERT_EQ(::symlink((outside + "/a.txt").c_str(), path("d2/a.txt").c_str()), 0);
  EXPECT_EQ(lookup(cache, "d2/a.txt", t0_).result, OpenResult::Escapes);
  const std::string cmd = "rm -rf '" + outside + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(FileCacheTest, SymlinksLeavingTheRootAreRefused) {
  FileCache cache({.max_entries = 10, .max_file_bytes = 1024, .validity = seconds(1)});
  ASSERT_EQ(::symlink("/etc/hostname", path("out").c_str()), 0);
  EXPECT_EQ(lookup(cache, "out", t0_).result, OpenResult::Escapes);
  EXPECT_EQ(lookup(cache, "out", t0_).handle, nullptr);
}

TEST(FileCaches, EachThreadGetsItsOwnCache) {
  FileCaches caches({});
  FileCaches other({});
  FileCache* mine = &caches.local();
  EXPECT_EQ(&caches.local(), mine);
  EXPECT_NE(&other.local(), mine);
  EXPECT_EQ(&caches.local(), mine) << "found again after another set was used";
  FileCache* theirs = nullptr;
  std::thread([&] { theirs = &caches.local(); }).join();
  EXPECT_NE(theirs, nullptr);
  EXPECT_NE(theirs, mine);
}

} // namespace
} // namespace pounce::filters::static_files

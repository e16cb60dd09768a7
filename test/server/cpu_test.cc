#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "source/server/cpu.h"

namespace pounce::server {
namespace {

class CgroupDir {
public:
  CgroupDir() {
    root_ = std::filesystem::temp_directory_path() / ("cg-" + std::to_string(getpid()));
    std::filesystem::create_directories(root_ / "kubepods" / "pod1");
  }
  ~CgroupDir() { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }
  std::string root() const { return root_.string(); }

private:
  std::filesystem::path root_;
};

TEST(AvailableCpus, AffinityWhenNoQuota) {
  CgroupDir d;
  d.write("kubepods/pod1/cpu.max", "max 100000\n");
  EXPECT_EQ(availableCpusFrom("0::/kubepods/pod1\n", d.root(), 8), 8u);
}

TEST(AvailableCpus, QuotaRoundsUp) {
  CgroupDir d;
  d.write("kubepods/pod1/cpu.max", "150000 100000\n");
  EXPECT_EQ(availableCpusFrom("0::/kubepods/pod1\n", d.root(), 8), 2u);
}

TEST(AvailableCpus, AncestorQuotaApplies) {
  CgroupDir d;
  d.write("kubepods/cpu.max", "100000 100000\n");
  EXPECT_EQ(availableCpusFrom("0::/kubepods/pod1\n", d.root(), 8), 1u);
}

TEST(AvailableCpus, AffinitySmallerThanQuota) {
  CgroupDir d;
  d.write("kubepods/pod1/cpu.max", "400000 100000\n");
  EXPECT_EQ(availableCpusFrom("0::/kubepods/pod1\n", d.root(), 2), 2u);
}

TEST(AvailableCpus, AtLeastOne) { EXPECT_EQ(availableCpusFrom("", "/nonexistent", 0), 1u); }

} // namespace
} // namespace pounce::server

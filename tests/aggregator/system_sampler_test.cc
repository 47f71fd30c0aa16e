// SPDX-License-Identifier: MIT
#include "reqmon/aggregator/system_sampler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace reqmon {
namespace {

namespace fs = std::filesystem;

class SamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/reqmon_proc_XXXXXX";
    root_ = mkdtemp(dir);
    fs::create_directories(root_ + "/net");
    fs::create_directories(root_ + "/1234");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ + "/" + rel) << text;
  }
  // user nice system idle iowait irq softirq steal guest guest_nice
  void Files(uint64_t user, uint64_t idle, uint64_t iowait, uint64_t utime, uint64_t rx,
             uint64_t sectors) {
    Write("stat", "cpu  " + std::to_string(user) + " 0 100 " + std::to_string(idle) + " " +
                      std::to_string(iowait) + " 0 0 0 50 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n");
    Write("meminfo",
          "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
          "MemAvailable:    4000000 kB\nBuffers:          100 kB\nCached:        200 kB\n");
    Write("diskstats",
          "   8       0 sda " "100 0 " + std::to_string(sectors) + " 0 50 0 2000 0 0 0 0\n"
          "   8       1 sda1 90 0 1000 0 40 0 1500 0 0 0 0\n"
          "   7       0 loop0 5 0 10 0 0 0 0 0 0 0 0\n"
          " 259       0 nvme0n1 10 0 100 0 5 0 200 0 0 0 0\n"
          " 259       1 nvme0n1p1 10 0 100 0 5 0 200 0 0 0 0\n");
    Write("net/dev",
          "Inter-|   Receive                                                |  Transmit\n"
          " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
          "    lo: " + std::to_string(rx) + " 10 0 0 0 0 0 0 500 10 0 0 0 0 0 0\n"
          "  eth0: 2000 20 0 0 0 0 0 0 3000 30 0 0 0 0 0 0\n");
    Write("1234/stat", "1234 (my (odd) srv) S 1 1234 1234 0 -1 4194560 100 0 0 0 " +
                           std::to_string(utime) + " 20 0 0 20 0 4 0 12345 100000 250 "
                           "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
    Write("1234/statm", "25000 250 100 10 0 500 0\n");
    Write("1234/comm", "my (odd) srv\n");
  }
  std::string root_;
};

TEST_F(SamplerTest, ReadsFakeProcLikePsutil) {
  Files(1000, 8000, 100, 30, 1000, 4000);
  SystemSampler sampler({root_, root_});
  const uint64_t t0 = 5'000'000'000;
  SystemSample a = sampler.Sample({1234, 999}, t0);
  EXPECT_TRUE(a.valid);
  EXPECT_DOUBLE_EQ(a.cpu_percent, 0.0);  // no delta yet (constructor read the same numbers)
  EXPECT_DOUBLE_EQ(a.memory_percent, 75.0);
  EXPECT_EQ(a.memory_total_bytes, 16000000ull * 1024);
  EXPECT_EQ(a.memory_available_bytes, 4000000ull * 1024);
  EXPECT_EQ(a.net_rx_bytes, 3000u);
  EXPECT_EQ(a.net_tx_bytes, 3500u);
  EXPECT_EQ(a.net_rx_packets, 30u);
  EXPECT_EQ(a.disk_read_bytes, (4000u + 100u) * 512);  // sda + nvme0n1 only
  EXPECT_EQ(a.disk_write_bytes, (2000u + 200u) * 512);
  EXPECT_EQ(a.disk_read_count, 110u);
  ASSERT_EQ(a.processes.size(), 2u);
  EXPECT_TRUE(a.processes[0].alive);
  EXPECT_EQ(a.processes[0].comm, "my (odd) srv");
  EXPECT_EQ(a.processes[0].rss_bytes, 250ull * sysconf(_SC_PAGESIZE));
  EXPECT_DOUBLE_EQ(a.processes[0].cpu_percent, 0.0);
  EXPECT_FALSE(a.processes[1].alive);
  EXPECT_GT(a.disk_total_bytes, 0u);
  EXPECT_EQ(a.disk_path, root_);

  // One second later: user +300, idle +600, iowait +100 (total +1000, busy +300) -> 30%;
  // the process used clk_tck/2 ticks -> 50%.
  const long hz = sysconf(_SC_CLK_TCK);
  Files(1300, 8600, 200, 30 + hz / 2, 1000 + 4096, 4000 + 8);
  SystemSample b = sampler.Sample({1234}, t0 + 1'000'000'000);
  EXPECT_NEAR(b.cpu_percent, 30.0, 1e-9);
  EXPECT_NEAR(b.processes[0].cpu_percent, 100.0 * (hz / 2) / hz, 1e-9);
  EXPECT_DOUBLE_EQ(b.net_rx_bytes_per_sec, 4096.0);
  EXPECT_DOUBLE_EQ(b.disk_read_bytes_per_sec, 8 * 512.0);
  EXPECT_DOUBLE_EQ(b.net_tx_bytes_per_sec, 0.0);
}

TEST_F(SamplerTest, MissingFilesGiveZeros) {
  SystemSampler sampler({root_ + "/nope", "/nonexistent"});
  SystemSample s = sampler.Sample({1}, 1);
  EXPECT_TRUE(s.valid);
  EXPECT_EQ(s.memory_total_bytes, 0u);
  EXPECT_EQ(s.disk_total_bytes, 0u);
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_FALSE(s.processes[0].alive);
}

TEST(SamplerRealProcTest, ReadsThisHost) {
  SystemSampler sampler;
  usleep(50000);
  SystemSample s = sampler.Sample({static_cast<uint32_t>(getpid())});
  EXPECT_GT(s.memory_total_bytes, 0u);
  EXPECT_GT(s.memory_percent, 0.0);
  EXPECT_LE(s.cpu_percent, 100.0);
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_TRUE(s.processes[0].alive);
  EXPECT_GT(s.processes[0].rss_bytes, 0u);
}

}  // namespace
}  // namespace reqmon

// SPDX-License-Identifier: MIT
// The capture file: records come back byte for byte; foreign, truncated and corrupt files give
// one line naming the file and the byte offset.
#include "reqmon/capture/capture_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "../support/servers.h"
#include "reqmon/abi.h"

namespace reqmon {
namespace {

namespace fs = std::filesystem;

std::string MakeRecord(uint32_t type, const std::string& payload) {
  rq_data_event ev{};
  ev.h.type = type;
  ev.h.pid = 42;
  ev.h.fd = 7;
  ev.bytes = payload.size();
  ev.payload_len = payload.size();
  std::string rec(reinterpret_cast<const char*>(&ev), sizeof(ev));
  return rec + payload;
}

class CaptureFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("capfile"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CaptureFileTest, RoundTripsRecordsByteForByte) {
  std::mt19937 rng(7);
  std::vector<std::string> records;
  for (int i = 0; i < 200; ++i) {
    std::string payload(rng() % 5000, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    records.push_back(MakeRecord(RQ_EV_DATA, payload));
  }
  std::string err;
  CaptureInfo info;
  info.realtime_offset_ns = 1234567890123LL;
  info.payload_limit = 4096;
  auto w = CaptureWriter::Create((dir_ / "a.rqcap").string(), info, &err);
  ASSERT_TRUE(w) << err;
  for (const auto& r : records) ASSERT_TRUE(w->Write(r.data(), r.size()));
  w.reset();

  auto rd = CaptureReader::Open((dir_ / "a.rqcap").string(), &err);
  ASSERT_TRUE(rd) << err;
  EXPECT_EQ(rd->info().realtime_offset_ns, 1234567890123LL);
  EXPECT_EQ(rd->info().payload_limit, 4096u);
  EXPECT_EQ(rd->info().abi_version, static_cast<uint32_t>(RQ_ABI_VERSION));
  std::string_view rec;
  size_t i = 0;
  while (rd->Next(&rec)) {
    ASSERT_LT(i, records.size());
    EXPECT_EQ(rec, records[i]) << "record " << i;
    ++i;
  }
  EXPECT_EQ(rd->error(), "");
  EXPECT_EQ(i, records.size());
}

TEST_F(CaptureFileTest, ForeignFileNamesFileAndOffset) {
  std::ofstream(dir_ / "x.txt") << "GET / HTTP/1.1\r\nHost: example\r\n\r\n and more bytes here";
  std::string err;
  auto rd = CaptureReader::Open((dir_ / "x.txt").string(), &err);
  EXPECT_FALSE(rd);
  EXPECT_NE(err.find("x.txt"), std::string::npos) << err;
  EXPECT_NE(err.find("not a reqmon capture"), std::string::npos) << err;
  EXPECT_NE(err.find("byte offset 0"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST_F(CaptureFileTest, MissingFileIsAnError) {
  std::string err;
  EXPECT_FALSE(CaptureReader::Open((dir_ / "none.rqcap").string(), &err));
  EXPECT_NE(err.find("none.rqcap"), std::string::npos) << err;
}

TEST_F(CaptureFileTest, TruncatedFileNamesOffsetOfBrokenRecord) {
  std::string err;
  auto w = CaptureWriter::Create((dir_ / "t.rqcap").string(), CaptureInfo{}, &err);
  ASSERT_TRUE(w);
  std::string r1 = MakeRecord(RQ_EV_DATA, "hello");
  std::string r2 = MakeRecord(RQ_EV_DATA, std::string(300, 'z'));
  w->Write(r1.data(), r1.size());
  w->Write(r2.data(), r2.size());
  w.reset();
  uint64_t second = kCaptureHeaderSize + 4 + r1.size();
  fs::resize_file(dir_ / "t.rqcap", second + 4 + 100);  // cut inside the second record

  auto rd = CaptureReader::Open((dir_ / "t.rqcap").string(), &err);
  ASSERT_TRUE(rd) << err;
  std::string_view rec;
  ASSERT_TRUE(rd->Next(&rec));
  EXPECT_EQ(rec, r1);
  EXPECT_FALSE(rd->Next(&rec));
  EXPECT_NE(rd->error().find("truncated record at byte offset " + std::to_string(second)),
            std::string::npos)
      << rd->error();

  // Cut inside the file header.
  fs::resize_file(dir_ / "t.rqcap", 20);
  EXPECT_FALSE(CaptureReader::Open((dir_ / "t.rqcap").string(), &err));
  EXPECT_NE(err.find("truncated capture header at byte offset 20"), std::string::npos) << err;
}

TEST_F(CaptureFileTest, CorruptLengthIsReported) {
  std::string err;
  auto w = CaptureWriter::Create((dir_ / "c.rqcap").string(), CaptureInfo{}, &err);
  ASSERT_TRUE(w);
  w.reset();
  {
    std::ofstream out(dir_ / "c.rqcap", std::ios::app | std::ios::binary);
    uint32_t len = 0xfffffff0u;
    out.write(reinterpret_cast<const char*>(&len), 4);
    out << "garbage";
  }
  auto rd = CaptureReader::Open((dir_ / "c.rqcap").string(), &err);
  ASSERT_TRUE(rd);
  std::string_view rec;
  EXPECT_FALSE(rd->Next(&rec));
  EXPECT_NE(rd->error().find("corrupt record length"), std::string::npos) << rd->error();
  EXPECT_NE(rd->error().find("byte offset 32"), std::string::npos) << rd->error();
}

TEST_F(CaptureFileTest, WrongVersionIsReported) {
  std::string err;
  auto w = CaptureWriter::Create((dir_ / "v.rqcap").string(), CaptureInfo{}, &err);
  w.reset();
  std::fstream f(dir_ / "v.rqcap", std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(8);
  uint32_t v = 99;
  f.write(reinterpret_cast<const char*>(&v), 4);
  f.close();
  EXPECT_FALSE(CaptureReader::Open((dir_ / "v.rqcap").string(), &err));
  EXPECT_NE(err.find("unsupported capture format version 99 at byte offset 8"), std::string::npos)
      << err;
}

}  // namespace
}  // namespace reqmon

namespace reqmon {
namespace {

// Captures hold payload prefixes (request heads with cookies and tokens): created owner-only
// whatever the umask, and an existing file loses its wider mode.
TEST(CaptureFileModeTest, CreatedOwnerOnly) {
  const fs::path dir = testing::MakeTempDir("capmode");
  const mode_t old = umask(0);
  std::string err;
  CaptureInfo info;
  auto w = CaptureWriter::Create((dir / "a.rqcap").string(), info, &err);
  ASSERT_TRUE(w) << err;
  w.reset();
  struct stat st;
  ASSERT_EQ(stat((dir / "a.rqcap").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ofstream(dir / "b.rqcap") << "old";
  chmod((dir / "b.rqcap").c_str(), 0644);
  w = CaptureWriter::Create((dir / "b.rqcap").string(), info, &err);
  ASSERT_TRUE(w) << err;
  w.reset();
  ASSERT_EQ(stat((dir / "b.rqcap").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  umask(old);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace reqmon

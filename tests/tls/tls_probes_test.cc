// SPDX-License-Identifier: MIT
// Finding OpenSSL's entry points in real ELF files: the system's libssl defines them, nginx only
// imports them (it must not be hooked: its calls land in libssl), Node.js defines them in its own
// executable. And what TlsNotCoveredReason says of a process that uses none of them.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "reqmon/capture/tls_probes.h"

namespace reqmon {
namespace {

namespace fs = std::filesystem;

// The libssl this test process would load, from the dynamic loader's cache.
std::string SystemLibssl() {
  for (const char* p : {"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3",
                        "/usr/lib/aarch64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3"})
    if (fs::exists(p)) return p;
  return "";
}

TEST(OpenSslSymbolsTest, LibsslDefinesAllFourAtOffsetsInsideTheFile) {
  std::string lib = SystemLibssl();
  if (lib.empty()) GTEST_SKIP() << "no libssl.so.3 here";
  OpenSslSymbols s;
  std::string err;
  ASSERT_TRUE(FindOpenSslSymbols(lib, &s, &err)) << err;
  const auto size = fs::file_size(lib);
  for (uint64_t off : {s.ssl_read, s.ssl_read_ex, s.ssl_write, s.ssl_write_ex}) {
    EXPECT_GT(off, 0u);
    EXPECT_LT(off, size);
  }
  EXPECT_NE(s.ssl_read, s.ssl_write);
  EXPECT_NE(s.ssl_read, s.ssl_read_ex);
  // The bytes at SSL_read's offset are code: x86-64 functions here start with endbr64 or push.
  std::ifstream in(lib, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(s.ssl_read));
  unsigned char b[4] = {};
  in.read(reinterpret_cast<char*>(b), 4);
#if defined(__x86_64__)
  const bool endbr64 = b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa;
  const bool push_or_sub = b[0] == 0x41 || b[0] == 0x48 || b[0] == 0x55 || b[0] == 0x53;
  EXPECT_TRUE(endbr64 || push_or_sub) << std::hex << int(b[0]) << " " << int(b[1]);
#endif
}

TEST(OpenSslSymbolsTest, AnExecutableThatOnlyImportsThemHasNone) {
  const std::string nginx = fs::exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "";
  if (nginx.empty()) GTEST_SKIP() << "no /usr/sbin/nginx here";
  OpenSslSymbols s;
  std::string err;
  ASSERT_TRUE(FindOpenSslSymbols(nginx, &s, &err)) << err;
  EXPECT_FALSE(s.any());
}

TEST(OpenSslSymbolsTest, NodeExportsItsOwnOpenSsl) {
  std::string node;
  for (const char* p : {"/usr/bin/node", "/usr/local/bin/node"})
    if (fs::exists(p)) node = fs::canonical(p).string();
  if (node.empty()) GTEST_SKIP() << "no node here";
  OpenSslSymbols s;
  std::string err;
  ASSERT_TRUE(FindOpenSslSymbols(node, &s, &err)) << err;
  // Debian's nodejs links the system libssl instead; then the executable has none.
  if (!s.any()) GTEST_SKIP() << node << " uses a shared libssl";
  EXPECT_GT(s.ssl_read, 0u);
  EXPECT_GT(s.ssl_write, 0u);
}

TEST(OpenSslSymbolsTest, NotAnElfFileIsAClearError) {
  fs::path f = fs::temp_directory_path() / ("reqmon-notelf-" + std::to_string(getpid()));
  std::ofstream(f) << "#!/bin/sh\necho hi\n";
  OpenSslSymbols s;
  std::string err;
  EXPECT_FALSE(FindOpenSslSymbols(f.string(), &s, &err));
  EXPECT_NE(err.find("not an ELF file"), std::string::npos) << err;
  EXPECT_FALSE(FindOpenSslSymbols("/nonexistent/libssl.so.3", &s, &err));
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  fs::remove(f);
}

TEST(TlsNotCoveredTest, APlainProcessHasNoReason) {
  // This test binary maps no TLS library at all.
  EXPECT_EQ(TlsNotCoveredReason("/proc", getpid()), "");
  // A PID that does not exist has no reason either (and nothing crashes).
  EXPECT_EQ(TlsNotCoveredReason("/proc", 0x3ffffff), "");
}

}  // namespace
}  // namespace reqmon

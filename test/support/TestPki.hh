// Test support shared by the test suites of several modules.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace acheron::test_support {

// A throwaway PKI made with the openssl command in `dir`: a CA (ca.pem), a
// server certificate for localhost and 127.0.0.1 (server.pem, server.key)
// and a client certificate (client.pem, client.key) signed by it, and an
// unrelated CA (other_ca.pem, other.key). nullopt without openssl.
struct TestPki {
  std::filesystem::path dir;
  std::string file(const char* name) const { return (dir / name).string(); }
};

inline std::optional<TestPki> make_test_pki(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "cd '" + dir.string() + "' && " +
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && " + "openssl req -x509 " +
      key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=acheron-test-ca && " +
      "openssl req -x509 " + key +
      " -keyout other.key -out other_ca.pem -days 2 -subj /CN=acheron-other-ca && " +
      "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost && " +
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile san.ext -out server.pem && " +
      "openssl req " + key + " -keyout client.key -out client.csr -subj /CN=acheron-client && " +
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-out client.pem";
  if (std::system(("(" + script + ") >/dev/null 2>&1").c_str()) != 0) return std::nullopt;
  return TestPki{dir};
}

}  // namespace acheron::test_support

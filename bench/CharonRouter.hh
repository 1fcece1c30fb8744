// ChAR0N's own router.py as a comparison point for the broker benchmarks
// (bench_photon_service, bench_broker_scaling), from a checkout the user
// names: its code is not part of this project. Loopback only.
#pragma once

#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <zmq.hpp>

namespace acheron::bench {

// A TCP port on loopback that was free a moment ago.
inline int free_port() {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.bind("tcp://127.0.0.1:*");
  const std::string ep = s.get(zmq::sockopt::last_endpoint);
  return std::atoi(ep.substr(ep.rfind(':') + 1).c_str());
}

// router.py from `dir` (beside its config.py) on the given ports, with
// config.py's frontend_port/backend_port replaced, run by Debian's python3.
// Its stdout goes to /dev/null, and its stderr too with quiet_stderr.
inline pid_t start_charon_router(const std::string& dir, int frontend, int backend,
                                 bool quiet_stderr) {
  const std::string script =
      "import sys; sys.path.insert(0, '" + dir + "'); import config; config.frontend_port = '" +
      std::to_string(frontend) + "'; config.backend_port = '" + std::to_string(backend) +
      "'; exec(compile(open('" + dir + "/router.py').read(), 'router.py', 'exec'))";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    if (quiet_stderr) ::dup2(null, 2);
    ::execl("/usr/bin/python3", "python3", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

}  // namespace acheron::bench

// Child processes of the acheron program (the demo starts its broker and
// workers this way): spawned from this very executable, optionally with
// stdout on a pipe, always stopped (SIGTERM, then SIGKILL) when destroyed.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "acheron/core/Error.hh"

extern char** environ;

namespace acheron::app {

class Child final {
 public:
  // Runs `/proc/self/exe args...`; with capture_stdout the child's stdout is
  // readable through read_line(), otherwise it goes to /dev/null.
  Child(const std::vector<std::string>& args, bool capture_stdout) {
    std::vector<std::string> argv_s{"acheron"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int fds[2] = {-1, -1};
    if (capture_stdout) {
      if (pipe2(fds, O_CLOEXEC) != 0) throw SetupError("pipe failed (out of descriptors?)");
      posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    } else {
      // Its ready line is not the demo's output.
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    const int rc = posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (capture_stdout) {
      close(fds[1]);
      out_ = fds[0];
    }
    if (rc != 0) {
      if (out_ >= 0) close(out_);
      throw SetupError("cannot start a child process (posix_spawn error " + std::to_string(rc) +
                       ") check the system's process limits");
    }
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // One line of the child's stdout, waiting up to timeout; empty on timeout/EOF.
  std::string read_line(std::chrono::milliseconds timeout) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_ >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char c;
      if (::read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line.push_back(c);
    }
    return line;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM, up to `grace` to exit, then SIGKILL. Returns the exit code (or
  // 128 + signal).
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) {
    int code = exit_code_;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + grace;
      int status = 0;
      pid_t r = 0;
      while ((r = waitpid(pid_, &status, WNOHANG)) == 0 &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (r == 0) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      exit_code_ = code;
    }
    if (out_ >= 0) {
      close(out_);
      out_ = -1;
    }
    return code;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int exit_code_ = 0;
};

}  // namespace acheron::app

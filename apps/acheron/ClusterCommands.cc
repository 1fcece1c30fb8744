// `acheron cluster slurm`: photon workers as a Slurm job array behind a
// running broker. The batch script is scripts/slurm/acheron-worker.sbatch
// (compiled in; --template replaces it); sbatch, squeue, scancel and scontrol
// are the real Slurm client programs, found on PATH. See docs/cluster.md.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "Commands.hh"
#include "DetectorChoice.hh"
#include "Durations.hh"
#include "Endpoints.hh"
#include "SlurmTemplate.hh"
#include "acheron/core/Error.hh"
#include "acheron/photon/Client.hh"

extern char** environ;

namespace acheron::app {
namespace {

namespace fs = std::filesystem;

// The full path of a program on PATH, or empty.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    const fs::path candidate = fs::path(dir) / name;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) {
      return candidate.string();
    }
  }
  return {};
}

std::string slurm_program(const std::string& name) {
  std::string p = find_on_path(name);
  if (p.empty()) {
    throw SetupError(
        name +
        " is not on PATH (the Slurm client programs sbatch, squeue, scancel and "
        "scontrol drive the cluster) install them (Debian: apt-get install slurm-client) or "
        "add their directory to PATH");
  }
  return p;
}

struct ProgramResult {
  int status = -1;  // exit status; -1 if killed by a signal
  std::string out, err;
};

// Runs `program args...` to completion with stdout and stderr captured.
ProgramResult run_program(const std::string& program, const std::vector<std::string>& args) {
  std::vector<std::string> argv_s{program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw SetupError("pipe failed (out of descriptors?)");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    throw SetupError("pipe failed (out of descriptors?)");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  ProgramResult r;
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    throw SetupError("cannot run " + program + " (posix_spawn error " + std::to_string(rc) +
                     ") check that it is an executable program");
  }
  // Both pipes at once, so a chatty stderr cannot block the program.
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return r;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string absolute_existing(const std::string& file, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw SetupError(std::string(what) + " " + file +
                     " is not a readable file (the workers load it when they start) give an "
                     "existing file, on a file system the compute nodes see");
  }
  return fs::absolute(file).string();
}

struct SlurmOpts {
  std::string connect;
  std::string broker;  // the broker's client endpoint, for --watch
  int workers = 1;
  std::string partition;
  std::string time;
  int cpus_per_worker = 1;
  int gpus_per_worker = 0;
  DetectorChoice det;
  std::string curve_key, server_key;
  std::optional<std::uint64_t> seed;
  double grace_s = 20;
  std::string job_name = "acheron-worker";
  std::string log_dir;
  std::string template_file;
  std::vector<std::string> sbatch_args;
  bool parsable = false;
  bool dry_run = false;
  bool watch = false;
  double watch_timeout_s = 300;
  std::string cancel;
  std::string requeue;
};

// The sbatch arguments (options, script, worker arguments) for `o`; the
// script path is filled in by the caller.
std::vector<std::string> sbatch_arguments(const SlurmOpts& o, const std::string& script) {
  std::vector<std::string> a = {"--parsable", "--array=0-" + std::to_string(o.workers - 1),
                                "--job-name=" + o.job_name, "--ntasks=1",
                                "--cpus-per-task=" + std::to_string(o.cpus_per_worker)};
  if (!o.partition.empty()) a.push_back("--partition=" + o.partition);
  if (!o.time.empty()) a.push_back("--time=" + o.time);
  if (o.gpus_per_worker > 0) a.push_back("--gpus-per-task=" + std::to_string(o.gpus_per_worker));
  const fs::path logs = o.log_dir.empty() ? fs::current_path() : fs::absolute(o.log_dir);
  a.push_back("--output=" + (logs / (o.job_name + "-%A_%a.log")).string());
  // The workers run this very program (the nodes must see the same path).
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  a.push_back("--export=ALL" + (ec ? std::string() : ",ACHERON_BIN=" + self.string()));
  a.insert(a.end(), o.sbatch_args.begin(), o.sbatch_args.end());
  a.push_back(script);
  // Everything after the script: `acheron photon worker` arguments.
  a.insert(a.end(), {"--connect", o.connect, "--threads", std::to_string(o.cpus_per_worker)});
  a.insert(a.end(), {"--grace", format_duration(o.grace_s)});
  if (o.seed) a.insert(a.end(), {"--seed", std::to_string(*o.seed)});
  if (!o.det.file.empty()) {
    a.insert(a.end(), {"--detector", absolute_existing(o.det.file, "detector file")});
  }
  if (o.det.pmts > 0) a.insert(a.end(), {"--pmts", std::to_string(o.det.pmts)});
  if (!o.det.pmt_pattern.empty()) a.insert(a.end(), {"--pmt-pattern", o.det.pmt_pattern});
  if (o.det.tolerance > 0) {
    std::ostringstream t;
    t << o.det.tolerance;
    a.insert(a.end(), {"--tolerance", t.str()});
  }
  if (!o.curve_key.empty()) {
    a.insert(a.end(), {"--curve-key", absolute_existing(o.curve_key, "CURVE key file"),
                       "--server-key", absolute_existing(o.server_key, "broker public key file")});
  }
  return a;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-+=./:,%@[]") == std::string::npos) {
    return s;
  }
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A batch script file that exists while this object lives (sbatch keeps its
// own copy of the script once it has accepted the job).
class ScriptFile final {
 public:
  explicit ScriptFile(const std::string& text) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/acheron-worker-XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) {
      throw SetupError("cannot create the batch script in " +
                       fs::path(pattern).parent_path().string() +
                       " (not writable?) set TMPDIR to a writable directory");
    }
    const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    path_ = pattern;
    if (!ok) throw SetupError("cannot write the batch script " + path_ + " (disk full?)");
  }
  ~ScriptFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  ScriptFile(const ScriptFile&) = delete;
  ScriptFile& operator=(const ScriptFile&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

std::string read_text(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw SetupError("cannot read the batch script template " + file +
                     " (missing or not readable) give an existing file to --template");
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One array task as squeue and the broker see it.
struct TaskView {
  std::string slurm_state;  // squeue's %T; empty once the task has left squeue
  std::string node;
  std::string broker_state;  // the broker's worker state; empty: not registered
};

std::string describe(const TaskView& t) {
  std::string s = t.slurm_state.empty() ? "gone from squeue" : t.slurm_state;
  if (!t.node.empty()) s += " on " + t.node;
  s += t.broker_state.empty() ? ", not registered with the broker"
                              : ", registered with the broker (" + t.broker_state + ")";
  return s;
}

int watch_job(const SlurmOpts& o, const std::string& job_id) {
  const std::string squeue = slurm_program("squeue");
  photon::Client client(
      {.endpoint = o.broker, .timeout = std::chrono::milliseconds(1000), .attempts = 1});
  std::map<std::string, TaskView> tasks, printed;
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<std::int64_t>(o.watch_timeout_s * 1000));
  bool broker_warned = false;
  for (;;) {
    for (auto& [id, t] : tasks) t.slurm_state.clear();
    const auto q = run_program(squeue, {"-h", "-r", "-j", job_id, "-o", "%i|%T|%N"});
    std::istringstream lines(q.out);
    std::string line;
    while (std::getline(lines, line)) {
      const auto a = line.find('|'), b = line.find('|', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      TaskView& t = tasks[line.substr(0, a)];
      t.slurm_state = line.substr(a + 1, b - a - 1);
      if (b + 1 < line.size()) t.node = line.substr(b + 1);
    }
    std::size_t registered = 0;
    try {
      const auto stats = nlohmann::json::parse(client.stats_json());
      for (auto& [id, t] : tasks) t.broker_state.clear();
      for (const auto& w : stats.value("worker_list", nlohmann::json::array())) {
        if (w.value("slurm_array_job_id", "") != job_id) continue;
        const std::string id = job_id + "_" + w.value("slurm_array_task_id", "?");
        TaskView& t = tasks[id];
        t.broker_state = w.value("state", "?");
        if (t.node.empty()) t.node = w.value("node", "");
      }
      broker_warned = false;
    } catch (const std::exception& e) {
      if (!broker_warned) std::printf("broker %s: %s\n", o.broker.c_str(), e.what());
      broker_warned = true;
    }
    bool any_in_squeue = false;
    for (auto& [id, t] : tasks) {
      const auto p = printed.find(id);
      if (p == printed.end() || p->second.slurm_state != t.slurm_state ||
          p->second.node != t.node || p->second.broker_state != t.broker_state) {
        std::printf("%s: %s\n", id.c_str(), describe(t).c_str());
        printed[id] = t;
      }
      any_in_squeue |= !t.slurm_state.empty();
      registered += !t.broker_state.empty() && t.broker_state != "probing";
    }
    std::fflush(stdout);
    if (registered >= static_cast<std::size_t>(o.workers)) {
      std::printf("all %d workers of job %s are registered with the broker\n", o.workers,
                  job_id.c_str());
      return kOk;
    }
    if (!any_in_squeue && q.status == 0 && !tasks.empty()) {
      std::fprintf(stderr,
                   "acheron: job %s left the queue with %zu of %d workers registered (see its "
                   "logs, %s-%s_*.log)\n",
                   job_id.c_str(), registered, o.workers, o.job_name.c_str(), job_id.c_str());
      return kFailure;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "acheron: %zu of %d workers of job %s registered within %.0f s (still "
                   "pending? see squeue) the job keeps running; watch again or cancel it\n",
                   registered, o.workers, job_id.c_str(), o.watch_timeout_s);
      return kUnavailable;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void run_slurm(const SlurmOpts& o, int* exit_code) {
  if (!o.cancel.empty() && !o.requeue.empty()) {
    throw SetupError("--cancel and --requeue were both given (one action per command) give one");
  }
  if (!o.cancel.empty()) {
    const auto r = run_program(slurm_program("scancel"), {o.cancel});
    if (r.status != 0) {
      std::fprintf(stderr, "acheron: scancel %s failed: %s\n", o.cancel.c_str(),
                   trim(r.err + r.out).c_str());
      *exit_code = kFailure;
      return;
    }
    std::printf("cancelled Slurm job %s (its workers get SIGTERM and leave the broker)\n",
                o.cancel.c_str());
    *exit_code = kOk;
    return;
  }
  if (!o.requeue.empty()) {
    // What preemption with PreemptMode=REQUEUE does: a running task gets
    // SIGTERM (its worker drains) and goes back to pending; a finished or
    // cancelled one goes back to pending. Either starts again from the top
    // of the batch script when Slurm schedules it.
    const auto r = run_program(slurm_program("scontrol"), {"requeue", o.requeue});
    if (r.status != 0) {
      std::fprintf(stderr, "acheron: scontrol requeue %s failed: %s\n", o.requeue.c_str(),
                   trim(r.err + r.out).c_str());
      *exit_code = kFailure;
      return;
    }
    std::printf(
        "requeued Slurm job %s (a running worker gets SIGTERM and leaves the broker; the job "
        "starts again when Slurm schedules it, by default no sooner than 120 s later)\n",
        o.requeue.c_str());
    *exit_code = kOk;
    return;
  }
  if (o.connect.empty()) {
    throw SetupError(
        "no broker to connect the workers to (--connect is missing) give the broker's worker "
        "endpoint as the nodes reach it, e.g. --connect tcp://broker-host:6667");
  }
  if (o.connect.find("*") != std::string::npos) {
    throw SetupError("--connect " + o.connect +
                     " is a bind address (workers connect to a host) give the broker's host "
                     "name or address, e.g. tcp://broker-host:6667");
  }
  if (o.job_name.empty() || o.job_name.find_first_of("/ \t\n") != std::string::npos) {
    throw SetupError("--job-name '" + o.job_name +
                     "' is not usable (it names the log files) give a name without spaces or "
                     "slashes");
  }
  if (o.curve_key.empty() != o.server_key.empty()) {
    throw SetupError(
        "--curve-key and --server-key go together (a CURVE worker needs its own secret key and "
        "the broker's public key) give both or neither");
  }
  if (o.watch && o.broker.empty()) {
    throw SetupError(
        "--watch asks the broker which workers have registered (STATS on its client "
        "endpoint, which --connect is not) add --stats-connect, e.g. --stats-connect "
        "tcp://broker-host:5555");
  }
  const std::string script_text =
      o.template_file.empty() ? std::string(kSlurmWorkerTemplate) : read_text(o.template_file);
  const std::string sbatch = o.dry_run ? find_on_path("sbatch") : slurm_program("sbatch");
  ScriptFile script(script_text);
  const auto args = sbatch_arguments(o, script.path());
  if (o.dry_run) {
    std::string line = sbatch.empty() ? "sbatch" : sbatch;
    for (const auto& a : args) line += " " + shell_quote(a);
    std::printf("%s\n", line.c_str());
    *exit_code = kOk;
    return;
  }
  const auto r = run_program(sbatch, args);
  const std::string out = trim(r.out);
  const std::string job_id = out.substr(0, out.find(';'));  // "id[;cluster]"
  if (r.status != 0 || job_id.empty() ||
      job_id.find_first_not_of("0123456789") != std::string::npos) {
    std::fprintf(stderr, "acheron: sbatch refused the job: %s\n", trim(r.err + r.out).c_str());
    *exit_code = kFailure;
    return;
  }
  if (o.parsable) {
    std::printf("%s\n", job_id.c_str());
  } else {
    std::printf("submitted Slurm job %s: %d worker(s) %s_0..%s_%d connecting to %s\n",
                job_id.c_str(), o.workers, job_id.c_str(), job_id.c_str(), o.workers - 1,
                o.connect.c_str());
  }
  std::fflush(stdout);
  *exit_code = o.watch ? watch_job(o, job_id) : kOk;
}

}  // namespace

void add_cluster_commands(CLI::App& app, int* exit_code) {
  auto* cluster = app.add_subcommand("cluster", "run photon workers on a batch system");
  cluster->require_subcommand(1);
  auto o = std::make_shared<SlurmOpts>();
  auto* slurm = cluster->add_subcommand(
      "slurm", "submit photon workers as a Slurm job array behind a running broker");
  slurm->add_option("--connect", o->connect,
                    "the broker's worker endpoint as the compute nodes reach it, e.g. "
                    "tcp://broker-host:6667");
  slurm->add_option("--workers", o->workers, "workers (array tasks)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  slurm->add_option("--partition", o->partition, "Slurm partition (default: the cluster's)");
  slurm->add_option("--time", o->time, "time limit per worker, Slurm's format (e.g. 2:00:00)");
  slurm->add_option("--cpus-per-worker", o->cpus_per_worker, "CPUs per worker (engine threads)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  slurm->add_option("--gpus-per-worker", o->gpus_per_worker, "GPUs per worker (--gpus-per-task)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  add_detector_options(slurm, o->det);
  slurm->add_option("--curve-key", o->curve_key,
                    "the workers' CURVE secret key file (enables CURVE; needs --server-key)");
  slurm->add_option("--server-key", o->server_key, "the broker's CURVE public key file");
  slurm->add_option("--seed", o->seed,
                    "random seed of every worker (same seed: the same hits as one worker)");
  add_duration_option(slurm, "--grace", o->grace_s,
                      "how long a worker may finish its event after SIGTERM (keep below KillWait)",
                      {0, 86400}, true);
  slurm->add_option("--job-name", o->job_name, "Slurm job name")->capture_default_str();
  slurm->add_option("--log-dir", o->log_dir,
                    "directory of the workers' logs, JOBNAME-ARRAYID_TASK.log (default: here)");
  slurm->add_option("--template", o->template_file,
                    "batch script to submit instead of the built-in "
                    "scripts/slurm/acheron-worker.sbatch");
  slurm
      ->add_option("--sbatch-arg", o->sbatch_args,
                   "one more sbatch option, e.g. --sbatch-arg=--account=phys; repeatable")
      ->allow_extra_args(false);
  slurm->add_flag("--parsable", o->parsable, "print only the job id");
  slurm->add_flag("--dry-run", o->dry_run, "print the sbatch command instead of running it");
  slurm->add_flag("--watch", o->watch,
                  "after submitting, follow the workers until all have registered (needs "
                  "--stats-connect)");
  slurm->add_option("--stats-connect", o->broker,
                    "the broker's client endpoint, asked for STATS by --watch, e.g. "
                    "tcp://broker-host:5555");
  add_deprecated_alias(slurm, "--broker", "--stats-connect", o->broker);
  add_duration_option(slurm, "--watch-timeout", o->watch_timeout_s, "how long --watch waits",
                      {1, 86400}, true);
  slurm->add_option("--cancel", o->cancel,
                    "cancel this job (JOBID, or JOBID_TASK for one worker) with scancel instead "
                    "of submitting");
  slurm->add_option("--requeue", o->requeue,
                    "requeue this job (JOBID, or JOBID_TASK for one worker) with scontrol "
                    "requeue instead of submitting: a running worker drains and leaves, and the "
                    "task starts again later");
  slurm->callback([o, exit_code] { run_slurm(*o, exit_code); });
}

}  // namespace acheron::app

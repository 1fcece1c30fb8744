// Progress on the terminal for the long-running commands (docs/cli.md,
// "Progress"): a bar with done/total, percentage, rate and ETA, or for work
// with no known total a spinner line with the count and the rate. Drawn on
// stderr only when stderr is a terminal (or --progress forces it), at most
// about ten times a second, and closed with a newline and a summary line, so
// output piped or redirected to a file never carries it.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

namespace acheron::app {

// The global --progress / --no-progress choice.
enum class ProgressMode { automatic, on, off };
void set_progress_mode(ProgressMode mode);
ProgressMode progress_mode();
// --progress and --no-progress on a long command, as the global ones.
void add_progress_flags(CLI::App* cmd);

// "950", "12.3k", "4.56M": a count or a rate in at most four significant digits.
std::string format_count(double value);
// "4s", "1m05s", "2h03m"; "--" for a time not known (negative or not finite).
std::string format_eta(double seconds);

struct ProgressOptions {
  std::string label;        // what runs, e.g. "simulate"
  std::string unit;         // plural of what is counted, e.g. "events"
  std::uint64_t total = 0;  // 0: open-ended (spinner line, no ETA)
  // With no total: the run stops after this long (--duration), so the bar
  // shows the time gone and the ETA the time left.
  double duration_s = 0;
  std::FILE* out = stderr;
  // Drawn: ProgressMode::automatic follows isatty(fileno(out)) and the
  // global mode; on/off force it (tests).
  ProgressMode mode = ProgressMode::automatic;
  // Monotonic seconds; empty: std::chrono::steady_clock.
  std::function<double()> clock;
  double redraw_interval_s = 0.1;
  // Nothing is drawn before this long, so work that ends sooner (a small
  // detector's check) leaves no line and no summary.
  double delay_s = 0;
  int width = 30;  // characters of the bar between [ and ]
};

class Progress final {
 public:
  explicit Progress(ProgressOptions options);
  // finish() if not done yet; while an exception unwinds, only ends a drawn
  // line (no summary), so the error message starts on a line of its own.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const noexcept { return enabled_; }
  void set_total(std::uint64_t total);
  // A short note after the label, e.g. the phase of a benchmark.
  void set_phase(std::string phase);
  // Work done so far (absolute) / more done. Thread-safe.
  void update(std::uint64_t done);
  void add(std::uint64_t n = 1);
  // Erases the drawn line, so a line written to the same terminal (stdout)
  // starts clean; an update draws it again (throttled as always).
  void clear();
  // Draws the last state, ends the line and writes the summary
  // "LABEL: DONE UNIT in TIME (RATE UNIT/s)". Once; later calls do nothing.
  // Nothing when no work was reported or the delay has not passed.
  void finish();

  // The line as drawn (without the leading carriage return) after `done`
  // units in `elapsed_s` seconds.
  std::string line(std::uint64_t done, double elapsed_s) const;
  std::string summary(std::uint64_t done, double elapsed_s) const;
  // Lines drawn so far (the throttling, for tests).
  std::uint64_t draws() const noexcept { return draws_; }

 private:
  double now() const;
  std::string bar_of(double fraction) const;
  void draw_locked(bool force);

  ProgressOptions o_;
  bool enabled_ = false;
  bool finished_ = false;
  bool drawn_ = false;    // a line is on the terminal (not yet ended)
  bool updated_ = false;  // update() or add() was called
  int uncaught_ = 0;      // std::uncaught_exceptions() at construction
  std::string phase_;
  std::uint64_t done_ = 0;
  double start_ = 0;
  double last_draw_ = -1e300;
  std::uint64_t draws_ = 0;
  std::uint64_t drawn_done_ = 0;  // done_ of the line on the terminal
  std::size_t last_width_ = 0;
  mutable std::mutex m_;
};

}  // namespace acheron::app

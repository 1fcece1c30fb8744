#include "Progress.hh"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>

#include <fmt/format.h>

namespace acheron::app {
namespace {

std::atomic<ProgressMode> g_progress_mode{ProgressMode::automatic};

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The spinner of open-ended work, one step per drawn line.
constexpr char kSpinner[] = {'|', '/', '-', '\\'};

}  // namespace

void set_progress_mode(ProgressMode mode) {
  g_progress_mode = mode;
}
ProgressMode progress_mode() {
  return g_progress_mode;
}

void add_progress_flags(CLI::App* cmd) {
  auto* on = cmd->add_flag_callback(
      "--progress", [] { set_progress_mode(ProgressMode::on); },
      "draw the progress line even when stderr is no terminal");
  cmd->add_flag_callback(
         "--no-progress", [] { set_progress_mode(ProgressMode::off); },
         "never draw the progress line")
      ->excludes(on);
}

std::string format_count(double value) {
  if (!std::isfinite(value) || value < 0) return "--";
  if (value < 1000) {
    return value == std::floor(value) ? fmt::format("{:.0f}", value) : fmt::format("{:.3g}", value);
  }
  static constexpr const char* kSuffix[] = {"k", "M", "G", "T"};
  int i = -1;
  while (value >= 1000 && i < 3) value /= 1000, ++i;
  return fmt::format("{:.3g}{}", value, kSuffix[i]);
}

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const auto s = static_cast<std::uint64_t>(std::ceil(seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

Progress::Progress(ProgressOptions options) : o_(std::move(options)) {
  ProgressMode mode = o_.mode == ProgressMode::automatic ? progress_mode() : o_.mode;
  if (mode == ProgressMode::automatic)
    mode = o_.out && isatty(fileno(o_.out)) ? ProgressMode::on : ProgressMode::off;
  enabled_ = mode == ProgressMode::on && o_.out != nullptr;
  start_ = now();
  uncaught_ = std::uncaught_exceptions();
}

Progress::~Progress() {
  if (std::uncaught_exceptions() > uncaught_) {
    // The work failed: end the line so the error starts on its own, but
    // claim no summary.
    std::lock_guard lock(m_);
    if (enabled_ && drawn_ && !finished_) std::fputc('\n', o_.out);
    finished_ = true;
    return;
  }
  finish();
}

double Progress::now() const {
  return o_.clock ? o_.clock() : steady_seconds();
}

void Progress::set_total(std::uint64_t total) {
  std::lock_guard lock(m_);
  o_.total = total;
}

void Progress::set_phase(std::string phase) {
  std::lock_guard lock(m_);
  phase_ = std::move(phase);
}

void Progress::update(std::uint64_t done) {
  std::lock_guard lock(m_);
  done_ = done;
  updated_ = true;
  draw_locked(o_.total > 0 && done_ >= o_.total);
}

void Progress::add(std::uint64_t n) {
  std::lock_guard lock(m_);
  done_ += n;
  updated_ = true;
  draw_locked(o_.total > 0 && done_ >= o_.total);
}

std::string Progress::line(std::uint64_t done, double elapsed_s) const {
  const double rate = elapsed_s > 0 ? double(done) / elapsed_s : -1;
  const std::string rate_text = fmt::format("{} {}/s", format_count(rate), o_.unit);
  std::string head = o_.label;
  if (!phase_.empty()) head += (head.empty() ? "" : " ") + phase_;
  if (o_.total == 0 && o_.duration_s > 0) {
    const double fraction = std::clamp(elapsed_s / o_.duration_s, 0.0, 1.0);
    return fmt::format("{} [{}] {} {} {:5.1f}%  {}  ETA {}", head, bar_of(fraction),
                       format_count(double(done)), o_.unit, std::floor(fraction * 1000) / 10,
                       rate_text, format_eta(std::max(0.0, o_.duration_s - elapsed_s)));
  }
  if (o_.total == 0) {
    const char spin = kSpinner[draws_ % sizeof kSpinner];
    return fmt::format("{} {} {} {}  {}  {}", spin, head, format_count(double(done)), o_.unit,
                       rate_text, format_eta(elapsed_s));
  }
  const double fraction = std::min(1.0, double(done) / double(o_.total));
  // Floored, so 100 % means all of it.
  const double percent = std::floor(fraction * 1000) / 10;
  const double eta = done >= o_.total ? 0 : rate > 0 ? double(o_.total - done) / rate : -1;
  return fmt::format("{} [{}] {}/{} {} {:5.1f}%  {}  ETA {}", head, bar_of(fraction), done,
                     o_.total, o_.unit, percent, rate_text, format_eta(eta));
}

std::string Progress::bar_of(double fraction) const {
  const int width = std::max(o_.width, 1);
  const int filled = static_cast<int>(std::floor(fraction * width));
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
  return bar;
}

std::string Progress::summary(std::uint64_t done, double elapsed_s) const {
  const double rate = elapsed_s > 0 ? double(done) / elapsed_s : -1;
  return fmt::format("{}: {} {} in {} ({} {}/s)", o_.label, done, o_.unit,
                     elapsed_s < 60 ? fmt::format("{:.2f}s", elapsed_s) : format_eta(elapsed_s),
                     format_count(rate), o_.unit);
}

void Progress::draw_locked(bool force) {
  if (!enabled_ || finished_) return;
  const double t = now();
  if (t - start_ < o_.delay_s) return;
  if (!force && t - last_draw_ < o_.redraw_interval_s) return;
  last_draw_ = t;
  std::string text = line(done_, t - start_);
  const std::size_t width = text.size();
  // Cover what a longer earlier line left.
  if (width < last_width_) text.append(last_width_ - width, ' ');
  last_width_ = width;
  std::fprintf(o_.out, "\r%s", text.c_str());
  std::fflush(o_.out);
  drawn_ = true;
  drawn_done_ = done_;
  ++draws_;
}

void Progress::clear() {
  std::lock_guard lock(m_);
  if (!enabled_ || !drawn_) return;
  std::fprintf(o_.out, "\r%s\r", std::string(last_width_, ' ').c_str());
  std::fflush(o_.out);
  drawn_ = false;
}

void Progress::finish() {
  std::lock_guard lock(m_);
  if (finished_) return;
  // Work never reported (a detector that needed no meshing) leaves no line.
  if (enabled_ && updated_ && now() - start_ >= o_.delay_s) {
    if (!drawn_ || drawn_done_ != done_) draw_locked(true);
    const double elapsed = now() - start_;
    std::fprintf(o_.out, "\n%s\n", summary(done_, elapsed).c_str());
    std::fflush(o_.out);
  }
  finished_ = true;
}

}  // namespace acheron::app

// `acheron help [COMMAND... | TOPIC]`: a command's help (as --help prints
// it), a guide from docs/ (compiled in), the list of guides, or every
// command path (`--list`, what the man pages are made from).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "Commands.hh"
#include "Docs.hh"

namespace acheron::app {
namespace {

const docs::Asset* find_guide(const std::string& topic) {
  const std::string file = topic.ends_with(".md") ? topic : topic + ".md";
  for (const auto& a : docs::assets())
    if (a.name == file) return &a;
  return nullptr;
}

// The first "# " line of a guide, without the "# ".
std::string_view title_of(std::string_view body) {
  std::size_t at = 0;
  while (at < body.size()) {
    const std::size_t end = std::min(body.find('\n', at), body.size());
    const std::string_view line = body.substr(at, end - at);
    if (line.starts_with("# ")) return line.substr(2);
    at = end + 1;
  }
  return {};
}

// The subcommand `name` of cmd, or nullptr (help itself is not a topic).
CLI::App* subcommand(CLI::App& cmd, const std::string& name) {
  if (name == "help") return nullptr;
  try {
    return cmd.get_subcommand(name);
  } catch (const CLI::OptionNotFound&) {
    return nullptr;
  }
}

void list_commands(const CLI::App& cmd, const std::string& path) {
  const auto subs = cmd.get_subcommands([](const CLI::App*) { return true; });
  if (!path.empty()) std::printf("%s\n", path.c_str());
  for (const CLI::App* sub : subs) {
    if (sub->get_name() == "help") continue;
    list_commands(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name());
  }
}

void print_topics() {
  std::printf("Guides (acheron help TOPIC):\n");
  for (const auto& a : docs::assets()) {
    std::string name(a.name.substr(0, a.name.size() - 3));
    std::printf("  %-14s %.*s\n", name.c_str(), static_cast<int>(title_of(a.body).size()),
                title_of(a.body).data());
  }
  std::printf("Commands: acheron help COMMAND [SUBCOMMAND...] (as acheron COMMAND --help)\n");
}

}  // namespace

void add_help_command(CLI::App& app, int* exit_code) {
  struct Options {
    std::vector<std::string> words;
    bool list = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "help", "help on a command (acheron help photon serve) or a guide (acheron help topics)");
  cmd->add_option("words", o->words, "a command path, a guide's name, or `topics`");
  cmd->add_flag("--list", o->list, "print every command path, one per line");
  cmd->callback([&app, o, exit_code] {
    *exit_code = kOk;
    if (o->list) {
      list_commands(app, "");
      return;
    }
    if (o->words.empty()) {
      std::fputs(app.help().c_str(), stdout);
      std::printf("\n");
      print_topics();
      return;
    }
    if (o->words.size() == 1 && o->words[0] == "topics") {
      print_topics();
      return;
    }
    // A guide by its name; a command word that is also a guide's name (broker,
    // cluster, daq, ...) gives the guide, which has the options' table too.
    if (o->words.size() == 1) {
      if (const auto* guide = find_guide(o->words[0])) {
        const bool is_command = subcommand(app, o->words[0]) != nullptr;
        std::printf("(the guide docs/%.*s", static_cast<int>(guide->name.size()),
                    guide->name.data());
        if (is_command) std::printf("; options: acheron %s --help", o->words[0].c_str());
        std::printf(")\n\n");
        std::fwrite(guide->body.data(), 1, guide->body.size(), stdout);
        return;
      }
    }
    CLI::App* at = &app;
    std::string prefix = app.get_name();
    for (const auto& w : o->words) {
      CLI::App* next = subcommand(*at, w);
      if (next == nullptr) {
        std::fprintf(stderr,
                     "acheron: no command or guide named '%s' (acheron help topics lists the "
                     "guides, acheron --help the commands)\n",
                     w.c_str());
        *exit_code = kUsage;
        return;
      }
      if (at != &app) prefix += " " + at->get_name();
      at = next;
    }
    std::fputs(at->help(prefix).c_str(), stdout);
  });
}

}  // namespace acheron::app

// Reading configuration files (TOML). Configuration structs themselves are
// plain data validated on construction; this is the separate IO layer that
// fills them, with errors that name the file, line and key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace acheron {

// A view of one TOML table with typed, checked accessors. Every error is a
// SetupError reading "FILE:LINE: key 'a.b' ... (why) what to do".
class TomlTable final {
 public:
  static TomlTable parse_file(const std::filesystem::path& path);
  static TomlTable parse_string(std::string_view text, std::string source = "<string>");

  // Typed values. T is bool, std::int64_t, double (integers accepted) or
  // std::string.
  template <class T>
  std::optional<T> find(std::string_view key) const;
  template <class T>
  T get(std::string_view key, T fallback) const {
    auto v = find<T>(key);
    return v ? *v : fallback;
  }
  template <class T>
  T require(std::string_view key) const;

  // Numeric arrays ([1, 2.5, 3]).
  std::optional<std::vector<double>> find_numbers(std::string_view key) const;
  // Arrays of numeric arrays ([[400, 1.33], [500, 1.34]]), rows of any length.
  std::optional<std::vector<std::vector<double>>> find_number_rows(std::string_view key) const;
  // Arrays of strings.
  std::optional<std::vector<std::string>> find_strings(std::string_view key) const;
  // Sub-tables and arrays of tables ([[x]]).
  std::optional<TomlTable> find_table(std::string_view key) const;
  std::vector<TomlTable> tables_in_array(std::string_view key) const;
  // Keys of this table, in file order.
  std::vector<std::string> keys() const;
  bool contains(std::string_view key) const;

  // Throws for any key not in allowed (catches typos in configuration files).
  void check_keys(std::initializer_list<std::string_view> allowed) const;

  // "FILE:LINE" of this table or of one of its keys.
  std::string where(std::string_view key = {}) const;
  // Dotted path of this table from the root ("detector.materials[2]").
  const std::string& path() const noexcept { return path_; }

 private:
  TomlTable(std::shared_ptr<const void> root, const toml::table* table, std::string source,
            std::string path);
  const toml::node* node(std::string_view key) const;
  std::string full_key(std::string_view key) const;
  [[noreturn]] void type_error(std::string_view key, std::string_view expected) const;

  std::shared_ptr<const void> root_;  // keeps the parsed document alive
  const toml::table* table_ = nullptr;
  std::string source_;
  std::string path_;
};

}  // namespace acheron

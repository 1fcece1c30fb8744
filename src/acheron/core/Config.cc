#include "acheron/core/Config.hh"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "acheron/core/Error.hh"

namespace acheron {
namespace {
std::string parse_message(const toml::parse_error& e, const std::string& source) {
  std::ostringstream os;
  os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
     << e.description() << " (not valid TOML) fix the file and try again";
  return os.str();
}
}  // namespace

TomlTable::TomlTable(std::shared_ptr<const void> root, const toml::table* table, std::string source,
                     std::string path)
    : root_(std::move(root)), table_(table), source_(std::move(source)), path_(std::move(path)) {}

TomlTable TomlTable::parse_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw SetupError("cannot open configuration file '" + path.string() +
                     "' (it does not exist or is not readable) check the path");
  }
  std::ostringstream os;
  os << in.rdbuf();
  return parse_string(os.str(), path.string());
}

TomlTable TomlTable::parse_string(std::string_view text, std::string source) {
  try {
    auto doc = std::make_shared<toml::table>(toml::parse(text, source));
    const toml::table* t = doc.get();
    return TomlTable(std::move(doc), t, std::move(source), "");
  } catch (const toml::parse_error& e) {
    throw SetupError(parse_message(e, source));
  }
}

const toml::node* TomlTable::node(std::string_view key) const {
  return table_->get(key);
}

std::string TomlTable::full_key(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

std::string TomlTable::where(std::string_view key) const {
  const toml::node* n = key.empty() ? static_cast<const toml::node*>(table_) : node(key);
  std::ostringstream os;
  os << source_;
  if (n && n->source().begin.line > 0) os << ":" << n->source().begin.line;
  return os.str();
}

void TomlTable::type_error(std::string_view key, std::string_view expected) const {
  throw SetupError(where(key) + ": key '" + full_key(key) + "' must be " + std::string(expected) +
                   " (found another type) correct its value");
}

bool TomlTable::contains(std::string_view key) const {
  return node(key) != nullptr;
}

template <>
std::optional<bool> TomlTable::find<bool>(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  if (auto v = n->value_exact<bool>()) return *v;
  type_error(key, "a boolean");
}

template <>
std::optional<std::int64_t> TomlTable::find<std::int64_t>(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  if (auto v = n->value_exact<std::int64_t>()) return *v;
  type_error(key, "an integer");
}

template <>
std::optional<double> TomlTable::find<double>(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  if (auto v = n->value_exact<double>()) return *v;
  if (auto v = n->value_exact<std::int64_t>()) return static_cast<double>(*v);
  type_error(key, "a number");
}

template <>
std::optional<std::string> TomlTable::find<std::string>(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  if (auto v = n->value_exact<std::string>()) return *v;
  type_error(key, "a string");
}

template <class T>
T TomlTable::require(std::string_view key) const {
  auto v = find<T>(key);
  if (!v) {
    throw SetupError(where() + ": key '" + full_key(key) +
                     "' is missing (it is required) add it to the file");
  }
  return *v;
}
template bool TomlTable::require<bool>(std::string_view) const;
template std::int64_t TomlTable::require<std::int64_t>(std::string_view) const;
template double TomlTable::require<double>(std::string_view) const;
template std::string TomlTable::require<std::string>(std::string_view) const;

std::optional<std::vector<double>> TomlTable::find_numbers(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  const toml::array* arr = n->as_array();
  if (!arr) type_error(key, "an array of numbers");
  std::vector<double> out;
  out.reserve(arr->size());
  for (const auto& e : *arr) {
    if (auto d = e.value_exact<double>()) {
      out.push_back(*d);
    } else if (auto i = e.value_exact<std::int64_t>()) {
      out.push_back(static_cast<double>(*i));
    } else {
      type_error(key, "an array of numbers");
    }
  }
  return out;
}

std::optional<std::vector<std::vector<double>>> TomlTable::find_number_rows(
    std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  const toml::array* arr = n->as_array();
  if (!arr) type_error(key, "an array of numeric arrays");
  std::vector<std::vector<double>> out;
  out.reserve(arr->size());
  for (const auto& row : *arr) {
    const toml::array* r = row.as_array();
    if (!r) type_error(key, "an array of numeric arrays");
    std::vector<double> values;
    values.reserve(r->size());
    for (const auto& e : *r) {
      if (auto d = e.value_exact<double>()) {
        values.push_back(*d);
      } else if (auto i = e.value_exact<std::int64_t>()) {
        values.push_back(static_cast<double>(*i));
      } else {
        type_error(key, "an array of numeric arrays");
      }
    }
    out.push_back(std::move(values));
  }
  return out;
}

std::optional<std::vector<std::string>> TomlTable::find_strings(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  const toml::array* arr = n->as_array();
  if (!arr) type_error(key, "an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *arr) {
    auto s = e.value_exact<std::string>();
    if (!s) type_error(key, "an array of strings");
    out.push_back(*s);
  }
  return out;
}

std::optional<TomlTable> TomlTable::find_table(std::string_view key) const {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  const toml::table* t = n->as_table();
  if (!t) type_error(key, "a table");
  return TomlTable(root_, t, source_, full_key(key));
}

std::vector<TomlTable> TomlTable::tables_in_array(std::string_view key) const {
  std::vector<TomlTable> out;
  const toml::node* n = node(key);
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr) type_error(key, "an array of tables");
  std::size_t i = 0;
  for (const auto& e : *arr) {
    const toml::table* t = e.as_table();
    if (!t) type_error(key, "an array of tables");
    out.push_back(TomlTable(root_, t, source_, full_key(key) + "[" + std::to_string(i++) + "]"));
  }
  return out;
}

std::vector<std::string> TomlTable::keys() const {
  // toml::table is an ordered map (alphabetical); sort by where each key was
  // defined to give file order.
  std::vector<const toml::key*> ks;
  for (const auto& [k, v] : *table_) ks.push_back(&k);
  std::stable_sort(ks.begin(), ks.end(), [](const toml::key* a, const toml::key* b) {
    const auto& pa = a->source().begin;
    const auto& pb = b->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  std::vector<std::string> out;
  for (const toml::key* k : ks) out.emplace_back(k->str());
  return out;
}

void TomlTable::check_keys(std::initializer_list<std::string_view> allowed) const {
  for (const auto& [k, v] : *table_) {
    bool ok = false;
    for (auto a : allowed) ok = ok || (k.str() == a);
    if (!ok) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw SetupError(where(k.str()) + ": unknown key '" + full_key(k.str()) +
                       "' (allowed here: " + list + ") check its spelling");
    }
  }
}

}  // namespace acheron

// Mesh file readers: STL (binary and ASCII), OBJ, PLY (ASCII and binary
// little-endian).
#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

#include "acheron/core/Error.hh"
#include "acheron/optics/Geometry.hh"

namespace acheron::optics {
namespace {

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw SetupError("mesh '" + name + "': " + what + " check or re-export the file");
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// STL stores unindexed triangles; vertices are merged later by Geometry.
Mesh parse_stl(const std::string& b, const std::string& name) {
  Mesh m;
  if (b.size() >= 84) {
    std::uint32_t n;
    std::memcpy(&n, b.data() + 80, 4);
    if (b.size() == 84 + 50ull * n) {
      m.vertices.reserve(3ull * n);
      for (std::uint32_t i = 0; i < n; ++i) {
        const char* p = b.data() + 84 + 50ull * i + 12;
        for (int k = 0; k < 3; ++k) {
          float xyz[3];
          std::memcpy(xyz, p + 12 * k, 12);
          m.vertices.push_back({xyz[0], xyz[1], xyz[2]});
        }
        m.triangles.push_back({3 * i, 3 * i + 1, 3 * i + 2});
      }
      return m;
    }
  }
  if (b.compare(0, 5, "solid") != 0) bad(name, "not a binary STL (size mismatch) nor ASCII STL");
  std::istringstream in(b);
  std::string word;
  while (in >> word) {
    if (word == "vertex") {
      Vec3 v;
      if (!(in >> v.x >> v.y >> v.z)) bad(name, "unreadable vertex in ASCII STL");
      m.vertices.push_back(v);
    } else if (word == "endloop") {
      if (m.vertices.size() % 3 != 0) bad(name, "facet without exactly 3 vertices");
      auto i = static_cast<std::uint32_t>(m.vertices.size() - 3);
      m.triangles.push_back({i, i + 1, i + 2});
    }
  }
  if (m.vertices.size() != 3 * m.triangles.size()) bad(name, "facet without exactly 3 vertices");
  return m;
}

Mesh parse_obj(const std::string& b, const std::string& name) {
  Mesh m;
  std::istringstream in(b);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string tag;
    if (!(ls >> tag)) continue;
    if (tag == "v") {
      Vec3 v;
      if (!(ls >> v.x >> v.y >> v.z)) bad(name, "line " + std::to_string(line_no) + ": bad vertex");
      m.vertices.push_back(v);
    } else if (tag == "f") {
      std::vector<std::uint32_t> idx;
      std::string tok;
      while (ls >> tok) {
        long long i = 0;
        try {
          i = std::stoll(tok.substr(0, tok.find('/')));
        } catch (const std::exception&) {
          bad(name, "line " + std::to_string(line_no) + ": bad face index '" + tok + "'");
        }
        // OBJ indices are 1-based; negative ones count back from the last vertex.
        long long resolved = i > 0 ? i - 1 : static_cast<long long>(m.vertices.size()) + i;
        if (i == 0 || resolved < 0 || resolved >= static_cast<long long>(m.vertices.size())) {
          bad(name, "line " + std::to_string(line_no) + ": face index out of range");
        }
        idx.push_back(static_cast<std::uint32_t>(resolved));
      }
      if (idx.size() < 3) bad(name, "line " + std::to_string(line_no) + ": face with < 3 vertices");
      for (std::size_t k = 1; k + 1 < idx.size(); ++k)
        m.triangles.push_back({idx[0], idx[k], idx[k + 1]});
    }
  }
  return m;
}

std::size_t ply_size(const std::string& t) {
  if (t == "char" || t == "uchar" || t == "int8" || t == "uint8") return 1;
  if (t == "short" || t == "ushort" || t == "int16" || t == "uint16") return 2;
  if (t == "int" || t == "uint" || t == "int32" || t == "uint32" || t == "float" || t == "float32")
    return 4;
  if (t == "double" || t == "float64") return 8;
  return 0;
}

double ply_read(const char* p, const std::string& t) {
  switch (ply_size(t)) {
    case 1:
      return (t == "char" || t == "int8") ? double(*reinterpret_cast<const std::int8_t*>(p))
                                          : double(*reinterpret_cast<const std::uint8_t*>(p));
    case 2: {
      std::uint16_t u;
      std::memcpy(&u, p, 2);
      return (t == "short" || t == "int16") ? double(std::int16_t(u)) : double(u);
    }
    case 4: {
      std::uint32_t u;
      std::memcpy(&u, p, 4);
      if (t == "float" || t == "float32") {
        float f;
        std::memcpy(&f, &u, 4);
        return f;
      }
      return (t == "int" || t == "int32") ? double(std::int32_t(u)) : double(u);
    }
    default: {
      double d;
      std::memcpy(&d, p, 8);
      return d;
    }
  }
}

Mesh parse_ply(const std::string& b, const std::string& name) {
  struct Property {
    std::string name, type, count_type;  // count_type set for lists
  };
  struct Element {
    std::string name;
    std::size_t count = 0;
    std::vector<Property> props;
  };
  std::size_t header_end = b.find("end_header");
  if (b.compare(0, 3, "ply") != 0 || header_end == std::string::npos) bad(name, "not a PLY file");
  std::istringstream hs(b.substr(0, header_end));
  std::string line, format;
  std::vector<Element> elements;
  while (std::getline(hs, line)) {
    std::istringstream ls(line);
    std::string w;
    ls >> w;
    if (w == "format") {
      ls >> format;
    } else if (w == "element") {
      Element e;
      ls >> e.name >> e.count;
      elements.push_back(e);
    } else if (w == "property") {
      if (elements.empty()) bad(name, "property before element");
      Property p;
      ls >> p.type;
      if (p.type == "list") {
        ls >> p.count_type >> p.type;
        if (!ply_size(p.count_type)) bad(name, "unknown list count type");
      }
      ls >> p.name;
      if (!ply_size(p.type)) bad(name, "unknown property type '" + p.type + "'");
      elements.back().props.push_back(p);
    }
  }
  if (format != "ascii" && format != "binary_little_endian") {
    bad(name, "unsupported PLY format '" + format + "' (ascii or binary_little_endian)");
  }
  std::size_t pos = b.find('\n', header_end);
  if (pos == std::string::npos) bad(name, "truncated after header");
  ++pos;
  Mesh m;
  std::istringstream ascii(format == "ascii" ? b.substr(pos) : std::string());
  auto next_value = [&](const std::string& type) -> double {
    if (format == "ascii") {
      double v;
      if (!(ascii >> v)) bad(name, "truncated or unreadable ASCII data");
      return v;
    }
    const std::size_t n = ply_size(type);
    if (b.size() - pos < n) bad(name, "truncated binary data");
    double v = ply_read(b.data() + pos, type);
    pos += n;
    return v;
  };
  for (const Element& e : elements) {
    for (std::size_t i = 0; i < e.count; ++i) {
      Vec3 v;
      for (const Property& p : e.props) {
        if (!p.count_type.empty()) {
          const double count = next_value(p.count_type);
          if (count < 0 || count > 1024) bad(name, "implausible list length");
          std::vector<std::uint32_t> idx;
          for (int k = 0; k < static_cast<int>(count); ++k) {
            const double x = next_value(p.type);
            if (e.name == "face" && (x < 0 || x >= 4294967295.0)) bad(name, "bad face index");
            idx.push_back(static_cast<std::uint32_t>(x));
          }
          if (e.name == "face" && (p.name == "vertex_indices" || p.name == "vertex_index")) {
            if (idx.size() < 3) bad(name, "face with < 3 vertices");
            for (std::size_t k = 1; k + 1 < idx.size(); ++k) {
              m.triangles.push_back({idx[0], idx[k], idx[k + 1]});
            }
          }
        } else {
          const double x = next_value(p.type);
          if (e.name == "vertex") {
            if (p.name == "x") v.x = static_cast<float>(x);
            if (p.name == "y") v.y = static_cast<float>(x);
            if (p.name == "z") v.z = static_cast<float>(x);
          }
        }
      }
      if (e.name == "vertex") m.vertices.push_back(v);
    }
  }
  for (const auto& t : m.triangles) {
    for (auto idx : t) {
      if (idx >= m.vertices.size()) bad(name, "face index out of range");
    }
  }
  return m;
}

}  // namespace

Mesh parse_mesh(const std::string& bytes, const std::string& format, const std::string& name) {
  const std::string f = lower(format);
  Mesh m;
  if (f == "stl") {
    m = parse_stl(bytes, name);
  } else if (f == "obj") {
    m = parse_obj(bytes, name);
  } else if (f == "ply") {
    m = parse_ply(bytes, name);
  } else {
    bad(name, "unknown mesh format '" + format + "' (expected stl, obj or ply)");
  }
  if (m.triangles.empty()) bad(name, "no triangles");
  return m;
}

Mesh load_mesh(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw SetupError("cannot open mesh file '" + path.string() +
                     "' (missing or unreadable) check the path");
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string ext = path.extension().string();
  if (!ext.empty()) ext = ext.substr(1);
  return parse_mesh(bytes, ext, path.string());
}

}  // namespace acheron::optics

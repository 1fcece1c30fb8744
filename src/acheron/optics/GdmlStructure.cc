// GDML reader, part 4: <structure> (volumes, assemblies, physvols, file
// modules, skin and border surfaces); the flattening of the volume tree is
// in GdmlFlatten.cc.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <unordered_map>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"
#include "acheron/optics/GdmlInternal.hh"

namespace acheron::optics::gdml {
namespace {

std::string surface_refusal(const SurfaceDef& def) {
  return fmt::format("uses the optical surface '{}' ({}) that {}", def.name, def.where,
                     def.refusal);
}

const SurfaceDef& usable_surface(const Scope& s, pugi::xml_node node) {
  const std::string ref = s.text(node, "surfaceproperty");
  const auto it = s.optical_surfaces.find(ref);
  if (it == s.optical_surfaces.end()) {
    s.file.fail(node, fmt::format("refers to the unknown optical surface '{}' (surfaceproperty "
                                  "names an <opticalsurface> in <solids>) define it or fix the "
                                  "name",
                                  ref));
  }
  if (!it->second->input) s.file.fail(node, surface_refusal(*it->second));
  return *it->second;
}

}  // namespace

void Scope::read_structure(pugi::xml_node section) {
  check_children(section, {"volume", "assembly", "skinsurface", "bordersurface", "loop"},
                 "<structure>");
  for (pugi::xml_node n : section.children()) {
    if (n.type() != pugi::node_element) continue;
    const std::string_view tag = n.name();
    if (tag == "volume" || tag == "assembly") {
      read_volume(n, tag == "assembly");
    } else if (tag == "loop") {
      file.fail(n,
                "is not supported (loops generate volumes from variables) write out the "
                "volumes it would generate");
    } else if (tag == "skinsurface") {
      check_children(n, {"volumeref"}, "<skinsurface>");
      const SurfaceDef& surface = usable_surface(*this, n);
      const pugi::xml_node ref = n.child("volumeref");
      if (!ref) file.fail(n, "has no <volumeref ref=.../> (the volume it covers) add it");
      const std::string vname = text(ref, "ref");
      const auto it = volumes.find(vname);
      if (it == volumes.end() || it->second->assembly) {
        file.fail(ref, fmt::format("refers to the unknown volume '{}' (a skin surface covers a "
                                   "<volume> defined before it) fix the name",
                                   vname));
      }
      if (it->second->skin) {
        file.fail(n, fmt::format("is a second skin surface on volume '{}', which already has "
                                 "'{}' (a volume has one skin) remove one",
                                 vname, it->second->skin->name));
      }
      it->second->skin = &surface;
      text(n, "name");
    } else {  // bordersurface
      check_children(n, {"physvolref"}, "<bordersurface>");
      BorderSurface b;
      b.name = text(n, "name");
      b.where = file.where(n);
      b.surface = &usable_surface(*this, n);
      std::vector<const PhysVol*> pvs;
      for (pugi::xml_node r : n.children("physvolref")) {
        const std::string pv = text(r, "ref");
        const auto it = physvols.find(pv);
        if (it == physvols.end()) {
          file.fail(r, fmt::format("refers to the unknown physvol '{}' (a border surface names "
                                   "two <physvol>s placed before it) fix the name",
                                   pv));
        }
        pvs.push_back(it->second);
      }
      if (pvs.size() != 2) {
        file.fail(n, fmt::format("has {} <physvolref> children (a border surface lies between "
                                 "exactly two physvols) give two",
                                 pvs.size()));
      }
      b.first = pvs[0];
      b.second = pvs[1];
      reader.borders.push_back(std::move(b));
    }
  }
}

void Scope::read_volume(pugi::xml_node n, bool assembly) {
  if (assembly) {
    check_children(n, {"physvol"}, "<assembly>");
  } else {
    check_children(n,
                   {"materialref", "solidref", "physvol", "auxiliary", "replicavol", "divisionvol",
                    "paramvol", "loop"},
                   "<volume>");
    for (const char* tag : {"replicavol", "divisionvol", "paramvol", "loop"}) {
      if (pugi::xml_node c = n.child(tag)) {
        file.fail(c,
                  "is not supported (replicated, divided and parameterised placements are "
                  "not read) write the placements out as physvols");
      }
    }
  }
  Volume v;
  v.name = text(n, "name");
  v.where = file.where(n);
  v.assembly = assembly;
  if (!assembly) {
    const pugi::xml_node mref = n.child("materialref");
    const pugi::xml_node sref = n.child("solidref");
    if (!mref)
      file.fail(n, "has no <materialref ref=.../> (every volume is made of a material) add it");
    if (!sref) file.fail(n, "has no <solidref ref=.../> (every volume has a shape) add it");
    v.material = &material(mref, text(mref, "ref"));
    v.solid = solid(sref, text(sref, "ref"));
    for (pugi::xml_node aux : n.children("auxiliary")) {
      if (std::string_view(aux.attribute("auxtype").value()) == "SensDet") {
        v.sensitive = true;
        v.sensdet = aux.attribute("auxvalue").value();
      }
    }
    if (reader.pmt_pattern && reader.pmt_pattern->full_match(v.name)) v.sensitive = true;
  }
  claim(volume_names, n, v.name, "volume");
  Volume* stored = reader.add_volume(std::move(v));
  for (pugi::xml_node p : n.children("physvol")) {
    stored->daughters.push_back(read_physvol(p, stored->name));
  }
  volumes[stored->name] = stored;
}

const PhysVol* Scope::read_physvol(pugi::xml_node n, const std::string& mother) {
  check_children(n,
                 {"volumeref", "file", "position", "positionref", "rotation", "rotationref",
                  "scale", "scaleref"},
                 "<physvol>");
  PhysVol p;
  p.where = file.where(n);
  if (pugi::xml_node ref = n.child("volumeref")) {
    p.volume = &volume(ref, text(ref, "ref"));
  } else if (pugi::xml_node f = n.child("file")) {
    const fs::path sub = file.path().parent_path() / fs::path(text(f, "name"));
    Scope& module = reader.load(sub, file.where(f));
    if (f.attribute("volname")) {
      const std::string vname = f.attribute("volname").value();
      const auto it = module.volumes.find(vname);
      if (it == module.volumes.end()) {
        file.fail(f, fmt::format("names volname '{}', which {} does not define (volname is a "
                                 "volume of the included file) fix the name",
                                 vname, module.file.display()));
      }
      p.volume = it->second;
    } else {
      if (!module.world) {
        file.fail(f, fmt::format("includes {}, which has no <setup> world (without volname the "
                                 "included file's world volume is placed) add volname or a setup",
                                 module.file.display()));
      }
      p.volume = module.world;
    }
  } else {
    file.fail(n,
              "has neither <volumeref ref=.../> nor <file name=.../> (a physvol places a "
              "volume) add one");
  }
  if (p.volume->name == mother) {
    file.fail(n, "places its own mother volume (a volume cannot contain itself) fix the ref");
  }
  const V3 position = position_child(n, "position", "positionref").value_or(V3{});
  const V3 rotation = rotation_child(n, "rotation", "rotationref").value_or(V3{});
  const V3 scale = scale_child(n, "scale", "scaleref").value_or(V3{1, 1, 1});
  if (scale.x == 0 || scale.y == 0 || scale.z == 0) {
    file.fail(n, "has a zero scale factor (the volume would be flat) fix the scale");
  }
  p.transform = gdml_transform(position, rotation, scale);
  p.name = has(n, "name") ? std::string(n.attribute("name").value()) : p.volume->name + "_PV";
  if (has(n, "copynumber")) {
    p.has_copynumber = true;
    p.copynumber = integer(n, "copynumber", 0);
  }
  const PhysVol* stored = reader.add_physvol(std::move(p));
  physvols.emplace(stored->name, stored);  // Geant4's store lookup finds the first
  return stored;
}
}  // namespace acheron::optics::gdml

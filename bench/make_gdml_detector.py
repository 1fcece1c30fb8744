#!/usr/bin/env python3
"""Writes a GDML water Cherenkov detector of N PMTs as Geant4's
G4GDMLParser::Write lays files out (names with 0x... suffixes, one physvol
per PMT with its own position and rotation), for measuring how long the
GDML reader takes on a detector of Chroma's size:

    bench/make_gdml_detector.py --pmts 29000 --out /tmp/det29k.gdml
    /usr/bin/time -v acheron detector info /tmp/det29k.gdml
    acheron photon bench --detector /tmp/det29k.gdml

Each PMT is a 10-inch bulb: a glass envelope (an ellipsoid of semi-axes
127 x 127 x 95 mm united with a 42 mm neck tube) holding a vacuum volume of
the same shape 3 mm smaller (sensitive; its skin surface is the
photocathode with a bialkali-like EFFICIENCY). The PMTs face the centre of a
water sphere at 30 % coverage inside a steel tank with a partly specular
liner. Needs only the standard library.
"""

import argparse
import math
import sys


def fibonacci_sphere(n):
    golden = math.pi * (3 - math.sqrt(5))
    for i in range(n):
        z = 1 - 2 * (i + 0.5) / n
        r = math.sqrt(max(0.0, 1 - z * z))
        phi = golden * i
        yield r * math.cos(phi), r * math.sin(phi), z


def rotation_facing_centre(x, y, z):
    """GDML rotation angles (deg) whose placement turns the PMT's +z to
    -(x, y, z): Geant4 places with the inverse of Rz*Ry*Rx, so the angles of
    the frame rotation that maps -r to +z are written."""
    # Frame rotation R (applied as R^-1 to the solid) with R*(-r) = +z:
    # rotate about x by a, then about y by b.
    dx, dy, dz = -x, -y, -z
    a = math.atan2(dy, dz)  # Rx(a) brings (dx, dy, dz) into the x-z plane
    dz2 = math.hypot(dy, dz)
    b = math.atan2(-dx, dz2)  # Ry(b) brings it onto +z
    return math.degrees(a), math.degrees(b), 0.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pmts", type=int, default=29000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    n = args.pmts
    a = 127.0
    r_array = a * math.sqrt(n / (4 * 0.30))
    r_tank = r_array + 300
    tag = lambda i: f"0x{0x55d0c0000000 + 0x40 * i:x}"
    out = []
    w = out.append
    w('<?xml version="1.0" encoding="UTF-8" standalone="no" ?>')
    w('<gdml xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xsi:noNamespaceSchemaLocation="http://service-spi.web.cern.ch/service-spi/app/releases/'
      'GDML/schema/gdml.xsd">')
    w("")
    w("  <define>")
    w('    <matrix coldim="2" name="RINDEX0x1" values="1.9*eV 1.333 2.5*eV 1.336 3.1*eV 1.341 '
      '4.1*eV 1.352"/>')
    w('    <matrix coldim="2" name="ABSLENGTH0x2" values="1.9*eV 20000*mm 2.5*eV 60000*mm '
      '3.1*eV 40000*mm 4.1*eV 10000*mm"/>')
    w('    <matrix coldim="2" name="RAYLEIGH0x3" values="1.9*eV 300000*mm 3.1*eV 60000*mm '
      '4.1*eV 20000*mm"/>')
    w('    <matrix coldim="2" name="RINDEX0x4" values="1.9*eV 1.47 3.1*eV 1.49 4.1*eV 1.51"/>')
    w('    <matrix coldim="2" name="RINDEX0x5" values="1.9*eV 1.0 4.1*eV 1.0"/>')
    w('    <matrix coldim="2" name="EFFICIENCY0x6" values="1.9*eV 0.02 2.5*eV 0.15 '
      '3.1*eV 0.25 4.1*eV 0.1"/>')
    w('    <matrix coldim="2" name="REFLECTIVITY0x7" values="1.9*eV 0 4.1*eV 0"/>')
    w('    <matrix coldim="2" name="REFLECTIVITY0x8" values="1.9*eV 0.3 4.1*eV 0.3"/>')
    w("  </define>")
    w("")
    w("  <materials>")
    for name, props in (("Water0x10", [("RINDEX", "RINDEX0x1"), ("ABSLENGTH", "ABSLENGTH0x2"),
                                       ("RAYLEIGH", "RAYLEIGH0x3")]),
                        ("Glass0x11", [("RINDEX", "RINDEX0x4")]),
                        ("Vacuum0x12", [("RINDEX", "RINDEX0x5")])):
        w(f'    <material name="{name}" state="solid">')
        for p, ref in props:
            w(f'      <property name="{p}" ref="{ref}"/>')
        w('      <D unit="g/cm3" value="1"/>')
        w('      <fraction n="1" ref="G4_WATER"/>')
        w("    </material>")
    w('    <material name="Steel0x13" state="solid"><D unit="g/cm3" value="7.9"/>'
      '<fraction n="1" ref="G4_Fe"/></material>')
    w("  </materials>")
    w("")
    w("  <solids>")
    w(f'    <box lunit="mm" name="World0x20" x="{2 * r_tank + 1000:.1f}" '
      f'y="{2 * r_tank + 1000:.1f}" z="{2 * r_tank + 1000:.1f}"/>')
    w(f'    <orb lunit="mm" name="Tank0x21" r="{r_tank + 20:.1f}"/>')
    w(f'    <orb lunit="mm" name="WaterBall0x22" r="{r_tank:.1f}"/>')
    for pre, shrink in (("Glass", 0.0), ("Vac", 3.0)):
        w(f'    <ellipsoid ax="{a - shrink}" by="{a - shrink}" cz="{95 - shrink}" lunit="mm" '
          f'name="{pre}Bulb0x30" zcut1="-{95 - shrink}" zcut2="{95 - shrink}"/>')
        w(f'    <tube aunit="deg" deltaphi="360" lunit="mm" name="{pre}Neck0x31" '
          f'rmax="{42 - shrink}" rmin="0" startphi="0" z="{180 - 2 * shrink}"/>')
        w(f'    <union name="{pre}Pmt0x32"><first ref="{pre}Bulb0x30"/>'
          f'<second ref="{pre}Neck0x31"/><position name="{pre}Shift0x33" unit="mm" x="0" y="0" '
          f'z="-{100 - shrink}"/></union>')
    w('    <opticalsurface finish="0" model="0" name="Cathode0x40" type="0" value="0">')
    w('      <property name="EFFICIENCY" ref="EFFICIENCY0x6"/>')
    w('      <property name="REFLECTIVITY" ref="REFLECTIVITY0x7"/>')
    w("    </opticalsurface>")
    w('    <opticalsurface finish="0" model="1" name="Liner0x41" type="0" value="0">')
    w('      <property name="REFLECTIVITY" ref="REFLECTIVITY0x8"/>')
    w("    </opticalsurface>")
    w("  </solids>")
    w("")
    w("  <structure>")
    w('    <volume name="PmtVacuum0x50"><materialref ref="Vacuum0x12"/>'
      '<solidref ref="VacPmt0x32"/><auxiliary auxtype="SensDet" auxvalue="PMT"/></volume>')
    w('    <volume name="PmtGlass0x51"><materialref ref="Glass0x11"/>'
      '<solidref ref="GlassPmt0x32"/>')
    w('      <physvol name="PmtVacuum_PV0x52"><volumeref ref="PmtVacuum0x50"/></physvol>')
    w("    </volume>")
    w('    <volume name="WaterVol0x53"><materialref ref="Water0x10"/>'
      '<solidref ref="WaterBall0x22"/>')
    for i, (x, y, z) in enumerate(fibonacci_sphere(n)):
        rx, ry, rz = rotation_facing_centre(x, y, z)
        w(f'      <physvol copynumber="{i}" name="Pmt_PV{tag(i)}">')
        w(f'        <volumeref ref="PmtGlass0x51"/>')
        w(f'        <position name="Pmt_PV{tag(i)}_pos" unit="mm" x="{x * r_array:.4f}" '
          f'y="{y * r_array:.4f}" z="{z * r_array:.4f}"/>')
        w(f'        <rotation name="Pmt_PV{tag(i)}_rot" unit="deg" x="{rx:.6f}" y="{ry:.6f}" '
          f'z="{rz:.6f}"/>')
        w("      </physvol>")
    w("    </volume>")
    w('    <volume name="TankVol0x54"><materialref ref="Steel0x13"/><solidref ref="Tank0x21"/>')
    w('      <physvol name="Water_PV0x55"><volumeref ref="WaterVol0x53"/></physvol>')
    w("    </volume>")
    w('    <volume name="World0x56"><materialref ref="Steel0x13"/><solidref ref="World0x20"/>')
    w('      <physvol name="Tank_PV0x57"><volumeref ref="TankVol0x54"/></physvol>')
    w("    </volume>")
    w('    <skinsurface name="CathodeSkin0x60" surfaceproperty="Cathode0x40">'
      '<volumeref ref="PmtVacuum0x50"/></skinsurface>')
    w('    <bordersurface name="LinerBorder0x61" surfaceproperty="Liner0x41">'
      '<physvolref ref="Water_PV0x55"/><physvolref ref="Tank_PV0x57"/></bordersurface>')
    w("  </structure>")
    w("")
    w('  <setup name="Default" version="1.0"><world ref="World0x56"/></setup>')
    w("</gdml>")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"{args.out}: {n} PMTs, {len(out)} lines, array radius {r_array:.0f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())

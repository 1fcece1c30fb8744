// Reflectance and transmittance of a thin absorbing film between two
// dielectrics (photon-physics.md §7 COMPLEX model: Chroma's port of the
// RAT/GLG4 PMT optical model by P. Jones). A minimal complex type is used
// because std::complex is not available in device code.
#pragma once

#include <cmath>

#include "acheron/optics/Macros.hh"
#include "acheron/optics/Random.hh"

namespace acheron::optics {

struct Complex {
  float re = 0;
  float im = 0;
};

ACHERON_FUNCTION ACHERON_FORCEINLINE Complex operator+(Complex a, Complex b) {
  return {a.re + b.re, a.im + b.im};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Complex operator-(Complex a, Complex b) {
  return {a.re - b.re, a.im - b.im};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Complex operator*(Complex a, Complex b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Complex operator*(float s, Complex a) {
  return {s * a.re, s * a.im};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE Complex operator/(Complex a, Complex b) {
  const float d = b.re * b.re + b.im * b.im;
  return {(a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d};
}
ACHERON_FUNCTION ACHERON_FORCEINLINE float abs2(Complex a) {
  return a.re * a.re + a.im * a.im;
}

// Principal square root (real part >= 0; imaginary part has the sign of
// z.im, so +0 imaginary parts give the upper branch).
ACHERON_FUNCTION inline Complex csqrt(Complex z) {
  const float r = std::hypot(z.re, z.im);
  if (r == 0.0f) return {0.0f, 0.0f};
  if (z.re >= 0.0f) {
    const float t = std::sqrt(0.5f * (r + z.re));
    return {t, z.im / (2.0f * t)};
  }
  const float t = std::sqrt(0.5f * (r - z.re));
  return {std::fabs(z.im) / (2.0f * t), std::copysign(t, z.im)};
}

// Power reflectance R and transmittance T for s and p polarization.
struct ThinFilmResult {
  float r_s = 0, t_s = 0;
  float r_p = 0, t_p = 0;
};

// Three layers: incident medium n1 (real), film n2 = eta + i k of thickness
// d (nm), far medium n3 (real); cos1 = cosine of the incidence angle;
// wavelength in nm. The film and far-medium cosine products are taken as
// principal roots, n2 c2 = sqrt(n2^2 - n1^2 s1^2) and n3 c3 =
// sqrt(n3^2 - n1^2 s1^2), so their imaginary parts are >= 0: the waves decay
// into the film and beyond the critical angle of the far medium. With
// beta = (2 pi d / lambda) n2 c2 = (u + i v) delta and E = exp(2 i beta),
//   R = |r12 + r23 E|^2 / |1 + r12 r23 E|^2,
//   T = Re(n3 c3)/(n1 c1) |t12 t23|^2 exp(-2 v delta) / |1 + r12 r23 E|^2,
// which is photon-physics.md §7's modulus-and-phase form with numerator and
// denominator divided by exp(2 v delta) (so no exponential can overflow).
ACHERON_FUNCTION inline ThinFilmResult thin_film(float n1, Complex n2, float n3, float cos1,
                                                 float thickness, float wavelength) {
  ThinFilmResult out;
  const float n1c1 = n1 * cos1;
  if (!(n1c1 > 1e-12f)) {  // grazing: everything is reflected
    out.r_s = out.r_p = 1.0f;
    return out;
  }
  const float sin2 = std::fmax(0.0f, 1.0f - cos1 * cos1);
  const float k2 = n1 * n1 * sin2;  // tangential wave number squared, (n1 s1)^2
  const Complex w = csqrt(n2 * n2 - Complex{k2, 0.0f});   // n2 c2
  const Complex w3 = csqrt(Complex{n3 * n3 - k2, 0.0f});  // n3 c3
  const Complex c1{cos1, 0.0f};
  const Complex c2 = w / n2;
  const Complex c3 = (1.0f / n3) * w3;
  const Complex n1c{n1, 0.0f};
  const Complex n3c{n3, 0.0f};
  const Complex two_n1c1{2.0f * n1c1, 0.0f};
  const Complex n1c1c{n1c1, 0.0f};

  const float delta = kTwoPi * thickness / wavelength;
  const float decay = std::exp(-2.0f * w.im * delta);
  const float phase = 2.0f * w.re * delta;
  const Complex e{decay * std::cos(phase), decay * std::sin(phase)};
  const float t_factor = w3.re / n1c1;

  auto combine = [&](Complex r12, Complex r23, Complex t12, Complex t23, float& r, float& t) {
    const Complex den = Complex{1.0f, 0.0f} + r12 * r23 * e;
    const float den2 = abs2(den);
    r = abs2(r12 + r23 * e) / den2;
    t = t_factor * abs2(t12 * t23) * decay / den2;
  };

  // s polarization
  combine((n1c1c - w) / (n1c1c + w), (w - w3) / (w + w3), two_n1c1 / (n1c1c + w),
          (2.0f * w) / (w + w3), out.r_s, out.t_s);
  // p polarization
  const Complex p12 = n2 * c1 + n1c * c2;
  const Complex p23 = n3c * c2 + n2 * c3;
  combine((n2 * c1 - n1c * c2) / p12, (n3c * c2 - n2 * c3) / p23, two_n1c1 / p12, (2.0f * w) / p23,
          out.r_p, out.t_p);
  return out;
}

}  // namespace acheron::optics

// Internal to the optics tables (OpticsTables.cc, OpticsTablesChecks.cc):
// the load-time checks of properties, CDFs and time profiles the tables'
// constructor runs. Not for clients.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/optics/OpticsTables.hh"

namespace acheron::optics::tables_check {

// Tolerance of the load-time checks on probability sums and CDF ends
// (photon-physics.md §4).
inline constexpr double kTolerance = 1e-6;

std::string owner_label(std::string_view kind, const std::string& name, std::size_t index);
std::string where(const Property& p, double x, std::string_view x_unit);
void check_shape(const Property& p, const std::string& owner, std::string_view name,
                 std::string_view x_unit);
void require_set(const Property& p, const std::string& owner, std::string_view name,
                 std::string_view why);
void for_each_value(const Property& p, const std::function<void(double, double)>& check);
void check_positive_length(const Property& p, const std::string& owner, std::string_view name);
void check_probability(const Property& p, const std::string& owner, std::string_view name);
void check_cdf(const Property& p, const std::string& owner, std::string_view name,
               std::string_view x_unit);
std::vector<double> tidy_cdf(std::vector<double> cdf);
std::vector<double> on_wavelength_grid(const Property& p);
void check_time_profile(const TimeProfile& p, const std::string& owner);
void check_sum(const std::vector<const std::vector<double>*>& tables, const std::string& owner,
               std::string_view names, std::string_view model);

}  // namespace acheron::optics::tables_check

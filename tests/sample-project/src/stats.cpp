#include "sample/stats.hpp"
#include "sample/shapes.hpp"
#include <numeric>

double mean(const std::vector<double> &v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

extern "C" double stats_mean_of_areas() { return mean(shape_areas()); }

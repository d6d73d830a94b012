// The mirror-descent geometry test (Pogodin et al., ICLR 2024): under the potential that training
// followed, the change of the weights in dual coordinates is close to Gaussian.
#pragma once

#include <string>
#include <vector>

namespace dalesim {

struct GeometryScore {
  std::string potential;  // "p=1.5", "p=2", "p=3", "negentropy"
  double dcdf = 0;        // sum |F_emp(z) - Phi(z)| dz over [-5, 5] of the standardised dual change
};

// Scores every candidate potential on the change from w0 to wt (entries where either is 0 are
// skipped: they carry no sign for the entropy potential). Sorted best (smallest dCDF) first.
std::vector<GeometryScore> geometry_scores(const std::vector<double>& w0, const std::vector<double>& wt);

// dCDF of a sample after centring and scaling to unit variance: L1 distance of its empirical CDF
// from the standard normal CDF on 1000 grid points over [-5, 5].
double dcdf_from_gaussian(std::vector<double> sample);

}  // namespace dalesim

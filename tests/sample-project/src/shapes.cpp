#include "sample/shapes.hpp"
#include <memory>
#include <numeric>

namespace {
struct Square : Shape {
  double s;
  explicit Square(double s) : s(s) {}
  double area() const override { return s * s; }
  std::string name() const override { return "square"; }
};
struct Circle : Shape {
  double r;
  explicit Circle(double r) : r(r) {}
  double area() const override { return 3.14159265 * r * r; }
  std::string name() const override { return "circle"; }
};
}  // namespace

std::vector<double> shape_areas() {
  std::vector<std::unique_ptr<Shape>> shapes;
  shapes.push_back(std::make_unique<Square>(2.0));
  shapes.push_back(std::make_unique<Circle>(1.0));
  std::vector<double> out;
  for (const auto &s : shapes) out.push_back(s->area());
  return out;
}

extern "C" double shapes_total() {
  auto a = shape_areas();
  return std::accumulate(a.begin(), a.end(), 0.0);
}

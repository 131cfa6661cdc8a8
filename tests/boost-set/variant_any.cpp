// Boost.Variant and friends: MPL-driven visitation, preprocessed arities.
#include <boost/variant.hpp>
#include <boost/optional.hpp>
#include <boost/function.hpp>
#include <boost/bind/bind.hpp>
#include <string>

struct len : boost::static_visitor<int> {
  int operator()(int i) const { return i; }
  int operator()(const std::string &s) const { return static_cast<int>(s.size()); }
};

int add(int a, int b) { return a + b; }

int main() {
  boost::variant<int, std::string> v = std::string("four");
  boost::optional<int> o = boost::apply_visitor(len(), v);
  boost::function<int(int)> f = boost::bind(add, boost::placeholders::_1, 1);
  return f(*o) == 5 ? 0 : 1;
}

// Boost.Fusion: adapted structs and algorithms.
#include <boost/fusion/include/adapt_struct.hpp>
#include <boost/fusion/include/for_each.hpp>
#include <boost/fusion/include/vector.hpp>
#include <boost/fusion/include/at_c.hpp>
#include <boost/fusion/include/io.hpp>
#include <iostream>
#include <string>

struct employee {
  std::string name;
  int age;
  double salary;
};
BOOST_FUSION_ADAPT_STRUCT(employee, name, age, salary)

struct printer {
  template <class T> void operator()(const T &t) const { std::cout << t << ' '; }
};

int main() {
  employee e{"ann", 41, 10.5};
  boost::fusion::for_each(e, printer());
  boost::fusion::vector<int, char> v(1, 'x');
  std::cout << boost::fusion::at_c<0>(v) << '\n';
  return 0;
}

// Boost.MPL: preprocessed headers selected through computed includes.
#include <boost/mpl/vector.hpp>
#include <boost/mpl/vector_c.hpp>
#include <boost/mpl/map.hpp>
#include <boost/mpl/transform.hpp>
#include <boost/mpl/fold.hpp>
#include <boost/mpl/plus.hpp>
#include <boost/mpl/int.hpp>
#include <boost/mpl/size.hpp>
#include <boost/mpl/placeholders.hpp>
#include <boost/type_traits/add_pointer.hpp>

namespace mpl = boost::mpl;
using namespace mpl::placeholders;
typedef mpl::vector<int, char, double, long> types;
typedef mpl::transform<types, boost::add_pointer<_1>>::type pointers;
typedef mpl::fold<mpl::vector_c<int, 1, 2, 3, 4>, mpl::int_<0>, mpl::plus<_1, _2>>::type sum;
static_assert(mpl::size<pointers>::value == 4, "four");
static_assert(sum::value == 10, "ten");
typedef mpl::map<mpl::pair<int, char>, mpl::pair<char, int>> m;
int main() { return 0; }

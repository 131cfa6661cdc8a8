// Boost.Spirit Qi: a small expression grammar (Spirit, Phoenix, Fusion, MPL, PP).
#include <boost/spirit/include/qi.hpp>
#include <boost/spirit/include/phoenix_operator.hpp>
#include <string>

namespace qi = boost::spirit::qi;

template <class It> struct calc : qi::grammar<It, int(), qi::space_type> {
  calc() : calc::base_type(expr) {
    using qi::_1;
    using qi::_val;
    using qi::int_;
    expr = term[_val = _1] >> *(('+' >> term[_val += _1]) | ('-' >> term[_val -= _1]));
    term = factor[_val = _1] >> *(('*' >> factor[_val *= _1]) | ('/' >> factor[_val /= _1]));
    factor = int_[_val = _1] | '(' >> expr[_val = _1] >> ')';
  }
  qi::rule<It, int(), qi::space_type> expr, term, factor;
};

int main() {
  std::string s = "2 * (3 + 4) - 5";
  auto b = s.begin();
  int result = 0;
  bool ok = qi::phrase_parse(b, s.end(), calc<std::string::iterator>(), qi::space, result);
  return ok && result == 9 ? 0 : 1;
}

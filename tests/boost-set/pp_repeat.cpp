// Boost.Preprocessor: iteration, sequences and computed includes through BOOST_PP.
#include <boost/preprocessor/repetition/repeat.hpp>
#include <boost/preprocessor/repetition/enum_params.hpp>
#include <boost/preprocessor/seq/for_each.hpp>
#include <boost/preprocessor/stringize.hpp>
#include <boost/preprocessor/cat.hpp>
#include <boost/preprocessor/iteration/local.hpp>

#define DECL(z, n, _) int BOOST_PP_CAT(v, n) = n;
BOOST_PP_REPEAT(64, DECL, ~)

#define SQUARE(r, data, elem) int BOOST_PP_CAT(sq_, elem) = elem * elem;
BOOST_PP_SEQ_FOR_EACH(SQUARE, ~, (1)(2)(3)(4)(5))

template <BOOST_PP_ENUM_PARAMS(8, class T)> struct eight {};

#define BOOST_PP_LOCAL_MACRO(n) int BOOST_PP_CAT(local_, n) = n;
#define BOOST_PP_LOCAL_LIMITS (0, 20)
#include BOOST_PP_LOCAL_ITERATE()

const char *name = BOOST_PP_STRINGIZE(BOOST_PP_CAT(pp_, repeat));
int main() { return v63 + sq_5 + local_20 - 108; }

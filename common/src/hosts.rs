//! The `DISTCC_HOSTS` grammar (being written: see issue 2).

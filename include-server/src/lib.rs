//! The include server engine (being written: issue 3).

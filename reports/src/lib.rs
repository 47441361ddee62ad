//! Result model, renderers and comparison of isoprobe runs (see issue 5).
#![deny(unsafe_code)]

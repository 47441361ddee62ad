//! Expected differences: checks on which a real tool, as configured, does not give what the spec
//! asked for. Each row is a real, documented property of the tool, with its source; a failure
//! that matches no row is unexplained, and a row that no longer matches is reported as stale.

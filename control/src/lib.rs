//! upgate-control

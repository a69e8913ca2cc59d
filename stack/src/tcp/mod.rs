//! TCP.

pub mod cc;

//! TCP engine tests: scenarios per state and event, and a two-endpoint simulator.

mod harness;
mod scenarios;
mod sim;

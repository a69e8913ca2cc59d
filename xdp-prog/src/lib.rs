//! The xdpstack XDP steering program (placeholder until the program lands).

//! Network clients for the rt protocols, used by the `rt-tui` binary.

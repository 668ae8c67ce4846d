//! The subcommands, one file each.

pub mod connect;
pub mod qa;
pub mod ticker;

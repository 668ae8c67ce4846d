//! The subcommands, one file each.

pub mod connect;
pub mod doc;
pub mod draw;
pub mod qa;
pub mod server;
pub mod ticker;

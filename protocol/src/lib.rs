//! Wire types, codecs and pure logic shared by the rt server and clients.
//!
//! Nothing here does I/O: no sockets, no tokio. Each module is named after the
//! protocol it speaks.

pub mod delta;
pub mod draw;
pub mod engineio;
pub mod qa;
pub mod sharedb;
pub mod sse;
pub mod ticker;

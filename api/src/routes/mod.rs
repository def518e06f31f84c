//! The routers, one per area, composed by [`crate::app`].

pub mod blobs;
pub mod legacy;
pub mod ops;
pub mod tasks;

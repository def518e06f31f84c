//! Placeholder: address checks for outbound HTTP.

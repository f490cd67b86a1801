//! The library's one error type.

use std::{io, net::SocketAddr};

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable holds a value that cannot be used.
    #[error("{name}={value:?}: {reason}")]
    Config {
        /// The variable.
        name: &'static str,
        /// Its value, as set.
        value: String,
        /// What was expected instead.
        reason: String,
    },
    /// The listener could not be bound (address in use, not permitted).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers: {0}")]
    Signals(io::Error),
    /// The server failed while serving.
    #[error("serving failed: {0}")]
    Serve(io::Error),
}

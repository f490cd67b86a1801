//! The library's error type. Every variant renders as one line that names
//! what went wrong and where; `main` prints it and picks the exit status.
//! Causes are part of each message, not `source()`, so a report that walks
//! the chain does not print them twice.

use std::{io, net::SocketAddr};

use crate::{config::ConfigError, prober::ModuleError};

/// Anything that stops lookout from starting, reloading or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The modules file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A module cannot be made ready to probe with.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// `lookout probe --module` names no configured module.
    #[error("unknown module {module:?} (modules: {known})")]
    UnknownModule {
        /// The name asked for.
        module: String,
        /// The configured names.
        known: String,
    },
    /// A listener certificate or credential file could not be loaded.
    #[error("{0}")]
    Access(String),
    /// `RUST_LOG` does not parse.
    #[error("invalid RUST_LOG: {0}")]
    LogFilter(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        cause: io::Error,
    },
    /// `--web.listen-address` could not be bound (or its name resolved).
    #[error("cannot listen on {addr}: {cause}")]
    Listen {
        /// The address as given.
        addr: String,
        /// What the OS or the resolver said.
        cause: io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(io::Error),
    /// A background task died (a bug: tasks do not panic by design).
    #[error("internal task failed: {0}")]
    Task(String),
}

impl Error {
    /// Exit status for this error: 2 for anything the operator's input caused
    /// (flags, environment, files), 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::Module(_)
            | Self::UnknownModule { .. }
            | Self::Access(_)
            | Self::LogFilter(_) => 2,
            Self::Bind { .. } | Self::Listen { .. } | Self::Signal(_) | Self::Task(_) => 1,
        }
    }
}

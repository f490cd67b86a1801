//! What an http module prepares once, when modules are built (at start-up
//! and each reload), for all its probes: its proxies (the environment read
//! then, for `proxy_from_environment`) and its oauth2 token source, whose
//! token its probes share until the next reload.

use super::{oauth2::TokenSource, proxy::Proxies};
use crate::config::HttpProbe;
use crate::prober::client_tls::{self, TlsError};

/// A module's prepared http client state.
#[derive(Debug)]
pub(crate) struct HttpSetup {
    pub(crate) proxies: Proxies,
    pub(crate) oauth2: Option<TokenSource>,
}

/// Why a module's http client could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The oauth2 `tls_config` files.
    #[error("oauth2 tls_config: {0}")]
    Tls(#[from] TlsError),
    /// Anything else, said as it is.
    #[error("{0}")]
    Other(String),
}

impl HttpSetup {
    /// Prepares `config`'s proxies and token source.
    pub(crate) fn new(config: &HttpProbe) -> Result<Self, SetupError> {
        let proxies = Proxies::new(config.proxy()).map_err(SetupError::Other)?;
        let oauth2 = match &config.oauth2 {
            Some(oauth2) => {
                // The token endpoint speaks HTTP/1.1, as Go's token client.
                let tls = client_tls::client_config(&oauth2.tls_config, &[b"http/1.1"])?;
                Some(TokenSource::new(oauth2.clone(), tls).map_err(SetupError::Other)?)
            }
            None => None,
        };
        Ok(Self { proxies, oauth2 })
    }

    /// No proxy, no token: what modules of other probers carry.
    pub(crate) fn none() -> Self {
        Self {
            proxies: Proxies::direct(),
            oauth2: None,
        }
    }
}

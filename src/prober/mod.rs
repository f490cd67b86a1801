//! Probe modules made ready to run: each module's configuration with its TLS
//! client configuration built once, at warm-up or reload, not per probe.

use std::{collections::BTreeMap, sync::Arc};

use rustls::ClientConfig;

use crate::{
    config::{Config, Module, ProberKind},
    tls, Error,
};

/// ALPN offer of the http prober: HTTP/2 first unless the module disables it.
const ALPN_H2: &[&[u8]] = &[b"h2", b"http/1.1"];
const ALPN_H1: &[&[u8]] = &[b"http/1.1"];

/// One module, ready to probe with.
#[derive(Debug)]
pub struct PreparedModule {
    /// The module's name.
    pub name: String,
    /// Its configuration.
    pub config: Module,
    /// TLS client configuration for https targets or `tcp.tls`.
    pub tls: Arc<ClientConfig>,
}

/// Every module of one configuration.
#[derive(Debug, Default)]
pub struct Prober {
    modules: BTreeMap<String, Arc<PreparedModule>>,
}

impl Prober {
    /// Builds every module's TLS configuration; fails on the first module
    /// whose TLS files are missing or unusable, naming it.
    pub fn build(config: &Config) -> Result<Self, Error> {
        let mut modules = BTreeMap::new();
        for (name, module) in &config.modules {
            let (tls_config, alpn) = match module.prober {
                ProberKind::Http if module.http.enable_http2 => (&module.http.tls_config, ALPN_H2),
                ProberKind::Http => (&module.http.tls_config, ALPN_H1),
                ProberKind::Tcp => (&module.tcp.tls_config, &[][..]),
            };
            let tls = tls::client_config(tls_config, alpn).map_err(|cause| Error::Module {
                module: name.clone(),
                cause,
            })?;
            modules.insert(
                name.clone(),
                Arc::new(PreparedModule {
                    name: name.clone(),
                    config: module.clone(),
                    tls,
                }),
            );
        }
        Ok(Self { modules })
    }

    /// The module called `name`.
    pub fn module(&self, name: &str) -> Option<&Arc<PreparedModule>> {
        self.modules.get(name)
    }

    /// Module names, sorted.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
    }
}

//! The functions' HTTPS client: the SDK's own (hyper 1, rustls on AWS-LC, proxies from the
//! environment), with its TLS set-up started on a thread of its own as soon as the process
//! knows its timeouts.
//!
//! The SDK builds a connector on a client's first request, and building it loads and parses
//! the system's root certificates (about 200 KB on Lambda, 1-2 ms of CPU) before the request's
//! TCP connect can start. During init that CPU sits between reading the configuration and the
//! warm-up's first packet. Built here in parallel with the SDK configuration and the clients,
//! it is ready when the warm-up asks for it, and the connect starts that much sooner. A
//! request with other connector settings than the ones prepared gets a connector built as the
//! SDK builds it.
//!
//! The SDK also builds a whole connector in every client's construction, only to check the
//! configuration and drop it (so that the certificates load early): with the prepared one
//! doing that, the check gets a connector without TLS instead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use aws_smithy_async::rt::sleep::SharedAsyncSleep;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpClient};

/// The HTTPS client with one connector already being built for `settings` (those of every
/// request of a client on the SDK configuration that uses it), and whether that one was
/// taken.
pub fn prepared_https_client(settings: HttpConnectorSettings) -> (SharedHttpClient, PreparedUse) {
    let used = PreparedUse::default();
    let building = {
        let settings = settings.clone();
        std::thread::Builder::new()
            .name("tls-set-up".into())
            .spawn(move || connector(Some(&settings), None))
            // No thread: the first request builds its connector, as without this.
            .ok()
    };
    let prepared = Mutex::new(building.map(|handle| Prepared { settings, handle }));
    let flag = used.clone();
    let client = Builder::new().build_with_connector_fn(move |settings, components| {
        // Without settings this is the SDK checking a client's configuration as the client is
        // built (`validate_base_client_config`), which builds a connector and drops it, to load
        // the root certificates early: for every client, on init's path. The prepared
        // connector loads them already; a connector without TLS is built here instead, in
        // microseconds, and never sends anything.
        let Some(settings) = settings else {
            return ConnectorBuilder::default().build_http();
        };
        let settings = Some(settings);
        let sleep = components.and_then(|c| c.sleep_impl());
        let taken = prepared
            .lock()
            .ok()
            .and_then(|mut slot| slot.take_if(|p| p.fits(settings)));
        // Joining blocks this worker until the set-up is done: once per process, for at most
        // what the set-up has left (it has usually finished when the warm-up asks).
        if let Some(Ok(connector)) = taken.map(|p| p.handle.join()) {
            flag.0.store(true, Ordering::Relaxed);
            return connector;
        }
        connector(settings, sleep)
    });
    (client, used)
}

/// Whether the prepared connector served a request (for the init log line and the tests).
#[derive(Clone, Debug, Default)]
pub struct PreparedUse(std::sync::Arc<AtomicBool>);

impl PreparedUse {
    pub fn taken(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Prepared {
    settings: HttpConnectorSettings,
    handle: JoinHandle<Connector>,
}

impl Prepared {
    /// The SDK caches one connector per connect and read timeout: the prepared one serves
    /// the requests whose timeouts are the ones it was built with.
    fn fits(&self, settings: Option<&HttpConnectorSettings>) -> bool {
        settings.is_some_and(|s| {
            s.connect_timeout() == self.settings.connect_timeout()
                && s.read_timeout() == self.settings.read_timeout()
        })
    }
}

/// A connector as the SDK's default HTTPS client builds it (aws-smithy-runtime's
/// `default_https_client` for the latest behavior version): rustls on AWS-LC, the proxy
/// from `HTTPS_PROXY`/`NO_PROXY`, the runtime's sleep (tokio's when `None`).
fn connector(
    settings: Option<&HttpConnectorSettings>,
    sleep: Option<SharedAsyncSleep>,
) -> Connector {
    let mut builder = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
    builder.set_connector_settings(settings.cloned());
    builder.set_sleep_impl(sleep);
    builder.set_proxy_config(Some(ProxyConfig::from_env()));
    builder.build()
}

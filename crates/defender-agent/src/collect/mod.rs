//! Collects the standard metrics from procfs and builds the report.

pub mod net;
pub mod procs;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::CollectConfig;
use crate::custom;
use crate::report::{
    Connection, ConnectionList, CustomValue, Metrics, NetworkStats, Number, Port, PortList, Report,
    TcpConnections,
};

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot read {path} (is --proc-root a procfs?): {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where interface names come from: the system (getifaddrs), or a fixed table in tests.
#[derive(Debug, Clone)]
pub enum Interfaces {
    System,
    Fixed(Vec<(IpAddr, String)>),
}

impl Interfaces {
    fn table(&self) -> Vec<(IpAddr, String)> {
        match self {
            Interfaces::Fixed(t) => t.clone(),
            Interfaces::System => match if_addrs::get_if_addrs() {
                Ok(list) => list.into_iter().map(|i| (i.ip(), i.name)).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list network interfaces; ports are reported without interface names");
                    Vec::new()
                }
            },
        }
    }
}

/// The metrics of one sample, before they become a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metrics: Metrics,
    pub custom: BTreeMap<String, [CustomValue; 1]>,
}

/// Keeps the previous network counters so that each report carries the traffic since the last.
pub struct Collector {
    config: CollectConfig,
    interfaces: Interfaces,
    previous: Option<BTreeMap<String, net::Counters>>,
}

impl Collector {
    pub fn new(config: CollectConfig) -> Self {
        Collector {
            config,
            interfaces: Interfaces::System,
            previous: None,
        }
    }

    pub fn with_interfaces(mut self, interfaces: Interfaces) -> Self {
        self.interfaces = interfaces;
        self
    }

    /// Takes one sample. Network stats are absent from the first sample: there is nothing to
    /// take a difference from.
    pub async fn sample(&mut self) -> Result<Sample, CollectError> {
        let root = self.config.proc_root.clone();
        let names = InterfaceNames(self.interfaces.table());
        let tcp = read_sockets(&root, &["net/tcp", "net/tcp6"])?;
        let udp = read_sockets(&root, &["net/udp", "net/udp6"])?;
        let tp = names.listening(&tcp, net::TCP_LISTEN);
        // An unconnected UDP socket is in state CLOSE with no peer: it receives from anyone.
        let up = names.listening(&udp, net::TCP_CLOSE);
        let ec = names.established(&tcp);
        let ns = self.network_stats(&root)?;
        let custom = self.custom_metrics(&root).await?;
        Ok(Sample {
            metrics: Metrics {
                tp,
                up,
                ns,
                tc: TcpConnections { ec },
            },
            custom,
        })
    }

    /// The traffic since the previous sample (None on the first), from `net/dev`; keeps
    /// these counters for the next.
    fn network_stats(&mut self, root: &Path) -> Result<Option<NetworkStats>, CollectError> {
        let dev_path = root.join("net/dev");
        let dev_text = std::fs::read_to_string(&dev_path).map_err(|source| CollectError::Read {
            path: dev_path.clone(),
            source,
        })?;
        let (mut counters, bad) = net::parse_dev(&dev_text);
        if bad > 0 {
            tracing::warn!(file = %dev_path.display(), lines = bad, "skipped lines that did not parse");
        }
        // Loopback traffic never leaves the device.
        counters.remove("lo");
        let ns = self.previous.as_ref().map(|prev| {
            let d = net::delta(prev, &counters);
            NetworkStats {
                bi: d.bytes_in,
                bo: d.bytes_out,
                pi: d.packets_in,
                po: d.packets_out,
            }
        });
        self.previous = Some(counters);
        Ok(ns)
    }

    /// The custom metrics: the child-process count, then the configured commands (one that
    /// fails is left out of this report).
    async fn custom_metrics(
        &self,
        root: &Path,
    ) -> Result<BTreeMap<String, [CustomValue; 1]>, CollectError> {
        let mut custom = BTreeMap::new();
        if let Some((process, metric)) = &self.config.child_metric {
            let list = procs::processes(root).map_err(|source| CollectError::Read {
                path: root.to_path_buf(),
                source,
            })?;
            let n = procs::count_descendants(root, &list, process);
            custom.insert(
                metric.to_string(),
                [CustomValue::Number(Number::Int(
                    i64::try_from(n).unwrap_or(i64::MAX),
                ))],
            );
        }
        for spec in &self.config.custom_metrics {
            match custom::evaluate(spec, self.config.command_timeout).await {
                Ok(value) => {
                    custom.insert(spec.name.to_string(), [value]);
                }
                Err(e) => {
                    tracing::warn!(metric = %spec.name, error = %e, "custom metric left out of this report")
                }
            }
        }
        Ok(custom)
    }

    /// A complete report with the given report id.
    pub async fn report(&mut self, rid: u64) -> Result<Report, CollectError> {
        let sample = self.sample().await?;
        Ok(Report::new(rid, Some(sample.metrics), sample.custom))
    }
}

/// The interface names of the device's addresses, for the ports and connections.
struct InterfaceNames(Vec<(IpAddr, String)>);

impl InterfaceNames {
    /// The interface of a local address; none for a wildcard address (all interfaces).
    fn name_of(&self, ip: &IpAddr) -> Option<String> {
        if ip.is_unspecified() {
            return None;
        }
        self.0.iter().find(|(a, _)| a == ip).map(|(_, n)| n.clone())
    }

    /// The ports of the sockets in `state` (for CLOSE, only those with no peer).
    fn listening(&self, sockets: &[net::Socket], state: u8) -> PortList {
        let ports: BTreeSet<Port> = sockets
            .iter()
            .filter(|s| s.state == state)
            .filter(|s| state != net::TCP_CLOSE || s.remote_port == 0)
            .map(|s| Port {
                pt: s.local_port,
                interface: self.name_of(&s.local),
            })
            .collect();
        PortList::new(ports.into_iter().collect())
    }

    /// The established TCP connections.
    fn established(&self, tcp: &[net::Socket]) -> ConnectionList {
        let connections: BTreeSet<Connection> = tcp
            .iter()
            .filter(|s| s.state == net::TCP_ESTABLISHED)
            .map(|s| Connection {
                rad: match s.remote {
                    IpAddr::V4(v4) => format!("{v4}:{}", s.remote_port),
                    IpAddr::V6(v6) => format!("[{v6}]:{}", s.remote_port),
                },
                lp: s.local_port,
                li: self.name_of(&s.local),
            })
            .collect();
        ConnectionList::new(connections.into_iter().collect())
    }
}

fn read_sockets(root: &Path, files: &[&str]) -> Result<Vec<net::Socket>, CollectError> {
    let mut all = Vec::new();
    for file in files {
        let path = root.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let (sockets, bad) = net::parse_sockets(&text);
                if bad > 0 {
                    tracing::warn!(file = %path.display(), lines = bad, "skipped lines that did not parse");
                }
                all.extend(sockets);
            }
            // No IPv6 in this kernel: the v6 tables are simply absent.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(source) => return Err(CollectError::Read { path, source }),
        }
    }
    Ok(all)
}

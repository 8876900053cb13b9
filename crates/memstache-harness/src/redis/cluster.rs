//! A 3-master + 3-replica Redis Cluster of child processes.

use std::process::Command;
use std::time::Duration;

use std::sync::Arc;

use super::resp::Reply;
use super::server::{Launch, RedisServer, TlsMaterial, require_binary, wait_until};

/// `cluster-node-timeout` in ms: small, so a replica takes over a killed master in seconds.
pub const NODE_TIMEOUT_MS: u64 = 2_000;

/// A 3-master + 3-replica Redis Cluster: six `redis-server` processes with `cluster-enabled
/// yes`, joined by `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, each in its
/// own temporary directory (for `nodes.conf`). Every process is killed when this drops.
///
/// ```no_run
/// use memstache_harness::redis::RedisCluster;
/// let cluster = RedisCluster::start();
/// println!("{}", cluster.url()); // redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&…
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The certificates of a cluster started with [`start_tls`](Self::start_tls).
    tls: Option<Arc<TlsMaterial>>,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNodeInfo {
    /// The node's port.
    pub port: u16,
    /// Whether it is a master (and not flagged failed). A node that has just joined may show as
    /// a master without slots.
    pub is_master: bool,
    /// Slot ranges served, inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts six nodes and creates the cluster; returns once every node reports
    /// `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When `redis-server`/`redis-cli` are missing (the message names the apt package) or the
    /// cluster does not form within 60 s.
    pub fn start() -> RedisCluster {
        Self::start_with(None)
    }

    /// Like [`start`](Self::start), but every node also serves TLS, and the nodes talk to
    /// each other over TLS too (`tls-cluster yes`, `tls-replication yes`), with a certificate
    /// for `localhost` and `127.0.0.1` signed by a CA made for this cluster
    /// ([`tls_ca_pem`](Self::tls_ca_pem)). A client connected over TLS is given the nodes' TLS
    /// ports in `CLUSTER SLOTS` and redirections; [`tls_url`](Self::tls_url) names them. The
    /// plain ports stay open for the harness's own commands.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), and when the certificates cannot be made.
    pub fn start_tls() -> RedisCluster {
        Self::start_with(Some(Arc::new(TlsMaterial::new())))
    }

    fn start_with(tls: Option<Arc<TlsMaterial>>) -> RedisCluster {
        require_binary("redis-server");
        require_binary("redis-cli");
        let timeout = NODE_TIMEOUT_MS.to_string();
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            &timeout,
        ];
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| match &tls {
                None => RedisServer::launch(Launch::plain(&args), "cluster"),
                Some(material) => {
                    let mut tls_args = args.to_vec();
                    tls_args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"]);
                    RedisServer::launch_tls(
                        Launch::plain(&tls_args),
                        Arc::clone(material),
                        false,
                        "cluster",
                    )
                }
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes, tls };
        cluster.wait_ok(Duration::from_secs(60));
        cluster.wait_replicas(Duration::from_secs(60));
        cluster
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&…` naming every node.
    pub fn url(&self) -> String {
        self.nodes_url("redis-cluster", RedisServer::port)
    }

    /// `rediss-cluster://127.0.0.1:<t1>?node=127.0.0.1:<t2>&…` naming every node's TLS port,
    /// for a cluster started with [`start_tls`](Self::start_tls).
    ///
    /// # Panics
    ///
    /// When the cluster does not serve TLS.
    pub fn tls_url(&self) -> String {
        self.nodes_url("rediss-cluster", RedisServer::tls_port)
    }

    /// `scheme://127.0.0.1:<first>?node=127.0.0.1:<second>&…` with each node's `port`.
    fn nodes_url(&self, scheme: &str, port: fn(&RedisServer) -> u16) -> String {
        let mut url = format!("{scheme}://127.0.0.1:{}", port(&self.nodes[0]));
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", port(n)));
        }
        url
    }

    /// The CA certificate (PEM) that signed the nodes' certificates, for a cluster started with
    /// [`start_tls`](Self::start_tls).
    ///
    /// # Panics
    ///
    /// When the cluster does not serve TLS.
    pub fn tls_ca_pem(&self) -> &[u8] {
        self.tls.as_ref().expect("started with start_tls").ca_pem()
    }

    /// The six nodes, in creation order (the first three start as masters).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, mutable (to kill or restart it).
    pub fn node_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.nodes[index]
    }

    /// The index of the node with `port`.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    fn any_running(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.is_running())
            .expect("no cluster node is running")
    }

    /// `CLUSTER NODES` as seen by a running node.
    pub fn cluster_nodes(&self) -> Vec<ClusterNodeInfo> {
        let text = self
            .any_running()
            .cmd(&["CLUSTER", "NODES"])
            .as_text()
            .unwrap_or_default();
        text.lines().filter_map(parse_node_line).collect()
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        let r = self.any_running().cmd(&["CLUSTER", "KEYSLOT", key]);
        r.as_int()
            .and_then(|i| u16::try_from(i).ok())
            .expect("CLUSTER KEYSLOT answers an integer")
    }

    /// The index of the master currently serving `slot`, as a running node sees it.
    pub fn master_for_slot(&self, slot: u16) -> Option<usize> {
        self.cluster_nodes()
            .into_iter()
            .find(|n| n.is_master && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .and_then(|n| self.index_of_port(n.port))
    }

    /// Waits until every running node reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When that takes longer than `timeout`.
    pub fn wait_ok(&self, timeout: Duration) {
        wait_until("cluster_state:ok on every node", timeout, || {
            self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                super::resp::command(n.port(), &["CLUSTER", "INFO"])
                    .ok()
                    .and_then(|r| r.as_text())
                    .is_some_and(|t| t.contains("cluster_state:ok"))
            })
        });
    }

    /// Waits until every running node sees three replicas and every replica's link to its
    /// master is up (`cluster_state:ok` comes earlier, before `--cluster create` has attached
    /// the replicas).
    ///
    /// # Panics
    ///
    /// When that takes longer than `timeout`.
    pub fn wait_replicas(&self, timeout: Duration) {
        wait_until("three synced replicas", timeout, || {
            self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                let Ok(nodes) = super::resp::command(n.port(), &["CLUSTER", "NODES"]) else {
                    return false;
                };
                let replicas = nodes
                    .as_text()
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| {
                        l.split_whitespace()
                            .nth(2)
                            .is_some_and(|f| f.split(',').any(|f| f == "slave"))
                    })
                    .count();
                let info = super::resp::command(n.port(), &["INFO", "replication"])
                    .ok()
                    .and_then(|r| r.as_text())
                    .unwrap_or_default();
                let linked = info.contains("role:master") || info.contains("master_link_status:up");
                replicas == 3 && linked
            })
        });
    }

    /// Sends `cmd` to the master of `key`'s slot.
    ///
    /// # Panics
    ///
    /// When no master serves the slot.
    pub fn cmd_for_key(&self, key: &str, args: &[&str]) -> Reply {
        let slot = self.keyslot(key);
        let idx = self
            .master_for_slot(slot)
            .expect("a master serves the slot");
        self.nodes[idx].cmd(args)
    }
}

fn parse_node_line(line: &str) -> Option<ClusterNodeInfo> {
    let mut parts = line.split_whitespace();
    let _id = parts.next()?;
    let addr = parts.next()?;
    let flags = parts.next()?;
    let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
    let is_master = flags.split(',').any(|f| f == "master")
        && !flags.split(',').any(|f| f == "fail" || f == "fail?");
    let slots = parts
        .skip(5)
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => {
                let a = s.parse().ok()?;
                Some((a, a))
            }
        })
        .collect();
    Some(ClusterNodeInfo {
        port,
        is_master,
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes_lines() {
        let l =
            "07c3 127.0.0.1:30004@40004 myself,master - 0 0 1 connected 0-5460 6000 [7000->-abc]";
        let n = parse_node_line(l).unwrap();
        assert_eq!(n.port, 30004);
        assert!(n.is_master);
        assert_eq!(n.slots, vec![(0, 5460), (6000, 6000)]);
        let r = "e7d1 127.0.0.1:30005@40005 slave,fail 07c3 0 0 1 connected";
        let n = parse_node_line(r).unwrap();
        assert!(!n.is_master);
        assert!(n.slots.is_empty());
    }
}

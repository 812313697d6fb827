//! A JetStream cluster on loopback: three nats-server processes joined by routes, each
//! with its own store, any of which can be killed and started again on its store.

use std::process::Child;
use std::time::Duration;

use tempfile::TempDir;

use crate::{TestkitError, free_port, spawn};

/// One server of the cluster.
#[derive(Debug)]
struct Node {
    name: String,
    child: Option<Child>,
    port: u16,
    cluster_port: u16,
    store: TempDir,
}

/// A JetStream cluster of real nats-servers, killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts `size` servers (3 for R3 streams) named `n0`, `n1`, … and waits until
    /// JetStream answers through each of them.
    pub async fn start(size: usize) -> Result<Self, TestkitError> {
        let mut nodes = Vec::with_capacity(size);
        for n in 0..size {
            nodes.push(Node {
                name: format!("n{n}"),
                child: None,
                port: free_port()?,
                cluster_port: free_port()?,
                store: tempfile::Builder::new()
                    .prefix("certflow-cluster-")
                    .tempdir()?,
            });
        }
        let mut cluster = NatsCluster { nodes };
        for n in 0..size {
            cluster.spawn(n)?;
        }
        for n in 0..size {
            cluster.wait_for_jetstream(n).await?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, node: usize) -> Result<(), TestkitError> {
        let routes = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let this = &self.nodes[node];
        let args = [
            "-n".to_string(),
            this.name.clone(),
            "--cluster_name".to_string(),
            "certflow".to_string(),
            "--cluster".to_string(),
            format!("nats://127.0.0.1:{}", this.cluster_port),
            "--routes".to_string(),
            routes,
        ];
        let (child, _) = spawn(
            this.store.path(),
            Some(this.port),
            &crate::NatsUsers::default(),
            &args,
        )?;
        self.nodes[node].child = Some(child);
        Ok(())
    }

    /// Waits until JetStream answers through `node`: a cluster serves JetStream only once
    /// its servers have elected a meta leader.
    async fn wait_for_jetstream(&self, node: usize) -> Result<(), TestkitError> {
        let url = self.url_of(node);
        let last_error = std::sync::Mutex::new(String::new());
        let ready = crate::eventually(Duration::from_secs(30), || {
            let url = url.clone();
            let last_error = &last_error;
            async move {
                let answer = match async_nats::connect(url).await {
                    // Listing streams needs the meta leader.
                    Ok(client) => {
                        use futures::StreamExt;
                        let js = async_nats::jetstream::new(client);
                        let mut names = js.stream_names();
                        match names.next().await {
                            None | Some(Ok(_)) => Ok(()),
                            Some(Err(err)) => Err(err.to_string()),
                        }
                    }
                    Err(err) => Err(err.to_string()),
                };
                answer
                    .map_err(|e| {
                        if let Ok(mut last) = last_error.lock() {
                            *last = e;
                        }
                    })
                    .ok()
            }
        })
        .await;
        ready.ok_or_else(|| {
            let why = last_error.lock().map(|e| e.clone()).unwrap_or_default();
            TestkitError::NotReady(format!("JetStream through {url}: {why}"))
        })
    }

    /// Every server's client URL, comma-separated, as `NATS_URL` takes them.
    pub fn url(&self) -> String {
        (0..self.nodes.len())
            .map(|n| self.url_of(n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of one server.
    pub fn url_of(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].port)
    }

    /// The index of the server named `name` (as JetStream names a leader).
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// SIGKILL: the server stops at once, its store as it was.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed server again on its port and store, and waits until JetStream
    /// answers through it.
    pub async fn restart(&mut self, node: usize) -> Result<(), TestkitError> {
        self.kill(node);
        self.spawn(node)?;
        self.wait_for_jetstream(node).await
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
    }
}

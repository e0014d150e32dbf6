//! A local 3-node NATS JetStream cluster and `seqrec worker` processes, for
//! the cluster tests (tests/cluster.rs) and `live --publish` (tests/live.rs).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use seqrec::cluster::{Cluster, ClusterOptions};

/// A 3-node cluster in a temporary folder, stopped on drop.
pub struct Nats {
    dir: tempfile::TempDir,
    pub urls: String,
}

impl Nats {
    pub fn start() -> Option<Nats> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var("SEQREC_REQUIRE_NATS").is_err(),
                "nats-server is missing (scripts/setup.sh --test installs it)"
            );
            eprintln!("skipped: nats-server is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(super::root().join("scripts/nats-cluster.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
        let urls = env
            .lines()
            .find_map(|l| l.strip_prefix("NATS_URLS="))
            .unwrap()
            .to_string();
        Some(Nats { dir, urls })
    }

    pub fn kill_node(&self, n: usize) {
        let st = Command::new(super::root().join("scripts/nats-cluster.sh"))
            .arg("kill")
            .arg(self.dir.path())
            .arg(n.to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    pub async fn connect(&self) -> Cluster {
        Cluster::connect(&ClusterOptions::new(
            std::slice::from_ref(&self.urls),
            "test",
        ))
        .await
        .unwrap()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = Command::new(super::root().join("scripts/nats-cluster.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// A `seqrec worker` process and what it has said.
pub struct Worker {
    pub name: String,
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Worker {
    pub fn start(nats: &Nats, name: &str, bundle: &str, extra: &[&str]) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seqrec"))
            .args(["worker", "--nats", &nats.urls, "--name", name, "-v"])
            .args(["--bundle", bundle, "--jobs", "1"])
            .args([
                "--ack-wait",
                "2",
                "--lease",
                "2",
                "--checkpoint-every",
                "15",
            ])
            .args(extra)
            .current_dir(super::root())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (l, err) = (Arc::clone(&log), child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Worker {
            name: name.into(),
            child,
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary
//! directory, `postgres` listening on a unix socket in it (no TCP port to
//! collide on), durability switched off (a test's data dies with it).
//!
//! The binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<major>/bin`, the newest found) or from
//! `XLA_PG_BIN`. PostgreSQL refuses to run as root: as root, the cluster
//! runs as the `postgres` user the package creates.
//!
//! The server dies with the process that started it (a parent-death
//! signal set by util-linux's `setpriv`, sent when the thread that forked
//! it ends: [`shared`] forks from a thread that lives as long as the
//! process), so a test binary that panics or is killed leaves no server
//! behind; [`Cluster`]'s drop stops it earlier.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a throwaway cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries.
    #[error(
        "PostgreSQL's server binaries were not found (looked in /usr/lib/postgresql/*/bin and XLA_PG_BIN): \
         install Debian's `postgresql` package (`apt-get install postgresql`), or set XLA_PG_BIN"
    )]
    NoBinaries,
    /// Running as root without a `postgres` user to run the server as.
    #[error(
        "running as root and there is no `postgres` user to run PostgreSQL as: install Debian's `postgresql` package"
    )]
    NoUser,
    /// A step failed.
    #[error("{step} failed: {detail}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// What it printed or why it failed.
        detail: String,
    },
}

fn step(step: &'static str, detail: impl ToString) -> ClusterError {
    ClusterError::Step {
        step,
        detail: detail.to_string(),
    }
}

/// A running throwaway cluster. Dropping it stops the server and removes
/// its directory.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// Where PostgreSQL's programs are.
    bin: PathBuf,
    server: Mutex<Option<Child>>,
    created: AtomicU64,
}

/// Clusters' directories in the system's temporary directory start so.
const PREFIX: &str = "xla-pg-test-";
/// The file in a cluster's directory naming the process that owns it.
const OWNER: &str = "owner";

/// Removes the directories of clusters whose process is gone (a shared
/// cluster's directory outlives its process: statics are never dropped).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let owner: Option<i32> = std::fs::read_to_string(entry.path().join(OWNER))
            .ok()
            .and_then(|pid| pid.trim().parse().ok());
        let gone = owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The directory holding `initdb` and `postgres`.
fn binaries() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("XLA_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ClusterError::NoBinaries)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or(ClusterError::NoBinaries)
}

/// The uid and gid to run the server as: ours, or `postgres`'s when we are root.
fn server_user() -> Result<Option<(u32, u32)>, ClusterError> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| step("reading /proc/self", e))?
        .uid();
    if uid != 0 {
        return Ok(None);
    }
    let output = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .map_err(|e| step("id -u postgres", e))?;
    let uid: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| ClusterError::NoUser)?;
    let output = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .map_err(|e| step("id -g postgres", e))?;
    let gid: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| ClusterError::NoUser)?;
    Ok(Some((uid, gid)))
}

/// `program` run through util-linux's `setpriv`: as `user` (if any), and
/// with `SIGQUIT` (immediate shutdown, for the postmaster) as its
/// parent-death signal, set after the user changes (which clears it).
fn command(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut command = Command::new("setpriv");
    if let Some((uid, gid)) = user {
        command.args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ]);
    }
    command.args(["--pdeathsig=QUIT", "--"]).arg(program);
    command
}

impl Cluster {
    /// Creates and starts a cluster; blocks until it accepts connections.
    /// The server gets a parent-death signal when the calling thread ends:
    /// call it from a thread that lives as long as the cluster is needed
    /// (as [`shared`] does).
    ///
    /// # Errors
    /// [`ClusterError`] naming what is missing or which step failed.
    pub fn start() -> Result<Cluster, ClusterError> {
        let bin = binaries()?;
        let user = server_user()?;
        remove_stale();
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir()
            .map_err(|e| step("creating the cluster's directory", e))?;
        std::fs::write(dir.path().join(OWNER), std::process::id().to_string())
            .map_err(|e| step("writing the cluster's owner", e))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| step("handing the cluster's directory to postgres", e))?;
        }
        let data = dir.path().join("data");
        let output = command(&bin.join("initdb"), user)
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| step("running initdb", e))?;
        if !output.status.success() {
            return Err(step("initdb", String::from_utf8_lossy(&output.stderr)));
        }
        let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| step("creating the log", e))?;
        let log_err = log.try_clone().map_err(|e| step("creating the log", e))?;
        let server = command(&bin.join("postgres"), user)
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=128MB",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| step("starting postgres", e))?;
        let cluster = Cluster {
            dir,
            bin,
            server: Mutex::new(Some(server)),
            created: AtomicU64::new(0),
        };
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// Waits for the server's socket, failing with its log if it exits.
    fn wait_ready(&self) -> Result<(), ClusterError> {
        let socket = self.dir.path().join(".s.PGSQL.5432");
        let started = Instant::now();
        loop {
            if socket.exists() && self.ping() {
                return Ok(());
            }
            let exited = self
                .server
                .lock()
                .ok()
                .and_then(|mut s| s.as_mut().and_then(|c| c.try_wait().ok().flatten()));
            if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                return Err(step("waiting for postgres to accept connections", log));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server accepts connections (PostgreSQL's `pg_isready`).
    fn ping(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", "5432", "-q"])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The connection string of `database` on this cluster (user `postgres`,
    /// over the unix socket).
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port=5432 user=postgres dbname={database}",
            self.dir.path().display()
        )
    }

    /// Creates a new, empty database and returns its connection string.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn create_database(&self) -> Result<String, ClusterError> {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            self.created.fetch_add(1, Ordering::Relaxed)
        );
        let (client, connection) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .map_err(|e| step("connecting to create a database", e))?;
        let task = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| step("creating a database", e))?;
        drop(client);
        let _ = task.await;
        Ok(self.url(&name))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.lock().ok().and_then(|mut s| s.take()) {
            // SIGINT: fast shutdown (sessions ended, no checkpoint wait needed).
            let stopped = Command::new("kill")
                .args(["-INT", &server.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if !stopped {
                let _ = server.kill();
            }
            let _ = server.wait();
        }
    }
}

/// One cluster for the whole test process, started on first use from a
/// thread that outlives every test (the server's parent-death signal
/// follows the thread that forked it).
///
/// # Panics
/// When the cluster cannot start: the message says what to install.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-parent".into())
            .spawn(move || {
                let _ = sender.send(Cluster::start());
                // Live as long as the process: the server dies with this thread.
                loop {
                    std::thread::park();
                }
            })
            .expect("a thread to start PostgreSQL from");
        match receiver.recv() {
            Ok(Ok(cluster)) => cluster,
            Ok(Err(error)) => panic!("a throwaway PostgreSQL for the tests: {error}"),
            Err(_) => panic!("the thread starting PostgreSQL ended"),
        }
    })
}

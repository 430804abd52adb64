//! Serving a simulator's router on its listener until stopped: the one
//! piece of plumbing every simulator shares.

use axum::Router;

/// A router being served; stops serving when dropped.
#[derive(Debug)]
pub(crate) struct Served {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Serves `app` on `listener`; `name` labels errors in the log.
    pub fn spawn(listener: tokio::net::TcpListener, app: Router, name: &'static str) -> Served {
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                tracing::error!("{name} simulator stopped: {e}");
            }
        });
        Served {
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

//! WAL checkpoints beside the usage writer instead of inside its commits.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) from whichever connection
//! commits once the WAL holds `wal_autocheckpoint` pages: on the writer's thread, between two
//! usage batches, with two fsyncs. Here a connection of its own checkpoints in PASSIVE mode
//! (never waiting on the writer or a reader) after the writer commits usage, at most every
//! [`PAUSE`], on its own thread. The writer keeps a higher `wal_autocheckpoint` as the bound on
//! the WAL: when it reaches it, it only copies what this checkpoint has not, and restarts the WAL.

use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

/// Shortest time between two checkpoints: a checkpoint after every batch would copy the pages
/// every batch touches (the right edges of the indexes, the roll-ups) over and over.
const PAUSE: Duration = Duration::from_millis(100);

/// Longest time between two checkpoints, whoever wrote.
const EVERY: Duration = Duration::from_millis(250);

/// The checkpoint task of one store.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// Signalled after a usage commit.
    wanted: Arc<Notify>,
    /// Signalled to stop the task.
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the task; it opens its connection at the first checkpoint, so that a CLI command
    /// shorter than [`EVERY`] never opens it.
    #[expect(
        clippy::disallowed_methods,
        reason = "Checkpointer::stop, called when the store closes, ends and awaits the task"
    )]
    pub(crate) fn start(options: SqliteConnectOptions) -> Self {
        let wanted = Arc::new(Notify::new());
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(run(options, wanted.clone(), stop.clone()));
        Self {
            wanted,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Asks for a checkpoint: the WAL has grown.
    pub(crate) fn request(&self) {
        self.wanted.notify_one();
    }

    /// Stops the task and closes its connection.
    pub(crate) async fn stop(&self) {
        self.stop.notify_one();
        if let Some(task) = self.task.lock().await.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "the SQLite checkpoint task failed");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The last handle of the store is gone without `close`: the task ends at its next wake-up.
        self.stop.notify_one();
    }
}

async fn run(options: SqliteConnectOptions, wanted: Arc<Notify>, stop: Arc<Notify>) {
    let mut conn = None;
    loop {
        tokio::select! {
            biased;
            () = stop.notified() => break,
            () = wanted.notified() => {}
            // Control-plane writes (audit rows, sessions, one per failed sign-in) do not ask, and
            // the writer's own autocheckpoint was seen never to run (a 1.3 GB WAL beside a 4 KiB
            // database after 40,000 failed sign-ins): a periodic pass bounds the WAL for every
            // writer. On a WAL with nothing new it only reads the WAL index.
            () = tokio::time::sleep(EVERY) => {}
        }
        if conn.is_none() {
            match options.connect().await {
                Ok(c) => {
                    crate::background::lower_priority(crate::background::CHECKPOINT_THREAD);
                    conn = Some(c);
                }
                Err(e) => {
                    // The writer's own checkpoints still bound the WAL.
                    tracing::debug!(error = %e, "no connection for WAL checkpoints");
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            checkpoint(c).await;
        }
        tokio::select! {
            biased;
            () = stop.notified() => break,
            () = tokio::time::sleep(PAUSE) => {}
        }
    }
    if let Some(c) = conn {
        let _ = sqlx::Connection::close(c).await;
    }
}

/// Copies the WAL into the database without waiting on anyone (PASSIVE).
async fn checkpoint(conn: &mut sqlx::SqliteConnection) {
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut *conn)
        .await
    {
        tracing::debug!(error = %e, "WAL checkpoint failed");
    }
}

//! The SQLite threads that work in the background yield the CPU to the gateway's calls.
//!
//! sqlx runs each SQLite connection on a thread of its own. The usage writer's connection and
//! the WAL checkpointer's wake every few hundred milliseconds and hold a core for a millisecond
//! or more; on a core that also serves calls, a call that arrives meanwhile waits for them. Run
//! at nice [`BACKGROUND_NICE`], the scheduler lets a waking gateway thread in first, while they
//! still get about a third of a contended core: enough to keep up with the gateway's closed-loop
//! peak here (bench/README.md, "Background SQLite threads"). The queue and the spool take what
//! they cannot write at once, so nothing is lost when they fall behind.
//!
//! The threads are sqlx's, so they are found by name under `/proc/self/task` once their
//! connection is open. Raising a nice value needs no privilege; lowering it back would, so it is
//! never done. Elsewhere than Linux this does nothing.

/// Nice value of the writer's and the checkpointer's threads (0 is the default, 19 the lowest).
/// 3 took the gateway's p99 at 1000 calls/s from 0.83 to 0.57 ms; 10 starved the writer at the
/// closed-loop peak (its queue filled and calls went to the spool), 2 gained half as much.
pub(crate) const BACKGROUND_NICE: i32 = 3;

/// Prefix of the usage writer connection's thread name.
pub(crate) const WRITER_THREAD: &str = "tgsql-writer-";
/// Prefix of the checkpointer connection's thread name.
pub(crate) const CHECKPOINT_THREAD: &str = "tgsql-ckpt-";

/// The thread name sqlx gives a connection of this role: the prefix and the connection's number
/// (Linux keeps 15 bytes of it; the prefix is what is matched).
pub(crate) fn thread_name(prefix: &'static str) -> impl Fn(u64) -> String + Send + Sync + 'static {
    move |id| format!("{prefix}{id}")
}

/// Sets [`BACKGROUND_NICE`] on this process's threads whose name starts with `prefix`. Failures
/// are logged, never returned: a thread at the default priority is slower for the gateway's
/// tail, not wrong.
#[cfg(target_os = "linux")]
pub(crate) fn lower_priority(prefix: &str) {
    let tasks = match std::fs::read_dir("/proc/self/task") {
        Ok(tasks) => tasks,
        Err(e) => {
            tracing::debug!(error = %e, "cannot list this process's threads");
            return;
        }
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let named = std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with(prefix));
        if !named {
            continue;
        }
        // On Linux the nice value belongs to the thread whose id is given.
        if let Err(e) = rustix::process::setpriority_process(
            rustix::process::Pid::from_raw(tid),
            BACKGROUND_NICE,
        ) {
            tracing::debug!(error = %e, tid, "cannot lower a SQLite thread's priority");
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_priority(_prefix: &str) {}

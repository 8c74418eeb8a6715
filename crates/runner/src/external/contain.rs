//! Contained child processes: a trainer (or adapter, or probe) and everything it starts live in
//! one process group that ends with the job, whatever happens to it or to `dose-overlap`.
//! Mechanism only: what its output means is the caller's [`OutputScanner`].
//!
//! The scheme needs no `unsafe` (no `pre_exec`, no `prctl`): before the trainer starts, a
//! watchdog (`sh`, a few lines) is started as the leader of a new process group, reading a
//! pipe whose only writer is this process. The trainer joins that group. When the pipe closes
//! — because the job ended and we closed it, or because `dose-overlap` died, SIGKILL included,
//! and the kernel closed it — the watchdog sends SIGKILL to its whole group: trainer,
//! grandchildren and itself. PR_SET_PDEATHSIG would cover the trainer only (not what it forks),
//! fires when the spawning *thread* exits, and needs `unsafe`; the pipe covers the group.
//!
//! A process can leave that group (`setsid`, a double fork) and so escape `kill 0`. What
//! follows it is an environment variable, [`CONTAIN_VAR`], set to a token unique to this
//! trainer start and inherited by everything the trainer starts, in its group or not: when the
//! group ends, the watchdog first sweeps `/proc` and kills (SIGKILL) every process of this
//! user whose environment holds the token, three passes (a process forking during a pass is
//! caught by the next), then kills its group. So a grandchild that calls `setsid` ends with
//! its job, and with a SIGKILLed `dose-overlap`. What remains: a process that also clears or
//! rewrites its environment (and the variable with it) before it leaves the group escapes
//! (a cgroup per job would catch it; this toolkit does not assume delegated cgroups), and
//! without `/proc` (not Linux) only the group is ended.
//!
//! The trainer's stdout and stderr go to a pipe read here into the job's log (capped: see
//! [`crate::JobLog::output`]), never straight into the file, so nothing writes to the log after
//! the group has ended and the runner has written the outcome line.

use super::output::{Lines, OutputScanner};
use crate::backend::JobContext;
use std::io::{self, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a trainer has to stop after SIGTERM before its group is killed.
const GRACE: Duration = Duration::from_secs(5);
/// How long to wait for the output pipe to close once the group is gone (a process that left
/// the group, with `setsid`, may keep it open: it is then no longer read).
const DRAIN: Duration = Duration::from_secs(2);

/// The environment variable that marks a trainer's processes with their job's token.
pub(crate) const CONTAIN_VAR: &str = "DOSE_OVERLAP_CONTAINED";

/// The watchdog (`sh -c WATCHDOG sh TOKEN`): ignores the signals a terminal or a SIGTERM to
/// the group would send, waits for end of file on its stdin, kills every process whose
/// environment holds `DOSE_OVERLAP_CONTAINED=TOKEN` (three passes of one `grep` over
/// `/proc/*/environ`), then its own
/// process group (`kill 0`), itself included.
const WATCHDOG: &str = r#"trap '' INT HUP TERM
while read -r _; do :; done
mark="DOSE_OVERLAP_CONTAINED=$1"
for pass in 1 2 3; do
  for env in $(grep -lsaF "$mark" /proc/[0-9]*/environ); do
    pid=${env#/proc/}; pid=${pid%/environ}
    [ "$pid" = "$$" ] || kill -s KILL "$pid" 2>/dev/null
  done
done
kill -s KILL 0"#;

/// A token no other trainer start shares: this process's id, a counter and the clock.
fn new_token() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{n}-{nanos}", std::process::id())
}

/// Why the runner stopped a trainer that had not exited by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Ctrl-C / SIGTERM of the run.
    Cancelled,
    /// The job ran past `--job-timeout`.
    TimedOut,
}

/// How a contained trainer ended.
pub(crate) struct Contained {
    /// The trainer's exit status.
    pub status: ExitStatus,
    /// Set when the runner stopped it.
    pub stopped: Option<Stopped>,
    /// Its last non-empty output line, trimmed (for an error message).
    pub last_line: Option<String>,
}

struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    fn spawn(token: &str) -> io::Result<Watchdog> {
        let mut command = Command::new("sh");
        command
            .args(["-c", WATCHDOG, "sh", token])
            .env_remove(CONTAIN_VAR)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the whole group (the watchdog kills it, itself included) and reaps the watchdog.
    fn end_group(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.end_group();
    }
}

/// Sends `signal` (`-TERM`, `-KILL`) to process group `pgid`. std has no API for process
/// groups; `kill` is run as a program.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `command` contained: in the watchdog's process group, output into the job's log,
/// stopped on cancellation or at the job's deadline, its group ended when it exits; each line
/// of its output goes to `scanner`. Returns the spawn error when the program cannot start.
pub(crate) fn run_contained(
    mut command: Command,
    ctx: &mut JobContext<'_>,
    scanner: &mut dyn OutputScanner,
) -> io::Result<Contained> {
    let token = new_token();
    // Everything the trainer starts inherits it: how the watchdog finds what left the group.
    command.env(CONTAIN_VAR, &token);
    let mut watchdog = match Watchdog::spawn(&token) {
        Ok(w) => Some(w),
        Err(e) => {
            ctx.log_line(&format!(
                "note: no watchdog (`sh` did not start: {e}); the trainer is still stopped with \
                 its job, but not if dose-overlap itself is killed"
            ));
            None
        }
    };
    let (reader, writer) = io::pipe()?;
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(
        &mut command,
        watchdog.as_ref().map_or(0, |w| w.pgid() as i32),
    );
    let spawned = command.spawn();
    // Our copies of the pipe's write end go with the command: the pipe ends when the trainer's
    // processes are gone.
    drop(command);
    let mut child = spawned?;
    let pgid = watchdog.as_ref().map_or(child.id(), Watchdog::pgid);

    // The pipe is read on its own thread, which hands chunks over; the log is written here.
    let (chunks, received) = mpsc::sync_channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    if chunks.send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });

    let deadline = ctx.deadline();
    let mut lines = Lines::new(scanner);
    let mut stopping: Option<(Instant, Stopped)> = None;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut pipe_open = true;
    let mut killed = false;
    loop {
        if pipe_open {
            match received.recv_timeout(Duration::from_millis(20)) {
                Ok(chunk) => {
                    ctx.log.output(&chunk);
                    lines.feed(&chunk);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => pipe_open = false,
            }
        } else if exited.is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some((_, since)) = exited {
            if !pipe_open || since.elapsed() > DRAIN {
                break;
            }
            continue;
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // The trainer is gone: so is everything it started, before the outcome line.
                if let Some(w) = watchdog.as_mut() {
                    w.end_group();
                }
                // Also when the watchdog is gone (killed by someone): nothing of it survives.
                signal_group(pgid, "-KILL");
                exited = Some((status, Instant::now()));
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                signal_group(pgid, "-KILL");
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
        match stopping {
            None => {
                let why = if ctx.cancel.is_cancelled() {
                    Some(Stopped::Cancelled)
                } else if deadline.is_some_and(|(at, _)| Instant::now() >= at) {
                    Some(Stopped::TimedOut)
                } else {
                    None
                };
                if let Some(why) = why {
                    signal_group(pgid, "-TERM");
                    stopping = Some((Instant::now(), why));
                }
            }
            Some((since, _)) if !killed && since.elapsed() > GRACE => {
                signal_group(pgid, "-KILL");
                killed = true;
            }
            Some(_) => {}
        }
    }
    drop(watchdog);
    let (status, _) = exited.expect("the loop ends once the trainer has exited");
    if pipe_open {
        ctx.log_line(
            "\n[dose-overlap: a process the trainer started left its process group and still \
             holds its output open; its output is no longer read]",
        );
    }
    let dropped = ctx.log.dropped_bytes();
    if dropped > 0 {
        ctx.log_line(&format!(
            "[dose-overlap: {dropped} more bytes of trainer output were not kept]"
        ));
    }
    Ok(Contained {
        status,
        stopped: stopping.map(|(_, why)| why),
        last_line: lines.finish(),
    })
}

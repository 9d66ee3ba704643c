//! The process a worker runs in — its host and process id, recorded with each trial it runs
//! in nndl's `nndl_trial_workers` — and whether a worker of this host is still alive: a trial
//! whose worker's process is gone is taken over at once, not after `--stale-after` of silence
//! (Optuna, which records no process, can only wait).
//!
//! A process id means something only within one PID namespace of one machine, so a worker's
//! host is its host name with, on Linux, its PID namespace (`box-7 pid:[4026531836]`): two
//! containers of one host name then never judge each other's processes.

/// This process's host: the host name, and the PID namespace where the system has them.
pub fn this_host() -> String {
    let name = host_name();
    match std::fs::read_link("/proc/self/ns/pid") {
        Ok(ns) => format!("{name} {}", ns.display()),
        Err(_) => name,
    }
}

/// The machine's host name (`localhost` if it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// This process's id, as stored.
pub fn this_pid() -> i64 {
    std::process::id().into()
}

/// True when the worker of `host` and `pid` is known to be dead: it ran on this host (and PID
/// namespace), in another process than this one, and no process of that id exists now. A
/// process id the system has since given to another process counts as alive (its trial then
/// waits for `--stale-after`, as on another host).
pub fn is_gone(host: &str, pid: i64) -> bool {
    host == this_host() && pid != this_pid() && !exists(pid)
}

/// Whether a process of id `pid` exists; true where that cannot be told.
fn exists(pid: i64) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // Safety: signal 0 sends nothing; it only asks whether the process exists.
        let sent = unsafe { libc::kill(pid, 0) } == 0;
        sent || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_process_of_this_host_that_has_exited_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        assert!(is_gone(&this_host(), pid));
        assert!(!is_gone("another-host", pid));
        assert!(!is_gone(&this_host(), this_pid()));
        let live = std::process::Command::new("sleep").arg("5").spawn();
        if let Ok(mut live) = live {
            assert!(!is_gone(&this_host(), i64::from(live.id())));
            live.kill().unwrap();
            live.wait().unwrap();
        }
    }
}

//! Thin libc wrappers: user lookup, liveness checks and child-process setup.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The system user initdb/postgres are run as when we are root.
pub(crate) const SERVER_USER: &str = "postgres";

/// Identity to drop to when spawning server processes as root.
#[derive(Debug, Clone)]
pub(crate) struct ServerUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `None` when we can run the server as ourselves; the `postgres` user when we are root.
pub(crate) fn server_user() -> Result<Option<ServerUser>, Error> {
    if !is_root() {
        return Ok(None);
    }
    match lookup_user(SERVER_USER) {
        Ok(Some(user)) => Ok(Some(user)),
        Ok(None) => Err(Error::NoServerUser {
            user: SERVER_USER.to_string(),
        }),
        Err(e) => Err(Error::io(format!("looking up user '{SERVER_USER}'"), e)),
    }
}

/// Thread-safe passwd lookup (getpwnam_r), since tests start servers from many threads.
pub(crate) fn lookup_user(name: &str) -> io::Result<Option<ServerUser>> {
    let cname = CString::new(name).map_err(io::Error::other)?;
    let mut buf_len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; buf_len];
        // SAFETY: passwd is a plain C struct; all-zero is a valid (if meaningless) value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the duration of the call and buf_len is the
        // real size of buf.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf_len < 1 << 20 {
            buf_len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        let home = if pwd.pw_dir.is_null() {
            PathBuf::from("/")
        } else {
            // SAFETY: getpwnam_r succeeded, so pw_dir points into buf as a C string.
            let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
            PathBuf::from(OsStr::from_bytes(dir.to_bytes()))
        };
        return Ok(Some(ServerUser {
            name: name.to_string(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home,
        }));
    }
}

/// True unless the kernel says the process does not exist (EPERM means alive, other owner).
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only performs the existence/permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    exists && !is_zombie(pid)
}

/// A zombie has exited but not been reaped (e.g. reparented to a container init that
/// does not reap); it must count as dead.
fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Format: "pid (comm) S ..."; comm may contain spaces/parens, so split after the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

pub(crate) fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: plain kill(2); failure (already gone) is fine to ignore.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

pub(crate) fn chown(path: &Path, user: &ServerUser) -> Result<(), Error> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|e| Error::io(format!("chown {} to {}", path.display(), user.name), e))
}

/// Runs `cmd` as `user` (when given) with an environment that does not point into root's home.
pub(crate) fn run_as(cmd: &mut Command, user: Option<&ServerUser>) {
    if let Some(u) = user {
        cmd.uid(u.uid)
            .gid(u.gid)
            .env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name);
    }
}

/// Drops inherited `PG*` variables (PGHOST, PGPORT, PGSSLMODE, PGDATA, ...) so the
/// caller's environment cannot redirect our helper commands to some other server.
pub(crate) fn clean_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
}

/// Makes the kernel send `signal` to the child when the spawning *thread* dies, so a
/// crashed parent does not leave an orphaned postgres behind.
pub(crate) fn set_parent_death_signal(cmd: &mut Command, signal: libc::c_int) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let sig = signal as libc::c_ulong;
        // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid) and
        // does not allocate. std runs it after setuid/setgid, which would otherwise
        // clear the death signal.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (cmd, signal);
    }
}

//! A child process that must not outlive onramp: started in a process group of its own
//! (`Command::process_group(0)`), and ended with the whole group ([`stop_group`]), so that
//! whatever it started goes too (chromedriver's Chromium, an app's dev server).

use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// End the process group `child` leads: SIGTERM, two seconds to exit, then SIGKILL for
/// whatever is left of it.
pub fn stop_group(mut child: Child) {
    let Ok(raw) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let group = Pid::from_raw(raw);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// A loopback port free right now (the listener that found it is closed before returning).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?
        .local_addr()
        .map(|address| address.port())
}

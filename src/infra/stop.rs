//! The signals that stop onramp: SIGINT (Ctrl-C), SIGTERM (what CI runners, `timeout` and
//! `kill` send) and SIGHUP (a closed terminal). Each is listened for from the moment a
//! command starts, so that none ends the process behind its back: a run writes what it
//! recorded, marked interrupted, and closes its browser; the sandbox shuts down. The exit
//! code is 128 + the signal's number, as a shell reports a process the signal killed.

use std::sync::OnceLock;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// Which signal stopped the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
    HangUp,
}

impl Stop {
    /// The signal's name, as `kill -l` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
            Stop::HangUp => "SIGHUP",
        }
    }

    /// 128 + the signal's number: 130, 143 or 129.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => crate::infra::exit::INTERRUPTED,
            Stop::Terminate => crate::infra::exit::TERMINATED,
            Stop::HangUp => crate::infra::exit::HUNG_UP,
        }
    }
}

/// The first signal of the process, as every [`Stops`] sees it.
static FIRST: OnceLock<watch::Sender<Option<Stop>>> = OnceLock::new();

/// Listen for the three signals from now on, for the whole process: a thread of its own
/// takes them (so no runtime ending loses one) and keeps the first for every [`Stops`],
/// made before or after it came. Call it first thing; later calls do nothing more.
pub fn install() {
    FIRST.get_or_init(|| {
        let (sender, _) = watch::channel(None);
        let forward = sender.clone();
        let (ready, installed) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("onramp-signals".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    let _ = ready.send(());
                    return;
                };
                runtime.block_on(async move {
                    let mut interrupt = signal(SignalKind::interrupt()).ok();
                    let mut terminate = signal(SignalKind::terminate()).ok();
                    let mut hang_up = signal(SignalKind::hangup()).ok();
                    let _ = ready.send(());
                    loop {
                        let stop = tokio::select! {
                            () = one(interrupt.as_mut()) => Stop::Interrupt,
                            () = one(terminate.as_mut()) => Stop::Terminate,
                            () = one(hang_up.as_mut()) => Stop::HangUp,
                        };
                        forward.send_if_modified(|first| {
                            let new = first.is_none();
                            first.get_or_insert(stop);
                            new
                        });
                    }
                });
            });
        // Wait until the handlers are in place: from here on a signal is kept, not fatal.
        if spawned.is_ok() {
            let _ = installed.recv();
        }
        sender
    });
}

/// Wait for one signal; never resolves if it cannot be listened for.
async fn one(signal: Option<&mut Signal>) {
    match signal {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// The process's first signal, as seen from one place: a signal that came before this was
/// made, or before anyone waits, is returned by [`Stops::next`] at once.
#[derive(Debug)]
pub struct Stops {
    receiver: watch::Receiver<Option<Stop>>,
}

impl Stops {
    /// Listen (installing the handlers if [`install`] was not called yet).
    pub fn listen() -> Self {
        install();
        let receiver = FIRST
            .get()
            .map(watch::Sender::subscribe)
            .unwrap_or_else(|| watch::channel(None).1);
        Self { receiver }
    }

    /// The signal that came, if one has.
    pub fn came(&self) -> Option<Stop> {
        *self.receiver.borrow()
    }

    /// The first signal; never resolves if none comes.
    pub async fn next(&mut self) -> Stop {
        match self.receiver.wait_for(Option::is_some).await {
            Ok(stop) => stop.unwrap_or(Stop::Terminate),
            Err(_) => std::future::pending().await,
        }
    }
}

//! The signals that stop onramp: SIGINT (Ctrl-C), SIGTERM (what CI runners, `timeout` and
//! `kill` send) and SIGHUP (a closed terminal). Each is listened for from the moment a
//! command starts, so that none ends the process behind its back: a run writes what it
//! recorded, marked interrupted, and closes its browser; the sandbox shuts down. The exit
//! code is 128 + the signal's number, as a shell reports a process the signal killed.

use tokio::signal::unix::{Signal, SignalKind, signal};

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

/// The three signals, listened for since [`Stops::listen`]. A signal that arrives before
/// anyone waits is kept and returned by the next [`Stops::next`].
#[derive(Debug)]
pub struct Stops {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
    hang_up: Option<Signal>,
}

impl Stops {
    /// Start listening (inside a Tokio runtime). A signal that cannot be listened for keeps
    /// its default action.
    pub fn listen() -> Self {
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            hang_up: signal(SignalKind::hangup()).ok(),
        }
    }

    /// The next signal; never resolves if none comes.
    pub async fn next(&mut self) -> Stop {
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
        tokio::select! {
            () = one(self.interrupt.as_mut()) => Stop::Interrupt,
            () = one(self.terminate.as_mut()) => Stop::Terminate,
            () = one(self.hang_up.as_mut()) => Stop::HangUp,
        }
    }
}

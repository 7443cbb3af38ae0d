//! The small infrastructure every layer may use and which uses none of them: atomic file
//! writes ([`atomic`]), exit codes ([`exit`]), signals ([`stop`]), values never printed
//! ([`secret`]), the terminal ([`console`]) and outside text made inert ([`text`]).

pub mod atomic;
pub mod console;
pub mod exit;
pub mod secret;
pub mod stop;
pub mod text;

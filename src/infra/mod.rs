//! The small infrastructure every layer may use and which uses none of them: atomic file
//! writes ([`atomic`]), `${NAME}` in user files ([`env`]), a user file that cannot be used ([`file`]), exit codes ([`exit`]), whose fault a "no" is ([`fault`]), signals ([`stop`]), values never printed
//! ([`secret`]), the terminal ([`console`]) and outside text made inert ([`text`]).

pub mod atomic;
pub mod console;
pub mod env;
pub mod exit;
pub mod fault;
pub mod file;
pub mod secret;
pub mod stop;
pub mod text;

//! The small infrastructure every layer may use and which uses none of them: atomic file
//! writes ([`atomic`]), `${NAME}` in user files ([`env`]), a user file that cannot be used ([`file`]), exit codes ([`exit`]), JSON written inert ([`json`]), addresses compared and shown without their query ([`origin`]), child processes that end with onramp ([`process`]), whose fault a "no" is ([`fault`]), signals ([`stop`]), what a killed run left ([`leftovers`]), values never printed
//! ([`secret`]), the terminal ([`console`]) outside text made inert ([`text`]), how onramp writes durations, counts and lists
//! ([`words`]), and an error told with its causes ([`cause`]).

pub mod atomic;
pub mod cause;
pub mod console;
pub mod env;
pub mod exit;
pub mod fault;
pub mod file;
pub mod json;
pub mod leftovers;
pub mod origin;
pub mod process;
pub mod secret;
pub mod stop;
pub mod text;
pub mod words;

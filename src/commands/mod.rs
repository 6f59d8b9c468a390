//! The subcommands a person types (login, status, profile, doctor, setup, serve, …): the top layer, above the protocols.

pub(crate) mod doctor;
pub(crate) mod generate;
pub(crate) mod get_token;
pub(crate) mod inspect;
pub(crate) mod profile;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod setup;

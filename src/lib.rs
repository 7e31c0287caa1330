pub mod dialog;
pub mod phone;
pub mod schedule;

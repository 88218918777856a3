//! The bus's subscriptions, found by subject without visiting them all.
//!
//! A host with ten thousand components has ten thousand subscriptions, and
//! almost all name one concrete subject. Those are kept by subject, so a
//! publish costs a hash lookup plus a walk over the wildcard patterns only,
//! and a message to one component costs the same whatever the number of
//! its neighbours.

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::core::subject::Pattern;
use crate::transport::Delivery;

/// One subscription on the bus.
pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) pattern: Pattern,
    pub(super) group: Option<String>,
    pub(super) sender: mpsc::Sender<Delivery>,
}

/// Subscriptions, literal ones by subject.
#[derive(Default)]
pub(super) struct Table {
    literal: HashMap<String, Vec<Entry>>,
    wildcard: Vec<Entry>,
}

impl Table {
    pub(super) fn insert(&mut self, entry: Entry) {
        match entry.pattern.is_literal() {
            true => self
                .literal
                .entry(entry.pattern.as_str().to_owned())
                .or_default()
                .push(entry),
            false => self.wildcard.push(entry),
        }
    }

    /// Removes the subscription `id` made with `pattern`.
    pub(super) fn remove(&mut self, pattern: &str, id: u64) {
        match self.literal.get_mut(pattern) {
            Some(entries) => {
                entries.retain(|e| e.id != id);
                if entries.is_empty() {
                    self.literal.remove(pattern);
                }
            }
            None => self.wildcard.retain(|e| e.id != id),
        }
    }

    /// Every subscription whose pattern matches `subject`.
    pub(super) fn matching<'a>(&'a self, subject: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let literal = self.literal.get(subject).map(Vec::as_slice).unwrap_or_default();
        literal
            .iter()
            .chain(self.wildcard.iter().filter(move |e| e.pattern.matches(subject)))
    }
}

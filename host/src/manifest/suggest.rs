//! "did you mean `subscribe`?": the known key nearest to an unknown one.
//!
//! The parser's error for an unknown key lists the keys the table takes
//! (`unknown field `subscibe`, expected one of `name`, `wasm`, ...`); the
//! nearest of them by edit distance, if it is near enough to be a typo, is
//! the suggestion.

/// The known key nearest to the unknown one a parser `message` names, if
/// one is within a third of its length (and at least one edit).
pub(super) fn nearest_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let known = rest.split_once("expected")?.1;
    let candidates = known.split('`').skip(1).step_by(2);
    let limit = (unknown.chars().count() / 3).max(1);
    candidates
        .map(|key| (distance(unknown, key), key))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, key)| key)
}

/// Edit distance by characters, a swap of two neighbours counting as one
/// edit (optimal string alignment): `nmae` is one edit from `name`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_the_nearest_key_and_nonsense_gets_none() {
        let message = "unknown field `subscibe`, expected one of `name`, `wasm`, `subscribe`, `publish`";
        assert_eq!(nearest_key(message), Some("subscribe"));
        let message = "unknown field `nmae`, expected one of `name`, `transport`";
        assert_eq!(nearest_key(message), Some("name"));
        let message = "unknown field `colour`, expected one of `name`, `wasm`";
        assert_eq!(nearest_key(message), None);
        assert_eq!(nearest_key("invalid type: string, expected u64"), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
